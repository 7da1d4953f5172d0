"""Give memory that a finished stage freed back to the operating system.

Python's and Arrow's allocators keep freed memory for reuse: after a stage that held a whole corpus, the
process stays that size through every later stage, and the next stage's peak adds to it. `give_back` asks
Arrow's pool (when Arrow is loaded) to release what it holds unused, and glibc (`malloc_trim`) to return free
pages at the top and in the middle of its heaps. It changes no result. It does not run the cycle collector:
with torch loaded a full collection takes half a second, and what a stage frees, reference counting frees.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import mmap
import sys
from functools import cache
from typing import Any

log = logging.getLogger(__name__)


def give_back() -> None:
    """Return freed memory to the system (where the allocators allow); microseconds."""
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def release_mapped(array: Any) -> None:
    """Let go of the resident pages of a memory-mapped array (np.load's mmap_mode): a page of the file that was read
    counts towards the process's RSS until the kernel wants the memory back. Read again, it comes back from the
    page cache. Nothing happens for an array that is not memory-mapped, or where madvise is missing."""
    base = mapping_of(array)
    if base is not None and hasattr(mmap, "MADV_DONTNEED") and not base.closed:
        base.madvise(mmap.MADV_DONTNEED)


def mapping_of(array: Any) -> mmap.mmap | None:
    """The file mapping an array's memory belongs to (through views and slices of an np.memmap), or None."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


@cache
def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None on systems without it (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        log.debug("no malloc_trim in %s", name)
        return None
