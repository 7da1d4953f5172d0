"""A corpus's rows as columns: what the prompts stage reads, without an object per text.

A corpus of 2,000,000 texts parsed into `CorpusRow` objects held 1.3 GB (a slotted record and a text string each,
on top of the file's own table); here the texts are one UTF-8 buffer, memory-mapped from a temporary file past
`SPILL_BYTES` as a `SampleTable`'s are, and the other columns small arrays (prompt ids, prompts, groups and clusters
as codes into their distinct values). A `CorpusTable` is a read-only sequence of `CorpusRow`: indexing or iterating
builds the record on the fly, and the column readers (`texts`, `prompt_ids`, `side_codes`) serve the checks and the
stage's loops over every text.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from lmdelta.records import Side
from lmdelta.sampletable import SPILL_BYTES, CodeBuilder, Codes, StringBuilder, Strings, TextRows
from lmdelta.sources.corpus_checks import TextArtefact


@dataclass(frozen=True, slots=True)
class CorpusRow:
    side: Side
    text: str
    prompt_id: str | None
    prompt: str | None
    group: str | None
    source: str  # "FILE line" or "FILE row", shared by every row of a file
    line: int
    cluster: str | None = None  # unaligned corpora: texts that are not independent of each other

    @property
    def where(self) -> str:
        """File and line, for messages."""
        return f"{self.source} {self.line}"


@dataclass(frozen=True)
class _Columns:
    side: Codes[str]
    text: Strings
    prompt_id: Codes[str | None]
    prompt: Codes[str | None]
    group: Codes[str | None]
    cluster: Codes[str | None]
    source: Codes[str]
    line: np.ndarray

    def take(self, rows: np.ndarray) -> _Columns:
        return _Columns(
            self.side.take(rows),
            self.text.take(rows),
            self.prompt_id.take(rows),
            self.prompt.take(rows),
            self.group.take(rows),
            self.cluster.take(rows),
            self.source.take(rows),
            self.line[rows],
        )


class CorpusTable(Sequence[CorpusRow]):
    """A corpus's rows as columns (module docstring), and the export artefacts found in its texts when it was read.
    Equal to any sequence of the same rows in the same order."""

    BLOCK = 1 << 16  # rows built at a time when iterating

    def __init__(self, columns: _Columns, artefacts: Sequence[TextArtefact] = ()) -> None:
        self._c = columns
        self.artefacts = list(artefacts)

    def __len__(self) -> int:
        return len(self._c.line)

    @overload
    def __getitem__(self, i: int) -> CorpusRow: ...
    @overload
    def __getitem__(self, i: slice) -> CorpusTable: ...

    def __getitem__(self, i: int | slice) -> CorpusRow | CorpusTable:
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"corpus row {i} of {n}")
        return self._rows(range(i % n, i % n + 1))[0]

    def __iter__(self) -> Iterator[CorpusRow]:
        for start in range(0, len(self), self.BLOCK):
            yield from self._rows(range(start, min(start + self.BLOCK, len(self))))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str) or len(other) != len(self):
            return False
        return all(mine == theirs for mine, theirs in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # mutable-looking sequences are unhashable, like a list

    def __repr__(self) -> str:
        return f"CorpusTable({len(self)} rows)"

    def _rows(self, rows: range) -> list[CorpusRow]:
        c = self._c
        columns = (c.side, c.prompt_id, c.prompt, c.group, c.source, c.cluster)
        side, prompt_id, prompt, group, source, cluster = (column.many(rows) for column in columns)
        texts, lines = c.text.many(rows), c.line[rows.start : rows.stop].tolist()
        return [CorpusRow(*fields) for fields in zip(side, texts, prompt_id, prompt, group, source, lines, cluster)]

    def texts(self, rows: np.ndarray | None = None) -> TextRows:
        """The texts of `rows` (all by default), decoded as they are read."""
        strings = self._c.text if rows is None else self._c.text.take(rows)
        return TextRows(strings)

    def where(self, i: int) -> str:
        """Row i's file and line, for messages."""
        return f"{self._c.source.get(i)} {int(self._c.line[i])}"

    def sides(self) -> list[str]:
        return self._c.side.many()

    def side_codes(self) -> Codes[str]:
        return self._c.side

    def side_rows(self, side: str) -> np.ndarray:
        """The row numbers of a side's texts, in file order."""
        values = self._c.side.values
        if side not in values:
            return np.zeros(0, dtype=np.intp)
        return np.flatnonzero(self._c.side.codes == values.index(side))

    def prompt_ids(self) -> list[str | None]:
        return self._c.prompt_id.many()

    def codes(self, column: str) -> Codes[str | None]:
        """A column of optional values as codes: prompt_id, prompt, group or cluster."""
        found: Codes[str | None] = getattr(self._c, column)
        return found

    def take(self, rows: np.ndarray) -> CorpusTable:
        """The rows given (row numbers), sharing the texts' buffer."""
        return CorpusTable(self._c.take(np.asarray(rows, dtype=np.intp)), self.artefacts)

    def without_clusters(self) -> CorpusTable:
        """The same rows with no cluster (a corpus aligned by prompt ids ignores a cluster column)."""
        c = self._c
        none: Codes[str | None] = Codes([None], np.zeros(len(self), dtype=np.uint8))
        columns = _Columns(c.side, c.text, c.prompt_id, c.prompt, c.group, none, c.source, c.line)
        return CorpusTable(columns, self.artefacts)

    def with_artefacts(self, artefacts: Sequence[TextArtefact]) -> CorpusTable:
        return CorpusTable(self._c, artefacts)

    def nbytes(self) -> int:
        """Bytes held in memory by the columns (a mapped text buffer's are the file's, not counted)."""
        c = self._c
        codes = (c.side, c.prompt_id, c.prompt, c.group, c.cluster, c.source)
        return c.text.nbytes() + c.line.nbytes + sum(column.codes.nbytes for column in codes)


class CorpusBuilder:
    """A CorpusTable grown a row at a time (no row object survives `add`)."""

    def __init__(self, spill_bytes: int | None = SPILL_BYTES) -> None:
        self.side: CodeBuilder[str] = CodeBuilder("B")
        self.source: CodeBuilder[str] = CodeBuilder("B")
        self.optional: dict[str, CodeBuilder[str | None]] = {
            name: CodeBuilder("B") for name in ("prompt_id", "prompt", "group", "cluster")
        }
        self.text = StringBuilder(spill_bytes)
        self.line = array("q")

    def __len__(self) -> int:
        return len(self.line)

    def add(self, row: CorpusRow) -> None:
        self.side.add(row.side)
        self.source.add(row.source)
        self.text.add(row.text)
        self.line.append(row.line)
        optional = self.optional
        optional["prompt_id"].add(row.prompt_id)
        optional["prompt"].add(row.prompt)
        optional["group"].add(row.group)
        optional["cluster"].add(row.cluster)

    def table(self) -> CorpusTable:
        optional = {name: builder.codes() for name, builder in self.optional.items()}
        line = np.frombuffer(self.line, dtype=np.int64)
        columns = _Columns(self.side.codes(), self.text.strings(), source=self.source.codes(), line=line, **optional)
        return CorpusTable(columns)
