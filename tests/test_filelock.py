"""The lock that keeps two processes from building the same cached artifact at once."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from lmdelta.filelock import locked


def test_a_held_lock_excludes_a_second_holder_and_is_let_go(tmp_path: Path) -> None:
    path = tmp_path / ".build.lock"
    with locked(path):
        assert path.exists()
        other = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    other = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(other)


def test_a_lock_file_nobody_may_write_can_still_be_locked(tmp_path: Path) -> None:
    """Another user's lock file (0444 here): the lock opens it read-only, which flock needs no more than."""
    path = tmp_path / ".build.lock"
    path.write_text("")
    path.chmod(0o444)
    with locked(path):
        pass
    assert path.read_text() == ""
