"""Test hypotheses on validation prompts: judge scores → per-prompt differences → tests and effects.

The unit is the prompt: d_p = mean score of b's answers to p − mean of a's. The test is the
paired sign-flip randomization test, run for all hypotheses at once. Where a prompt has unequal
answer counts per side (an unscorable text, an uneven corpus), its d_p is taken from a seeded
balanced subsample, so that it stays symmetric under the null (STATISTICS.md §2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lmdelta import judges
from lmdelta.config import ValidateConfig
from lmdelta.hashing import child_seed
from lmdelta.baseline import bow_auc
from lmdelta.pairdata import PairData
from lmdelta.records import Example, Finding, Hypothesis
from lmdelta.sources.corpus_checks import check_cluster_sides
from lmdelta.stats import effects, tests
from lmdelta.validation_texts import (ASSUMPTION, CLUSTER_ASSUMPTION, PAIRED_CLUSTER_ASSUMPTION, PROMPT_ASSUMPTION,
                                      clustering_warning, holds_clusters, text_effects, text_test)


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
        prompt_ids = sorted({data.samples[i].prompt_id for i in rows})
        position = {pid: k for k, pid in enumerate(prompt_ids)}
        sides: dict[str, set[str]] = {}
        for i in rows:
            sides.setdefault(data.samples[i].prompt_id, set()).add(data.samples[i].side)
        prompt_of_row = np.array([position[data.samples[i].prompt_id] for i in rows], dtype=int)
        aligned = any(len(s) == 2 for s in sides.values())
        unit = _paired_unit(data, prompt_ids, sides)
        return cls(rows=rows, prompt_ids=prompt_ids, prompt_of_row=prompt_of_row,
                   is_b=np.array([data.samples[i].side == "b" for i in rows], dtype=bool),
                   groups=np.array([data.groups.get(pid, "all") for pid in prompt_ids]),
                   aligned=aligned, clustered=holds_clusters(prompt_of_row, aligned), unit=unit)

    def scope(self, group: str, inside: bool = True) -> np.ndarray:
        """Prompt mask for a group ("all": every prompt); inside=False gives the other groups."""
        if group == "all":
            return np.full(len(self.prompt_ids), inside)
        return (self.groups == group) if inside else (self.groups != group)


def _paired_unit(data: PairData, prompt_ids: list[str], sides: dict[str, set[str]]) -> str:
    """"cluster" when the units are a corpus's clusters (Prompt.unit), else "prompt". The corpus loader
    refuses clusters that mix paired and one-sided; so does this, for pair data built another way."""
    if not any(pid in data.prompt_by_id and data.prompt_by_id[pid].unit == "cluster" for pid in prompt_ids):
        return "prompt"
    check_cluster_sides(sides, "The validation split")
    return "cluster"


def per_prompt(scores: np.ndarray, vs: ValidationSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, count_a, count_b) per prompt from row scores; NaN scores are left out, d NaN if a side is empty."""
    d, count_a, count_b = _per_prompt_many(np.asarray(scores, dtype=float)[None, :], vs)
    return d[0], count_a[0], count_b[0]


def balanced_differences(scores: np.ndarray, vs: ValidationSet, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt differences of H hypotheses at once, each prompt balanced by a seeded subsample.

    scores is (H, rows). In every prompt each side keeps k = min(k_a, k_b) of its finite scores,
    drawn without replacement by hypothesis h's own generator (`seeds[h]`), so a hypothesis's
    subsample does not depend on the others. A side with k scores keeps them all: with equal
    counts nothing is drawn and D[h] equals per_prompt(scores[h])[0] bit for bit. Why: d_p of a
    mean of 4 against a mean of 1 is not symmetric under the null, which the sign-flip needs.
    Returns D (H, P), NaN where a side is empty, and the finite scores left out per prompt (H, P).
    """
    scores = np.asarray(scores, dtype=float).reshape(len(seeds), vs.prompt_of_row.size)
    step = max(1, _BLOCK_ELEMENTS // max(1, scores.shape[1]))  # hypotheses per block: bounded memory
    parts = [_balanced_block(scores[i:i + step], vs, seeds[i:i + step]) for i in range(0, len(seeds), step)]
    if not parts:
        return np.empty((0, len(vs.prompt_ids))), np.zeros((0, len(vs.prompt_ids)), dtype=int)
    return np.concatenate([d for d, _ in parts]), np.concatenate([left for _, left in parts])


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


def _left_out(candidates: np.ndarray, flat_cell: np.ndarray, k: np.ndarray, vs: ValidationSet,
              seeds: list[int]) -> np.ndarray:
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


def subsample_seed(seed: int | None, key: Any) -> int:
    """The balancing subsample's seed: validate.seed and the hypothesis's content key
    (Hypothesis.content_key), so a hypothesis draws the same subsample whichever other hypotheses
    were proposed and tested, and whatever id or place in the proposal order it got."""
    return child_seed(seed, "balanced subsample", key)


def resamples_for(config: ValidateConfig, m: int, q: float) -> int:
    """Enough draws that the smallest Monte Carlo p-value, 1/(R+1), sits well under BH's first step q/m."""
    return max(config.n_resamples, int(math.ceil(10 * max(m, 1) / q)))


def validate_all(data: PairData, hypotheses: list[Hypothesis], config: ValidateConfig, q: float,
                 llm_ask=None) -> list[Finding]:
    """Every number STATISTICS.md asks for, per hypothesis (except the FDR decisions)."""
    vs = ValidationSet.build(data)
    texts = [data.samples[i].text for i in vs.rows]
    vectors = data.vectors[vs.rows] if len(vs.rows) else data.vectors[:0]
    scores = judges.score_hypotheses(hypotheses, vs, texts, vectors, config.judge, llm_ask,
                                     judged=judged_prompts(hypotheses, vs, config))
    n_resamples = resamples_for(config, len(hypotheses), q)
    paired = _paired(scores, hypotheses, vs, config) if vs.aligned else None
    primary = _tests(scores, paired, [vs.scope(h.group) for h in hypotheses], hypotheses, vs, config, n_resamples)
    warning = None if vs.aligned or vs.clustered else clustering_warning(vectors, vs.is_b, config.seed)
    results = [_describe(h, s, test, vs, data, config, warning) for h, s, test in zip(hypotheses, scores, primary)]
    if config.generalization:
        outside = [vs.scope(h.group, inside=False) if h.group != "all" else None for h in hypotheses]
        results = _add_generalization(results, scores, paired, outside, hypotheses, vs, config, n_resamples)
    return results


def judged_prompts(hypotheses: list[Hypothesis], vs: ValidationSet, config: ValidateConfig) -> list[np.ndarray]:
    """The prompts whose texts an LLM judge scores, per hypothesis: its scope and, for a group's
    hypothesis under validate.generalization, a seeded sample of other groups' prompts for its
    generalisation test, no more than its group has, so those calls at most double its cost.
    (Offline judges score every text: they are free.)"""
    samples: dict[str, np.ndarray] = {}
    out = []
    for h in hypotheses:
        inside = vs.scope(h.group)
        if config.generalization and h.group != "all":
            if h.group not in samples:
                samples[h.group] = generalization_sample(vs, h.group, config.seed)
            inside = inside | samples[h.group]
        out.append(inside)
    return out


def generalization_sample(vs: ValidationSet, group: str, seed: int | None) -> np.ndarray:
    """Prompt mask of min(other groups' prompts, the group's prompts) prompts of other groups, drawn
    without replacement by a generator seeded from validate.seed and the group: every hypothesis of
    a group is generalised to the same prompts, whatever else was tested."""
    outside = np.flatnonzero(vs.scope(group, inside=False))
    size = min(outside.size, int(vs.scope(group).sum()))
    rng = np.random.default_rng(child_seed(seed, "generalization", group))
    mask = np.zeros(len(vs.prompt_ids), dtype=bool)
    mask[rng.choice(outside, size=size, replace=False)] = True
    return mask


def _paired(scores, hypotheses, vs, config) -> tuple[np.ndarray, np.ndarray]:
    """Balanced per-prompt differences and left-out counts (H, P), one subsample per hypothesis for all scopes."""
    seeds = [subsample_seed(config.seed, h.content_key()) for h in hypotheses]
    return balanced_differences(np.stack(scores) if scores else np.empty((0, vs.prompt_of_row.size)), vs, seeds)


def _tests(scores, paired, masks, hypotheses, vs, config, n_resamples) -> list[dict[str, Any]]:
    """One test per hypothesis: the sign-flip over prompts, vectorised per direction (texts when unaligned)."""
    if paired is None:
        return [_text_test(s, m, h, vs, config, n_resamples) for s, m, h in zip(scores, masks, hypotheses)]
    D, dropped = paired
    out = [_no_test() for _ in hypotheses]
    for direction in ("b>a", "a>b"):
        alternative = "greater" if direction == "b>a" else "less"
        rows = [i for i, h in enumerate(hypotheses) if h.direction == direction and masks[i] is not None]
        if not rows:
            continue
        M = np.stack([masks[i] for i in rows]) & np.isfinite(D[rows])
        stats, p_values = tests.paired_signflip_many(D[rows], M, alternative, n_resamples, config.seed)
        for i, t, p, used in zip(rows, stats, p_values, M):
            if used.any():
                out[i] = _signflip_result(float(t), float(p), int(used.sum()), int(dropped[i][used].sum()), n_resamples,
                                          vs.unit)
    return out


def _signflip_result(statistic: float, p_value: float, n: int, left_out: int, n_resamples: int,
                     unit: str = "prompt") -> dict[str, Any]:
    kind = f"exact, all 2^{n} sign vectors" if tests.is_exact(n, n_resamples) else f"Monte Carlo, R={n_resamples}"
    name = f"paired sign-flip randomization test over {unit}s ({kind})"
    if left_out:
        name += (f"; unequal answer counts balanced by a seeded subsample of min(k_a, k_b) answers a side per "
                 f"{unit} ({left_out} left out of the test)")
    return {"statistic": statistic, "p_value": p_value, "n_prompts": n, "n_units": n, "unit": unit, "test": name,
            "n_subsample_dropped": left_out, "smallest_p": tests.smallest_p(n, n_resamples)}


def _text_test(scores, mask, h, vs, config, n_resamples) -> dict[str, Any]:
    if mask is None:
        return _no_test()
    alternative = "greater" if h.direction == "b>a" else "less"
    found = text_test(scores, mask[vs.prompt_of_row], vs.is_b, alternative, n_resamples, config.seed, vs.clusters)
    return found or _no_test()


def _no_test() -> dict[str, Any]:
    return {"statistic": float("nan"), "p_value": float("nan"), "n_prompts": 0, "n_units": 0, "unit": "none",
            "test": "not tested: no validation data", "n_subsample_dropped": 0, "smallest_p": None}


def clip_to_scores(interval: list[float]) -> list[float]:
    """An interval for a difference of judge scores in [0, 1] lies in [−1, 1]: clipping it there
    never lowers its coverage (a t interval over few prompts can run past the scale)."""
    return [float(np.clip(v, -1.0, 1.0)) if v is not None and np.isfinite(v) else v for v in interval]


def _score_lists(scores, vs, prompts) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each listed prompt's finite scores, per side, in row order: one sort, not a scan per prompt."""
    prompts = np.asarray(prompts, dtype=int)
    slot = np.full(max(int(vs.prompt_of_row.max(initial=-1)), int(prompts.max(initial=-1))) + 1, -1)
    slot[prompts] = np.arange(prompts.size)
    slot_of_row = slot[vs.prompt_of_row]
    rows = np.flatnonzero(np.isfinite(scores) & (slot_of_row >= 0))
    return (_split_by_slot(scores, rows[~vs.is_b[rows]], slot_of_row, prompts.size),
            _split_by_slot(scores, rows[vs.is_b[rows]], slot_of_row, prompts.size))


def _split_by_slot(scores, rows, slot_of_row, n_slots) -> list[np.ndarray]:
    slots = slot_of_row[rows]  # rows ascend; a stable sort keeps that order within a slot
    order = np.argsort(slots, kind="stable")
    bounds = np.searchsorted(slots[order], np.arange(n_slots + 1))
    values = scores[rows[order]]
    return [values[bounds[i]:bounds[i + 1]] for i in range(n_slots)]


def _describe(h, scores, test, vs, data, config, warning: str | None) -> Finding:
    mask = vs.scope(h.group)
    in_scope_rows = mask[vs.prompt_of_row]
    if test["unit"] == "none":
        effect = auc = None
        groups_a, groups_b, used_rows = [], [], np.zeros(len(scores), dtype=bool)
    elif vs.aligned:
        effect, auc, groups_a, groups_b, used_rows = _prompt_effects(scores, vs, mask, config)
    else:
        effect, auc, groups_a, groups_b = text_effects(scores, in_scope_rows, vs.is_b, config, vs.clusters)
        used_rows = in_scope_rows & np.isfinite(scores)
    presence = judges.is_presence_mode(h, config.judge)
    return Finding.of(h, judge=_judge_name(h, config.judge), **test,
                      **_effect_fields(effect, auc, h.direction, config.ci_level),
                      assumption=_assumption(test["unit"], vs.aligned), n_texts=int(used_rows.sum()),
                      n_dropped=int((in_scope_rows & ~np.isfinite(scores)).sum()),
                      **_prevalence_fields(groups_a, groups_b, config.ci_level, presence),
                      examples=_examples(h, scores, vs, data, used_rows, config.examples), clustering_warning=warning)


def _effect_fields(effect: effects.Estimate | None, auc: effects.Estimate | None, direction: str,
                   level: float) -> dict[str, Any]:
    """The mean difference b − a and the AUC oriented in the hypothesis's direction, each with its
    interval or the reason it has none; effect_se and effect_df let decide build a selection-adjusted interval."""
    if effect is None or auc is None:
        return {"effect": None, "effect_ci": [None, None], "effect_se": None, "effect_df": None,
                "effect_ci_note": "not tested", "auc": None, "auc_ci": [None, None], "auc_ci_note": "not tested",
                "ci_level": level}
    auc_point, auc_low, auc_high = auc.interval
    if direction == "a>b":
        auc_point, auc_low, auc_high = 1 - auc_point, 1 - auc_high, 1 - auc_low
    return {"effect": effect.value, "effect_ci": clip_to_scores([effect.low, effect.high]), "effect_se": effect.se,
            "effect_df": effect.df, "effect_ci_note": effect.note, "auc": auc_point, "auc_ci": [auc_low, auc_high],
            "auc_ci_note": auc.note, "ci_level": level}


def _prevalence_fields(groups_a, groups_b, level: float, presence: bool) -> dict[str, Any]:
    """Prevalence per side for presence judges, each with a prompt-clustered Korn–Graubard interval."""
    fields: dict[str, Any] = {"prevalence_a": None, "prevalence_b": None, "prevalence_a_ci": [None, None],
                              "prevalence_b_ci": [None, None], "prevalence_ci_note": None}
    if not presence or not groups_a or not groups_b:
        return fields
    notes = []
    for side, groups in (("a", groups_a), ("b", groups_b)):
        found = effects.prevalence_ci(groups, level)
        fields[f"prevalence_{side}"], fields[f"prevalence_{side}_ci"] = found.value, [found.low, found.high]
        if found.note:
            notes.append(f"{side}: {found.note}")
    fields["prevalence_ci_note"] = "; ".join(notes) or None
    return fields


def _judge_name(h: Hypothesis, mode: str) -> str:
    if mode != "auto":
        return f"llm-{mode}"
    return "llm-unitary" if h.judge == "llm" else h.judge


def _prompt_effects(scores, vs, mask, config):
    """Effects from every scored answer (full per-prompt means, no subsample): an interval does not
    need d_p to be symmetric, and the subsample would only add noise to the estimate."""
    d, _, _ = per_prompt(scores, vs)
    use = np.flatnonzero(mask & np.isfinite(d))
    groups_a, groups_b = _score_lists(scores, vs, use)
    used_rows = np.isin(vs.prompt_of_row, use) & np.isfinite(scores)
    return (effects.mean_ci(d[use], config.ci_level), effects.auc_ci(groups_a, groups_b, config.ci_level),
            groups_a, groups_b, used_rows)


def _assumption(unit: str, paired: bool) -> str:
    """What the row's test assumes, from its unit (and, for clusters, whether they were paired)."""
    if unit == "cluster":
        return PAIRED_CLUSTER_ASSUMPTION if paired else CLUSTER_ASSUMPTION
    return {"none": "none", "text": ASSUMPTION, "prompt": PROMPT_ASSUMPTION}[unit]


def _examples(h, scores, vs, data, used_rows, k) -> dict[str, list[Example]]:
    """The validation answers that show the hypothesis most strongly, per side."""
    out = {}
    for side, is_side in (("a", ~vs.is_b), ("b", vs.is_b)):
        candidates = np.flatnonzero(used_rows & is_side)
        ranked = candidates[np.argsort(-scores[candidates], kind="stable")][:k]
        out[side] = [_example(data, vs.rows[r], float(scores[r])) for r in ranked]
    return out


def _example(data: PairData, row: int, score: float) -> Example:
    sample = data.samples[row]
    return {"sample_id": sample.id, "prompt": data.prompt_by_id[sample.prompt_id].text, "text": sample.text,
            "score": round(score, 4)}


def _add_generalization(results, scores, paired, outside, hypotheses, vs, config, n_resamples) -> list[Finding]:
    """Test each group's hypothesis on the validation prompts of every other group (same subsample)."""
    checks = _tests(scores, paired, outside, hypotheses, vs, config, n_resamples)
    out = []
    for result, check, mask in zip(results, checks, outside):
        has_data = mask is not None and check["n_units"] > 0
        out.append(replace(result, generalization_p=check["p_value"] if has_data else None,
                           generalization_effect=check["statistic"] if has_data else None,
                           generalization_units=check["n_units"] if has_data else 0))
    return out


def add_baselines(results: list[Finding], data: PairData, seed: int) -> list[Finding]:
    """The findings with the bag-of-words AUC of each one's scope (computed once per scope)."""
    vs = ValidationSet.build(data)
    texts = np.array([data.samples[i].text for i in vs.rows], dtype=object)
    cache: dict[str, float | None] = {}
    for result in results:
        if result.group not in cache:
            rows = vs.scope(result.group)[vs.prompt_of_row]
            cache[result.group] = bow_auc(list(texts[rows]), vs.is_b[rows], vs.prompt_of_row[rows], seed)
    return [replace(result, baseline_auc=cache[result.group]) for result in results]
