"""The report's overview, second plot: how often each validated finding holds on each side (its prevalence, the share
of texts where it is present), a → b as two dots joined by an arrow, one row per finding as in the forest plot.

Pure: finding rows in, markup out; every piece of text from the run is escaped here (or in svgplot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lmdelta.jsonvalues import finite
from lmdelta.report import svgplot
from lmdelta.report.filters import fmt_level, fmt_pct
from lmdelta.report.merge import MergedFinding
from lmdelta.report.svgplot import SIDE_CHARS, TOP, VALUE_X, Plotted, Scale, shorten

KIND = "prevalence"  # the plot's class (prevalence-plot) and its rows' (prevalence-mark)
# The axis runs from 0 to the first of these that holds every prevalence: 100% unless all of them are small, when
# it zooms so that a 3% → 8% change is not a few pixels; the tick labels say which. Ticks at fifths.
LIMITS = (0.1, 0.25, 0.5, 1.0)
NOTE = 22  # the extra height of the line saying which findings were left out
ARROW = 7  # the arrowhead's length; drawn only where the dots lie further apart than ARROW + 2 * DOT
DOT = 5
STYLE = svgplot.style(
    KIND,
    (
        ".prevalence-plot .link{stroke:#9aa4b1;stroke-width:2}",
        ".prevalence-plot .arrow{fill:#9aa4b1}",
        ".prevalence-plot .dot-a{fill:var(--card,#fff);stroke:#5b6675;stroke-width:2}",
        ".prevalence-plot .dot-b{fill:var(--accent,#2453a0);stroke:var(--accent,#2453a0);stroke-width:2}",
        ".prevalence-plot .prevalence-mark:hover .link,.prevalence-plot .prevalence-mark:focus .link{stroke:#5b6675}",
        ".prevalence-plot .prevalence-mark:hover .arrow,.prevalence-plot .prevalence-mark:focus .arrow{fill:#5b6675}",
    ),
)


@dataclass(frozen=True)
class PrevalenceRow:
    """One validated finding as the plot draws it: its prevalence on each side (None where its judge gives none),
    their intervals, its label and the anchor of its card."""

    finding: str
    label: str
    href: str
    a: float | None
    b: float | None
    a_interval: tuple[float, float] | None = None
    b_interval: tuple[float, float] | None = None
    level: float | None = None

    @property
    def drawn(self) -> bool:
        return self.a is not None and self.b is not None


def prevalence_rows(merged: Sequence[MergedFinding]) -> list[PrevalenceRow]:
    """Every validated row, in the forest plot's order and with its labels; rows without prevalences included (the
    plot counts them as left out)."""
    return [_prevalence_row(item) for item in svgplot.plotted_rows(merged)]


def _prevalence_row(item: Plotted) -> PrevalenceRow:
    row = item.row
    return PrevalenceRow(
        finding=item.finding,
        label=item.label,
        href=item.href,
        a=finite(row.get("prevalence_a")),
        b=finite(row.get("prevalence_b")),
        a_interval=row.get("prevalence_a_ci"),
        b_interval=row.get("prevalence_b_ci"),
        level=finite(row.get("ci_level")),
    )


def svg(rows: Sequence[PrevalenceRow], a_label: str, b_label: str) -> str:
    """The dot plot: a row per finding with prevalences, a hollow dot at a's, a filled one at b's and an arrow from a
    to b; under the axis which dot is which side, and how many findings were left out. Empty when none has any."""
    drawn = [row for row in rows if row.drawn]
    if not drawn:
        return ""
    left_out = len(rows) - len(drawn)
    limit = axis_limit(drawn)
    plotted = TOP + svgplot.ROW * len(drawn) + svgplot.BOTTOM  # the height above the left-out note
    height = plotted + (NOTE if left_out else 0)
    x = svgplot.scale(0.0, limit)
    ticks = [limit * i / 5 for i in range(6)]
    parts = [
        *svgplot.frame(KIND, height, _title(len(drawn), left_out), len(drawn), _heads()),
        STYLE,
        *svgplot.grid(x, ticks, plotted),
        *(_mark(i, row, x) for i, row in enumerate(drawn)),
        *svgplot.tick_labels(x, ticks, plotted, _tick),
        *_legend(plotted, a_label, b_label),
    ]
    if left_out:
        parts.append(f'<text class="note" x="0" y="{height - 8}">{_left_out(left_out)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def axis_limit(rows: Sequence[PrevalenceRow]) -> float:
    """The right end of the axis: the first of LIMITS that holds every prevalence drawn."""
    largest = max((v for row in rows for v in (row.a, row.b) if v is not None), default=0.0)
    return next((limit for limit in LIMITS if largest <= limit), 1.0)


def _title(drawn: int, left_out: int) -> str:
    title = f"Prevalence a → b of {drawn} validated finding{'s' if drawn != 1 else ''}"
    return f"{title}; {_left_out(left_out)}" if left_out else title


def _heads() -> tuple[tuple[float, str], ...]:
    return ((0, "validated finding"), (svgplot.PLOT[0], "share of texts where it holds"), (VALUE_X, "a → b"))


def _left_out(count: int) -> str:
    """Why a validated finding has no dot: only a presence judge's yes/no answers give a share of texts."""
    if count == 1:
        return "1 validated finding not shown: its judge gives a score, not a yes/no presence, so it has no prevalence."
    return (
        f"{count} validated findings not shown: their judges give scores, not a yes/no presence, "
        "so they have no prevalence."
    )


def _mark(index: int, row: PrevalenceRow, x: Scale) -> str:
    """A row as one link to its card: the label, the arrow from a's dot to b's and the numbers, with the full label
    and the intervals in its tooltip."""
    if row.a is None or row.b is None:
        return ""
    middle = svgplot.middle(index)
    xa, xb = x(row.a), x(row.b)
    parts = [
        svgplot.mark_start(KIND, index, row, _tooltip(row)),
        f'<line class="link" x1="{xa}" x2="{xb}" y1="{middle}" y2="{middle}"/>',
        _arrowhead(xa, xb, middle),
        f'<circle class="dot-a" cx="{xa}" cy="{middle}" r="{DOT}"/>',
        f'<circle class="dot-b" cx="{xb}" cy="{middle}" r="{DOT}"/>',
        svgplot.value_text(index, f"{fmt_pct(row.a)} → {fmt_pct(row.b)} ({_points(row.a, row.b)})"),
        "</a>",
    ]
    return "".join(parts)


def _arrowhead(xa: float, xb: float, middle: int) -> str:
    """A triangle pointing at b's dot, touching it; none where the dots are too close for one to show."""
    if abs(xb - xa) <= ARROW + 2 * DOT:
        return ""
    way = 1 if xb > xa else -1
    tip = round(xb - way * DOT, 1)
    back = round(tip - way * ARROW, 1)
    return f'<polygon class="arrow" points="{tip},{middle} {back},{middle - 4} {back},{middle + 4}"/>'


def _points(a: float, b: float) -> str:
    """The change in percentage points between the whole percentages shown beside it, signed: "+29 pts", "−4 pts"."""
    change = round(b * 100) - round(a * 100)
    return "±0 pts" if change == 0 else f"{change:+d} pts".replace("-", "−")


def _tooltip(row: PrevalenceRow) -> str:
    text = f"{row.label}\nshare of texts where it holds: a {fmt_pct(row.a)} → b {fmt_pct(row.b)}"
    if row.a_interval and row.b_interval:
        text += f"; {fmt_level(row.level)} CIs {_range(row.a_interval)} → {_range(row.b_interval)}"
    return text


def _range(interval: tuple[float, float]) -> str:
    return f"{fmt_pct(interval[0])}–{fmt_pct(interval[1])}"


def _legend(height: int, a_label: str, b_label: str) -> list[str]:
    """Under the axis's ends, which dot is which side: a's hollow dot at the left, b's filled one at the right."""
    y = svgplot.axis_base(height) + svgplot.SIDE_GAP - 4
    start, end = svgplot.PLOT
    return [
        f'<circle class="dot-a" cx="{start + DOT}" cy="{y}" r="{DOT}"/>',
        f'<circle class="dot-b" cx="{end - DOT}" cy="{y}" r="{DOT}"/>',
        *svgplot.side_labels(
            height, f"a ({shorten(a_label, SIDE_CHARS)})", f"b ({shorten(b_label, SIDE_CHARS)})", inset=3 * DOT
        ),
    ]


def _tick(value: float) -> str:
    return f"{value * 100:g}%"
