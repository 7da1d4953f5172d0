"""The validation answers of a comparison, indexed by prompt, and their per-prompt differences.

d_p = mean score of b's answers to p − mean of a's. Where a prompt has unequal answer counts per
side, d_p is taken from a seeded balanced subsample, so that it stays symmetric under the null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmdelta.hashing import child_seed
from lmdelta.pairdata import PairData
from lmdelta.sources.corpus_checks import check_cluster_sides
from lmdelta.stats.ragged import Ragged
from lmdelta.validate.texts import holds_clusters

# Scores per block of hypotheses in balanced_differences (about 50 MB of temporaries).
_BLOCK_ELEMENTS = 1 << 20


@dataclass
class ValidationSet:
    """The validation answers of one comparison, indexed by prompt."""

    rows: np.ndarray  # sample rows of the pair data
    prompt_ids: list[str]  # validation prompts, in order
    prompt_of_row: np.ndarray  # index into prompt_ids, per row
    is_b: np.ndarray
    groups: np.ndarray  # group of each validation prompt
    aligned: bool = True  # some prompt has answers of both sides (else the unit is the text or the cluster)
    clustered: bool = False  # unaligned, and some unit holds several texts: the unit is the cluster
    unit: str = "prompt"  # aligned: what the paired sign-flip runs over, "prompt" or "cluster" (a corpus's clusters)

    @property
    def clusters(self) -> np.ndarray | None:
        """The unit of each row, when whole units (clusters) are the unaligned test's unit; else None."""
        return self.prompt_of_row if self.clustered else None

    @classmethod
    def build(cls, data: PairData) -> ValidationSet:
        rows = data.rows("validation")
        row_prompts, is_b = data.samples.prompt_ids(rows), data.samples.is_b(rows)
        prompt_ids = sorted(set(row_prompts))
        position = {pid: k for k, pid in enumerate(prompt_ids)}
        sides: dict[str, set[str]] = {}
        for pid, b in zip(row_prompts, is_b.tolist()):
            sides.setdefault(pid, set()).add("b" if b else "a")
        prompt_of_row = np.array([position[pid] for pid in row_prompts], dtype=int)
        aligned = any(len(s) == 2 for s in sides.values())
        unit = _paired_unit(data, prompt_ids, sides)
        return cls(
            rows=rows,
            prompt_ids=prompt_ids,
            prompt_of_row=prompt_of_row,
            is_b=is_b,
            groups=np.array([data.groups.get(pid, "all") for pid in prompt_ids]),
            aligned=aligned,
            clustered=holds_clusters(prompt_of_row, aligned),
            unit=unit,
        )

    def scope(self, group: str, inside: bool = True) -> np.ndarray:
        """Prompt mask for a group ("all": every prompt); inside=False gives the other groups."""
        if group == "all":
            return np.full(len(self.prompt_ids), inside)
        return (self.groups == group) if inside else (self.groups != group)


def _paired_unit(data: PairData, prompt_ids: list[str], sides: dict[str, set[str]]) -> str:
    """ "cluster" when the units are a corpus's clusters (Prompt.unit), else "prompt". The corpus loader
    refuses clusters that mix paired and one-sided; so does this, for pair data built another way."""
    if not any(pid in data.prompt_by_id and data.prompt_by_id[pid].unit == "cluster" for pid in prompt_ids):
        return "prompt"
    check_cluster_sides(sides, "The validation split")
    return "cluster"


def per_prompt(scores: np.ndarray, vs: ValidationSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, count_a, count_b) per prompt from row scores; NaN scores are left out, d NaN if a side is empty."""
    d, count_a, count_b = _per_prompt_many(np.asarray(scores, dtype=float)[None, :], vs)
    return d[0], count_a[0], count_b[0]


def balanced_differences(
    scores: np.ndarray | Sequence[np.ndarray], vs: ValidationSet, seeds: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt differences of H hypotheses at once, each prompt balanced by a seeded subsample.

    scores is (H, rows), or a list of H rows: a list is stacked a block of hypotheses at a time, so the
    whole (H, rows) table is never built (at 2,000,000 texts it would be gigabytes). In every prompt each
    side keeps k = min(k_a, k_b) of its finite scores, drawn without replacement by hypothesis h's own
    generator (`seeds[h]`), so a hypothesis's subsample does not depend on the others. A side with k
    scores keeps them all: with equal counts nothing is drawn and D[h] equals per_prompt(scores[h])[0] bit
    for bit. Why: d_p of a mean of 4 against a mean of 1 is not symmetric under the null, which the
    sign-flip needs.
    Returns D (H, P), NaN where a side is empty, and the finite scores left out per prompt (H, P).
    """
    n_rows = vs.prompt_of_row.size
    if isinstance(scores, np.ndarray):
        scores = scores.reshape(len(seeds), n_rows)
    step = max(1, _BLOCK_ELEMENTS // max(1, n_rows))  # hypotheses per block: bounded memory
    D = np.empty((len(seeds), len(vs.prompt_ids)))
    # Counts in int32, written only where a block left something out: np.zeros' pages stay untouched (and take no
    # memory) when nothing is subsampled, as in every corpus with one answer a side.
    dropped = np.zeros((len(seeds), len(vs.prompt_ids)), dtype=np.int32)
    for i in range(0, len(seeds), step):
        block = np.asarray(scores[i : i + step], dtype=float).reshape(-1, n_rows)
        D[i : i + step], left_out = _balanced_block(block, vs, seeds[i : i + step])
        if left_out.any():
            dropped[i : i + step] = left_out
    return D, dropped


def _balanced_block(scores: np.ndarray, vs: ValidationSet, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    n_hyp, n_prompts = scores.shape[0], len(vs.prompt_ids)
    keep = np.isfinite(scores)
    cell = vs.prompt_of_row * 2 + vs.is_b  # (prompt, side) of each row
    flat_cell = np.arange(n_hyp)[:, None] * 2 * n_prompts + cell
    counts = np.bincount(flat_cell[keep], minlength=n_hyp * 2 * n_prompts).reshape(n_hyp, n_prompts, 2)
    k = counts.min(axis=2)  # 0 where a side is empty: that prompt drops out of the test anyway
    over_full = (counts > k[:, :, None]) & (k[:, :, None] > 0)
    excess = over_full.reshape(n_hyp, 2 * n_prompts)[:, cell] & keep  # (H, rows): a row of a side with too many
    drawn = np.flatnonzero(excess.any(axis=1))
    if drawn.size:
        seeds_drawn = [seeds[h] for h in drawn]
        keep[drawn] &= ~_left_out(excess[drawn], flat_cell[drawn], k[drawn], vs, seeds_drawn)
    dropped = np.where(k > 0, counts.sum(axis=2) - 2 * k, 0)
    return _per_prompt_many(np.where(keep, scores, np.nan), vs)[0], dropped


def _left_out(
    candidates: np.ndarray, flat_cell: np.ndarray, k: np.ndarray, vs: ValidationSet, seeds: list[int]
) -> np.ndarray:
    """(h, rows) mask of the candidate scores not drawn: each over-full cell keeps the k rows with the smallest keys."""
    keys = np.stack([np.random.default_rng(seed).random(candidates.shape[1]) for seed in seeds])
    hyp, rows = np.nonzero(candidates)
    group = flat_cell[hyp, rows]
    order = np.lexsort((keys[hyp, rows], group))
    sorted_group = group[order]
    rank = np.arange(order.size) - np.searchsorted(sorted_group, sorted_group, side="left")
    out = np.zeros_like(candidates)
    too_late = rank >= k[hyp[order], vs.prompt_of_row[rows[order]]]
    out[hyp[order][too_late], rows[order][too_late]] = True
    return out


def _per_prompt_many(scores: np.ndarray, vs: ValidationSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, count_a, count_b), each (H, P), from (H, rows) scores; each row summed in row order."""
    n_hyp, n_prompts = scores.shape[0], len(vs.prompt_ids)
    valid = np.isfinite(scores)
    bins = np.arange(n_hyp)[:, None] * n_prompts + vs.prompt_of_row
    sums, counts = [], []
    for side in (~vs.is_b, vs.is_b):
        keep = valid & side
        sums.append(np.bincount(bins[keep], weights=scores[keep], minlength=n_hyp * n_prompts).reshape(n_hyp, -1))
        counts.append(np.bincount(bins[keep], minlength=n_hyp * n_prompts).reshape(n_hyp, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = sums[1] / counts[1] - sums[0] / counts[0]
    d[(counts[0] == 0) | (counts[1] == 0)] = np.nan
    return d, counts[0], counts[1]


def subsample_seed(seed: int, key: Any) -> int:
    """The balancing subsample's seed: validate.seed and the hypothesis's content key
    (Hypothesis.content_key), so a hypothesis draws the same subsample whichever other hypotheses
    were proposed and tested, and whatever id or place in the proposal order it got."""
    return child_seed(seed, "balanced subsample", key)


def score_lists(scores: np.ndarray, vs: ValidationSet, prompts: np.ndarray | list[int]) -> tuple[Ragged, Ragged]:
    """Each listed prompt's finite scores, per side, in row order: one sort, not a scan per prompt; stored flat
    (`Ragged`), not as a list of arrays."""
    prompts = np.asarray(prompts, dtype=int)
    slot = np.full(max(int(vs.prompt_of_row.max(initial=-1)), int(prompts.max(initial=-1))) + 1, -1)
    slot[prompts] = np.arange(prompts.size)
    slot_of_row = slot[vs.prompt_of_row]
    rows = np.flatnonzero(np.isfinite(scores) & (slot_of_row >= 0))
    return (
        _split_by_slot(scores, rows[~vs.is_b[rows]], slot_of_row, prompts.size),
        _split_by_slot(scores, rows[vs.is_b[rows]], slot_of_row, prompts.size),
    )


def _split_by_slot(scores: np.ndarray, rows: np.ndarray, slot_of_row: np.ndarray, n_slots: int) -> Ragged:
    slots = slot_of_row[rows]  # rows ascend; a stable sort keeps that order within a slot
    order = np.argsort(slots, kind="stable")
    return Ragged(scores[rows[order]], np.bincount(slots, minlength=n_slots))


def pair_differences(scores: np.ndarray, vs: ValidationSet, index: np.ndarray) -> list[np.ndarray]:
    """Per prompt with two answer pairs or more, the differences b_i - a_i of its pairs (answer i of each side,
    both scores finite): what the within-prompt variance is estimated from (validate.sequential.within_share).
    `index` is each text's answer number."""
    keep = np.flatnonzero(np.isfinite(scores))
    if keep.size == 0:
        return []
    table = np.full((2, len(vs.prompt_ids), int(index[keep].max()) + 1), np.nan)
    table[vs.is_b[keep].astype(int), vs.prompt_of_row[keep], index[keep]] = scores[keep]
    diff = table[1] - table[0]
    finite = np.isfinite(diff)
    return [row[ok] for row, ok in zip(diff, finite) if ok.sum() >= 2]
