"""Names that say a value is a secret (api_key, X-Api-Key, Authorization, Cookie…), and a way to
keep such values out of cache keys, manifests and config files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "authorization",
        "credential",
        "credentials",
        "bearer",
        "auth",
        "cookie",
    }
)
REDACTED = "[redacted]"


def looks_like_credential(name: str) -> bool:
    """Whether a field or header name says it holds a secret (api_key, X-Api-Key, Authorization, Cookie…)."""
    words = set(re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()))
    return bool(words & SECRET_WORDS)


def redact(value: Any) -> Any:
    """`value` with every credential-named key's value, at any depth, replaced by "[redacted]"."""
    if isinstance(value, Mapping):
        return {k: REDACTED if looks_like_credential(str(k)) and v is not None else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def redact_backend_args(value: Any) -> Any:
    """`value` (a config, or part of one) with `redact` applied inside every `backend_args` mapping:
    the pass-through options where a user might put a header with a key. Other fields named like
    credentials (llm.key_file, a path) are kept."""
    if isinstance(value, Mapping):
        return {k: redact(v) if k == "backend_args" else redact_backend_args(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_backend_args(v) for v in value]
    return value
