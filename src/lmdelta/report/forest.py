"""The report's overview: every validated finding's effect with its interval, as one inline SVG forest plot.

Pure: finding rows in, markup out, no plotting library; every piece of text from the run is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lmdelta.jsonvalues import finite
from lmdelta.report import svgplot
from lmdelta.report.filters import fmt_ci, fmt_level, fmt_signed
from lmdelta.report.merge import MergedFinding
from lmdelta.report.svgplot import SIDE_CHARS, TOP, VALUE_X, Plotted, Scale, shorten

KIND = "forest"  # the plot's class (forest-plot) and its rows' (forest-mark)
LIMITS = (
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
)  # the axis runs from -limit to +limit: the first that holds all; ticks at halves
STYLE = svgplot.style(
    KIND,
    (
        ".forest-plot .zero{stroke:var(--fg,#1d2430);stroke-width:1.5}",
        ".forest-plot .ci{stroke-width:2;stroke-linecap:round}",
        ".forest-plot .ci.inner{stroke-width:6;stroke-linecap:butt}",
        ".forest-plot .to-b .ci,.forest-plot .to-b .point{stroke:var(--accent,#2453a0);fill:var(--accent,#2453a0)}",
        ".forest-plot .to-a .ci,.forest-plot .to-a .point{stroke:#5b6675;fill:#5b6675}",
        ".forest-plot .to-none .ci,.forest-plot .to-none .point{stroke:#9aa4b1;fill:#9aa4b1}",
    ),
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
    return [_forest_row(item) for item in svgplot.plotted_rows(merged)]


def _forest_row(item: Plotted) -> ForestRow:
    row = item.row
    plain, adjusted = row.get("effect_ci"), row.get("effect_ci_fcr")
    return ForestRow(
        finding=item.finding,
        label=item.label,
        href=item.href,
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
    height = TOP + svgplot.ROW * len(rows) + svgplot.BOTTOM
    x = svgplot.scale(-limit, limit)
    title = f"Effect (b − a) of {len(rows)} validated finding{'s' if len(rows) != 1 else ''}, with intervals"
    heads = ((0, "validated finding"), (VALUE_X, "effect (b − a) [interval]"))
    parts = [
        *svgplot.frame(KIND, height, title, len(rows), heads),
        STYLE,
        *svgplot.grid(x, (-limit, -limit / 2, limit / 2, limit), height),
        f'<line class="zero" x1="{x(0)}" x2="{x(0)}" y1="{TOP - 4}" y2="{height - svgplot.BOTTOM + 4}"/>',
        *(_mark(i, row, x) for i, row in enumerate(rows)),
        *svgplot.tick_labels(x, (-limit, -limit / 2, 0.0, limit / 2, limit), height, _tick),
        *svgplot.side_labels(
            height,
            f"← more in a ({shorten(a_label, SIDE_CHARS)})",
            f"more in b ({shorten(b_label, SIDE_CHARS)}) →",
        ),
        "</svg>",
    ]
    return "\n".join(parts)


def axis_limit(rows: Sequence[ForestRow]) -> float:
    """The smallest round half-width that holds every effect and interval (judge-score effects lie in −1…1)."""
    values = [abs(v) for row in rows for v in (row.effect, *(row.interval or ()), *(row.inner or ())) if v is not None]
    largest = max(values, default=0.0)
    fitting = [limit for limit in LIMITS if largest <= limit]
    return fitting[0] if fitting else float(math.ceil(largest))


def _mark(index: int, row: ForestRow, x: Scale) -> str:
    """A row as one link to its card: the label, the interval (the plain one thicker inside an adjusted one), the
    point and the numbers, with the full label and intervals in its tooltip."""
    middle = svgplot.middle(index)
    side = "to-none" if not row.effect else "to-b" if row.effect > 0 else "to-a"
    parts = [svgplot.mark_start(KIND, index, row, _tooltip(row), side)]
    for interval, css in ((row.interval, "ci"), (row.inner, "ci inner")):
        if interval is not None:
            parts.append(
                f'<line class="{css}" x1="{x(interval[0])}" x2="{x(interval[1])}" y1="{middle}" y2="{middle}"/>'
            )
    if row.effect is not None:
        parts.append(f'<circle class="point" cx="{x(row.effect)}" cy="{middle}" r="4.5"/>')
    value = f"{fmt_signed(row.effect)} {fmt_ci(row.interval)}" if row.interval else f"{fmt_signed(row.effect)}"
    parts.append(svgplot.value_text(index, value))
    parts.append("</a>")
    return "".join(parts)


def _tooltip(row: ForestRow) -> str:
    if row.interval is None:
        return f"{row.label}\neffect {fmt_signed(row.effect)}, no interval"
    text = f"{row.label}\neffect {fmt_signed(row.effect)}, {fmt_level(row.level)} CI {fmt_ci(row.interval)}"
    if row.inner is not None:
        text += f" (adjusted for selection); plain {fmt_level(row.inner_level)} CI {fmt_ci(row.inner)}"
    return text


def _tick(value: float) -> str:
    return "0" if value == 0 else f"{value:+.2f}".rstrip("0").rstrip(".")  # signed as the effects beside it
