"""A run's answers as columns: what every stage reads, without an object per answer.

At 2,000,000 answers a list of `Sample` objects held 1.1 GB (a slotted object, a text string, a key string
each); here the texts are one UTF-8 buffer, the keys another, and the rest small arrays (prompt ids and the
two repeated strings as codes). A `SampleTable` is a read-only sequence of `Sample`: indexing or iterating
builds the record on the fly, so code that reads `samples[i].text` works unchanged, and the column readers
(`texts`, `prompt_ids`, `is_b`) serve the loops that touch every answer. Selecting rows (`take`) and the null
control's side swap (`with_swapped`) share the buffers.

Past SPILL_BYTES of text (about 800,000 answers of 300 characters) the texts go to an unlinked temporary file,
memory-mapped: their pages count towards the process's memory only while read, and a reader of many rows
(`texts`) lets them go again (`heap.release_mapped`), as the vectors' readers do. At 2,000,000 answers that keeps
0.65 GB of text out of every stage's resident memory.
"""

from __future__ import annotations

import logging
import operator
import os
import tempfile
import weakref
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

import numpy as np

from lmdelta import heap
from lmdelta.records import SIDES, Sample

log = logging.getLogger(__name__)
SPILL_BYTES = 256 * 2**20  # texts past this many bytes are memory-mapped from a temporary file
MANY_ROWS = 4096  # reading this many texts from a mapped buffer lets its pages go afterwards
V = TypeVar("V")


class Strings:
    """Strings in one UTF-8 buffer, the i-th at buffer[starts[i]:ends[i]]; rows taken share the buffer."""

    def __init__(self, buffer: bytes | bytearray | np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.buffer: Any = buffer  # anything whose slices are bytes-like: str(slice, "utf-8") reads a string
        self.starts, self.ends = starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def get(self, i: int) -> str:
        return str(self.buffer[self.starts[i] : self.ends[i]], "utf-8")

    def many(self, rows: Iterable[int]) -> list[str]:
        buffer, starts, ends = self.buffer, self.starts, self.ends
        found = [str(buffer[starts[i] : ends[i]], "utf-8") for i in rows]
        if len(found) >= MANY_ROWS:
            heap.release_mapped(buffer)
            if heap.mapping_of(starts) is not None:  # mapped offsets (`samplecolumns`): 16 bytes an answer
                heap.release_mapped(starts)
        return found

    @property
    def mapped(self) -> bool:
        """Whether the buffer is a memory-mapped file (past SPILL_BYTES, or `samplecolumns`)."""
        return heap.mapping_of(self.buffer) is not None

    def take(self, rows: np.ndarray) -> Strings:
        return Strings(self.buffer, self.starts[rows], self.ends[rows])

    def nbytes(self) -> int:
        """Bytes held in memory (a mapped buffer's are the file's, not counted)."""
        return (0 if self.mapped else len(self.buffer)) + held(self.starts) + held(self.ends)

    def joined(self, other: Strings) -> Strings:
        """These strings, then the other's, in a buffer of their own."""
        builder = StringBuilder(SPILL_BYTES)
        for strings in (self, other):
            for start, end in zip(strings.starts.tolist(), strings.ends.tolist()):
                builder.add_bytes(bytes(strings.buffer[start:end]))
        return builder.strings()


class TextRows(Sequence[str]):
    """Some rows' texts, decoded only as they are read: a loop over every validation text holds one block of
    strings at a time, not all of them (at 2,000,000 answers the validation texts as strings were 0.5 GB).
    Iterating decodes BLOCK texts at a time and lets a mapped buffer's pages go after each block (of MANY_ROWS or
    more); indexing decodes one text; slicing gives the rows sliced, still undecoded (so `texts[start:stop]` is how a
    caller reads a block, at the block's cost)."""

    BLOCK = 1 << 16

    def __init__(self, strings: Strings) -> None:
        self._strings = strings

    def __len__(self) -> int:
        return len(self._strings)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> TextRows: ...

    def __getitem__(self, i: int | slice) -> str | TextRows:
        if isinstance(i, slice):
            picked = range(len(self))[i]
            return TextRows(self._strings.take(np.arange(picked.start, picked.stop, picked.step)))
        i, n = operator.index(i), len(self)  # an int, or a TypeError as a list gives
        if not -n <= i < n:
            raise IndexError(f"text {i} of {n}")
        return self._strings.get(i % n)

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), self.BLOCK):
            yield from self._strings.many(range(start, min(start + self.BLOCK, len(self))))

    def __repr__(self) -> str:
        return f"TextRows({len(self)} texts)"


class Codes(Generic[V]):
    """Repeated values (strings; a corpus's optional columns also None) as integer codes into their distinct
    values, in order of first appearance."""

    def __init__(self, values: list[V], codes: np.ndarray) -> None:
        self.values, self.codes = values, codes

    def get(self, i: int) -> V:
        return self.values[self.codes[i]]

    def many(self, rows: Iterable[int] | None = None) -> list[V]:
        values = self.values
        codes = self.codes if rows is None else self.codes[_positions(rows)]
        return [values[c] for c in codes.tolist()]

    def take(self, rows: np.ndarray) -> Codes[V]:
        return Codes(self.values, self.codes[rows])

    def joined(self, other: Codes[V]) -> Codes[V]:
        """These codes, then the other's, over the union of the values (this one's first)."""
        values = list(self.values)
        found = {v: k for k, v in enumerate(values)}
        for value in other.values:
            if value not in found:
                found[value] = len(values)
                values.append(value)
        mapping = np.array([found[v] for v in other.values], dtype=np.int64)
        codes = np.concatenate([self.codes.astype(np.int64), mapping[other.codes]]) if other.values else self.codes
        dtype = np.uint8 if len(values) <= 256 and self.codes.dtype == np.uint8 else np.int32
        return Codes(values, codes.astype(dtype))


class SampleTable(Sequence[Sample]):
    """Answers as columns (module docstring). Equal to any sequence of the same samples in the same order."""

    def __init__(
        self,
        prompt: Codes[str],
        side: Codes[str],
        index: np.ndarray,
        text: Strings,
        n_tokens: np.ndarray,
        finish: Codes[str],
        seed: np.ndarray,
        key: Strings,
    ) -> None:
        self._prompt, self._side, self._index, self._text = prompt, side, index, text
        self._n_tokens, self._finish, self._seed, self._key = n_tokens, finish, seed, key

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], spill_bytes: int = SPILL_BYTES) -> SampleTable:
        """The table of samples given as their JSON records (a file's rows, read one at a time); texts past
        `spill_bytes` in a memory-mapped temporary file."""
        builder = _Builder(spill_bytes)
        for row in rows:
            builder.add(row["prompt_id"], row["side"], row["index"], row["text"])
            builder.add_rest(row["n_tokens"], row["finish_reason"], row["seed"], row["key"])
        return builder.table()

    @classmethod
    def of(cls, samples: Iterable[Sample], spill_bytes: int = SPILL_BYTES) -> SampleTable:
        """The table of these samples (a table is returned as it is)."""
        if isinstance(samples, SampleTable):
            return samples
        builder = _Builder(spill_bytes)
        for s in samples:
            builder.add(s.prompt_id, s.side, s.index, s.text)
            builder.add_rest(s.n_tokens, s.finish_reason, s.seed, s.key)
        return builder.table()

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> Sample: ...

    @overload
    def __getitem__(self, i: slice) -> SampleTable: ...

    def __getitem__(self, i: int | slice) -> Sample | SampleTable:
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample {i} of {n}")
        i = int(i) % n
        return Sample(
            self._prompt.get(i),
            self._side.get(i),  # type: ignore[arg-type]
            int(self._index[i]),
            self._text.get(i),
            int(self._n_tokens[i]),
            self._finish.get(i),  # type: ignore[arg-type]
            int(self._seed[i]),
            self._key.get(i),
        )

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return False
        return all(mine == theirs for mine, theirs in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so unhashable like them

    def __add__(self, other: Iterable[Sample]) -> SampleTable:
        """This table's samples, then the other's (a new table: the texts are copied once)."""
        other = SampleTable.of(other)
        if not len(other):
            return self
        if not len(self):
            return other
        return SampleTable(
            self._prompt.joined(other._prompt),
            self._side.joined(other._side),
            np.concatenate([self._index, other._index]),
            self._text.joined(other._text),
            np.concatenate([self._n_tokens, other._n_tokens]),
            self._finish.joined(other._finish),
            np.concatenate([self._seed, other._seed]),
            self._key.joined(other._key),
        )

    def __repr__(self) -> str:
        return f"SampleTable({len(self)} samples)"

    def texts(self, rows: Iterable[int] | None = None) -> list[str]:
        """The rows' texts (all of them when rows is None), in the rows' order."""
        return self._text.many(range(len(self)) if rows is None else rows)

    def text(self, i: int) -> str:
        return self._text.get(i)

    def text_rows(self, rows: Iterable[int] | None = None) -> TextRows:
        """The rows' texts (all of them when rows is None), in the rows' order, decoded as they are read
        (`TextRows`): for loops over many texts that need one at a time."""
        return TextRows(self._text if rows is None else self._text.take(_positions(rows)))

    def prompt_ids(self, rows: Iterable[int] | None = None) -> list[str]:
        """The rows' prompt ids (one string object per prompt, shared by its answers)."""
        return self._prompt.many(rows)

    def prompt_index(self) -> tuple[list[str], np.ndarray]:
        """Prompt ids as codes: (ids, code per row), ids[code] the row's prompt id. The ids may include prompts
        of the table this one was taken from."""
        return self._prompt.values, self._prompt.codes

    def paired_prompts(self, rows: Iterable[int] | None = None) -> np.ndarray:
        """The codes (`prompt_index`) of the prompts both sides answered among the rows."""
        codes = self._prompt.codes if rows is None else self._prompt.codes[_positions(rows)]
        is_b = self.is_b(rows)
        return np.intersect1d(codes[is_b], codes[~is_b])

    def ids(self) -> list[str]:
        """Every sample's id (`Sample.id`), without building the samples."""
        indices = self._index.tolist()
        return [f"{side}:{prompt}:{index}" for side, prompt, index in zip(self.sides(), self.prompt_ids(), indices)]

    def sides(self, rows: Iterable[int] | None = None) -> list[str]:
        return self._side.many(rows)

    def is_b(self, rows: Iterable[int] | None = None) -> np.ndarray:
        """Whether each row's answer is side b's."""
        codes = self._side.codes if rows is None else self._side.codes[_positions(rows)]
        if "b" not in self._side.values:
            return np.zeros(len(codes), dtype=bool)
        return codes == self._side.values.index("b")

    def indices(self, rows: Iterable[int] | None = None) -> np.ndarray:
        """The rows' answer indices (0 for the first answer of a prompt and side)."""
        return self._index if rows is None else self._index[_positions(rows)]

    def n_tokens(self) -> np.ndarray:
        return self._n_tokens

    def take(self, rows: Iterable[int]) -> SampleTable:
        """These rows, in this order, as a table sharing this one's buffers."""
        picked = _positions(rows)
        return SampleTable(
            self._prompt.take(picked),
            self._side.take(picked),
            self._index[picked],
            self._text.take(picked),
            self._n_tokens[picked],
            self._finish.take(picked),
            self._seed[picked],
            self._key.take(picked),
        )

    def with_swapped(self, swap: np.ndarray) -> SampleTable:
        """The same answers with side a and b exchanged on the rows where `swap` is true."""
        values = list(self._side.values)
        values += [name for name in SIDES if name not in values]
        codes = np.asarray([values.index(v) for v in self._side.values], dtype=np.uint8)[self._side.codes]
        a, b = values.index("a"), values.index("b")
        flipped = np.where(codes == a, b, np.where(codes == b, a, codes)).astype(np.uint8)
        side = Codes(values, np.where(np.asarray(swap, dtype=bool), flipped, codes).astype(np.uint8))
        return SampleTable(
            self._prompt, side, self._index, self._text, self._n_tokens, self._finish, self._seed, self._key
        )

    def nbytes(self) -> int:
        """The bytes the columns hold in memory (the prompt ids' strings and mapped files not counted)."""
        arrays = (self._prompt.codes, self._side.codes, self._index, self._n_tokens, self._finish.codes, self._seed)
        return sum(held(a) for a in arrays) + self._text.nbytes() + self._key.nbytes()


def held(column: np.ndarray) -> int:
    """The bytes of an array held in memory: none for a memory-mapped one (`samplecolumns`)."""
    return 0 if heap.mapping_of(column) is not None else column.nbytes


def _positions(rows: Iterable[int]) -> np.ndarray:
    """Row numbers as an index array (a numpy array as it is, without a Python loop)."""
    return np.asarray(rows if isinstance(rows, np.ndarray) else list(rows), dtype=np.intp).reshape(-1)


class _Builder:
    """Columns grown a sample at a time in compact arrays (no object per sample survives)."""

    def __init__(self, spill_bytes: int) -> None:
        self.prompt: CodeBuilder[str] = CodeBuilder("i")
        self.side: CodeBuilder[str] = CodeBuilder("B")
        self.finish: CodeBuilder[str] = CodeBuilder("B")
        self.index, self.n_tokens = array("i"), array("i")  # 32 bits: an answer's number and its tokens
        self.seeds: list[int] | array = array("Q")
        self.text, self.key = StringBuilder(spill_bytes), StringBuilder(None)

    def add(self, prompt_id: str, side: str, index: int, text: str) -> None:
        self.prompt.add(prompt_id)
        self.side.add(side)
        self.index.append(index)
        self.text.add(text)

    def add_rest(self, n_tokens: int, finish_reason: str, seed: int, key: str) -> None:
        self.n_tokens.append(n_tokens)
        self.finish.add(finish_reason)
        self.key.add(key)
        try:
            self.seeds.append(seed)
        except OverflowError:  # a seed outside 64 unsigned bits (a hand-written record): keep them as objects
            self.seeds = [*self.seeds, seed]

    def table(self) -> SampleTable:
        seeds = self.seeds
        seed = np.frombuffer(seeds, dtype=np.uint64) if isinstance(seeds, array) else np.array(seeds, dtype=object)
        return SampleTable(
            self.prompt.codes(),
            self.side.codes(),
            np.frombuffer(self.index, dtype=np.int32),
            self.text.strings(),
            np.frombuffer(self.n_tokens, dtype=np.int32),
            self.finish.codes(),
            seed,
            self.key.strings(),
        )


class CodeBuilder(Generic[V]):
    """Codes grown a value at a time: one byte a row while there are at most 256 values (typecode "B"), then four."""

    def __init__(self, typecode: str) -> None:
        self.found: dict[V, int] = {}
        self.values: list[V] = []
        self.column = array(typecode)

    def add(self, value: V) -> None:
        code = self.found.get(value)
        if code is None:
            code = self.found[value] = len(self.values)
            self.values.append(value)
            if self.column.typecode == "B" and code > 255:
                self.column = array("i", self.column)
        self.column.append(code)

    def codes(self) -> Codes[V]:
        dtype = np.uint8 if self.column.typecode == "B" else np.int32
        return Codes(self.values, np.frombuffer(self.column, dtype=dtype))


class StringBuilder:
    """Strings appended to a buffer, which moves to a temporary file once it passes `spill_bytes` (None: never)."""

    FLUSH = 8 * 2**20  # a spilled builder writes its buffer out at this size

    def __init__(self, spill_bytes: int | None) -> None:
        self.buffer = bytearray()
        self.ends = array("q")
        self.spill_bytes = spill_bytes
        self.file: Any = None
        self.written = 0

    def add(self, text: str) -> None:
        self.add_bytes(text.encode("utf-8"))

    def add_bytes(self, data: bytes) -> None:
        self.buffer += data
        self.ends.append(self.written + len(self.buffer))
        limit = self.FLUSH if self.file is not None else self.spill_bytes
        if limit is not None and len(self.buffer) > limit:
            self._flush()

    def _flush(self) -> None:
        if self.file is None:
            try:
                self.file = tempfile.NamedTemporaryFile(prefix="lmdelta-texts-", delete=False)  # noqa: SIM115
            except OSError as error:  # no writable temporary directory: the texts stay in memory
                log.warning("texts kept in memory: no temporary file for them in %s (%s)", tempfile.gettempdir(), error)
                self.spill_bytes = None
                return
        self.file.write(self.buffer)
        self.written += len(self.buffer)
        self.buffer = bytearray()

    def strings(self) -> Strings:
        ends = np.frombuffer(self.ends, dtype=np.int64)
        starts = np.concatenate([np.zeros(1, dtype=np.int64), ends[:-1]]) if len(ends) else ends
        return Strings(self._mapped() if self.file is not None else self.buffer, starts, ends)

    def _mapped(self) -> np.ndarray:
        """The spilled texts, memory-mapped read-only; the file is unlinked at once where the system allows (the
        mapping keeps it), else when the mapping is collected."""
        self._flush()
        self.file.close()
        path = self.file.name
        # A plain view of the map: slicing an np.memmap runs Python code per slice, 4x slower over many texts.
        mapped = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray) if self.written else np.zeros(0, np.uint8)
        try:
            os.unlink(path)
        except OSError:  # Windows keeps a mapped file: remove it with the mapping
            weakref.finalize(mapped, _remove, path)
        return mapped


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
