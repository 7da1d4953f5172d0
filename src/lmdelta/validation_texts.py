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
    return {"statistic": result.statistic, "p_value": result.p_value, "n_prompts": 0, "n_units": int(a.size + b.size),
            "unit": "text", "test": f"text-level label permutation test (unaligned corpora; Monte Carlo, R={n_resamples})"}


def text_effects(scores: np.ndarray, rows: np.ndarray, is_b: np.ndarray, config, direction: str) -> dict[str, Any]:
    """Mean difference b − a with a two-sample bootstrap CI, and the AUC with a text bootstrap CI."""
    valid = rows & np.isfinite(scores)
    a, b = scores[valid & ~is_b], scores[valid & is_b]
    rng = np.random.default_rng(config.seed)
    draws = np.array([rng.choice(b, b.size).mean() - rng.choice(a, a.size).mean() for _ in range(config.bootstrap)])
    tail = (1 - config.ci_level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    per_text_a = [np.array([x]) for x in a] + [np.array([])] * b.size
    per_text_b = [np.array([])] * a.size + [np.array([x]) for x in b]
    auc, auc_low, auc_high = effects.auc_ci_by_prompt(per_text_a, per_text_b, config.bootstrap, config.ci_level, config.seed)
    if direction == "a>b":
        auc, auc_low, auc_high = 1 - auc, 1 - auc_high, 1 - auc_low
    return {"effect": float(b.mean() - a.mean()), "effect_ci": [float(low), float(high)], "auc": auc,
            "auc_ci": [auc_low, auc_high], "groups_a": [a], "groups_b": [b]}
