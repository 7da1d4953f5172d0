"""Test hypotheses on validation prompts: judge scores → per-prompt differences → tests and effects.

The unit is the prompt: d_p = mean score of b's answers to p − mean of a's. With equal answer
counts per side the test is the paired sign-flip randomization test, run for all hypotheses at
once; with unequal counts, labels are permuted within each prompt (STATISTICS.md §2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmdelta import judges
from lmdelta.config import ValidateConfig
from lmdelta.pairdata import PairData
from lmdelta.records import Hypothesis
from lmdelta.stats import effects, tests
from lmdelta.validation_texts import ASSUMPTION, text_effects, text_test


@dataclass
class ValidationSet:
    """The validation answers of one comparison, indexed by prompt."""

    rows: np.ndarray  # sample rows of the pair data
    prompt_ids: list[str]  # validation prompts, in order
    prompt_of_row: np.ndarray  # index into prompt_ids, per row
    is_b: np.ndarray
    groups: np.ndarray  # group of each validation prompt
    aligned: bool = True  # some prompt has answers of both sides (else the unit is the text)

    @classmethod
    def build(cls, data: PairData) -> ValidationSet:
        rows = data.rows("validation")
        prompt_ids = sorted({data.samples[i].prompt_id for i in rows})
        position = {pid: k for k, pid in enumerate(prompt_ids)}
        sides: dict[str, set[str]] = {}
        for i in rows:
            sides.setdefault(data.samples[i].prompt_id, set()).add(data.samples[i].side)
        return cls(rows=rows, prompt_ids=prompt_ids,
                   prompt_of_row=np.array([position[data.samples[i].prompt_id] for i in rows], dtype=int),
                   is_b=np.array([data.samples[i].side == "b" for i in rows]),
                   groups=np.array([data.groups.get(pid, "all") for pid in prompt_ids]),
                   aligned=any(len(s) == 2 for s in sides.values()))

    def scope(self, group: str, inside: bool = True) -> np.ndarray:
        """Prompt mask for a group ("all": every prompt); inside=False gives the other groups."""
        if group == "all":
            return np.full(len(self.prompt_ids), inside)
        return (self.groups == group) if inside else (self.groups != group)


def per_prompt(scores: np.ndarray, vs: ValidationSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, count_a, count_b) per prompt from row scores; NaN scores are left out, d NaN if a side is empty."""
    valid = np.isfinite(scores)
    n_prompts = len(vs.prompt_ids)
    sums, counts = [], []
    for side in (~vs.is_b, vs.is_b):
        keep = valid & side
        sums.append(np.bincount(vs.prompt_of_row[keep], weights=scores[keep], minlength=n_prompts))
        counts.append(np.bincount(vs.prompt_of_row[keep], minlength=n_prompts))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = sums[1] / counts[1] - sums[0] / counts[0]
    d[(counts[0] == 0) | (counts[1] == 0)] = np.nan
    return d, counts[0], counts[1]


def resamples_for(config: ValidateConfig, m: int, q: float) -> int:
    """Enough draws that the smallest Monte Carlo p-value, 1/(R+1), sits well under BH's first step q/m."""
    return max(config.n_resamples, int(math.ceil(10 * max(m, 1) / q)))


def validate_all(data: PairData, hypotheses: list[Hypothesis], config: ValidateConfig, q: float,
                 llm_ask=None) -> list[dict[str, Any]]:
    """Every number STATISTICS.md asks for, per hypothesis (except the FDR decisions)."""
    vs = ValidationSet.build(data)
    texts = [data.samples[i].text for i in vs.rows]
    vectors = data.vectors[vs.rows] if len(vs.rows) else data.vectors[:0]
    scores = judges.score_hypotheses(hypotheses, vs, texts, vectors, config.judge, llm_ask)
    n_resamples = resamples_for(config, len(hypotheses), q)
    primary = _tests(scores, [vs.scope(h.group) for h in hypotheses], hypotheses, vs, config, n_resamples)
    results = []
    for h, s, test in zip(hypotheses, scores, primary):
        results.append(_describe(h, s, test, vs, data, config))
    if config.generalization:
        outside = [vs.scope(h.group, inside=False) if h.group != "all" else None for h in hypotheses]
        _add_generalization(results, scores, outside, hypotheses, vs, config, n_resamples)
    return results


def _tests(scores, masks, hypotheses, vs, config, n_resamples) -> list[dict[str, Any]]:
    """One test per hypothesis: vectorised sign-flips where counts are balanced, else per-row tests."""
    if not vs.aligned:
        return [_text_test(s, m, h, vs, config, n_resamples) for s, m, h in zip(scores, masks, hypotheses)]
    out: list[dict[str, Any] | None] = [None] * len(hypotheses)
    for direction in ("b>a", "a>b"):
        alternative = "greater" if direction == "b>a" else "less"
        rows = [i for i, h in enumerate(hypotheses) if h.direction == direction and masks[i] is not None]
        balanced = [i for i in rows if config.test == "signflip" and _balanced(scores[i], masks[i], vs)]
        if balanced:
            D = np.stack([per_prompt(scores[i], vs)[0] for i in balanced])
            M = np.stack([masks[i] for i in balanced]) & np.isfinite(D)
            stats, p_values = tests.paired_signflip_many(D, M, alternative, n_resamples, config.seed)
            for i, t, p, n in zip(balanced, stats, p_values, M.sum(axis=1)):
                out[i] = {"statistic": float(t), "p_value": float(p), "n_prompts": int(n), "n_units": int(n),
                          "unit": "prompt", "test": _signflip_name(int(n), n_resamples)} if n > 0 else None
        for i in set(rows) - set(balanced):
            out[i] = _single_test(scores[i], masks[i], vs, config, alternative, n_resamples)
    return [o if o is not None else _no_test() for o in out]


def _balanced(scores, mask, vs) -> bool:
    _, count_a, count_b = per_prompt(scores, vs)
    used = mask & (count_a > 0) & (count_b > 0)
    return bool(np.all(count_a[used] == count_b[used]))


def _signflip_name(n: int, n_resamples: int) -> str:
    kind = f"exact, all 2^{n} sign vectors" if 0 < n and 2 ** n <= n_resamples else f"Monte Carlo, R={n_resamples}"
    return f"paired sign-flip randomization test over prompts ({kind})"


def _single_test(scores, mask, vs, config, alternative, n_resamples) -> dict[str, Any]:
    d, count_a, count_b = per_prompt(scores, vs)
    use = mask & np.isfinite(d)
    if not use.any():
        return _no_test()
    if config.test == "wilcoxon":
        result = tests.wilcoxon_signed_rank(d[use], alternative)
        name = "Wilcoxon signed-rank test on per-prompt differences"
    else:
        groups_a, groups_b = _score_lists(scores, vs, np.flatnonzero(use))
        result = tests.within_prompt_permutation(groups_a, groups_b, alternative, n_resamples, config.seed)
        name = f"within-prompt label permutation test (unequal answer counts; Monte Carlo, R={n_resamples})"
    return {"statistic": result.statistic, "p_value": result.p_value, "n_prompts": int(use.sum()),
            "n_units": int(use.sum()), "unit": "prompt", "test": name}


def _text_test(scores, mask, h, vs, config, n_resamples) -> dict[str, Any]:
    if mask is None:
        return _no_test()
    alternative = "greater" if h.direction == "b>a" else "less"
    found = text_test(scores, mask[vs.prompt_of_row], vs.is_b, alternative, n_resamples, config.seed)
    return found or _no_test()


def _no_test() -> dict[str, Any]:
    return {"statistic": float("nan"), "p_value": float("nan"), "n_prompts": 0, "n_units": 0, "unit": "none",
            "test": "not tested: no validation data"}


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


def _describe(h, scores, test, vs, data, config) -> dict[str, Any]:
    mask = vs.scope(h.group)
    in_scope_rows = mask[vs.prompt_of_row]
    if test["unit"] == "none":
        measured = {"effect": None, "effect_ci": [None, None], "auc": None, "auc_ci": [None, None],
                    "groups_a": [], "groups_b": []}
        used_rows = np.zeros(len(scores), dtype=bool)
    elif vs.aligned:
        measured, used_rows = _prompt_effects(h, scores, vs, mask, config)
    else:
        measured = text_effects(scores, in_scope_rows, vs.is_b, config, h.direction)
        used_rows = in_scope_rows & np.isfinite(scores)
    groups_a, groups_b = measured.pop("groups_a"), measured.pop("groups_b")
    result = {**h.to_dict(), **test, **measured, "assumption": _assumption(test["test"]),
              "n_texts": int(used_rows.sum()), "n_dropped": int((in_scope_rows & ~np.isfinite(scores)).sum()),
              "prevalence_a": None, "prevalence_b": None}
    result["judge"] = _judge_name(h, config.judge)
    if judges.is_presence_mode(h, config.judge):
        result["prevalence_a"] = effects.prevalence(np.concatenate(groups_a)) if groups_a else None
        result["prevalence_b"] = effects.prevalence(np.concatenate(groups_b)) if groups_b else None
    result["examples"] = _examples(h, scores, vs, data, used_rows, config.examples)
    result.pop("prototype", None)
    return result


def _judge_name(h: Hypothesis, mode: str) -> str:
    if mode != "auto":
        return f"llm-{mode}"
    return "llm-unitary" if h.judge == "llm" else h.judge


def _prompt_effects(h, scores, vs, mask, config) -> tuple[dict[str, Any], np.ndarray]:
    d, _, _ = per_prompt(scores, vs)
    use = np.flatnonzero(mask & np.isfinite(d))
    groups_a, groups_b = _score_lists(scores, vs, use)
    mean, low, high = effects.bootstrap_mean_ci(d[use], config.bootstrap, config.ci_level, config.seed)
    auc, auc_low, auc_high = effects.auc_ci_by_prompt(groups_a, groups_b, config.bootstrap, config.ci_level, config.seed)
    if h.direction == "a>b":
        auc, auc_low, auc_high = 1 - auc, 1 - auc_high, 1 - auc_low
    used_rows = np.isin(vs.prompt_of_row, use) & np.isfinite(scores)
    return {"effect": mean, "effect_ci": [low, high], "auc": auc, "auc_ci": [auc_low, auc_high],
            "groups_a": groups_a, "groups_b": groups_b}, used_rows


def _assumption(test_name: str) -> str:
    if test_name.startswith("not tested"):
        return "none"
    if test_name.startswith("text-level"):
        return ASSUMPTION
    return ("within each validation prompt, the a/b labels of the answers are exchangeable under the null; "
            "answers to one prompt may be arbitrarily correlated")


def _examples(h, scores, vs, data, used_rows, k) -> dict[str, list[dict[str, Any]]]:
    """The validation answers that show the hypothesis most strongly, per side."""
    out = {}
    for side, is_side in (("a", ~vs.is_b), ("b", vs.is_b)):
        candidates = np.flatnonzero(used_rows & is_side)
        ranked = candidates[np.argsort(-scores[candidates], kind="stable")][:k]
        out[side] = [_example(data, vs.rows[r], float(scores[r])) for r in ranked]
    return out


def _example(data: PairData, row: int, score: float) -> dict[str, Any]:
    sample = data.samples[row]
    return {"sample_id": sample.id, "prompt": data.prompt_by_id[sample.prompt_id].text, "text": sample.text,
            "score": round(score, 4)}


def _add_generalization(results, scores, outside, hypotheses, vs, config, n_resamples) -> None:
    """Test each group's hypothesis on the validation prompts of every other group."""
    checks = _tests(scores, outside, hypotheses, vs, config, n_resamples)
    for result, check, mask in zip(results, checks, outside):
        has_data = mask is not None and check["n_units"] > 0
        result["generalization_p"] = check["p_value"] if has_data else None
        result["generalization_effect"] = check["statistic"] if has_data else None
        result["generalization_units"] = check["n_units"] if has_data else 0


def add_baselines(results: list[dict[str, Any]], data: PairData, seed: int) -> None:
    """The bag-of-words AUC of each hypothesis's scope (computed once per scope)."""
    from lmdelta.baseline import bow_auc

    vs = ValidationSet.build(data)
    texts = np.array([data.samples[i].text for i in vs.rows], dtype=object)
    cache: dict[str, float | None] = {}
    for result in results:
        group = result["group"]
        if group not in cache:
            rows = vs.scope(group)[vs.prompt_of_row]
            cache[group] = bow_auc(list(texts[rows]), vs.is_b[rows], vs.prompt_of_row[rows], seed)
        result["baseline_auc"] = cache[group]
