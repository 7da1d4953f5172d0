"""YAML as config files use it: PyYAML's safe loader, refusing a key written twice in one mapping
(YAML would keep the last silently) and aliases that expand a few lines into millions of values.
Also the JSON-lines reading that the entry files beside configs share (quirks, given hypotheses).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from lmdelta.errors import ConfigError

MAX_VALUES = 100_000  # a config holds a few hundred values; past this, aliases are multiplying them


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first_line: int, second_line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.first_line, self.second_line = key, first_line, second_line


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse a key given twice (merge keys `<<:` may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                seen[key] = line
            except TypeError:
                continue  # an unhashable key: the base class refuses it with its own message
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, where: str) -> Any:
    """`text` read as YAML; `where` names it in messages ("Config file x.yaml", "--set run.name").
    Syntax errors propagate as yaml.YAMLError for the caller to place."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except _DuplicateKey as exc:
        raise _duplicate_error(exc, where) from None
    size = expanded_size(data)
    if size > MAX_VALUES:
        raise ConfigError(
            f"{where} uses YAML aliases (*name) that expand to {size:,} values, more than a config "
            f"can hold ({MAX_VALUES:,}).",
            "Write the values out, or use fewer nested aliases.",
        )
    return data


def _duplicate_error(exc: _DuplicateKey, where: str) -> ConfigError:
    same = exc.first_line == exc.second_line
    lines = f"line {exc.first_line}" if same else f"line {exc.first_line} and line {exc.second_line}"
    return ConfigError(
        f"{where} sets {_shown(exc.key)} twice in one mapping ({lines}); YAML would silently keep only the second.",
        f"Merge the two into one {_shown(exc.key)} entry, or delete the one you do not mean.",
    )


def _shown(key: Any) -> str:
    return f"`{key}`" if isinstance(key, str) and len(key) <= 60 else repr(key)[:60]


def expanded_size(value: Any, memo: dict[int, int] | None = None) -> int:
    """How many values `value` holds once every alias is written out. Aliases share one object, so
    each distinct list or mapping is counted once and its count reused: linear in the file's size."""
    memo = {} if memo is None else memo
    if not isinstance(value, (list, dict)):
        return 1
    if id(value) not in memo:
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        memo[id(value)] = 1 + sum(expanded_size(item, memo) for item in items)
    return memo[id(value)]


def jsonl_entries(text: str, path: Path, example: str) -> list[tuple[str, Any]]:
    """Each non-blank line's JSON value with where it is ("PATH, line N"); a line that is not JSON stops with
    its number and `example`, one line of the format."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append((f"{path}, line {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}, line {number} is not valid JSON ({exc.msg}).",
                f"Write one JSON object per line, e.g. {example}.",
            ) from None
    return entries


def yaml_document(text: str, what: str) -> Any:
    """An entry file's YAML (parse_yaml's checks), or a ConfigError naming `what` and the line of a syntax error."""
    try:
        return parse_yaml(text, what)  # no duplicate keys, no alias bombs
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        near = f" near line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{what} is not valid YAML{near}.", "Fix the YAML syntax there.") from None
