"""The sequential mode's per-hypothesis type-I error on nulls built the way validation builds them (judge
scores with a prompt random effect, a prompt x side interaction, unequal answer counts, unscorable
answers, balanced by `balanced_differences`), and the prefix property benchmarks/calibration.py
section 11 relies on. tests/test_sequential*.py check the betting test on i.i.d. differences and
e-BH's FDR; this checks run_rounds one hypothesis at a time on differences that are neither
symmetric nor identically scaled (seeded, a few seconds)."""

import numpy as np
import pytest

from lmdelta.stats.sequential import betting_test
from lmdelta.validate.sequential import Rounds, run_rounds
from lmdelta.validate.sets import ValidationSet, balanced_differences

ALPHA = 0.05
PROMPTS = 240  # rounds end after 16, 48, 112 and 240 prompts


def validation_set(n_prompts: int, k_a: int, k_b: int) -> ValidationSet:
    prompt_of_row = np.concatenate([np.repeat(np.arange(n_prompts), k_a), np.repeat(np.arange(n_prompts), k_b)])
    return ValidationSet(
        rows=np.arange(prompt_of_row.size),
        prompt_ids=[f"p{i}" for i in range(n_prompts)],
        prompt_of_row=prompt_of_row,
        is_b=np.arange(prompt_of_row.size) >= n_prompts * k_a,
        groups=np.array(["all"] * n_prompts),
        aligned=True,
    )


def null_scores(rng, n_sets: int, vs: ValidationSet, icc: float, interaction: float, presence: bool, nan_rate: float):
    """latent = base + u_p + [b] v_p + e: the models do not differ on average (E[d_p] = 0), but v_p
    makes them differ prompt by prompt, and 1 a vs 4 b answers makes d_p's spread depend on the side."""
    n_prompts = len(vs.prompt_ids)
    u = rng.normal(0.0, np.sqrt(icc), (n_sets, n_prompts))
    v = rng.normal(0.0, interaction, (n_sets, n_prompts))
    base = -2.0 if presence else 0.0  # presence: a rare property (about 0.15), d_p in {-1, 0, 1} at k = 1
    latent = base + u[:, vs.prompt_of_row] + v[:, vs.prompt_of_row] * vs.is_b
    latent = latent + rng.normal(0.0, np.sqrt(1.0 - icc), latent.shape)
    probability = 1.0 / (1.0 + np.exp(-latent))
    scores = (rng.random(latent.shape) < probability).astype(float) if presence else probability
    scores[rng.random(scores.shape) < nan_rate] = np.nan
    return scores


@pytest.mark.parametrize(
    "k_a, k_b, icc, interaction, presence, nan_rate",
    [(1, 4, 0.9, 0.5, False, 0.05), (1, 1, 0.5, 0.0, True, 0.0)],
    ids=["1-vs-4-answers-weak-null-nan", "presence-judge-k1"],
)
def test_run_rounds_type_one_error_per_hypothesis_under_validation_nulls(
    k_a, k_b, icc, interaction, presence, nan_rate
):
    """240 null hypotheses, each alone (so run_rounds stops at e >= 1/alpha) and without the futility
    rule (min_effect 0), directions alternating: at most alpha of them may be rejected at any round.
    The betting e-process is conservative here (about 0.01 in benchmarks/calibration.py table 11a),
    so the bound is alpha itself. Each stopped e-value is the capital of one pass over all the
    prompts at the count it saw, which is what lets the benchmark read every round from one pass."""
    rng = np.random.default_rng(20261202)
    vs = validation_set(PROMPTS, k_a, k_b)
    n_sets = 240
    D, _ = balanced_differences(
        null_scores(rng, n_sets, vs, icc, interaction, presence, nan_rate), vs, list(range(n_sets))
    )
    rejected = 0
    for i, d in enumerate(D):
        direction = "b>a" if i % 2 == 0 else "a>b"
        (outcome,) = run_rounds(d[None, :], [direction], Rounds(16, 2.0), ALPHA, 0.0)
        rejected += outcome.reason == "rejected"
        whole = betting_test(d, side="greater" if direction == "b>a" else "less", alpha=ALPHA)
        assert outcome.e_value == pytest.approx(whole.capital[outcome.n_prompts - 1], rel=1e-9)
    assert rejected / n_sets <= ALPHA
