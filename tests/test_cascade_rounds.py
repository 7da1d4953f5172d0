"""The judge cascade in sequential mode (validate.cascade_rounds): PPI++ terms that are unbiased for the strong
judge's mean whatever the cheap judge says, bounded, predictable; their e-process's type-I error with a cheap
judge leaning to b (seeded simulations, fast); and the rounds end to end on fake models."""

import json

import numpy as np
import pytest
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.config import ValidateConfig, load_config
from lmdelta.records import Hypothesis
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.stats.sequential import betting_test
from lmdelta.validate.cascade import StrongJudge
from lmdelta.validate.cascade_rounds import CascadeRounds, Strong, bound, label_share, ppi_terms


def test_each_term_has_the_strong_judges_mean_over_the_labelling_coins():
    rng = np.random.default_rng(0)
    c = rng.choice([-1.0, 0.0, 1.0], 40)
    s = np.clip(c + rng.choice([-1.0, 0.0, 1.0], 40, p=[0.1, 0.7, 0.2]), -1, 1)
    draws = np.array([ppi_terms(c, np.where(xi, s, np.nan), xi, 0.3) for xi in rng.random((20000, 40)) < 0.3])
    assert np.abs(draws.mean(axis=0) - s).max() < 0.06  # E[y_p] = s_p, the cheap judge's c_p cancels


def test_terms_stay_within_their_bound_and_use_only_earlier_prompts():
    rng = np.random.default_rng(1)
    for pi in (0.05, 0.1, 0.5, 1.0):
        for _ in range(50):
            c, s = rng.choice([-1.0, 1.0], 60), rng.choice([-1.0, 1.0], 60)
            xi = np.ones(60, dtype=bool) if pi == 1.0 else rng.random(60) < pi
            y = ppi_terms(c, np.where(xi, s, np.nan), xi, pi)
            assert np.abs(y).max() <= bound(pi) + 1e-12
    assert bound(1.0) == 1.0 and bound(0.1) == pytest.approx(28.0) and bound(0.9) == 2.0
    c, s, xi = rng.choice([-1.0, 1.0], 30), rng.choice([-1.0, 1.0], 30), rng.random(30) < 0.5
    later = c.copy(), s.copy()
    later[0][20:], later[1][20:] = -later[0][20:], -later[1][20:]
    first, changed = ppi_terms(c, s, xi, 0.5), ppi_terms(later[0], later[1], xi, 0.5)
    assert np.array_equal(first[:20], changed[:20]) and not np.array_equal(first[20:], changed[20:])


def test_a_labelled_prompt_needs_a_strong_difference_and_a_failed_one_counts_against_the_hypothesis():
    with pytest.raises(ValueError, match="least favourable"):
        ppi_terms(np.array([1.0, 1.0]), np.array([1.0, np.nan]), np.array([True, True]), 1.0)
    # pi = 1 (small scopes): every prompt labelled, and a strong judge that failed on the last one
    rounds = CascadeRounds(strong_judge_stub(), ValidateConfig(strong_share=1.0, seed=0))
    h = Hypothesis("h1", "all", "b>a", "d", "keyword", "keyword", keywords=("x",))
    state = Strong(pi=1.0, differences={"p0": -1.0, "p1": -1.0, "p2": -1.0, "p3": np.nan})
    d, spread = rounds.evidence(h, state, ["p0", "p1", "p2", "p3", "p4"], np.array([-1.0, -1.0, -1.0, 1.0, np.nan]))
    assert d[:4].tolist() == [-1.0, -1.0, -1.0, -1.0] and np.isnan(d[4])  # y = s, the failure at -1; within [-1, 1]
    assert state.read is not None and state.read[2].tolist() == [True, True, True, False]  # 3 usable labels
    assert spread == pytest.approx(0.0)


def strong_judge_stub():
    return StrongJudge(ask=lambda requests, parse: [], model="fake/none")


def test_pi_follows_strong_share_with_at_least_twenty_expected_labels():
    config = ValidateConfig(strong_share=0.1)
    assert label_share(config, 1000) == 0.1 and label_share(config, 100) == 0.2 and label_share(config, 12) == 1.0


def test_a_cheap_judge_leaning_to_b_does_not_make_the_e_process_reject_a_null():
    """The strong judge sees no difference; the cheap one agrees with it on 70% of prompts and otherwise says b
    (alone, it would reject every time). Rejection at e >= 20 after any of 400 prompts, 300 data sets."""
    rng = np.random.default_rng(7)
    hits, cheap_alone = 0, 0
    for _ in range(300):
        s = rng.choice([-1.0, 0.0, 1.0], 400, p=[0.2, 0.6, 0.2])
        c = np.where(rng.random(400) < 0.7, s, 1.0)
        xi = rng.random(400) < 0.1
        y = ppi_terms(c, np.where(xi, s, np.nan), xi, 0.1)
        hits += betting_test(y / bound(0.1)).capital.max() >= 20
        cheap_alone += betting_test(c).capital.max() >= 20
    assert hits / 300 <= 0.05 and cheap_alone / 300 > 0.9


STRONG_B = {"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.6}}


def test_the_cascade_runs_in_rounds_end_to_end_on_fake_models(tmp_path):
    overrides = ["llm.strong_judge.model=fake/keywords", "validate.strong_share=0.3", "validate.mode=sequential"]
    config = load_config(fake_config(tmp_path, per_group=60, generate__b=STRONG_B), overrides)
    run = RunDir(tmp_path / "run")
    pipeline.run(config, run)
    rows = [r for r in read_jsonl(run.root / "hypotheses.jsonl") if r["n_units"]]
    assert rows and all(r["test"].startswith("betting e-process on PPI++ terms") for r in rows)
    assert all(r["procedure"] == "e-BH" and r["strong_calls"] > 0 and r["strong_prompts"] > 0 for r in rows)
    ocean = [r for r in rows if r["validated"] and "ocean" in (r.get("keywords") or [])]
    assert ocean and ocean[0]["cascade_agreement"]["sign_agreement"] == 1.0
    low, high = ocean[0]["confidence_sequence"]
    assert low <= ocean[0]["effect"] <= high and -1.0 <= low and high <= 1.0
    counts = run.load_manifest().stages["validate"].counts
    assert counts["main"]["strong_calls"] == sum(r["strong_calls"] for r in rows)
    summary = json.loads(run.summary_path.read_text())
    assert summary["judge_calls"]["llm"]["validate/strong_judge"] > 0
    log = list(read_jsonl(run.stage_file("validate", "rounds.jsonl")))
    assert log[-1]["judge_calls"] >= counts["main"]["strong_calls"]
