"""A .json file's records: a JSON array of objects read an element at a time (`JsonArrayRows`), JSON lines read a
line at a time, and anything else (one object, a file that does not parse) read whole, which is where every
problem is named, with its line, as json.loads names it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lmdelta.errors import PromptBankError
from lmdelta.sources import textfile
from lmdelta.sources.filerows import FileRows, Row
from lmdelta.sources.jsonrows import (
    SURROGATE_ESCAPE,
    JsonlRows,
    as_object,
    check_surrogates,
    json_problem,
    json_records,
    unreadable_value,
)
from lmdelta.sources.textfile import read_text, text_chunks, unreadable_first

JSON_SPACE = " \t\r\n"
TAIL = 16  # a value cut within this many characters of the text read so far may parse once more is read


def json_file_rows(path: Path, what: str) -> tuple[tuple[str, ...], Sequence[tuple[int, Row]]]:
    """(every key seen in first-seen order, the (line, record) rows) of a .json file holding a list of objects or
    one object per line."""
    first = _first_character(path, what)
    if first == "[":
        array = JsonArrayRows(path, what)
        return array.columns, array
    lines = None
    if first and not first.isspace():  # whitespace JSON does not allow, before the first record: refused whole
        try:
            lines = JsonlRows(path, what)
        except PromptBankError:
            pass
    if lines is not None and len(lines) > 1:
        return lines.columns, lines
    return _whole(path, read_text(path, what))  # one value, or a problem: named as the whole text names it


class JsonArrayRows(FileRows):
    """(line where an element starts, element) for every element of a file holding one JSON array of objects, read
    a chunk at a time (FileRows). Opening the file reads it once through: a syntax error anywhere, then a lone
    surrogate escape, then an element that is not an object are refused, in that order, as reading it whole did."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__()
        self.path, self.what = path, what
        columns: dict[str, None] = {}
        refusals: list[PromptBankError | None] = [None, None]  # the first lone surrogate, the first non-object
        with unreadable_first(path, what):
            for line, value, escaped in _elements(path, what):
                self._length += 1
                if escaped and refusals[0] is None:
                    refusals[0] = _refusal(check_surrogates, path, line, value)
                if isinstance(value, dict):
                    columns.update(dict.fromkeys(value))
                elif refusals[1] is None:
                    refusals[1] = _refusal(as_object, path, line, value)
            if refusal := refusals[0] or refusals[1]:
                raise refusal
        self.columns = tuple(columns)

    def _records(self) -> Iterator[tuple[int, Row]]:
        for line, value, _ in _elements(self.path, self.what):
            yield line, as_object(self.path, line, value)


def _refusal(check: Any, path: Path, line: int, value: Any) -> PromptBankError | None:
    try:
        check(path, line, value)
    except PromptBankError as exc:
        return exc
    return None


class _Malformed(Exception):
    """The streamed reading met something that is not a JSON array: the whole text says what."""


def _elements(path: Path, what: str) -> Iterator[tuple[int, Any, bool]]:
    """(line where it starts, value, whether its text holds a surrogate escape) for each element of the array. Not
    an array of values (a syntax error, text after it): the whole text is read, and its error raised."""
    text = _Text(text_chunks(path, what))
    try:
        if text.next_character() != "[":
            raise _Malformed
        text.position += 1
        if text.next_character() == "]":
            text.position += 1
        else:
            yield from _values(text)
        if text.next_character() != "":
            raise _Malformed
    except _Malformed:
        _whole(path, read_text(path, what))  # raises the error json.loads names
        raise PromptBankError(
            f"{what} {path} changed while it was being read: it no longer reads as it did when it was opened.",
            "Leave the file as it is while lmdelta runs, and start again.",
        ) from None


def _values(text: _Text) -> Iterator[tuple[int, Any, bool]]:
    decoder = json.JSONDecoder()
    while True:
        line = text.line()
        value, start, end = text.decode(decoder)
        yield line, value, SURROGATE_ESCAPE.search(text.buffer, start, end) is not None
        text.position = end
        separator = text.next_character()
        text.position += 1
        if separator == "]":
            return
        if separator != "," or text.next_character() in ("]", ""):
            raise _Malformed


class _Text:
    """A text read a chunk at a time, with the position reached and the line it is on; what lies before the
    position is let go."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self.chunks, self.buffer, self.position = chunks, "", 0
        self.ended = False
        self.lines_before, self.counted = 1, 0  # the line at buffer[counted]

    def more(self, wanted: int = 1) -> bool:
        """Read on by at least `wanted` characters (a chunk at least; fewer at the end of the text), dropping what
        lies before the position; False when nothing was left to read."""
        chunks: list[str] = []
        read = 0
        while read < wanted:
            chunk = next(self.chunks, None)
            if chunk is None:
                self.ended = True
                break
            chunks.append(chunk)
            read += len(chunk)
        if not chunks:
            return False
        self.line()
        self.buffer, self.counted = self.buffer[self.position :] + "".join(chunks), 0
        self.position = 0
        return True

    def line(self) -> int:
        self.lines_before += self.buffer.count("\n", self.counted, self.position)
        self.counted = self.position
        return self.lines_before

    def next_character(self) -> str:
        """The next character that is not JSON whitespace (the position moved onto it); "" at the end."""
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position] in JSON_SPACE:
                self.position += 1
            if self.position < len(self.buffer) or not self.more():
                return self.buffer[self.position : self.position + 1]

    def decode(self, decoder: json.JSONDecoder) -> tuple[Any, int, int]:
        """The value at the position, and where it starts and ends in the buffer, reading on while it may be cut by
        the end of what was read."""
        while True:
            try:
                value, end = decoder.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buffer) - TAIL
                if cut and not self.ended and self._grow():
                    continue
                raise _Malformed from None
            except (ValueError, RecursionError):  # a number past int's digit limit, nesting past the stack's
                raise _Malformed from None
            if end < len(self.buffer) or self.ended or not self._grow():
                return value, self.position, end

    def _grow(self) -> bool:
        """Read on by at least as much as the buffer holds past the position (so a long value is re-parsed a
        logarithmic number of times, not once per chunk)."""
        return self.more(max(len(self.buffer) - self.position, textfile.CHUNK))


def _first_character(path: Path, what: str) -> str:
    for chunk in text_chunks(path, what):
        if stripped := chunk.lstrip(JSON_SPACE):
            return stripped[0]
    return ""


def _whole(path: Path, text: str) -> tuple[tuple[str, ...], list[tuple[int, Row]]]:
    if text.lstrip().startswith("["):
        return _objects(path, _json_array(path, text))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several values: JSON lines in a .json file
            return _objects(path, json_records(path, text))
        raise _syntax_error(path, exc) from None
    except (ValueError, RecursionError) as exc:
        raise unreadable_value(path, None, exc) from None
    raise PromptBankError(
        f"{path} holds one JSON {type(value).__name__}, not a list of records.",
        'Expected a list of objects ([{"question": "..."}, ...]) or one object per line.',
    )


def _syntax_error(path: Path, exc: json.JSONDecodeError) -> PromptBankError:
    return PromptBankError(
        f"{path} line {exc.lineno} is not valid JSON ({json_problem(exc)}).",
        "Fix the file, or download it again.",
    )


def _objects(path: Path, records: list[tuple[int, Any]]) -> tuple[tuple[str, ...], list[tuple[int, Row]]]:
    columns: dict[str, None] = {}
    for line, record in records:
        columns.update(dict.fromkeys(as_object(path, line, record)))
    return tuple(columns), records


def _json_array(path: Path, text: str) -> list[tuple[int, Any]]:
    """The elements of a JSON array, each with the line it starts on."""
    try:
        json.loads(text)  # validate first, so the walk below can trust the structure
    except json.JSONDecodeError as exc:
        raise _syntax_error(path, exc) from None
    except (ValueError, RecursionError) as exc:
        raise unreadable_value(path, None, exc) from None
    decoder = json.JSONDecoder()
    out: list[tuple[int, Any]] = []
    position, line, counted = _skip_space(text, text.index("[") + 1), 1, 0
    while text[position] != "]":
        line, counted = line + text.count("\n", counted, position), position
        value, end = decoder.raw_decode(text, position)
        if SURROGATE_ESCAPE.search(text, position, end):
            check_surrogates(path, line, value)
        out.append((line, value))
        position = _skip_space(text, end)
        if text[position] == ",":
            position = _skip_space(text, position + 1)
    return out


def _skip_space(text: str, position: int) -> int:
    while text[position] in JSON_SPACE:
        position += 1
    return position
