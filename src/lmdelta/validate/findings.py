"""validate_all: every number STATISTICS.md asks for, per hypothesis, as one Finding row each
(test, effect and AUC with intervals, prevalences, counts, evidence texts); decide adds the FDR decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lmdelta import judges
from lmdelta.config import ValidateConfig
from lmdelta.judges.inputs import Ask
from lmdelta.judges.property import measure_of
from lmdelta.pairdata import PairData
from lmdelta.properties import Property, contrast, summary_statistic
from lmdelta.properties.values import Values
from lmdelta.records import Example, Finding, Hypothesis, Interval
from lmdelta.stats import effects
from lmdelta.validate.generalisation import add_generalization, judged_prompts
from lmdelta.validate.sets import ValidationSet, per_prompt, score_lists
from lmdelta.validate.significance import hypothesis_tests, largest_family, paired_differences, resamples_for
from lmdelta.validate.texts import (
    ASSUMPTION,
    CLUSTER_ASSUMPTION,
    PAIRED_CLUSTER_ASSUMPTION,
    PROMPT_ASSUMPTION,
    clustering_warning,
    text_effects,
)

_SPENT = np.empty(0)  # a hypothesis's scores once nothing reads them


def validate_all(
    data: PairData, hypotheses: list[Hypothesis], config: ValidateConfig, q: float, llm_ask: Ask | None = None
) -> list[Finding]:
    """Every number STATISTICS.md asks for, per hypothesis (except the FDR decisions)."""
    vs = ValidationSet.build(data)
    values = Values(data.samples.text_rows(vs.rows))  # the property judge's raw values, read again by _describe
    vectors = judges.judge_vectors(data, vs.rows, hypotheses, config.judge)
    scores = judges.score_hypotheses(
        hypotheses,
        vs,
        values,
        vectors,
        config.judge,
        llm_ask,
        judged=[prompts[vs.prompt_of_row] for prompts in judged_prompts(hypotheses, vs, config)],
    )
    n_resamples = resamples_for(config, largest_family(hypotheses), q)
    paired = paired_differences(scores, hypotheses, vs, config) if vs.aligned else None
    masks: list[np.ndarray | None] = [vs.scope(h.group) for h in hypotheses]
    primary = hypothesis_tests(scores, paired, masks, hypotheses, vs, config, n_resamples)
    warning = None
    if not (vs.aligned or vs.clustered):
        warning = clustering_warning(data.vectors_of(vs.rows), vs.is_b, config.resolved_seed)
    values.of(measure_of(h) for h in hypotheses if h.judge == "property")  # one pass for all, if no judge made it
    results = []
    for i, (h, test) in enumerate(zip(hypotheses, primary)):
        results.append(_describe(h, scores[i], test, vs, data, config, warning, values))
        if paired is not None:  # the paired tests left read the differences: 1.6 GB of scores at 2 M texts
            scores[i] = _SPENT
    if config.generalization:
        results = add_generalization(results, scores, paired, hypotheses, vs, config, n_resamples)
    return results


def clip_to_scores(interval: Interval) -> Interval:
    """An interval for a difference of judge scores in [0, 1] lies in [−1, 1]: clipping it there
    never lowers its coverage (a t interval over few prompts can run past the scale)."""
    return [float(np.clip(v, -1.0, 1.0)) if v is not None and np.isfinite(v) else v for v in interval]


def _describe(
    h: Hypothesis,
    scores: np.ndarray,
    test: dict[str, Any],
    vs: ValidationSet,
    data: PairData,
    config: ValidateConfig,
    warning: str | None,
    values: Values,
) -> Finding:
    mask = vs.scope(h.group)
    in_scope_rows = mask[vs.prompt_of_row]
    groups_a: Sequence[np.ndarray]
    groups_b: Sequence[np.ndarray]
    if test["unit"] == "none":
        effect = auc = None
        groups_a, groups_b, used_rows = [], [], np.zeros(len(scores), dtype=bool)
    elif vs.aligned:
        effect, auc, groups_a, groups_b, used_rows = _prompt_effects(scores, vs, mask, config)
    else:
        effect, auc, groups_a, groups_b = text_effects(scores, in_scope_rows, vs.is_b, config, vs.clusters)
        used_rows = in_scope_rows & np.isfinite(scores)
    presence = judges.is_presence_mode(h, config.judge)
    return Finding.of(
        h,
        judge=_judge_name(h, config.judge),
        **test,
        **_effect_fields(effect, auc, h.direction, config.ci_level),
        assumption=_assumption(test["unit"], vs.aligned),
        n_texts=int(used_rows.sum()),
        n_dropped=int((in_scope_rows & ~np.isfinite(scores)).sum()),
        **_prevalence_fields(groups_a, groups_b, config.ci_level, presence),
        **(_measure_fields(measure_of(h), values, used_rows, vs.is_b) if h.judge == "property" else {}),
        examples=_examples(h, scores, vs, data, used_rows, config.examples),
        clustering_warning=warning,
    )


def _effect_fields(
    effect: effects.Estimate | None, auc: effects.Estimate | None, direction: str, level: float
) -> dict[str, Any]:
    """The mean difference b − a and the AUC oriented in the hypothesis's direction, each with its
    interval or the reason it has none; effect_se and effect_df let decide build a selection-adjusted interval."""
    if effect is None or auc is None:
        return {
            "effect": None,
            "effect_ci": [None, None],
            "effect_se": None,
            "effect_df": None,
            "effect_ci_note": "not tested",
            "auc": None,
            "auc_ci": [None, None],
            "auc_ci_note": "not tested",
            "ci_level": level,
        }
    auc_point, auc_low, auc_high = auc.interval
    if direction == "a>b":
        auc_point, auc_low, auc_high = 1 - auc_point, 1 - auc_high, 1 - auc_low
    return {
        "effect": effect.value,
        "effect_ci": clip_to_scores([effect.low, effect.high]),
        "effect_se": effect.se,
        "effect_df": effect.df,
        "effect_ci_note": effect.note,
        "auc": auc_point,
        "auc_ci": [auc_low, auc_high],
        "auc_ci_note": auc.note,
        "ci_level": level,
    }


def _prevalence_fields(
    groups_a: Sequence[np.ndarray], groups_b: Sequence[np.ndarray], level: float, presence: bool
) -> dict[str, Any]:
    """Prevalence per side for presence judges, each with a prompt-clustered Korn–Graubard interval."""
    fields: dict[str, Any] = {
        "prevalence_a": None,
        "prevalence_b": None,
        "prevalence_a_ci": [None, None],
        "prevalence_b_ci": [None, None],
        "prevalence_ci_note": None,
    }
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


def _measure_fields(prop: Property, held: Values, used_rows: np.ndarray, is_b: np.ndarray) -> dict[str, Any]:
    """A property judge's property in its own unit on the texts the test used, per side: the share of
    answers that have it, or the median (the mean where the medians tie). The test ran on the judge's
    [0, 1] scores, a fixed monotone map of these values: the same difference, in words, marks or shares."""
    (values,) = held.of([prop])
    used = used_rows & np.isfinite(values)
    values_a, values_b = values[used & ~is_b], values[used & is_b]
    statistic = summary_statistic(prop, values_a, values_b)
    found = contrast(prop, values_a, values_b, statistic)  # "more" is a here: the fields name their side
    return {
        "measure_statistic": statistic,
        "measure_a": found.more,
        "measure_b": found.less,
        "measure_unit": prop.unit,
    }


def _judge_name(h: Hypothesis, mode: str) -> str:
    if mode != "auto":
        return f"llm-{mode}"
    return "llm-unitary" if h.judge == "llm" else h.judge


def _prompt_effects(
    scores: np.ndarray, vs: ValidationSet, mask: np.ndarray, config: ValidateConfig
) -> tuple[effects.Estimate, effects.Estimate, Sequence[np.ndarray], Sequence[np.ndarray], np.ndarray]:
    """Effects from every scored answer (full per-prompt means, no subsample): an interval does not
    need d_p to be symmetric, and the subsample would only add noise to the estimate."""
    d, _, _ = per_prompt(scores, vs)
    use = np.flatnonzero(mask & np.isfinite(d))
    groups_a, groups_b = score_lists(scores, vs, use)
    used_rows = np.isin(vs.prompt_of_row, use) & np.isfinite(scores)
    return (
        effects.mean_ci(d[use], config.ci_level),
        effects.auc_ci(groups_a, groups_b, config.ci_level),
        groups_a,
        groups_b,
        used_rows,
    )


def _assumption(unit: str, paired: bool) -> str:
    """What the row's test assumes, from its unit (and, for clusters, whether they were paired)."""
    if unit == "cluster":
        return PAIRED_CLUSTER_ASSUMPTION if paired else CLUSTER_ASSUMPTION
    return {"none": "none", "text": ASSUMPTION, "prompt": PROMPT_ASSUMPTION}[unit]


def _examples(
    h: Hypothesis, scores: np.ndarray, vs: ValidationSet, data: PairData, used_rows: np.ndarray, k: int
) -> dict[str, list[Example]]:
    """The finding's evidence: where a and b answered the same prompts, k same-prompt pairs (a[i] and b[i]
    answer one prompt); otherwise each side's k answers that show the hypothesis most."""
    pairs = _contrast_pairs(h.direction, scores, vs, used_rows, k) if vs.aligned else []
    if not pairs:
        return _top_per_side(scores, vs, data, used_rows, k)
    return {
        "a": [_example(data, vs.rows[a], float(scores[a])) for a, _ in pairs],
        "b": [_example(data, vs.rows[b], float(scores[b])) for _, b in pairs],
    }


def _contrast_pairs(
    direction: str, scores: np.ndarray, vs: ValidationSet, used_rows: np.ndarray, k: int
) -> list[tuple[int, int]]:
    """(a's row, b's row) on the k used prompts whose difference d_p runs furthest in the finding's direction,
    furthest first (ties in prompt order). Each row is its side's answer that shows the contrast best: the
    side said to show more gives its highest-scoring answer, the other side its lowest. A side's "top"
    answers to different prompts would show each model at its most, not how they differ."""
    d, _, _ = per_prompt(np.where(used_rows, scores, np.nan), vs)
    toward = d if direction == "b>a" else -d
    prompts = np.flatnonzero(np.isfinite(toward))
    chosen = prompts[np.argsort(-toward[prompts], kind="stable")][:k]
    more_in_b = direction == "b>a"
    return [
        (
            _pick(scores, used_rows & ~vs.is_b & (vs.prompt_of_row == p), highest=not more_in_b),
            _pick(scores, used_rows & vs.is_b & (vs.prompt_of_row == p), highest=more_in_b),
        )
        for p in chosen
    ]


def _pick(scores: np.ndarray, rows: np.ndarray, highest: bool) -> int:
    """The row of the highest (or lowest) score among `rows`, the first in row order on a tie."""
    candidates = np.flatnonzero(rows)
    values = scores[candidates]
    return int(candidates[np.argmax(values) if highest else np.argmin(values)])


def _top_per_side(
    scores: np.ndarray, vs: ValidationSet, data: PairData, used_rows: np.ndarray, k: int
) -> dict[str, list[Example]]:
    """Unpaired data (no prompt answered by both sides): each side's k highest-scoring used answers."""
    out = {}
    for side, is_side in (("a", ~vs.is_b), ("b", vs.is_b)):
        candidates = np.flatnonzero(used_rows & is_side)
        ranked = candidates[np.argsort(-scores[candidates], kind="stable")][:k]
        out[side] = [_example(data, vs.rows[r], float(scores[r])) for r in ranked]
    return out


def _example(data: PairData, row: int, score: float) -> Example:
    sample = data.samples[row]
    return {
        "sample_id": sample.id,
        "prompt": data.prompt_by_id[sample.prompt_id].text,
        "text": sample.text,
        "score": round(score, 4),
    }
