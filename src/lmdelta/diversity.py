"""Label diversification and explaining away: what keeps a search from proposing one difference many times.

Two hypotheses of the same direction are near-duplicates when their claims say the same (cosine
similarity of the side-free claims' embeddings at least `propose.dedup.similarity`) or when they
fire on the same discovery texts (Jaccard overlap of the two firing sets at least
`propose.dedup.overlap`; a symmetric measure, so a narrow claim inside a broad one is no duplicate).
A near-duplicate of a hypothesis kept earlier in proposal order is dropped,
or, when both are keyword hypotheses, merged into it (its keywords join the kept one's). Only
hypotheses of the same scope are compared: a group's hypothesis that repeats the pooled scope's
claim is a claim about that group, often stronger there (HC3: ChatGPT hedges in 83 % of medicine
answers against 27 %, a difference the pooled test did not validate at p = 0.05), so it is kept.

All of this reads discovery texts and the hypotheses' own wording only, never a validation prompt:
which hypotheses reach validation stays independent of the validation data, so dropping or merging
costs no validity (docs/search.md).

"Fires on" is judged by the hypothesis's own offline judge: a presence score of 1 (a keyword, a
property that is there or not), or for an amount (length, a cluster's similarity) a score in the top
fifth of the discovery texts'. Text properties are compared by their claims only (see `_by_texts`: a
property names what it measures, and two that fire on the same answers, bullet lists and several
lines, are two findings); so are LLM-judged hypotheses, which would need a paid call per text. An
amount property's top fifth says little about *what* a text does (long answers are long for many
reasons), so amounts, like LLM-judged hypotheses, explain nothing away; a presence property does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lmdelta import judges
from lmdelta.config import DedupConfig
from lmdelta.judges.inputs import JudgeInput
from lmdelta.records import Hypothesis

FIRE_QUANTILE = 0.8  # an amount fires on the discovery texts that score in its top fifth
OFFLINE_JUDGES = ("keyword", "property", "embedding")
Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Claimed:
    """A hypothesis with what deduplication compares: its claim's unit vector (None without an embedder)
    and the discovery texts it fires on (None for an LLM judge)."""

    hypothesis: Hypothesis
    vector: np.ndarray | None
    fires: np.ndarray | None


@dataclass(frozen=True)
class Duplicate:
    """A hypothesis left out as a near-duplicate, and of which kept one."""

    hypothesis: Hypothesis
    kept: Hypothesis
    action: str  # "merged" (its keywords joined the kept one's) or "dropped"
    similarity: float | None
    overlap: float | None
    kept_index: int = -1  # the kept one's place among all kept hypotheses, in proposal order

    def to_dict(self) -> dict[str, Any]:
        return {
            "duplicate_of": self.kept.id,
            "kept_description": self.kept.description,
            "action": self.action,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "overlap": None if self.overlap is None else round(self.overlap, 4),
            "hypothesis": self.hypothesis.to_dict(),
        }


def claim(hypothesis: Hypothesis) -> str:
    """The hypothesis stated without either side (its `property`), else its description."""
    return hypothesis.property if hypothesis.property is not None else hypothesis.description


def fires(hypothesis: Hypothesis, texts: list[str], vectors: np.ndarray) -> np.ndarray | None:
    """Which texts the hypothesis fires on, by its own offline judge (None for an LLM judge)."""
    return firing_sets([hypothesis], texts, vectors)[0]


def firing_sets(hypotheses: list[Hypothesis], texts: list[str], vectors: np.ndarray) -> list[np.ndarray | None]:
    """`fires` for many hypotheses: each offline judge is called once with all of its hypotheses, so the
    texts are read (tokenised, measured) once per judge, not once per hypothesis."""
    out: list[np.ndarray | None] = [None] * len(hypotheses)
    for name in OFFLINE_JUDGES:
        members = [i for i, h in enumerate(hypotheses) if h.judge == name]
        if not members:
            continue
        if not texts:
            for i in members:
                out[i] = np.zeros(0, dtype=bool)
            continue
        scored = judges.judge_named(name)([hypotheses[i] for i in members], JudgeInput(texts, vectors))
        for i, scores in zip(members, scored):
            out[i] = _firing(np.asarray(scores, dtype=float))
    return out


def _firing(scores: np.ndarray) -> np.ndarray:
    """A presence's 1s, or an amount's top fifth (above its smallest value; NaN never fires)."""
    finite = np.isfinite(scores)
    if not finite.any():
        return np.zeros(len(scores), dtype=bool)
    values = scores[finite]
    if np.all((values == 0.0) | (values == 1.0)):
        return finite & (np.nan_to_num(scores) == 1.0)
    cut = float(np.quantile(values, FIRE_QUANTILE))
    return finite & (np.nan_to_num(scores, nan=-np.inf) >= cut) & (np.nan_to_num(scores) > values.min())


def overlap(one: np.ndarray | None, other: np.ndarray | None) -> float | None:
    """The Jaccard overlap of two firing sets (None when either is unknown, or both are empty)."""
    if one is None or other is None:
        return None
    union = int(np.sum(one | other))
    return None if union == 0 else float(np.sum(one & other)) / union


def comparable(new: Hypothesis, old: Hypothesis) -> bool:
    """Same direction and the same scope (see the module docstring)."""
    return new.direction == old.direction and new.group == old.group


def claimed(hypotheses: list[Hypothesis], texts: list[str], vectors: np.ndarray, embed: Embed | None) -> list[Claimed]:
    """Each hypothesis with its claim vector and its firing set over the discovery texts."""
    claim_vectors: list[np.ndarray | None] = [None] * len(hypotheses)
    if embed is not None and hypotheses:
        found = np.asarray(embed([claim(h) for h in hypotheses]), dtype=float)
        norms = np.linalg.norm(found, axis=1, keepdims=True)
        claim_vectors = list(np.divide(found, norms, out=np.zeros_like(found), where=norms > 0))
    compared = [i for i, h in enumerate(hypotheses) if not _amount(h)]
    sets = firing_sets([hypotheses[i] for i in compared], texts, vectors)
    firing: list[np.ndarray | None] = [None] * len(hypotheses)
    for i, found_set in zip(compared, sets):
        firing[i] = found_set
    return [Claimed(h, v, f) for h, v, f in zip(hypotheses, claim_vectors, firing)]


def refired(items: list[Claimed], texts: list[str], vectors: np.ndarray) -> list[Claimed]:
    """The same hypotheses and claim vectors with their firing sets over other discovery texts (a grown set)."""
    kept = [i for i, item in enumerate(items) if item.fires is not None]
    sets = firing_sets([items[i].hypothesis for i in kept], texts, vectors)
    out = list(items)
    for i, found in zip(kept, sets):
        out[i] = Claimed(items[i].hypothesis, items[i].vector, found)
    return out


def _amount(hypothesis: Hypothesis) -> bool:
    """A property judged by how much of it a text has, not whether it is there (see the module docstring)."""
    return hypothesis.judge == "property" and not judges.PRESENCE_JUDGES["property"](hypothesis)


def deduplicate(
    new: list[Claimed], kept: list[Claimed], section: DedupConfig
) -> tuple[list[Claimed], list[Claimed], list[Duplicate]]:
    """New hypotheses (in proposal order) against the kept ones and each other.

    Returns the new ones kept, the earlier kept list with merges applied (same length and order), and a
    record per hypothesis left out. Off (`enabled: false`): everything is kept except exact repeats of a
    kept hypothesis's content, which could only be tested twice.
    """
    earlier = list(kept)
    fresh: list[Claimed] = []
    left_out: list[Duplicate] = []
    for item in new:
        pool = earlier + fresh
        match = _match(item, pool, section)
        if match is None:
            fresh.append(item)
            continue
        where, similarity, shared = match
        target = pool[where]
        repeat = target.hypothesis.content_key() == item.hypothesis.content_key()
        merged = _merge(target, item, section.max_keywords) if section.enabled and not repeat else None
        action = "merged" if merged is not None else "dropped"
        left_out.append(Duplicate(item.hypothesis, target.hypothesis, action, similarity, shared, where))
        if merged is not None:
            if where < len(earlier):
                earlier[where] = merged
            else:
                fresh[where - len(earlier)] = merged
    return fresh, earlier, left_out


def _match(item: Claimed, pool: list[Claimed], section: DedupConfig) -> tuple[int, float | None, float | None] | None:
    """The first kept hypothesis the item repeats, with the similarity and overlap that made it one."""
    key = item.hypothesis.content_key()
    for where, other in enumerate(pool):
        if other.hypothesis.content_key() == key:
            return where, 1.0, 1.0
        if not section.enabled:
            continue
        found = near_duplicates(item, other, section)
        if found is not None:
            return where, *found
    return None


def near_duplicates(one: Claimed, other: Claimed, section: DedupConfig) -> tuple[float | None, float | None] | None:
    """(claim similarity, firing overlap) when the two are near-duplicates by the module docstring's rules, else
    None; either number is None where it was not measured."""
    if not comparable(one.hypothesis, other.hypothesis):
        return None
    similarity = None
    if one.vector is not None and other.vector is not None:
        similarity = float(one.vector @ other.vector)
    shared = overlap(one.fires, other.fires) if _by_texts(one.hypothesis, other.hypothesis) else None
    if (similarity is not None and similarity >= section.similarity) or (
        shared is not None and shared >= section.overlap
    ):
        return similarity, shared
    return None


def _by_texts(one: Hypothesis, other: Hypothesis) -> bool:
    """Whether two hypotheses may be called duplicates for firing on the same texts: not when either is a text
    property. A property names what it measures (bullet lists, several lines, hedges); two properties that fire
    on much the same answers are two findings about them, and a keyword that fires where a property does
    ("may" where hedges are) does not say what the property says."""
    return one.judge != "property" and other.judge != "property"


def _merge(target: Claimed, item: Claimed, max_keywords: int) -> Claimed | None:
    """The kept keyword hypothesis with the new one's keywords added (None: not two keyword hypotheses,
    or nothing to add)."""
    kept, new = target.hypothesis, item.hypothesis
    if kept.judge != "keyword" or new.judge != "keyword" or kept.group != new.group:
        return None
    words = tuple(dict.fromkeys(kept.keywords + new.keywords))[:max_keywords]
    if words == kept.keywords:
        return target
    fires = None if target.fires is None or item.fires is None else target.fires | item.fires
    merged = replace(kept, keywords=words, description=_with_keywords(kept, words), property=_claim_with(kept, words))
    return Claimed(merged, target.vector, fires)


def _quoted(words: tuple[str, ...]) -> str:
    quoted = [f"“{w}”" for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _with_keywords(hypothesis: Hypothesis, words: tuple[str, ...]) -> str:
    """The description with its quoted keyword (or keywords, after an earlier merge) replaced by the merged list."""
    return hypothesis.description.replace(_quoted(hypothesis.keywords), _quoted(words), 1)


def _claim_with(hypothesis: Hypothesis, words: tuple[str, ...]) -> str | None:
    if hypothesis.property is None:
        return None
    return hypothesis.property.replace(_quoted(hypothesis.keywords), _quoted(words), 1)


def explained(items: list[Claimed], n: int) -> np.ndarray:
    """The discovery texts some of these hypotheses fire on."""
    out = np.zeros(n, dtype=bool)
    for item in items:
        if item.fires is not None and len(item.fires) == n:
            out |= item.fires
    return out
