"""Validation for unaligned corpora (no prompt holds answers of both sides): the unit is the text.

This assumes the texts are independent draws; answers that secretly share a prompt or context
make these p-values too small. The output says so in `assumption`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmdelta.stats import effects, tests

ASSUMPTION = ("texts are independent draws (unaligned corpora share no prompts, so the text is the unit); "
              "answers that share a hidden prompt or context would make the p-value too small")


def text_test(scores: np.ndarray, rows: np.ndarray, is_b: np.ndarray, alternative: str, n_resamples: int,
              seed: int) -> dict[str, Any] | None:
    """Label permutation over texts; None when a side has no scored text in scope."""
    valid = rows & np.isfinite(scores)
    a, b = scores[valid & ~is_b], scores[valid & is_b]
    if a.size == 0 or b.size == 0:
        return None
    result = tests.text_permutation(a, b, alternative, n_resamples, seed)
    name = f"text-level label permutation test (unaligned corpora; Monte Carlo, R={n_resamples})"
    return {"statistic": result.statistic, "p_value": result.p_value, "n_prompts": 0, "n_units": int(a.size + b.size),
            "unit": "text", "test": name, "n_subsample_dropped": 0}


def text_effects(scores: np.ndarray, rows: np.ndarray, is_b: np.ndarray,
                 config) -> tuple[effects.Estimate, effects.Estimate, list[np.ndarray], list[np.ndarray]]:
    """Mean difference b − a with a Welch t interval, the AUC with each text as its own unit, and
    the scores per unit (one text each, for prevalence intervals)."""
    valid = rows & np.isfinite(scores)
    a, b = scores[valid & ~is_b], scores[valid & is_b]
    per_text_a = [np.array([x]) for x in a] + [np.array([])] * b.size
    per_text_b = [np.array([])] * a.size + [np.array([x]) for x in b]
    return (effects.welch_ci(a, b, config.ci_level), effects.auc_ci(per_text_a, per_text_b, config.ci_level),
            [np.array([x]) for x in a], [np.array([x]) for x in b])
