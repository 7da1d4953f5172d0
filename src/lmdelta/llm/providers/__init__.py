"""Model strings for assistant LLMs → provider adapters: parse the string, find the key, build.

`openai/MODEL`, `anthropic/MODEL`, `gemini/MODEL`, `openrouter/ORG/MODEL`,
`openai-compatible/MODEL@http://host:port/v1`, `local/embedded:smollm2-135m-instruct` or `local//path`.
Also the helpers every adapter shares: key redaction, Retry-After parsing, HTTP status → error kind.
"""

from __future__ import annotations

import asyncio
import difflib
import email.utils
import importlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lmdelta.errors import ConfigError, DependencyError
from lmdelta.llm.types import ErrorKind, Provider

log = logging.getLogger(__name__)

DEFAULT_LOCAL_MODEL = "embedded:smollm2-135m-instruct"
OPENAI_URL = "https://api.openai.com/v1"
PIP_NAMES = {"google.genai": "google-genai"}
DEFAULT_TIMEOUT = 600.0  # seconds; the SDKs' own default. llm.client's per-attempt timeout usually fires first
NO_KEY = "EMPTY"  # what OpenAI-compatible servers without auth get: the SDK insists on some key


@dataclass(frozen=True)
class ProviderInfo:
    prefix: str
    key_env: tuple[str, ...]  # first one set wins
    key_required: bool
    default_base_url: str | None
    base_url_env: str | None  # the SDK's own base-URL variable, honoured the same way
    sdk: str | None  # module the adapter needs beyond lmdelta's core dependencies
    example: str


PROVIDERS: dict[str, ProviderInfo] = {info.prefix: info for info in (
    ProviderInfo("openai", ("OPENAI_API_KEY",), True, OPENAI_URL, "OPENAI_BASE_URL", "openai",
                 "openai/gpt-4o-mini"),
    ProviderInfo("anthropic", ("ANTHROPIC_API_KEY",), True, "https://api.anthropic.com", "ANTHROPIC_BASE_URL",
                 "anthropic", "anthropic/claude-sonnet-4-5"),
    ProviderInfo("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY"), True, "https://generativelanguage.googleapis.com",
                 "GOOGLE_GEMINI_BASE_URL", "google.genai", "gemini/gemini-2.5-flash"),
    ProviderInfo("openrouter", ("OPENROUTER_API_KEY",), True, "https://openrouter.ai/api/v1", None, "openai",
                 "openrouter/meta-llama/llama-3.1-8b-instruct"),
    ProviderInfo("openai-compatible", ("OPENAI_COMPATIBLE_API_KEY",), False, None, None, "openai",
                 "openai-compatible/qwen2.5-7b-instruct@http://localhost:8000/v1"),
    ProviderInfo("local", (), False, None, None, None, f"local/{DEFAULT_LOCAL_MODEL}"),
)}
FAKE_HINT = ("Fake assistant models are built by lmdelta.llm.fake, not by build_provider; "
             "or pass providers={'fake': factory} to build_provider.")
# Names people type for a provider, mapped to the prefix lmdelta uses.
ALIASES = {"google": "gemini", "claude": "anthropic", "vllm": "openai-compatible", "ollama": "openai-compatible",
           "llamacpp": "openai-compatible", "llama.cpp": "openai-compatible", "hf": "local", "huggingface": "local",
           "transformers": "local", "embedded": "local"}
MODEL_FAMILIES = (("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
                  ("claude", "anthropic"), ("gemini", "gemini"))

# A factory builds one adapter: factory(spec, api_key=…, base_url=…, options=…) -> Provider.
ProviderFactory = Callable[..., Provider]


@dataclass(frozen=True)
class ProviderSpec:
    """A parsed model string."""

    provider: str  # registry prefix: "openai", "anthropic", …
    model: str  # the name the vendor (or the local registry) knows the model by
    base_url: str | None = None  # only the `openai-compatible/MODEL@URL` form sets it

    def __str__(self) -> str:
        suffix = f"@{self.base_url}" if self.base_url else ""
        return f"{self.provider}/{self.model}{suffix}"


def parse_model_string(text: str, *, extra_prefixes: tuple[str, ...] = ()) -> ProviderSpec:
    """Split `provider/model[@url]`, or raise ConfigError with the closest valid forms."""
    text = text.strip()
    prefix, sep, rest = text.partition("/")
    prefix = prefix.lower()
    if not sep:
        raise _no_prefix(text, extra_prefixes)
    if prefix not in PROVIDERS and prefix not in extra_prefixes:
        if prefix == "fake":
            raise ConfigError(f"Model string {text!r} names a fake model.", FAKE_HINT)
        raise _unknown_prefix(text, prefix, extra_prefixes)
    if prefix == "local":
        return ProviderSpec("local", rest.strip() or DEFAULT_LOCAL_MODEL)
    if prefix == "openai-compatible":
        return _compatible(text, rest)
    if not rest.strip():
        raise ConfigError(f"Model string {text!r} names no model after {prefix}/.", _example_fix(prefix))
    if prefix == "openrouter" and "/" not in rest.strip("/"):
        raise ConfigError(f"OpenRouter models are named ORG/MODEL, but {text!r} has no organisation.",
                          f"Write it like {PROVIDERS['openrouter'].example}.")
    return ProviderSpec(prefix, rest.strip())


def _compatible(text: str, rest: str) -> ProviderSpec:
    model, at, url = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not model.strip():
        raise ConfigError(f"Model string {text!r} names no model before the server URL.",
                          _example_fix("openai-compatible"))
    if at:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"{url!r} in {text!r} is not an http(s) URL.", _example_fix("openai-compatible"))
    return ProviderSpec("openai-compatible", model.strip(), url.rstrip("/") or None)


def _example_fix(prefix: str) -> str:
    return f"Write it like {PROVIDERS[prefix].example}."


def _valid_forms(extra: tuple[str, ...]) -> str:
    return ", ".join([info.example for info in PROVIDERS.values()] + [f"{p}/MODEL" for p in extra])


def _no_prefix(text: str, extra: tuple[str, ...]) -> ConfigError:
    family = next((p for start, p in MODEL_FAMILIES if text.lower().startswith(start)), None)
    hint = f"Did you mean {family}/{text}? " if family else ""
    return ConfigError(f"Model string {text!r} has no provider prefix.",
                       f"{hint}Assistant models are written provider/model: {_valid_forms(extra)}.")


def _unknown_prefix(text: str, prefix: str, extra: tuple[str, ...]) -> ConfigError:
    valid = list(PROVIDERS) + list(extra)
    near = [ALIASES[prefix]] if prefix in ALIASES else difflib.get_close_matches(prefix, valid, n=3, cutoff=0.5)
    rest = text.partition("/")[2]
    hint = f"Did you mean {' or '.join(f'{n}/{rest}' for n in near)}? " if near else ""
    return ConfigError(f"Unknown provider {prefix!r} in model string {text!r}.",
                       f"{hint}Valid prefixes: {', '.join(valid)} (e.g. {_valid_forms(())}).")


# ---- keys ----

class Secret:
    """An API key that prints as [redacted] and can scrub itself out of any text."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def reveal(self) -> str | None:
        return self._value

    def redact(self, text: str) -> str:
        return text.replace(self._value, "[redacted]") if self._value else text

    def __bool__(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return "Secret('[redacted]')" if self._value else "Secret(None)"

    __str__ = __repr__


KEY_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z][\w.-]*)\s*[:=]\s*(\S+)\s*$")


def _labels(info: ProviderInfo) -> set[str]:
    """What a key-file line may be called for this provider: its prefix, an alias, or its env variables."""
    aliases = {alias for alias, prefix in ALIASES.items() if prefix == info.prefix}
    return {info.prefix, *aliases, *(var.lower() for var in info.key_env)}


def _all_labels() -> set[str]:
    return set().union(*(_labels(info) for info in PROVIDERS.values()))


def resolve_key(info: ProviderInfo, key_file: str | Path | None) -> str | None:
    """The provider's key from the key file, else from its environment variables."""
    if key_file is not None:
        key = _key_from_file(Path(key_file).expanduser(), info)
        if key:
            return key
    for var in info.key_env:
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return None


def key_source(model_string: str, key_file: str | Path | None = None) -> str | None:
    """Where lmdelta reads the key for a model string, for error messages: its environment variables
    (and the key file, when one is given); None when the provider takes no key or the string is not one."""
    try:
        info = PROVIDERS[parse_model_string(model_string).provider]
    except (ConfigError, KeyError):
        return None
    if not info.key_env:
        return None
    variables = " or ".join(info.key_env)
    return f"the key file {key_file}, else {variables}" if key_file is not None else variables


def missing_key_error(info: ProviderInfo, key_file: str | Path | None) -> ConfigError:
    variables = " or ".join(info.key_env)
    looked = f"; the key file {key_file} has no `{info.prefix}: KEY` line" if key_file is not None else ""
    return ConfigError(f"No API key for {info.prefix}: {variables} is not set{looked}.",
                       f"Set {variables}, or pass a key file (key_file / --key-file) holding the key alone "
                       f"or a line `{info.prefix}: YOUR_KEY`.")


def _key_from_file(path: Path, info: ProviderInfo) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read the key file {path} ({exc.strerror or type(exc).__name__}).",
                          "Check the path and its permissions.") from None
    if path.stat().st_mode & 0o077:
        log.warning("key file %s is readable by other users; consider chmod 600", path)
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    labelled = [KEY_LINE.match(line) for line in lines]
    # A lone key may itself contain ":" or "=" (base64 padding), so a line counts as
    # `label: key` only when the file names at least one label lmdelta knows.
    if lines and all(labelled) and any(m.group(1).lower() in _all_labels() for m in labelled):
        own = _labels(info)
        return next((m.group(2).strip("\"'") for m in labelled if m.group(1).lower() in own), None)
    if len(lines) == 1 and len(lines[0].split()) == 1:
        return lines[0].strip()  # the whole file is the key
    # Never quote the file: it holds secrets.
    raise ConfigError(f"The key file {path} is neither a single key nor lines of `provider: key`.",
                      "Put the key alone in the file, or one `provider: key` line per provider "
                      f"({', '.join(p for p in PROVIDERS if PROVIDERS[p].key_env)}).")


# ---- building ----

def build_provider(model_string: str, *, key_file: str | Path | None = None, base_url: str | None = None,
                   backend_args: Mapping[str, Any] | None = None,
                   providers: Mapping[str, ProviderFactory] | None = None) -> Provider:
    """The adapter for a model string. `providers` adds or overrides factories (e.g. "fake")."""
    overrides = dict(providers or {})
    spec = parse_model_string(model_string, extra_prefixes=tuple(p for p in overrides if p not in PROVIDERS))
    options = dict(backend_args or {})
    if spec.provider in overrides:
        return overrides[spec.provider](spec, api_key=None, base_url=base_url, options=options)
    info = PROVIDERS[spec.provider]
    url = _base_url(info, spec, base_url)
    key = resolve_key(info, key_file) if info.key_env else None
    if key is None and _key_required(info, url):
        raise missing_key_error(info, key_file)
    return _FACTORIES[spec.provider](spec, api_key=key, base_url=url, options=options)


def _base_url(info: ProviderInfo, spec: ProviderSpec, given: str | None) -> str | None:
    if spec.base_url and given and spec.base_url != given.rstrip("/"):
        raise ConfigError(f"Two server URLs for {spec}: {spec.base_url} in the model string and {given} as base_url.",
                          "Give the URL once.")
    url = spec.base_url or given or (os.environ.get(info.base_url_env) if info.base_url_env else None)
    url = url or info.default_base_url
    if spec.provider == "openai-compatible" and not url:
        raise ConfigError(f"{spec} does not say which server to call.",
                          "Append the server's URL to the model, like "
                          f"{PROVIDERS['openai-compatible'].example}, or pass base_url.")
    return url.rstrip("/") if url else None


def _key_required(info: ProviderInfo, url: str | None) -> bool:
    # openai/ pointed at another server (OPENAI_BASE_URL) may need no key, like openai-compatible/.
    if info.prefix == "openai":
        return url == OPENAI_URL
    return info.key_required


def check_options(provider: str, options: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse backend_args an adapter does not understand, with near matches."""
    for name in options:
        if name not in allowed:
            near = difflib.get_close_matches(name, allowed, n=1)
            hint = f"Did you mean {near[0]!r}? " if near else ""
            raise ConfigError(f"Unknown backend_args option {name!r} for the {provider} provider.",
                              f"{hint}Options it takes: {', '.join(allowed) or 'none'}.")


def require_sdk(module: str, provider: str) -> Any:
    """Import a vendor SDK, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = PIP_NAMES.get(module, module)
        raise DependencyError(f"The {provider} provider needs the Python package {package}, which is not installed.",
                              "Install the LLM extras with `pip install 'lmdelta[llm]'`.") from None


def _openai_like(spec: ProviderSpec, *, api_key: str | None, base_url: str | None,
                 options: dict[str, Any]) -> Provider:
    from lmdelta.llm.providers.openai_chat import OpenAIChat

    return OpenAIChat(spec.model, name=spec.provider, api_key=api_key, base_url=base_url,
                      **_checked(spec.provider, options, OpenAIChat.OPTIONS))


def _anthropic(spec: ProviderSpec, *, api_key: str | None, base_url: str | None, options: dict[str, Any]) -> Provider:
    from lmdelta.llm.providers.anthropic_chat import AnthropicChat

    return AnthropicChat(spec.model, api_key=api_key, base_url=base_url,
                         **_checked("anthropic", options, AnthropicChat.OPTIONS))


def _gemini(spec: ProviderSpec, *, api_key: str | None, base_url: str | None, options: dict[str, Any]) -> Provider:
    from lmdelta.llm.providers.gemini_chat import GeminiChat

    return GeminiChat(spec.model, api_key=api_key, base_url=base_url, **_checked("gemini", options, GeminiChat.OPTIONS))


def _local(spec: ProviderSpec, *, api_key: str | None, base_url: str | None, options: dict[str, Any]) -> Provider:
    from lmdelta.llm.providers.local_chat import LocalChat

    if base_url:
        raise ConfigError(f"{spec} runs in this process; it takes no base_url.", "Remove base_url for local/ models.")
    return LocalChat(spec.model, **_checked("local", options, LocalChat.OPTIONS))


def _checked(provider: str, options: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    check_options(provider, options, allowed)
    return options


_FACTORIES: dict[str, ProviderFactory] = {
    "openai": _openai_like, "openrouter": _openai_like, "openai-compatible": _openai_like,
    "anthropic": _anthropic, "gemini": _gemini, "local": _local,
}


# ---- shared by the HTTP adapters ----

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


CONTENT_POLICY = re.compile(r"content[ _-]?(filter|policy|management)|safety system|responsible ?ai", re.IGNORECASE)


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
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


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
    if isinstance(exc, OSError) or names & {"TransportError", "ClientConnectionError", "ClientPayloadError",
                                              "ServerDisconnectedError", "RemoteProtocolError"}:
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
