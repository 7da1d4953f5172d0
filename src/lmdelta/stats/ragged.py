"""Per-prompt scores stored flat: one array of values in prompt order and a count per prompt.

The intervals in `lmdelta.stats.effects` take each prompt's scores as a sequence of arrays. At 700,000
validation prompts a Python list of 1.4 million small arrays per hypothesis cost more than the test itself
(seconds per hypothesis to build and to walk, and hundreds of megabytes while it lived). `Ragged` is still a
sequence of arrays (`len`, indexing, iteration), so every function that takes the list takes it, and the
functions that need only the flat values and the counts (`flatten`) read them without a loop over prompts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Ragged(Sequence):
    """values[start_p : start_p + counts[p]] are prompt p's scores, prompts in order."""

    values: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        if int(self.counts.sum()) != self.values.size:
            raise ValueError(f"counts sum to {int(self.counts.sum())}, but there are {self.values.size} values")

    def __len__(self) -> int:
        return int(self.counts.size)

    def __getitem__(self, p):  # one prompt's scores (a view); slices are not needed by any caller
        return self.values[self.starts[p] : self.starts[p] + self.counts[p]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(np.split(self.values, self.starts[1:]))

    @cached_property
    def starts(self) -> np.ndarray:
        """Where each prompt's scores begin in `values` (computed once: indexing prompt by prompt stays linear)."""
        return np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(int)


def flatten(groups: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(finite values in prompt order, finite values per prompt) of per-prompt scores: a Ragged without a
    loop over prompts, any other sequence of arrays prompt by prompt."""
    if isinstance(groups, Ragged):
        values, counts = np.asarray(groups.values, dtype=float), np.asarray(groups.counts, dtype=int)
        finite = np.isfinite(values)
        if finite.all():
            return values, counts
        prompt = np.repeat(np.arange(counts.size), counts)
        return values[finite], np.bincount(prompt[finite], minlength=counts.size)
    parts = [np.asarray(x, dtype=float).ravel() for x in groups]
    parts = [x[np.isfinite(x)] for x in parts]
    counts = np.array([x.size for x in parts], dtype=int)
    return (np.concatenate(parts) if parts else np.zeros(0)), counts
