"""A deterministic bag-of-words embedder (feature hashing), for tests: no model, no downloads."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np


class HashingEmbedder:
    def __init__(self, identity: dict[str, Any], dim: int = 64, normalize: bool = True) -> None:
        self.identity = identity
        self.dim = dim
        self.normalize = normalize
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out: np.ndarray = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, bucket % self.dim] += 1.0
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.where(norms == 0, 1.0, norms)
        return out
