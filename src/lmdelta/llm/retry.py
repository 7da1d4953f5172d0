"""When to try a failed LLM call again and how long to wait first: the one retry layer.

Full-jitter exponential backoff, Retry-After honoured, an attempt cap and a wall-clock budget.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lmdelta.llm.types import ProviderError

log = logging.getLogger(__name__)


@dataclass
class RetryPolicy:
    """Decides, after a failed attempt, whether to try again and after how many seconds.

    Only retryable kinds (rate_limit, transient, timeout) are retried. The wait before attempt
    k+1 is uniform in [0, min(max_delay, base_delay * 2**(k-1))] ("full jitter", so clients that
    failed together do not retry together), raised to the server's Retry-After when it sent one.
    `budget_seconds` caps the wall-clock time from the first attempt to the last: a wait that
    does not fit is shortened to the time left, and a Retry-After longer than the time left
    ends the retries at once (the server has said an earlier try would fail too).
    `sleep`, `clock` and `rng` are injectable so tests run without waiting.
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    budget_seconds: float = 300.0
    jitter: bool = True
    seed: int = 0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random | None = field(default=None, repr=False)
    """The jitter's random numbers (default: a generator seeded with `seed`)."""
    _jitter: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        self._jitter = self.rng if self.rng is not None else random.Random(self.seed)

    def backoff(self, attempts: int) -> float:
        """The jittered exponential wait after `attempts` failed attempts (no Retry-After)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempts - 1))
        return self._jitter.uniform(0.0, ceiling) if self.jitter else ceiling

    def delay(self, error: ProviderError, attempts: int, elapsed: float) -> float | None:
        """Seconds to wait before the next attempt, or None to stop and report `error`.

        `attempts` is how many attempts have been made so far (at least 1); `elapsed` is the
        wall-clock time since the first one started.
        """
        if not error.retryable or attempts >= self.max_attempts:
            return None
        remaining = self.budget_seconds - elapsed
        if remaining <= 0:
            return None
        wait = self.backoff(attempts)
        if error.retry_after is not None:
            if error.retry_after > remaining:
                log.debug(
                    "Retry-After %.1f s exceeds the %.1f s left of the retry budget", error.retry_after, remaining
                )
                return None
            wait = max(wait, error.retry_after)
        return min(wait, remaining)
