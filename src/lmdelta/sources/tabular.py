"""Rows of a CSV, TSV or JSON-lines file (each perhaps gzipped), a JSON or a Parquet file, each with the line
it starts on, so that every complaint about a row names the file and the line to fix.

Shared by the public-dataset loaders and the corpus importer.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

from lmdelta.errors import PromptBankError
from lmdelta.sources.csvrows import csv_rows
from lmdelta.sources.filerows import Row
from lmdelta.sources.jsonarray import json_file_rows
from lmdelta.sources.jsonrows import JsonlRows
from lmdelta.sources.parquet import ParquetRows

SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")
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
    """A .csv, .tsv, .jsonl, .json (list of objects or JSON lines; each perhaps gzipped: .csv.gz) or .parquet
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
    if kind in DELIMITERS:
        found = csv_rows(path, what, escapechar, DELIMITERS[kind])
        return Table(path, tuple(found.header), found, found.header_line)
    if kind in (".json", ".json.gz"):
        columns, records = json_file_rows(path, what)
        return Table(path, columns, records)
    rows = JsonlRows(path, what)
    return Table(path, rows.columns, rows)


def suffix_of(path: Path) -> str:
    """The file's (lower-case) extension, with a gzipped one (`.jsonl.gz`, `.csv.gz`) counted as one."""
    name = path.name.lower()
    return next((suffix for suffix in GZIPPED if name.endswith(suffix)), path.suffix.lower())


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
