"""User-defined properties from a config entry: a regular expression or a lexicon of words and phrases.

    {name: mentions_safety, description: "...", lexicon: [safety, harm, "be careful"]}   presence
    {name: links, description: "...", regex: "https?://", count: true}                   amount (matches)

Optional keys: count (false: presence, 1/0; true: amount, the number of matches), phrase (how a
report says a side has it, default "matches <name>"), noun (what is counted, default the name in
words). A regex is matched as written (add (?i) for any case); a lexicon matches whole words and
phrases in any case.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from lmdelta.errors import ConfigError
from lmdelta.properties.base import NAME, Property, Scorer, saturating
from lmdelta.properties.counting import lexicon_count, lexicon_presence, regex_count, regex_presence
from lmdelta.properties.text import BARRIER, tokens

KEYS = ("name", "description", "regex", "lexicon", "count", "phrase", "noun")
_EXAMPLE = "e.g. {name: mentions_safety, description: Mentions safety., lexicon: [safety, harm]}"


def from_spec(spec: Mapping[str, Any]) -> Property:
    """A Property from one config entry (see the module docstring); ConfigError saying what to fix."""
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"A user property must be a mapping, not {type(spec).__name__}: {spec!r}.", f"Write it as {_EXAMPLE}."
        )
    name = _name(spec)
    _check_keys(spec, name)
    description = _text(spec, "description", name, required=True)
    count = spec.get("count", False)
    if not isinstance(count, bool):
        raise ConfigError(
            f"User property {name}: count must be true or false, not {count!r}.",
            "Use count: true to count matches, or leave it out for presence (1 if it matches).",
        )
    scorer = _scorer(spec, name, count)
    phrase = _text(spec, "phrase", name) or f"matches {name}"
    noun = _text(spec, "noun", name) or f"{name.replace('_', ' ')} matches"
    if count:
        return Property(name, description, "amount", "matches", scorer, noun=noun, phrase=phrase, scale=saturating(1.0))
    return Property(name, description, "presence", "", scorer, noun=noun, phrase=phrase, bounds=(0.0, 1.0))


def _name(spec: Mapping[str, Any]) -> str:
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(
            f"A user property needs a snake_case name (a-z, 0-9, single underscores), not {name!r}.",
            f"Give it one, {_EXAMPLE}.",
        )
    return name


def _check_keys(spec: Mapping[str, Any], name: str) -> None:
    unknown = [key for key in spec if key not in KEYS]
    if unknown:
        near = difflib.get_close_matches(str(unknown[0]), KEYS, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"User property {name} has unknown key {unknown[0]!r}.{hint}", f"The keys are {', '.join(KEYS)}."
        )
    if ("regex" in spec) == ("lexicon" in spec):
        raise ConfigError(
            f"User property {name} needs exactly one of regex and lexicon.",
            "Give a regex (regex: '...') or a list of words and phrases (lexicon: [...]), not both.",
        )


def _text(spec: Mapping[str, Any], key: str, name: str, required: bool = False) -> str:
    value = spec.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"User property {name}: {key} must be a non-empty string, not {value!r}.",
            "Describe in one plain sentence exactly what is measured."
            if key == "description"
            else f"Write the {key} as text, or leave it out.",
        )
    return value.strip()


def _scorer(spec: Mapping[str, Any], name: str, count: bool) -> Scorer:
    if "regex" in spec:
        pattern = _regex(spec["regex"], name)
        return regex_count(pattern) if count else regex_presence(pattern)
    entries = _lexicon(spec["lexicon"], name)
    return lexicon_count(entries) if count else lexicon_presence(entries)


def _lexicon(lexicon: Any, name: str) -> list[str]:
    if isinstance(lexicon, str) or not isinstance(lexicon, list | tuple):
        raise ConfigError(
            f"User property {name}: lexicon must be a list of words or phrases, not {lexicon!r}.",
            "Write it as a list, e.g. lexicon: [safety, harm, be careful].",
        )
    bad = [entry for entry in lexicon if not isinstance(entry, str) or not any(t != BARRIER for t in tokens(entry))]
    if not lexicon or bad:
        problem = "is empty" if not lexicon else f"has entries without a word in them: {bad[:3]!r}"
        raise ConfigError(
            f"User property {name}: the lexicon {problem}.",
            "List at least one word or phrase, each a string with a word in it; for punctuation "
            "or symbols use a regex instead.",
        )
    return list(lexicon)


def _regex(source: Any, name: str) -> re.Pattern[str]:
    if not isinstance(source, str) or not source:
        raise ConfigError(
            f"User property {name}: regex must be a non-empty string, not {source!r}.",
            "Write a Python regular expression, quoted in YAML, e.g. regex: 'https?://\\S+'.",
        )
    try:
        pattern = re.compile(source)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ConfigError(
            f"User property {name}: the regex {source!r} is invalid: {exc.msg}{where}.",
            "Fix the regular expression (Python `re` syntax; escape literal characters such as "
            "( [ . ? with a backslash).",
        ) from exc
    if pattern.fullmatch(""):
        raise ConfigError(
            f"User property {name}: the regex {source!r} matches the empty string, so every text has it.",
            "Make it require at least one character, e.g. use + instead of *.",
        )
    return pattern
