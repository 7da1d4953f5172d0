"""SHA-256 of large files, remembered by (path, size, mtime) so weights are hashed once."""

from __future__ import annotations

import json
from pathlib import Path

from lmdelta.hashing import hash_file, hash_text
from lmdelta.private import FILE_MODE, private_dir
from lmdelta.rundir import atomic_write_text


def file_sha256(path: Path, cache_dir: Path) -> str:
    path = Path(path).resolve()
    stat = path.stat()
    memo_path = cache_dir / "file-hashes.json"
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = _read(memo_path)
    if key in memo:
        return memo[key]
    digest = hash_file(path)
    memo = _read(memo_path)
    memo[key] = digest
    atomic_write_text(private_dir(memo_path.parent) / memo_path.name, json.dumps(memo, indent=0), FILE_MODE)
    return digest


def folder_sha256(folder: Path, cache_dir: Path) -> str:
    """One hash over every file of a model folder: weights, config, tokenizer, chat template."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and not _hidden(p, folder))
    parts = [f"{p.relative_to(folder)}={file_sha256(p, cache_dir)}" for p in files]
    return hash_text("\n".join(parts))


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _read(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
