"""What a dataset loader hands back: raw items with their group and where they were read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceItem:
    text: str  # the item itself (a statement, a question, the start of a sentence), stripped
    group: str | None  # the behaviour, category or domain it belongs to
    where: str  # "path:line", for messages
