"""The report's overview: every validated finding's effect with its interval, as one inline SVG forest plot.

Pure: finding rows in, markup out, no plotting library; every piece of text from the run is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from lmdelta.jsonvalues import finite
from lmdelta.report.filters import DASH, fmt_ci, fmt_level, fmt_signed
from lmdelta.report.merge import POOLED, MergedFinding, is_validated

# The drawing in user units; the page scales it to its column (and scrolls a narrow screen's wrapper instead
# of shrinking the text past reading). Label, plot and value columns side by side, one row per finding.
WIDTH = 960
LABEL_END = 400  # labels are clipped here; LABEL_CHARS keeps a typical label inside it
LABEL_CHARS = 48
PLOT = (424, 792)  # the effect axis, x from left to right
VALUE_X = 808
SIDE_CHARS = 24  # a side's label at an axis end; two of them fit under the plot
ROW, TOP, BOTTOM = 26, 30, 56
LIMITS = (
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
)  # the axis runs from -limit to +limit: the first that holds all; ticks at halves
STYLE = (
    "<style>"
    ".forest-plot text{font-size:13px;fill:var(--fg,#1d2430)}"
    ".forest-plot .head,.forest-plot .tick,.forest-plot .side{font-size:12px;fill:var(--muted,#5b6675)}"
    ".forest-plot .value{font-variant-numeric:tabular-nums}"
    ".forest-plot .stripe{fill:var(--soft,#f4f6f9)}"
    ".forest-plot .grid{stroke:var(--line,#d8dde4)}"
    ".forest-plot .zero{stroke:var(--fg,#1d2430);stroke-width:1.5}"
    ".forest-plot .hit{fill:transparent}"
    ".forest-plot .forest-mark:hover .hit,.forest-plot .forest-mark:focus .hit{fill:var(--accent-soft,#e6edf8)}"
    ".forest-plot .forest-mark:hover .label{text-decoration:underline}"
    ".forest-plot .ci{stroke-width:2;stroke-linecap:round}"
    ".forest-plot .ci.inner{stroke-width:6;stroke-linecap:butt}"
    ".forest-plot .to-b .ci,.forest-plot .to-b .point{stroke:var(--accent,#2453a0);fill:var(--accent,#2453a0)}"
    ".forest-plot .to-a .ci,.forest-plot .to-a .point{stroke:#5b6675;fill:#5b6675}"
    ".forest-plot .to-none .ci,.forest-plot .to-none .point{stroke:#9aa4b1;fill:#9aa4b1}"
    "</style>"
)


@dataclass(frozen=True)
class ForestRow:
    """One validated finding as the plot draws it: the interval its card leads with (the selection-adjusted one
    when the run computed it, with the plain one inside; else the plain one, a confidence sequence in sequential
    mode), its label and the anchor of its card."""

    finding: str
    label: str
    href: str
    effect: float | None
    interval: tuple[float, float] | None
    level: float | None
    inner: tuple[float, float] | None = None
    inner_level: float | None = None


def forest_rows(merged: Sequence[MergedFinding]) -> list[ForestRow]:
    """Every validated row, in the order of the cards below it; a claim validated in several scopes gives one row per
    scope, labelled with the scope."""
    return [
        _forest_row(row, finding, str(finding.lead["anchor"]))
        for finding in merged
        for row in finding.rows
        if is_validated(row)
    ]


def _forest_row(row: Mapping[str, Any], finding: MergedFinding, href: str) -> ForestRow:
    label = str(row.get("description") or DASH)
    if finding.merged:
        scope = "all prompts (pooled)" if row.get("group") == POOLED else str(row.get("group"))
        label = f"{finding.description() or DASH} · {scope}"
    plain, adjusted = row.get("effect_ci"), row.get("effect_ci_fcr")
    return ForestRow(
        finding=str(row.get("id") or row.get("anchor") or DASH),
        label=label,
        href=href,
        effect=finite(row.get("effect")),
        interval=adjusted or plain,
        level=row.get("fcr_level") if adjusted else row.get("ci_level"),
        inner=plain if adjusted else None,
        inner_level=row.get("ci_level") if adjusted else None,
    )


def svg(rows: Sequence[ForestRow], a_label: str, b_label: str) -> str:
    """The forest plot: one row per finding, a zero line, b > a to the right and a > b to the left, each side's label
    at its end of the axis. Empty when there is nothing to draw."""
    if not rows:
        return ""
    limit = axis_limit(rows)
    height = TOP + ROW * len(rows) + BOTTOM

    def x(value: float) -> float:
        clipped = min(limit, max(-limit, value))
        return round(PLOT[0] + (clipped + limit) / (2 * limit) * (PLOT[1] - PLOT[0]), 1)

    title = f"Effect (b − a) of {len(rows)} validated finding{'s' if len(rows) != 1 else ''}, with intervals"
    # No xmlns: inline in HTML the parser puts it in the SVG namespace, and the page holds no URL at all.
    parts = [
        f'<svg class="forest-plot" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" aria-label="{escape(title)}">',
        STYLE,
        f'<clipPath id="forest-label-clip"><rect x="0" y="0" width="{LABEL_END}" height="{height}"/></clipPath>',
        f'<text class="head" x="0" y="{TOP - 10}">validated finding</text>',
        f'<text class="head" x="{VALUE_X}" y="{TOP - 10}">effect (b − a) [interval]</text>',
        *(f'<rect class="stripe" x="0" y="{_top(i)}" width="{WIDTH}" height="{ROW}"/>' for i in range(0, len(rows), 2)),
        *_grid(x, limit, height),
        *(_mark(i, row, x) for i, row in enumerate(rows)),
        *_axis(x, limit, height, a_label, b_label),
        "</svg>",
    ]
    return "\n".join(parts)


def axis_limit(rows: Sequence[ForestRow]) -> float:
    """The smallest round half-width that holds every effect and interval (judge-score effects lie in −1…1)."""
    values = [abs(v) for row in rows for v in (row.effect, *(row.interval or ()), *(row.inner or ())) if v is not None]
    largest = max(values, default=0.0)
    fitting = [limit for limit in LIMITS if largest <= limit]
    return fitting[0] if fitting else float(math.ceil(largest))


def _top(index: int) -> int:
    return TOP + ROW * index


def _grid(x: Callable[[float], float], limit: float, height: int) -> list[str]:
    bottom = height - BOTTOM
    lines = [
        f'<line class="grid" x1="{x(tick)}" x2="{x(tick)}" y1="{TOP}" y2="{bottom}"/>'
        for tick in (-limit, -limit / 2, limit / 2, limit)
    ]
    lines.append(f'<line class="zero" x1="{x(0)}" x2="{x(0)}" y1="{TOP - 4}" y2="{bottom + 4}"/>')
    return lines


def _mark(index: int, row: ForestRow, x: Callable[[float], float]) -> str:
    """A row as one link to its card: the label, the interval (the plain one thicker inside an adjusted one), the
    point and the numbers, with the full label and intervals in its tooltip."""
    top = _top(index)
    middle = top + ROW // 2
    side = "to-none" if not row.effect else "to-b" if row.effect > 0 else "to-a"
    parts = [
        f'<a class="forest-mark {side}" data-finding="{escape(row.finding)}" href="#{escape(row.href)}">',
        f"<title>{escape(_tooltip(row))}</title>",
        f'<rect class="hit" x="0" y="{top}" width="{WIDTH}" height="{ROW}"/>',
        f'<text class="label" x="6" y="{middle + 4}" clip-path="url(#forest-label-clip)">'
        f"{escape(shorten(row.label, LABEL_CHARS))}</text>",
    ]
    for interval, css in ((row.interval, "ci"), (row.inner, "ci inner")):
        if interval is not None:
            parts.append(
                f'<line class="{css}" x1="{x(interval[0])}" x2="{x(interval[1])}" y1="{middle}" y2="{middle}"/>'
            )
    if row.effect is not None:
        parts.append(f'<circle class="point" cx="{x(row.effect)}" cy="{middle}" r="4.5"/>')
    value = f"{fmt_signed(row.effect)} {fmt_ci(row.interval)}" if row.interval else f"{fmt_signed(row.effect)}"
    parts.append(f'<text class="value" x="{VALUE_X}" y="{middle + 4}">{escape(value)}</text>')
    parts.append("</a>")
    return "".join(parts)


def _tooltip(row: ForestRow) -> str:
    if row.interval is None:
        return f"{row.label}\neffect {fmt_signed(row.effect)}, no interval"
    text = f"{row.label}\neffect {fmt_signed(row.effect)}, {fmt_level(row.level)} CI {fmt_ci(row.interval)}"
    if row.inner is not None:
        text += f" (adjusted for selection); plain {fmt_level(row.inner_level)} CI {fmt_ci(row.inner)}"
    return text


def _axis(x: Callable[[float], float], limit: float, height: int, a_label: str, b_label: str) -> list[str]:
    """Tick values under the plot, and under its ends which side a mark there favours."""
    base = height - BOTTOM + 18
    parts = [
        f'<text class="tick" x="{x(tick)}" y="{base}" text-anchor="middle">{_tick(tick)}</text>'
        for tick in (-limit, -limit / 2, 0.0, limit / 2, limit)
    ]
    parts.append(
        f'<text class="side" x="{PLOT[0]}" y="{base + 22}">← more in a ({escape(shorten(a_label, SIDE_CHARS))})</text>'
    )
    parts.append(
        f'<text class="side" x="{PLOT[1]}" y="{base + 22}" text-anchor="end">'
        f"more in b ({escape(shorten(b_label, SIDE_CHARS))}) →</text>"
    )
    return parts


def _tick(value: float) -> str:
    return "0" if value == 0 else f"{value:+.2f}".rstrip("0").rstrip(".")  # signed as the effects beside it


def shorten(text: str, limit: int) -> str:
    """One line of at most `limit` characters, cut at a word when one ends near there, with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.6 else cut).rstrip(" ,;:·-") + "…"
