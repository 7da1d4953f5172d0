"""API keys: from a key file or the provider's environment variables, kept out of every text.

A key file is the key alone, or lines `provider: key` (`ENV_VARIABLE=key`, `export …` too).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from lmdelta.errors import ConfigError
from lmdelta.llm.providers.registry import ALIASES, PROVIDERS, ProviderInfo, parse_model_string

log = logging.getLogger(__name__)

NO_KEY = "EMPTY"  # what OpenAI-compatible servers without auth get: the SDK insists on some key
KEY_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z][\w.-]*)\s*[:=]\s*(\S+)\s*$")


class Secret:
    """An API key that prints as [redacted] and can scrub itself out of any text."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def reveal(self) -> str | None:
        return self._value

    def redact(self, text: str) -> str:
        return text.replace(self._value, "[redacted]") if self._value else text

    def fingerprint(self) -> str | None:
        """A short hash that tells two keys apart (the account, for concurrency limits); not the key."""
        return key_fingerprint(self._value)

    def __bool__(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return "Secret('[redacted]')" if self._value else "Secret(None)"

    __str__ = __repr__


def key_fingerprint(key: str | None) -> str | None:
    """The first 12 hex digits of the key's SHA-256, or None without a key. Never logged with the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12] if key else None


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
    return ConfigError(
        f"No API key for {info.prefix}: {variables} is not set{looked}.",
        f"Set {variables}, or pass a key file (key_file / --key-file) holding the key alone "
        f"or a line `{info.prefix}: YOUR_KEY`.",
    )


def _key_from_file(path: Path, info: ProviderInfo) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the key file {path} ({exc.strerror or type(exc).__name__}).",
            "Check the path and its permissions.",
        ) from None
    if path.stat().st_mode & 0o077:
        log.warning("key file %s is readable by other users; consider chmod 600", path)
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    labelled = [m for m in map(KEY_LINE.match, lines) if m is not None]
    # A lone key may itself contain ":" or "=" (base64 padding), so a line counts as
    # `label: key` only when the file names at least one label lmdelta knows.
    if lines and len(labelled) == len(lines) and any(m.group(1).lower() in _all_labels() for m in labelled):
        own = _labels(info)
        return next((m.group(2).strip("\"'") for m in labelled if m.group(1).lower() in own), None)
    if len(lines) == 1 and len(lines[0].split()) == 1:
        return lines[0].strip()  # the whole file is the key
    # Never quote the file: it holds secrets.
    raise ConfigError(
        f"The key file {path} is neither a single key nor lines of `provider: key`.",
        "Put the key alone in the file, or one `provider: key` line per provider "
        f"({', '.join(p for p in PROVIDERS if PROVIDERS[p].key_env)}).",
    )
