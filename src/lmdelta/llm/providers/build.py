"""Model string → provider adapter: find the server URL and the key, check the options, build.

One factory per prefix (`_FACTORIES`); `build_provider(..., providers={prefix: factory})` adds or
overrides them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lmdelta.errors import ConfigError, did_you_mean
from lmdelta.llm.providers.anthropic_chat import AnthropicChat
from lmdelta.llm.providers.fake import build_fake
from lmdelta.llm.providers.gemini_chat import GeminiChat
from lmdelta.llm.providers.keys import missing_key_error, resolve_key
from lmdelta.llm.providers.local_chat import LocalChat
from lmdelta.llm.providers.openai_chat import OpenAIChat
from lmdelta.llm.providers.registry import OPENAI_URL, PROVIDERS, ProviderInfo, ProviderSpec, parse_model_string
from lmdelta.llm.types import Provider

# A factory builds one adapter: factory(spec, api_key=…, base_url=…, options=…) -> Provider.
ProviderFactory = Callable[..., Provider]


def build_provider(
    model_string: str,
    *,
    key_file: str | Path | None = None,
    base_url: str | None = None,
    backend_args: Mapping[str, Any] | None = None,
    providers: Mapping[str, ProviderFactory] | None = None,
) -> Provider:
    """The adapter for a model string. `providers` adds or overrides factories (e.g. "fake")."""
    overrides = dict(providers or {})
    spec = parse_model_string(model_string, extra_prefixes=tuple(p for p in overrides if p not in PROVIDERS))
    options = dict(backend_args or {})
    if spec.provider in overrides:
        return overrides[spec.provider](spec, api_key=None, base_url=base_url, options=options)
    info = PROVIDERS[spec.provider]
    url = base_url_for(info, spec, base_url)
    key = resolve_key(info, key_file) if info.key_env else None
    if key is None and key_required(info, url):
        raise missing_key_error(info, key_file)
    return _FACTORIES[spec.provider](spec, api_key=key, base_url=url, options=options)


def base_url_for(info: ProviderInfo, spec: ProviderSpec, given: str | None) -> str | None:
    """The server a spec calls: from the model string, else `given`, else the SDK's variable, else the default."""
    if spec.base_url and given and spec.base_url != given.rstrip("/"):
        raise ConfigError(
            f"Two server URLs for {spec}: {spec.base_url} in the model string and {given} as base_url.",
            "Give the URL once.",
        )
    url = spec.base_url or given or (os.environ.get(info.base_url_env) if info.base_url_env else None)
    url = url or info.default_base_url
    if spec.provider == "openai-compatible" and not url:
        raise ConfigError(
            f"{spec} does not say which server to call.",
            f"Append the server's URL to the model, like {PROVIDERS['openai-compatible'].example}, or pass base_url.",
        )
    return url.rstrip("/") if url else None


def key_required(info: ProviderInfo, url: str | None) -> bool:
    # openai/ pointed at another server (OPENAI_BASE_URL) may need no key, like openai-compatible/.
    if info.prefix == "openai":
        return url == OPENAI_URL
    return info.key_required


def check_options(provider: str, options: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse backend_args an adapter does not understand, with near matches."""
    for name in options:
        if name not in allowed:
            raise ConfigError(
                f"Unknown backend_args option {name!r} for the {provider} provider.",
                f"{did_you_mean(name, allowed)}Options it takes: {', '.join(allowed) or 'none'}.",
            )


def _openai_like(spec: ProviderSpec, *, api_key: str | None, base_url: str | None, options: dict[str, Any]) -> Provider:
    return OpenAIChat(
        spec.model,
        name=spec.provider,
        api_key=api_key,
        base_url=base_url,
        **_checked(spec.provider, options, OpenAIChat.OPTIONS),
    )


def _anthropic(spec: ProviderSpec, *, api_key: str | None, base_url: str | None, options: dict[str, Any]) -> Provider:
    return AnthropicChat(
        spec.model, api_key=api_key, base_url=base_url, **_checked("anthropic", options, AnthropicChat.OPTIONS)
    )


def _gemini(spec: ProviderSpec, *, api_key: str | None, base_url: str | None, options: dict[str, Any]) -> Provider:
    return GeminiChat(spec.model, api_key=api_key, base_url=base_url, **_checked("gemini", options, GeminiChat.OPTIONS))


def _local(spec: ProviderSpec, *, api_key: str | None, base_url: str | None, options: dict[str, Any]) -> Provider:
    if base_url:
        raise ConfigError(f"{spec} runs in this process; it takes no base_url.", "Remove base_url for local/ models.")
    return LocalChat(spec.model, **_checked("local", options, LocalChat.OPTIONS))


def _fake(spec: ProviderSpec, *, api_key: str | None, base_url: str | None, options: dict[str, Any]) -> Provider:
    if base_url:
        raise ConfigError(f"{spec} runs in this process; it takes no base_url.", "Remove base_url for fake/ models.")
    return build_fake(spec.model, options)


def _checked(provider: str, options: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    check_options(provider, options, allowed)
    return options


_FACTORIES: dict[str, ProviderFactory] = {
    "openai": _openai_like,
    "openrouter": _openai_like,
    "openai-compatible": _openai_like,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "local": _local,
    "fake": _fake,
}
