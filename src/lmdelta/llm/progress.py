"""Progress of a batch of LLM calls: how many are answered, the rate, the time left, the tokens and what was
spent, as progress events (the live display) and as log lines (a stage that judges thousands of texts used to
be silent until it finished)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from lmdelta.llm.types import CallResult
from lmdelta.progress import Meter

T = TypeVar("T")
log = logging.getLogger("lmdelta.llm")
EVERY_SECONDS = 10.0  # at most one line per this many seconds, and one at the end of a batch that took longer
SMALL_BATCH = 20  # fewer calls than this log no line: they finish before anyone waits


class BatchProgress:
    """Counts finished calls of one batch and logs "judge: 340/2,000 calls, 12.3/s, ~2 min left, $0.42 spent"."""

    def __init__(
        self, label: str, total: int, spent: Callable[[], float | None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.label, self.total, self.spent, self.clock = label, total, spent, clock
        self.done = self.tokens = self.failed = 0
        self.start = self.last = clock()
        self.meter = Meter(label, total, "calls", clock)

    async def track(self, call: Awaitable[T]) -> T:
        result = await call
        self.done += 1
        self._count(result)
        now = self.clock()
        line = self.total >= SMALL_BATCH and (now - self.last >= EVERY_SECONDS or self._finished_late(now))
        if line or self.meter.due(self.done):
            event = self.meter.update(self.done, **self._extras())
            if line:
                self.last = now
                log.info("%s", event)
        return result

    def _count(self, result: object) -> None:
        """Tokens and failures, from a call's result when it is the client's (CallResult, parsed) pair."""
        first = result[0] if isinstance(result, tuple) and result else None
        if isinstance(first, CallResult):
            self.tokens += first.usage.input_tokens + first.usage.output_tokens
            self.failed += not first.ok

    def _extras(self) -> dict[str, float]:
        spent = self.spent()
        extras = {"tokens": float(self.tokens), "failed": float(self.failed)}
        return extras | ({"cost_usd": spent} if spent else {})

    def _finished_late(self, now: float) -> bool:
        return self.done == self.total and now - self.start >= EVERY_SECONDS
