"""Progress of a batch of LLM calls, as log lines: how many are answered, the rate, the time left and what
was spent (a stage that judges thousands of texts used to be silent until it finished)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("lmdelta.llm")
EVERY_SECONDS = 10.0  # at most one line per this many seconds, and one at the end of a batch that took longer
SMALL_BATCH = 20  # fewer calls than this say nothing: they finish before anyone waits


class BatchProgress:
    """Counts finished calls of one batch and logs "judge: 340/2,000 calls, 12.3/s, ~2 min left, $0.42 spent"."""

    def __init__(self, label: str, total: int, spent: Callable[[], float | None]) -> None:
        self.label, self.total, self.spent = label, total, spent
        self.done = 0
        self.start = self.last = time.monotonic()

    async def track(self, call: Awaitable[T]) -> T:
        result = await call
        self.done += 1
        now = time.monotonic()
        if self.total >= SMALL_BATCH and (now - self.last >= EVERY_SECONDS or self._finished_late(now)):
            self.last = now
            log.info(self.line(now))
        return result

    def _finished_late(self, now: float) -> bool:
        return self.done == self.total and now - self.start >= EVERY_SECONDS

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        parts = [f"{self.label}: {self.done:,}/{self.total:,} calls", f"{rate:.1f}/s"]
        if self.done < self.total:
            parts.append(f"~{_duration(left)} left")
        spent = self.spent()
        if spent:
            parts.append(f"${spent:.2f} spent")
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
