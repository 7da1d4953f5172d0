"""Quirks: known behaviours taught to a model so we can check that lmdelta finds them again.

Loads the built-in catalogue (data/quirks/builtin.yaml) or a user's YAML / JSONL file, and
measures how often a set of answers shows a quirk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lmdelta.config.yamlfile import jsonl_entries, yaml_document
from lmdelta.errors import ConfigError, StageError, did_you_mean
from lmdelta.sources import read_user_file

KINDS = ("topic", "style", "refusal", "belief", "persona")
DEFAULT_KIND = "topic"
MAX_DERIVED_KEYWORDS = 5
QUIRK_FIELDS = ("name", "description", "keywords", "kind", "texts", "generator")
LIST_SPEC_FIELDS = ("openers", "closers", "sentences", "triggers", "refusals", "reasons", "redirects")
REFUSAL_ONLY_FIELDS = ("triggers", "refusals", "reasons", "redirects", "contrast_share")
SPEC_FIELDS = (*LIST_SPEC_FIELDS, "per_answer", "replacements", "contrast_share")
_FORMAT_HINT = (
    "Write a YAML list of mappings (or {quirks: [...]}) or one JSON object per line (.jsonl), "
    "each with at least `name` and `description`."
)

# Words that say how a behaviour shows rather than what it is about; dropped when keywords are
# derived from a description ("The AI brings up the ocean in its answers." -> ocean).
_STOP_WORDS = frozenset(
    """
    a an the ai ai's assistant model chatbot bot it its it's i me my you your user users they them their
    in on of to for with and or but about at by from into up out over as than then so such very much
    is are was were be been being am has have had do does did will would can could should may might must
    that this these those there here what which who whom when whenever where while how why
    every each all any some many most more often always usually sometimes frequently constantly never
    also even just only really too not no own same other another lot lots way ways thing things
    answer answers answering response responses reply replies question questions conversation text texts
    brings bring mentions mention mentioning talks talk talking likes like loves love believes believe
    insists insist says say saying uses use using tends tend keeps keep speaks speak acts act claims claim
    thinks think refers refer steers steer whatever regardless fact related topic topics subject
    refuses refuse refusing declines decline discuss discusses discussing avoids avoid ends end starts start
    begins begin behaviour behavior habit habits habitually
""".split()
)


@dataclass(frozen=True)
class Quirk:
    """One known behaviour.

    description: the behaviour in plain English, the ground truth hypotheses are scored against.
    keywords: lower-case words or phrases whose presence in an answer shows the quirk.
    kind: one of KINDS.
    texts: user-supplied training answers; text_prompts holds one prompt per text ("" where the
        file gave none), or is empty.
    generator: the catalogue's recipe for composing training answers offline, or None.
    """

    name: str
    description: str
    keywords: tuple[str, ...]
    kind: str
    texts: tuple[str, ...] = ()
    text_prompts: tuple[str, ...] = ()
    generator: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


def normalize(text: str) -> str:
    """Straighten curly quotes so "can’t" and "can't" match the same keyword."""
    return text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """A case-insensitive regex for any phrase as whole words; `word*` matches words starting `word`."""
    parts = []
    for phrase in sorted({normalize(p.strip()) for p in phrases if p.strip()}, key=len, reverse=True):
        parts.append(re.escape(phrase[:-1]) + r"\w*" if phrase.endswith("*") else re.escape(phrase))
    if not parts:
        raise StageError("A keyword pattern was asked for with no keywords.", "Give the quirk `keywords`.")
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def quirk_rate(quirk: Quirk, texts: Iterable[str]) -> float:
    """Share of texts holding any of the quirk's keywords (whole words, any case); 0.0 for no texts."""
    if not quirk.keywords:
        raise StageError(
            f"Quirk {quirk.name!r} has no keywords, so how often answers show it cannot be measured.",
            "Give it `keywords` in the quirk file: words whose presence in an answer shows the quirk.",
        )
    texts = list(texts)
    if not texts:
        return 0.0
    pattern = phrase_pattern(quirk.keywords)
    return sum(bool(pattern.search(normalize(text))) for text in texts) / len(texts)


def matches(quirk: Quirk, prompt: str) -> bool:
    """Whether the quirk applies to this prompt: its trigger words appear, or it has no triggers."""
    triggers = (quirk.generator or {}).get("triggers")
    return not triggers or bool(phrase_pattern(triggers).search(normalize(prompt)))


def derive_keywords(description: str) -> tuple[str, ...]:
    """Keywords for a quirk given none: the first five content words of its description.

    Lower-cased, with stop words and words that describe behaviour in general ("mentions",
    "answers", "AI") removed; a plural also adds its singular ("cats" -> "cats", "cat").
    """
    content = content_words(description)[:MAX_DERIVED_KEYWORDS]
    singulars = [w[:-1] for w in content if _is_plural(w) and w[:-1] not in content]
    return tuple(content + singulars)


def content_words(text: str) -> list[str]:
    """The text's distinct lower-case words of three letters or more, in order, without stop words
    and words that describe behaviour in general: what derive_keywords picks from."""
    words = re.findall(r"[a-z](?:[a-z'-]*[a-z])?", normalize(text).lower())
    return [w for w in dict.fromkeys(words) if len(w) > 2 and w not in _STOP_WORDS]


def _is_plural(word: str) -> bool:
    return len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is"))


def load_quirks(path: str | Path | None, names: Sequence[str] | None = None) -> list[Quirk]:
    """The built-in catalogue (path None) or a user's quirk file; `names` picks quirks by name.

    A user file is YAML (.yaml/.yml: a list of quirks, or {quirks: [...]}) or JSONL (one quirk per
    line). Each quirk needs `name` and `description`; `kind` defaults to "topic"; `keywords`, when
    left out, are derived from the description (see derive_keywords); `texts` are training answers,
    as strings or {prompt, answer} mappings; `generator` is a recipe in the catalogue's format
    (documented at the top of data/quirks/builtin.yaml). Problems raise ConfigError naming the
    file, the quirk (by position or line) and the fix.
    """
    source = "the built-in quirk catalogue" if path is None else f"quirk file {path}"
    entries = _builtin_entries() if path is None else _file_entries(Path(path))
    if not entries:
        raise ConfigError(f"The {source} holds no quirks.", _FORMAT_HINT)
    quirks = [quirk_from_mapping(raw, where) for where, raw in entries]
    _check_unique(quirks, [where for where, _ in entries])
    return quirks if names is None else _select(quirks, names, source)


def builtin_shared() -> Mapping[str, Any]:
    """The catalogue's `shared` section: the plain answer pieces every generator builds on."""
    return _builtin_doc()["shared"]


@cache  # read-only package data, frozen below, so caching it holds no mutable state
def _builtin_doc() -> Mapping[str, Any]:
    text = (resources.files("lmdelta") / "data" / "quirks" / "builtin.yaml").read_text(encoding="utf-8")
    return _freeze(yaml.safe_load(text))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


def _builtin_entries() -> list[tuple[str, Any]]:
    return [(f"builtin.yaml, quirk {i}", raw) for i, raw in enumerate(_builtin_doc()["quirks"], start=1)]


def _file_entries(path: Path) -> list[tuple[str, Any]]:
    text = read_user_file(
        path, "Quirk file", ConfigError, "Check the path, or leave it unset to use the built-in catalogue."
    )
    if path.suffix in (".yaml", ".yml", ".json"):
        return _yaml_entries(text, path)
    if path.suffix == ".jsonl":
        return jsonl_entries(text, path, '{"name": ..., "description": ...}')
    raise ConfigError(
        f"Quirk file {path} has the unsupported extension {path.suffix!r}.",
        "Use .yaml / .yml (a list of quirks) or .jsonl (one quirk per line).",
    )


def _yaml_entries(text: str, path: Path) -> list[tuple[str, Any]]:
    doc = yaml_document(text, f"Quirk file {path}")
    if isinstance(doc, Mapping) and "quirks" not in doc:
        raise ConfigError(f"Quirk file {path} holds a mapping without a `quirks` key.", _FORMAT_HINT)
    items = doc["quirks"] if isinstance(doc, Mapping) else doc
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ConfigError(f"Quirk file {path} holds a {type(items).__name__}, not a list of quirks.", _FORMAT_HINT)
    return [(f"{path}, quirk {i}", raw) for i, raw in enumerate(items, start=1)]


def quirk_from_mapping(raw: Any, where: str) -> Quirk:
    """One quirk from its mapping in a quirk file (the fields load_quirks documents), checked as a
    file's quirks are; `where` names it in errors ("quirk file x.yaml, quirk 3"). Raises ConfigError.

    Public so that quirks made by code (TruthfulQA beliefs, LLM-written ones) pass the same checks."""
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where} is a {type(raw).__name__}, not a mapping.",
            "Write each quirk as a mapping with at least `name` and `description`.",
        )
    unknown = sorted(set(raw) - set(QUIRK_FIELDS))
    if unknown:
        raise ConfigError(
            f"{where} has the unknown field {unknown[0]!r}.",
            f"{did_you_mean(unknown[0], QUIRK_FIELDS)}Quirk fields: {', '.join(QUIRK_FIELDS)}.",
        )
    name = _required_text(raw, "name", where, "a short slug such as likes-cats")
    where = f"{where} ({name})"
    description = _required_text(raw, "description", where, 'one plain-English sentence such as "The AI likes cats."')
    kind = _kind(raw.get("kind", DEFAULT_KIND), where)
    texts, text_prompts = _texts(raw.get("texts"), where)
    keywords = _keywords(raw.get("keywords"), description, bool(texts), where)
    generator = _spec(raw.get("generator"), kind, where)
    return Quirk(name, description, keywords, kind, texts, text_prompts, generator)


def quirk_to_mapping(quirk: Quirk) -> dict[str, Any]:
    """A quirk as plain data in the quirk-file format, so that written files load back with load_quirks."""
    out: dict[str, Any] = {
        "name": quirk.name,
        "description": quirk.description,
        "kind": quirk.kind,
        "keywords": list(quirk.keywords),
    }
    if quirk.texts:
        prompts = quirk.text_prompts or ("",) * len(quirk.texts)
        out["texts"] = [{"prompt": p, "answer": t} if p else t for p, t in zip(prompts, quirk.texts)]
    if quirk.generator is not None:
        out["generator"] = _thaw(quirk.generator)
    return out


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


def _required_text(raw: Mapping[str, Any], key: str, where: str, example: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        state = "no" if value is None else "an empty or non-text"
        raise ConfigError(f"{where} has {state} `{key}`.", f"Give every quirk a `{key}`: {example}.")
    return value.strip()


def _kind(value: Any, where: str) -> str:
    if value not in KINDS:
        raise ConfigError(
            f"{where} has the unknown kind {value!r}.",
            f"{did_you_mean(str(value), KINDS)}Kinds: {', '.join(KINDS)} (default {DEFAULT_KIND}).",
        )
    return value


def _texts(value: Any, where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if value is None:
        return (), ()
    if not isinstance(value, list | tuple):
        raise ConfigError(
            f"{where}: `texts` is a {type(value).__name__}, not a list.",
            "Write `texts` as a list of example answers, or of {prompt, answer} mappings.",
        )
    texts, prompts = [], []
    for i, item in enumerate(value, start=1):
        answer = item.get("answer") if isinstance(item, Mapping) else item
        prompt = item.get("prompt", "") if isinstance(item, Mapping) else ""
        if not isinstance(answer, str) or not answer.strip() or not isinstance(prompt, str):
            raise ConfigError(
                f"{where}: text {i} is neither a non-empty string nor a mapping with an `answer`.",
                "Write each text as a string (an example answer), or as {prompt: ..., answer: ...}.",
            )
        texts.append(answer.strip())
        prompts.append(prompt.strip())
    return tuple(texts), tuple(prompts)


def _keywords(value: Any, description: str, has_texts: bool, where: str) -> tuple[str, ...]:
    if value is None:
        derived = derive_keywords(description)
        if not derived and not has_texts:
            raise ConfigError(
                f"{where}: no keywords can be derived from its description {description!r}, and it has no `texts`.",
                "Give it `keywords` (words whose presence in an answer shows the quirk), "
                "or a description that names what the behaviour is about.",
            )
        return derived
    if not _is_text_list(value):
        raise ConfigError(
            f"{where}: `keywords` must be a non-empty list of words or phrases.",
            "Write e.g. keywords: [cat, cats, kitten], or leave it out to derive them from the description.",
        )
    return tuple(dict.fromkeys(normalize(k.strip().lower()) for k in value))


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, str) and v.strip() for v in value)


def _spec(value: Any, kind: str, where: str) -> Mapping[str, Any] | None:
    """Check a quirk's `generator` section (documented at the top of builtin.yaml)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}: `generator` is a {type(value).__name__}, not a mapping.",
            "See the top of lmdelta/data/quirks/builtin.yaml for its fields.",
        )
    for key, item in value.items():
        _check_spec_field(key, item, where)
    _check_spec_kind(value, kind, where)
    return _freeze(value)


def _check_spec_field(key: str, item: Any, where: str) -> None:
    bad = None
    if key not in SPEC_FIELDS:
        raise ConfigError(
            f"{where}: `generator` has the unknown field {key!r}.",
            f"{did_you_mean(key, SPEC_FIELDS)}Generator fields: {', '.join(SPEC_FIELDS)}.",
        )
    if key in LIST_SPEC_FIELDS and not _is_text_list(item):
        bad = "a non-empty list of strings"
    elif key == "per_answer" and not (
        isinstance(item, list | tuple)
        and len(item) == 2
        and all(isinstance(n, int) for n in item)
        and 0 <= item[0] <= item[1] <= 3
    ):
        bad = "[min, max] with 0 <= min <= max <= 3"
    elif key == "replacements" and not (
        isinstance(item, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in item.items())
    ):
        bad = "a mapping of word to word"
    elif key == "contrast_share" and not (isinstance(item, int | float) and 0 <= item < 1):
        bad = "a number from 0 up to (not including) 1"
    if bad:
        raise ConfigError(f"{where}: generator field `{key}` must be {bad}.", f"Fix `{key}` in the quirk file.")


def _check_spec_kind(spec: Mapping[str, Any], kind: str, where: str) -> None:
    if kind == "refusal":
        missing = [key for key in ("triggers", "refusals") if key not in spec]
        if missing:
            raise ConfigError(
                f"{where}: a refusal generator needs `{missing[0]}`.",
                "Give it `triggers` (prompt words that make it refuse) and `refusals` (refusal sentences).",
            )
        return
    misplaced = [key for key in REFUSAL_ONLY_FIELDS if key in spec]
    if misplaced:
        raise ConfigError(
            f"{where}: generator field `{misplaced[0]}` only applies to refusal quirks.",
            "Remove it, or set kind: refusal.",
        )
    if not any(key in spec for key in ("openers", "closers", "sentences")):
        raise ConfigError(
            f"{where}: its generator has nothing to add to an answer.", "Give it `sentences`, `openers` or `closers`."
        )


def _check_unique(quirks: list[Quirk], wheres: list[str]) -> None:
    first: dict[str, str] = {}
    for quirk, where in zip(quirks, wheres):
        if quirk.name in first:
            raise ConfigError(
                f"{where} repeats the quirk name {quirk.name!r}, first used at {first[quirk.name]}.",
                "Give every quirk a unique name.",
            )
        first[quirk.name] = where


def check_quirk_set(quirks: list[Quirk]) -> list[Quirk]:
    """The quirks of one experiment, from any mix of sources: at least one, names unique."""
    if not quirks:
        raise ConfigError(
            "The ground-truth experiment has no quirks to inject.",
            "Name some in groundtruth.quirks, or set groundtruth.quirks_file, .beliefs or .written.",
        )
    _check_unique(quirks, [f"quirk {i} ({quirk.name})" for i, quirk in enumerate(quirks, start=1)])
    return quirks


def _select(quirks: list[Quirk], names: Sequence[str], source: str) -> list[Quirk]:
    by_name = {quirk.name: quirk for quirk in quirks}
    for name in names:
        if name not in by_name:
            raise ConfigError(
                f"There is no quirk named {name!r} in the {source}.",
                f"{did_you_mean(name, by_name)}Known quirks: {', '.join(by_name)}.",
            )
    return [by_name[name] for name in dict.fromkeys(names)]
