"""ChatClient: the one place that does cache, budget, concurrency limit, retry and cost for LLM calls.

Providers only translate (STYLE rule 1). Every call returns a CallResult, never raises and
never hands an "ERROR: …" string to the stages (rule 4).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from lmdelta.llm.cache import ResponseCache, cache_key, check_identity
from lmdelta.llm.limiter import ConcurrencyLimiter, Connection, limiter_for
from lmdelta.llm.pricing import Budget, CostLedger, PriceTable, estimate_usage
from lmdelta.llm.retry import RetryPolicy
from lmdelta.llm.types import FATAL, CallResult, ChatRequest, ChatResponse, Provider, ProviderError, Usage
from lmdelta.safetext import without_lone_surrogates

log = logging.getLogger(__name__)

# Re-ask k of a request uses sample_index + k * REASK_STRIDE, so its cache key cannot collide
# with another sample (sample_index + 1 is the caller's next sample, not a re-ask).
REASK_STRIDE = 1_000_000


@dataclass
class _Attempts:
    """How many attempts one request has made so far; more than 0 means budget was reserved."""

    count: int = 0


@dataclass(frozen=True)
class _Estimate:
    """What one request is reserved at in the budget: an upper estimate of its cost and tokens."""

    usd: float = 0.0
    tokens: int = 0


@dataclass
class _Batch:
    """What the requests of one event loop (one batch) share.

    `flights`: the reply of each request in flight, by cache key, so an identical request made
    meanwhile waits for it instead of paying again. `fatal`: the first error every other request
    would get too (types.FATAL); once set, requests not yet sent are not sent, nor failed ones retried.
    """

    flights: dict[str, asyncio.Future] = field(default_factory=dict)
    fatal: ProviderError | None = None


def reask_request(request: ChatRequest, k: int) -> ChatRequest:
    """The k-th re-ask of `request` (k = 0 is the request itself): a new cache key and, if seeded, seed."""
    if k == 0:
        return request
    seed = None if request.seed is None else request.seed + k
    return replace(request, sample_index=request.sample_index + k * REASK_STRIDE, seed=seed)


class ChatClient:
    """Calls one provider for one (stage, role): cache → limiter → budget → provider, retried by policy.

    Identical requests in flight at the same time (same cache key, same event loop) share one
    provider call: the first goes out, the others wait for its reply and are counted as cached and
    merged. After an error every request would get (types.FATAL: a rejected key, an unknown model),
    requests of the same batch fail as "halted" instead of being sent (or retried).

    `cache`, `limiter`, `ledger` and `budget` are meant to be shared by all clients of a run;
    `limiter` defaults to the process-wide limiter of the provider's connection (`limiter_for`) and `prices`
    to the ledger's price table.
    `timeout` bounds each attempt, not the whole call (the retry policy bounds that).
    Calls are accounted under an empty stage and role until `with_labels` names them.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        cache: ResponseCache | None = None,
        limiter: ConcurrencyLimiter | None = None,
        retry: RetryPolicy | None = None,
        ledger: CostLedger | None = None,
        budget: Budget | None = None,
        prices: PriceTable | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.provider = provider
        self.identity = dict(provider.identity())
        check_identity(self.identity)
        self.cache = cache
        self.limiter = limiter if limiter is not None else limiter_for(Connection.of(provider))
        self.retry = retry if retry is not None else RetryPolicy()
        self.ledger = ledger if ledger is not None else CostLedger()
        self.budget = budget if budget is not None else Budget()
        self.prices = prices if prices is not None else self.ledger.prices
        self.stage = ""
        self.role = ""
        self.timeout = timeout
        # Per event loop, because asyncio futures belong to one loop; with_labels copies share it.
        self._batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = weakref.WeakKeyDictionary()
        self._batches_lock = threading.Lock()

    def with_labels(self, *, stage: str | None = None, role: str | None = None) -> ChatClient:
        """The same provider, cache, limiter, ledger and budget, accounted under another stage or role."""
        other = copy.copy(self)
        other.stage = self.stage if stage is None else stage
        other.role = self.role if role is None else role
        return other

    async def call(self, request: ChatRequest) -> CallResult:
        """One request: a cached reply, the reply of an identical request in flight, or a provider call."""
        key = cache_key(self.identity, request)
        batch = self._batch()
        flight = batch.flights.get(key)
        if flight is not None:
            # shield: a cancelled follower must not cancel the leader's call.
            result = _merged(await asyncio.shield(flight))
            self.ledger.record(self.stage, self.role, result, model=self.provider.model)
            return result
        hit = self._cache_get(key)
        if hit is not None:
            result = CallResult(
                ok=True, text=hit.text, cached=True, finish_reason=hit.finish_reason, logprobs=hit.logprobs
            )
            self.ledger.record(self.stage, self.role, result, model=self.provider.model)
            return result
        flight = batch.flights[key] = asyncio.get_running_loop().create_future()
        try:
            result = await self._call_provider(request, key, batch)
            flight.set_result(result)
            return result
        finally:
            del batch.flights[key]
            if not flight.done():  # the leader was cancelled: so are the requests waiting for it
                flight.cancel()

    def _batch(self) -> _Batch:
        loop = asyncio.get_running_loop()
        with self._batches_lock:
            batch = self._batches.get(loop)
            if batch is None:
                batch = self._batches[loop] = _Batch()
            return batch

    async def _call_provider(self, request: ChatRequest, key: str, batch: _Batch) -> CallResult:
        """Reserve, send (with retries), settle the budget, cache the reply and record it."""
        estimate = self._estimate(request)
        attempts = _Attempts()
        cost, priced, used = 0.0, True, Usage()
        try:
            reply = await self._send(request, estimate, attempts, batch)
            if isinstance(reply, ChatResponse):
                used = reply.usage
                cost, priced = self.prices.cost(self.provider.name, self.provider.model, used)
        finally:
            if attempts.count:  # also when cancelled: a reservation must not outlive its call
                self.budget.settle(estimate.usd, cost, estimate.tokens, used.input_tokens + used.output_tokens)
        if isinstance(reply, ChatResponse):
            self._cache_put(key, reply)
        result = self._result(reply, attempts.count, cost)
        self.ledger.record(self.stage, self.role, result, model=self.provider.model, priced=priced)
        return result

    def _estimate(self, request: ChatRequest) -> _Estimate:
        usage = estimate_usage(request)
        price = self.prices.lookup(self.provider.name, self.provider.model)
        return _Estimate(0.0 if price is None else price.cost(usage), usage.input_tokens + usage.output_tokens)

    # A cache that cannot be read or written (a disk full, a lock held past its timeout) costs
    # money, not answers: the call goes on without it.
    def _cache_get(self, key: str) -> ChatResponse | None:
        if self.cache is None:
            return None
        try:
            return self.cache.get(key)
        except sqlite3.Error as err:
            log.warning("Could not read the LLM cache %s (%s); calling the provider.", self.cache.path, err)
            return None

    def _cache_put(self, key: str, response: ChatResponse) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(key, response)  # refuses content-filtered replies itself
        except sqlite3.Error as err:
            log.warning("Could not write to the LLM cache %s (%s); this answer is not cached.", self.cache.path, err)

    async def _send(
        self, request: ChatRequest, estimate: _Estimate, attempts: _Attempts, batch: _Batch
    ) -> ChatResponse | ProviderError:
        """Attempts until a reply, a final error, a budget refusal or a fatal error elsewhere in the
        batch, each inside a limiter slot.

        The budget is reserved inside the first slot, so at most `limit` estimates are held at
        once however many requests wait. Backoff sleeps happen outside the slot.
        """
        started = self.retry.clock()
        while True:
            async with self.limiter:
                refusal = self._refusal(attempts, estimate, batch)
                if refusal is not None:
                    return refusal
                attempts.count += 1
                reply = await self._attempt(request)
            if isinstance(reply, ChatResponse):
                return reply
            if reply.kind in FATAL and batch.fatal is None:
                batch.fatal = reply
            wait = self.retry.delay(reply, attempts.count, self.retry.clock() - started)
            if wait is None:
                log.debug("%s: giving up after %d attempt(s): %s", self.provider.name, attempts.count, reply.kind)
                return reply
            if reply.kind == "rate_limit" and reply.retry_after:
                # The limit is the account's: calls not yet started wait too. Only a Retry-After the
                # policy accepted (within its budget) pauses, so a day-long quota reset cannot.
                self.limiter.pause(reply.retry_after)
            log.debug(
                "%s: %s on attempt %d; retrying in %.2f s",
                self.provider.name,
                reply.kind,
                attempts.count,
                wait,
            )
            await self.retry.sleep(wait)

    def _refusal(self, attempts: _Attempts, estimate: _Estimate, batch: _Batch) -> ProviderError | None:
        """Why the request is not sent: the batch hit a fatal error, or the budget refuses; else None."""
        if batch.fatal is not None:
            return ProviderError(
                "halted",
                f"not sent: an earlier request to {self.provider.model} failed "
                f"with {batch.fatal.kind} ({batch.fatal.message})",
            )
        if attempts.count == 0 and not self.budget.reserve(estimate.usd, estimate.tokens):
            return ProviderError("budget", self.budget.refusal())
        return None

    async def _attempt(self, request: ChatRequest) -> ChatResponse | ProviderError:
        try:
            response = await asyncio.wait_for(self.provider.complete(request), self.timeout)
            # A reply cut inside an emoji can hold half a character, which no UTF-8 file can store.
            return replace(response, text=without_lone_surrogates(response.text))
        except ProviderError as err:
            return err
        except TimeoutError:
            return ProviderError("timeout", f"{self.provider.name} sent no reply within {self.timeout:g} s")
        except Exception as err:  # a provider bug must not stop a stage; it becomes a typed, unretried failure
            log.debug("%s raised an unexpected %s", self.provider.name, type(err).__name__, exc_info=True)
            return ProviderError("unknown", f"{type(err).__name__}: {err}")

    @staticmethod
    def _result(reply: ChatResponse | ProviderError, attempts: int, cost: float) -> CallResult:
        if isinstance(reply, ProviderError):
            return CallResult(ok=False, error_kind=reply.kind, error_message=reply.message, attempts=attempts)
        filtered = reply.finish_reason == "content_filter"
        return CallResult(
            ok=not filtered,
            text=reply.text,
            attempts=attempts,
            usage=reply.usage,
            cost_usd=cost,
            finish_reason=reply.finish_reason,
            logprobs=reply.logprobs,
            error_kind="content_filter" if filtered else None,
            error_message="the provider filtered the reply" if filtered else None,
        )

    async def call_many(self, requests: Iterable[ChatRequest]) -> list[CallResult]:
        """All requests concurrently (the limiter decides how many are in flight), results in input order."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self.call(request)) for request in requests]
        return [task.result() for task in tasks]

    def run(self, requests: Iterable[ChatRequest]) -> list[CallResult]:
        """call_many for synchronous stage code. Closes the provider's connections before the loop ends,
        because they belong to that loop; providers reopen them on their next call."""
        return asyncio.run(self._run_and_close(list(requests)))

    async def _run_and_close(self, requests: list[ChatRequest]) -> list[CallResult]:
        try:
            return await self.call_many(requests)
        finally:
            await self.provider.aclose()

    async def ask_parsed(
        self, request: ChatRequest, parse: Callable[[str], Any], max_reasks: int = 2
    ) -> tuple[CallResult, Any]:
        """Call and parse; a ValueError from `parse` triggers a counted re-ask (a new sample), never a
        transport retry. After `max_reasks` it returns ok=False, error_kind="unparseable", the last text
        and None: never a silent default. A failed call is returned as is, with None."""
        problem = ""
        for k in range(max_reasks + 1):
            if k:
                self.ledger.record_reask(self.stage, self.role)
            result = await self.call(reask_request(request, k))
            if not result.ok:
                return result, None
            try:
                return result, parse(result.text or "")
            except ValueError as err:
                problem = str(err)
        self.ledger.record_failure(self.stage, self.role, "unparseable")
        message = f"no parseable answer after {max_reasks} re-ask(s): {problem}"
        return replace(result, ok=False, error_kind="unparseable", error_message=message), None


def _merged(result: CallResult) -> CallResult:
    """A leader's result as handed to an identical request that waited for it: nothing paid, nothing sent."""
    return replace(result, attempts=0, usage=Usage(), cost_usd=0.0, cached=result.ok, merged=True)
