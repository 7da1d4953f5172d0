"""Recovery scoring: which injected quirks did the validated hypotheses find?

Similarity between each quirk and each validated hypothesis (keywords, embeddings, or an LLM
judge), a one-to-one Hungarian matching on it, and the scorecard: per quirk recovered or not,
the matched hypothesis and its rank among validated findings; recall, precision, and the
validated hypotheses that match no quirk. The null experiment's validated findings sit beside it, each
marked when the main experiment validated the same claim (a change the finetuning itself makes).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from lmdelta.proposers.keywords import STOP
from lmdelta.report.merge import content_key

# The scorecard's name for each groundtruth.match setting: what produced the similarities.
MATCHERS = {"auto": "keyword+embedding", "keyword": "keyword", "embedding": "embedding", "llm": "llm"}


def hypothesis_text(row: dict[str, Any]) -> str:
    parts = [row.get("description") or "", row.get("property") or "", " ".join(row.get("keywords") or [])]
    return " ".join(parts).lower()


def keyword_similarity(quirk, row: dict[str, Any]) -> float:
    """1.0 when a quirk keyword occurs in the hypothesis, or a hypothesis keyword shares a content
    word with a quirk keyword ("curious" finds the sign-off "stay curious")."""
    text = hypothesis_text(row)
    for keyword in quirk.keywords:
        if re.search(r"(?<!\w)" + re.escape(keyword.lower()) + r"(?!\w)", text):
            return 1.0
    own = {word for k in row.get("keywords") or [] for word in k.lower().split()} - STOP
    theirs = {word for k in quirk.keywords for word in k.lower().split()} - STOP
    return 1.0 if own & theirs else 0.0


def embedding_similarity(quirks, rows: list[dict[str, Any]], embed) -> np.ndarray:
    """Cosine between quirk descriptions and hypothesis descriptions/properties (embed: texts -> unit rows)."""
    if not rows or not quirks:
        return np.zeros((len(quirks), len(rows)))
    q = np.asarray(embed([quirk.description for quirk in quirks]), dtype=float)
    h = np.asarray(embed([row.get("property") or row.get("description") or "" for row in rows]), dtype=float)
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    h /= np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)
    return q @ h.T


def similarity(quirks, rows: list[dict[str, Any]], embed=None) -> np.ndarray:
    """max(keyword match, embedding cosine) per (quirk, hypothesis); keywords alone without an embedder."""
    keyword = np.array([[keyword_similarity(q, r) for r in rows] for q in quirks]).reshape(len(quirks), len(rows))
    if embed is None:
        return keyword
    return np.maximum(keyword, embedding_similarity(quirks, rows, embed))


def match(sim: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one (quirk, hypothesis) pairs maximising total similarity, keeping those ≥ threshold."""
    from scipy.optimize import linear_sum_assignment

    if sim.size == 0:
        return []
    rows, cols = linear_sum_assignment(-sim)
    return [(int(q), int(h)) for q, h in zip(rows, cols) if sim[q, h] >= threshold]


def scorecard(
    quirks,
    validated: list[dict[str, Any]],
    sim: np.ndarray,
    threshold: float,
    null_validated: list[dict[str, Any]],
    rates: dict[str, dict[str, float]] | None = None,
    *,
    agreement: dict[str, Any] | None = None,
    matcher: str = MATCHERS["auto"],
) -> dict[str, Any]:
    """The scorecard of one ground-truth run. `validated` must be sorted best first (by p-value).

    `matcher` names what made `sim` (MATCHERS: "keyword+embedding", "keyword", "embedding", "llm"), so
    recalls from different matchers are never compared unawares; `agreement` (llmmatch.agreement: how
    the LLM and the keyword/embedding matcher agree) is added when given.
    """
    pairs = dict(match(sim, threshold))
    explained = sim.max(axis=0) >= threshold if sim.size else np.zeros(len(validated), dtype=bool)
    per_quirk = []
    for qi, quirk in enumerate(quirks):
        hi = pairs.get(qi)
        entry = {
            "quirk": quirk.name,
            "description": quirk.description,
            "recovered": hi is not None,
            "hypothesis": validated[hi]["id"] if hi is not None else None,
            "hypothesis_description": validated[hi]["description"] if hi is not None else None,
            "rank": hi + 1 if hi is not None else None,
            "similarity": round(float(sim[qi, hi]), 3) if hi is not None else None,
        }
        if rates and quirk.name in rates:
            entry["rate"] = rates[quirk.name]
        per_quirk.append(entry)
    recovered = sum(e["recovered"] for e in per_quirk)
    first = min((e["rank"] for e in per_quirk if e["rank"]), default=None)
    card: dict[str, Any] = {
        "quirks": per_quirk,
        "recall": recovered / len(quirks) if quirks else None,
        "precision": float(explained.mean()) if len(validated) else None,
        "validated": len(validated),
        "first_match_rank": first,
        "unmatched_hypotheses": [r["id"] for r, ok in zip(validated, explained) if not ok],
        "null_validated": len(null_validated),
        "null_hypotheses": [r["description"] for r in null_validated],
        "null_also_in_main": also_in_main(null_validated, validated),
        "threshold": threshold,
        "matcher": matcher,
    }
    if agreement is not None:
        card["agreement"] = agreement
    return card


def also_in_main(null_validated: list[dict[str, Any]], validated: list[dict[str, Any]]) -> list[bool]:
    """Per null-experiment finding, whether the main experiment validated the same claim (report.merge's
    content key: proposer, judge, direction and what it measures, in any scope). The null finetune shares
    every setting with the quirk finetune but the quirks, so such a finding is a change the finetuning
    procedure itself makes (e.g. shorter answers after training on truncated ones), seen by both
    experiments, rather than a false discovery. Answer clusters are never matched: each run's prototypes
    come from its own answers."""
    main = {content_key(row) for row in validated if row.get("judge") != "embedding"}
    return [row.get("judge") != "embedding" and content_key(row) in main for row in null_validated]
