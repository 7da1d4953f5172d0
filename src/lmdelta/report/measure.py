"""A property finding's raw per-side summary in the property's own unit ("median 131 → 182 words"), beside the
judge-scale effect. Rows of runs without the property proposer (or older ones) have none."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lmdelta.jsonvalues import finite

# The row fields a property judge's findings carry (records.Finding): the measured property's name, which statistic
# of its raw values, that statistic on each side, and the raw values' unit. (`unit` alone is the test's unit.)
MEASURE, RAW_STAT, RAW_A, RAW_B, RAW_UNIT = "measure", "measure_statistic", "measure_a", "measure_b", "measure_unit"
STATISTICS = ("median", "mean", "share")


@dataclass(frozen=True)
class RawSummary:
    measure: str | None
    statistic: str
    a: float
    b: float
    unit: str | None

    def text(self) -> str:
        """Side a first, as the prevalences read: "median 131 → 182 words", "12% → 41% of answers"."""
        if self.statistic == "share":
            return f"{_percent(self.a)} → {_percent(self.b)} of answers"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.statistic} {_number(self.a)} → {_number(self.b)}{unit}"


def raw_summary(row: Mapping[str, Any]) -> RawSummary | None:
    """The row's raw per-side summary, or None when it has none (or only part of one)."""
    a, b, statistic = finite(row.get(RAW_A)), finite(row.get(RAW_B)), row.get(RAW_STAT)
    if a is None or b is None or statistic not in STATISTICS:
        return None
    measure, unit = row.get(MEASURE), row.get(RAW_UNIT)
    return RawSummary(
        measure=str(measure) if measure else None, statistic=str(statistic), a=a, b=b, unit=str(unit) if unit else None
    )


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def _number(value: float) -> str:
    """182, 3.5, 0.42: whole numbers and large ones plain, others to three significant digits."""
    if abs(value) >= 100 or value == round(value):
        return f"{value:.0f}"
    return f"{value:.3g}"
