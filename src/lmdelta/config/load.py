"""Loading a config: YAML file, then environment (LMDELTA__SECTION__KEY), then --set overrides,
validated into a RunConfig with errors that name the field and the fix; paths made absolute.

Precedence is --set > environment > file > defaults; `None` means unset.
"""

from __future__ import annotations

import difflib
import logging
import os
import reprlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lmdelta.config.models import ModelSpec
from lmdelta.config.run import RunConfig
from lmdelta.config.source import parse_source
from lmdelta.config.yamlfile import parse_yaml
from lmdelta.credentials import redact_backend_args
from lmdelta.errors import ConfigError, PromptBankError

log = logging.getLogger(__name__)


def load_config(
    path: str | Path | None, overrides: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> RunConfig:
    """Read a config file, apply environment and --set overrides, validate, resolve seeds and paths."""
    data: dict[str, Any] = _read_yaml(Path(path)) if path is not None else {}
    for dotted, value in _env_overrides(os.environ if env is None else env):
        _set_dotted(data, dotted, value)
    for item in overrides:
        dotted, value = _parse_override(item)
        _set_dotted(data, dotted, value)
    config = validate_config(data)
    _warn_about_credentials(config)
    _warn_about_ignored(config)
    base = Path(path).resolve().parent if path is not None else Path.cwd()
    return _resolve_paths(config.resolved(), base)


def validate_config(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(_null_keys(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0]), _fix_for(exc.errors()[0])) from None


def _null_keys(value: Any) -> Any:
    """YAML reads the key in `null: true` as None; the field is called "null" (controls.null)."""
    if isinstance(value, dict):
        return {("null" if key is None else key): _null_keys(item) for key, item in value.items()}
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.", "Check the path, or start from configs/demo.yaml.")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), f"Config file {path}")
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"Config file {path} is not valid YAML{line}: {problem}.", "Fix the YAML syntax there."
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"Config file {path} must hold a mapping of sections, not a {type(data).__name__}.",
            "Write it as `section:` blocks such as `generate:` and `prompts:`.",
        )
    return data


def _env_overrides(env: Mapping[str, str]) -> list[tuple[str, Any]]:
    found = []
    for name, raw in sorted(env.items()):
        if name.startswith("LMDELTA__"):
            dotted = ".".join(part.lower() for part in name[len("LMDELTA__") :].split("__"))
            found.append((dotted, _override_value(raw, f"Environment variable {name}") if raw else raw))
    return found


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"Override {item!r} is not of the form section.key=value.",
            "Write it like --set generate.max_new_tokens=32.",
        )
    return key.strip(), _override_value(raw, f"Override --set {key.strip()}") if raw.strip() else raw


def _override_value(raw: str, where: str) -> Any:
    """An override's value read as YAML (a number, list, mapping…), or the text itself when it is not YAML."""
    try:
        return parse_yaml(raw, where)
    except yaml.YAMLError:
        return raw


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"Cannot set {dotted}: {where} is a value, not a section.", "Check the key path.")
        node = child
    node[parts[-1]] = value


def _describe(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"Config field {where} is not a known setting."
    if error["type"] == "missing":
        return f"Config field {where} is required but not set."
    given = error.get("input")
    shown = "" if isinstance(given, dict) else f" (got {_short_repr(given)})"
    return f"Config field {where} is invalid: {error['msg']}{shown}."


def _short_repr(value: Any) -> str:
    """repr() cut short: a value may be huge (a long list, aliases that repeat one list many times)."""
    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxlist, shortener.maxdict, shortener.maxstring = 2, 5, 5, 80
    text = shortener.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _fix_for(error: ErrorDetails) -> str:
    loc = [str(part) for part in error["loc"]]
    where = ".".join(loc)
    if error["type"] == "extra_forbidden":
        known = _known_fields(loc[:-1])
        near = difflib.get_close_matches(loc[-1], known, n=3)
        hint = f"Did you mean {', '.join('.'.join(loc[:-1] + [n]) for n in near)}? " if near else ""
        return f"{hint}Known fields here: {', '.join(known)}."
    if error["type"] == "string_type" and isinstance(error.get("input"), (dict, list)):
        return (
            f"The value was read as YAML, where `key: value` and {{...}} make a mapping: quote the text, "
            f'e.g. --set \'{where}="Question: {{prompt}}"\' (in a file: {loc[-1]}: "Question: {{prompt}}").'
        )
    return f"Set it in the config file or with --set {where}=VALUE."


def _known_fields(loc: list[str]) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in loc:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _resolve_paths(config: RunConfig, base: Path) -> RunConfig:
    """Make relative file paths absolute: relative to the config file if the file is there, else to cwd."""
    config.prompts.source = _source_path(config.prompts.source, base)
    if config.prompts.score_table is not None:
        config.prompts.score_table = str(_locate(config.prompts.score_table, base))
    if config.groundtruth.quirks_file is not None:
        config.groundtruth.quirks_file = str(_locate(config.groundtruth.quirks_file, base))
    if config.propose.given is not None:
        config.propose.given = str(_locate(config.propose.given, base))
    if config.groundtruth.beliefs is not None:
        config.groundtruth.beliefs = _source_path(config.groundtruth.beliefs, base, "groundtruth.beliefs")
    for name in ("path", "a", "b"):
        value = getattr(config.corpus, name)
        if value is not None:
            setattr(config.corpus, name, str(_locate(value, base)))
    for side in ("a", "b"):
        spec: ModelSpec = getattr(config.generate, side)
        if spec.adapter:
            spec.adapter = str(_locate(spec.adapter, base))
        if _looks_like_path(spec.model):
            spec.model = str(_locate(spec.model, base))
    for role in ("proposer", "judge", "strong_judge", "summariser", "prompter"):
        section = getattr(config.llm, role)
        section.model = _script_path(section.model, base)
    return config


def _script_path(model: str | None, base: Path) -> str | None:
    """`fake/script@PATH` with PATH made absolute like the config's other files."""
    prefix = "fake/script@"
    if model is None or not model.startswith(prefix):
        return model
    return prefix + str(_locate(model[len(prefix) :], base))


def _source_path(source: str, base: Path, field: str = "prompts.source") -> str:
    """A source (prompts.source, groundtruth.beliefs) with its path (a file, or after `persona:` and the
    like) made absolute."""
    try:
        spec = parse_source(source)
    except PromptBankError as exc:
        raise ConfigError(f"Config field {field} is invalid: {exc.problem}", exc.fix) from None
    if not spec.is_path:
        return source
    located = str(_locate(spec.location, base))
    return located if spec.kind == "file" else f"{spec.kind}:{located}"


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or os.sep in model and Path(model).expanduser().exists()


def _locate(raw: str, base: Path) -> Path:
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    beside_config = base / path
    return beside_config.resolve() if beside_config.exists() else path.resolve()


def dump_config(config: RunConfig) -> str:
    """The config as YAML, with credential-named values (a key in backend_args.headers) redacted and
    ignored settings left out (a run's config.yaml, loaded again, should not warn about them)."""
    dumped = config.model_dump(mode="json", exclude={"validate": {"bootstrap"}})
    return yaml.safe_dump(redact_backend_args(dumped), sort_keys=False, allow_unicode=True)


def _warn_about_ignored(config: RunConfig) -> None:
    """Settings that load but do nothing: say so once, when the config sets them."""
    if "bootstrap" in config.validate.model_fields_set:
        log.warning("validate.bootstrap is ignored: intervals are t-based (docs/statistics.md §7); remove it")


def _warn_about_credentials(config: RunConfig) -> None:
    dumped = config.model_dump(mode="json")
    if redact_backend_args(dumped) != dumped:
        log.warning(
            "The config holds a value named like a credential (e.g. in backend_args.headers). It is sent to "
            "the provider but written to no file (config.yaml shows [redacted]), so re-running from a run's "
            "config.yaml would not send it: prefer the provider's key variable or llm.key_file."
        )
