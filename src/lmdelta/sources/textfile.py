"""A file's text, whole or a line at a time: gunzipped when it ends in .gz, UTF-8 with or without a BOM, and a
problem named with the line to fix."""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lmdelta.errors import LmdeltaError, PromptBankError

CHUNK = 1 << 20  # characters read at a time by text_lines


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


def text_lines(path: Path, what: str) -> Iterator[str]:
    """The file's lines with their endings, split at "\\n" only (as read_text's text would be split), read from the
    file a chunk at a time: a reader that keeps what it needs of each line never holds the whole text. A problem
    (a bad byte, a broken gzip stream) is raised as read_text raises it, naming the line."""
    rest = ""
    for chunk in text_chunks(path, what):
        lines = (rest + chunk).split("\n")
        rest = lines.pop()
        for line in lines:
            yield line + "\n"
    if rest:
        yield rest


def text_chunks(path: Path, what: str) -> Iterator[str]:
    """The file's text (gunzipped, without a BOM) a CHUNK of characters at a time. A problem (a bad byte, a broken
    gzip stream) is raised as read_text raises it, naming the line."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
    except (UnicodeDecodeError, OSError, EOFError, zlib.error):
        read_text(path, what)  # raises, naming the line of the bad byte (or the gzip problem)
        raise


@contextmanager
def unreadable_first(path: Path, what: str) -> Iterator[None]:
    """Around a first reading of a file's records: a record refused there gives way to a bad byte or a broken gzip
    stream anywhere in the file (read through to find one), which is the file's problem to fix first, as reading
    the whole text first found it. A gzip file's checksum is only checked at its end, after the damage it finds
    was read as garbled records."""
    try:
        yield
    except PromptBankError:
        for _ in text_lines(path, what):
            pass
        raise
