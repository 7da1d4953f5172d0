"""Texts: the texts being scored, with the analyses several properties share, each computed once.

Scoring the whole catalogue over one Texts tokenises, splits sentences and strips code once, not
once per property. A Texts is an immutable tuple of the strings, so any scorer that takes a
sequence of texts takes it; `Property.score` wraps a plain list in one.

Tokens of all texts are kept concatenated ("flat") with numpy arrays saying which text each belongs
to, so counting and matching run over the whole batch at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property
from itertools import chain
from typing import Any, Self

import numpy as np

from lmdelta.properties.text import BARRIER, prose, sentences, tokens

PART = 20_000  # texts whose shared analyses are held at once by Texts.score_in_parts


class Texts(tuple):
    """An immutable batch of texts with lazily computed, cached shared analyses."""

    def __new__(cls, texts: Iterable[str] = ()) -> Self:
        batch = super().__new__(cls, texts)
        bad = next((text for text in batch if not isinstance(text, str)), None)
        if bad is not None:
            raise TypeError(f"texts must be strings, not {type(bad).__name__}: {bad!r:.60}")
        return batch

    def memo(self, key: object, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """compute() the first time for this key (a scorer), the stored result after: a presence view
        reuses its amount's values. The result is read-only so no caller can change another's."""
        results = self.__dict__.setdefault("_results", {})
        if key not in results:
            values = np.array(compute(), dtype=float)  # a copy: a scorer may return a shared analysis
            values.flags.writeable = False
            results[key] = values
        return results[key]

    def score_in_parts(self, scorers: Iterable[Callable[[Texts], Any]], part: int = PART) -> None:
        """Compute the scorers' values `part` texts at a time, each part's analyses shared by all the scorers and
        dropped before the next part, and keep the values as `memo` would. The analyses hold several times the
        texts' size (Python strings per token), so a batch of 600,000 answers would hold gigabytes of them at
        once; a part holds a bounded amount. The values are the same: every scorer scores each text by itself."""
        results = self.__dict__.setdefault("_results", {})
        todo = [scorer for scorer in dict.fromkeys(scorers) if scorer not in results]
        if len(self) <= part or not todo:
            return
        pieces: dict[Any, list[np.ndarray]] = {scorer: [] for scorer in todo}
        for start in range(0, len(self), part):
            texts = Texts(self[start : start + part])
            for scorer in todo:
                pieces[scorer].append(np.array(scorer(texts), dtype=float))
        for scorer in todo:
            values = np.concatenate(pieces.pop(scorer))
            values.flags.writeable = False
            results[scorer] = values

    def drop_analyses(self) -> None:
        """Forget the shared analyses (tokens, their hashes and owners, sentences, prose), keeping every scored
        property: they hold several times the texts' size and are needed only while properties are scored. A
        property scored later computes what it needs again."""
        results = self.__dict__.get("_results")
        self.__dict__.clear()
        if results is not None:
            self.__dict__["_results"] = results

    @cached_property
    def prose(self) -> list[str]:
        """Each text with fenced code blocks replaced (text.prose)."""
        return [prose(text) for text in self]

    @cached_property
    def sentences(self) -> list[list[str]]:
        """Each text's prose sentences (text.sentences)."""
        return [sentences(text) for text in self.prose]

    @cached_property
    def _tokenised(self) -> tuple[list[str], np.ndarray]:
        lists = [tokens(text) for text in self]
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        return list(chain.from_iterable(lists)), counts

    @property
    def flat_tokens(self) -> list[str]:
        """All texts' tokens (text.tokens: words and barriers), concatenated in order."""
        return self._tokenised[0]

    @cached_property
    def owner(self) -> np.ndarray:
        """The index of the text each flat token belongs to."""
        return np.repeat(np.arange(len(self)), self._tokenised[1])

    @cached_property
    def ends(self) -> np.ndarray:
        """For each text, the flat index one past its last token."""
        return np.cumsum(self._tokenised[1])

    @cached_property
    def hashes(self) -> np.ndarray:
        """Python's hash of each flat token, as uint64 (equal tokens, equal hashes, within a process)."""
        flat = self.flat_tokens
        return np.fromiter(map(hash, flat), dtype=np.int64, count=len(flat)).view(np.uint64)

    @cached_property
    def is_word(self) -> np.ndarray:
        """Whether each flat token is a word (not a barrier)."""
        return self.hashes != np.int64(hash(BARRIER)).view(np.uint64)

    @cached_property
    def word_counts(self) -> np.ndarray:
        """Words per text (barriers left out)."""
        return np.bincount(self.owner[self.is_word], minlength=len(self)).astype(float)


def as_texts(texts: Iterable[str]) -> Texts:
    """The batch itself if it is one already (keeping its cached analyses), else a new one."""
    return texts if isinstance(texts, Texts) else Texts(texts)
