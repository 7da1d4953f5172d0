"""Lexical diversity (moving-average type-token ratio) and repetition (repeated word 3-grams).

Both are computed for all texts at once with numpy: each word becomes a 64-bit hash, mixed with its
text's index, and a stable sort finds each word's (or 3-gram's) previous occurrence in the same
text. That is O(N log N) in the total number of words, with no Python loop over words.
"""

from __future__ import annotations

import numpy as np

from lmdelta.properties.batch import Texts

WINDOW = 50
"""MATTR window in words (Covington & McFall 2010 use 50 for short texts)."""
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _word_hashes(batch: Texts) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every word of every text, concatenated, barriers left out; words per text)."""
    return batch.hashes[batch.is_word], batch.word_counts.astype(np.int64)


def _previous(keys: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """For each position, the index of the previous position with the same key in the same text,
    or -1. Positions of one text are contiguous and in order."""
    mixed = keys ^ (owner.astype(np.uint64) * _MIX)
    order = np.argsort(mixed, kind="stable")  # stable: equal keys stay in position order
    previous = np.full(keys.size, -1, dtype=np.int64)
    same = (mixed[order[1:]] == mixed[order[:-1]]) & (owner[order[1:]] == owner[order[:-1]])
    previous[order[1:][same]] = order[:-1][same]
    return previous


def _layout(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text index of each word, index of each text's first word, each word's position in its text)."""
    owner = np.repeat(np.arange(lengths.size), lengths)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    position = np.arange(int(lengths.sum())) - starts[owner]
    return owner, starts, position


def mattr(batch: Texts) -> np.ndarray:
    """Mean share of distinct words over every window of WINDOW consecutive words (the plain
    type-token ratio for a text shorter than a window); NaN for a text with no words."""
    hashes, lengths = _word_hashes(batch)
    owner, starts, position = _layout(lengths)
    prev = _previous(hashes, owner)
    prev_local = np.where(prev >= 0, prev - starts[owner], -1)
    n = lengths[owner]
    window = np.minimum(n, WINDOW)
    last_start = n - window
    # A word is new in every window that contains it and starts after its previous occurrence.
    first = np.maximum(np.maximum(position - window + 1, prev_local + 1), 0)
    new_in = np.maximum(np.minimum(position, last_start) - first + 1, 0)
    total = np.bincount(owner, weights=new_in, minlength=lengths.size)
    windows = (lengths - np.minimum(lengths, WINDOW) + 1) * np.minimum(lengths, WINDOW)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(lengths > 0, total / windows, np.nan)


def repeated_trigrams(batch: Texts) -> np.ndarray:
    """Share of the text's word 3-grams that already occurred earlier in it; NaN for a text with
    fewer than 3 words."""
    hashes, lengths = _word_hashes(batch)
    owner, _, position = _layout(lengths)
    valid = position + 2 < lengths[owner]
    index = np.flatnonzero(valid)
    keys = hashes[index] * _MIX ^ hashes[index + 1]
    keys = keys * _MIX ^ hashes[index + 2]
    repeated = _previous(keys, owner[index]) >= 0
    grams = np.bincount(owner[index], minlength=lengths.size)
    repeats = np.bincount(owner[index], weights=repeated, minlength=lengths.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(grams > 0, repeats / grams, np.nan)
