"""Propose hypotheses per scope (all prompts pooled, and each group) from discovery prompts only.

Writes hypotheses.jsonl (proposal order is the online-FDR order) and skipped.jsonl (scopes
left out, with the reason), and the same for the null control when it is on.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.llm.session import LLMSession, role_identity
from lmdelta.pairdata import PairData
from lmdelta.proposers import clusters, keywords, llm
from lmdelta.records import Hypothesis
from lmdelta.rundir import HYPOTHESES, SKIPPED, read_jsonl, write_jsonl
from lmdelta.stages.pairs import comparisons, load_pair
from lmdelta.stages.contract import Read, StageContext, StageResult
from lmdelta.stats.tests import smallest_p

VERSION = 4  # 4: validate.min_prompts, decide.q and run.seed in the fingerprint as declared reads (were in identity)
READS: tuple[str | Read, ...] = (
    "validate.min_prompts",  # scopes with too few validation prompts are left out
    Read("decide.q", when=lambda config: config.propose.scopes != "all"),  # which groups can be validated
    Read("run.seed", when=lambda config: config.controls.null),  # the null control's relabelling
)
log = logging.getLogger(__name__)
UNREACHABLE = "unreachable"  # the `rule` of a group skipped because even a perfect result could not be validated


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    found: dict[str, Any] = {"labels": [config.label("a"), config.label("b")]}
    if config.propose.llm.enabled and config.llm.proposer.model:
        found["proposer"] = role_identity(config, "proposer")
    return found


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    data = load_pair(ctx, config)
    session = _session(ctx, config)
    counts: dict[str, Any] = {}
    skipped_by: dict[str, list[dict[str, Any]]] = {}
    for name, pair in comparisons(data, config).items():
        hypotheses, skipped = propose_all(pair, config, session)
        write_jsonl(ctx.output(HYPOTHESES, name), (h.to_dict() for h in hypotheses))
        write_jsonl(ctx.output(SKIPPED, name), skipped)
        counts[name] = {"hypotheses": len(hypotheses), "skipped_scopes": len(skipped)}
        skipped_by[name] = skipped
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
    sizes = "; ".join(f"{n} validation prompts, 2^-{n} = {smallest_p(n):.2g} > {q:g} / {scopes} = {q / scopes:.2g}: "
                      + ", ".join(groups) for (n, scopes), groups in by_size.items())
    cover = "the pooled scope still covers their prompts" if pooled else "no pooled scope covers their prompts"
    return (f"propose{where}: not proposing in {len(skipped)} group(s) where even a perfect result could not be "
            f"validated at q = {q:g} (on n validation prompts the smallest p-value is 2^-n, above q / the number "
            f"of scopes proposed in with them; {cover}): {sizes}")


def _session(ctx: StageContext, config: RunConfig) -> LLMSession | None:
    if not (config.propose.llm.enabled and config.llm.proposer.model):
        return None
    return LLMSession(config, "propose", ctx.cache_dir, ctx.run_dir)


def scopes(data: PairData, config: RunConfig) -> list[str]:
    groups = data.group_names()
    setting = config.propose.scopes
    pooled = ["all"] if setting in ("all", "both") or len(groups) == 1 else []
    per_group = groups if setting in ("groups", "both") and len(groups) > 1 else []
    return pooled + per_group


def propose_all(data: PairData, config: RunConfig, session: LLMSession | None = None) -> tuple[list[Hypothesis], list[dict[str, Any]]]:
    discovery = data.rows("discovery")
    background = keywords.document_counts([data.samples[i].text for i in discovery], config.propose.keywords.max_ngram)
    found: list[Hypothesis] = []
    chosen, skipped = plan_scopes(data, config)
    usable: dict[str, np.ndarray] = {}
    for scope in chosen:
        rows = usable[scope] = data.rows("discovery", scope)
        if config.propose.keywords.enabled:
            found += _keyword_hypotheses(data, scope, rows, background, len(discovery), config)
        if config.propose.clusters.enabled:
            found += _cluster_hypotheses(data, scope, rows, config)
    if session is not None and usable:
        proposed, failed = llm.propose(data, usable, session.asker("proposer"), session.model("proposer"),
                                       config.propose.llm, session.temperature("proposer"), config.propose.seed)
        found += proposed
        skipped += failed
    numbered = [Hypothesis(**{**h.__dict__, "id": f"h{i:03d}", "order": i}) for i, h in enumerate(found, start=1)]
    return numbered, skipped


def plan_scopes(data: PairData, config: RunConfig) -> tuple[list[str], list[dict[str, Any]]]:
    """The scopes to propose in, and a record (group, reason) per scope left out.

    Counts only, never scores: which scopes are tested cannot depend on what validation would show.
    """
    chosen, skipped = [], []
    for scope in scopes(data, config):
        reason = _skip_reason(data, scope, config)
        if reason:
            skipped.append({"group": scope, "reason": reason})
        else:
            chosen.append(scope)
    if not data.shares_prompts():
        return chosen, skipped  # a text-level test's smallest p-value is not 2^-n: no such bound
    n_paired = {scope: _n_paired_prompts(data, scope) for scope in chosen if scope != "all"}
    if not n_paired:  # the pooled scope only: no group to leave out, and decide.q does not matter (READS)
        return chosen, skipped
    pooled = "all" in chosen
    unreachable = unreachable_groups(n_paired, config.decide.q, pooled)
    for scope, n_scopes in unreachable.items():
        n, q = n_paired[scope], config.decide.q
        skipped.append({"group": scope, "rule": UNREACHABLE, "n_validation_prompts": n, "scopes": n_scopes,
                        "pooled": pooled,
                        "reason": f"{n} validation prompts: even a perfect result (p = 2^-{n} = {smallest_p(n):.2g}) "
                                  f"would be above q / {n_scopes} = {q / n_scopes:.2g} ({n_scopes} scopes counting "
                                  f"this one), so it could not be validated"})
    return [scope for scope in chosen if scope not in unreachable], skipped


def unreachable_groups(n_validation: dict[str, int], q: float, pooled: bool) -> dict[str, int]:
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
        if smallest_p(n) > q / (int(pooled) + sum(v >= n for v in n_validation.values())):
            break
        kept_down_to = n
    return {name: int(pooled) + sum(v >= n for v in n_validation.values())
            for name, n in sorted(n_validation.items(), key=lambda item: (-item[1], item[0]))
            if kept_down_to is None or n < kept_down_to}


def _n_paired_prompts(data: PairData, scope: str) -> int:
    sides: dict[str, set[str]] = {}
    for i in data.rows("validation", scope):
        sides.setdefault(data.samples[i].prompt_id, set()).add(data.samples[i].side)
    return sum(len(found) == 2 for found in sides.values())


def _skip_reason(data: PairData, scope: str, config: RunConfig) -> str | None:
    n_discovery = _n_prompts(data, data.rows("discovery", scope))
    n_validation = _n_prompts(data, data.rows("validation", scope))
    if n_discovery < config.propose.min_discovery_prompts:
        return f"{n_discovery} discovery prompts (< propose.min_discovery_prompts={config.propose.min_discovery_prompts})"
    if n_validation < config.validate.min_prompts:
        return f"{n_validation} validation prompts (< validate.min_prompts={config.validate.min_prompts})"
    sides = {data.samples[i].side for i in data.rows("discovery", scope)}
    if sides != {"a", "b"}:
        return f"discovery answers only from side {''.join(sorted(sides)) or 'none'}"
    return None


def _n_prompts(data: PairData, rows: np.ndarray) -> int:
    return len({data.samples[i].prompt_id for i in rows})


def _keyword_hypotheses(data, scope, rows, background, n_background, config) -> list[Hypothesis]:
    section = config.propose.keywords
    texts = {side: [data.samples[i] for i in rows if data.samples[i].side == side] for side in ("a", "b")}
    terms = keywords.contrast([s.text for s in texts["a"]], [s.text for s in texts["b"]], background, n_background,
                              section.max_ngram, section.prior_strength)
    out = []
    for direction in ("b>a", "a>b"):
        for term in keywords.top_terms(terms, direction, section.per_scope, section.min_z, section.min_texts):
            out.append(_keyword_hypothesis(data, scope, direction, term, texts))
    return out


def _keyword_hypothesis(data, scope, direction, term, texts) -> Hypothesis:
    more, less = ("b", "a") if direction == "b>a" else ("a", "b")
    hits = {side: [s.id for s in texts[side] if f" {term.ngram} " in f" {_words(s.text)} "] for side in ("a", "b")}
    description = (f"{data.labels[more]} uses “{term.ngram}” in more answers than {data.labels[less]}"
                   + ("" if scope == "all" else f" (prompts about {scope})"))
    provenance = {"z": round(term.z, 3), "log_odds": round(term.delta, 3),
                  "discovery_texts_with_term": {"a": term.count_a, "b": term.count_b},
                  "discovery_texts": {"a": len(texts["a"]), "b": len(texts["b"])}}
    return Hypothesis(id="", group=scope, direction=direction, description=description, proposer="keywords",
                      judge="keyword", keywords=(term.ngram,), property=f"uses the word or phrase “{term.ngram}”",
                      evidence={k: v[:3] for k, v in hits.items()}, provenance=provenance)


def _words(text: str) -> str:
    return " ".join(keywords.WORD.findall(text.lower()))


def _cluster_hypotheses(data, scope, rows, config) -> list[Hypothesis]:
    section = config.propose.clusters
    texts = [data.samples[i].text for i in rows]
    sides = np.array([data.samples[i].side for i in rows])
    findings = clusters.find(texts, sides, data.vectors[rows], section.k, config.propose.seed,
                             section.min_size, section.min_share)
    return [_cluster_hypothesis(data, scope, rows, f) for f in findings[: section.per_scope]]


def _cluster_hypothesis(data, scope, rows, finding) -> Hypothesis:
    more, less = ("b", "a") if finding.direction == "b>a" else ("a", "b")
    medoid = data.samples[rows[finding.medoid]]
    snippet = medoid.text if len(medoid.text) <= 90 else medoid.text[:87].rstrip() + "…"
    terms = f" (distinctive words: {', '.join(finding.terms)})" if finding.terms else ""
    description = (f"{data.labels[more]}'s answers more often resemble “{snippet}”{terms} than {data.labels[less]}'s"
                   + ("" if scope == "all" else f" (prompts about {scope})"))
    members = [data.samples[rows[i]] for i in finding.members]
    evidence = {side: [s.id for s in members if s.side == side][:3] for side in ("a", "b")}
    provenance = {"cluster_size": len(finding.members), "discovery_counts": {"a": finding.count_a, "b": finding.count_b},
                  "balanced_share": round(finding.share, 3), "screening_p": finding.p_value,
                  "terms": list(finding.terms), "medoid": medoid.id}
    return Hypothesis(id="", group=scope, direction=finding.direction, description=description, proposer="clusters",
                      judge="embedding", keywords=finding.terms, prototype=tuple(float(x) for x in finding.prototype),
                      property=f"resembles this answer in content and tone: “{snippet}”",
                      evidence=evidence, provenance=provenance)


def load(ctx: StageContext, comparison: str = "main") -> list[Hypothesis]:
    return [Hypothesis.from_dict(row) for row in read_jsonl(ctx.input("propose", HYPOTHESES, comparison))]


def load_skipped(ctx: StageContext, comparison: str = "main") -> list[dict[str, Any]]:
    return list(read_jsonl(ctx.input("propose", SKIPPED, comparison)))
