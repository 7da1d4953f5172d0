"""The keyword judge: does a text contain any of a hypothesis's keywords? Scores are 0 or 1
(presence), free to compute, so every text is scored.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from lmdelta.judges.inputs import JudgeInput
from lmdelta.records import Hypothesis
from lmdelta.words import Keyword, Tokens, tokens


def keyword_presence(keywords: tuple[str, ...], texts: Sequence[str] | Sequence[Tokens]) -> np.ndarray:
    """1.0 when any keyword occurs, else 0.0. A word keyword matches whole words and phrases (any case,
    across any spaces or punctuation between its words); a symbol keyword ("!", "**", "😊") matches
    that symbol. Texts are read as the keyword proposer reads them (lmdelta.words.tokens): escapes
    decoded, Treebank-split contractions joined."""
    return Presence(text if isinstance(text, Tokens) else tokens(text) for text in texts).any_of(keywords)


def score(
    hypotheses: list[Hypothesis], inputs: JudgeInput, judged: list[np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    """The Judge: each hypothesis's keyword presence in every text (`judged` is ignored: it is free). The texts are
    read a shard at a time (Presence.SHARD), each cut into tokens once for all the hypotheses, so only one shard's
    strings and words are alive; what is kept is a byte per (hypothesis, text). The scores go out one hypothesis
    at a time as the caller reads them (`judges.score_hypotheses` holds them narrowed)."""
    if not hypotheses:
        return iter(())
    n, shard = len(inputs.texts), Presence.SHARD
    hits = [np.zeros(n, dtype=bool) for _ in hypotheses]
    for start in range(0, n, shard):
        found = Presence(tokens(text) for text in inputs.texts[start : start + shard])
        for hit, h in zip(hits, hypotheses):
            hit[start : start + found.n] = found.hits(h.keywords)
    return _handed_out(hits)


def _handed_out(hits: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Each hypothesis's presences as floats, its booleans let go as soon as they are handed out."""
    while hits:  # nothing named in this frame outlives the yield
        yield hits.pop(0).astype(float)


class Presence:
    """Which texts hold a keyword, for many keywords over the same texts: the texts' word strings
    (Tokens.spaced, " w1 w2 ") joined into one string per shard of SHARD texts, searched with str.find from
    text to text (a text that holds the keyword is left at once), and each symbol's texts listed once. The
    same answers as `Keyword.found_in` text by text, without a Python call per (keyword, text). Shards keep
    the joining's transient copy to one shard's size; the judge (`score`) makes one Presence per shard of texts, so
    only one shard's words are alive (all 1.4 M validation texts' words at 2M were 0.4 GB)."""

    SEPARATOR = "\x00"  # in no word, so no phrase spans two texts
    SHARD = 1 << 16

    def __init__(self, found: Iterable[Tokens], shard: int = SHARD) -> None:
        """`found` is read once, a text at a time: only each text's word string and symbols are kept."""
        self.shards: list[_Shard] = []
        self.by_symbol: dict[str, list[int]] = {}
        spaced: list[str] = []
        self.n = 0
        for i, t in enumerate(found):
            spaced.append(t.spaced)
            for symbol in t.symbols:
                self.by_symbol.setdefault(symbol, []).append(i)
            if len(spaced) == shard:
                self.shards.append(_Shard.of(spaced, self.n))
                self.n, spaced = self.n + len(spaced), []
        if spaced:
            self.shards.append(_Shard.of(spaced, self.n))
            self.n += len(spaced)

    def any_of(self, keywords: tuple[str, ...]) -> np.ndarray:
        """1.0 for each text that holds any of the keywords, else 0.0."""
        return self.hits(keywords).astype(float)

    def hits(self, keywords: tuple[str, ...]) -> np.ndarray:
        """Whether each text holds any of the keywords."""
        hit = np.zeros(self.n, dtype=bool)
        for keyword in (Keyword.of(k) for k in keywords):
            if keyword.symbol:
                hit[self.by_symbol.get(keyword.key, [])] = True
                continue
            for shard in self.shards:
                hit[shard.holding(f" {keyword.key} ")] = True
        return hit


@dataclass(frozen=True)
class _Shard:
    """Consecutive texts' word strings joined by Presence.SEPARATOR; `first` is the first text's index."""

    joined: str
    starts: list[int]
    first: int

    @classmethod
    def of(cls, spaced: list[str], first: int) -> _Shard:
        starts = list(accumulate((len(s) + 1 for s in spaced[:-1]), initial=0))
        return cls(Presence.SEPARATOR.join(spaced), starts, first)

    def holding(self, needle: str) -> list[int]:
        """The indices (over all shards) of this shard's texts that hold `needle`."""
        out: list[int] = []
        n = len(self.starts)
        position = self.joined.find(needle)
        while position >= 0:
            owner = bisect_right(self.starts, position) - 1
            out.append(self.first + owner)
            if owner + 1 >= n:
                break
            position = self.joined.find(needle, self.starts[owner + 1])
        return out
