"""Concurrent `complete` calls gathered into batches for providers that compute a list at once (a local
model in a worker thread, a pool of Ray actors): callers of the same few milliseconds share one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from lmdelta.llm.types import ChatRequest, ChatResponse, ProviderError

Send = Callable[[list[ChatRequest]], Awaitable[Sequence[ChatResponse]]]


class Gatherer:
    """Requests gathered for `window` seconds into batches of at most `size`, each handed to `send` (list in,
    list out), at most `parallel` batches in flight. A failed batch fails each of its callers with
    `error(exception)`; `close` fails the callers still waiting."""

    def __init__(
        self, send: Send, *, window: float, size: int, parallel: int, error: Callable[[Exception], ProviderError]
    ) -> None:
        self._send, self._error = send, error
        self._window, self._size, self._parallel = max(0.0, window), max(1, size), max(1, parallel)
        self._pending: list[tuple[ChatRequest, asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None
        self._sending: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None

    async def submit(self, request: ChatRequest) -> ChatResponse:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # each batch of calls runs in an event loop of its own (LLMSession.asker)
            self._loop, self._slots, self._sending = loop, asyncio.Semaphore(self._parallel), set()
        future = loop.create_future()
        self._pending.append((request, future))
        if self._drainer is None or self._drainer.done() or self._drainer.get_loop() is not loop:
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        slots = self._slots
        assert slots is not None
        while self._pending:
            await asyncio.sleep(self._window)  # let the other callers of this moment join the batch
            await slots.acquire()
            batch, self._pending = self._pending[: self._size], self._pending[self._size :]
            live = [(r, f) for r, f in batch if not f.done() and f.get_loop() is loop]
            if not live:
                slots.release()
                continue
            task = loop.create_task(self._answer(live))
            self._sending.add(task)
            task.add_done_callback(partial(self._settled, live, slots))

    async def _answer(self, live: list[tuple[ChatRequest, asyncio.Future]]) -> None:
        try:
            replies = await self._send([r for r, _ in live])
        except Exception as exc:  # one failure fails the whole batch, each caller with its own error
            _fail(live, self._error(exc))
        else:
            for (_, future), reply in zip(live, replies):
                if not future.done():
                    future.set_result(reply)

    def _settled(
        self, live: list[tuple[ChatRequest, asyncio.Future]], slots: asyncio.Semaphore, task: asyncio.Task
    ) -> None:
        """A batch's end, however it ended: its slot is free again, and callers of a batch cancelled by `close`
        (while computing, or before it started) get an error rather than waiting for ever."""
        self._sending.discard(task)
        slots.release()
        if task.cancelled():
            _fail(live, self._error(RuntimeError("closed before answering")))

    def close(self, error: ProviderError) -> None:
        """Stop gathering; every caller still waiting gets `error`."""
        for task in [self._drainer, *self._sending]:
            if task is not None and not task.done() and not task.get_loop().is_closed():
                task.cancel()
        _fail([(r, f) for r, f in self._pending if not f.get_loop().is_closed()], error)
        self._pending = []


def _fail(callers: list[tuple[Any, asyncio.Future]], error: ProviderError) -> None:
    for _, future in callers:
        if not future.done():
            future.set_exception(error)
