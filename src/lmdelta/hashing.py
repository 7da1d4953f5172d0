"""Stable hashes of JSON-like data and files, for fingerprints and cache keys."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal data always hashes equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def hash_data(value: Any, length: int = 16) -> str:
    return hashlib.sha256(_utf8(canonical_json(value))).hexdigest()[:length]


def hash_text(text: str) -> str:
    return hashlib.sha256(_utf8(text)).hexdigest()


def _utf8(text: str) -> bytes:
    # The readers refuse lone surrogates ("\ud800" in JSON) with a line number; one that arrives
    # another way (a served model's JSON reply) still hashes. Any other text's bytes, and so its
    # hash, are the same as with plain UTF-8.
    return text.encode("utf-8", "surrogatepass")


def hash_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
