"""Per-connection caps on in-flight LLM calls, shared by every client and stage in the process.

A rate limit belongs to a server and an account, not to a stage, so every ChatClient of one
connection (provider, base URL, key) draws from the same limiter, and a server's Retry-After
pauses all of them (`pause`); two servers of one provider type keep separate limits.
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
from dataclasses import dataclass

from lmdelta.llm.types import Provider

log = logging.getLogger(__name__)

# In-flight calls per connection of a provider unless the caller says otherwise (config `llm.concurrency`).
# Vendors' lowest paid tiers allow these comfortably; local servers queue, so fewer help there.
DEFAULT_LIMITS: Mapping[str, int] = {
    "openai": 32,
    "anthropic": 16,
    "gemini": 32,
    "openrouter": 16,
    "openai-compatible": 8,
    "local": 4,
    "fake": 64,
}
FALLBACK_LIMIT = 8


@dataclass(frozen=True)
class Connection:
    """What one limiter serves: a provider type, the server it calls, and the account (a short hash
    of the API key, see providers.keys.key_fingerprint; never the key). The default limit is the
    provider type's."""

    provider: str
    base_url: str | None = None
    account: str | None = None

    @classmethod
    def of(cls, provider: Provider) -> Connection:
        """A provider's connection: its name, and its `base_url` and `account` where it has them (adapters
        that call a server have a base URL; those that hold a key, an account)."""
        return cls(provider.name, getattr(provider, "base_url", None), getattr(provider, "account", None))

    def __str__(self) -> str:
        server = f"@{self.base_url}" if self.base_url else ""
        account = f" (key {self.account[:6]}…)" if self.account else ""
        return f"{self.provider}{server}{account}"


class ConcurrencyLimiter:
    """`async with limiter:` holds one of `limit` slots; also counts in-flight calls and the peak.

    After `pause(seconds)` new holders wait until the pause is over before they proceed, so a
    rate-limited account stops sending instead of collecting a 429 for every queued request.
    `clock` and `sleep` are injectable for tests.
    """

    def __init__(
        self,
        limit: int,
        name: str = "",
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
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
            weakref.WeakKeyDictionary()
        )

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
    """One ConcurrencyLimiter per connection; `defaults` (per provider type) overrides DEFAULT_LIMITS."""

    def __init__(self, defaults: Mapping[str, int] | None = None) -> None:
        self._initial = {**DEFAULT_LIMITS, **(defaults or {})}
        self.defaults = dict(self._initial)
        self._limiters: dict[Connection, ConcurrencyLimiter] = {}
        self._lock = threading.Lock()

    def get(self, connection: Connection | str, limit: int | None = None) -> ConcurrencyLimiter:
        """The connection's limiter (a bare provider name is the connection with no URL or account),
        made with `limit` (or the provider's default) on first request.

        A later, different `limit` replaces the old one (the latest configuration wins, e.g. a second
        run in the same process with another `llm.concurrency`); see ConcurrencyLimiter.resize.
        """
        if isinstance(connection, str):
            connection = Connection(connection)
        with self._lock:
            limiter = self._limiters.get(connection)
            if limiter is None:
                size = limit if limit is not None else self.defaults.get(connection.provider, FALLBACK_LIMIT)
                limiter = self._limiters[connection] = ConcurrencyLimiter(size, str(connection))
            elif limit is not None and limit != limiter.limit:
                log.info("The %s limiter now allows %d concurrent calls (was %d).", connection, limit, limiter.limit)
                limiter.resize(limit)
            return limiter

    def reset(self) -> None:
        """Forget every limiter made and default set since construction (their pauses, limits, counts)."""
        with self._lock:
            self._limiters.clear()
            self.defaults = dict(self._initial)

    def configure(self, limits: Mapping[str, int]) -> None:
        """Set default limits per provider type, for connections whose limiter has not been made yet."""
        with self._lock:
            self.defaults.update(limits)


# The one deliberate piece of process-wide state in lmdelta.llm (STYLE rule 10 says why this is
# rare): concurrency limits must be shared by every stage that calls the same server with the same key.
_PROCESS_REGISTRY = LimiterRegistry()


def limiter_for(connection: Connection | str, limit: int | None = None) -> ConcurrencyLimiter:
    """The process-wide limiter of a connection, e.g. `Connection.of(provider)` (see LimiterRegistry.get)."""
    return _PROCESS_REGISTRY.get(connection, limit)


def configure_limits(limits: Mapping[str, int]) -> None:
    """Set the process-wide default limits, e.g. from config, before any client is built."""
    _PROCESS_REGISTRY.configure(limits)


def reset_limiters() -> None:
    """Drop every process-wide limiter and default limit, as at import. For tests (an autouse fixture),
    so a pause or a limit set by one test cannot reach the next; limiters handed out before keep working
    but are no longer shared with new clients."""
    _PROCESS_REGISTRY.reset()
