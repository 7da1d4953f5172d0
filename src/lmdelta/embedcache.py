"""A persistent embedding cache shared by all runs, keyed by (embedder identity, text hash).

SQLite gives atomic commits, so an interrupted embed stage keeps every finished chunk.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from lmdelta.private import private_file


class EmbeddingCache:
    def __init__(self, path: Path, embedder_key: str) -> None:
        self.embedder_key = embedder_key
        self._db = sqlite3.connect(str(private_file(path)), timeout=60)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (embedder TEXT, text_hash TEXT, vector BLOB, "
            "PRIMARY KEY (embedder, text_hash))"
        )

    def get_many(self, text_hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(text_hashes))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT text_hash, vector FROM vectors WHERE embedder = ? AND text_hash IN ({marks})",
                [self.embedder_key, *chunk],
            )
            found.update((h, np.frombuffer(blob, dtype=np.float32)) for h, blob in rows)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(self.embedder_key, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )

    def close(self) -> None:
        self._db.close()
