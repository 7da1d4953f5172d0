"""Stable hashes of JSON-like data and files, for fingerprints and cache keys, and the seeds of
each stochastic step, derived from the run's seed."""

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


def child_seed(seed: int | None, *tags: Any) -> int:
    """A 64-bit seed for one stochastic step: SHA-256 of the run's seed (None counts as 0) and the
    JSON-like tags that name the step and, where each item draws its own, the item. Different tags
    give independent streams, and an item keyed by its content or id draws the same whatever else
    is drawn beside it or before it."""
    digest = hashlib.sha256(_utf8(canonical_json([0 if seed is None else seed, *tags]))).digest()
    return int.from_bytes(digest[:8], "little")


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
