"""A CSV or TSV file's rows (perhaps gzipped), each with the line it starts on, read from the file whenever they
are read: a reader that keeps what it needs of each row (the corpus's columns) never holds the file's text or all
its records at once. Opening the file reads it once through, so a quoting problem, a row with the wrong number of
fields or a bad byte is refused then, naming its line; a stray quote that swallowed rows into one field is looked for
in another pass when some field spans lines."""

from __future__ import annotations

import csv
import re
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

from lmdelta.errors import PromptBankError
from lmdelta.sources.filerows import FileRows, Row
from lmdelta.sources.textfile import text_lines, unreadable_first

LONG_FIELD = 1 << 26  # jailbreak prompts can pass the csv module's 128 KiB field limit
FEW_VALUES = 10  # a column of at most this many values (and half the rows) profiles by its values …
FEW_SHAPES = 3  # … else one of at most this many shapes by its shapes


def csv_rows(path: Path, what: str, escapechar: str | None, delimiter: str = ",") -> CsvRows:
    """The file's rows, read once through to check them (and again, for swallowed rows, when a field spans lines)."""
    rows = CsvRows(path, what, escapechar, delimiter)
    if rows.spans_lines:
        _check_swallowed_rows(path, rows.header, rows, escapechar, delimiter)
    return rows


class CsvRows(FileRows):
    """(line where the record starts, record) for every non-blank record after the header (FileRows)."""

    def __init__(self, path: Path, what: str, escapechar: str | None, delimiter: str) -> None:
        super().__init__()
        self.path, self.what, self.escapechar, self.delimiter = path, what, escapechar, delimiter
        self.header: list[str] = []
        self.header_line: int | None = None
        self.spans_lines = False  # whether some field holds a line break
        with unreadable_first(path, what):
            for _, row in self._records():
                self._length += 1
                if not self.spans_lines and any("\n" in value for value in row.values()):
                    self.spans_lines = True

    def _records(self) -> Iterator[tuple[int, Row]]:
        # Lines split at "\n" only, and reader.line_num counts them, so a record starts on the line after the
        # previous record ended. strict: a quote never closed, or closed with text right after it, is an error;
        # leniently read, a stray quote merges rows.
        lines = text_lines(self.path, self.what)
        reader = csv.reader(lines, escapechar=self.escapechar, delimiter=self.delimiter, strict=True)
        header: list[str] | None = None
        while True:
            start = reader.line_num + 1
            try:
                fields = _next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _csv_error(self.path, start, reader.line_num, str(exc)) from None
            if not fields:
                continue  # a blank line
            if header is None:
                header, self.header, self.header_line = fields, fields, start
                continue
            yield start, _csv_row(self.path, start, fields, header, self.header_line or start)


def _fields(line: str, escapechar: str | None, delimiter: str) -> list[str]:
    """The fields of one line read as a record of its own ([] when it cannot be one: a line break in it)."""
    try:
        return _next(csv.reader([line], escapechar=escapechar, delimiter=delimiter))
    except (csv.Error, StopIteration):
        return []


def _next(reader: Iterator[list[str]]) -> list[str]:
    """The reader's next record, with the field size limit raised while it is read (and only then: two readers of
    one file may be read in turns)."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, LONG_FIELD))
    try:
        return next(reader)
    finally:
        csv.field_size_limit(old)


QUOTE_FIX = 'Close the quote where the text ends, or write a quote that belongs to the text twice ("").'


def _csv_error(path: Path, start: int, end: int, message: str) -> PromptBankError:
    if message == "unexpected end of data":
        return PromptBankError(
            f"{path} line {start} opens a quoted field that is never closed, so lines "
            f"{start}–{end} (the rest of the file) would be read as one field.",
            QUOTE_FIX,
        )
    if "expected after" in message and end > start:
        return PromptBankError(
            f"{path} line {start} opens a quoted field that runs on to line {end} and is "
            f"followed by more text there: probably a stray quote on line {start} merged "
            f"lines {start}–{end} into one field.",
            QUOTE_FIX,
        )
    if "expected after" in message:
        return PromptBankError(
            f"{path} line {start} has text right after a closing quote.",
            'Quote the whole field and write each quote inside it twice ("like ""this"""), or do not quote the field.',
        )
    return PromptBankError(
        f"{path} line {start} is not valid CSV ({message}).",
        'Fix the quoting there (a quote inside a field is written twice: "").',
    )


def _check_swallowed_rows(
    path: Path, header: list[str], rows: Iterable[tuple[int, Row]], escapechar: str | None, delimiter: str = ","
) -> None:
    """Refuse a quoted field holding lines that read as rows of this file: a stray quote closed by a
    later one merges the rows between them into one field, with the right number of fields.

    A line reads as a row when it has the header's number of fields, one of its values in every
    column with few distinct values (the side column, say), and the shape of the values in every
    column whose values share a few shapes (ids like q17): a line of an answer rarely has all that."""
    values, shapes = _column_profiles(header, rows)
    for line, row in rows:
        for column, value in row.items():
            if "\n" not in value or not set(values) - {column}:
                continue
            for offset, inner in enumerate(value.split("\n")[1:], start=1):
                fields = _fields(inner.rstrip("\r"), escapechar, delimiter)
                if _reads_as_row(fields, header, column, values, shapes):
                    raise PromptBankError(
                        f"{path} line {line} opens a quoted `{column}` field whose line {line + offset} reads as a "
                        f"row of its own ({textwrap.shorten(inner, 60, placeholder='…')!r}): probably a stray "
                        f"quote on line {line} merged the rows after it into one field.",
                        QUOTE_FIX,
                    )


def _reads_as_row(
    fields: list[str], header: list[str], spanning: str, values: dict[str, set[str]], shapes: dict[str, set[str]]
) -> bool:
    if len(fields) != len(header):
        return False
    by_name = dict(zip(header, fields))
    return all(by_name[c] in found for c, found in values.items() if c != spanning) and all(
        _shape(by_name[c]) in found for c, found in shapes.items() if c != spanning
    )


def _column_profiles(
    header: list[str], rows: Iterable[tuple[int, Row]]
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Columns with few distinct values (at most FEW_VALUES, and at most half the rows) with those values; the other
    columns whose values come in at most FEW_SHAPES shapes, with those shapes. Values spanning lines are left out:
    they may be the damage. Read in one pass, keeping at most FEW_VALUES + 1 values and FEW_SHAPES + 1 shapes a
    column."""
    names = list(dict.fromkeys(header))
    seen: dict[str, set[str] | None] = {name: set() for name in names}  # None: more than FEW_VALUES
    shapes: dict[str, set[str] | None] = {name: set() for name in names}  # None: more than FEW_SHAPES
    count = 0
    for _, row in rows:
        count += 1
        for name in names:
            value = row.get(name, "\n")
            if "\n" in value:
                continue
            values = seen[name]
            if values is not None:
                if value in values:
                    continue
                values.add(value)
                if len(values) > FEW_VALUES:
                    seen[name] = None
            found = shapes[name]
            if found is not None:
                found.add(_shape(value))
                if len(found) > FEW_SHAPES:
                    shapes[name] = None
    limit = min(FEW_VALUES, max(1, count // 2))
    few_values = {name: values for name, values in seen.items() if values and len(values) <= limit}
    few_shapes = {name: found for name, found in shapes.items() if found is not None and name not in few_values}
    return few_values, few_shapes


def _shape(value: str) -> str:
    """A value with every run of letters written `a` and of digits `9`: q17 and q3 are both a9."""
    return re.sub(r"[^\W\d_]+", "a", re.sub(r"\d+", "9", value))


def _csv_row(path: Path, line: int, fields: list[str], header: list[str], header_line: int) -> Row:
    if len(fields) != len(header):
        raise PromptBankError(
            f"{path} line {line} has {len(fields)} fields but the header (line {header_line}) has {len(header)}.",
            'Quote fields that hold commas or line breaks ("like, this"), or remove the row.',
        )
    return dict(zip(header, fields, strict=True))
