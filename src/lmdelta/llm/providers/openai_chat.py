"""OpenAI chat completions through the official `openai` SDK, for OpenAI itself, OpenRouter and
any OpenAI-compatible server (vLLM, llama.cpp, Ollama…). Translation only: the SDK's own
retries are off (max_retries=0) because `llm.client` owns retries, limits, cache and cost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from lmdelta.credentials import looks_like_credential
from lmdelta.errors import ConfigError
from lmdelta.llm.providers.http import (
    DEFAULT_TIMEOUT,
    LoopClient,
    error_text,
    kind_for_status,
    looks_like_content_policy,
    require_sdk,
    retry_after_seconds,
)
from lmdelta.llm.providers.keys import NO_KEY, Secret
from lmdelta.llm.providers.registry import OPENAI_URL
from lmdelta.llm.types import ChatRequest, ChatResponse, ProviderError, Usage

log = logging.getLogger(__name__)
FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter"}
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


class OpenAIChat:
    """One OpenAI-style chat model behind one base URL."""

    OPTIONS: tuple[str, ...] = ("timeout", "max_tokens_field", "headers")

    def __init__(
        self,
        model: str,
        *,
        name: str = "openai",
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_tokens_field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        openai = require_sdk("openai", name)
        self.name = name
        self.model = model
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        self._secret = Secret(api_key)
        self.account = self._secret.fingerprint()  # tells keys apart for concurrency limits (llm.limiter)
        self._public_headers = public_headers(headers, self._secret)
        # OpenAI's newer models refuse `max_tokens`; most other servers only know `max_tokens`.
        self._token_field = max_tokens_field or (
            "max_completion_tokens" if self.base_url == OPENAI_URL else "max_tokens"
        )
        if self._token_field not in TOKEN_FIELDS:
            raise ConfigError(
                f"max_tokens_field {self._token_field!r} is not one of {', '.join(TOKEN_FIELDS)}.",
                "Use max_tokens for most servers, max_completion_tokens for OpenAI's.",
            )
        # api_key is always passed (never None), so the SDK cannot pick up OPENAI_API_KEY and send
        # an OpenAI key to OpenRouter or to someone's local server.
        self._client = LoopClient(
            lambda: openai.AsyncOpenAI(
                api_key=api_key or NO_KEY,
                base_url=self.base_url,
                max_retries=0,
                timeout=float(timeout),
                default_headers=headers,
            ),
            lambda client: client.close(),
        )

    def identity(self) -> dict[str, Any]:
        """Provider, model, base URL, and the extra headers that are not credentials (a header such as
        `X-Variant: lora-7` can select another adapter on the server, so it can change answers)."""
        identity: dict[str, Any] = {"provider": self.name, "model": self.model, "base_url": self.base_url}
        if self._public_headers:
            identity["headers"] = self._public_headers
        return identity

    def __repr__(self) -> str:
        return f"OpenAIChat(provider={self.name!r}, model={self.model!r}, base_url={self.base_url!r})"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        import openai

        try:
            reply = await self._create(self._params(request))
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        except openai.APITimeoutError:
            raise ProviderError("timeout", f"{self.name} {self.model}: request timed out") from None
        except openai.APIConnectionError as exc:
            raise ProviderError("transient", self._text("connection failed:", exc.__cause__ or exc)) from None
        except json.JSONDecodeError as exc:
            # A 200 whose body is not JSON is a broken proxy or an overloaded server cutting the
            # answer short, not a problem with our request: the same request usually works again.
            raise ProviderError("transient", self._text("answer was not valid JSON:", exc)) from None
        except openai.OpenAIError as exc:
            raise ProviderError("unknown", self._text(type(exc).__name__, exc)) from None
        return self._translate(reply, request)

    async def _create(self, params: dict[str, Any]) -> Any:
        """The endpoint call (chat completions here; text completions in the subclass)."""
        return await self._client.get().chat.completions.create(**params)

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            self._token_field: request.max_tokens,
            "temperature": request.temperature,
        }
        if request.top_p is not None:
            params["top_p"] = request.top_p
        if request.stop:
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.seed
        if request.logprobs is not None:
            params["logprobs"] = True
            params["top_logprobs"] = request.logprobs
        return params

    def _translate(self, reply: Any, request: ChatRequest) -> ChatResponse:
        from openai.types.chat import ChatCompletion

        if not isinstance(reply, ChatCompletion):  # the SDK hands back text when the body is not JSON
            raise ProviderError("transient", f"{self.name} {self.model}: answer was not a chat completion")
        try:
            choice = reply.choices[0]
            usage = reply.usage
            text = choice.message.content
            refused = text is None and getattr(choice.message, "refusal", None)
            finish = "content_filter" if refused else FINISH.get(choice.finish_reason or "stop", "stop")
            return ChatResponse(
                text=text or "",
                usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
                finish_reason=finish,
                logprobs=_logprobs(choice.logprobs) if request.logprobs is not None else None,
                model=reply.model or None,
            )
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            # The SDK builds replies without validation, so a body missing fields surfaces here.
            raise ProviderError("transient", self._text("answer lacked fields:", repr(exc))) from None

    def _status_error(self, exc: Any) -> ProviderError:
        status = exc.status_code
        kind = kind_for_status(status)
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("code") or body.get("type")
        if kind == "bad_request" and (
            code in ("content_filter", "content_policy_violation") or looks_like_content_policy(exc.message)
        ):
            kind = "content_filter"
        retry_after = retry_after_seconds(exc.response.headers) if kind in ("rate_limit", "transient") else None
        message = self._text(f"HTTP {status}", code and f"({code})", body.get("message") or exc.message)
        return ProviderError(kind, message, retry_after=retry_after, status=status)

    def _text(self, *parts: object) -> str:
        return error_text(self._secret, f"{self.name} {self.model}:", *parts)

    async def aclose(self) -> None:
        await self._client.aclose()


def public_headers(headers: Mapping[str, Any] | None, secret: Secret) -> dict[str, str]:
    """Extra headers that may enter cache keys and manifests: names lower-cased (HTTP ignores case),
    sorted; never one named like a credential (Authorization, X-Api-Key, Cookie…) or holding the key."""
    public = {}
    for name, value in (headers or {}).items():
        text = str(value)
        if looks_like_credential(str(name)) or secret.redact(text) != text:
            continue
        public[str(name).lower()] = text
    return dict(sorted(public.items()))


def _logprobs(logprobs: Any) -> list[dict[str, float]] | None:
    """Per generated token, {token: logprob} over the top alternatives, always including the chosen one."""
    if logprobs is None or not getattr(logprobs, "content", None):
        return None
    out = []
    for item in logprobs.content:
        alternatives = {alt.token: float(alt.logprob) for alt in (item.top_logprobs or [])}
        alternatives.setdefault(item.token, float(item.logprob))
        out.append(alternatives)
    return out
