"""Assistant-LLM providers: a model string (`openai/gpt-4.1-mini`, `fake/keywords`, …) → an adapter
that translates requests for one vendor. `registry` parses model strings, `keys` finds API keys,
`build` makes adapters, `http` holds what the HTTP adapters share; one module per vendor, `fake`.
"""

from lmdelta.llm.providers.build import ProviderFactory, build_provider, check_options
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
from lmdelta.llm.providers.keys import NO_KEY, Secret, key_source, missing_key_error, resolve_key
from lmdelta.llm.providers.registry import (
    ALIASES,
    DEFAULT_LOCAL_MODEL,
    OPENAI_URL,
    PROVIDERS,
    ProviderInfo,
    ProviderSpec,
    parse_model_string,
)

__all__ = [
    "ALIASES",
    "DEFAULT_LOCAL_MODEL",
    "DEFAULT_TIMEOUT",
    "NO_KEY",
    "OPENAI_URL",
    "PROVIDERS",
    "LoopClient",
    "ProviderFactory",
    "ProviderInfo",
    "ProviderSpec",
    "Secret",
    "build_provider",
    "check_options",
    "error_text",
    "key_source",
    "kind_for_status",
    "looks_like_content_policy",
    "missing_key_error",
    "parse_model_string",
    "require_sdk",
    "resolve_key",
    "retry_after_seconds",
    "transport_kind",
]
