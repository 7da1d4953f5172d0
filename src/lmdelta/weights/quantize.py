"""A side loaded with bitsandbytes quantization (`quantization: 4bit | 8bit`) runs on other weights than the ones
on disk: this rebuilds them, one matrix at a time, so the analysis measures the quantization error as it
measures a finetune (ΔW = Q(W) − W). Nothing here needs a GPU or bitsandbytes.

- 4bit: NF4 as lmdelta configures it (hf_load.quantization_config: no double quantization of the block
  scales), blocks of 64 consecutive weights, each scaled by its absolute maximum and rounded to the nearest of
  the 16 NF4 levels (Dettmers et al. 2023, QLoRA, Appendix E), then used in the bfloat16 compute dtype.
- 8bit: LLM.int8's weight quantization, each output row scaled by its absolute maximum to int8. At run time the
  input features whose activations pass the outlier threshold (6.0) use the 16-bit weights instead, which
  depends on the inputs: the error here is that of the int8 part, an upper bound for those columns.

Like transformers, only linear layers are quantized: the embeddings and the output head keep their weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmdelta.weights.checkpoint import Checkpoint, TensorInfo

NF4_LEVELS = np.array(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    dtype=np.float32,
)
NF4_BLOCK = 64
KEPT = ("embed", "lm_head", "wte", "wpe")  # name parts of the matrices bitsandbytes leaves in 16 bits
SCHEMES = ("4bit", "8bit")


def nf4_roundtrip(weights: np.ndarray, block: int = NF4_BLOCK) -> np.ndarray:
    """The weights NF4 quantization gives back, in float32 (before the compute dtype's rounding)."""
    flat = weights.astype(np.float32, copy=False).ravel()
    padded = np.zeros(-(-flat.size // block) * block, dtype=np.float32)
    padded[: flat.size] = flat
    blocks = padded.reshape(-1, block)
    scale = np.abs(blocks).max(axis=1, keepdims=True)
    normalised = blocks / np.where(scale == 0, 1.0, scale)
    midpoints = (NF4_LEVELS[1:] + NF4_LEVELS[:-1]) / 2
    codes = np.searchsorted(midpoints, normalised)
    return (NF4_LEVELS[codes] * scale).ravel()[: flat.size].reshape(weights.shape)


def int8_roundtrip(weights: np.ndarray) -> np.ndarray:
    """The weights row-wise absmax int8 quantization gives back (LLM.int8's weight part)."""
    matrix = weights.astype(np.float32, copy=False)
    scale = np.abs(matrix).max(axis=1, keepdims=True) / 127.0
    safe = np.where(scale == 0, 1.0, scale)
    return np.clip(np.rint(matrix / safe), -127, 127) * safe


def to_bfloat16(values: np.ndarray) -> np.ndarray:
    """Round float32 to the nearest bfloat16 (ties to even), returned as float32."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded & np.uint32(0xFFFF0000)).view(np.float32)


def is_quantized(info: TensorInfo) -> bool:
    """Whether bitsandbytes quantizes this tensor: the 2-D weight of a linear layer."""
    return len(info.shape) == 2 and info.name.endswith(".weight") and not any(k in info.name for k in KEPT)


@dataclass(frozen=True)
class QuantizedCheckpoint(Checkpoint):
    """A checkpoint read as a side loaded with `scheme` sees it: its linear layers' weights quantized."""

    scheme: str = "4bit"

    def read(self, name: str) -> np.ndarray:
        weights = super().read(name)
        if not is_quantized(self.tensors[name]):
            return weights
        if self.scheme == "4bit":
            return to_bfloat16(nf4_roundtrip(weights))
        return int8_roundtrip(weights)


def as_loaded(checkpoint: Checkpoint, quantization: str) -> Checkpoint:
    """The checkpoint as a side with this `quantization` setting runs it."""
    if quantization not in SCHEMES:
        return checkpoint
    return QuantizedCheckpoint(checkpoint.folder, checkpoint.tensors, quantization)
