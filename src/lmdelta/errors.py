"""The exceptions lmdelta raises on purpose, each with a message that says what to do next.

    LmdeltaError            base: a problem the user can fix; the CLI prints it without a traceback
    ├── ConfigError         a config file, field or --set override is invalid
    ├── ModelNotFoundError  a model string resolves to nothing (with near matches)
    ├── PromptBankError     a prompt bank is missing, empty, malformed or has duplicate ids
    ├── RunDirError         a run directory is unusable (other tool version, not a run directory)
    ├── DependencyError     an optional package is missing (names the pip extra)
    ├── StageError          a stage could not finish; finished work is kept
    └── ResourceError       the machine said no: a full disk, a permission, memory

`explain_environment_error` turns the OS's own exceptions into a ResourceError with the fix.
"""

from __future__ import annotations

import difflib
import errno
import sqlite3
from collections.abc import Callable, Iterable


class LmdeltaError(Exception):
    """A problem with the user's input or environment, with a fix.

    `str(err)` is one paragraph: what is wrong, then what to do about it.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem} {fix}")


class ConfigError(LmdeltaError):
    """A config file, field or override is invalid."""


class ModelNotFoundError(LmdeltaError):
    """A model string does not name a model that can be loaded here."""


class PromptBankError(LmdeltaError):
    """A prompt bank cannot be used as it is."""


class RunDirError(LmdeltaError):
    """A run directory cannot be used for this run."""


class DependencyError(LmdeltaError):
    """An optional dependency is missing."""


class StageError(LmdeltaError):
    """A stage could not finish."""


class ResourceError(LmdeltaError):
    """The operating system refused: no space, no permission, no memory."""


_CACHE = "the lmdelta cache (LMDELTA_CACHE_DIR, default ~/.cache/lmdelta)"
_RESUME = "run the same command again: finished work is kept and the run resumes"


def explain_environment_error(exc: BaseException) -> ResourceError | None:
    """A ResourceError saying what the machine refused and what to do, or None if `exc` is not one."""
    if isinstance(exc, MemoryError) or _tensor_out_of_memory(exc):
        return ResourceError(
            "The machine ran out of memory.",
            "Use fewer prompts or samples (prompts.limit, generate.samples_per_prompt) or smaller "
            f"batches (generate.batch_size, embed.batch_size), then {_RESUME}.",
        )
    if isinstance(exc, sqlite3.OperationalError):
        return _sqlite_error(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return _os_error(exc)
    return None


def _tensor_out_of_memory(exc: BaseException) -> bool:
    """torch's allocators say so in their own ways: torch.OutOfMemoryError (CUDA), a RuntimeError from the CPU
    allocator ("can't allocate memory")."""
    text = str(exc)
    return type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())
    )


def _sqlite_error(exc: sqlite3.OperationalError) -> ResourceError | None:
    text = str(exc)
    if "full" in text:
        return ResourceError(
            f"The disk holding {_CACHE} is full ({text}).",
            f"Free some space or point LMDELTA_CACHE_DIR to a disk with room, then {_RESUME}.",
        )
    if "readonly" in text or "unable to open" in text:
        return ResourceError(
            f"Cannot write to {_CACHE} ({text}).",
            f"Check the folder's permissions or point LMDELTA_CACHE_DIR elsewhere, then {_RESUME}.",
        )
    return None


def _os_error(exc: OSError) -> ResourceError | None:
    where = exc.filename if exc.filename is not None else "a file lmdelta was using"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return ResourceError(
            f"No space left on the disk while writing {where}.",
            f"Free some space (or use another --run-dir or LMDELTA_CACHE_DIR), then {_RESUME}.",
        )
    if code in (errno.EACCES, errno.EPERM):
        return ResourceError(
            f"Permission denied: {where}.",
            "Give this user access to it (ls -l shows the owner and mode), or use another path.",
        )
    if code == errno.EROFS:
        return ResourceError(
            f"{where} is on a read-only file system.",
            "Use a writable place for the run directory (--run-dir) and the cache (LMDELTA_CACHE_DIR).",
        )
    if code == errno.ENOTDIR:
        return ResourceError(f"A part of the path {where} is a file, not a folder.", "Check the path.")
    if code == errno.EMFILE:
        return ResourceError("Too many open files.", f"Raise the limit (ulimit -n 4096), then {_RESUME}.")
    return None


def did_you_mean(word: str, choices: Iterable[str], show: Callable[[str], str] = repr) -> str:
    """The start of a fix for an unknown name: "Did you mean 'x'? " with the nearest choice, or ""."""
    near = difflib.get_close_matches(word, list(choices), n=1)
    return f"Did you mean {show(near[0])}? " if near else ""
