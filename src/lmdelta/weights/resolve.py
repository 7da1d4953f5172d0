"""A model string or folder → the local folder whose safetensors the weight analysis reads: the
registry's forms (a folder, a Hugging Face id, `embedded:NAME`, `vllm:` around either), or a LoRA
adapter folder."""

from __future__ import annotations

import os
from pathlib import Path

from lmdelta.backends.embedded import cache_root
from lmdelta.backends.registry import check_available, model_folder, parse_model
from lmdelta.errors import ModelNotFoundError
from lmdelta.weights.lora import is_adapter


def resolve_model_folder(model: str | Path, cache_dir: Path | None = None, revision: str | None = None) -> Path:
    """The local folder of `model`; the embedded SmolLM2 is converted to a Hugging Face folder (once),
    and a Hub model missing from the cache is downloaded (weights and JSON files only) unless offline."""
    path = Path(model).expanduser()
    if path.is_dir() and is_adapter(path):
        return path.resolve()
    ref = parse_model(str(model), "generator").weights
    if ref.kind not in ("embedded", "local", "hub"):
        raise ModelNotFoundError(
            f"{model} names a model without weight files here ({ref.kind}), so its weights cannot be compared.",
            "Pass a local model folder, a Hugging Face id or an embedded: model.",
        )
    check_available(ref, revision)
    folder = Path(model_folder(ref, revision, cache_dir or cache_root()))
    return folder if folder.is_dir() else _download(ref.name, revision)


def _download(repo_id: str, revision: str | None) -> Path:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelNotFoundError(
            f"Model {repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it.",
            f"Download it on a connected machine (`huggingface-cli download {repo_id}`), or pass a local folder.",
        )
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors"]
    return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
