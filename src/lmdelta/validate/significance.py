"""The test of each hypothesis over a prompt mask: the paired sign-flip over prompts (or a corpus's
clusters), run for all hypotheses at once, or the text-level fallback when no prompt is aligned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmdelta.config import ValidateConfig
from lmdelta.records import GIVEN, Hypothesis
from lmdelta.stats import tests
from lmdelta.validate.sets import ValidationSet, balanced_differences, subsample_seed
from lmdelta.validate.texts import text_test


def largest_family(hypotheses: list[Hypothesis]) -> int:
    """The most hypotheses one FDR family holds: the proposed ones, or those given in propose.given (a family
    of their own, so that adding given hypotheses leaves the proposed ones' tests as they were)."""
    given = sum(h.proposer == GIVEN for h in hypotheses)
    return max(given, len(hypotheses) - given)


def resamples_for(config: ValidateConfig, m: int, q: float) -> int:
    """Enough draws that the smallest Monte Carlo p-value, 1/(R+1), sits well under BH's first step q/m."""
    return max(config.n_resamples, int(math.ceil(10 * max(m, 1) / q)))


def paired_differences(
    scores: Sequence[np.ndarray], hypotheses: list[Hypothesis], vs: ValidationSet, config: ValidateConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced per-prompt differences and left-out counts (H, P), one subsample per hypothesis for all scopes."""
    seeds = [subsample_seed(config.resolved_seed, h.content_key()) for h in hypotheses]
    return balanced_differences(scores, vs, seeds)  # the list, stacked a block at a time


def hypothesis_tests(
    scores: Sequence[np.ndarray],
    paired: tuple[np.ndarray, np.ndarray] | None,
    masks: list[np.ndarray | None],
    hypotheses: list[Hypothesis],
    vs: ValidationSet,
    config: ValidateConfig,
    n_resamples: int,
) -> list[dict[str, Any]]:
    """One test per hypothesis: the sign-flip over prompts, vectorised over all of them (texts when unaligned)."""
    if paired is None:
        return [_text_test(s, m, h, vs, config, n_resamples) for s, m, h in zip(scores, masks, hypotheses)]
    D, dropped = paired
    out = [_no_test() for _ in hypotheses]
    scoped = [(i, m) for i, m in enumerate(masks) if m is not None]
    if not scoped:
        return out
    rows = [i for i, _ in scoped]
    # One call for both directions, one draw of the signs ("a > b" is the alternative "less"); D is read, not
    # copied: at 700,000 validation prompts a copy of 150 hypotheses' differences is 0.8 GB.
    kinds = ["greater" if hypotheses[i].direction == "b>a" else "less" for i in rows]
    stats, p_values = tests.paired_signflip_many(D, masks, kinds, n_resamples, config.resolved_seed, rows=rows)
    for (i, mask), t, p in zip(scoped, stats, p_values):
        used = mask & np.isfinite(D[i])
        if used.any():
            out[i] = _signflip_result(
                float(t), float(p), int(used.sum()), int(dropped[i][used].sum()), n_resamples, vs.unit
            )
    return out


def _signflip_result(
    statistic: float, p_value: float, n: int, left_out: int, n_resamples: int, unit: str = "prompt"
) -> dict[str, Any]:
    kind = f"exact, all 2^{n} sign vectors" if tests.is_exact(n, n_resamples) else f"Monte Carlo, R={n_resamples}"
    name = f"paired sign-flip randomization test over {unit}s ({kind})"
    if left_out:
        name += (
            f"; unequal answer counts balanced by a seeded subsample of min(k_a, k_b) answers a side per "
            f"{unit} ({left_out} left out of the test)"
        )
    return {
        "statistic": statistic,
        "p_value": p_value,
        "n_prompts": n,
        "n_units": n,
        "unit": unit,
        "test": name,
        "n_subsample_dropped": left_out,
        "smallest_p": tests.smallest_p(n, n_resamples),
    }


def _text_test(
    scores: np.ndarray,
    mask: np.ndarray | None,
    h: Hypothesis,
    vs: ValidationSet,
    config: ValidateConfig,
    n_resamples: int,
) -> dict[str, Any]:
    if mask is None:
        return _no_test()
    alternative: tests.Alternative = "greater" if h.direction == "b>a" else "less"
    found = text_test(
        scores, mask[vs.prompt_of_row], vs.is_b, alternative, n_resamples, config.resolved_seed, vs.clusters
    )
    return found or _no_test()


def _no_test() -> dict[str, Any]:
    return {
        "statistic": float("nan"),
        "p_value": float("nan"),
        "n_prompts": 0,
        "n_units": 0,
        "unit": "none",
        "test": "not tested: no validation data",
        "n_subsample_dropped": 0,
        "smallest_p": None,
    }
