"""Gemini through the `google-genai` SDK (Gemini Developer API, API-key auth): system messages go
to `system_instruction`, finish reasons, usage and logprobs come back in our terms. The SDK's
retries are off (one attempt); `llm.client` owns retries.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from lmdelta.llm.providers.http import (
    DEFAULT_TIMEOUT,
    LoopClient,
    error_text,
    kind_for_status,
    looks_like_content_policy,
    require_sdk,
    retry_after_seconds,
    transport_kind,
)
from lmdelta.llm.providers.keys import Secret
from lmdelta.llm.types import ChatRequest, ChatResponse, ProviderError, Usage

log = logging.getLogger(__name__)
DEFAULT_URL = "https://generativelanguage.googleapis.com"
FILTERED = {
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
}
DURATION = re.compile(r"^\s*([0-9.]+)s\s*$")  # google.protobuf.Duration as JSON: "7s", "0.5s"


class GeminiChat:
    """One Gemini model."""

    OPTIONS: tuple[str, ...] = ("timeout", "api_version")
    name = "gemini"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        api_version: str = "v1beta",
    ) -> None:
        genai = require_sdk("google.genai", "gemini")
        from google.genai import types

        self.model = model
        self.base_url = (base_url or DEFAULT_URL).rstrip("/")
        self.api_version = api_version  # v1beta carries logprobs and system instructions for every model
        self._secret = Secret(api_key)
        self.account = self._secret.fingerprint()  # tells keys apart for concurrency limits (llm.limiter)
        options = types.HttpOptions(
            base_url=self.base_url,
            api_version=api_version,
            timeout=int(timeout * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        # vertexai=False: GOOGLE_GENAI_USE_VERTEXAI in the environment must not reroute the calls.
        self._client = LoopClient(
            lambda: genai.Client(api_key=api_key, vertexai=False, http_options=options),
            lambda client: client.aio.aclose(),
        )

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url, "api_version": self.api_version}

    def __repr__(self) -> str:
        return f"GeminiChat(model={self.model!r}, base_url={self.base_url!r}, api_version={self.api_version!r})"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        from google.genai import errors

        try:
            contents, config = self._params(request)
        except (ValueError, TypeError) as exc:  # the SDK's pydantic models refuse values before sending
            raise ProviderError("bad_request", self._text("request refused by the SDK:", exc)) from None
        try:
            reply = await self._client.get().aio.models.generate_content(
                model=self.model, contents=contents, config=config
            )
        except errors.APIError as exc:
            raise self._api_error(exc) from None
        except json.JSONDecodeError as exc:
            # A 200 with a broken body is an infrastructure hiccup, not our request's fault: retry.
            raise ProviderError("transient", self._text("answer was not valid JSON:", exc)) from None
        except Exception as exc:  # the SDK lets httpx2 / aiohttp / pydantic errors through unwrapped
            kind = transport_kind(exc)
            if kind == "timeout":
                raise ProviderError("timeout", f"gemini {self.model}: request timed out") from None
            raise ProviderError(kind or "unknown", self._text(type(exc).__name__, exc)) from None
        return self._translate(reply, request)

    def _params(self, request: ChatRequest) -> tuple[list[Any], Any]:
        from google.genai import types

        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        contents = [
            types.Content(role="model" if m.role == "assistant" else "user", parts=[types.Part(text=m.content)])
            for m in request.messages
            if m.role != "system"
        ]
        if not contents:
            raise ProviderError(
                "bad_request", f"gemini {self.model}: a request needs a user message, not only system messages"
            )
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=request.temperature,
            top_p=request.top_p,
            max_output_tokens=request.max_tokens,
            stop_sequences=list(request.stop) or None,
            seed=request.seed,
            candidate_count=1,
            response_logprobs=True if request.logprobs is not None else None,
            logprobs=request.logprobs or None,
        )
        return contents, config

    def _translate(self, reply: Any, request: ChatRequest) -> ChatResponse:
        try:
            usage = _usage(reply.usage_metadata)
            if not reply.candidates:
                blocked = reply.prompt_feedback is not None and reply.prompt_feedback.block_reason is not None
                if blocked:  # the prompt itself was refused: an answer with no text
                    return ChatResponse(text="", usage=usage, finish_reason="content_filter", model=reply.model_version)
                raise ProviderError("transient", f"gemini {self.model}: answer had no candidates")
            candidate = reply.candidates[0]
            parts = candidate.content.parts if candidate.content and candidate.content.parts else []
            text = "".join(p.text for p in parts if p.text and not p.thought)
            return ChatResponse(
                text=text,
                usage=usage,
                finish_reason=_finish(candidate.finish_reason),
                logprobs=_logprobs(candidate.logprobs_result) if request.logprobs is not None else None,
                model=reply.model_version or None,
            )
        except (AttributeError, TypeError) as exc:
            raise ProviderError("transient", self._text("answer lacked fields:", repr(exc))) from None

    def _api_error(self, exc: Any) -> ProviderError:
        status = int(exc.code or 0)
        details = exc.details if isinstance(exc.details, dict) else {}
        found = details.get("error")
        error = found if isinstance(found, dict) else {}
        kind = kind_for_status(status)
        if kind == "bad_request" and "API_KEY_INVALID" in json.dumps(error):
            kind = "auth"  # Gemini answers a bad key with 400 INVALID_ARGUMENT
        elif kind == "bad_request" and looks_like_content_policy(exc.message):
            kind = "content_filter"
        retry_after = None
        if kind in ("rate_limit", "transient"):
            headers = getattr(getattr(exc, "response", None), "headers", None)
            retry_after = retry_after_seconds(headers) or _retry_info(error)
        return ProviderError(
            kind,
            self._text(f"HTTP {status}", exc.status and f"({exc.status})", exc.message),
            retry_after=retry_after,
            status=status or None,
        )

    def _text(self, *parts: object) -> str:
        return error_text(self._secret, f"gemini {self.model}:", *parts)

    async def aclose(self) -> None:
        await self._client.aclose()


def _usage(meta: Any) -> Usage:
    if meta is None:
        return Usage()
    # Thinking tokens are billed as output.
    output = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return Usage(meta.prompt_token_count or 0, output)


def _finish(reason: Any) -> str:
    name = getattr(reason, "value", reason) or "STOP"
    if name == "MAX_TOKENS":
        return "length"
    return "content_filter" if name in FILTERED else "stop"


def _logprobs(result: Any) -> list[dict[str, float]] | None:
    """Per generated token, {token: logprob} over the top alternatives, always including the chosen one."""
    if result is None or not (result.top_candidates or result.chosen_candidates):
        return None
    chosen = result.chosen_candidates or []
    tops = result.top_candidates or [None] * len(chosen)
    out = []
    for i, top in enumerate(tops):
        alternatives = {
            c.token: float(c.log_probability)
            for c in (top.candidates if top else None) or []
            if c.token is not None and c.log_probability is not None
        }
        if i < len(chosen) and chosen[i].token is not None and chosen[i].log_probability is not None:
            alternatives.setdefault(chosen[i].token, float(chosen[i].log_probability))
        out.append(alternatives)
    return out


def _retry_info(error: dict[str, Any]) -> float | None:
    """The delay in google.rpc.RetryInfo, which Gemini sends with RESOURCE_EXHAUSTED instead of a header."""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None
