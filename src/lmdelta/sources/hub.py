"""Online copies of the public prompt sets: fetch only the files a loader reads from the
Hugging Face Hub (or find them in its cache), then read the folder like a local copy."""

from __future__ import annotations

import os
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from lmdelta.errors import DependencyError, PromptBankError

# What each loader reads from the Hub dataset; nothing else is downloaded.
PATTERNS: dict[str, list[str]] = {
    "persona": ["persona/*"],
    "advanced-ai-risk": ["advanced-ai-risk/**"],
    "truthfulqa": ["generation/*"],
    "bold": ["*.json"],
}
# Where to get a local copy instead, and the path to show in the example.
LOCAL_COPIES: dict[str, tuple[str, str]] = {
    "persona": ("github.com/anthropics/evals", "evals"),
    "advanced-ai-risk": ("github.com/anthropics/evals", "evals"),
    "truthfulqa": ("github.com/sylinrl/TruthfulQA", "TruthfulQA.csv"),
    "bold": ("github.com/amazon-science/bold", "bold"),
}


def hub_folder(kind: str, repo_id: str, revision: str | None = None) -> Path:
    """The local folder holding `kind`'s files from the Hub dataset `repo_id` (at `revision`: a
    branch, tag or commit; default main): the cached copy when it has them, else a fresh download
    (refused when HF_HUB_OFFLINE is set)."""
    if kind not in PATTERNS:
        raise PromptBankError(
            f"The {kind} prompt set has no Hugging Face Hub copy lmdelta can fetch.",
            f"Download it and pass its local path: prompts.source={kind}:/path/to/it.",
        )
    download = _snapshot_download()
    cached = _cached(download, repo_id, PATTERNS[kind], revision)
    if cached is not None:
        return cached
    if _offline():
        raise _unavailable(
            kind,
            repo_id,
            "HF_HUB_OFFLINE is set and its files are not in the Hugging Face cache",
            "Unset HF_HUB_OFFLINE to download them, or ",
        )
    try:
        return Path(download(repo_id, repo_type="dataset", allow_patterns=PATTERNS[kind], revision=revision))
    except Exception as exc:  # network, auth, a missing repo: every failure has the same fix
        raise _unavailable(kind, repo_id, f"the download failed ({type(exc).__name__}: {exc})", "") from None


def _snapshot_download() -> Callable[..., Any]:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DependencyError(
            "Fetching a prompt set from the Hub needs huggingface_hub.",
            "Install it with `pip install huggingface_hub`, or pass a local copy.",
        ) from None
    return snapshot_download


def _cached(download: Callable[..., Any], repo_id: str, patterns: list[str], revision: str | None) -> Path | None:
    """The cached snapshot folder, when it holds files for these patterns (an earlier download of
    another part of the same dataset leaves a snapshot without them)."""
    try:
        folder = Path(
            download(repo_id, repo_type="dataset", allow_patterns=patterns, local_files_only=True, revision=revision)
        )
    except Exception:  # not cached: huggingface_hub raises one of several error types
        return None
    return folder if _holds(folder, patterns) else None


def _holds(folder: Path, patterns: list[str]) -> bool:
    files = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return any(fnmatch(name, pattern) for name in files for pattern in patterns)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _unavailable(kind: str, repo_id: str, reason: str, fix_start: str) -> PromptBankError:
    home, example = LOCAL_COPIES[kind]
    how = f"{fix_start}download a copy ({home} or huggingface.co/datasets/{repo_id}) and pass its local path"
    return PromptBankError(
        f"The {kind} prompt set ({repo_id}) is not available: {reason}.",
        f"{how[0].upper()}{how[1:]}, e.g. prompts.source={kind}:/path/to/{example}.",
    )
