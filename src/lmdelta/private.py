"""Folders and files that hold users' prompts and answers (the caches): for their owner's eyes only.

A cache is created 0700 and its databases 0600, whatever the umask; folders and files that
already exist keep the mode they have (a team may share a cache on purpose).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) with the leaf readable by its owner only."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def private_file(path: Path) -> Path:
    """Create an empty `path` with mode 0600 unless it exists (SQLite's -wal/-shm files follow it)."""
    path = Path(path)
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    return path
