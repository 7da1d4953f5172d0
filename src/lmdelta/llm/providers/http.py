"""What the HTTP adapters share: importing a vendor SDK, HTTP status and transport failures → error
kind, Retry-After parsing, error texts with the key scrubbed out, and SDK clients per event loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from lmdelta.errors import DependencyError
from lmdelta.llm.providers.keys import Secret
from lmdelta.llm.types import ErrorKind

log = logging.getLogger(__name__)

PIP_NAMES = {"google.genai": "google-genai"}
DEFAULT_TIMEOUT = 600.0  # seconds; the SDKs' own default. llm.client's per-attempt timeout usually fires first
CONTENT_POLICY = re.compile(r"content[ _-]?(filter|policy|management)|safety system|responsible ?ai", re.IGNORECASE)


def require_sdk(module: str, provider: str) -> Any:
    """Import a vendor SDK, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = PIP_NAMES.get(module, module)
        raise DependencyError(
            f"The {provider} provider needs the Python package {package}, which is not installed.",
            "Install the LLM extras with `pip install 'lmdelta[llm]'`.",
        ) from None


def kind_for_status(status: int) -> ErrorKind:
    """What an HTTP status means for the client's retry policy."""
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status in (401, 402, 403):  # 402: out of credit (OpenRouter); retrying will not help
        return "auth"
    if status == 404:
        return "not_found"
    if status in (409, 425) or status >= 500:  # 529: Anthropic's "overloaded"
        return "transient"
    if 400 <= status < 500:
        return "bad_request"
    return "unknown"


def looks_like_content_policy(*texts: object) -> bool:
    """A 400 that rejects the content rather than the request's form."""
    return any(CONTENT_POLICY.search(str(text)) for text in texts if text)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After as seconds: `retry-after-ms`, then `retry-after` as seconds or as an HTTP date."""
    if not headers:
        return None
    milliseconds = _header(headers, "retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = _header(headers, "retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and isinstance(headers, dict):  # plain dicts are case-sensitive
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value.strip() if isinstance(value, str) else None


def transport_kind(exc: BaseException) -> ErrorKind | None:
    """timeout / transient for transport failures of httpx, httpx2 or aiohttp, without importing them."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or any("Timeout" in name for name in names):
        return "timeout"
    if isinstance(exc, OSError) or names & {
        "TransportError",
        "ClientConnectionError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "RemoteProtocolError",
    }:
        return "transient"
    return None


def error_text(secret: Secret, *parts: object, limit: int = 600) -> str:
    """One line for a ProviderError message: the parts joined, the key scrubbed out, shortened."""
    text = " ".join(str(part) for part in parts if part not in (None, ""))
    text = secret.redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LoopClient:
    """An SDK client for the running event loop. HTTP connection pools belong to the loop that
    opened them, and `llm.client` closes providers when its loop ends, then calls them again from
    a new loop: so a closed client, or one from another loop, is replaced on the next call."""

    def __init__(self, make: Callable[[], Any], close: Callable[[Any], Awaitable[None]]) -> None:
        self._make, self._close = make, close
        self._client: Any = make()  # built now, so a bad configuration fails at build time
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or (self._loop is not None and self._loop is not loop):
            self._client = self._make()
        self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is None:
            return
        try:
            await self._close(client)
        except Exception as exc:  # connections of a loop that is already gone cannot be closed cleanly
            log.debug("closing an SDK client failed: %s", type(exc).__name__)
