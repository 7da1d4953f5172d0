"""Which assistant-LLM providers exist, and model strings parsed into a ProviderSpec.

`openai/MODEL`, `anthropic/MODEL`, `gemini/MODEL`, `openrouter/ORG/MODEL`,
`openai-compatible/MODEL@http://host:port/v1`, `local/embedded:smollm2-135m-instruct` or `local//path`,
`fake/NAME` (scripted or rule-based stand-ins, see providers.fake).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from urllib.parse import urlparse

from lmdelta.errors import ConfigError

DEFAULT_LOCAL_MODEL = "embedded:smollm2-135m-instruct"
OPENAI_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class ProviderInfo:
    prefix: str
    key_env: tuple[str, ...]  # first one set wins
    key_required: bool
    default_base_url: str | None
    base_url_env: str | None  # the SDK's own base-URL variable, honoured the same way
    sdk: str | None  # module the adapter needs beyond lmdelta's core dependencies
    example: str


PROVIDERS: dict[str, ProviderInfo] = {
    info.prefix: info
    for info in (
        ProviderInfo(
            "openai", ("OPENAI_API_KEY",), True, OPENAI_URL, "OPENAI_BASE_URL", "openai", "openai/gpt-4o-mini"
        ),
        ProviderInfo(
            "anthropic",
            ("ANTHROPIC_API_KEY",),
            True,
            "https://api.anthropic.com",
            "ANTHROPIC_BASE_URL",
            "anthropic",
            "anthropic/claude-sonnet-4-5",
        ),
        ProviderInfo(
            "gemini",
            ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            True,
            "https://generativelanguage.googleapis.com",
            "GOOGLE_GEMINI_BASE_URL",
            "google.genai",
            "gemini/gemini-2.5-flash",
        ),
        ProviderInfo(
            "openrouter",
            ("OPENROUTER_API_KEY",),
            True,
            "https://openrouter.ai/api/v1",
            None,
            "openai",
            "openrouter/meta-llama/llama-3.1-8b-instruct",
        ),
        ProviderInfo(
            "openai-compatible",
            ("OPENAI_COMPATIBLE_API_KEY",),
            False,
            None,
            None,
            "openai",
            "openai-compatible/qwen2.5-7b-instruct@http://localhost:8000/v1",
        ),
        ProviderInfo("local", (), False, None, None, None, f"local/{DEFAULT_LOCAL_MODEL}"),
        ProviderInfo("fake", (), False, None, None, None, "fake/script@replies.yaml"),
    )
}
# Names people type for a provider, mapped to the prefix lmdelta uses.
ALIASES = {
    "google": "gemini",
    "claude": "anthropic",
    "vllm": "openai-compatible",
    "ollama": "openai-compatible",
    "llamacpp": "openai-compatible",
    "llama.cpp": "openai-compatible",
    "hf": "local",
    "huggingface": "local",
    "transformers": "local",
    "embedded": "local",
    "mock": "fake",
    "mockllm": "fake",
}
MODEL_FAMILIES = (
    ("gpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("claude", "anthropic"),
    ("gemini", "gemini"),
)


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
    """Split `provider/model[@url]`, or raise ConfigError with the closest valid forms.

    For `fake/` the model keeps everything after the prefix (`script@PATH` included): the fake
    factory reads it.
    """
    text = text.strip()
    prefix, sep, rest = text.partition("/")
    prefix = prefix.lower()
    if not sep:
        raise _no_prefix(text, extra_prefixes)
    if prefix not in PROVIDERS and prefix not in extra_prefixes:
        raise _unknown_prefix(text, prefix, extra_prefixes)
    if prefix == "local":
        return ProviderSpec("local", rest.strip() or DEFAULT_LOCAL_MODEL)
    if prefix == "openai-compatible":
        return _compatible(text, rest)
    if not rest.strip():
        raise ConfigError(f"Model string {text!r} names no model after {prefix}/.", _example_fix(prefix))
    if prefix == "openrouter" and "/" not in rest.strip("/"):
        raise ConfigError(
            f"OpenRouter models are named ORG/MODEL, but {text!r} has no organisation.",
            f"Write it like {PROVIDERS['openrouter'].example}.",
        )
    return ProviderSpec(prefix, rest.strip())


def _compatible(text: str, rest: str) -> ProviderSpec:
    model, at, url = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not model.strip():
        raise ConfigError(
            f"Model string {text!r} names no model before the server URL.", _example_fix("openai-compatible")
        )
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
    return ConfigError(
        f"Model string {text!r} has no provider prefix.",
        f"{hint}Assistant models are written provider/model: {_valid_forms(extra)}.",
    )


def _unknown_prefix(text: str, prefix: str, extra: tuple[str, ...]) -> ConfigError:
    valid = list(PROVIDERS) + list(extra)
    near = [ALIASES[prefix]] if prefix in ALIASES else difflib.get_close_matches(prefix, valid, n=3, cutoff=0.5)
    rest = text.partition("/")[2]
    hint = f"Did you mean {' or '.join(f'{n}/{rest}' for n in near)}? " if near else ""
    return ConfigError(
        f"Unknown provider {prefix!r} in model string {text!r}.",
        f"{hint}Valid prefixes: {', '.join(valid)} (e.g. {_valid_forms(())}).",
    )
