"""JSON lines: every non-blank line parsed, with its line number, from a text or from a file read a line at a
time whenever its records are read (`JsonlRows`: opening the file reads it once through, so a line that is not
JSON, not an object, or holds half a UTF-16 pair is refused then, naming its line)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lmdelta.errors import PromptBankError
from lmdelta.safetext import lone_surrogate
from lmdelta.sources.filerows import FileRows, Row
from lmdelta.sources.textfile import text_lines, unreadable_first


class JsonlRows(FileRows):
    """(line number, record) for every non-blank line of a JSON-lines file (FileRows); `columns` is every key seen,
    in first-seen order."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__()
        self.path, self.what = path, what
        columns: dict[str, None] = {}
        with unreadable_first(path, what):
            for _, record in self._records():
                self._length += 1
                columns.update(dict.fromkeys(record))
        self.columns = tuple(columns)

    def _records(self) -> Iterator[tuple[int, Row]]:
        for line, value in _values(self.path, text_lines(self.path, self.what)):
            yield line, as_object(self.path, line, value)


def as_object(path: Path | str, line: int, value: Any) -> Row:
    """The record itself; anything but a JSON object is refused."""
    if not isinstance(value, dict):
        raise PromptBankError(
            f"{path} line {line} is a JSON {type(value).__name__}, not an object.",
            'Write one object per record, like {"question": "..."}.',
        )
    return value


def json_records(path: Path | str, text: str) -> list[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line of JSON-lines text."""
    # Split on "\n" only: str.splitlines() also breaks at U+2028 and U+0085, which JSON strings may hold raw.
    return list(_values(path, text.split("\n")))


def _values(path: Path | str, lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line."""
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\n")  # a file's lines come with their ending: errors count columns without it
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptBankError(
                f"{path} line {number} is not valid JSON ({json_problem(exc)}).",
                "Fix or remove that line: each line must be one JSON object.",
            ) from None
        except (ValueError, RecursionError) as exc:
            raise unreadable_value(path, number, exc) from None
        if SURROGATE_ESCAPE.search(line):
            check_surrogates(path, number, value)
        yield number, value


def json_problem(exc: json.JSONDecodeError) -> str:
    """json's complaint and its column: "Expecting value at column 3", "Unterminated string starting at column 9"."""
    return f"{exc.msg} column {exc.colno}" if exc.msg.endswith(" at") else f"{exc.msg} at column {exc.colno}"


def unreadable_value(path: Path | str, line: int | None, exc: ValueError | RecursionError) -> PromptBankError:
    """Valid JSON that Python cannot read: a number past int's digit limit, values nested past the stack."""
    where = f"{path} line {line}" if line is not None else str(path)
    if isinstance(exc, RecursionError):
        problem, fix = "nests values too deeply to be read", "Flatten the record: a corpus row needs no deep nesting."
    else:
        problem, fix = f"holds a value that cannot be read ({exc})", "Write such a number as a string, or drop it."
    return PromptBankError(f"{where} {problem}.", fix)


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_surrogates(path: Path | str, line: int, value: Any) -> None:
    """Refuse a string holding half of a UTF-16 pair ("\\ud83c" without its "\\udf0a"): nothing can
    write it as UTF-8 later (run files, hashes), so it is named here, with its line."""
    if isinstance(value, (dict, list)):
        for item in [*value.keys(), *value.values()] if isinstance(value, dict) else value:
            check_surrogates(path, line, item)
    elif isinstance(value, str) and (at := lone_surrogate(value)) is not None:
        after = f" after {value[max(0, at - 20) : at]!r}" if at else ""
        raise PromptBankError(
            f"{path} line {line} holds a lone UTF-16 surrogate escape (\\u{ord(value[at]):04x}{after}): half of "
            "a character whose other half is missing, which is not text and cannot be written as UTF-8.",
            "Fix that escape (restore its pair, e.g. \\ud83c\\udf0a for 🌊, or delete it); the text was "
            "probably cut in the middle of an emoji.",
        )
