"""The report's weights section, its two plots: the top singular values of the most-changed matrices' ΔW over the
random-matrix edge (spectrum), and the relative change per layer and module type (heat strip).

Pure: rows in, inline SVG markup out, no plotting library; every piece of text from the run is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from lmdelta.report.filters import fmt_int, fmt_num
from lmdelta.report.svgplot import shorten

# The spectrum: a log-y plot of σᵢ / edge against i, its legend to the right.
WIDTH, HEIGHT = 960, 330
PLOT_X, PLOT_Y = (64, 580), (24, 282)
LEGEND_X, LEGEND_ROW, LEGEND_CHARS = 604, 46, 40
MARKERS = ("circle", "square", "triangle", "diamond", "ring")
SPECTRUM_STYLE = (
    "<style>"
    ".weights-spectrum text{font-size:12px;fill:var(--muted,#5b6675)}"
    ".weights-spectrum .name{font-size:13px;fill:var(--fg,#1d2430)}"
    ".weights-spectrum .grid{stroke:var(--line,#d8dde4)}"
    ".weights-spectrum .below{fill:var(--soft,#f4f6f9)}"
    ".weights-spectrum .edge{stroke:var(--bad,#a8241a);stroke-width:1.5;stroke-dasharray:6 4}"
    ".weights-spectrum text.edge-label{fill:var(--bad,#a8241a)}"
    ".weights-spectrum .series polyline{fill:none;stroke-width:2}"
    ".weights-spectrum .series .mark{stroke-width:1.5}"
    ".weights-spectrum .s0{stroke:var(--accent,#2453a0);fill:var(--accent,#2453a0)}"
    ".weights-spectrum .s1{stroke:#c0570c;fill:#c0570c}"
    ".weights-spectrum .s2{stroke:#0f7f5f;fill:#0f7f5f}"
    ".weights-spectrum .s3{stroke:#9c4f96;fill:#9c4f96}"
    ".weights-spectrum .s4{stroke:#5b6675;fill:#5b6675}"
    ".weights-spectrum .series text{stroke:none}"
    ".weights-spectrum .mark.ring{fill:var(--card,#fff)}"
    ".weights-spectrum .series:hover polyline{stroke-width:3.5}"
    "</style>"
)

# The heat strip: a row per module type, a column per layer (and one for the matrices outside the blocks).
CELL_MAX, CELL_MIN, CELL_H = 28.0, 8.0, 22
ROW_LABEL, HEAT_TOP, HEAT_RIGHT = 84, 26, 12
LIGHT, DARK = (0xE3, 0xEB, 0xF7), (0x14, 0x31, 0x5C)  # the sequential scale's ends: light blue to dark blue
OUTSIDE = "outside blocks"
GAP, LEGEND_W = 8, 220  # before the column outside the blocks; the colour bar's width
HEAT_MIN_WIDTH = 600  # a narrow screen scrolls the strip's wrapper rather than shrinking its text past reading
HEAT_STYLE = (
    "<style>"
    ".weights-heat text{font-size:12px;fill:var(--muted,#5b6675)}"
    ".weights-heat .module{fill:var(--fg,#1d2430)}"
    ".weights-heat .heat-cell{stroke:var(--card,#fff);stroke-width:1}"
    ".weights-heat .heat-cell:hover{stroke:var(--fg,#1d2430);stroke-width:2}"
    ".weights-heat .heat-empty{fill:none;stroke:var(--line,#d8dde4);stroke-dasharray:2 2}"
    ".weights-heat .legend-bar{stroke:var(--line,#d8dde4)}"
    "</style>"
)


@dataclass(frozen=True)
class Spectrum:
    """One matrix's top singular values of ΔW, each over its Marchenko–Pastur edge (1 = what noise reaches)."""

    name: str
    ratios: tuple[float, ...]
    spikes: int | None = None
    capped: bool = False


@dataclass(frozen=True)
class HeatCell:
    """The matrices of one module type in one layer (None: outside the blocks), together: norms add in squares."""

    layer: int | None
    module: str
    relative_change: float | None
    delta_fro: float | None
    base_fro: float | None
    matrices: int
    spikes: int | None
    effective_rank: float | None
    names: tuple[str, ...] = ()


# ---------------------------------------------------------------- the spectrum


def spectrum_svg(series: Sequence[Spectrum]) -> str:
    """σᵢ / edge against i for each matrix (a line and its marks), on a log axis with the edge at 1 drawn across;
    above it, spikes no random matrix of ΔW's shape and size would give. Empty when no matrix has a value."""
    drawn = [s for s in series if any(r > 0 for r in s.ratios)][: len(MARKERS)]
    if not drawn:
        return ""
    positive = [r for s in drawn for r in s.ratios if r > 0]
    low, high = _log_range([*positive, 1.0])
    count = max(len(s.ratios) for s in drawn)
    x = _linear(1, max(count, 2), PLOT_X)

    def y(value: float) -> float:
        span = (math.log10(value) - low) / (high - low)
        return round(PLOT_Y[1] - min(1.0, max(0.0, span)) * (PLOT_Y[1] - PLOT_Y[0]), 1)

    title = f"Top singular values of ΔW over the random-matrix edge, for the {len(drawn)} most-changed matrices"
    parts = [
        f'<svg class="weights-spectrum" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        SPECTRUM_STYLE,
        *_spectrum_axes(x, y, low, high, count),
        *(_series(i, s, x, y) for i, s in enumerate(drawn)),
        "</svg>",
    ]
    return "\n".join(parts)


def _spectrum_axes(
    x: Callable[[float], float], y: Callable[[float], float], low: float, high: float, count: int
) -> list[str]:
    """The shaded noise region under the edge, the grid, both axes' ticks and names, and the edge line at 1."""
    left, right = PLOT_X
    top, bottom = PLOT_Y
    edge = y(1.0)
    parts = [f'<rect class="below" x="{left}" y="{edge}" width="{right - left}" height="{round(bottom - edge, 1)}"/>']
    for tick in _log_ticks(low, high):
        parts.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{y(tick)}" y2="{y(tick)}"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4}" text-anchor="end">{_tick(tick)}</text>')
    for index in _index_ticks(count):
        parts.append(f'<text x="{x(index)}" y="{bottom + 18}" text-anchor="middle">{index}</text>')
    middle = (top + bottom) / 2
    parts += [
        f'<line class="grid" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>',
        f'<text x="{(left + right) / 2}" y="{HEIGHT - 8}" text-anchor="middle">i (singular values of ΔW, largest '
        "first)</text>",
        f'<text x="14" y="{middle}" transform="rotate(-90 14 {middle})" text-anchor="middle">σᵢ / edge (log)</text>',
        f'<line class="edge" x1="{left}" x2="{right}" y1="{edge}" y2="{edge}"/>',
        f'<text class="edge-label" x="{right - 4}" y="{edge - 6}" text-anchor="end">random-matrix edge '
        "(Marchenko–Pastur) = 1</text>",
    ]
    return parts


def _series(index: int, spectrum: Spectrum, x: Callable[[float], float], y: Callable[[float], float]) -> str:
    """A matrix as one group: its line, a mark per value (each with its number), and its legend entry."""
    css = f"s{index}"
    points = [(i + 1, r) for i, r in enumerate(spectrum.ratios) if r > 0]
    path = " ".join(f"{x(i)},{y(r)}" for i, r in points)
    above = sum(r > 1 for r in spectrum.ratios)
    spikes = spectrum.spikes if spectrum.spikes is not None else above
    summary = f"{spectrum.name}: σ₁ = {fmt_num(spectrum.ratios[0], 1)}× the edge, {fmt_int(spikes)}"
    summary += f"{'+' if spectrum.capped else ''} singular value{'s' if spikes != 1 else ''} above it"
    parts = [
        f'<g class="series {css}" data-matrix="{escape(spectrum.name)}"><title>{escape(summary)}</title>',
        f'<polyline points="{path}"/>',
        *(_marker(MARKERS[index], x(i), y(r), f"σ{i} = {fmt_num(r, 2)}× the edge") for i, r in points),
        *_legend_entry(index, spectrum, spikes),
        "</g>",
    ]
    return "".join(parts)


def _legend_entry(index: int, spectrum: Spectrum, spikes: int) -> list[str]:
    top = PLOT_Y[0] + LEGEND_ROW * index
    detail = f"σ₁ {fmt_num(spectrum.ratios[0], 1)}× edge · {fmt_int(spikes)}{'+' if spectrum.capped else ''} above it"
    return [
        f'<line x1="{LEGEND_X}" x2="{LEGEND_X + 24}" y1="{top + 8}" y2="{top + 8}" stroke-width="2"/>',
        _marker(MARKERS[index], LEGEND_X + 12, top + 8, ""),
        f'<text class="name" x="{LEGEND_X + 32}" y="{top + 12}">{escape(shorten(spectrum.name, LEGEND_CHARS))}</text>',
        f'<text x="{LEGEND_X + 32}" y="{top + 29}">{escape(detail)}</text>',
    ]


def _marker(shape: str, cx: float, cy: float, tooltip: str) -> str:
    """A value's mark: each series its own shape, so the lines tell apart without their colours."""
    title = f"<title>{escape(tooltip)}</title>" if tooltip else ""
    r = 3.5
    if shape in ("circle", "ring"):
        return f'<circle class="mark {shape}" cx="{cx}" cy="{cy}" r="{r}">{title}</circle>'
    if shape == "square":
        return f'<rect class="mark" x="{cx - r}" y="{cy - r}" width="{2 * r}" height="{2 * r}">{title}</rect>'
    corners = (
        ((cx, cy - r - 1), (cx + r + 1, cy + r), (cx - r - 1, cy + r))
        if shape == "triangle"
        else ((cx, cy - r - 1), (cx + r + 1, cy), (cx, cy + r + 1), (cx - r - 1, cy))
    )
    points = " ".join(f"{round(px, 1)},{round(py, 1)}" for px, py in corners)
    return f'<polygon class="mark" points="{points}">{title}</polygon>'


def _log_range(values: Sequence[float]) -> tuple[float, float]:
    """log10 of the smallest and largest value, padded, so no mark sits on the frame."""
    low, high = math.log10(min(values)), math.log10(max(values))
    pad = max((high - low) * 0.06, 0.05)
    return low - pad, high + pad


def _log_ticks(low: float, high: float) -> list[float]:
    """1, 2, 5 × powers of ten inside the range; powers of ten alone when that gives more than eight."""
    steps = [
        step * 10.0**power
        for power in range(math.floor(low), math.ceil(high) + 1)
        for step in (1, 2, 5)
        if low <= math.log10(step * 10.0**power) <= high
    ]
    return steps if len(steps) <= 8 else [v for v in steps if math.log10(v) == round(math.log10(v))]


def _index_ticks(count: int) -> list[int]:
    step = next(s for s in (1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 10**9) if count / s <= 10)
    return sorted({1, *range(step, count + 1, step)})


def _tick(value: float) -> str:
    return f"{value:g}"


def _linear(low: float, high: float, span: tuple[float, float]) -> Callable[[float], float]:
    def at(value: float) -> float:
        return round(span[0] + (value - low) / (high - low) * (span[1] - span[0]), 1)

    return at


# ---------------------------------------------------------------- the heat strip


@dataclass(frozen=True)
class _Grid:
    """Where the strip's cells go: x of each column (a layer, None for outside the blocks), y of each row."""

    columns: tuple[int | None, ...]
    cell_w: float
    rows: dict[str, int]

    @classmethod
    def of(cls, cells: Sequence[HeatCell], modules: Sequence[str]) -> _Grid:
        layers = sorted({c.layer for c in cells if c.layer is not None})
        columns = (*layers, *((None,) if any(c.layer is None for c in cells) else ()))
        cell_w = max(CELL_MIN, min(CELL_MAX, (WIDTH - ROW_LABEL - HEAT_RIGHT - GAP) / len(columns)))
        return cls(columns, round(cell_w, 1), {module: HEAT_TOP + i * CELL_H for i, module in enumerate(modules)})

    def x(self, layer: int | None) -> float:
        """A column's left edge; the one outside the blocks set apart by a gap."""
        return round(ROW_LABEL + self.columns.index(layer) * self.cell_w + (GAP if layer is None else 0), 1)

    @property
    def bottom(self) -> int:
        return HEAT_TOP + CELL_H * len(self.rows)

    @property
    def width(self) -> int:
        """The drawn width: the strip's, or the legend's under a short strip."""
        return max(math.ceil(self.x(self.columns[-1]) + self.cell_w + HEAT_RIGHT), ROW_LABEL + LEGEND_W + 160)


def heat_svg(cells: Sequence[HeatCell], modules: Sequence[str], fmt_change: Callable[[float | None], str]) -> str:
    """A cell per (layer, module type) present, coloured by its relative change on a light-to-dark scale from the
    smallest to the largest; a row per module type in `modules`' order; the matrices outside the blocks
    (embeddings, the output head) in a last column. Each cell's tooltip holds its numbers. Empty without cells."""
    if not cells:
        return ""
    grid = _Grid.of(cells, modules)
    values = [c.relative_change for c in cells if c.relative_change is not None]
    scale = (min(values), max(values)) if values else (0.0, 0.0)
    width, height = grid.width, grid.bottom + 78
    layers = sum(1 for layer in grid.columns if layer is not None)
    title = f"Relative change ‖ΔW‖/‖W_a‖ by layer and module type: {len(cells)} cells, {layers} layers"
    parts = [
        f'<svg class="weights-heat" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'style="max-width:{width}px;min-width:{min(width, HEAT_MIN_WIDTH)}px" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        HEAT_STYLE,
        *(
            f'<text class="module" x="{ROW_LABEL - 8}" y="{top + CELL_H / 2 + 4}" text-anchor="end">'
            f"{escape(module)}</text>"
            for module, top in grid.rows.items()
        ),
        *_column_labels(grid),
        *(_cell(c, grid, scale, fmt_change) for c in cells if c.module in grid.rows),
        *_heat_legend(grid.bottom, scale, fmt_change),
        "</svg>",
    ]
    return "\n".join(parts)


def _column_labels(grid: _Grid) -> list[str]:
    """Layer numbers over the columns (every one where there is room, else every fifth or tenth) and the axis' name."""
    every = 1 if grid.cell_w >= 20 else 5 if grid.cell_w >= 9 else 10
    parts = [
        f'<text x="{round(grid.x(layer) + grid.cell_w / 2, 1)}" y="{HEAT_TOP - 8}" text-anchor="middle">'
        f"{'–' if layer is None else layer}</text>"
        for i, layer in enumerate(grid.columns)
        if layer is None or i % every == 0
    ]
    parts.append(f'<text x="{ROW_LABEL - 8}" y="{HEAT_TOP - 8}" text-anchor="end">layer</text>')
    return parts


def _cell(cell: HeatCell, grid: _Grid, scale: tuple[float, float], fmt_change: Callable[[float | None], str]) -> str:
    where = OUTSIDE if cell.layer is None else f"layer {cell.layer}"
    box = f'x="{grid.x(cell.layer)}" y="{grid.rows[cell.module]}" width="{grid.cell_w}" height="{CELL_H}"'
    if cell.relative_change is None:
        tooltip = f"{where} · {cell.module}: no relative change (W_a is zero)"
        return f'<rect class="heat-empty" {box}><title>{escape(tooltip)}</title></rect>'
    return (
        f'<rect class="heat-cell" data-layer="{"" if cell.layer is None else cell.layer}" '
        f'data-module="{escape(cell.module)}" {box} fill="{colour(cell.relative_change, *scale)}">'
        f"<title>{escape(_cell_tooltip(cell, where, fmt_change))}</title></rect>"
    )


def _cell_tooltip(cell: HeatCell, where: str, fmt_change: Callable[[float | None], str]) -> str:
    lines = [
        f"{where} · {cell.module}: relative change {fmt_change(cell.relative_change)}",
        f"‖ΔW‖ {fmt_num(cell.delta_fro, 3)} of ‖W_a‖ {fmt_num(cell.base_fro, 1)}",
    ]
    if cell.spikes is not None:
        lines.append(f"{fmt_int(cell.spikes)} singular value{'s' if cell.spikes != 1 else ''} above the edge")
    if cell.effective_rank is not None:
        lines.append(f"effective rank {fmt_num(cell.effective_rank, 1)}")
    names = ", ".join(cell.names[:3]) + (f" and {len(cell.names) - 3} more" if len(cell.names) > 3 else "")
    lines.append(f"{cell.matrices} matri{'ces' if cell.matrices != 1 else 'x'}" + (f": {names}" if names else ""))
    return "\n".join(lines)


def _heat_legend(top: float, scale: tuple[float, float], fmt_change: Callable[[float | None], str]) -> list[str]:
    """The colour scale under the strip: a bar from the smallest relative change to the largest, both named."""
    left, width, y = ROW_LABEL, LEGEND_W, top + 30
    stops = "".join(
        f'<stop offset="{i / 4}" stop-color="{colour(scale[0] + (scale[1] - scale[0]) * i / 4, *scale)}"/>'
        for i in range(5)
    )
    return [
        f'<defs><linearGradient id="weights-heat-scale">{stops}</linearGradient></defs>',
        f'<text x="{left}" y="{y - 8}">relative change ‖ΔW‖/‖W_a‖ of each cell</text>',
        f'<rect class="legend-bar" x="{left}" y="{y}" width="{width}" height="12" fill="url(#weights-heat-scale)"/>',
        f'<text x="{left}" y="{y + 28}">{escape(fmt_change(scale[0]))} (smallest)</text>',
        f'<text x="{left + width}" y="{y + 28}" text-anchor="end">{escape(fmt_change(scale[1]))} (largest)</text>',
    ]


def colour(value: float, low: float, high: float) -> str:
    """The scale's colour of a value: LIGHT at `low`, DARK at `high`, straight between (one hue, darker = more)."""
    share = 0.5 if high <= low else min(1.0, max(0.0, (value - low) / (high - low)))
    rgb = (round(a + (b - a) * share) for a, b in zip(LIGHT, DARK))
    return "#" + "".join(f"{channel:02x}" for channel in rgb)
