"""Rows of a CSV, TSV or JSON-lines file (each perhaps gzipped), a JSON or a Parquet file, each with the line
it starts on, so that every complaint about a row names the file and the line to fix.

Shared by the public-dataset loaders and the corpus importer.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import json
import math
import re
import textwrap
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from lmdelta.errors import LmdeltaError, PromptBankError
from lmdelta.safetext import lone_surrogate
from lmdelta.sources.parquet import ParquetRows, Row

SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".jsonl", ".jsonl.gz", ".json", ".parquet")
GZIPPED = tuple(suffix for suffix in SUFFIXES if suffix.endswith(".gz"))
DELIMITERS = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}


@dataclass(frozen=True)
class Table:
    """A file's rows as (line, record). `columns` is the CSV header, the Parquet schema, or
    every JSON key seen (first-seen order). Parquet has no lines: its "line" is the row number."""

    path: Path
    columns: tuple[str, ...]
    rows: Sequence[tuple[int, Row]]
    header_line: int | None = None  # CSV only: the line holding the header
    unit: str = "line"  # what a row number counts, for messages: "line" or "row"

    def where(self, line: int) -> str:
        return f"{self._name}:{line}"

    @property
    def _name(self) -> str:
        # str(Path) rebuilds the string each time; a table is asked once per row.
        name = self.__dict__.get("_name_cache")
        if name is None:
            name = str(self.path)
            object.__setattr__(self, "_name_cache", name)
        return name


def read_records(path: Path, what: str, escapechar: str | None = None) -> list[tuple[int, Row]]:
    """(line where the record starts, record) for every non-blank record of a file."""
    return list(read_table(path, what, escapechar).rows)


def read_table(path: Path, what: str, escapechar: str | None = None) -> Table:
    """A .csv, .tsv, .jsonl (each perhaps gzipped: .csv.gz), .json (list of objects or JSON lines) or .parquet
    file as a Table.

    `what` names the file in messages ("TruthfulQA file"); `escapechar` is passed to the CSV/TSV reader.
    """
    if not path.exists():
        raise PromptBankError(f"{what} {path} does not exist.", "Check the path (and the dataset's folder layout).")
    if not path.is_file():
        raise PromptBankError(f"{what} {path} is not a file.", "Point to the file itself, or to the dataset's folder.")
    kind = suffix_of(path)
    if kind not in SUFFIXES:
        raise PromptBankError(
            f"{what} {path} has the unsupported extension {kind or '(none)'!r}.", f"Use one of: {', '.join(SUFFIXES)}."
        )
    if kind == ".parquet":
        return _parquet(path)
    text = read_text(path, what)
    if kind in DELIMITERS:
        return _csv(path, text, escapechar, DELIMITERS[kind])
    if kind == ".json":
        return _json(path, text)
    return _objects(path, json_records(path, text))


def suffix_of(path: Path) -> str:
    """The file's (lower-case) extension, with a gzipped one (`.jsonl.gz`, `.csv.gz`) counted as one."""
    name = path.name.lower()
    return next((suffix for suffix in GZIPPED if name.endswith(suffix)), path.suffix.lower())


def read_text(path: Path, what: str, error: type[LmdeltaError] = PromptBankError) -> str:
    """A file's text: gunzipped when it ends in .gz, UTF-8 with or without a BOM. A problem is
    raised as `error` (the caller's kind: a bank's, a config file's), naming the line of a bad byte."""
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise error(
                f"{what} {path} is not a readable gzip file ({exc}).",
                "Download it again, or gunzip it and pass the plain file.",
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, what, data, exc.start, error) from None


def _encoding_error(
    path: Path, what: str, data: bytes, offset: int, error: type[LmdeltaError] = PromptBankError
) -> LmdeltaError:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - data.rfind(b"\n", 0, offset)
    plain = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    return error(
        f"{what} {path} line {line} is not UTF-8 text (byte 0x{data[offset]:02x} at byte column {column}); "
        "the file may mix encodings.",
        f"Re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {plain} > utf8-{plain}` when it is all Latin-1; "
        "if only some lines are in another encoding, fix those lines.",
    )


@contextmanager
def _long_csv_fields() -> Iterator[None]:
    # Jailbreak prompts can pass the csv module's 128 KiB field limit; raise it only while reading.
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, 1 << 26))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _csv(path: Path, text: str, escapechar: str | None, delimiter: str = ",") -> Table:
    # newline="" keeps line breaks inside quoted fields, and reader.line_num counts physical lines,
    # so a record starts on the line after the previous record ended. strict: a quote never closed,
    # or closed with text right after it, is an error; leniently read, a stray quote merges rows.
    reader = csv.reader(_physical_lines(text), escapechar=escapechar, delimiter=delimiter, strict=True)
    header: list[str] = []
    header_line: int | None = None
    rows: list[tuple[int, Row]] = []
    with _long_csv_fields():
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise _csv_error(path, start, reader.line_num, str(exc)) from None
            if not fields:
                continue  # a blank line
            if header_line is None:
                header, header_line = fields, start
                continue
            rows.append((start, _csv_row(path, start, fields, header, header_line)))
    _check_swallowed_rows(path, header, rows, escapechar, delimiter)
    return Table(path, tuple(header), rows, header_line)


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
    path: Path, header: list[str], rows: list[tuple[int, Row]], escapechar: str | None, delimiter: str = ","
) -> None:
    """Refuse a quoted field holding lines that read as rows of this file: a stray quote closed by a
    later one merges the rows between them into one field, with the right number of fields.

    A line reads as a row when it has the header's number of fields, one of its values in every
    column with few distinct values (the side column, say), and the shape of the values in every
    column whose values share a few shapes (ids like q17): a line of an answer rarely has all that."""
    spanning = [(line, row) for line, row in rows if any("\n" in value for value in row.values())]
    if not spanning:
        return
    values, shapes = _column_profiles(header, rows)
    for line, row in spanning:
        for column, value in row.items():
            if "\n" not in value or not set(values) - {column}:
                continue
            for offset, inner in enumerate(value.split("\n")[1:], start=1):
                fields = next(csv.reader([inner.rstrip("\r")], escapechar=escapechar, delimiter=delimiter), [])
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


def _column_profiles(header: list[str], rows: list[tuple[int, Row]]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Columns with few distinct values (at most 10, and at most half the rows) with those values;
    the other columns whose values come in at most 3 shapes, with those shapes. Values spanning
    lines are left out: they may be the damage."""
    limit = min(10, max(1, len(rows) // 2))
    values: dict[str, set[str]] = {}
    shapes: dict[str, set[str]] = {}
    for name in dict.fromkeys(header):
        seen = {row[name] for _, row in rows if "\n" not in row.get(name, "\n")}
        if seen and len(seen) <= limit:
            values[name] = seen
        elif len(found := {_shape(value) for value in seen}) <= 3:
            shapes[name] = found
    return values, shapes


def _shape(value: str) -> str:
    """A value with every run of letters written `a` and of digits `9`: q17 and q3 are both a9."""
    return re.sub(r"[^\W\d_]+", "a", re.sub(r"\d+", "9", value))


def _physical_lines(text: str) -> Iterator[str]:
    """The text's lines with their endings, split at "\n" only (as a file opened with newline=""
    reads), one at a time: io.StringIO would hold a second, four-bytes-a-character copy."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def _csv_row(path: Path, line: int, fields: list[str], header: list[str], header_line: int) -> Row:
    if len(fields) != len(header):
        raise PromptBankError(
            f"{path} line {line} has {len(fields)} fields but the header (line {header_line}) has {len(header)}.",
            'Quote fields that hold commas or line breaks ("like, this"), or remove the row.',
        )
    return dict(zip(header, fields, strict=True))


def json_records(path: Path | str, text: str) -> list[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line of JSON-lines text."""
    out = []
    # Split on "\n" only: str.splitlines() also breaks at U+2028 and U+0085, which JSON strings may hold raw.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptBankError(
                f"{path} line {number} is not valid JSON ({exc.msg} at column {exc.colno}).",
                "Fix or remove that line: each line must be one JSON object.",
            ) from None
        if _SURROGATE_ESCAPE.search(line):
            _check_surrogates(path, number, value)
        out.append((number, value))
    return out


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_surrogates(path: Path | str, line: int, value: Any) -> None:
    """Refuse a string holding half of a UTF-16 pair ("\\ud83c" without its "\\udf0a"): nothing can
    write it as UTF-8 later (run files, hashes), so it is named here, with its line."""
    if isinstance(value, (dict, list)):
        for item in [*value.keys(), *value.values()] if isinstance(value, dict) else value:
            _check_surrogates(path, line, item)
    elif isinstance(value, str) and (at := lone_surrogate(value)) is not None:
        after = f" after {value[max(0, at - 20) : at]!r}" if at else ""
        raise PromptBankError(
            f"{path} line {line} holds a lone UTF-16 surrogate escape (\\u{ord(value[at]):04x}{after}): half of "
            "a character whose other half is missing, which is not text and cannot be written as UTF-8.",
            "Fix that escape (restore its pair, e.g. \\ud83c\\udf0a for 🌊, or delete it); the text was "
            "probably cut in the middle of an emoji.",
        )


def _objects(path: Path, records: list[tuple[int, Any]]) -> Table:
    columns: dict[str, None] = {}
    for line, record in records:
        if not isinstance(record, dict):
            raise PromptBankError(
                f"{path} line {line} is a JSON {type(record).__name__}, not an object.",
                'Write one object per record, like {"question": "..."}.',
            )
        columns.update(dict.fromkeys(record))
    return Table(path, tuple(columns), records)


def _json(path: Path, text: str) -> Table:
    if text.lstrip().startswith("["):
        return _objects(path, _json_array(path, text))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several values: JSON lines in a .json file
            return _objects(path, json_records(path, text))
        raise PromptBankError(
            f"{path} line {exc.lineno} is not valid JSON ({exc.msg} at column {exc.colno}).",
            "Fix the file, or download it again.",
        ) from None
    raise PromptBankError(
        f"{path} holds one JSON {type(value).__name__}, not a list of records.",
        'Expected a list of objects ([{"question": "..."}, ...]) or one object per line.',
    )


def _json_array(path: Path, text: str) -> list[tuple[int, Any]]:
    """The elements of a JSON array, each with the line it starts on."""
    try:
        json.loads(text)  # validate first, so the walk below can trust the structure
    except json.JSONDecodeError as exc:
        raise PromptBankError(
            f"{path} line {exc.lineno} is not valid JSON ({exc.msg} at column {exc.colno}).",
            "Fix the file, or download it again.",
        ) from None
    decoder = json.JSONDecoder()
    out: list[tuple[int, Any]] = []
    position, line, counted = _skip_space(text, text.index("[") + 1), 1, 0
    while text[position] != "]":
        line, counted = line + text.count("\n", counted, position), position
        value, end = decoder.raw_decode(text, position)
        if _SURROGATE_ESCAPE.search(text, position, end):
            _check_surrogates(path, line, value)
        out.append((line, value))
        position = _skip_space(text, end)
        if text[position] == ",":
            position = _skip_space(text, position + 1)
    return out


def _skip_space(text: str, position: int) -> int:
    while text[position] in " \t\r\n":
        position += 1
    return position


def _parquet(path: Path) -> Table:
    rows = ParquetRows(path)
    return Table(path, rows.columns, rows, unit="row")


@overload
def find_column(table: Table, candidates: tuple[str, ...], what: str, required: Literal[True] = ...) -> str: ...
@overload
def find_column(table: Table, candidates: tuple[str, ...], what: str, required: bool) -> str | None: ...


def find_column(table: Table, candidates: tuple[str, ...], what: str, required: bool = True) -> str | None:
    """The table's name for the first candidate it has, matched case-insensitively; None when it
    has none and the column is optional. `what` says what the column holds, for the fix."""
    names: dict[str, str] = {}
    for name in table.columns:
        names.setdefault(name.strip().lower(), name)
    for candidate in candidates:
        if candidate.lower() in names:
            return names[candidate.lower()]
    if not required:
        return None
    raise _missing_column(table, candidates, what)


def _missing_column(table: Table, candidates: tuple[str, ...], what: str) -> PromptBankError:
    want = " or ".join(f"`{c}`" for c in candidates)
    listed = ", ".join(table.columns) or "none"
    if table.header_line is not None:
        problem = f"{table.path} line {table.header_line} (header) has no {want} column (columns: {listed})."
    else:
        problem = f"{table.path} has no {want} field (fields: {listed})."
    near = closest_column(table, candidates[0])
    hint = f"Did you mean `{near}`? Rename it to `{candidates[0]}`. " if near else ""
    return PromptBankError(problem, f"{hint}The `{candidates[0]}` column must hold {what}.")


def closest_column(table: Table, name: str) -> str | None:
    """The table's column whose name is closest to `name` (case aside), for a did-you-mean; None if none is close."""
    lowered = {column.strip().lower(): column for column in table.columns}
    near = difflib.get_close_matches(name.strip().lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[near[0]] if near else None


def cell_text(table: Table, line: int, row: Row, column: str) -> str:
    """The row's stripped text in `column`; an error naming file and line when it is missing or empty."""
    value = row.get(column)
    if not isinstance(value, str):
        found = "nothing" if value is None else f"a {type(value).__name__}"
        raise PromptBankError(
            f"{table.path} {table.unit} {line} has no text in `{column}` (found {found}).",
            f"Give that row a string `{column}`, or remove it.",
        )
    if not value.strip():
        raise PromptBankError(
            f"{table.path} {table.unit} {line} has an empty `{column}`.", "Remove the row, or fill in its text."
        )
    return value.strip()


def cell_group(row: Row, column: str | None) -> str | None:
    """The row's group label in `column`, or None when there is no such column or it is blank."""
    value = None if column is None else row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip():
        return None
    return str(value).strip()


def no_files_error(folder: Path, expected: str, fix: str) -> PromptBankError:
    """A folder lacks a dataset's files: say what was expected, what is there, and what to do."""
    if not folder.exists():
        return PromptBankError(f"{folder} does not exist (expected {expected}).", fix)
    if not folder.is_dir():
        return PromptBankError(f"{folder} is not a folder holding {expected}.", fix)
    entries = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in folder.iterdir())
    shown = ", ".join(entries[:6]) + (f", … ({len(entries)} entries)" if len(entries) > 6 else "")
    return PromptBankError(f"{folder} holds no {expected} (found: {shown or 'nothing'}).", fix)
