"""Numbers as the run directory's JSON holds them: a finite float or None, numpy scalars as plain
Python values. One definition for the stages that write results and the report that reads them."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> float | None:
    """The value as a finite float, or None (None, NaN, infinities, booleans and non-numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def plain(value: Any) -> Any:
    """JSON has no NaN: null instead, plain floats instead of numpy scalars, in dicts and lists too."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
