"""The scorecard of a ground-truth run folder: its validated findings matched to the injected quirks
(keywords, embeddings or the assistant LLM), each quirk's rate in both models' answers, and the
null experiment's findings."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmdelta.backends.embedded import cache_root
from lmdelta.backends.factory import build_embedder, embedder_identity
from lmdelta.config import RunConfig
from lmdelta.groundtruth.llmmatch import DECISION, agreement, llm_similarity
from lmdelta.groundtruth.quirks import Quirk, quirk_rate
from lmdelta.groundtruth.score import MATCHERS, embedding_similarity, scorecard, similarity
from lmdelta.rundir import SAMPLES, RunDir, read_jsonl


def score_run(config: RunConfig, run_dir: RunDir, null_dir: RunDir, quirks: list[Quirk]) -> dict[str, Any]:
    """The scorecard (score.scorecard) of RUN_DIR, with each quirk's kind and whether a null experiment ran."""
    section = config.groundtruth
    validated = validated_findings(run_dir)
    null = validated_findings(null_dir) if section.null else []
    rates = _rates(run_dir, quirks)
    if section.match == "llm":
        other = similarity(quirks, validated, _embedder(config))
        sim = llm_similarity(config, run_dir, quirks, validated)
        agree = agreement(
            sim, other, section.threshold, quirk_names=[q.name for q in quirks], row_ids=[r["id"] for r in validated]
        )
        card = scorecard(quirks, validated, sim, DECISION, null, rates, agreement=agree, matcher=MATCHERS["llm"])
    else:
        sim = _similarity(config, quirks, validated)
        card = scorecard(quirks, validated, sim, section.threshold, null, rates, matcher=MATCHERS[section.match])
    card["null_experiment"] = section.null
    for entry, quirk in zip(card["quirks"], quirks):
        entry["kind"] = quirk.kind
    return card


def validated_findings(run_dir: RunDir) -> list[dict[str, Any]]:
    """The run's validated findings, best (smallest p-value) first."""
    rows = [r for r in read_jsonl(run_dir.findings_path()) if r.get("validated")]
    return sorted(rows, key=lambda r: (r["p_value"], r["order"]))


def _rates(run_dir: RunDir, quirks: list[Quirk]) -> dict[str, dict[str, float]]:
    """Per quirk, the share of each side's answers that show it (by its keywords)."""
    samples = list(read_jsonl(run_dir.stage_file("generate", SAMPLES)))
    texts = {side: [s["text"] for s in samples if s["side"] == side] for side in ("a", "b")}
    return {q.name: {side: round(quirk_rate(q, texts[side]), 3) for side in ("a", "b")} for q in quirks}


def _similarity(config: RunConfig, quirks: list[Quirk], validated: list[dict[str, Any]]) -> np.ndarray:
    match = config.groundtruth.match
    embed = _embedder(config) if match in ("auto", "embedding") else None
    if match == "embedding":
        return embedding_similarity(quirks, validated, embed)
    return similarity(quirks, validated, embed)


def _embedder(config: RunConfig):
    """Texts → vectors with the run's embedder (the embedded MiniLM by default)."""
    cache = cache_root(config.embed.cache_dir)
    embedder = build_embedder(config.embed, embedder_identity(config.embed, cache), cache)
    return embedder.embed
