"""Per-provider caps on in-flight LLM calls, shared by every client and stage in the process.

A rate limit belongs to the account, not to a stage, so every ChatClient of one provider
draws from the same limiter, and a server's Retry-After pauses all of them (`pause`).
asyncio primitives are bound to the loop that first waits on them, so each limiter keeps
one semaphore per running event loop, made on first use.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)

# In-flight calls per provider unless the caller says otherwise (config `llm.concurrency`).
# Vendors' lowest paid tiers allow these comfortably; local servers queue, so fewer help there.
DEFAULT_LIMITS: Mapping[str, int] = {
    "openai": 32, "anthropic": 16, "gemini": 32, "openrouter": 16,
    "openai-compatible": 8, "local": 4, "fake": 64,
}
FALLBACK_LIMIT = 8


class ConcurrencyLimiter:
    """`async with limiter:` holds one of `limit` slots; also counts in-flight calls and the peak.

    After `pause(seconds)` new holders wait until the pause is over before they proceed, so a
    rate-limited account stops sending instead of collecting a 429 for every queued request.
    `clock` and `sleep` are injectable for tests.
    """

    def __init__(self, limit: int, name: str = "", *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if limit < 1:
            raise ValueError(f"a concurrency limit must be at least 1, got {limit} for {name or 'a limiter'}")
        self.limit = limit
        self.name = name
        self.in_flight = 0
        self.peak = 0
        self.pauses = 0
        self._clock = clock
        self._sleep = sleep
        self._resume_at = float("-inf")
        self._lock = threading.Lock()
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            semaphore = self._semaphores.get(loop)
            if semaphore is None:
                semaphore = self._semaphores[loop] = asyncio.Semaphore(self.limit)
            return semaphore

    def resize(self, limit: int) -> None:
        """Allow `limit` calls in flight from now on: in event loops that start after this call (every
        ChatClient batch runs in a new one); a loop already running keeps the slots it has."""
        if limit < 1:
            raise ValueError(f"a concurrency limit must be at least 1, got {limit} for {self.name or 'a limiter'}")
        with self._lock:
            self.limit = limit

    def pause(self, seconds: float) -> None:
        """Hold back calls that have not started yet for `seconds` (calls in flight go on)."""
        with self._lock:
            resume_at = self._clock() + seconds
            if resume_at > self._resume_at:
                self._resume_at = resume_at
                self.pauses += 1

    async def __aenter__(self) -> ConcurrencyLimiter:
        semaphore = self._semaphore()
        await semaphore.acquire()
        try:
            while (wait := self._resume_at - self._clock()) > 0:
                await self._sleep(wait)
        except BaseException:
            semaphore.release()
            raise
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with self._lock:
            self.in_flight -= 1
        self._semaphore().release()

    def __repr__(self) -> str:
        return f"ConcurrencyLimiter(limit={self.limit}, name={self.name!r})"


class LimiterRegistry:
    """One ConcurrencyLimiter per provider name; `defaults` overrides DEFAULT_LIMITS."""

    def __init__(self, defaults: Mapping[str, int] | None = None) -> None:
        self._initial = {**DEFAULT_LIMITS, **(defaults or {})}
        self.defaults = dict(self._initial)
        self._limiters: dict[str, ConcurrencyLimiter] = {}
        self._lock = threading.Lock()

    def get(self, provider_name: str, limit: int | None = None) -> ConcurrencyLimiter:
        """The provider's limiter, made with `limit` (or the default) on first request.

        A later, different `limit` replaces the old one (the latest configuration wins, e.g. a second
        run in the same process with another `llm.concurrency`); see ConcurrencyLimiter.resize.
        """
        with self._lock:
            limiter = self._limiters.get(provider_name)
            if limiter is None:
                size = limit if limit is not None else self.defaults.get(provider_name, FALLBACK_LIMIT)
                limiter = self._limiters[provider_name] = ConcurrencyLimiter(size, provider_name)
            elif limit is not None and limit != limiter.limit:
                log.info("The %s limiter now allows %d concurrent calls (was %d).", provider_name, limit,
                         limiter.limit)
                limiter.resize(limit)
            return limiter

    def reset(self) -> None:
        """Forget every limiter made and default set since construction (their pauses, limits, counts)."""
        with self._lock:
            self._limiters.clear()
            self.defaults = dict(self._initial)

    def configure(self, limits: Mapping[str, int]) -> None:
        """Set default limits for providers whose limiter has not been made yet."""
        with self._lock:
            self.defaults.update(limits)


# The one deliberate piece of process-wide state in lmdelta.llm (STYLE rule 10 says why this is
# rare): concurrency limits must be shared by every stage that calls the same provider.
_PROCESS_REGISTRY = LimiterRegistry()


def limiter_for(provider_name: str, limit: int | None = None) -> ConcurrencyLimiter:
    """The process-wide limiter of `provider_name` (see LimiterRegistry.get)."""
    return _PROCESS_REGISTRY.get(provider_name, limit)


def configure_limits(limits: Mapping[str, int]) -> None:
    """Set the process-wide default limits, e.g. from config, before any client is built."""
    _PROCESS_REGISTRY.configure(limits)


def reset_limiters() -> None:
    """Drop every process-wide limiter and default limit, as at import. For tests (an autouse fixture),
    so a pause or a limit set by one test cannot reach the next; limiters handed out before keep working
    but are no longer shared with new clients."""
    _PROCESS_REGISTRY.reset()
