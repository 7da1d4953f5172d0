"""Validation in rounds over a matrix of prompt differences: round sizes, why each hypothesis stops,
e-BH decisions, and FDR with optional stopping on simulated data (seeded, fast)."""

import numpy as np
import pytest

from lmdelta.validate.sequential import Outcome, Rounds, decide, run_rounds


def test_rounds_grow_geometrically_up_to_the_cap():
    assert Rounds(16, 2.0).boundaries(100) == [16, 48, 100]
    assert Rounds(16, 2.0, cap=40).boundaries(100) == [16, 40]
    assert Rounds(10, 1.0).boundaries(25) == [10, 20, 25]
    assert Rounds(16).boundaries(0) == []
    with pytest.raises(ValueError):
        Rounds(0)


def test_rounds_stop_growing_at_most_new_prompts_a_round():
    assert Rounds(16, 1.5, most=30).boundaries(200) == [16, 40, 70, 100, 130, 160, 190, 200]
    assert Rounds(16, 1.5, cap=50, most=30).boundaries(200) == [16, 40, 50]
    assert Rounds(16, 2.0, most=8).boundaries(20) == [8, 16, 20]  # the first round too
    assert Rounds(16, 1.5, most=10**6).boundaries(300) == Rounds(16, 1.5).boundaries(300)
    # past 16 × most prompts a round may take a sixteenth of those given: rounds stay few on a huge scope
    ends = Rounds(16, 1.5, most=128).boundaries(2_000_000)
    steps = np.diff([0, *ends])
    assert all(step <= max(128, before // 16) for step, before in zip(steps, [0, *ends]))
    assert ends[:19] == Rounds(16, 1.5, most=128).boundaries(2_000)[:19] and ends[19:21] == [2_125, 2_257]
    assert len(ends) < 150
    with pytest.raises(ValueError):
        Rounds(16, 1.5, most=0)


def test_a_clear_difference_stops_early_and_a_null_one_does_not_reject():
    rng = np.random.default_rng(2)
    real = np.clip(rng.normal(0.5, 0.2, size=400), -1, 1)
    null = rng.choice([-0.5, 0.5], size=400)
    wrong_way = np.clip(rng.normal(-0.4, 0.2, size=400), -1, 1)
    outcomes = run_rounds(np.stack([real, null, wrong_way]), ["b>a", "b>a", "b>a"], Rounds(16, 2.0), 0.05, 0.1)
    first, second, third = outcomes
    assert first.reason == "rejected" and first.n_prompts <= 48 and first.e_value >= 3 / 0.05
    assert second.reason in ("futile", "exhausted") and second.e_value < 3 / 0.05
    # the futility bound is tuned for the prompts a 0.1 bound needs, so it waits past the first round
    assert third.reason == "futile" and third.n_prompts <= 48 and third.ci[1] < 0.1
    assert [o.rejected for o in decide(outcomes)] == [True, False, False]


def test_out_of_scope_prompts_are_skipped_and_the_cap_is_reported():
    d = np.full(100, np.nan)
    d[::4] = 0.05  # a quarter of the prompts in scope, a tiny effect
    (outcome,) = run_rounds(d[None, :], ["b>a"], Rounds(16, 2.0, cap=48), 0.05, 0.0)
    assert outcome.reason == "cap" and outcome.n_prompts == 12 and outcome.round == 2
    (empty,) = run_rounds(np.full((1, 10), np.nan), ["a>b"], Rounds(4), 0.05)
    assert empty.reason == "exhausted" and empty.n_prompts == 0 and empty.p_value == 1.0


def test_fdr_and_cost_against_testing_every_prompt():
    """20 hypotheses (5 real, of mixed size) over 300 prompts, 60 repetitions: e-BH at stopping keeps the
    FDR under q, and the rounds use far fewer prompt judgements than judging all 300 for everyone."""
    rng = np.random.default_rng(11)
    fdp, used, found = [], [], []
    for _ in range(60):
        means = np.array([0.4, 0.3, 0.2, 0.2, 0.15] + [0.0] * 15)
        D = np.clip(rng.normal(means[:, None], 0.35, size=(20, 300)), -1, 1)
        outcomes = decide(run_rounds(D, ["b>a"] * 20, Rounds(16, 2.0), 0.1, 0.1), alpha=0.1)
        rejected = np.array([o.rejected for o in outcomes])
        fdp.append(rejected[5:].sum() / max(rejected.sum(), 1))
        used.append(sum(o.n_prompts for o in outcomes))
        found.append(rejected[:5].mean())
    assert np.mean(fdp) <= 0.1
    assert np.mean(used) < 0.5 * 20 * 300 and np.mean(found) > 0.8


def test_outcomes_keep_their_evidence():
    outcome = Outcome(2, "rejected", 30, 80.0, 0.0125, (0.1, 0.6))
    assert decide([outcome], alpha=0.05)[0].rejected and not decide([outcome], alpha=0.01)[0].rejected


def test_stop_thresholds_are_e_bh_s_and_under_e_lond_also_its_level_for_the_place():
    from lmdelta.stages.decide import e_lond
    from lmdelta.validate.sequential import E_LOND_GAMMA, stop_thresholds

    assert stop_thresholds(20, 0.05) == [400.0] * 20
    online = stop_thresholds(20, 0.05, online=True)
    assert online[0] == 400.0  # gamma_1 is large: e-BH's m/q is the binding threshold
    assert online[17] == pytest.approx(1 / (0.05 * E_LOND_GAMMA(18)))
    assert online[17] > 400.0 and online == sorted(online)
    e = np.ones(20)
    e[17] = online[17]  # at its own threshold, e-LOND rejects it with nothing before it
    assert e_lond(e, 0.05)[0][17]
    e[17] = 401.0  # past e-BH's threshold, short of e-LOND's
    assert not e_lond(e, 0.05)[0][17]


def test_online_rounds_keep_betting_until_e_lond_s_level():
    rng = np.random.default_rng(5)
    D = np.clip(rng.normal(0.25, 0.4, (20, 3000)), -1, 1)
    rounds = Rounds(16, 2.0)
    offline = run_rounds(D, ["b>a"] * 20, rounds, alpha=0.05)
    online = run_rounds(D, ["b>a"] * 20, rounds, alpha=0.05, online=True)
    assert all(o.reason == "rejected" for o in offline + online)
    assert online[17].e_value >= stop_thresholds_for(17) and online[17].n_prompts > offline[17].n_prompts


def stop_thresholds_for(place: int) -> float:
    from lmdelta.validate.sequential import stop_thresholds

    return stop_thresholds(20, 0.05, online=True)[place]


def test_a_standardized_min_effect_keeps_a_small_scale_difference_that_a_raw_one_gives_up():
    """A text property on a fixed [0, 1] scale: b's answers two words longer is a mean score difference of
    0.01 with SD 0.05 (a standardized effect of 0.2). A raw min_effect of 0.05 stops it as futile; the
    stage's standardized 0.1 (0.005 here) keeps betting and rejects it."""
    rng = np.random.default_rng(11)
    d = np.clip(rng.normal(0.01, 0.05, size=(1, 4000)), -1, 1)
    raw = run_rounds(d, ["b>a"], Rounds(16, 2.0), alpha=0.05, min_effect=0.05, futility_alpha=0.2)[0]
    scaled = run_rounds(d, ["b>a"], Rounds(16, 2.0), 0.05, 0.1, futility_alpha=0.2, standardized=True)[0]
    assert raw.reason == "futile"
    assert scaled.reason == "rejected" and scaled.n_prompts > raw.n_prompts
    null = np.clip(rng.normal(0.0, 0.05, size=(1, 4000)), -1, 1)
    assert run_rounds(null, ["b>a"], Rounds(16, 2.0), 0.05, 0.1, 0.2, standardized=True)[0].reason == "futile"


def test_the_bar_falls_as_hypotheses_settle_and_every_settled_one_is_rejected_by_e_bh():
    """settled_threshold: m/(q (s + 1)) after s have settled; whatever the unsettled ones end with, e-BH
    over the e-values at stopping rejects every hypothesis that stopped as "rejected"."""
    from lmdelta.validate.sequential import settled_threshold

    assert settled_threshold(20, 0.05, 0) == 400.0 and settled_threshold(20, 0.05, 3) == 100.0
    rng = np.random.default_rng(4)
    for _ in range(30):
        means = np.concatenate([rng.uniform(0.1, 0.5, 6), np.zeros(14)])
        D = np.clip(rng.normal(means[:, None], 0.4, (20, 600)), -1, 1)
        outcomes = decide(run_rounds(D, ["b>a"] * 20, Rounds(16, 2.0), 0.05, 0.1, 0.2, standardized=True), 0.05)
        assert all(o.rejected for o in outcomes if o.reason == "rejected")
        stopped = sorted(o.e_value for o in outcomes if o.reason == "rejected")
        assert all(e >= 20 / (0.05 * len(stopped)) for e in stopped)  # the last to settle met m/(q s) at least
