"""Build generators and embedders from config, and name their identities for cache keys.

An identity holds everything that can change a model's output: the model and the hash of its
files, revision, dtype, system prompt, chat template switch, adapter, backend options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmdelta.backends.device import resolve_device, resolve_dtype
from lmdelta.backends.protocols import Embedder, Generator
from lmdelta.backends.registry import check_available, model_folder, model_weights_id, parse_model
from lmdelta.config import EmbedConfig, ModelSpec


def generator_identity(spec: ModelSpec, device: str, cache_dir: Path) -> dict[str, Any]:
    ref = parse_model(spec.model, "generator")
    check_available(ref, spec.revision)
    identity: dict[str, Any] = {
        "backend": "fake" if ref.kind == "fake" else "hf",
        "model": str(ref),
        "weights": model_weights_id(ref, spec.revision, cache_dir),
        "revision": spec.revision,
        "dtype": "none" if ref.kind == "fake" else resolve_dtype(spec.dtype, resolve_device(device)),
        "system_prompt": spec.system_prompt,
        "chat_template": spec.chat_template,
        "adapter": _adapter_identity(spec.adapter, cache_dir),
        "trust_remote_code": spec.trust_remote_code,
        "backend_args": spec.backend_args,
    }
    return identity


def _adapter_identity(adapter: str | None, cache_dir: Path) -> dict[str, str] | None:
    if adapter is None:
        return None
    from lmdelta.errors import ModelNotFoundError
    from lmdelta.filehash import folder_sha256

    if not Path(adapter).is_dir():
        raise ModelNotFoundError(f"Adapter folder {adapter} does not exist.", "Point adapter to a PEFT adapter folder.")
    return {"path": adapter, "files": folder_sha256(Path(adapter), cache_dir)}


def build_generator(spec: ModelSpec, identity: dict[str, Any], device: str, cache_dir: Path) -> Generator:
    ref = parse_model(spec.model, "generator")
    if ref.kind == "fake":
        from lmdelta.backends.generators.fake import FakeGenerator

        return FakeGenerator(ref.name, spec.backend_args, identity)
    from lmdelta.backends.generators.hf import HFGenerator

    folder = model_folder(ref, spec.revision, cache_dir)
    return HFGenerator(spec, folder, identity, resolve_device(device))


def embedder_identity(config: EmbedConfig, cache_dir: Path) -> dict[str, Any]:
    ref = parse_model(config.model, "embedder")
    check_available(ref)
    return {
        "backend": "fake" if ref.kind == "fake" else "sentence-transformers",
        "model": str(ref),
        "weights": model_weights_id(ref, None, cache_dir),
        "normalize": config.normalize,
    }


def build_embedder(config: EmbedConfig, identity: dict[str, Any], cache_dir: Path) -> Embedder:
    ref = parse_model(config.model, "embedder")
    if ref.kind == "fake":
        from lmdelta.backends.embedders.fake import HashingEmbedder

        return HashingEmbedder(identity, normalize=config.normalize)
    from lmdelta.backends.embedders.st import SentenceTransformerEmbedder

    folder = model_folder(ref, None, cache_dir)
    return SentenceTransformerEmbedder(folder, identity, resolve_device(config.device), config.batch_size)
