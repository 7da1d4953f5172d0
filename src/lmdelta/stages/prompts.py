"""Load the prompt bank, sample it, and split it by prompt into discovery / validation / confirmation.

The split is stratified by group and uses a seeded hash of each prompt id, so a prompt keeps
its split when other prompts are added to the bank. In corpus mode this is the one stage that
reads the user's corpus: it writes the kept prompts' saved answers for generate to import.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from lmdelta.config import PromptsConfig, RunConfig
from lmdelta.config.source import parse_source
from lmdelta.errors import ConfigError, PromptBankError
from lmdelta.hashing import hash_data
from lmdelta.llm.session import DEFAULT_TEMPERATURE, LLMSession, role_identity
from lmdelta.records import Prompt, Sample, Split
from lmdelta.rundir import ARTEFACTS, CORPUS, PROMPTS, read_jsonl, write_jsonl
from lmdelta.sources import VERBATIM, corpus, load_bank, prompts_from_items, units
from lmdelta.sources.corpus_checks import TextArtefact
from lmdelta.sources.corpustable import CorpusTable
from lmdelta.sources.filters import keep_groups, read_scores, score_filter
from lmdelta.sources.generated import categories, describe, generate_items
from lmdelta.stages.contract import Read, StageContext, StageResult

VERSION = 1
# In corpus mode the side labels say which of the corpus's side values are a and which b.
READS: tuple[str | Read, ...] = tuple(
    Read(f"generate.{side}.label", when=lambda config: config.uses_corpus) for side in ("a", "b")
)
log = logging.getLogger(__name__)


# The check reads the corpus files and settings, which the fingerprint holds: a reused stage is not checked again
# (parsing a corpus of 2,000,000 texts takes a minute and 3 GB). Bump VERSION with a stricter corpus check.
CHECKS_INPUTS = True


def check(config: RunConfig) -> None:
    """Corpus mode: read and check the corpus before any stage runs (and in --dry-run); run reuses what was read."""
    if config.uses_corpus:
        corpus_rows(config)


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    """The bank's content, so an edited prompt file re-runs the stage (in corpus mode the corpus files'
    content, which the answers this stage writes come from). A generated bank is named by what decides
    it (categories, settings, the prompter model): computing it would call the LLM."""
    scores = {}
    if config.prompts.score_table is not None:
        scores = {"scores": read_scores(Path(config.prompts.score_table))}  # an edited table re-runs the stage
    if config.uses_corpus:
        return {"corpus": corpus.corpus_hashes(config.corpus), **scores}
    spec = parse_source(config.prompts.source)
    if spec.kind == "generated":
        return {"generated": _generated_description(config, spec.location), **scores}
    return {"bank": hash_data([p.to_dict() for p in source_prompts(config)]), **scores}


def source_prompts(config: RunConfig, ctx: StageContext | None = None) -> list[Prompt]:
    """The prompt bank (not a corpus: its prompts come with its answers, see run)."""
    section = config.prompts
    spec = parse_source(section.source)
    if spec.kind == "generated":
        return _generated(ctx, config, spec.location)
    return load_bank(section.source, section.template)


def _generated_description(config: RunConfig, location: str) -> dict[str, Any]:
    if config.llm.prompter.model is None:
        raise ConfigError(
            "prompts.source is a generated bank, but no model writes it: llm.prompter.model is not set.",
            "Set llm.prompter.model, e.g. --set llm.prompter.model=openai/gpt-4.1-mini.",
        )
    section = config.prompts.generated
    temperature = config.llm.prompter.temperature
    return describe(
        section,
        categories(section, location),
        role_identity(config, "prompter"),
        DEFAULT_TEMPERATURE["prompter"] if temperature is None else temperature,
    )


def _generated(ctx: StageContext | None, config: RunConfig, location: str) -> list[Prompt]:
    if ctx is None:
        raise ValueError("a generated bank is written in the prompts stage, which passes its context")
    section = config.prompts.generated
    session = LLMSession(config, "prompts", ctx.cache_dir, ctx.run_dir)
    try:
        items = generate_items(
            section,
            categories(section, location),
            session.asker("prompter"),
            session.temperature("prompter"),
            config.prompts.resolved_seed,
        )
    finally:
        session.flush()
    return prompts_from_items(items, config.prompts.template or VERBATIM)


def corpus_rows(config: RunConfig) -> CorpusTable:
    """The corpus's rows, parsed once per process while its files and settings stay the same."""
    return corpus.read_corpus(config.corpus, {"a": config.label("a"), "b": config.label("b")})


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    section = config.prompts
    if config.uses_corpus:
        prompts = _corpus_prompts(ctx, config)
    else:
        prompts = select(narrow(source_prompts(config, ctx), section), section)
        for name in (CORPUS, ARTEFACTS):  # left by an earlier corpus-mode run of this directory
            ctx.output(name).unlink(missing_ok=True)
    write_jsonl(ctx.output(PROMPTS), (p.to_dict() for p in prompts))
    counts: dict[str, Any] = {"prompts": len(prompts), "groups": len({p.group for p in prompts})}
    for split in ("discovery", "validation", "confirmation"):
        counts[split] = sum(p.split == split for p in prompts)
    if config.uses_corpus:
        counts["artefacts"] = len(load_artefacts(ctx))  # export artefacts warned of: see artefacts.jsonl
    return StageResult(counts)


def _corpus_prompts(ctx: StageContext, config: RunConfig) -> list[Prompt]:
    """The corpus's kept prompts; their saved answers and the corpus's export artefacts written beside them."""
    rows = corpus_rows(config)
    prompts = select(narrow(units.corpus_prompts(rows), config.prompts), config.prompts)
    write_jsonl(ctx.output(CORPUS), (s.to_dict() for s in units.corpus_samples(rows, {p.id for p in prompts})))
    write_jsonl(ctx.output(ARTEFACTS), (a.to_dict() for a in rows.artefacts))
    return prompts


def narrow(prompts: list[Prompt], section: PromptsConfig) -> list[Prompt]:
    """Keep the groups asked for (by name, then by score), or say why none are left."""
    if section.groups is not None:
        prompts = keep_groups(prompts, section.groups)
    if section.score_table is not None:
        prompts = score_filter(prompts, section.score_table, section.score_above, section.score_below)
    if not prompts:
        raise PromptBankError(f"No prompts are left from {section.source}.", "Check prompts.groups and the bank.")
    return prompts


def select(prompts: list[Prompt], section: PromptsConfig) -> list[Prompt]:
    """Keep `per_group` per group, sample down to `limit` (stratified), and assign each prompt its split."""
    seed = section.resolved_seed
    by_group: dict[str | None, list[Prompt]] = defaultdict(list)
    for prompt in prompts:
        by_group[prompt.group].append(prompt)
    for members in by_group.values():
        members.sort(key=lambda p: _rank(seed, p.id))
        if section.per_group is not None:
            del members[section.per_group :]
    if section.limit is not None and section.limit < len(prompts):
        quotas = _quotas({g: len(m) for g, m in by_group.items()}, section.limit)
        by_group = {g: m[: quotas[g]] for g, m in by_group.items() if quotas[g] > 0}
    chosen: dict[str, Prompt] = {}
    for members in by_group.values():
        for prompt, split in zip(members, _splits(len(members), section)):
            chosen[prompt.id] = replace(prompt, split=split)
    return [chosen[p.id] for p in prompts if p.id in chosen]


def _rank(seed: int, prompt_id: str) -> str:
    """hash_data([seed, prompt_id]), without its generic JSON encoder (the hot loop of big banks)."""
    plain = prompt_id.isascii() and prompt_id.isprintable() and '"' not in prompt_id and "\\" not in prompt_id
    quoted = f'"{prompt_id}"' if plain else json.dumps(prompt_id, ensure_ascii=False)
    canonical = f"[{int(seed)},{quoted}]"
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _quotas(sizes: dict[Any, int], limit: int) -> dict[Any, int]:
    """Proportional allocation with largest remainders (stable order by group name)."""
    total = sum(sizes.values())
    exact = {g: limit * n / total for g, n in sizes.items()}
    quotas = {g: int(v) for g, v in exact.items()}
    order = sorted(sizes, key=lambda g: (-(exact[g] - quotas[g]), str(g)))
    for group in order[: limit - sum(quotas.values())]:
        quotas[group] += 1
    return quotas


def _splits(n: int, section: PromptsConfig) -> list[Split]:
    n_disc = round(n * section.discovery_fraction)
    n_conf = round(n * section.confirmation_fraction)
    if n >= 2:
        n_disc = min(max(n_disc, 1), n - 1)  # every group proposes and validates
    n_conf = min(n_conf, max(n - n_disc - 1, 0))
    splits: list[Split] = ["discovery"] * n_disc
    return splits + ["confirmation"] * n_conf + ["validation"] * (n - n_disc - n_conf)


def load(ctx: StageContext) -> list[Prompt]:
    """The prompts stage's output, for downstream stages."""
    return [Prompt.from_dict(row) for row in read_jsonl(ctx.input("prompts", PROMPTS))]


def load_artefacts(ctx: StageContext) -> list[TextArtefact]:
    """Corpus mode: the export artefacts the prompts stage found in the corpus (none otherwise, or for a
    run made before they were recorded)."""
    path = ctx.input("prompts", ARTEFACTS)
    return [TextArtefact.from_dict(row) for row in read_jsonl(path)] if path.is_file() else []


def corpus_samples(ctx: StageContext) -> Iterator[Sample]:
    """Corpus mode: the kept prompts' saved answers, as the prompts stage wrote them, read one at a time."""
    return (Sample.from_dict(row) for row in read_jsonl(ctx.input("prompts", CORPUS)))
