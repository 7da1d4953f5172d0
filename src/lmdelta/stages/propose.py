"""Propose hypotheses per scope (all prompts pooled, and each group) from discovery prompts only.

Writes hypotheses.jsonl (proposal order is the online-FDR order) and skipped.jsonl (scopes
left out, with the reason), and the same for the null control when it is on. The hypotheses given in
propose.given (lmdelta.given) follow the proposed ones, ids g001…: a family of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from lmdelta import given
from lmdelta.config import RunConfig
from lmdelta.diversity import Embed
from lmdelta.llm.session import LLMSession, role_identity
from lmdelta.pairdata import PairData, null_pair
from lmdelta.proposers import BatchProposer, Proposer, clusters, keywords, llm, properties
from lmdelta.proposers.llm import Search
from lmdelta.records import Hypothesis
from lmdelta.rundir import DUPLICATES, EMBEDDER, HYPOTHESES, SEARCH_ROUNDS, SKIPPED, read_jsonl, write_jsonl
from lmdelta.search import Grow, SearchResult, search
from lmdelta.search import grows as search_grows
from lmdelta.stages import embed, generate
from lmdelta.stages.contract import Read, StageContext, StageResult
from lmdelta.stages.discovery import DiscoveryAnswers
from lmdelta.stages.pairs import comparisons, load_pair
from lmdelta.stats.tests import smallest_p

VERSION = 7  # 7: a scope of more than 20,000 answers is clustered on a seeded sample of 20,000, the rest assigned
# 6: the search loop: near-duplicates merged or dropped (propose.dedup), propose.rounds
# 5: the text-property proposer (propose.properties, on by default)
READS: tuple[str | Read, ...] = (
    "validate.min_prompts",  # scopes with too few validation prompts are left out
    Read("decide.q", when=lambda config: config.propose.scopes != "all"),  # which groups can be validated
    Read("run.seed", when=lambda config: config.controls.null),  # the null control's relabelling
    "validate.mode",  # sequential: validation prompts are counted before they are answered
    Read("validate.max_prompts", when=generate.sequential),  # at most this many count
)
log = logging.getLogger(__name__)
UNREACHABLE = "unreachable"  # the `rule` of a group skipped because even a perfect result could not be validated
# The proposers, each by its module's `prepare`, in proposal order (the online-FDR order): in each
# scope every scope proposer in turn, then every batch proposer once over all the planned scopes.
# A new proposer is its module and one entry here.
SCOPE_PROPOSERS: tuple[Callable[[PairData, RunConfig], Proposer | None], ...] = (
    keywords.prepare,
    clusters.prepare,
    properties.prepare,
)
BATCH_PROPOSERS: tuple[Callable[[RunConfig, LLMSession | None], BatchProposer | None], ...] = (llm.prepare,)


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    found: dict[str, Any] = {"labels": [config.label("a"), config.label("b")]}
    if llm.enabled(config):
        found["proposer"] = role_identity(config, "proposer")
    if config.propose.given is not None:
        found["given"] = given.content_hash(config.propose.given)
    return found


def check(config: RunConfig) -> None:
    """Refuse, before any stage runs, a propose.given file that cannot be read (lmdelta.given)."""
    given.check(config)


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    data = load_pair(ctx, config)
    session = _session(ctx, config)
    counts: dict[str, Any] = {}
    skipped_by: dict[str, list[dict[str, Any]]] = {}
    embed_claims = _claim_embedder(ctx, config)
    entries = _given_entries(ctx, config, data)
    answers = DiscoveryAnswers(ctx, config, data) if search_grows(config) else None
    for name, pair in comparisons(data, config).items():
        found, skipped = search_all(pair, config, session, embed_claims, _grow(answers, name, config))
        hypotheses = found.hypotheses + given.hypotheses(entries, pair.labels, after=len(found.hypotheses))
        write_jsonl(ctx.output(HYPOTHESES, name), (h.to_dict() for h in hypotheses))
        write_jsonl(ctx.output(SKIPPED, name), skipped)
        write_jsonl(ctx.output(DUPLICATES, name), (d.to_dict() for d in found.duplicates))
        write_jsonl(ctx.output(SEARCH_ROUNDS, name), [*found.rounds, {"stopped": found.stopped}])
        counts[name] = {
            "hypotheses": len(hypotheses),
            "skipped_scopes": len(skipped),
            "near_duplicates": len(found.duplicates),
            "rounds": len(found.rounds),
        }
        if entries:
            counts[name]["given"] = len(entries)
        skipped_by[name] = skipped
    if answers is not None:
        counts["discovery"] = answers.counts()
    _log_skipped(skipped_by, config)
    if session is not None:
        session.check()
    return StageResult(counts)


def _log_skipped(skipped_by: dict[str, list[dict[str, Any]]], config: RunConfig) -> None:
    """Once per run: the null control skips what the main comparison skips, so only its extras are logged."""
    logged: set[tuple[str, str]] = set()
    for name, skipped in skipped_by.items():
        where = "" if name == "main" else f" ({name} control)"
        extra = [s for s in skipped if (s["group"], s["reason"]) not in logged]
        logged |= {(s["group"], s["reason"]) for s in skipped}
        unreachable = [s for s in extra if s.get("rule") == UNREACHABLE]
        if unreachable:
            pooled = all(s["pooled"] for s in unreachable)  # one comparison's entries all say the same
            log.info("%s", unreachable_line(unreachable, config.decide.q, pooled, where))
        for entry in extra:
            if entry.get("rule") != UNREACHABLE:
                log.info("propose%s: skipping group %s: %s", where, entry["group"], entry["reason"])


def unreachable_line(skipped: list[dict[str, Any]], q: float, pooled: bool, where: str = "") -> str:
    """The one log line naming every group left out because a perfect result there could not be validated."""
    by_size: dict[tuple[int, int], list[str]] = {}
    for entry in skipped:
        by_size.setdefault((entry["n_validation_prompts"], entry["scopes"]), []).append(entry["group"])
    sequential = any(entry.get("test") == SEQUENTIAL_TEST for entry in skipped)
    sizes = "; ".join(
        f"{n} validation prompts, {_floor_text(n, sequential)} > {q:g} / {scopes} = {q / scopes:.2g}: "
        + ", ".join(groups)
        for (n, scopes), groups in by_size.items()
    )
    cover = "the pooled scope still covers their prompts" if pooled else "no pooled scope covers their prompts"
    bound = "a betting e-value cannot pass 1.5 × 1.75^(n-1)" if sequential else "the smallest p-value is 2^-n"
    return (
        f"propose{where}: not proposing in {len(skipped)} group(s) where even a perfect result could not be "
        f"validated at q = {q:g} (on n validation prompts {bound}, above q / the number "
        f"of scopes proposed in with them; {cover}): {sizes}"
    )


def _given_entries(ctx: StageContext, config: RunConfig, data: PairData) -> list[given.GivenEntry]:
    """The propose.given file's entries, checked against this run (its groups, its embedding space); none when unset.
    They are tested after the proposed ones, as a family of their own (stages.decide)."""
    if config.propose.given is None:
        return []
    entries = given.read(config.propose.given)
    embedder = {"model": config.embed.model, "id": ctx.input("embed", EMBEDDER).read_text().strip()}
    given.check_fits(entries, data.group_names(), data.vectors.shape[1], embedder)
    return entries


def _grow(answers: DiscoveryAnswers | None, name: str, config: RunConfig) -> Grow | None:
    """Round by round, the comparison with that round's discovery answers: the main one, or the null control
    built from it (None when every discovery prompt was answered up front)."""
    if answers is None:
        return None
    if name == "main":
        return answers.pair
    return lambda number: null_pair(answers.pair(number), config.run.seed)


def _claim_embedder(ctx: StageContext, config: RunConfig) -> Embed | None:
    """The claims' embedder for deduplication: the run's own, through the shared cache (None when dedup is off)."""
    if not config.propose.dedup.enabled:
        return None
    return lambda texts: embed.embed_texts(ctx, config, texts)


def _session(ctx: StageContext, config: RunConfig) -> LLMSession | None:
    if not llm.enabled(config):
        return None
    return LLMSession(config, "propose", ctx.cache_dir, ctx.run_dir)


def scopes(data: PairData, config: RunConfig) -> list[str]:
    groups = data.group_names()
    setting = config.propose.scopes
    pooled = ["all"] if setting in ("all", "both") or len(groups) == 1 else []
    per_group = groups if setting in ("groups", "both") and len(groups) > 1 else []
    return pooled + per_group


def propose_all(
    data: PairData, config: RunConfig, session: LLMSession | None = None
) -> tuple[list[Hypothesis], list[dict[str, Any]]]:
    """Every proposer's hypotheses, numbered in proposal order, and the scopes skipped (with why)."""
    found, skipped = search_all(data, config, session)
    return found.hypotheses, skipped


def search_all(
    data: PairData,
    config: RunConfig,
    session: LLMSession | None = None,
    embed: Embed | None = None,
    grow: Grow | None = None,
) -> tuple[SearchResult, list[dict[str, Any]]]:
    """The search loop's result (lmdelta.search) with its hypotheses numbered in proposal order, and the scopes
    skipped (with why). `embed` gives the claims' vectors for deduplication (None: firing overlap only); `grow`
    the comparison of each round when discovery answers are generated round by round."""
    chosen, skipped = plan_scopes(data, config)
    # Scope proposers are prepared once per set of answers: a round's weights make a new view of the same
    # samples, and discovery answers that grow only ever append samples, so their count names the set.
    prepared: dict[int, list[Proposer]] = {}

    def one_round(view: PairData, where: Search) -> tuple[list[Hypothesis], list[dict[str, Any]]]:
        usable = {scope: view.rows("discovery", scope) for scope in chosen}
        if len(view.samples) not in prepared:
            prepared.clear()
            prepared[len(view.samples)] = [p for make in SCOPE_PROPOSERS if (p := make(view, config)) is not None]
            view.release_analyses()  # the proposers hold their scores; the texts' tokens need not stay
        batched, failed = _propose_batched(view, usable, config, session, where)
        return _propose_per_scope(view, usable, config, prepared[len(view.samples)]) + batched, failed

    found = search(data, chosen, config, one_round, embed, grow)
    numbered = [replace(h, id=f"h{i:03d}", order=i) for i, h in enumerate(found.hypotheses, start=1)]
    found.duplicates = [replace(d, kept=numbered[d.kept_index]) for d in found.duplicates]
    found.hypotheses = numbered
    return found, skipped + found.failed


def _propose_per_scope(
    data: PairData, usable: dict[str, np.ndarray], config: RunConfig, proposers: list[Proposer]
) -> list[Hypothesis]:
    """Scope by scope, each scope proposer in turn (prepared once per comparison, for every scope and round:
    a round's weights reach them through `data`)."""
    return [
        hypothesis
        for scope, rows in usable.items()
        for proposer in proposers
        for hypothesis in proposer.propose(data, scope, rows, config)
    ]


def _propose_batched(
    data: PairData,
    usable: dict[str, np.ndarray],
    config: RunConfig,
    session: LLMSession | None,
    where: Search | None = None,
) -> tuple[list[Hypothesis], list[dict[str, Any]]]:
    """Each batch proposer once over all the usable scopes, and the scopes they failed in."""
    found: list[Hypothesis] = []
    failed: list[dict[str, Any]] = []
    if not usable:  # nothing to send: no call, no session used
        return found, failed
    for prepare in BATCH_PROPOSERS:
        proposer = prepare(config, session)
        if proposer is not None:
            proposed, not_proposed = proposer.propose_scopes(data, usable, config, where)
            found += proposed
            failed += not_proposed
    return found, failed


def plan_scopes(data: PairData, config: RunConfig) -> tuple[list[str], list[dict[str, Any]]]:
    """The scopes to propose in, and a record (group, reason) per scope left out.

    Counts only, never scores: which scopes are tested cannot depend on what validation would show.
    """
    chosen: list[str] = []
    skipped: list[dict[str, Any]] = []
    for scope in scopes(data, config):
        reason = _skip_reason(data, scope, config)
        if reason:
            skipped.append({"group": scope, "reason": reason})
        else:
            chosen.append(scope)
    if not data.shares_prompts():
        return chosen, skipped  # a text-level test's smallest p-value is not 2^-n: no such bound
    sequential = generate.sequential(config)
    count = _n_validation_prompts if sequential else _n_paired_prompts
    n_paired = {scope: count(data, scope, config) for scope in chosen if scope != "all"}
    if not n_paired:  # the pooled scope only: no group to leave out, and decide.q does not matter (READS)
        return chosen, skipped
    pooled = "all" in chosen
    floor = sequential_floor if sequential else smallest_p
    unreachable = unreachable_groups(n_paired, config.decide.q, pooled, floor)
    for scope, n_scopes in unreachable.items():
        n, q = n_paired[scope], config.decide.q
        skipped.append(
            {
                "group": scope,
                "rule": UNREACHABLE,
                "test": SEQUENTIAL_TEST if sequential else "sign-flip",
                "n_validation_prompts": n,
                "scopes": n_scopes,
                "pooled": pooled,
                "reason": f"{n} validation prompts: even a perfect result ({'' if sequential else 'p = '}"
                f"{_floor_text(n, sequential)}) "
                f"would be above q / {n_scopes} = {q / n_scopes:.2g} ({n_scopes} scopes counting "
                f"this one), so it could not be validated",
            }
        )
    return [scope for scope in chosen if scope not in unreachable], skipped


SEQUENTIAL_TEST = "betting e-process"


def sequential_floor(n: int) -> float:
    """The smallest 1/e a betting e-process can reach on n prompts: its first stake risks at most half the
    capital (stats.sequential.TRUNCATION) and every later one three quarters (STAKE_CAP), so a perfect prompt
    multiplies it by at most 1.5, then 1.75."""
    return float(1.0 / (1.5 * 1.75 ** (n - 1))) if n > 0 else 1.0


def _floor_text(n: int, sequential: bool) -> str:
    if sequential:
        return f"1/e >= 1/(1.5 × 1.75^{n - 1}) = {sequential_floor(n):.2g}"
    return f"2^-{n} = {smallest_p(n):.2g}"


def unreachable_groups(
    n_validation: dict[str, int], q: float, pooled: bool, floor: Callable[[int], float] = smallest_p
) -> dict[str, int]:
    """Groups where even a perfect result could not be validated (2^-n > q / S), each with its S.

    n is a group's number of validation prompts answered by both sides: no prompt-level
    sign-flip p-value there falls below 2^-n, stats.tests.smallest_p(n) (exact: the observed
    signs are one of 2^n; Monte Carlo: 1/(R+1) is larger still). S counts the scopes proposed
    in, the pooled one included. Benjamini–Hochberg accepts a p-value ≤ q·k/m once k of the m
    hypotheses are validated, and k/m = 1/S means as many validations as one scope proposes on
    average; a group with 2^-n > q/S would need more than a whole scope's worth of validations
    elsewhere, so proposing there buys judge calls and a larger m for practically nothing. The
    groups kept are those with the most prompts, equal counts kept or left out together, as many
    as pass the bound with S counting all of them: leaving a group out shrinks S and so eases
    the bound for the rest.
    """
    levels = sorted(set(n_validation.values()), reverse=True)
    kept_down_to = None
    for n in levels:  # the bound tightens as n falls and S grows: the first failure ends it
        if floor(n) > q / (int(pooled) + sum(v >= n for v in n_validation.values())):
            break
        kept_down_to = n
    return {
        name: int(pooled) + sum(v >= n for v in n_validation.values())
        for name, n in sorted(n_validation.items(), key=lambda item: (-item[1], item[0]))
        if kept_down_to is None or n < kept_down_to
    }


def _n_paired_prompts(data: PairData, scope: str, config: RunConfig | None = None) -> int:
    return int(data.samples.paired_prompts(data.rows("validation", scope)).size)


def _skip_reason(data: PairData, scope: str, config: RunConfig) -> str | None:
    grown = search_grows(config)  # discovery prompts are answered round by round: count them all, as planned
    n_discovery = _planned(data, "discovery", scope) if grown else _n_prompts(data, data.rows("discovery", scope))
    n_validation = _n_validation_prompts(data, scope, config)
    least = config.propose.min_discovery_prompts
    if n_discovery < least:
        return f"{n_discovery} discovery prompts (< propose.min_discovery_prompts={least})"
    if n_validation < config.validate.min_prompts:
        return f"{n_validation} validation prompts (< validate.min_prompts={config.validate.min_prompts})"
    sides = set(data.samples.sides(data.rows("discovery", scope)))
    if sides != {"a", "b"} and not grown:
        return f"discovery answers only from side {''.join(sorted(sides)) or 'none'}"
    return None


def _n_validation_prompts(data: PairData, scope: str, config: RunConfig) -> int:
    """The scope's validation prompts: those answered, or in sequential mode (answered later, round by round)
    those of the split."""
    if not generate.sequential(config):
        return _n_prompts(data, data.rows("validation", scope))
    n = _planned(data, "validation", scope)
    cap = config.validate.max_prompts
    return n if cap is None else min(n, cap)


def _planned(data: PairData, split: str, scope: str) -> int:
    """The scope's prompts of a split, answered yet or not."""
    return sum(p.split == split and scope in ("all", data.groups.get(p.id)) for p in data.prompts)


def _n_prompts(data: PairData, rows: np.ndarray) -> int:
    return len(set(data.samples.prompt_ids(rows)))


def load(ctx: StageContext, comparison: str = "main") -> list[Hypothesis]:
    return [Hypothesis.from_dict(row) for row in read_jsonl(ctx.input("propose", HYPOTHESES, comparison))]


def load_skipped(ctx: StageContext, comparison: str = "main") -> list[dict[str, Any]]:
    return list(read_jsonl(ctx.input("propose", SKIPPED, comparison)))
