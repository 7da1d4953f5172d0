"""A persistent, content-addressed cache of LLM replies, shared by all runs and processes.

The key hashes everything that can change an answer (provider identity, full request) and
nothing that cannot (timeouts, keys). SQLite makes each write atomic and lets processes share it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lmdelta.credentials import looks_like_credential
from lmdelta.hashing import canonical_json
from lmdelta.llm.types import ChatRequest, ChatResponse, Usage
from lmdelta.private import private_file

CACHE_FORMAT = 1  # part of every key: bump it to orphan old entries when the key recipe changes

_SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, text TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    finish_reason TEXT NOT NULL, logprobs TEXT, model TEXT, created REAL NOT NULL)"""


def check_identity(identity: Mapping[str, Any]) -> None:
    """Raise ValueError if a provider identity has a field named like a credential, at any depth."""
    for name, value in identity.items():
        if looks_like_credential(str(name)):
            raise ValueError(
                f"provider identity field {name!r} looks like a credential; identity() must "
                "name the model, never a key (it goes into cache keys and run manifests)"
            )
        if isinstance(value, Mapping):
            check_identity(value)


def cache_key(identity: Mapping[str, Any], request: ChatRequest) -> str:
    """sha256 over canonical JSON of the provider identity and the whole request."""
    check_identity(identity)
    payload = {"format": CACHE_FORMAT, "provider": dict(identity), "request": request.to_dict()}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def cacheable(response: ChatResponse) -> bool:
    """Only real answers are kept: a content-filtered reply may pass on a later try."""
    return response.finish_reason != "content_filter"


class ResponseCache:
    """`get(key)` / `put(key, response)` over one SQLite file; safe across threads and processes."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(private_file(self.path)), timeout=timeout, check_same_thread=False)
        with self._lock, self._db:
            # WAL lets readers in other processes work during a write; NORMAL sync is still atomic.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        self.hits = self.misses = self.writes = 0

    def get(self, key: str) -> ChatResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, input_tokens, output_tokens, finish_reason, logprobs, model FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        text, input_tokens, output_tokens, finish_reason, logprobs, model = row
        return ChatResponse(
            text=text,
            usage=Usage(input_tokens, output_tokens),
            finish_reason=finish_reason,
            logprobs=json.loads(logprobs) if logprobs is not None else None,
            model=model,
        )

    def put(self, key: str, response: ChatResponse) -> bool:
        """Store a reply; returns False (and stores nothing) for a content-filtered one."""
        if not cacheable(response):
            return False
        logprobs = json.dumps(response.logprobs) if response.logprobs is not None else None
        row = (
            key,
            response.text,
            response.usage.input_tokens,
            response.usage.output_tokens,
            response.finish_reason,
            logprobs,
            response.model,
            time.time(),
        )
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            self.writes += 1
        return True

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def stats(self) -> dict[str, Any]:
        """Entries in the file, and this object's hits, misses and writes."""
        return {
            "path": str(self.path),
            "entries": len(self),
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
