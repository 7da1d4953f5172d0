"""Properties' raw values over many texts, scored a part at a time and kept for every later reader.

Validation reads a property's values twice: the property judge turns them into scores, and the finding states the
property in its own unit on the texts the test used. Both read them from one `Values`, so the texts are scored
once, `PART` at a time: only one part's strings and shared analyses (tokens, sentences) are alive, whatever the
texts are (a list, or rows of the answer store decoded as they are read, `sampletable.TextRows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from lmdelta.properties.base import Property
from lmdelta.properties.batch import PART, Texts


class Values:
    """The raw values of properties over fixed texts, computed on first request, PART texts at a time."""

    def __init__(self, texts: Sequence[str], part: int = PART) -> None:
        self.texts, self.part = texts, part
        self._found: dict[Callable[..., Any], np.ndarray] = {}

    def of(self, props: Iterable[Property]) -> list[np.ndarray]:
        """Each property's values (read-only), one float per text; the properties not scored yet are scored
        together in one pass over the texts (Property.score: shape and presence values checked)."""
        props = list(props)
        todo = {prop.scorer: prop for prop in props if prop.scorer not in self._found}
        if todo:
            pieces: dict[Callable[..., Any], list[np.ndarray]] = {scorer: [] for scorer in todo}
            for start in range(0, len(self.texts), self.part):
                batch = Texts(self.texts[start : start + self.part])
                for scorer, prop in todo.items():
                    pieces[scorer].append(prop.score(batch))
            for scorer, found in pieces.items():
                values = np.concatenate(found) if found else np.empty(0)
                values.flags.writeable = False
                self._found[scorer] = values
        return [self._found[prop.scorer] for prop in props]
