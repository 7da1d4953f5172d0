"""A scripted Provider for tests: replies, errors and latency in a given order, calls recorded.
(Fakes a config file can name, `fake/script@PATH` and `fake/keywords`, are in llm.providers.fake.)

It honours the Provider contract (raises only ProviderError) and fails loudly, past the
client's error handling, when a test asks it for more replies than it scripted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias

from lmdelta.llm.types import ChatRequest, ChatResponse, ProviderError, Usage

# One scripted step: a reply text, a full ChatResponse, a ProviderError to raise, or a function of
# the request returning any of those.
Reply: TypeAlias = str | ChatResponse | ProviderError
Step: TypeAlias = Reply | Callable[[ChatRequest], Reply]


class ScriptExhausted(BaseException):
    """The fake was called more often than scripted.

    A BaseException (like pytest's own `fail`) so ChatClient's catch-all for provider bugs does
    not turn a test mistake into a quiet "unknown" failure.
    """


def reply(
    text: str,
    input_tokens: int = 10,
    output_tokens: int | None = None,
    finish_reason: str = "stop",
    logprobs: list[dict[str, float]] | None = None,
) -> ChatResponse:
    """A ChatResponse with simple token counts (output: one per word unless given)."""
    output = output_tokens if output_tokens is not None else max(1, len(text.split()))
    return ChatResponse(text=text, usage=Usage(input_tokens, output), finish_reason=finish_reason, logprobs=logprobs)


class FakeProvider:
    """Answers from `script` in order, then from `responder` if given, else raises ScriptExhausted.

    `latency` (seconds, or a function of the request) is awaited through `sleep` before each
    answer, so tests can overlap calls; `calls` records every request received, and
    `in_flight` / `max_in_flight` show how many were being served at once. `name` is the provider
    name it reports (pricing, limiters, logs).
    """

    def __init__(
        self,
        script: Iterable[Step] = (),
        *,
        responder: Callable[[ChatRequest], Reply] | None = None,
        model: str = "fake-model",
        latency: float | Callable[[ChatRequest], float] = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        base_url: str | None = None,
        name: str = "fake",
    ) -> None:
        self.name = name  # another name stands in for a vendor: "fake" itself is priced at $0
        self.model = model
        self.base_url = base_url
        self._script: deque[Step] = deque(script)
        self._responder = responder
        self._latency = latency
        self._sleep = sleep
        self.calls: list[ChatRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = 0

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url}

    @property
    def remaining(self) -> int:
        """Scripted steps not used yet."""
        return len(self._script)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay = self._latency(request) if callable(self._latency) else self._latency
            if delay:
                await self._sleep(delay)
            return self._answer(request)
        finally:
            self.in_flight -= 1

    def _answer(self, request: ChatRequest) -> ChatResponse:
        if self._script:
            step = self._script.popleft()
        elif self._responder is not None:
            step = self._responder
        else:
            raise ScriptExhausted(
                f"FakeProvider({self.model!r}) got call {len(self.calls)} but its script "
                "is used up and it has no responder"
            )
        outcome = step(request) if callable(step) else step
        if isinstance(outcome, ProviderError):
            raise outcome
        return reply(outcome) if isinstance(outcome, str) else outcome

    async def aclose(self) -> None:
        self.closed += 1
