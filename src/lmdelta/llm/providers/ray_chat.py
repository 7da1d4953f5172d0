"""A local chat model (`local/…`) served by a pool of Ray actors when `execution.engine` is ray: the LLM judge,
proposer or example writer's calls spread over one model replica per worker (per GPU on a GPU cluster).

It is the local provider as far as the rest of the LLM layer can tell: the same identity (so the response
cache is shared with runs on one machine), the same gathered batches and the same per-request seeds, computed
by `LocalChat.generate_batch` on the workers. The ChatClient around it still owns the cache, retries,
concurrency and accounting; only the batches travel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmdelta import execution
from lmdelta.config import ExecutionConfig
from lmdelta.llm.providers.gather import Gatherer
from lmdelta.llm.providers.local_chat import LocalChat, provider_error
from lmdelta.llm.types import ChatRequest, ChatResponse, ErrorKind, ProviderError

BATCHES_PER_WORKER = 2  # one computing and one waiting, so a worker never idles between batches


@dataclass(frozen=True)
class ChatTask:
    """The workers of a stage's local LLMs (execution.Task): each loads a model the first time a batch asks for
    it, so the judge, the strong judge and the proposer share one pool however many local models they name."""

    def start(self) -> _ChatWorker:
        return _ChatWorker()


@dataclass(frozen=True)
class _Failure:
    """A batch's failure as the worker's result: Ray would pass the exception on as text."""

    kind: ErrorKind
    message: str


class _ChatWorker:
    def __init__(self) -> None:
        self.chats: dict[tuple[str, str], LocalChat] = {}

    def __call__(self, item: tuple[str, dict[str, Any], list[ChatRequest]]) -> list[ChatResponse] | _Failure:
        model, options, batch = item
        key = (model, repr(sorted(options.items())))
        try:
            if key not in self.chats:
                self.chats[key] = LocalChat(model, **options)
            return self.chats[key].generate_batch(batch)
        except Exception as exc:  # returned, so that out of memory stays transient and is retried
            error = provider_error(model, exc)
            return _Failure(error.kind, error.message)


class RayChat:
    """LocalChat's batches computed by a pool of Ray actors (execution.Pool), several batches at a time."""

    OPTIONS = LocalChat.OPTIONS
    name = "local"  # priced and named as the local model …
    base_url = "ray"  # … with a concurrency limiter of its own (llm.limiter.Connection): `concurrency` calls

    def __init__(self, model: str, options: dict[str, Any], section: ExecutionConfig) -> None:
        self._local = LocalChat(model, **options)  # checks the model and options here; never loaded here
        self.model = self._local.model
        # The dtype the identity (the cache key) names, decided here as for generation, not on each worker.
        self._options = {**options, "dtype": self._local.identity()["dtype"]}
        self._model_arg = model
        self._pool = execution.Pool.of(section, ChatTask(), "local LLMs")
        window = max(0.0, float(options.get("batch_window_ms", 5.0))) / 1000
        size = max(1, int(options.get("max_batch", 16)))
        parallel = self._pool.size * BATCHES_PER_WORKER
        self.concurrency = size * parallel
        self._gatherer = Gatherer(self._send, window=window, size=size, parallel=parallel, error=self._error)

    def identity(self) -> dict[str, Any]:
        return self._local.identity()

    def __repr__(self) -> str:
        return f"RayChat(model={self.model!r}, workers={self._pool.size})"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return await self._gatherer.submit(request)

    async def _send(self, batch: list[ChatRequest]) -> list[ChatResponse]:
        result = await self._pool.compute((self._model_arg, self._options, batch))
        if isinstance(result, _Failure):
            raise ProviderError(result.kind, result.message)
        return result

    def _error(self, exc: Exception) -> ProviderError:
        return provider_error(self.model, exc)

    async def aclose(self) -> None:
        """The end of one batch of calls; the workers and their models stay for the next (execution.release)."""
        self._gatherer.close(ProviderError("unknown", f"local {self.model}: closed before answering"))
