"""The run directory: manifest, resolved config, one folder per stage, crash-safe JSONL.

Every write that marks something finished is an atomic rename, so a run killed at any moment
leaves either the old state or the new one, never half of each.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lmdelta import RUN_FORMAT, __version__
from lmdelta.errors import RunDirError

MANIFEST = "manifest.json"


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write a whole JSONL file atomically; returns the number of rows."""
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file. A torn last line (a killed writer) is skipped; damage elsewhere raises."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not line.endswith("\n"):
                return
            raise RunDirError(f"{path} line {number} is not valid JSON.",
                              "The file was edited or damaged; delete the stage folder to recompute it.") from None


class JsonlAppender:
    """Append-only JSONL writer that repairs a torn last line left by a killed process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(path)
        self._handle = open(path, "a", encoding="utf-8")

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        self._handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as handle:
        handle.truncate(keep)


class RunDir:
    """Paths and manifest of one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def stage_dir(self, stage: str) -> Path:
        return self.root / "stages" / stage

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def check_usable(self) -> None:
        """Refuse a folder that is not ours, or a run directory of another format."""
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(f"{self.root} is a file, not a run directory.", "Choose another --run-dir.")
        if self.root.is_dir() and not self.exists() and any(self.root.iterdir()):
            raise RunDirError(f"{self.root} is not empty and is not an lmdelta run directory (no {MANIFEST}).",
                              "Choose a new or empty --run-dir so nothing there is overwritten.")
        if self.exists():
            manifest = self.load_manifest()
            if manifest.get("format") != RUN_FORMAT:
                raise RunDirError(
                    f"{self.root} was made by lmdelta {manifest.get('version', '?')} with run format "
                    f"{manifest.get('format', '?')}; this is lmdelta {__version__} with format {RUN_FORMAT}.",
                    "Start a new run with another --run-dir, or use the lmdelta version that made it.")

    def load_manifest(self) -> dict[str, Any]:
        if not self.exists():
            return {"tool": "lmdelta", "version": __version__, "format": RUN_FORMAT, "stages": {}}
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise RunDirError(f"{self.manifest_path} is damaged (not valid JSON).",
                              "Restore it, or start a new run with another --run-dir.") from None

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["version"] = __version__
        manifest["format"] = RUN_FORMAT
        manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")

    def stage_record(self, stage: str) -> dict[str, Any]:
        return self.load_manifest().get("stages", {}).get(stage, {})

    def update_stage(self, stage: str, **fields: Any) -> dict[str, Any]:
        manifest = self.load_manifest()
        record = manifest.setdefault("stages", {}).setdefault(stage, {})
        record.update(fields)
        self.save_manifest(manifest)
        return record
