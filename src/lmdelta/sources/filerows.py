"""A file's records read from the file whenever they are read, as a sequence of (line, record): the base of the
CSV, JSON-lines and Parquet readers, which keep no record once it is handed out."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, overload

Row = dict[str, Any]


class FileRows(Sequence[tuple[int, Row]]):
    """(line or row number where the record starts, record) for every record of a file. A subclass reads them
    (`_records`) and says how many there are (`_length`, counted when it opened the file). Iterating reads the file
    again; indexing and slicing read on from the last record read when they lie past it, and take the last WINDOW
    records read from memory (the checks read a few overlapping rows in file order); else they read from the
    start."""

    WINDOW = 1024  # the last records read are kept, so that overlapping slices in file order read nothing again

    def __init__(self) -> None:
        self._length = 0
        self._cursor: Iterator[tuple[int, Row]] | None = None
        self._next = 0  # the position of the record the cursor gives next
        self._recent: deque[tuple[int, Row]] = deque(maxlen=self.WINDOW)  # the records before it

    def _records(self) -> Iterator[tuple[int, Row]]:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[tuple[int, Row]]:
        return self._records()

    @overload
    def __getitem__(self, index: int) -> tuple[int, Row]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, Row]]: ...

    def __getitem__(self, index: int | slice) -> tuple[int, Row] | list[tuple[int, Row]]:
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(len(self)))]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        return self._at(position)

    def _at(self, position: int) -> tuple[int, Row]:
        if self._cursor is None or position < self._next - len(self._recent):  # before the oldest record kept
            self._cursor, self._next = self._records(), 0
            self._recent.clear()
        while self._next <= position:
            self._recent.append(next(self._cursor))
            self._next += 1
        return self._recent[position - (self._next - len(self._recent))]
