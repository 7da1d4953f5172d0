"""What a run will contain, said before it runs (`lmdelta run --dry-run`): prompts, splits, groups, texts,
pairing, the most tokens generation can take, and the groups where nothing could ever be validated.

Reads the prompt bank or the corpus (the prompts stage's own selection, so the numbers are the run's);
loads no model and calls no API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from lmdelta import estimate, pipeline
from lmdelta.backends.embedded import cache_root
from lmdelta.config import RunConfig
from lmdelta.config.source import parse_source
from lmdelta.errors import LmdeltaError
from lmdelta.records import Prompt
from lmdelta.rundir import RunDir
from lmdelta.sources.units import corpus_prompts, is_aligned, units
from lmdelta.stages import mode
from lmdelta.stages.prompts import corpus_rows, narrow, select, source_prompts
from lmdelta.stages.propose import sequential_floor, unreachable_groups
from lmdelta.stats.tests import smallest_p


@dataclass(frozen=True)
class _Corpus:
    """What the preview needs of a corpus: the prompts stage's selection, the texts per side, whether they are paired
    by prompt, and how many answer validation prompts. Parsed from the corpus, or read from a run directory whose
    prompts stage will be reused (`held`)."""

    prompts: list[Prompt]
    sides: dict[str, int]
    paired: bool
    validation_texts: int

    @classmethod
    def parsed(cls, config: RunConfig) -> _Corpus:
        rows = corpus_rows(config)
        prompts = select(narrow(corpus_prompts(rows), config.prompts), config.prompts)
        validation = {p.id for p in prompts if p.split == "validation"}
        texts = sum(unit in validation for unit in units(rows))
        return cls(prompts, dict(Counter(rows.sides())), is_aligned(rows), texts)

    @classmethod
    def held(cls, config: RunConfig, run_dir: RunDir | None) -> _Corpus | None:
        """From the run directory: the stored prompts, and the texts per side the generate stage imported; the
        validation texts in the validation prompts' share (an estimate's input). None where either is missing."""
        if run_dir is None:
            return None
        resolved = config.resolved()
        prompts = pipeline.reused_prompts(resolved, run_dir, cache_root(resolved.embed.cache_dir))
        imported = run_dir.load_manifest().stage("generate")
        counts = imported.counts if imported is not None and imported.status == "complete" else None
        if prompts is None or not counts or not {"a", "b"} <= set(counts):
            return None
        sides = {side: int(counts[side]) for side in ("a", "b")}
        share = sum(p.split == "validation" for p in prompts) / max(1, len(prompts))
        paired = all(p.unit is None for p in prompts)
        return cls(prompts, sides, paired, round((sides["a"] + sides["b"]) * share))


def describe_run(config: RunConfig, run_dir: RunDir | None = None) -> list[str]:
    """Lines for the terminal: what the run will hold, then warnings (each starting "warning:"). A corpus run whose
    prompts stage `run_dir` holds and will reuse is described from there, not by parsing the corpus again."""
    corpus = _corpus(config, run_dir)
    stored = (lambda: corpus.prompts) if corpus is not None else None
    choice = mode.choose(config, stored)
    protocol = [f"validation: {choice.mode}" + (f" (auto: {choice.reason})" if config.validate.mode == "auto" else "")]
    if config.execution.engine == "ray":
        where = f"the Ray cluster at {config.execution.address}" if config.execution.address else "a local Ray cluster"
        protocol.append(f"execution: generation, embedding and local LLMs on {where}")
    config = mode.resolve(config, stored=stored)
    if parse_source(config.prompts.source).kind == "generated":
        bank = config.prompts.generated
        return [
            f"prompts: written by llm.prompter at run time ({len(bank.categories)} categories × {bank.per_category})",
            *protocol,
        ]
    prompts = corpus.prompts if corpus is not None else _prompts(config)
    lines = [
        _prompt_line(prompts, config, corpus),
        *protocol,
        _groups_line(prompts, config),
        *_texts_lines(prompts, config, corpus),
    ]
    return lines + estimate.lines(_estimate(prompts, config, corpus)) + _unreachable(prompts, config, corpus)


def stage_seconds(config: RunConfig, run_dir: RunDir | None = None) -> dict[str, float] | None:
    """Each stage's expected seconds where the speed is known (the live view's overall time left); None when
    the prompts cannot be counted before the run (an LLM writes them, or their data is not readable yet). A corpus
    run whose prompts stage will be reused is counted from that stage's output, not by parsing the corpus again."""
    if parse_source(config.prompts.source).kind == "generated":
        return None
    try:
        corpus = _corpus(config, run_dir)
        config = mode.resolve(config, stored=(lambda: corpus.prompts) if corpus is not None else None)
        prompts = corpus.prompts if corpus is not None else _prompts(config)
        return _estimate(prompts, config, corpus).seconds
    except LmdeltaError:  # the run's own checks will say what is wrong, with its fix
        return None


def _corpus(config: RunConfig, run_dir: RunDir | None) -> _Corpus | None:
    """A corpus run's _Corpus, from the run directory where it can, else parsed; None for a prompt bank."""
    if not config.uses_corpus:
        return None
    return _Corpus.held(config, run_dir) or _Corpus.parsed(config)


def _estimate(prompts: list[Prompt], config: RunConfig, corpus: _Corpus | None) -> estimate.Estimate:
    if corpus is not None:
        validation_texts = corpus.validation_texts
    else:
        validation_texts = 2 * sum(p.split == "validation" for p in prompts) * config.generate.samples_per_prompt
    groups = config.group.n_groups if config.group.by == "kmeans" else len({p.group for p in prompts})
    scopes = {"all": 1, "groups": groups, "both": groups + 1 if groups > 1 else 1}[config.propose.scopes]
    answered = 0 if config.uses_corpus else _answered(prompts, config)
    return estimate.estimate(config, answered, validation_texts, scopes)


def _answered(prompts: list[Prompt], config: RunConfig) -> int:
    """Prompts each side answers: all of them, or in sequential mode the non-validation ones up front."""
    return len(prompts) if config.validate.mode == "fixed" else sum(p.split != "validation" for p in prompts)


def _prompts(config: RunConfig) -> list[Prompt]:
    """A prompt bank's selection, as the prompts stage makes it."""
    return select(narrow(source_prompts(config), config.prompts), config.prompts)


def _prompt_line(prompts: list[Prompt], config: RunConfig, corpus: _Corpus | None) -> str:
    splits = Counter(p.split for p in prompts)
    parts = [f"{splits[name]} {name}" for name in ("discovery", "validation", "confirmation") if splits[name]]
    unit = "units" if corpus is not None and not corpus.paired else "prompts"
    source = "corpus" if config.uses_corpus else config.prompts.source  # a corpus file set wins over the source
    return f"{unit}: {len(prompts):,} from {source} ({', '.join(parts)})"


def _groups_line(prompts: list[Prompt], config: RunConfig) -> str:
    by = config.group.by
    if by == "kmeans":
        return f"groups: {config.group.n_groups}, formed at run time by k-means over prompt embeddings"
    if by == "none":
        return "groups: one (group.by = none)"
    sizes = Counter(p.group for p in prompts)
    low, high = min(sizes.values()), max(sizes.values())
    each = low if low == high else f"{low}-{high}"
    return f"groups: {len(sizes)} from the bank ({each} prompt{'' if high == 1 else 's'} each)"


def _texts_lines(prompts: list[Prompt], config: RunConfig, corpus: _Corpus | None) -> list[str]:
    if corpus is not None:
        sides = corpus.sides
        pairing = "paired by prompt" if corpus.paired else "unaligned: each text is its own unit"
        return [f"texts: {sides.get('a', 0):,} of side a, {sides.get('b', 0):,} of side b ({pairing})"]
    k, cap = config.generate.samples_per_prompt, config.generate.max_new_tokens
    answered = _answered(prompts, config)
    lines = [
        f"answers: {answered * k:,} per side ({k} per prompt), at most {answered * k * cap * 2:,} generated tokens"
    ]
    if config.validate.mode == "sequential":
        lines.append("validation answers: generated round by round, only while a hypothesis needs them")
    return lines


def _unreachable(prompts: list[Prompt], config: RunConfig, corpus: _Corpus | None) -> list[str]:
    """Warnings for a run, or groups of it, with too few prompts for any result to be proposed or validated."""
    n_validation = Counter(p.group or "all" for p in prompts if p.split == "validation")
    floor = sequential_floor if config.validate.mode == "sequential" else smallest_p
    q, total = config.decide.q, sum(n_validation.values())
    lines = []
    if not any(p.split == "discovery" for p in prompts):
        lines.append(
            "warning: no discovery prompts: nothing will be proposed (more prompts, or prompts.discovery_fraction)"
        )
    if floor(total) > q:
        lines.append(f"warning: {total} validation prompts in all: nothing can be validated at q = {q}")
    proposes_in_groups = config.group.by == "bank" and config.propose.scopes != "all"  # "all": pooled only
    if proposes_in_groups and len(n_validation) > 1 and (corpus is None or corpus.paired):
        lines += _group_warning(dict(n_validation), q, floor)
    return lines


def _group_warning(n_validation: dict[str, int], q: float, floor: Callable[[int], float]) -> list[str]:
    skipped = unreachable_groups(n_validation, q, pooled=True, floor=floor)
    if not skipped:
        return []
    shown = ", ".join(f"{name} ({n_validation[name]})" for name in list(skipped)[:6])
    more = f" and {len(skipped) - 6} more" if len(skipped) > 6 else ""
    return [
        f"warning: {len(skipped)} of {len(n_validation)} groups have too few validation prompts for any finding "
        f"of theirs to be validated, so no hypothesis will be proposed in them: {shown}{more} "
        "(more prompts per group, fewer groups, or group.by = none fix it)"
    ]
