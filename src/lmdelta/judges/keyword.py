"""The keyword judge: does a text contain any of a hypothesis's keywords? Scores are 0 or 1
(presence), free to compute, so every text is scored.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from lmdelta.judges.inputs import JudgeInput
from lmdelta.records import Hypothesis
from lmdelta.words import Keyword, Tokens, tokens


def keyword_presence(keywords: tuple[str, ...], texts: list[str] | list[Tokens]) -> np.ndarray:
    """1.0 when any keyword occurs, else 0.0. A word keyword matches whole words and phrases (any case,
    across any spaces or punctuation between its words); a symbol keyword ("!", "**", "😊") matches
    that symbol. Texts are read as the keyword proposer reads them (lmdelta.words.tokens): escapes
    decoded, Treebank-split contractions joined."""
    return Presence(text if isinstance(text, Tokens) else tokens(text) for text in texts).any_of(keywords)


def score(
    hypotheses: list[Hypothesis], inputs: JudgeInput, judged: list[np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    """The Judge: each hypothesis's keyword presence in every text (`judged` is ignored: it is free), one
    hypothesis at a time as the caller reads them (`judges.score_hypotheses` holds them narrowed). Each text is
    cut into tokens once, for all the hypotheses."""
    if not hypotheses:
        return iter(())
    found = Presence(tokens(text) for text in inputs.texts)
    return (found.any_of(h.keywords) for h in hypotheses)


class Presence:
    """Which texts hold a keyword, for many keywords over the same texts: the texts' word strings
    (Tokens.spaced, " w1 w2 ") joined into one string per shard of SHARD texts, searched with str.find from
    text to text (a text that holds the keyword is left at once), and each symbol's texts listed once. The
    same answers as `Keyword.found_in` text by text, without a Python call per (keyword, text). Shards keep
    the joining's transient copy to one shard's size (at 1.4 M validation texts the joined words are 0.4 GB)."""

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
        hit = np.zeros(self.n, dtype=bool)
        for keyword in (Keyword.of(k) for k in keywords):
            if keyword.symbol:
                hit[self.by_symbol.get(keyword.key, [])] = True
                continue
            for shard in self.shards:
                hit[shard.holding(f" {keyword.key} ")] = True
        return hit.astype(float)


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
