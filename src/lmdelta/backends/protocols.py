"""What the stages ask of a model backend: batch generation and batch embedding; and what the
factory asks of the LLM layer for served models."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from lmdelta.config import ModelSpec


@dataclass(frozen=True)
class GenerationRequest:
    """One answer to produce. `seed` alone decides the sampling noise, whatever the batch."""

    key: str
    prompt_id: str
    prompt: str
    index: int
    seed: int


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int
    temperature: float
    top_p: float


FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Generation:
    """One answer. With two-stage decoding, `text` is the answer alone and `reasoning` the thinking
    before it (kept for inspection, never analysed); `n_tokens` counts the answer's tokens, and
    `reasoning_closed` says whether the model ended its thinking within the budget."""

    text: str
    n_tokens: int
    finish_reason: FinishReason
    reasoning: str | None = None
    reasoning_tokens: int = 0
    reasoning_closed: bool | None = None  # the model wrote the end marker itself (False: it was forced)


class PromptLengths(Protocol):
    def prompt_length(self, request: GenerationRequest) -> int:
        """Length of the request's encoded input, for bucketing batches."""
        ...


class Generator(PromptLengths, Protocol):
    """Answers batches of prompts with one model. `identity` names everything that shapes its output."""

    identity: dict[str, Any]

    def generate(self, requests: list[GenerationRequest], settings: SamplingSettings) -> list[Generation]: ...

    def close(self) -> None: ...


@runtime_checkable
class StreamingGenerator(Generator, Protocol):
    """A generator that takes all of a side's requests at once and returns answers as they finish
    (transformers: continuous batching), where `streams` says it can."""

    streams: bool

    def stream(
        self, requests: list[GenerationRequest], settings: SamplingSettings, rows: int | None
    ) -> Iterator[tuple[list[GenerationRequest], list[Generation]]]:
        """(requests, their answers) in chunks of about `rows` (None: the backend's own choice of rows), every
        request exactly once."""
        ...


@runtime_checkable
class LoglikGenerator(Generator, Protocol):
    """A generator that also scores given answers (transformers and fake models; not vLLM or served ones)."""

    def loglik(self, pairs: list[tuple[str, str]]) -> list[tuple[float, int]]:
        """(total log-probability of the answer given the prompt, its token count) per (prompt, answer)."""
        ...


class Embedder(Protocol):
    identity: dict[str, Any]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Rows of float32 vectors, one per text, in order."""
        ...


@runtime_checkable
class ServedModels(Protocol):
    """Models served elsewhere (`api:` model strings), which answer through the LLM layer's client.
    That layer sits above backends (its local chat provider runs backends' models), so the factory
    gets this from its caller (`lmdelta.llm.served.ServedModels`) instead of importing it."""

    def name(self, model: str) -> str:
        """The canonical name of the served model a generator string names after `api:` (checked)."""
        ...

    def identity(self, name: str, spec: ModelSpec) -> dict[str, Any]:
        """The served part of the side's identity: provider, model, base URL, endpoint."""
        ...

    def generator(self, spec: ModelSpec, name: str, identity: dict[str, Any], cache_dir: Path) -> Generator: ...
