"""Anthropic messages through the official `anthropic` SDK: system messages go to `system`,
stop reasons and usage come back in our terms. SDK retries are off; `llm.client` owns them.

API version 2026-10-21 (the default of SDK 2.x) rejects temperature, top_p and top_k with a 400,
so they are only sent when an older `api_version` is pinned in backend_args.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lmdelta.llm.providers.http import (
    DEFAULT_TIMEOUT,
    LoopClient,
    error_text,
    kind_for_status,
    looks_like_content_policy,
    require_sdk,
    retry_after_seconds,
)
from lmdelta.llm.providers.keys import Secret
from lmdelta.llm.types import ChatRequest, ChatResponse, ErrorKind, ProviderError, Usage

log = logging.getLogger(__name__)
SAMPLING_REMOVED = "2026-10-21"  # first API version without temperature / top_p
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}
ERROR_KINDS: dict[str, ErrorKind] = {
    "overloaded_error": "transient",
    "api_error": "transient",
    "rate_limit_error": "rate_limit",
    "timeout_error": "timeout",
}


class AnthropicChat:
    """One Claude model."""

    OPTIONS: tuple[str, ...] = ("timeout", "api_version")
    name = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        api_version: str | None = None,
    ) -> None:
        anthropic = require_sdk("anthropic", "anthropic")
        from anthropic._constants import ANTHROPIC_API_VERSION

        self.model = model
        self.base_url = (base_url or "https://api.anthropic.com").rstrip("/")
        self.api_version = api_version or ANTHROPIC_API_VERSION
        self._sampling = self.api_version < SAMPLING_REMOVED  # ISO dates compare as strings
        self._warned = False
        self._secret = Secret(api_key)
        self.account = self._secret.fingerprint()  # tells keys apart for concurrency limits (llm.limiter)
        headers = {"anthropic-version": api_version} if api_version else None
        # An explicit api_key keeps the SDK from discovering profiles or other credentials on disk.
        self._client = LoopClient(
            lambda: anthropic.AsyncAnthropic(
                api_key=api_key, base_url=self.base_url, max_retries=0, timeout=float(timeout), default_headers=headers
            ),
            lambda client: client.close(),
        )

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url, "api_version": self.api_version}

    def __repr__(self) -> str:
        return f"AnthropicChat(model={self.model!r}, base_url={self.base_url!r}, api_version={self.api_version!r})"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        import anthropic

        params = self._params(request)
        try:
            reply = await self._client.get().messages.create(**params)
        except anthropic.APIStatusError as exc:
            raise self._status_error(exc) from None
        except anthropic.APITimeoutError:
            raise ProviderError("timeout", f"anthropic {self.model}: request timed out") from None
        except anthropic.APIConnectionError as exc:
            raise ProviderError("transient", self._text("connection failed:", exc.__cause__ or exc)) from None
        except json.JSONDecodeError as exc:
            # A 200 with a broken body is an infrastructure hiccup, not our request's fault: retry.
            raise ProviderError("transient", self._text("answer was not valid JSON:", exc)) from None
        except anthropic.AnthropicError as exc:
            raise ProviderError("unknown", self._text(type(exc).__name__, exc)) from None
        return self._translate(reply)

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        turns = [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"]
        if not turns:
            raise ProviderError(
                "bad_request", f"anthropic {self.model}: a request needs a user message, not only system messages"
            )
        params: dict[str, Any] = {"model": self.model, "messages": turns, "max_tokens": request.max_tokens}
        if system:
            params["system"] = system
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        sampling = {"temperature": request.temperature, "top_p": request.top_p}
        sampling = {k: v for k, v in sampling.items() if v is not None}
        if self._sampling:
            params["extra_body"] = sampling
        elif not self._warned and (request.temperature != 1.0 or request.top_p is not None):
            self._warned = True
            log.info(
                "anthropic API %s takes no temperature/top_p; %s samples with its own settings "
                "(pin backend_args api_version to an older version to send them)",
                self.api_version,
                self.model,
            )
        return params

    def _translate(self, reply: Any) -> ChatResponse:
        try:
            text = "".join(block.text for block in reply.content if getattr(block, "type", None) == "text")
            usage = reply.usage
            # Prompt-cache reads and writes are input tokens too; counting them keeps budgets honest.
            cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
            prompt = usage.input_tokens + cached
            return ChatResponse(
                text=text,
                usage=Usage(prompt, usage.output_tokens),
                finish_reason=FINISH.get(reply.stop_reason or "end_turn", "stop"),
                logprobs=None,  # the Messages API has no logprobs
                model=reply.model or None,
            )
        except (AttributeError, TypeError) as exc:
            raise ProviderError("transient", self._text("answer lacked fields:", repr(exc))) from None

    def _status_error(self, exc: Any) -> ProviderError:
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        found = body.get("error")
        error = found if isinstance(found, dict) else {}
        error_type, message = error.get("type"), error.get("message") or exc.message
        kind = (ERROR_KINDS.get(error_type) if isinstance(error_type, str) else None) or kind_for_status(status)
        if kind == "bad_request" and looks_like_content_policy(message):
            kind = "content_filter"
        retry_after = retry_after_seconds(exc.response.headers) if kind in ("rate_limit", "transient") else None
        return ProviderError(
            kind,
            self._text(f"HTTP {status}", error_type and f"({error_type})", message),
            retry_after=retry_after,
            status=status,
        )

    def _text(self, *parts: object) -> str:
        return error_text(self._secret, f"anthropic {self.model}:", *parts)

    async def aclose(self) -> None:
        await self._client.aclose()
