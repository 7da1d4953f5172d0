"""Per-hypothesis scores kept in the narrowest type that holds every value exactly, read back as float64.

Validation holds one score per validation text per hypothesis until its tests have run: at 2,000,000 texts the
null control's 147 hypotheses held 1.6 GB of float64. Most judges need far less: the keyword and presence judges
give 0 or 1 (a byte each), the embedding judge's similarities are float32 numbers, and only scores that need
float64 (an LLM judge's probabilities, the property judges' rescaled values) stay float64. Nothing is rounded: a
score is narrowed only when widening it again gives back the same bits, so every result is unchanged. Reading
always gives float64 (a copy for the narrowed ones), so no arithmetic ever meets a narrow type (uint8
differences wrap around; float16 sums lose digits).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableSequence
from typing import Any, overload

import numpy as np

NARROWER = (np.float16, np.float32)


def narrowest(values: Any) -> np.ndarray:
    """The values in the narrowest of uint8 (0 and 1 only), float16 and float32 that keeps each one's bits,
    else as float64."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.size and not np.signbit(values).any() and ((values == 0) | (values == 1)).all():
        return values.astype(np.uint8)
    for dtype in NARROWER:
        with np.errstate(over="ignore", invalid="ignore"):
            narrow = values.astype(dtype)
        if np.array_equal(narrow.astype(np.float64).view(np.uint64), values.view(np.uint64)):
            return narrow
    return values


def widened(values: np.ndarray) -> np.ndarray:
    """Held scores as float64 (the array itself when it is float64 already)."""
    return values if values.dtype == np.float64 else values.astype(np.float64)


class ScoreList(MutableSequence[np.ndarray]):
    """A list of per-hypothesis score arrays, each held by `narrowest` and read as float64 (module docstring)."""

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self._held = [narrowest(v) for v in values]

    def __len__(self) -> int:
        return len(self._held)

    @overload
    def __getitem__(self, i: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, i: slice) -> list[np.ndarray]: ...

    def __getitem__(self, i: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(i, slice):
            return [widened(v) for v in self._held[i]]
        return widened(self._held[i])

    @overload
    def __setitem__(self, i: int, value: Any) -> None: ...

    @overload
    def __setitem__(self, i: slice, value: Iterable[Any]) -> None: ...

    def __setitem__(self, i: int | slice, value: Any) -> None:
        if isinstance(i, slice):
            self._held[i] = [narrowest(v) for v in value]
        else:
            self._held[i] = narrowest(value)

    def __delitem__(self, i: int | slice) -> None:
        del self._held[i]

    def insert(self, index: int, value: Any) -> None:
        self._held.insert(index, narrowest(value))

    def nbytes(self) -> int:
        """The bytes the held arrays take."""
        return sum(v.nbytes for v in self._held)

    def __repr__(self) -> str:
        kinds = sorted({str(v.dtype) for v in self._held})
        return f"ScoreList({len(self)} arrays, {self.nbytes()} bytes, held as {', '.join(kinds) or 'nothing'})"
