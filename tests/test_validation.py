"""validate_all on hand-made comparisons with known answers."""

import numpy as np
import pytest

from lmdelta.config import ValidateConfig
from lmdelta.pairdata import PairData, null_pair
from lmdelta.records import Hypothesis, Prompt, Sample
from lmdelta.stages.decide import decide
from lmdelta.config import RunConfig
from lmdelta.validation import add_baselines, per_prompt, validate_all, ValidationSet

CONFIG = ValidateConfig(n_resamples=2000, bootstrap=500, seed=0)


def make_pair(n_prompts=40, per_side=2, rate_a=0.1, rate_b=0.6, seed=0, groups=("g1", "g2")) -> PairData:
    rng = np.random.default_rng(seed)
    prompts, samples = [], []
    for p in range(n_prompts):
        split = "discovery" if p % 4 == 0 else "validation"
        prompts.append(Prompt(f"p{p}", f"prompt {p}", groups[p % len(groups)], split))
        for side, rate in (("a", rate_a), ("b", rate_b)):
            for k in range(per_side):
                text = "we sail the ocean today" if rng.random() < rate else "we walk the park today"
                samples.append(Sample(f"p{p}", side, k, text, 5, "stop", int(rng.integers(1 << 30)), f"{side}{p}{k}"))
    vectors = np.array([[1.0, 0.0] if "ocean" in s.text else [0.0, 1.0] for s in samples])
    return PairData(prompts, samples, vectors, {p.id: p.group for p in prompts})


OCEAN = Hypothesis("h1", "all", "b>a", "b mentions ocean", "keywords", "keyword", keywords=("ocean",), order=1)
PARK_A = Hypothesis("h2", "all", "a>b", "a mentions park", "keywords", "keyword", keywords=("park",), order=2)
GROUP = Hypothesis("h3", "g1", "b>a", "b mentions ocean in g1", "keywords", "keyword", keywords=("ocean",), order=3)


def test_a_real_difference_is_detected_with_sensible_effects():
    results = validate_all(make_pair(), [OCEAN, PARK_A], CONFIG, q=0.05)
    ocean, park = results
    assert ocean["p_value"] < 0.001 and park["p_value"] < 0.001
    assert 0.3 < ocean["effect"] < 0.7 and ocean["effect_ci"][0] < ocean["effect"] < ocean["effect_ci"][1]
    assert ocean["auc"] > 0.65 and park["auc"] > 0.65  # oriented in each hypothesis's direction
    assert ocean["prevalence_b"] > ocean["prevalence_a"]
    assert ocean["n_prompts"] == 30 and ocean["n_texts"] == 120 and ocean["n_dropped"] == 0
    assert "sign-flip" in ocean["test"] and "exchangeable" in ocean["assumption"]
    assert all("ocean" in e["text"] for e in ocean["examples"]["b"])


def test_no_difference_gives_uniformish_p_values():
    p_values = [validate_all(make_pair(rate_a=0.3, rate_b=0.3, seed=s), [OCEAN], CONFIG, q=0.05)[0]["p_value"]
                for s in range(60)]
    assert 0.25 < np.mean(p_values) < 0.75 and np.mean(np.array(p_values) < 0.05) < 0.15


def test_group_scope_and_generalisation_test():
    result = validate_all(make_pair(), [GROUP], CONFIG, q=0.05)[0]
    assert result["n_prompts"] == 10  # g1 holds the even prompts; every fourth one is discovery
    assert result["generalization_units"] == 20 and result["generalization_p"] < 0.05


def test_unequal_counts_use_the_within_prompt_permutation():
    data = make_pair()
    keep = [s for s in data.samples if not (s.side == "b" and s.index == 1 and s.prompt_id in {"p1", "p2"})]
    rows = [data.samples.index(s) for s in keep]
    data = PairData(data.prompts, keep, data.vectors[rows], data.groups)
    result = validate_all(data, [OCEAN], CONFIG, q=0.05)[0]
    assert "within-prompt label permutation" in result["test"] and result["p_value"] < 0.01


def test_unscorable_texts_are_dropped_and_counted():
    data = make_pair()
    data.vectors[5] = 0.0  # the embedding judge cannot score a zero vector
    proto = Hypothesis("h4", "all", "b>a", "ocean-like", "clusters", "embedding", prototype=(1.0, 0.0), order=4)
    result = validate_all(data, [proto], CONFIG, q=0.05)[0]
    assert result["n_dropped"] == (1 if data.prompt_by_id[data.samples[5].prompt_id].split == "validation" else 0)
    assert result["p_value"] < 0.01


def test_a_hypothesis_without_validation_data_is_marked_untested():
    orphan = Hypothesis("h5", "no-such-group", "b>a", "x", "keywords", "keyword", keywords=("ocean",), order=5)
    result = validate_all(make_pair(), [orphan], CONFIG, q=0.05)[0]
    assert result["n_prompts"] == 0 and np.isnan(result["p_value"]) and result["test"].startswith("not tested")
    decided = decide([{**result, "p_value": None}], RunConfig())
    assert decided[0]["validated"] is False


def test_baseline_auc_sees_the_word_difference():
    data = make_pair()
    results = validate_all(data, [OCEAN], CONFIG, q=0.05)
    add_baselines(results, data, seed=0)
    assert results[0]["baseline_auc"] > 0.6


def test_null_pair_splits_a_and_finds_nothing():
    data = make_pair(rate_a=0.3, rate_b=0.9)
    null = null_pair(data)
    assert {s.side for s in null.samples} == {"a", "b"} and len(null.samples) == len(data.samples) // 2
    result = validate_all(null, [OCEAN], CONFIG, q=0.05)[0]
    assert result["p_value"] > 0.01


def test_per_prompt_differences():
    data = make_pair(n_prompts=8)
    vs = ValidationSet.build(data)
    scores = np.array([1.0 if data.samples[i].side == "b" else 0.0 for i in vs.rows])
    d, count_a, count_b = per_prompt(scores, vs)
    assert np.all(d == 1.0) and np.all(count_a == 2) and np.all(count_b == 2)


def test_decisions_are_persisted_per_hypothesis():
    rows = [{"id": f"h{i}", "order": i, "p_value": p} for i, p in enumerate([1e-5, 0.01, 0.5, None, 0.03], start=1)]
    decided = decide(rows, RunConfig())
    assert [r["bh_reject"] for r in decided] == [True, True, False, False, True]  # m = 5 counts the untested
    assert [r["validated"] for r in decided] == [r["bh_reject"] for r in decided]
    assert all({"by_reject", "online_reject", "online_level", "q_value"} <= set(r) for r in decided)
    assert decided[0]["online_level"] == pytest.approx(0.00625 * 0.3837, rel=1e-3)  # SAFFRON: W0 * gamma_1


def test_score_lists_match_a_scan_per_prompt():
    """The one-sort grouping gives what a scan per prompt gives (that scan was quadratic in prompts)."""
    import types

    from lmdelta.validation import _score_lists

    rng = np.random.default_rng(11)
    for _ in range(100):
        n_prompts, n_rows = int(rng.integers(1, 30)), int(rng.integers(0, 120))
        vs = types.SimpleNamespace(prompt_of_row=rng.integers(0, n_prompts, n_rows), is_b=rng.random(n_rows) < 0.5)
        scores = rng.random(n_rows)
        scores[rng.random(n_rows) < 0.1] = np.nan
        prompts = np.flatnonzero(rng.random(n_prompts + 3) < 0.7)
        side_a, side_b = _score_lists(scores, vs, prompts)
        for p, got_a, got_b in zip(prompts, side_a, side_b, strict=True):
            here = (vs.prompt_of_row == p) & np.isfinite(scores)
            assert np.array_equal(got_a, scores[here & ~vs.is_b]) and np.array_equal(got_b, scores[here & vs.is_b])
