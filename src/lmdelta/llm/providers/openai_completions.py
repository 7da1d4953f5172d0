"""OpenAI *text* completions (`POST /v1/completions`) through the official `openai` SDK: raw text
in, a continuation out, no chat template. For served base models and for exact control of the
prompt on vLLM, llama.cpp, Ollama, OpenRouter and OpenAI servers.

Translation only, like `openai_chat`: the request's single user message is the prompt text, and
`llm.client` owns retries, limits, cache and cost. The identity carries `endpoint: completions`,
so a cached chat reply can never answer a completions request with the same text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lmdelta.errors import ConfigError
from lmdelta.llm.providers.build import base_url_for, check_options, key_required
from lmdelta.llm.providers.keys import missing_key_error, resolve_key
from lmdelta.llm.providers.openai_chat import FINISH, OpenAIChat
from lmdelta.llm.providers.registry import PROVIDERS, parse_model_string
from lmdelta.llm.types import ChatRequest, ChatResponse, ProviderError, Usage

log = logging.getLogger(__name__)
# Prefixes whose servers speak the text-completions endpoint.
COMPLETIONS_PROVIDERS = ("openai", "openrouter", "openai-compatible")


class OpenAICompletions(OpenAIChat):
    """One model behind one OpenAI-style `/completions` endpoint: the chat adapter's client, errors
    and status mapping, with the text-completions call, parameters and reply."""

    OPTIONS: tuple[str, ...] = ("timeout", "headers")

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options, max_tokens_field="max_tokens")

    def identity(self) -> dict[str, Any]:
        """Provider, model, base URL and the endpoint. Never a key."""
        return {**super().identity(), "endpoint": "completions"}

    def __repr__(self) -> str:
        return f"OpenAICompletions(provider={self.name!r}, model={self.model!r}, base_url={self.base_url!r})"

    async def _create(self, params: dict[str, Any]) -> Any:
        return await self._client.get().completions.create(**params)

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt_of(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        optional = {
            "top_p": request.top_p,
            "seed": request.seed,
            "logprobs": request.logprobs,
            "stop": list(request.stop) or None,
        }
        params.update({name: value for name, value in optional.items() if value is not None})
        return params

    def _translate(self, reply: Any, request: ChatRequest | None = None) -> ChatResponse:
        from openai.types import Completion

        if not isinstance(reply, Completion):  # the SDK hands back text when the body is not JSON
            raise ProviderError("transient", f"{self.name} {self.model}: answer was not a text completion")
        try:
            choice = reply.choices[0]
            usage = reply.usage
            return ChatResponse(
                text=choice.text or "",
                usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
                finish_reason=FINISH.get(choice.finish_reason or "stop", "stop"),
                logprobs=_logprobs(choice.logprobs),
                model=reply.model or None,
            )
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise ProviderError("transient", self._text("answer lacked fields:", repr(exc))) from None


def prompt_of(request: ChatRequest) -> str:
    """The prompt text: the request must hold exactly one user message."""
    messages = request.messages
    if len(messages) != 1 or messages[0].role != "user":
        roles = ", ".join(m.role for m in messages) or "none"
        raise ProviderError("bad_request", f"a text completion takes one user message (the prompt), got: {roles}")
    return messages[0].content


def _logprobs(logprobs: Any) -> list[dict[str, float]] | None:
    """Per generated token, {token: logprob} over the top alternatives, always including the chosen one."""
    tokens = getattr(logprobs, "tokens", None) if logprobs is not None else None
    if not tokens:
        return None
    chosen = logprobs.token_logprobs or []
    tops = logprobs.top_logprobs or []
    out = []
    for i, token in enumerate(tokens):
        alternatives = {t: float(v) for t, v in (tops[i] if i < len(tops) and tops[i] else {}).items()}
        if i < len(chosen) and chosen[i] is not None:
            alternatives.setdefault(token, float(chosen[i]))
        out.append(alternatives)
    return out


def build_completions_provider(
    model_string: str, *, key_file: str | Path | None = None, backend_args: Mapping[str, Any] | None = None
) -> OpenAICompletions:
    """The completions adapter for a model string, with the same URL and key rules as build_provider."""
    spec = parse_model_string(model_string)
    if spec.provider not in COMPLETIONS_PROVIDERS:
        raise ConfigError(
            f"{spec} has no text-completions endpoint (only {', '.join(COMPLETIONS_PROVIDERS)} do).",
            "Leave chat_template unset (or true) for this model, so its prompts go through chat.",
        )
    info = PROVIDERS[spec.provider]
    url = base_url_for(info, spec, None)
    key = resolve_key(info, key_file) if info.key_env else None
    if key is None and key_required(info, url):
        raise missing_key_error(info, key_file)
    options = dict(backend_args or {})
    check_options(spec.provider, options, OpenAICompletions.OPTIONS)
    return OpenAICompletions(spec.model, name=spec.provider, api_key=key, base_url=url, **options)
