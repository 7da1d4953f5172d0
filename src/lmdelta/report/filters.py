"""Template filters of the report: numbers, p-values, intervals, keyword highlighting, the CI bar.

Every piece of text from the run goes through escape() before markup is added around it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from markupsafe import Markup, escape

from lmdelta.jsonvalues import finite

DASH = "–"
DEFAULT_CI_LEVEL = 0.95  # runs that wrote no ci_level used 95% intervals


def fmt_num(value: Any, digits: int = 2) -> str:
    number = finite(value)
    return DASH if number is None else f"{number:.{digits}f}"


def effect_digits(*values: Any) -> int:
    """Decimals that show an effect: 2, or up to 4 so a small one (a length property's 0.0015 on its [0, 1]
    scale) reads as two significant figures rather than 0.00."""
    sizes = [abs(n) for n in map(finite, values) if n is not None and n != 0]
    if not sizes or max(sizes) >= 0.01:
        return 2
    return min(4, 1 - math.floor(math.log10(max(sizes))))


def fmt_signed(value: Any, digits: int | None = None) -> str:
    """Effects carry their sign so 'b − a' reads at a glance."""
    number = finite(value)
    return DASH if number is None else f"{number:+.{digits or effect_digits(number)}f}"


def fmt_p(value: Any) -> str:
    """p and q values: fixed point while readable, scientific below 1e-3 (e.g. 3.2e-05)."""
    number = finite(value)
    if number is None:
        return DASH
    if number == 0:
        return "0"
    return f"{number:.1e}" if number < 1e-3 else f"{number:.3f}"


def fmt_pct(value: Any) -> str:
    number = finite(value)
    return DASH if number is None else f"{number * 100:.0f}%"


def fmt_level(value: Any) -> str:
    """A confidence level as a percentage: 0.95 -> 95%, 0.9772 -> 97.7%."""
    number = finite(value)
    if number is None:
        return DASH
    text = f"{number * 100:.1f}"
    if text == "100.0" and number < 1:  # 0.9996 is not a 100% interval
        text = f"{number * 100:.3f}"
    return text.rstrip("0").rstrip(".") + "%"


def fmt_int(value: Any) -> str:
    number = finite(value)
    return DASH if number is None else f"{int(number):,}"


def fmt_ci(interval: tuple[float, float] | None, digits: int | None = None) -> str:
    if interval is None:
        return DASH
    digits = digits or effect_digits(*interval)
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def fmt_decision(value: Any) -> str:
    if value is None:
        return DASH
    return "✓" if value else "·"


def fmt_seconds(value: Any) -> str:
    number = finite(value)
    if number is None:
        return DASH
    if number < 60:
        return f"{number:.1f} s"
    minutes, seconds = divmod(number, 60)
    return f"{int(minutes)} min {seconds:.0f} s"


def highlight(text: Any, keywords: list[str] | None) -> Markup:
    """Escape `text` and wrap whole-word-ish keyword matches in <mark>.

    Matching runs on the raw text and each piece is escaped on its own, so a keyword can never
    match inside an entity such as '&lt;' and no unescaped model output reaches the page.
    """
    text = "" if text is None else str(text)
    pattern = _keyword_pattern(keywords or [])
    if pattern is None:
        return escape(text)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(str(escape(text[last : match.start()])))
        out.append(f"<mark>{escape(match.group(0))}</mark>")
        last = match.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def _keyword_pattern(keywords: list[str]) -> re.Pattern[str] | None:
    words = sorted({k.strip() for k in keywords if k and k.strip()}, key=len, reverse=True)
    if not words:
        return None
    # Longest first so "thank you" wins over "thank"; a short suffix allowance lets "apology"
    # also mark "apologies"-style plurals without marking "cat" inside "category".
    return re.compile("|".join(_keyword_alternative(word) for word in words), re.IGNORECASE)


def _keyword_alternative(word: str) -> str:
    """A keyword as whole words: no word character right before or after it. A keyword that starts or ends with a
    symbol ("!", "**", "?!") needs no boundary on that side: "!" is marked in "care!"."""
    before = r"(?<!\w)" if re.match(r"\w", word) else ""
    after = r"(?:s|es|ed|ing)?(?!\w)" if re.search(r"\w$", word) else ""
    return f"{before}{re.escape(word)}{after}"


def ci_bar(
    interval: tuple[float, float] | None,
    effect: Any,
    level: Any = DEFAULT_CI_LEVEL,
    inner: tuple[float, float] | None = None,
    kind: str = "",
) -> Markup:
    """A small inline SVG: the effect's interval on a fixed [-1, 1] axis with 0 marked.

    `inner`, when given, is a narrower interval drawn darker inside the band (the plain interval
    inside a selection-adjusted one); `kind` adds a CSS class (e.g. "rep" for a replication estimate)."""
    if interval is None:
        return Markup("")
    width, pad, height = 180, 8, 22

    def x(value: float) -> float:
        clipped = min(1.0, max(-1.0, value))
        return round(pad + (clipped + 1) / 2 * (width - 2 * pad), 1)

    def band(low: float, high: float, css: str, y: int, h: int) -> str:
        return (
            f'<rect x="{x(low)}" y="{y}" width="{max(1.5, round(x(high) - x(low), 1))}" height="{h}" rx="2" '
            f'class="{css}"/>'
        )

    low, high = interval
    point = finite(effect)
    label = f"effect {fmt_signed(point)}, {fmt_level(level)} CI {fmt_ci(interval)} on an axis from -1 to 1"
    parts = [
        f'<svg class="ci {escape(kind)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">',
        f'<line x1="{pad}" y1="11" x2="{width - pad}" y2="11" class="axis"/>',
        f'<line x1="{x(0)}" y1="3" x2="{x(0)}" y2="19" class="zero"/>',
        band(low, high, "band", 7, 8),
    ]
    if inner is not None:
        parts.append(band(inner[0], inner[1], "band inner", 9, 4))
    if point is not None:
        parts.append(f'<circle cx="{x(point)}" cy="11" r="3.5" class="point"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
