"""Counting words and phrases from a lexicon in every text of a batch at once.

Each lexicon entry is tokenised like the texts (text.tokens), so it matches whole words, in any
case, across any whitespace, with ' or ’ alike; punctuation inside an entry ("absolutely!") matches
any run of punctuation there. Matches do not overlap: at each position the longest entry wins, as
in a regex alternation of the entries longest first. Candidate positions come from one vectorised
look-up of each entry's first word; only those few are checked in Python.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from lmdelta.properties.batch import Texts
from lmdelta.properties.text import tokens


class PhraseMatcher:
    """Counts non-overlapping occurrences of any of the phrases in each text."""

    def __init__(self, phrases: tuple[str, ...] | list[str]) -> None:
        by_first: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        for phrase in phrases:
            entry = tuple(tokens(phrase))
            if not entry:
                raise ValueError(f"lexicon entry {phrase!r} has no word in it")
            by_first[entry[0]].add(entry)
        self._by_first = {first: sorted(entries, key=len, reverse=True) for first, entries in by_first.items()}
        self._first_hashes = np.fromiter(map(hash, self._by_first), dtype=np.int64).view(np.uint64)

    def count(self, batch: Texts) -> np.ndarray:
        """Matches per text."""
        counts = np.zeros(len(batch))
        flat, owner, ends = batch.flat_tokens, batch.owner, batch.ends
        free = 0
        for position in np.flatnonzero(np.isin(batch.hashes, self._first_hashes)).tolist():
            if position < free:
                continue
            text = int(owner[position])
            for entry in self._by_first.get(flat[position], ()):
                stop = position + len(entry)
                if stop <= ends[text] and tuple(flat[position:stop]) == entry:
                    counts[text] += 1
                    free = stop
                    break
        return counts
