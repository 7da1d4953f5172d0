"""Propose hypotheses per scope (all prompts pooled, and each group) from discovery prompts only.

Writes hypotheses.jsonl (proposal order is the online-FDR order) and skipped.jsonl (scopes
left out, with the reason), and the same for the null control when it is on.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.pairdata import PairData, load_pair, null_pair
from lmdelta.proposers import clusters, keywords
from lmdelta.records import Hypothesis
from lmdelta.rundir import read_jsonl, write_jsonl

VERSION = 1
log = logging.getLogger(__name__)
CONTROLS = {"main": "", "null": "null_"}


def identity(ctx, config: RunConfig) -> dict[str, Any]:
    found = {"labels": [config.label("a"), config.label("b")], "min_validation_prompts": config.validate.min_prompts}
    if config.propose.llm.enabled and config.llm.proposer.model:
        from lmdelta.llm.session import role_identity

        found["proposer"] = role_identity(config, "proposer")
    return found


def run(ctx, config: RunConfig):
    from lmdelta.pipeline import StageResult

    data = load_pair(ctx, config)
    session = _session(ctx, config)
    counts: dict[str, Any] = {}
    for name, pair in comparisons(data, config).items():
        hypotheses, skipped = propose_all(pair, config, session)
        write_jsonl(ctx.dir / f"{CONTROLS[name]}hypotheses.jsonl", (h.to_dict() for h in hypotheses))
        write_jsonl(ctx.dir / f"{CONTROLS[name]}skipped.jsonl", skipped)
        counts[name] = {"hypotheses": len(hypotheses), "skipped_scopes": len(skipped)}
    if session is not None:
        session.check()
    return StageResult(counts)


def _session(ctx, config: RunConfig):
    if not (config.propose.llm.enabled and config.llm.proposer.model):
        return None
    from lmdelta.llm.session import LLMSession

    return LLMSession(config, "propose", ctx.cache_dir, ctx.run_dir)


def comparisons_names(config: RunConfig) -> list[str]:
    return ["main", "null"] if config.controls.null else ["main"]


def comparisons(data: PairData, config: RunConfig) -> dict[str, PairData]:
    out = {"main": data}
    if config.controls.null:
        out["null"] = null_pair(data)
    return out


def scopes(data: PairData, config: RunConfig) -> list[str]:
    groups = data.group_names()
    setting = config.propose.scopes
    pooled = ["all"] if setting in ("all", "both") or len(groups) == 1 else []
    per_group = groups if setting in ("groups", "both") and len(groups) > 1 else []
    return pooled + per_group


def propose_all(data: PairData, config: RunConfig, session=None) -> tuple[list[Hypothesis], list[dict[str, Any]]]:
    discovery = data.rows("discovery")
    background = keywords.document_counts([data.samples[i].text for i in discovery], config.propose.keywords.max_ngram)
    found: list[Hypothesis] = []
    skipped = []
    usable: dict[str, np.ndarray] = {}
    for scope in scopes(data, config):
        reason = _skip_reason(data, scope, config)
        if reason:
            skipped.append({"group": scope, "reason": reason})
            log.info("propose: skipping group %s: %s", scope, reason)
            continue
        rows = usable[scope] = data.rows("discovery", scope)
        if config.propose.keywords.enabled:
            found += _keyword_hypotheses(data, scope, rows, background, len(discovery), config)
        if config.propose.clusters.enabled:
            found += _cluster_hypotheses(data, scope, rows, config)
    if session is not None and usable:
        from lmdelta.proposers import llm

        proposed, failed = llm.propose(data, usable, session.asker("proposer"), session.model("proposer"),
                                       config.propose.llm, session.temperature("proposer"), config.propose.seed)
        found += proposed
        skipped += failed
    numbered = [Hypothesis(**{**h.__dict__, "id": f"h{i:03d}", "order": i}) for i, h in enumerate(found, start=1)]
    return numbered, skipped


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


def load(ctx, control: str = "main") -> list[Hypothesis]:
    return [Hypothesis.from_dict(row) for row in read_jsonl(ctx.input_dir("propose") / f"{CONTROLS[control]}hypotheses.jsonl")]


def load_skipped(ctx, control: str = "main") -> list[dict[str, Any]]:
    return list(read_jsonl(ctx.input_dir("propose") / f"{CONTROLS[control]}skipped.jsonl"))
