"""Text from corpora, models and LLMs made safe where not every character may go: a terminal
line (no escape sequences, no control characters) and UTF-8 (no lone surrogates).
"""

from __future__ import annotations

import re

# Escape sequences as terminals parse them, in 7-bit (ESC x) and 8-bit (C1) form: CSI up to its
# final byte; OSC, DCS, SOS, PM and APC up to BEL or ST, or to the end of the text when never
# terminated (a terminal would swallow what follows, so no payload is shown); any other ESC pair.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Line and page breaks (and tabs) end a table row early: on one line they become one space.
_BREAKS = re.compile(r"[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]+")
_NEWLINE = re.compile(r"\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]")
# Every other C0/C1 control, DEL, and the bidi overrides and isolates that reorder what follows.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_terminal_text(text: str, one_line: bool = True) -> str:
    """`text` without anything a terminal would act on: escape sequences (colours, titles, cursor
    moves, hyperlinks) and control characters are removed. With `one_line` (a table cell), line
    breaks and tabs become single spaces; without it, tabs stay and every line break becomes "\\n"."""
    text = _SEQUENCE.sub("", text)
    if one_line:
        return _CONTROL.sub("", _BREAKS.sub(" ", text))
    return _CONTROL_BUT_LAYOUT.sub("", _NEWLINE.sub("\n", text))


def lone_surrogate(text: str) -> int | None:
    """Where `text` holds a lone UTF-16 surrogate (half of a character, e.g. from a JSON escape
    "\\ud800" without its pair), which UTF-8 cannot store; None when it holds none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # UTF-8 can encode every code point except surrogates
        return exc.start
    return None


def without_lone_surrogates(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, so it can be written as UTF-8."""
    return _SURROGATE.sub("\ufffd", text) if lone_surrogate(text) is not None else text
