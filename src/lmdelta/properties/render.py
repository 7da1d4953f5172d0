"""Plain-language sentences comparing two sides on a property, for proposers and reports:

"b's answers are longer: median 182 vs 131 words"
"b uses exclamation marks in more answers: 34% vs 12% of answers"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lmdelta.properties.base import Property

Statistic = Literal["median", "mean", "share"]


@dataclass(frozen=True)
class Contrast:
    """One statistic of a property on the side that has more of it and on the side that has less.
    `share` (the fraction of answers that have it) for presence; `median` or `mean` for amounts."""

    more: float
    less: float
    statistic: Statistic


def contrast(
    prop: Property, more_values: np.ndarray, less_values: np.ndarray, statistic: Statistic | None = None
) -> Contrast:
    """The statistic (default: share for presence, median for amounts) of each side's values, NaN left out."""
    statistic = statistic or ("share" if prop.kind == "presence" else "median")
    reduce = np.nanmedian if statistic == "median" else np.nanmean
    with np.errstate(all="ignore"):
        more, less = (
            float(reduce(v)) if np.any(~np.isnan(v)) else math.nan
            for v in (np.asarray(more_values, float), np.asarray(less_values, float))
        )
    return Contrast(more, less, statistic)


def summary_statistic(prop: Property, values_a: np.ndarray, values_b: np.ndarray) -> Statistic:
    """The statistic that says how two sides differ on a property in its own unit: the share of answers
    that have it for presence; for amounts the median, or the mean where the medians are equal (a mark
    most answers lack has median 0 on both sides, while its mean still tells them apart)."""
    if prop.kind == "presence":
        return "share"
    medians = contrast(prop, values_a, values_b, "median")
    return "mean" if medians.more == medians.less else "median"


def describe(prop: Property, more_label: str, less_label: str, stats: Contrast) -> str:
    """One sentence saying that `more_label` has more of the property than `less_label`, with numbers."""
    if stats.more < stats.less:
        raise ValueError(
            f"{more_label} has less {prop.name} than {less_label} ({stats.more} < {stats.less}): swap the labels"
        )
    if prop.kind == "presence":
        if stats.statistic != "share":
            raise ValueError(f"presence property {prop.name} is compared by share, not {stats.statistic}")
        return (
            f"{more_label} {prop.phrase} in more answers: {_percent(stats.more)} vs {_percent(stats.less)} of answers"
        )
    if stats.statistic == "share":
        raise ValueError(f"amount property {prop.name} is compared by median or mean, not share")
    unit = f" {prop.unit}" if prop.unit else ""
    return (
        f"{_possessive(more_label)} answers {prop.more}: "
        f"{stats.statistic} {_number(stats.more)} vs {_number(stats.less)}{unit}"
    )


def _possessive(label: str) -> str:
    return f"{label}'" if label.endswith("s") else f"{label}'s"


def _percent(share: float) -> str:
    return "n/a" if math.isnan(share) else f"{100 * share:.0f}%"


def _number(value: float) -> str:
    """182, 3.5, 0.42, -0.12: whole numbers plain, others to three significant digits."""
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100 or value == round(value):
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) >= 0.001 else f"{value:.1e}"
