"""Build generators and embedders from config, and name their identities for cache keys.

An identity holds everything that can change a model's output: the model and the hash of its
files, revision, dtype, system prompt, chat template switch, adapter, backend options.

Served models (`api:`) answer through the LLM layer, which sits above backends: callers that may
meet one pass `served` (`lmdelta.llm.served.ServedModels`), so this package never imports llm.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from lmdelta.backends.device import resolve_device, resolve_dtype
from lmdelta.backends.embedders.fake import HashingEmbedder
from lmdelta.backends.embedders.numpy_bert import NumpyBertEmbedder
from lmdelta.backends.embedders.st import SentenceTransformerEmbedder
from lmdelta.backends.generators.fake import FakeGenerator
from lmdelta.backends.generators.hf import HFGenerator
from lmdelta.backends.generators.hf_load import load_tokenizer
from lmdelta.backends.generators.vllm import VLLMGenerator
from lmdelta.backends.protocols import (
    Embedder,
    GenerationRequest,
    Generator,
    LoglikGenerator,
    PromptLengths,
    ServedModels,
)
from lmdelta.backends.registry import ModelRef, check_available, model_folder, model_weights_id, parse_model
from lmdelta.backends.textformat import encode_prompt, use_chat_template
from lmdelta.config import EmbedConfig, ModelSpec
from lmdelta.credentials import redact
from lmdelta.errors import ConfigError, DependencyError, ModelNotFoundError
from lmdelta.filehash import folder_sha256

BACKENDS = {"fake": "fake", "api": "api", "vllm": "vllm"}  # every other kind runs on transformers
MODELS_EXTRA = (
    "Install the models extra: pip install 'lmdelta[models]' (on a machine without a GPU, add "
    "--extra-index-url https://download.pytorch.org/whl/cpu, or pip pulls torch's CUDA build)"
)


def generator_identity(
    spec: ModelSpec, device: str, cache_dir: Path, served: ServedModels | None = None
) -> dict[str, Any]:
    """Everything that shapes this side's answers. Options left at their defaults are left out, so
    adding an option never changes the keys of answers generated before it existed. The backend is the
    one that runs here: `backend: auto` on a machine that gains CUDA and vLLM names vLLM, so answers
    transformers generated are generated again."""
    ref = parse_model(spec.model, "generator")
    if ref.kind == "api":
        ref = ModelRef("api", _served(served, spec).name(ref.name))
    if ref.kind not in BACKENDS:
        check_local_models_installed(spec.model)
    backend = generator_backend(spec, ref, device)
    check_available(ref, spec.revision)
    if backend == "vllm" or (backend == "hf" and spec.quantization != "none"):
        check_accelerator(spec, backend, device)
    identity: dict[str, Any] = {
        "backend": backend,
        "model": str(ref),
        "weights": model_weights_id(ref, spec.revision, cache_dir),
        "revision": spec.revision,
        "dtype": _dtype(spec, backend, device),
        "system_prompt": spec.system_prompt,
        "chat_template": spec.chat_template,
        "adapter": _adapter_identity(spec.adapter, cache_dir),
        "trust_remote_code": spec.trust_remote_code,
        "backend_args": redact(spec.backend_args),  # a key in a header must not reach the manifest
    }
    if spec.quantization != "none":
        identity["quantization"] = spec.quantization
    if spec.reasoning.enabled:
        identity["reasoning"] = spec.reasoning.model_dump()
    if backend == "api":
        identity["served"] = _served(served, spec).identity(ref.name, spec)
    return identity


def generator_backend(spec: ModelSpec, ref: ModelRef, device: str) -> str:
    """Who runs the side: the model string's prefix decides (fake:, api:, vllm:); a model loaded in this
    process runs on `spec.backend`, whose `auto` is vLLM where it can run the side here, else transformers."""
    if ref.kind in BACKENDS:
        return BACKENDS[ref.kind]
    if spec.backend == "vllm":
        _check_vllm_settings(spec)
        if not importable("vllm"):
            raise DependencyError(
                f"{spec.model}: backend is vllm, and vLLM is not installed.",
                "pip install 'lmdelta[vllm]' on a machine with a CUDA GPU, or set backend: auto (transformers "
                "runs the side where vLLM cannot).",
            )
        return "vllm"
    if spec.backend == "transformers" or spec.adapter or spec.quantization == "8bit":
        return "hf"
    return "vllm" if importable("vllm") and resolve_device(device).startswith("cuda") else "hf"


def _check_vllm_settings(spec: ModelSpec) -> None:
    """backend: vllm asked for settings vLLM cannot run: say which, before anything loads."""
    if spec.adapter:
        raise ConfigError(
            f"{spec.model}: backend vllm cannot apply the adapter {spec.adapter}.",
            "Set backend: transformers (or auto), or merge the adapter into a copy of the model.",
        )
    if spec.quantization == "8bit":
        raise ConfigError(
            f"{spec.model}: backend vllm quantizes in 4-bit only.",
            "Set quantization: 4bit, or backend: transformers (or auto) for 8-bit.",
        )


def _served(served: ServedModels | None, spec: ModelSpec) -> ServedModels:
    if not isinstance(served, ServedModels):
        raise ConfigError(
            f"{spec.model} is a served model, and served models cannot be used here.",
            "Use a model loaded in this process (a folder, a Hugging Face id or an embedded: name).",
        )
    return served


def _dtype(spec: ModelSpec, backend: str, device: str) -> str:
    if backend in ("fake", "api"):
        return "none"
    if spec.quantization != "none":
        return "bfloat16"  # the compute dtype of both bitsandbytes schemes
    return resolve_dtype(spec.dtype, resolve_device(device))


def check_accelerator(spec: ModelSpec, backend: str, device: str) -> None:
    """bitsandbytes quantization and vLLM need a CUDA GPU: say so before anything loads."""
    resolved = resolve_device(device)
    what = "vLLM" if backend == "vllm" else f"{spec.quantization} quantization (bitsandbytes)"
    if not resolved.startswith("cuda"):
        raise DependencyError(
            f"{spec.model}: {what} needs a CUDA GPU, and this run's device is {resolved}.",
            "Run on a machine with an NVIDIA GPU, or set quantization: none and use dtype: "
            "bfloat16 / float32 (on CPU), and a model without the vllm: prefix (backend: auto or transformers).",
        )


def _adapter_identity(adapter: str | None, cache_dir: Path) -> dict[str, str] | None:
    if adapter is None:
        return None
    if not Path(adapter).is_dir():
        raise ModelNotFoundError(f"Adapter folder {adapter} does not exist.", "Point adapter to a PEFT adapter folder.")
    return {"path": adapter, "files": folder_sha256(Path(adapter), cache_dir)}


def build_generator(
    spec: ModelSpec, identity: dict[str, Any], device: str, cache_dir: Path, served: ServedModels | None = None
) -> Generator:
    """The side's generator; `served` builds it for a served model."""
    ref = parse_model(spec.model, "generator")
    if ref.kind == "fake":
        return FakeGenerator(ref.name, spec.backend_args, identity)
    if ref.kind == "api":
        served = _served(served, spec)
        return served.generator(spec, served.name(ref.name), identity, cache_dir)
    folder = model_folder(ref, spec.revision, cache_dir)
    if identity["backend"] == "vllm":
        return VLLMGenerator(spec, folder, identity)
    return HFGenerator(spec, folder, identity, resolve_device(device))


class TokenizerLengths:
    """Prompt lengths from the side's tokenizer alone, encoded as its generator encodes them: what batching
    needs, without loading weights (the weights load where a Ray worker runs)."""

    def __init__(self, spec: ModelSpec, folder: str, identity: dict[str, Any]) -> None:
        self.spec = spec
        self.tokenizer = load_tokenizer(spec, folder, identity)
        self.use_chat = use_chat_template(spec, self.tokenizer)

    def prompt_length(self, request: GenerationRequest) -> int:
        return len(encode_prompt(self.spec, self.tokenizer, request.prompt, self.use_chat))


def build_prompt_lengths(spec: ModelSpec, identity: dict[str, Any], cache_dir: Path) -> PromptLengths:
    """What the side's generator says of prompt lengths, without its weights."""
    ref = parse_model(spec.model, "generator")
    if ref.kind == "fake":
        return FakeGenerator(ref.name, spec.backend_args, identity)
    return TokenizerLengths(spec, model_folder(ref, spec.revision, cache_dir), identity)


def build_loglik_generator(spec: ModelSpec, identity: dict[str, Any], device: str, cache_dir: Path) -> LoglikGenerator:
    """The side's generator, for scoring answers by log-likelihood: a model run in this process by
    transformers (or a fake), since vLLM and served models do not score given texts. A side whose answers
    vLLM generated because `backend` is `auto` is scored with transformers."""
    if identity["backend"] == "vllm" and parse_model(spec.model, "generator").kind != "vllm":
        identity = {**identity, "backend": "hf"}
    generator = build_generator(spec, identity, device, cache_dir)
    if not isinstance(generator, LoglikGenerator):
        generator.close()
        raise ConfigError(
            f"{spec.model} cannot score texts by log-likelihood.",
            "Load that model with transformers (no api:/vllm: prefix).",
        )
    return generator


def embedder_identity(config: EmbedConfig, cache_dir: Path) -> dict[str, Any]:
    ref = parse_model(config.model, "embedder")
    check_available(ref)
    return {
        "backend": "fake" if ref.kind == "fake" else embedding_backend(config),
        "model": str(ref),
        "weights": model_weights_id(ref, None, cache_dir),
        "normalize": config.normalize,
    }


def build_embedder(config: EmbedConfig, identity: dict[str, Any], cache_dir: Path) -> Embedder:
    ref = parse_model(config.model, "embedder")
    if ref.kind == "fake":
        return HashingEmbedder(identity, normalize=config.normalize)
    folder = model_folder(ref, None, cache_dir)
    if identity["backend"] == "numpy":
        return NumpyBertEmbedder(folder, identity, config.batch_size)
    return SentenceTransformerEmbedder(folder, identity, resolve_device(config.device), config.batch_size)


def embedding_backend(config: EmbedConfig) -> str:
    """Who computes embeddings: sentence-transformers when asked or installed, else the NumPy encoder."""
    if config.backend != "auto":
        if config.backend == "sentence-transformers" and not importable("sentence_transformers"):
            raise DependencyError(
                "embed.backend is sentence-transformers, which is not installed.",
                f"{MODELS_EXTRA}, or set embed.backend: auto (lmdelta's NumPy encoder then embeds).",
            )
        return config.backend
    return "sentence-transformers" if importable("sentence_transformers") else "numpy"


def importable(module: str) -> bool:
    """Whether a module could be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is broken or blocked
        return False


def check_local_models_installed(model: str) -> None:
    """A model run in this process needs torch and transformers (the `[models]` extra): say so before a run."""
    missing = [name for name in ("torch", "transformers") if not importable(name)]
    if missing:
        raise DependencyError(
            f"{model} runs in this process with torch and transformers, and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed.",
            f"{MODELS_EXTRA}; or compare saved outputs instead (prompts.source: corpus), or use a served "
            "model (api:PROVIDER/MODEL, with the [llm] extra).",
        )
