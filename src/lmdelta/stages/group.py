"""Decide where to look for differences: prompt groups from the bank, size-balanced k-means
over prompt embeddings, or one group; optionally also joint a+b response clusters.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import numpy as np

from lmdelta.clustering import balanced_kmeans
from lmdelta.config import RunConfig
from lmdelta.errors import ConfigError
from lmdelta.records import Prompt
from lmdelta.rundir import GROUP_SIZES, GROUPS, RESPONSE_CLUSTERS, atomic_write_text, read_jsonl, write_jsonl
from lmdelta.stages import embed, generate, prompts
from lmdelta.stages.contract import Read, StageContext, StageResult

VERSION = 1
READS: tuple[str | Read, ...] = ()
MINIBATCH_FROM = 50_000  # answers from which response clusters come from mini-batch k-means
LABEL_BLOCK = 65_536  # answers labelled at once (a block × k distance matrix)
log = logging.getLogger(__name__)


def identity(ctx: StageContext, config: RunConfig) -> dict[str, Any]:
    if config.group.by == "kmeans" and not config.embed.embed_prompts:
        raise ConfigError(
            "group.by=kmeans clusters prompt embeddings, but embed.embed_prompts is false.",
            "Set embed.embed_prompts=true, or group.by=bank.",
        )
    return {}


def run(ctx: StageContext, config: RunConfig) -> StageResult:
    bank = prompts.load(ctx)
    labels = _prompt_groups(ctx, config, bank)
    write_jsonl(ctx.output(GROUPS), ({"prompt_id": p.id, "group": g} for p, g in zip(bank, labels)))
    summary = _summary(bank, labels)
    counts: dict[str, Any] = {"groups": len(summary)}
    if config.group.response_clusters:
        counts["response_clusters"] = _response_clusters(ctx, config, config.group.response_clusters)
    atomic_write_text(ctx.output(GROUP_SIZES), json.dumps(summary, indent=2) + "\n")
    return StageResult(counts)


def _prompt_groups(ctx: StageContext, config: RunConfig, bank: list[Prompt]) -> list[str]:
    section = config.group
    if section.by == "bank":
        if all(p.group is None for p in bank):
            log.warning("group: the prompt bank has no groups; using one group 'all' (try group.by=kmeans)")
        return [p.group or "all" for p in bank]
    if section.by == "none":
        return ["all"] * len(bank)
    if section.n_groups > len(bank):
        raise ConfigError(
            f"group.n_groups={section.n_groups} exceeds the number of prompts ({len(bank)}).",
            f"Set group.n_groups to at most {len(bank)}.",
        )
    labels = balanced_kmeans(embed.load_prompts(ctx), section.n_groups, seed=section.resolved_seed)
    width = len(str(section.n_groups))
    return [f"cluster-{label + 1:0{width}d}" for label in labels]


def _summary(bank: list[Prompt], labels: list[str]) -> dict[str, dict[str, int]]:
    summary: dict[str, dict[str, int]] = {}
    for prompt, group in zip(bank, labels):
        entry = summary.setdefault(group, {"prompts": 0, "discovery": 0, "validation": 0, "confirmation": 0})
        entry["prompts"] += 1
        entry[prompt.split or "validation"] += 1
    return dict(sorted(summary.items()))


def _response_clusters(ctx: StageContext, config: RunConfig, n_clusters: int) -> dict[str, dict[str, int]]:
    samples = generate.load(ctx)
    k = min(n_clusters, len(samples))
    labels = response_labels(embed.load_samples(ctx), k, config.group.resolved_seed)
    sides, ids = samples.sides(), samples.ids()
    write_jsonl(ctx.output(RESPONSE_CLUSTERS), ({"sample_id": i, "cluster": int(c)} for i, c in zip(ids, labels)))
    by_side = Counter(zip(labels.tolist(), sides))
    return {str(c): {"a": by_side[(c, "a")], "b": by_side[(c, "b")]} for c in range(k)}


def response_labels(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means labels of the answers' vectors: exact Lloyd (best of 5 starts) up to MINIBATCH_FROM answers, then
    mini-batch k-means (Sculley 2010: centres move on seeded batches, 3 starts) and labels assigned a
    block at a time, so 2,000,000 answers and 1,000 clusters take minutes and one block of distances."""
    from sklearn.cluster import KMeans, MiniBatchKMeans  # heavy: only when responses are clustered

    if len(vectors) < MINIBATCH_FROM:
        return np.asarray(KMeans(n_clusters=k, n_init=5, random_state=seed).fit(vectors).labels_)
    model = MiniBatchKMeans(
        n_clusters=k, batch_size=max(4096, 4 * k), n_init=3, random_state=seed, compute_labels=False
    ).fit(vectors)
    blocks = range(0, len(vectors), LABEL_BLOCK)
    return np.concatenate([model.predict(np.asarray(vectors[i : i + LABEL_BLOCK])) for i in blocks])


def load(ctx: StageContext) -> dict[str, str]:
    return {row["prompt_id"]: row["group"] for row in read_jsonl(ctx.input("group", GROUPS))}


def load_response_clusters(ctx: StageContext) -> dict[str, int]:
    return {row["sample_id"]: row["cluster"] for row in read_jsonl(ctx.input("group", RESPONSE_CLUSTERS))}
