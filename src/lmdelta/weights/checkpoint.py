"""A model folder's safetensors weights, listed from the file headers and read one tensor at a time.

Single files and sharded checkpoints (model.safetensors.index.json) read the same way. Each tensor is read
from its byte span with np.fromfile, not through a memory map (whose pages would count toward the resident set
beside the copy); NumPy has no bfloat16, so BF16 is widened to float32 a block at a time into the result.
Nothing is read before it is asked for.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmdelta.errors import ModelNotFoundError, StageError

INDEX = "model.safetensors.index.json"
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")  # what a difference can be taken of; others are quantized
FLOAT_CODES = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}  # safetensors stores little-endian
BF16_BLOCK = 1 << 20  # values widened at a time (2 MiB read, 4 MiB of uint32 beside the result)
MAX_HEADER = 100_000_000  # bytes; safetensors' own limit, a larger one means a damaged file
OTHER_FORMATS = ("pytorch_model*.bin", "*.pt", "*.pth", "*.gguf", "*.ckpt")


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lies: its file, dtype code (F32, BF16, I8, ...), shape and absolute byte span."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path
    start: int
    end: int

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES


@dataclass(frozen=True)
class Checkpoint:
    """The tensors of one model folder, by name; `read` loads one of them."""

    folder: Path
    tensors: dict[str, TensorInfo]

    @classmethod
    def open(cls, folder: Path) -> Checkpoint:
        folder = Path(folder)
        tensors: dict[str, TensorInfo] = {}
        for path in weight_files(folder):
            tensors.update({info.name: info for info in read_header(path)})
        _check_index(folder, tensors)
        return cls(folder, tensors)

    def read(self, name: str) -> np.ndarray:
        """One tensor as float32 (float64 when stored so); raises for a quantized (non-float) one."""
        return read_tensor(self.tensors[name])


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a model folder: the shards its index names, else every *.safetensors."""
    index = folder / INDEX
    if index.exists():
        weight_map = _load_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise StageError(f"{index} has no weight_map.", "Re-save the model with save_pretrained().")
        files = [folder / name for name in dict.fromkeys(weight_map.values())]
        missing = [path.name for path in files if not path.exists()]
        if missing:
            raise ModelNotFoundError(
                f"{index.name} in {folder} names shard(s) that are not there: {', '.join(missing[:5])}.",
                "Finish the download (huggingface-cli download resumes it) or copy the missing shards.",
            )
        return files
    files = sorted(path for path in folder.glob("*.safetensors") if path.name != "adapter_model.safetensors")
    if files:
        return files
    others = sorted({path.name for pattern in OTHER_FORMATS for path in folder.glob(pattern)})
    found = f"; it has {', '.join(others[:3])}" if others else ""
    raise ModelNotFoundError(
        f"Model folder {folder} has no .safetensors weights{found}.",
        "Re-save the model with save_pretrained(safe_serialization=True), or convert it with "
        "transformers' from_pretrained + save_pretrained; the weight analysis reads safetensors only.",
    )


def read_header(path: Path) -> list[TensorInfo]:
    """The tensors a safetensors file holds, from its JSON header alone."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        size = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < size <= MAX_HEADER:
            raise StageError(f"{path} is not a safetensors file (bad header).", "Download or save it again.")
        try:
            header = json.loads(handle.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StageError(f"{path} has a damaged safetensors header.", "Download or save it again.") from None
    header.pop("__metadata__", None)
    base = 8 + size
    return [
        TensorInfo(name, entry["dtype"], tuple(entry["shape"]), path, base + start, base + end)
        for name, entry in header.items()
        for start, end in [entry["data_offsets"]]
    ]


def read_tensor(info: TensorInfo) -> np.ndarray:
    if not info.is_float:
        raise StageError(
            f"{info.name} is stored as {info.dtype}, a quantized type this analysis cannot dequantise.",
            "Compare float checkpoints (dequantise the model and save it in bf16/fp16/fp32 first).",
        )
    count = math.prod(info.shape)
    if info.dtype == "BF16":
        return _widen_bf16(info, count)
    # Read the bytes at their offset: a memory map's pages would count toward the resident set on top of the copy.
    stored = np.dtype(FLOAT_CODES[info.dtype])
    array = np.fromfile(info.file, dtype=stored, count=count, offset=info.start).reshape(info.shape)
    return array if array.dtype in (np.float32, np.float64) else array.astype(np.float32)


def _widen_bf16(info: TensorInfo, count: int) -> np.ndarray:
    """bf16 → float32 a block at a time into the result, so only the result and one block are ever held."""
    out = np.empty(count, dtype=np.float32)
    with open(info.file, "rb") as handle:
        handle.seek(info.start)
        for start in range(0, count, BF16_BLOCK):
            raw = np.fromfile(handle, dtype="<u2", count=min(BF16_BLOCK, count - start))
            out[start : start + raw.size] = bf16_to_float32(raw)
    return out.reshape(info.shape)


def bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) → float32: bf16 is the high half of a float32, so shift it there.
    Exact: every bf16 value (inf and nan included) is a float32."""
    widened = raw.astype(np.uint32)
    widened <<= 16
    return widened.view(np.float32)


def _check_index(folder: Path, tensors: dict[str, TensorInfo]) -> None:
    index = folder / INDEX
    if not index.exists():
        return
    listed = _load_json(index)["weight_map"]
    absent = [name for name in listed if name not in tensors]
    if absent:
        raise StageError(
            f"{index} lists {len(absent)} tensor(s) its shards lack, e.g. {', '.join(absent[:3])}.",
            "The shards and the index come from different saves: download or save the model again.",
        )


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StageError(f"{path} cannot be read as JSON ({exc}).", "Download or save the model again.") from None
    if not isinstance(data, dict):
        raise StageError(f"{path} is not a JSON object.", "Download or save the model again.")
    return data
