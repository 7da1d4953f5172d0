"""Sentence embeddings from a BERT-family sentence-transformers folder in plain NumPy: no torch.

The core install (`pip install lmdelta`, no `[models]` extra) embeds with this encoder, so corpus
analysis runs without torch and still uses all-MiniLM-L6-v2: the same weights, the same WordPiece
tokenizer (`tokenizers`, read from the folder's tokenizer.json), the same mean pooling, agreeing with
sentence-transformers to ~1e-6 in cosine (tests/test_numpy_bert.py checks it where torch is present).
Only the architecture all-MiniLM-L6-v2 and its kin use is supported: a `bert` encoder with absolute
positions, exact GELU and mean pooling; anything else asks for the `[models]` extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lmdelta.errors import DependencyError

SUPPORTED = "a BERT encoder (model_type bert, absolute positions, GELU) with mean pooling"


class NumpyBertEmbedder:
    def __init__(self, folder: str, identity: dict[str, Any], batch_size: int) -> None:
        self.identity = identity
        self.batch_size = batch_size
        self.config = _bert_config(Path(folder))
        self.tokenizer = _tokenizer(Path(folder), _max_length(Path(folder), self.config))
        self.weights = _weights(Path(folder))

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.config["hidden_size"]), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad little
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
            out[rows] = _mean_pool(self._encode(ids, mask), mask)
        if self.identity.get("normalize", True):
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.where(norms == 0, 1.0, norms)
        return out

    def _encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, eps = self.weights, self.config["layer_norm_eps"]
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w, "embeddings.LayerNorm", eps)
        bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)  # padding gets no attention
        for layer in range(self.config["num_hidden_layers"]):
            x = self._layer(x, bias, f"encoder.layer.{layer}.", eps)
        return x

    def _layer(self, x: np.ndarray, bias: np.ndarray, name: str, eps: float) -> np.ndarray:
        w = self.weights
        attention = _linear(self._attention(x, bias, name + "attention.self."), w, name + "attention.output.dense")
        x = _layer_norm(x + attention, w, name + "attention.output.LayerNorm", eps)
        hidden = _gelu(_linear(x, w, name + "intermediate.dense"))
        return _layer_norm(x + _linear(hidden, w, name + "output.dense"), w, name + "output.LayerNorm", eps)

    def _attention(self, x: np.ndarray, bias: np.ndarray, name: str) -> np.ndarray:
        batch, length, hidden = x.shape
        heads = self.config["num_attention_heads"]

        def split(part: str) -> np.ndarray:
            return _linear(x, self.weights, name + part).reshape(batch, length, heads, -1).transpose(0, 2, 1, 3)

        q, k, v = split("query"), split("key"), split("value")
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(q.shape[-1])) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        return (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)


def _linear(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    # One 2-D product (a BLAS gemm); numpy runs a 3-D @ 2-D product as many small ones, 2-3x slower.
    out = x.reshape(-1, x.shape[-1]) @ w[name + ".weight"].T
    out += w[name + ".bias"]
    return out.reshape(*x.shape[:-1], -1)


def _layer_norm(x: np.ndarray, w: dict[str, np.ndarray], name: str, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(eps)) * w[name + ".weight"] + w[name + ".bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's `gelu`; erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, float32's own
    resolution), which vectorises to a few exp/mul passes, ~4x faster than scipy.special.erf on float32."""
    z = np.abs(x) * np.float32(1 / np.sqrt(2.0))
    t = 1.0 / (1.0 + np.float32(0.3275911) * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf_abs = 1.0 - poly * np.exp(-z * z)
    return (0.5 * x * (1.0 + np.sign(x) * erf_abs)).astype(np.float32, copy=False)


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    summed = (hidden * mask[:, :, None]).sum(axis=1)
    return summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)


def _bert_config(folder: Path) -> dict[str, Any]:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    pooling = _read_json(folder / "1_Pooling" / "config.json") or {"pooling_mode_mean_tokens": True}
    fits = (
        config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act") == "gelu"
        and pooling.get("pooling_mode_mean_tokens")
        and not any(pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens"))
    )
    if not fits or not (folder / "model.safetensors").exists() or not (folder / "tokenizer.json").exists():
        raise DependencyError(
            f"The embedding model in {folder} needs torch: without it lmdelta embeds only with {SUPPORTED}, "
            "stored as model.safetensors with a tokenizer.json.",
            "Install the models extra: pip install 'lmdelta[models]' (on a machine without a GPU, add "
            "--extra-index-url https://download.pytorch.org/whl/cpu), or use embed.model: "
            "embedded:all-MiniLM-L6-v2.",
        )
    return config


def _max_length(folder: Path, config: dict[str, Any]) -> int:
    settings = _read_json(folder / "sentence_bert_config.json") or {}
    return int(min(settings.get("max_seq_length", 512), config["max_position_embeddings"]))


def _tokenizer(folder: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch
    return tokenizer


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    raw = load_file(str(folder / "model.safetensors"))
    # Some exports keep the BertModel prefix; the encoder is the same either way.
    return {name.removeprefix("bert."): np.asarray(value, dtype=np.float32) for name, value in raw.items()}


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
