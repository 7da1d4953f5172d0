"""Generation by a model served elsewhere (`api:` models): a vLLM, llama.cpp or Ollama server, or a
hosted API. It lives in the LLM layer, which sits above `backends`: backends' factory gets it
through `ServedModels` (the `backends.protocols.ServedModels` contract), so backends never import llm.

Every answer is one call (two with two-stage reasoning) through `llm.client.ChatClient`, which
owns concurrency, retries (Retry-After included), the response cache and accounting; this module
only turns generation requests into chat requests and replies into Generations.

Prompts go to the chat endpoint, with the side's system prompt as a system message, unless the
side sets `chat_template: false`: then the raw text (system prompt, blank line, prompt) goes to
the text-completions endpoint (`/v1/completions`, OpenAI-style servers only), as the
transformers backend would feed it.

Each call carries `seed` = the request's seed reduced to 31 bits, so servers that honour seeds
(vLLM, llama.cpp) reproduce an answer. Hosted APIs treat seeds as best effort or ignore them, so
their answers can change between uncached runs.

Two-stage reasoning: on the completions endpoint the thinking is decoded first (up to
`reasoning.max_tokens`, stopped at `reasoning.end`), then the marker is forced and the answer
decoded (with the answer-stage seed of the local backends). A chat API cannot be made to emit
the end marker, so there one call gets both budgets and the reply is split at the marker afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lmdelta.backends.generators.reasoning import answer_seed
from lmdelta.backends.protocols import FinishReason, Generation, GenerationRequest, Generator, SamplingSettings
from lmdelta.backends.textformat import plain_text, split_reasoning
from lmdelta.config import LLMConfig, ModelSpec
from lmdelta.errors import ConfigError, ModelNotFoundError, StageError
from lmdelta.llm.cache import ResponseCache, cache_key
from lmdelta.llm.client import ChatClient
from lmdelta.llm.pricing import Budget, CostLedger
from lmdelta.llm.providers import build_provider, parse_model_string
from lmdelta.llm.providers.openai_completions import build_completions_provider
from lmdelta.llm.session import fatal_stop, make_client
from lmdelta.llm.types import FATAL, CallResult, ChatRequest, Message, Provider

log = logging.getLogger(__name__)
SEED_MODULUS = 2**31  # servers take seeds as signed 32-bit ints (llama.cpp) or smaller


def served_identity(ref_name: str, spec: ModelSpec, llm: LLMConfig | None) -> dict[str, Any]:
    """The served model's identity (provider, model, base URL, endpoint; never a key).

    Building the provider checks the model string and that its API key exists, so a dry run
    stops here with the missing-key error.
    """
    _check_spec(spec, ref_name)
    provider = build_served_provider(ref_name, spec, llm)
    return {**provider.identity(), "endpoint": endpoint_for(spec)}


def endpoint_for(spec: ModelSpec) -> str:
    """The endpoint a side's prompts go to: `completions` (raw text) when it turns the chat template
    off, else `chat`."""
    return "completions" if spec.chat_template is False else "chat"


def build_served_provider(ref_name: str, spec: ModelSpec, llm: LLMConfig | None) -> Provider:
    """The chat or text-completions adapter of the served model."""
    key_file = llm.key_file if llm is not None else None
    if endpoint_for(spec) == "completions":
        return build_completions_provider(ref_name, key_file=key_file, backend_args=spec.backend_args)
    return build_provider(ref_name, key_file=key_file, backend_args=spec.backend_args)


def _check_spec(spec: ModelSpec, ref_name: str) -> None:
    """Options that only make sense for weights loaded here."""
    if spec.adapter:
        raise ConfigError(
            f"{ref_name} is served elsewhere, so the adapter {spec.adapter} cannot be applied to it.",
            "Serve the adapted model (e.g. vLLM's --lora-modules) and name it, or remove adapter.",
        )
    if spec.quantization != "none":
        raise ConfigError(
            f"{ref_name} is served elsewhere; quantization {spec.quantization} cannot be applied here.",
            "Quantize on the server, and set quantization: none for this side.",
        )


def api_seed(seed: int) -> int:
    """A request seed as a non-negative 31-bit int, which every seed-taking server accepts."""
    return seed % SEED_MODULUS


class APIGenerator:
    """Answers through a served model's chat or text-completions endpoint.

    `session` (an LLMSession) lets a stage count these calls with the run's other LLM spending and
    cap them by its budget; without one the generator keeps its own ledger, with no spending cap.
    """

    def __init__(
        self,
        spec: ModelSpec,
        ref_name: str,
        identity: dict[str, Any],
        llm: LLMConfig,
        cache_dir: Path,
        session: Any = None,
    ) -> None:
        _check_spec(spec, ref_name)
        self.identity = identity
        self.spec = spec
        self.ref_name = ref_name
        self.endpoint = endpoint_for(spec)
        self.provider = build_served_provider(ref_name, spec, llm)
        self.key_file = llm.key_file
        accounts = (session.ledger, session.budget) if session is not None else (None, None)
        self.client = _chat_client(self.provider, llm, Path(cache_dir), *accounts)

    def prompt_length(self, request: GenerationRequest) -> int:
        """The prompt's length in characters (only used to bucket batches)."""
        return len(request.prompt)

    def generate(self, requests: list[GenerationRequest], settings: SamplingSettings) -> list[Generation]:
        """One Generation per request, in order; StageError if any call failed after retries."""
        if not requests:
            return []
        reasoning = self.spec.reasoning
        if reasoning.end is not None and self.endpoint == "completions":  # reasoning is on
            return self._two_stage(requests, settings, reasoning.end)
        budget = settings.max_new_tokens + (reasoning.max_tokens if reasoning.enabled else 0)
        calls = [self._call(self._messages(r.prompt), r, budget, settings) for r in requests]
        results = self._run(calls)
        return [self._generation(call, result) for call, result in zip(calls, results)]

    def _two_stage(self, requests: list[GenerationRequest], settings: SamplingSettings, end: str) -> list[Generation]:
        """Think until the end marker `end` or the thinking budget, force the marker, then answer."""
        reasoning = self.spec.reasoning
        heads = [self._text(r.prompt) + (reasoning.start or "") for r in requests]
        thinking = [
            self._call(_user(head), r, reasoning.max_tokens, settings, stop=(end,)) for head, r in zip(heads, requests)
        ]
        thoughts = self._run(thinking)
        answering = [
            self._call(
                _user(head + (thought.text or "") + end),
                r,
                settings.max_new_tokens,
                settings,
                seed=answer_seed(r.seed),
            )
            for head, thought, r in zip(heads, thoughts, requests)
        ]
        answers = self._run(answering)
        out = []
        for think_call, thought, answer_call, answer in zip(thinking, thoughts, answering, answers):
            text = _answer_text(answer)
            out.append(
                Generation(
                    text=text.strip(),
                    n_tokens=self._tokens(answer_call, answer, text),
                    finish_reason=_finish(answer),
                    reasoning=(thought.text or "").strip(),
                    reasoning_tokens=self._tokens(think_call, thought, thought.text or ""),
                )
            )
        return out

    def _text(self, prompt: str) -> str:
        """The raw text a completions endpoint continues (as the transformers backend builds it)."""
        return plain_text(self.spec.system_prompt, prompt)

    def _messages(self, prompt: str) -> tuple:
        if self.endpoint == "completions":
            return _user(self._text(prompt))
        system = self.spec.system_prompt
        return ((Message("system", system),) if system else ()) + (Message("user", prompt),)

    @staticmethod
    def _call(
        messages: tuple,
        request: GenerationRequest,
        max_tokens: int,
        settings: SamplingSettings,
        stop: tuple[str, ...] = (),
        seed: int | None = None,
    ) -> ChatRequest:
        """One call for a request; `seed` replaces the request's own (the answer stage's seed)."""
        return ChatRequest(
            messages=messages,
            max_tokens=max_tokens,
            temperature=settings.temperature,
            top_p=None if settings.top_p >= 1.0 else settings.top_p,
            stop=stop,
            seed=api_seed(request.seed if seed is None else seed),
            sample_index=request.index,
        )

    def _run(self, calls: list[ChatRequest]) -> list[CallResult]:
        """All calls through the client; StageError once the whole batch is done if any failed (the
        client stops sending after a rejected key, an unknown model or a refused request)."""
        results = self.client.run(calls)
        if any(r.error_kind in FATAL for r in results):
            raise fatal_stop(self.ref_name, results, "generate", self.key_file)
        failed = [r for r in results if not r.ok and r.error_kind != "content_filter"]
        if failed:
            first = failed[0]
            raise StageError(
                f"{len(failed)} of {len(results)} calls to {self.ref_name} failed after retries "
                f"(first: {first.error_kind}: {first.error_message}).",
                "Answers already finished are kept, and replies received are cached: run the same "
                "command again to resume once the server answers (check its URL, key and model name).",
            )
        filtered = sum(r.error_kind == "content_filter" for r in results)
        if filtered:
            log.warning(
                "%s filtered %d of %d replies; they are kept as they came (often empty)",
                self.ref_name,
                filtered,
                len(results),
            )
        return results

    def _generation(self, call: ChatRequest, result: CallResult) -> Generation:
        text = _answer_text(result)
        tokens = self._tokens(call, result, text)
        end = self.spec.reasoning.end
        if end is None:  # reasoning is off
            return Generation(text=text.strip(), n_tokens=tokens, finish_reason=_finish(result))
        reasoning, answer = self._split(text, end)
        thought_tokens = _share(tokens, len(reasoning or ""), len(answer))
        return Generation(
            text=answer,
            n_tokens=tokens - thought_tokens,
            finish_reason=_finish(result),
            reasoning=reasoning,
            reasoning_tokens=thought_tokens,
        )

    def _split(self, text: str, end: str) -> tuple[str | None, str]:
        """(reasoning, answer) of a chat reply. Without the end marker, the reply is unfinished thinking
        only when it opens with the start marker; otherwise it is the answer, finished or cut off by
        the token limit (servers with a reasoning parser return the thinking elsewhere)."""
        start = self.spec.reasoning.start
        marker = (start or "").strip()
        opens = bool(marker) and text.lstrip().startswith(marker)
        if end not in text and not opens:
            return None, text.strip()
        return split_reasoning(text, start, end)

    def _tokens(self, call: ChatRequest, result: CallResult, text: str) -> int:
        """Output tokens the server counted (a cache hit looks its usage up), else a word count."""
        output = result.usage.output_tokens
        if result.cached and not output and self.client.cache is not None:
            hit = self.client.cache.get(cache_key(self.client.identity, call))
            output = hit.usage.output_tokens if hit is not None else 0
        return output if output > 0 else len(text.split())

    def close(self) -> None:
        """Close the provider's connections and the response cache."""
        try:
            asyncio.run(self.provider.aclose())
        except RuntimeError as err:  # called from inside a running event loop
            log.debug("could not close %s: %s", self.ref_name, err)
        if self.client.cache is not None:
            self.client.cache.close()


def _chat_client(
    provider: Provider, llm: LLMConfig, cache_dir: Path, ledger: CostLedger | None, budget: Budget | None
) -> ChatClient:
    """A client with the run's LLM settings, caching in cache_dir/llm.sqlite."""
    return make_client(provider, llm, ResponseCache(cache_dir / "llm.sqlite"), ledger, budget, "generate", "generator")


def _user(text: str) -> tuple:
    return (Message("user", text),)


def _answer_text(result: CallResult) -> str:
    return result.text or ""


def _finish(result: CallResult) -> FinishReason:
    return "length" if result.finish_reason == "length" else "stop"


def _share(total: int, part: int, rest: int) -> int:
    """`total` tokens apportioned to `part` by character counts (chat replies give one token count)."""
    if part + rest == 0:
        return 0
    return round(total * part / (part + rest))


def served_name(model: str) -> str:
    """The canonical `provider/model[@url]` of a served model (what follows `api:`), checked: the
    name its generator identity holds."""
    spec = parse_model_string(model)
    if spec.provider == "local":
        raise ModelNotFoundError(
            f"api:{model} names a local model, which needs no API.", f"Write the model itself: {spec.model}."
        )
    if spec.provider == "fake":
        raise ModelNotFoundError(
            f"api:{model} names a scripted assistant LLM, which cannot stand in for a model being compared.",
            "Use fake:words for a deterministic test model.",
        )
    return str(spec)


class ServedModels:
    """The LLM layer's side of backends' factory for `api:` models (backends.protocols.ServedModels).

    `session` (an LLMSession) makes the generator's calls count against the run's LLM budget and usage.
    """

    def __init__(self, llm: LLMConfig | None = None, session: Any = None) -> None:
        self.llm = llm
        self.session = session

    def name(self, model: str) -> str:
        return served_name(model)

    def identity(self, name: str, spec: ModelSpec) -> dict[str, Any]:
        return served_identity(name, spec, self.llm)

    def generator(self, spec: ModelSpec, name: str, identity: dict[str, Any], cache_dir: Path) -> Generator:
        return APIGenerator(spec, name, identity, self.llm or LLMConfig(), cache_dir, self.session)
