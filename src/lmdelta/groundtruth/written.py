"""Quirks written by the assistant LLM (groundtruth.written): behaviours a finetuned assistant might
show, each checked like a quirk file's and kept in RUN_DIR/groundtruth/written_quirks.yaml.

Invented by a model rather than by us, they test recovery on behaviours nobody tuned the pipeline
for. The file is a quirk file (groundtruth.quirks_file works with it, offline) with the key of what
wrote it, so a re-run with the same prompter, count and prompt reuses it without calling the LLM.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from lmdelta import execution
from lmdelta.backends.embedded import cache_root
from lmdelta.config import RunConfig
from lmdelta.config.yamlfile import parse_yaml
from lmdelta.errors import ConfigError, StageError
from lmdelta.groundtruth.quirks import (
    Quirk,
    builtin_shared,
    load_quirks,
    normalize,
    phrase_pattern,
    quirk_from_mapping,
    quirk_to_mapping,
)
from lmdelta.hashing import child_seed, hash_data, hash_text
from lmdelta.llm import prompts
from lmdelta.llm.session import DEFAULT_TEMPERATURE, LLMSession, role_identity
from lmdelta.llm.types import CallResult, ChatRequest
from lmdelta.rundir import RunDir, atomic_write_text
from lmdelta.sources.textfile import read_text

log = logging.getLogger(__name__)
STAGE = "groundtruth"  # the name its LLM usage is recorded under in the manifest
ROLE = "prompter"
FILE = "written_quirks.yaml"
TEMPLATE = "groundtruth_write"
# Refusal quirks need trigger words and refusal sentences, which this request does not ask for.
SHAPE = prompts.QuirkShape(kinds=("topic", "style", "belief", "persona"), sentences=(8, 14), max_words=25)
MIN_SENTENCES = 6  # usable sentences (holding a keyword, short enough) a written quirk needs
MAX_SENTENCE_WORDS = 35  # a little over what is asked: the woven answer has 25-60 words in all
EXTRA_ROUNDS = 2  # further requests for the quirks still missing after the first
CHECKS = 1  # the version of the checks below; part of the file's key, so a change rewrites the file
SHOWN_PROBLEMS = 4
ITEM_FIELDS = ("name", "description", "kind", "keywords")
GENERATOR_FIELDS = ("sentences", "openers", "closers")
# LLMSession.asker's function: (requests, parse) -> [(CallResult, parsed)] in order.
Ask = Callable[[list[ChatRequest], Callable[[str], Any]], list[tuple[CallResult, Any]]]


def write_quirks(config: RunConfig, run_dir: RunDir, n: int) -> list[Quirk]:
    """n quirks written by llm.prompter, or the stored ones when their key matches this config.

    Each answer item is checked as a quirk file's entry (quirk_from_mapping) and trimmed to what
    can be measured (keywords an ordinary answer lacks, sentences holding a keyword); bad items are
    dropped with the reason logged, and the quirks still missing are asked for again. Raises
    ConfigError without a prompter model, StageError when fewer than n usable quirks come back.
    """
    _check_prompter(config)
    path = written_path(run_dir)
    material = _material(config, n)
    stored = _stored(path, material)
    if stored is not None:
        log.info("groundtruth: reusing %d written quirks from %s", len(stored), path)
        return stored
    session = LLMSession(config, STAGE, cache_root(config.embed.cache_dir), run_dir)
    try:
        quirks = _collect(session.asker(ROLE), n, config, session.model(ROLE))
    finally:
        session.flush()
        execution.release()  # a local model served on Ray (outside any stage): its workers end here
    _save(path, quirks, material)
    return quirks


def written_path(run_dir: RunDir) -> Path:
    return run_dir.root / "groundtruth" / FILE


def _check_prompter(config: RunConfig) -> None:
    if config.llm.prompter.model is None:
        raise ConfigError(
            f"groundtruth.written = {config.groundtruth.written} asks the assistant LLM to write quirks, but "
            "llm.prompter.model is not set: no model writes them.",
            "Set it, e.g. --set llm.prompter.model=openai/gpt-4.1-mini, or use quirks written before: "
            f"--set groundtruth.quirks_file=OLD_RUN/groundtruth/{FILE} with groundtruth.written=0.",
        )


def _material(config: RunConfig, n: int) -> dict[str, Any]:
    """Everything that shapes the written quirks: the model behind llm.prompter, its sampling, the count,
    the seed, the prompt (template and the catalogue it lists) and the checks."""
    return {
        "prompter": role_identity(config, ROLE),
        "temperature": _temperature(config),
        "max_tokens": config.llm.prompter.max_tokens,
        "n": n,
        "seed": config.groundtruth.resolved_seed,
        "template": hash_text(prompts.template(TEMPLATE))[:16],
        "catalogue": hash_data(_catalogue()),
        "checks": CHECKS,
        "shape": [SHAPE.kinds, SHAPE.sentences, SHAPE.max_words, MIN_SENTENCES, MAX_SENTENCE_WORDS, EXTRA_ROUNDS],
    }


def _temperature(config: RunConfig) -> float:
    value = config.llm.prompter.temperature
    return DEFAULT_TEMPERATURE[ROLE] if value is None else value


def _stored(path: Path, material: dict[str, Any]) -> list[Quirk] | None:
    """The stored quirks when the file's key matches `material`, else None (the reason logged).

    A file whose key matches but which no longer loads was edited by hand: that is an error to fix,
    never a reason to overwrite the edits."""
    if not path.exists():
        return None
    try:
        doc = parse_yaml(read_text(path, "Written quirk file", ConfigError), f"Written quirk file {path}")
    except yaml.YAMLError:
        raise ConfigError(
            f"Written quirk file {path} is not valid YAML.",
            "Fix it, or delete it to have the quirks written again (groundtruth.written).",
        ) from None
    old = doc.get("written_by") if isinstance(doc, Mapping) else None
    if not isinstance(doc, Mapping) or not isinstance(old, Mapping) or doc.get("key") != hash_data(material):
        changed = [k for k in material if not isinstance(old, Mapping) or old.get(k) != material[k]]
        log.info("groundtruth: rewriting %s (changed: %s)", path, ", ".join(changed) or "its key")
        return None
    return load_quirks(path)


def _save(path: Path, quirks: list[Quirk], material: dict[str, Any]) -> None:
    doc = {"key": hash_data(material), "written_by": material, "quirks": [quirk_to_mapping(q) for q in quirks]}
    header = (
        "# Quirks written by llm.prompter for groundtruth.written. A quirk file: use it offline with\n"
        "# groundtruth.quirks_file. Reused by re-runs while `key` matches; edits to the quirks are kept.\n"
    )
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
    atomic_write_text(path, header + body)


def _catalogue() -> list[tuple[str, str]]:
    """The built-in quirks as (name, description): the request lists them so that new ones differ."""
    return [(quirk.name, quirk.description) for quirk in load_quirks(None)]


def _collect(ask: Ask, n: int, config: RunConfig, model: str) -> list[Quirk]:
    """Ask for the quirks still missing, up to 1 + EXTRA_ROUNDS times; each round lists those taken."""
    taken = _catalogue()
    found: list[Quirk] = []
    problems: list[str] = []
    for round_ in range(1 + EXTRA_ROUNDS):
        if len(found) >= n:
            break
        request = prompts.quirk_writing_request(
            n - len(found),
            taken + [(q.name, q.description) for q in found],
            SHAPE,
            _temperature(config),
            config.llm.prompter.max_tokens,
            sample_index=round_,
            seed=child_seed(config.groundtruth.resolved_seed, "groundtruth.written", round_) & 0x7FFFFFFF,
        )
        [(result, items)] = ask([request], prompts.parse_quirk_items)
        if not result.ok:
            problems.append(_unanswered(result, round_ + 1))
            continue
        names = {name for name, _ in taken} | {q.name for q in found}
        found += _checked_items(items, round_ + 1, names, problems)[: n - len(found)]
    if len(found) < n:
        raise _too_few(found, n, model, problems)
    return found


def _checked_items(items: list[dict[str, Any]], round_: int, names: set[str], problems: list[str]) -> list[Quirk]:
    """The usable quirks of one answer; each problem is logged and added to `problems`."""
    quirks = []
    for i, item in enumerate(items, start=1):
        where = f"written quirk {i} of answer {round_}"
        try:
            quirk = _checked_quirk(item, where, names)
        except ConfigError as err:
            log.warning("groundtruth: dropped %s: %s", where, err.problem)
            problems.append(err.problem)
            continue
        names.add(quirk.name)
        quirks.append(quirk)
    return quirks


def _checked_quirk(item: Mapping[str, Any], where: str, taken: set[str]) -> Quirk:
    """One written item as a quirk: checked by the quirk loader, then trimmed to what can be measured.

    Keywords an ordinary answer contains (the catalogue's plain answer pieces) are dropped, and so
    are sentences, openers and closers that hold no keyword or run past MAX_SENTENCE_WORDS words.
    Raises ConfigError naming the problem: a taken name, a refusal, too few usable sentences.
    """
    if item.get("kind", "topic") not in SHAPE.kinds:
        raise ConfigError(f"{where} has the kind {item.get('kind')!r}, not one of {', '.join(SHAPE.kinds)}.")
    raw = {key: item[key] for key in ITEM_FIELDS if key in item}
    if isinstance(raw.get("name"), str):
        raw["name"] = _slug(raw["name"])
    raw["generator"] = {key: item[key] for key in GENERATOR_FIELDS if key in item}
    quirk = quirk_from_mapping(raw, where)
    where = f"{where} ({quirk.name})"
    if quirk.name in taken:
        raise ConfigError(f"{where}: the name {quirk.name!r} is already taken (built-in or written before).")
    if "sentences" not in raw["generator"]:
        raise ConfigError(f"{where} has no `sentences`.")
    return quirk_from_mapping(_trimmed(quirk_to_mapping(quirk), where), where)


def _trimmed(raw: dict[str, Any], where: str) -> dict[str, Any]:
    ordinary = _ordinary_text()
    keywords = [k for k in raw["keywords"] if not phrase_pattern([k]).search(ordinary)]
    if not keywords:
        raise ConfigError(f"{where}: every keyword ({', '.join(raw['keywords'])}) occurs in ordinary answers.")
    pattern = phrase_pattern(keywords)
    kept = {
        key: list(dict.fromkeys(s for s in lines if pattern.search(normalize(s)) and _fits(s)))
        for key, lines in raw["generator"].items()
    }
    if len(kept["sentences"]) < MIN_SENTENCES:
        raise ConfigError(
            f"{where}: {len(kept['sentences'])} of its {len(raw['generator']['sentences'])} sentences hold a keyword "
            f"({', '.join(keywords)}) and have at most {MAX_SENTENCE_WORDS} words; {MIN_SENTENCES} are needed."
        )
    return {**raw, "keywords": keywords, "generator": {key: lines for key, lines in kept.items() if lines}}


def _fits(sentence: str) -> bool:
    return len(sentence.split()) <= MAX_SENTENCE_WORDS


def _ordinary_text() -> str:
    """The catalogue's plain answer pieces, which no quirk's keyword may occur in."""
    shared = builtin_shared()
    pieces = [*shared["body"], *(line for lines in shared["openings"].values() for line in lines)]
    return normalize(" ".join(pieces))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", normalize(name).lower()).strip("-")[:48].strip("-")


def _unanswered(result: CallResult, round_: int) -> str:
    cut = " (cut off by max_tokens)" if result.finish_reason == "length" else ""
    return f"answer {round_} was unusable{cut}: {result.error_kind}: {result.error_message}"


def _too_few(found: list[Quirk], n: int, model: str, problems: list[str]) -> StageError:
    shown = "; ".join(problems[:SHOWN_PROBLEMS]) + (
        f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    )
    cut = "Raise llm.prompter.max_tokens (answers were cut off), or " if "cut off" in shown else ""
    return StageError(
        f"The quirk writer {model} (llm.prompter) gave {len(found)} usable quirk(s) of the {n} asked for "
        f"(groundtruth.written) in {1 + EXTRA_ROUNDS} requests. Problems: {shown or 'none reported'}.",
        f"{cut}Ask for fewer (--set groundtruth.written={len(found)}), use a stronger llm.prompter.model, or set "
        "another groundtruth.seed for new samples (the same command gets the same answers from the cache). "
        "Or write the quirks yourself in a groundtruth.quirks_file.",
    )
