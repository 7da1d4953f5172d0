"""Recovery against compute: recall of the injected quirks at several generation budgets, pooled over
seeds and drawn as a small self-contained SVG (for the ground-truth report section and the docs).

A budget is PROMPTS x SAMPLES: the comparison's prompts.limit and generate.samples_per_prompt. Its
cost is counted in generated tokens (both sides), the quantity an adaptive mode has to save.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from html import escape
from typing import Any

WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 48


def mean_by_budget(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points of several seeds pooled per budget: mean tokens and recall, smallest budget first."""
    by_budget: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        by_budget.setdefault(p["budget"], []).append(p)
    pooled = [
        {
            "budget": budget,
            "generated_tokens": statistics.fmean(p["generated_tokens"] for p in members),
            "recall": statistics.fmean(p["recall"] for p in members if p["recall"] is not None),
            "runs": len(members),
        }
        for budget, members in by_budget.items()
        if any(p["recall"] is not None for p in members)
    ]
    return sorted(pooled, key=lambda p: p["generated_tokens"])


def svg(points: Sequence[dict[str, Any]], title: str = "Recall of injected quirks against generated tokens") -> str:
    """A line through each budget's mean recall (dots: single runs) over generated tokens on a log scale."""
    usable = [p for p in points if p.get("recall") is not None and p.get("generated_tokens", 0) > 0]
    if not usable:
        return ""
    pooled = mean_by_budget(usable)
    low, high = _log_range([p["generated_tokens"] for p in usable])

    def x(tokens: float) -> float:
        span = (math.log10(tokens) - low) / (high - low)
        return LEFT + span * (WIDTH - LEFT - RIGHT)

    def y(recall: float) -> float:
        return TOP + (1 - recall) * (HEIGHT - TOP - BOTTOM)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="curve" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        "<style>text{font:11px sans-serif;fill:#333}.grid{stroke:#e3e6ea}.axis{stroke:#9aa4b1}"
        ".line{fill:none;stroke:#2f6db5;stroke-width:2}.mean{fill:#2f6db5}.run{fill:#2f6db5;opacity:.3}</style>",
        *_y_axis(y),
        *_x_axis(x, low, high),
        '<polyline class="line" points="'
        + " ".join(f"{x(p['generated_tokens']):.1f},{y(p['recall']):.1f}" for p in pooled)
        + '"/>',
        *(f'<circle class="run" cx="{x(p["generated_tokens"]):.1f}" cy="{y(p["recall"]):.1f}" r="3"/>' for p in usable),
        *(
            f'<circle class="mean" cx="{x(p["generated_tokens"]):.1f}" cy="{y(p["recall"]):.1f}" r="4">'
            f"<title>{escape(p['budget'])}: recall {p['recall']:.2f}, {p['generated_tokens']:,.0f} tokens"
            f" ({p['runs']} run{'s' if p['runs'] > 1 else ''})</title></circle>"
            f'<text x="{x(p["generated_tokens"]):.1f}" y="{y(p["recall"]) - 8:.1f}" text-anchor="middle">'
            f"{escape(p['budget'])}</text>"
            for p in pooled
        ),
        "</svg>",
    ]
    return "\n".join(parts)


def _log_range(values: Sequence[float]) -> tuple[float, float]:
    low, high = math.log10(min(values)), math.log10(max(values))
    pad = max((high - low) * 0.08, 0.05)
    return low - pad, high + pad


def _y_axis(y) -> list[str]:
    lines = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        lines.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>')
        lines.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
    middle = (HEIGHT - BOTTOM + TOP) / 2
    lines.append(
        f'<text x="14" y="{middle:.1f}" transform="rotate(-90 14 {middle:.1f})" text-anchor="middle">recall</text>'
    )
    return lines


def _x_axis(x, low: float, high: float) -> list[str]:
    base = HEIGHT - BOTTOM
    lines = [f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>']
    for tick in _ticks(low, high):
        lines.append(f'<line class="axis" x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{base}" y2="{base + 4}"/>')
        lines.append(f'<text x="{x(tick):.1f}" y="{base + 16}" text-anchor="middle">{_short(tick)}</text>')
    lines.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
        "generated tokens (both models, log scale)</text>"
    )
    return lines


def _ticks(low: float, high: float) -> list[float]:
    """1, 2, 5 × powers of ten inside the range."""
    ticks = []
    for power in range(math.floor(low), math.ceil(high) + 1):
        for step in (1, 2, 5):
            value = step * 10.0**power
            if low <= math.log10(value) <= high:
                ticks.append(value)
    return ticks


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"
