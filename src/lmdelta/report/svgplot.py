"""What the overview's plots share: the rows they draw (one per validated finding and scope, in the cards' order, with
the same label and link), their layout and the pieces drawn alike (frame, stripes, linked row, grid, ticks, labels).

Pure: markup strings out, every piece of text from the run escaped here or by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Protocol

from lmdelta.report.filters import DASH
from lmdelta.report.merge import POOLED, MergedFinding, is_validated

# The drawing in user units; the page scales it to its column (and scrolls a narrow screen's wrapper instead
# of shrinking the text past reading). Label, plot and value columns side by side, one row per finding.
WIDTH = 960
LABEL_END = 400  # labels are clipped here; LABEL_CHARS keeps a typical label inside it
LABEL_CHARS = 48
PLOT = (424, 792)  # the value axis, x from left to right
VALUE_X = 808
SIDE_CHARS = 24  # a side's label at an axis end; two of them fit under the plot
ROW, TOP, BOTTOM = 26, 30, 56
SIDE_GAP = 22  # from the tick labels' baseline to the next line's

Scale = Callable[[float], float]


class Linked(Protocol):
    """A plot's row as its link needs it: the finding's id, its label and the anchor of its card."""

    @property
    def finding(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def href(self) -> str: ...


@dataclass(frozen=True)
class Plotted:
    """A validated row as every overview plot names it: its finding id, label and the anchor of its card."""

    row: Mapping[str, Any]
    finding: str
    label: str
    href: str


def plotted_rows(merged: Sequence[MergedFinding]) -> list[Plotted]:
    """Every validated row, in the order of the cards below it; a claim validated in several scopes gives one row per
    scope, labelled with the scope and linking to the claim's one card."""
    return [_plotted(row, finding) for finding in merged for row in finding.rows if is_validated(row)]


def _plotted(row: Mapping[str, Any], finding: MergedFinding) -> Plotted:
    label = str(row.get("description") or DASH)
    if finding.merged:
        scope = "all prompts (pooled)" if row.get("group") == POOLED else str(row.get("group"))
        label = f"{finding.description() or DASH} · {scope}"
    return Plotted(
        row=row, finding=str(row.get("id") or row.get("anchor") or DASH), label=label, href=str(finding.lead["anchor"])
    )


def style(kind: str, extra: Iterable[str]) -> str:
    """The rules every plot shares, scoped to its class (`KIND-plot`, rows `KIND-mark`), then its own."""
    plot, mark = f".{kind}-plot", f".{kind}-plot .{kind}-mark"
    shared = (
        f"{plot} text{{font-size:13px;fill:var(--fg,#1d2430)}}",
        f"{plot} .head,{plot} .tick,{plot} .side,{plot} .note{{font-size:12px;fill:var(--muted,#5b6675)}}",
        f"{plot} .value{{font-variant-numeric:tabular-nums}}",
        f"{plot} .stripe{{fill:var(--soft,#f4f6f9)}}",
        f"{plot} .grid{{stroke:var(--line,#d8dde4)}}",
        f"{plot} .hit{{fill:transparent}}",
        f"{mark}:hover .hit,{mark}:focus .hit{{fill:var(--accent-soft,#e6edf8)}}",
        f"{mark}:hover .label,{mark}:focus .label{{text-decoration:underline}}",
    )
    return "<style>" + "".join((*shared, *extra)) + "</style>"


def frame(kind: str, height: int, title: str, rows: int, heads: Iterable[tuple[float, str]]) -> list[str]:
    """The opening tag (named by `title` for assistive technology), the label column's clip, the column heads
    and a stripe on every other row. The caller adds its style, marks and axis, and closes the tag."""
    # No xmlns: inline in HTML the parser puts it in the SVG namespace, and the page holds no URL at all. No
    # role="img" either: that would hide the row links inside from assistive technology.
    return [
        f'<svg class="{kind}-plot" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-label="{escape(title)}">',
        f'<clipPath id="{kind}-label-clip"><rect x="0" y="0" width="{LABEL_END}" height="{height}"/></clipPath>',
        *(f'<text class="head" x="{x}" y="{TOP - 10}">{escape(text)}</text>' for x, text in heads),
        *(f'<rect class="stripe" x="0" y="{top(i)}" width="{WIDTH}" height="{ROW}"/>' for i in range(0, rows, 2)),
    ]


def top(index: int) -> int:
    return TOP + ROW * index


def middle(index: int) -> int:
    return top(index) + ROW // 2


def scale(low: float, high: float) -> Scale:
    """x of a value on the axis from `low` (left end of the plot) to `high` (right end), clipped to it."""

    def x(value: float) -> float:
        clipped = min(high, max(low, value))
        return round(PLOT[0] + (clipped - low) / (high - low) * (PLOT[1] - PLOT[0]), 1)

    return x


def mark_start(kind: str, index: int, item: Linked, tooltip: str, css: str = "") -> str:
    """A row's link to its card, open for the caller's shapes: its tooltip, the hover area and the shortened label.
    Its tooltip names it for assistive technology too, so the link is never nameless; `css` adds classes."""
    classes = f"{kind}-mark {css}".strip()
    return (
        f'<a class="{classes}" data-finding="{escape(item.finding)}" href="#{escape(item.href)}">'
        f"<title>{escape(tooltip)}</title>"
        f'<rect class="hit" x="0" y="{top(index)}" width="{WIDTH}" height="{ROW}"/>'
        f'<text class="label" x="6" y="{middle(index) + 4}" clip-path="url(#{kind}-label-clip)">'
        f"{escape(shorten(item.label, LABEL_CHARS))}</text>"
    )


def value_text(index: int, text: str) -> str:
    """The row's numbers in the value column."""
    return f'<text class="value" x="{VALUE_X}" y="{middle(index) + 4}">{escape(text)}</text>'


def grid(x: Scale, ticks: Iterable[float], height: int) -> list[str]:
    """A vertical line at each tick, across the rows."""
    return [f'<line class="grid" x1="{x(tick)}" x2="{x(tick)}" y1="{TOP}" y2="{height - BOTTOM}"/>' for tick in ticks]


def tick_labels(x: Scale, ticks: Iterable[float], height: int, text: Callable[[float], str]) -> list[str]:
    """Each tick's value under the plot."""
    base = axis_base(height)
    return [
        f'<text class="tick" x="{x(tick)}" y="{base}" text-anchor="middle">{escape(text(tick))}</text>'
        for tick in ticks
    ]


def axis_base(height: int) -> int:
    """The baseline of the tick labels; the sides' labels sit a line (SIDE_GAP) below it."""
    return height - BOTTOM + 18


def side_labels(height: int, left: str, right: str, inset: float = 0) -> list[str]:
    """A text under each end of the axis, `inset` in from it: `left` starts at the left end, `right` ends at the
    right one."""
    base = axis_base(height) + SIDE_GAP
    return [
        f'<text class="side" x="{PLOT[0] + inset}" y="{base}">{escape(left)}</text>',
        f'<text class="side" x="{PLOT[1] - inset}" y="{base}" text-anchor="end">{escape(right)}</text>',
    ]


def shorten(text: str, limit: int) -> str:
    """One line of at most `limit` characters, cut at a word when one ends near there, with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.6 else cut).rstrip(" ,;:·-") + "…"
