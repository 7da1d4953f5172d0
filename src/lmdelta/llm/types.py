"""The records every LLM call speaks: a request, a provider's reply, a provider's error, the
client's typed result. Providers translate to and from these; everything else lives once in
`llm.client` (cache → budget → limiter → retry → provider; usage and cost).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
ErrorKind = Literal[
    "rate_limit",
    "transient",
    "timeout",
    "auth",
    "bad_request",
    "not_found",
    "content_filter",
    "budget",
    "unparseable",
    "halted",
    "unknown",
]
RETRYABLE: frozenset[str] = frozenset({"rate_limit", "transient", "timeout"})
# Errors that every other request to the same model would get too (a rejected key, an unknown model,
# a request form the server refuses): after the first one a batch stops sending, and the stage stops.
# Requests held back then fail as "halted": not sent, or not retried.
FATAL: frozenset[str] = frozenset({"auth", "not_found", "bad_request"})


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """Everything that can change an answer. All of it goes into the cache key."""

    messages: tuple[Message, ...]
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float | None = None
    logprobs: int | None = None  # ask for this many top alternatives per generated token
    stop: tuple[str, ...] = ()
    seed: int | None = None
    sample_index: int = 0  # distinguishes repeated samples of the same request

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass(frozen=True)
class ChatResponse:
    """A provider's successful reply, already translated from the vendor's format."""

    text: str
    usage: Usage
    finish_reason: str = "stop"  # "stop", "length" or "content_filter"
    # One entry per generated token: {token: logprob} for the top alternatives (None if not given).
    logprobs: list[dict[str, float]] | None = None
    model: str | None = None  # the model that actually served the call, when the vendor says


class ProviderError(Exception):
    """A vendor failure translated into a kind the client's retry policy understands."""

    def __init__(
        self, kind: ErrorKind, message: str, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass(frozen=True)
class CallResult:
    """What the client hands back for one request: never an exception, never an "ERROR: …" string."""

    ok: bool
    text: str | None = None
    error_kind: ErrorKind | None = None
    error_message: str | None = None
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    cached: bool = False  # answered without a call of its own: from the cache, or merged (below)
    finish_reason: str | None = None
    logprobs: list[dict[str, float]] | None = None
    merged: bool = False  # shared the result of an identical request in flight (also cached when ok)


class Provider(Protocol):
    """Translates requests into one vendor's API and its replies and errors back (STYLE.md rule 1)."""

    name: str  # "openai", "anthropic", "gemini", "openrouter", "openai-compatible", "local", "fake"
    model: str

    def identity(self) -> dict[str, Any]:
        """Provider, model, base URL and anything else that selects the model. Never a key."""
        ...

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """One call. Raises ProviderError on failure (and only that)."""
        ...

    async def aclose(self) -> None: ...
