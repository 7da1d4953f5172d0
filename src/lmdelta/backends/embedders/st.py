"""Embeddings with sentence-transformers (the embedded all-MiniLM-L6-v2 by default)."""

from __future__ import annotations

from typing import Any

import numpy as np


class SentenceTransformerEmbedder:
    def __init__(self, folder: str, identity: dict[str, Any], device: str, batch_size: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.identity = identity
        self.batch_size = batch_size
        self.model = SentenceTransformer(folder, device=device)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.identity["normalize"],
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
