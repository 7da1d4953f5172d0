"""validate_all on hand-made comparisons with known answers."""

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_finding
from scipy import stats

from lmdelta.config import RunConfig, ValidateConfig, validate_config
from lmdelta.errors import ConfigError
from lmdelta.judges import embedding
from lmdelta.judges.inputs import JudgeInput
from lmdelta.pairdata import PairData, null_pair
from lmdelta.records import Hypothesis, Prompt, Sample
from lmdelta.stages.decide import decide
from lmdelta.stats import tests as st
from lmdelta.stats.effects import mean_ci, t_interval
from lmdelta.validate import findings, sets, significance
from lmdelta.validate.baseline import add_baselines
from lmdelta.validate.findings import clip_to_scores, validate_all
from lmdelta.validate.generalisation import judged_prompts
from lmdelta.validate.sets import ValidationSet, balanced_differences, per_prompt, score_lists, subsample_seed
from lmdelta.validate.significance import hypothesis_tests, paired_differences

CONFIG = ValidateConfig(n_resamples=2000, seed=0)


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
    assert ocean.p_value < 0.001 and park.p_value < 0.001
    assert 0.3 < ocean.effect < 0.7 and ocean.effect_ci[0] < ocean.effect < ocean.effect_ci[1]
    assert ocean.auc > 0.65 and park.auc > 0.65  # oriented in each hypothesis's direction
    assert ocean.prevalence_b > ocean.prevalence_a
    assert ocean.n_prompts == 30 and ocean.n_texts == 120 and ocean.n_dropped == 0
    assert "sign-flip" in ocean.test and "exchangeable" in ocean.assumption
    assert all("ocean" in e["text"] for e in ocean.examples["b"])


def test_no_difference_gives_uniformish_p_values():
    p_values = [
        validate_all(make_pair(rate_a=0.3, rate_b=0.3, seed=s), [OCEAN], CONFIG, q=0.05)[0].p_value for s in range(60)
    ]
    assert 0.25 < np.mean(p_values) < 0.75 and np.mean(np.array(p_values) < 0.05) < 0.15


def test_group_scope_and_generalisation_test():
    result = validate_all(make_pair(), [GROUP], CONFIG, q=0.05)[0]
    assert result.n_prompts == 10  # g1 holds the even prompts; every fourth one is discovery
    assert result.generalization_units == 20 and result.generalization_p < 0.05


def test_unequal_counts_keep_the_signflip_on_a_balanced_subsample():
    data = make_pair()
    keep = [s for s in data.samples if not (s.side == "b" and s.index == 1 and s.prompt_id in {"p1", "p2"})]
    rows = [data.samples.index(s) for s in keep]
    data = PairData(data.prompts, keep, data.vectors[rows], data.groups)
    result = validate_all(data, [OCEAN], CONFIG, q=0.05)[0]
    assert "sign-flip" in result.test and "seeded subsample" in result.test and result.p_value < 0.01
    assert result.n_subsample_dropped == 2 and result.n_texts == 118  # the effects keep every answer
    assert "within-prompt" not in result.test


def test_unscorable_texts_are_dropped_and_counted():
    data = make_pair()
    data.vectors[5] = 0.0  # the embedding judge cannot score a zero vector
    proto = Hypothesis("h4", "all", "b>a", "ocean-like", "clusters", "embedding", prototype=(1.0, 0.0), order=4)
    result = validate_all(data, [proto], CONFIG, q=0.05)[0]
    assert result.n_dropped == (1 if data.prompt_by_id[data.samples[5].prompt_id].split == "validation" else 0)
    assert result.p_value < 0.01


def test_a_hypothesis_without_validation_data_is_marked_untested():
    orphan = Hypothesis("h5", "no-such-group", "b>a", "x", "keywords", "keyword", keywords=("ocean",), order=5)
    result = validate_all(make_pair(), [orphan], CONFIG, q=0.05)[0]
    assert result.n_prompts == 0 and result.p_value is None and result.test.startswith("not tested")
    decided = decide([result], RunConfig())
    assert decided[0].validated is False


def test_baseline_auc_sees_the_word_difference():
    data = make_pair()
    results = add_baselines(validate_all(data, [OCEAN], CONFIG, q=0.05), data, seed=0)
    assert results[0].baseline_auc > 0.6


def test_a_large_scope_fits_its_baseline_on_a_seeded_sample_of_prompts(monkeypatch):
    from lmdelta.validate import baseline

    data = make_pair(n_prompts=120, per_side=2)
    seen: list[tuple[int, int]] = []
    real = baseline.bow_auc

    def spy(texts, is_b, prompt_index, seed, folds=5):
        seen.append((len(texts), len(set(prompt_index.tolist()))))
        return real(texts, is_b, prompt_index, seed, folds)

    monkeypatch.setattr(baseline, "bow_auc", spy)
    results = validate_all(data, [OCEAN], CONFIG, q=0.05)
    whole = add_baselines(results, data, seed=0)[0].baseline_auc
    monkeypatch.setattr(baseline, "BASELINE_PROMPTS", 30)
    sampled = [add_baselines(results, data, seed=0)[0].baseline_auc for _ in range(2)]
    assert seen[0][1] > 30 and seen[1] == seen[2] == (30 * 4, 30)  # every answer of 30 prompts, both sides
    assert sampled[0] == sampled[1] and sampled[0] > 0.6 and whole > 0.6


def test_null_pair_relabelling_finds_nothing():
    data = make_pair(rate_a=0.3, rate_b=0.9)
    null = null_pair(data, seed=0)
    assert {s.side for s in null.samples} == {"a", "b"} and len(null.samples) == len(data.samples)
    result = validate_all(null, [OCEAN], CONFIG, q=0.05)[0]
    assert result.p_value > 0.01


def test_per_prompt_differences():
    data = make_pair(n_prompts=8)
    vs = ValidationSet.build(data)
    scores = np.array([1.0 if data.samples[i].side == "b" else 0.0 for i in vs.rows])
    d, count_a, count_b = per_prompt(scores, vs)
    assert np.all(d == 1.0) and np.all(count_a == 2) and np.all(count_b == 2)


def test_decisions_are_persisted_per_hypothesis():
    rows = [make_finding(id=f"h{i}", order=i, p_value=p) for i, p in enumerate([1e-5, 0.01, 0.5, None, 0.03], start=1)]
    decided = decide(rows, RunConfig())
    assert [r.bh_reject for r in decided] == [True, True, False, False, True]  # m = 5 counts the untested
    assert [r.validated for r in decided] == [r.bh_reject for r in decided]
    assert all({"by_reject", "online_reject", "online_level", "q_value"} <= set(r.to_dict()) for r in decided)
    assert decided[0].online_level == pytest.approx(0.00625 * 0.3837, rel=1e-3)  # SAFFRON: W0 * gamma_1


def test_score_lists_match_a_scan_per_prompt():
    """The one-sort grouping gives what a scan per prompt gives (that scan was quadratic in prompts)."""
    import types

    rng = np.random.default_rng(11)
    for _ in range(100):
        n_prompts, n_rows = int(rng.integers(1, 30)), int(rng.integers(0, 120))
        vs = types.SimpleNamespace(prompt_of_row=rng.integers(0, n_prompts, n_rows), is_b=rng.random(n_rows) < 0.5)
        scores = rng.random(n_rows)
        scores[rng.random(n_rows) < 0.1] = np.nan
        prompts = np.flatnonzero(rng.random(n_prompts + 3) < 0.7)
        side_a, side_b = score_lists(scores, vs, prompts)
        for p, got_a, got_b in zip(prompts, side_a, side_b, strict=True):
            here = (vs.prompt_of_row == p) & np.isfinite(scores)
            assert np.array_equal(got_a, scores[here & ~vs.is_b]) and np.array_equal(got_b, scores[here & vs.is_b])


# --- unequal answer counts: the sign-flip on a seeded balanced subsample (audit H1) -------------


def grid(n_prompts, k_a, k_b):
    """A ValidationSet of n_prompts prompts with k_a answers of a and k_b of b each."""
    prompt_of_row = np.concatenate([np.repeat(np.arange(n_prompts), k_a), np.repeat(np.arange(n_prompts), k_b)])
    is_b = np.concatenate([np.zeros(n_prompts * k_a, bool), np.ones(n_prompts * k_b, bool)])
    return ValidationSet(
        rows=np.arange(prompt_of_row.size),
        prompt_ids=[f"p{i}" for i in range(n_prompts)],
        prompt_of_row=prompt_of_row,
        is_b=is_b,
        groups=np.array(["all"] * n_prompts),
    )


def weak_null_scores(rng, n_sets, vs, icc=0.9, interaction=0.5, nan_rate=0.05):
    """Judge scores under a weak null: a prompt x side interaction with mean zero, some scores unscorable."""
    n_prompts = len(vs.prompt_ids)
    u = rng.normal(0.0, np.sqrt(icc), (n_sets, n_prompts))
    v = rng.normal(0.0, interaction, (n_sets, n_prompts))
    latent = (
        u[:, vs.prompt_of_row]
        + v[:, vs.prompt_of_row] * vs.is_b
        + rng.normal(0.0, np.sqrt(1 - icc), (n_sets, vs.prompt_of_row.size))
    )
    scores = 1.0 / (1.0 + np.exp(-latent))
    scores[rng.random(scores.shape) < nan_rate] = np.nan
    return scores


def test_unequal_counts_under_a_weak_null_keep_the_type_one_error():
    """One unscorable answer in 20 used to switch to the within-prompt permutation, which rejected
    0.2 of these true nulls at alpha 0.05 (audit H1); the balanced sign-flip stays near 0.05."""
    vs = grid(20, 4, 4)
    scores = list(weak_null_scores(np.random.default_rng(5), 600, vs))
    hyps = [
        Hypothesis(f"h{i}", "all", "b>a", f"null {i}", "p", "keyword", keywords=(f"w{i}",)) for i in range(len(scores))
    ]
    config = ValidateConfig(seed=3)
    found = hypothesis_tests(
        scores, paired_differences(scores, hyps, vs, config), [vs.scope("all")] * len(hyps), hyps, vs, config, 1000
    )
    p = np.array([r["p_value"] for r in found])
    assert all("sign-flip" in r["test"] for r in found)
    assert np.mean(p <= 0.05) < 0.085  # binomial sd at 600 draws: 0.009


def test_equal_counts_give_the_same_tests_as_before():
    """With equal counts nothing is subsampled: p-values and statistics equal the previous code's
    (recorded before the change), to the last bit. Re-recorded when the Monte Carlo signs came to be drawn a block
    of resamples at a time (validate VERSION 8): the p-values moved by Monte Carlo error (0.716 -> 0.712,
    0.130 -> 0.139, 0.127 -> 0.147 at R = 2,000), the statistics not at all. Re-recorded when each row's statistic
    came to be summed over its own prompts (no longer over the widest row's, zeros after): two statistics moved
    in the last bit (0.03333333333333333 -> 0.033333333333333326), no p-value."""
    config = ValidateConfig(n_resamples=2000, seed=7)
    g2 = Hypothesis("h6", "g2", "a>b", "a mentions park in g2", "keywords", "keyword", keywords=("park",), order=6)
    before = {  # (n_prompts, per_side, id): (statistic, p_value, n_prompts, generalization_p)
        (40, 2, "h1"): (-0.016666666666666666, 0.7116441779110445, 30, None),
        (40, 2, "h2"): (0.016666666666666666, 0.7116441779110445, 30, None),
        (40, 2, "h3"): (0.05, 0.5, 10, 0.8150924537731135),
        (40, 2, "h6"): (0.05, 0.8150924537731135, 20, 0.5),
        (120, 3, "h1"): (0.04814814814814815, 0.13943028485757122, 90, None),
        (120, 3, "h2"): (-0.048148148148148155, 0.13943028485757122, 90, None),
        (120, 3, "h3"): (0.033333333333333326, 0.3888055972013993, 30, 0.14742628685657172),
        (120, 3, "h6"): (-0.05555555555555556, 0.14742628685657172, 60, 0.3888055972013993),
    }
    for n_prompts, per_side in ((40, 2), (120, 3)):
        data = make_pair(n_prompts=n_prompts, per_side=per_side, rate_a=0.3, rate_b=0.36, seed=3)
        for r in validate_all(data, [OCEAN, PARK_A, GROUP, g2], config, q=0.05):
            assert (r.statistic, r.p_value, r.n_prompts, r.generalization_p) == before[(n_prompts, per_side, r.id)]
            assert r.n_subsample_dropped == 0 and "subsample" not in r.test


def test_balanced_differences_equal_per_prompt_when_counts_are_equal():
    rng = np.random.default_rng(8)
    vs = grid(30, 3, 3)
    scores = np.round(rng.random((12, vs.prompt_of_row.size)), 2)
    scores[0, :3] = np.nan  # prompt 0 loses its a answers: no difference there, nothing drawn
    D, dropped = balanced_differences(scores, vs, list(range(12)))
    for h in range(12):
        assert np.array_equal(D[h], per_prompt(scores[h], vs)[0], equal_nan=True)
    assert not dropped.any()


def test_balanced_subsample_is_a_subset_of_min_count_reproducible_and_per_hypothesis():
    rng = np.random.default_rng(9)
    vs = grid(15, 2, 4)
    scores = np.round(rng.random((6, vs.prompt_of_row.size)), 3)
    scores[rng.random(scores.shape) < 0.15] = np.nan
    seeds = [subsample_seed(0, f"h{h}") for h in range(6)]
    D, dropped = balanced_differences(scores, vs, seeds)
    for h, p in itertools.product(range(6), range(15)):
        here = vs.prompt_of_row == p
        a = scores[h, here & ~vs.is_b]
        b = scores[h, here & vs.is_b]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        k = min(a.size, b.size)
        if k == 0:
            assert np.isnan(D[h, p]) and dropped[h, p] == 0
            continue
        means_a = {np.mean(c) for c in itertools.combinations(a, k)}
        means_b = {np.mean(c) for c in itertools.combinations(b, k)}
        assert any(np.isclose(D[h, p], mb - ma) for ma in means_a for mb in means_b)
        assert dropped[h, p] == a.size + b.size - 2 * k
    again, _ = balanced_differences(scores[3:5], vs, seeds[3:5])  # a hypothesis draws the same alone
    assert np.array_equal(again, D[3:5], equal_nan=True)
    other, _ = balanced_differences(scores, vs, [subsample_seed(1, f"h{h}") for h in range(6)])
    assert not np.array_equal(other, D, equal_nan=True)  # the seed matters
    assert subsample_seed(0, "h1") != subsample_seed(0, "h2")


def test_balanced_differences_do_not_depend_on_the_block_size(monkeypatch):
    rng = np.random.default_rng(10)
    vs = grid(12, 3, 2)
    scores = rng.random((7, vs.prompt_of_row.size))
    scores[rng.random(scores.shape) < 0.2] = np.nan
    expected = balanced_differences(scores, vs, list(range(7)))
    monkeypatch.setattr(sets, "_BLOCK_ELEMENTS", 1)  # one hypothesis per block
    for got, want in zip(balanced_differences(scores, vs, list(range(7))), expected):
        assert np.array_equal(got, want, equal_nan=True)
    monkeypatch.setattr(sets, "_BLOCK_ELEMENTS", 3 * vs.prompt_of_row.size)  # three per block, the last short
    for got, want in zip(balanced_differences(list(scores), vs, list(range(7))), expected):  # rows, never stacked
        assert np.array_equal(got, want, equal_nan=True)


def test_wilcoxon_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="wilcoxon was removed.*median.*signflip"):
        validate_config({"validate": {"test": "wilcoxon"}})
    assert validate_config({"validate": {"test": "signflip"}}).validate.test == "signflip"


# --- effect sizes in the result rows (audit M2, L4) ---------------------------------------------


def test_effect_interval_is_the_t_interval_over_prompts():
    data = make_pair(rate_a=0.3, rate_b=0.5, seed=4)
    result = validate_all(data, [OCEAN], CONFIG, q=0.05)[0]
    vs = ValidationSet.build(data)
    scores = np.array([1.0 if "ocean" in data.samples[i].text else 0.0 for i in vs.rows])
    d = per_prompt(scores, vs)[0]
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    assert result.effect == pytest.approx(d.mean())
    assert result.effect_ci == pytest.approx([d.mean() - half, d.mean() + half])
    assert result.effect_se == pytest.approx(d.std(ddof=1) / np.sqrt(d.size)) and result.effect_df == d.size - 1
    assert result.effect_ci_note is None and result.ci_level == 0.95
    assert result.auc_ci[0] < result.auc < result.auc_ci[1] and result.auc_ci_note is None


def test_prevalence_intervals_for_presence_judges_only():
    data = make_pair(rate_a=0.05, rate_b=0.5, seed=2)
    ocean = validate_all(data, [OCEAN], CONFIG, q=0.05)[0]
    for side in ("a", "b"):
        low, high = getattr(ocean, f"prevalence_{side}_ci")
        assert 0.0 <= low <= getattr(ocean, f"prevalence_{side}") <= high <= 1.0
    assert ocean.prevalence_ci_note is None
    proto = Hypothesis("h4", "all", "b>a", "ocean-like", "clusters", "embedding", prototype=(1.0, 0.0), order=4)
    embedded = validate_all(data, [proto], CONFIG, q=0.05)[0]
    assert embedded.prevalence_a is None and embedded.prevalence_a_ci == [None, None]


def test_one_prompt_gives_no_interval_and_says_why():
    data = make_pair(n_prompts=5, seed=1, groups=("g1", "g2", "g3", "g4"))
    g2 = Hypothesis("h7", "g2", "b>a", "b mentions ocean in g2", "keywords", "keyword", keywords=("ocean",), order=7)
    result = validate_all(data, [g2], CONFIG, q=0.05)[0]
    assert result.n_prompts == 1  # g2 holds prompt 1 only
    assert result.effect_ci[0] is None and "one prompt" in result.effect_ci_note
    assert result.auc_ci[0] is None and "at least 5" in result.auc_ci_note


def test_unaligned_corpora_report_welch_and_text_level_intervals():
    rng = np.random.default_rng(6)
    prompts, samples = [], []
    for p in range(80):
        side = "a" if p % 2 else "b"
        prompts.append(Prompt(f"p{p}", f"prompt {p}", "all", "validation" if p % 5 else "discovery"))
        text = "we sail the ocean" if rng.random() < (0.6 if side == "b" else 0.2) else "we walk the park"
        samples.append(Sample(f"p{p}", side, 0, text, 5, "stop", p, f"{side}{p}"))
    vectors = np.array([[1.0, 0.0] if "ocean" in s.text else [0.0, 1.0] for s in samples])
    result = validate_all(PairData(prompts, samples, vectors, {p.id: "all" for p in prompts}), [OCEAN], CONFIG, 0.05)[0]
    assert result.unit == "text" and result.effect_ci[0] < result.effect < result.effect_ci[1]
    assert result.effect_df > 1 and result.auc_ci_note is None and result.n_subsample_dropped == 0
    assert result.prevalence_b_ci[0] <= result.prevalence_b <= result.prevalence_b_ci[1]


# --- selection-adjusted intervals for validated findings (audit M1) -----------------------------


def test_validated_rows_get_fcr_adjusted_intervals():
    rows = [
        {"id": f"h{i}", "order": i, "p_value": p, "effect": 0.2, "effect_se": 0.05, "effect_df": 9.0}
        for i, p in enumerate([1e-5, 0.01, 0.5, None, 0.03], start=1)
    ]
    rows[1].update(effect_se=None, effect_df=None)  # an old results file, or no interval possible
    decided = decide([make_finding(**row) for row in rows], RunConfig())
    assert [r.validated for r in decided] == [True, True, False, False, True]
    level = 1 - 3 * 0.05 / 4  # R = 3 validated of m = 4 tested (the untested one is not selectable)
    assert decided[0].fcr_level == pytest.approx(level)
    assert decided[0].effect_ci_fcr == pytest.approx(list(t_interval(0.2, 0.05, 9.0, level)))
    assert decided[0].effect_ci_fcr[1] - decided[0].effect_ci_fcr[0] > 2 * 2.262 * 0.05  # wider than 95 %
    assert decided[1].effect_ci_fcr is None and decided[1].fcr_level == pytest.approx(level)
    assert decided[2].effect_ci_fcr is None and decided[2].fcr_level is None
    assert all(r.effect_ci_fcr is None for r in decide([make_finding(**{**rows[2], "order": 1})], RunConfig()))


def test_fcr_intervals_cover_the_selected_effects():
    """Selected by BH, plain 95 % intervals miss the truth too often (the winner's curse); the
    FCR-adjusted ones keep the miss rate among the selected at about alpha or below."""
    rng = np.random.default_rng(12)
    plain, adjusted = [], []
    for stream in range(40):
        truth = np.where(rng.random(100) < 0.4, rng.uniform(0.02, 0.2, 100), 0.0)
        D = truth[:, None] + rng.normal(0.0, 0.3, (100, 15))
        _, p = st.paired_signflip_many(D, None, "greater", 2000, stream)
        rows = []
        for i in range(100):
            est = mean_ci(D[i])
            rows.append(
                make_finding(
                    id=f"h{i}",
                    order=i,
                    p_value=float(p[i]),
                    effect=est.value,
                    effect_se=est.se,
                    effect_df=est.df,
                    effect_ci=[est.low, est.high],
                )
            )
        for r in decide(rows, RunConfig()):
            if r.validated:
                plain.append(r.effect_ci[0] <= truth[r.order] <= r.effect_ci[1])
                adjusted.append(r.effect_ci_fcr[0] <= truth[r.order] <= r.effect_ci_fcr[1])
    assert len(adjusted) > 120
    assert np.mean(plain) < 0.85 and np.mean(adjusted) >= 0.93


# --- secondary families: generalisation and generative tests (audit M3, L1) ---------------------


def test_generalisation_and_generative_p_values_form_their_own_bh_families():
    """Both used to be shown uncorrected, in no family. Now each is BH at q over the tests of its kind
    in the comparison; rows without that test get None; the primary decision is untouched."""
    gen = [0.001, 0.02, 0.04, None, 0.5]
    generative = [None, 0.2, 0.001, 0.004, None]
    rows = [
        {"id": f"h{i}", "order": i, "p_value": p, "generalization_p": g, "generative_p": s}
        for i, (p, g, s) in enumerate(zip([1e-5, 0.01, 0.5, None, 0.03], gen, generative), start=1)
    ]
    decided = decide([make_finding(**row) for row in rows], RunConfig())
    assert [r.generalization_validated for r in decided] == [True, True, False, None, False]
    assert [r.generalization_q for r in decided] == pytest.approx([0.004, 0.04, 0.16 / 3, None, 0.5])
    assert [r.generative_validated for r in decided] == [None, False, True, True, None]
    assert [r.generative_q for r in decided] == pytest.approx([None, 0.2, 0.003, 0.006, None])
    checked = stats.false_discovery_control([0.001, 0.02, 0.04, 0.5])
    assert [r.generalization_q for r in decided if r.generalization_q is not None] == pytest.approx(checked)
    alone = decide([make_finding(**{k: v for k, v in r.items() if not k.startswith("gen")}) for r in rows], RunConfig())
    assert [r.validated for r in decided] == [r.validated for r in alone] == [True, True, False, False, True]
    assert all(r.generalization_q is None and r.generative_validated is None for r in alone)


def test_the_generalisation_family_is_per_comparison_and_at_decide_q():
    rows = [make_finding(id=f"h{i}", order=i, p_value=0.5, generalization_p=p) for i, p in enumerate([0.03, 0.04])]
    strict = decide(rows, RunConfig.model_validate({"decide": {"q": 0.01}}))
    loose = decide(rows, RunConfig.model_validate({"decide": {"q": 0.1}}))
    assert [r.generalization_validated for r in strict] == [False, False]
    assert [r.generalization_validated for r in loose] == [True, True]


def test_group_hypotheses_get_decided_generalisation_tests_end_to_end():
    results = validate_all(make_pair(), [OCEAN, GROUP], CONFIG, q=0.05)
    decided = {r.id: r for r in decide(results, RunConfig())}
    assert decided["h1"].generalization_p is None and decided["h1"].generalization_q is None
    assert decided["h3"].generalization_q == pytest.approx(decided["h3"].generalization_p)  # m = 1
    assert decided["h3"].generalization_validated is True


# --- which prompts an LLM judge scores (audit M3) -------------------------------------------------


def test_llm_judged_prompts_add_a_seeded_capped_sample_of_other_groups():
    data = make_pair(n_prompts=60, groups=("g1", "g2", "g3"))
    vs = ValidationSet.build(data)
    llm_group = Hypothesis("h8", "g1", "b>a", "d", "llm", "llm", property="mentions the ocean", order=8)
    llm_all = Hypothesis("h9", "all", "b>a", "d", "llm", "llm", property="mentions the ocean", order=9)
    masks = judged_prompts([llm_group, llm_all], vs, CONFIG)
    inside, outside = vs.scope("g1"), vs.scope("g1", inside=False)
    assert np.array_equal(masks[0] & inside, inside) and (masks[0] & outside).sum() == inside.sum() == 15
    assert np.array_equal(masks[1], vs.scope("all"))
    again = judged_prompts([llm_group], vs, CONFIG)[0]
    assert np.array_equal(again, masks[0])  # the same sample, whatever else is tested
    other_seed = judged_prompts([llm_group], vs, ValidateConfig(n_resamples=2000, seed=1))[0]
    assert not np.array_equal(other_seed, masks[0])
    off = judged_prompts([llm_group], vs, ValidateConfig(generalization=False, seed=0))[0]
    assert np.array_equal(off, inside)
    small = make_pair(n_prompts=60, groups=("g1", "g1", "g1", "g1", "g1", "g2"))  # few prompts outside g1
    vs_small = ValidationSet.build(small)
    cap = judged_prompts([llm_group], vs_small, CONFIG)[0]
    assert (cap & vs_small.scope("g1", inside=False)).sum() == vs_small.scope("g1", inside=False).sum()


def test_an_llm_judged_group_hypothesis_is_generalised_on_the_sampled_prompts_only():
    data = make_pair(n_prompts=60, groups=("g1", "g2", "g3"))
    llm_group = Hypothesis("h8", "g1", "b>a", "d", "llm", "llm", property="mentions the ocean", order=8)
    asked = []

    def ask(requests, parse):
        asked.extend(requests)
        return [
            (
                SimpleNamespace(ok=True, text="x", logprobs=None),
                0.9
                if "ocean" in r.messages[-1].content.split("Property:")[1]
                and "sail the ocean" in r.messages[-1].content
                else 0.1,
            )
            for r in requests
        ]

    result = validate_all(data, [llm_group], CONFIG, q=0.05, llm_ask=ask)[0]
    assert result.n_prompts == 15 and result.generalization_units == 15
    assert result.generalization_p < 0.05 and len(asked) == 2 * 15 * 4  # 4 texts a prompt, in and out of g1


def test_effect_intervals_stay_on_the_score_scale():
    assert clip_to_scores([0.82, 1.07]) == [0.82, 1.0]
    assert clip_to_scores([-1.3, -0.2]) == [-1.0, -0.2]
    assert clip_to_scores([None, None]) == [None, None]


# --- review 2026-12: content-keyed subsample, the unit named by the row, one smallest-p rule ---------


def uneven_pair(n_prompts=14, seed=5) -> PairData:
    """4 a answers against 2 b answers a prompt, so every prompt is balanced by a drawn subsample."""
    rng = np.random.default_rng(seed)
    prompts, samples = [], []
    for p in range(n_prompts):
        prompts.append(Prompt(f"p{p}", f"prompt {p}", "all", "validation"))
        for side, k, rate in (("a", 4, 0.3), ("b", 2, 0.5)):
            for j in range(k):
                word = "ocean" if rng.random() < rate else "park"
                samples.append(Sample(f"p{p}", side, j, f"{side} {p} {j} the {word}", 4, "stop", j, f"{side}{p}{j}"))
    return PairData(prompts, samples, rng.normal(size=(len(samples), 3)), {p.id: "all" for p in prompts})


def test_the_subsample_follows_the_hypothesis_not_its_id_or_place():
    """Seeded by the positional id, the same hypothesis got p from 0.0039 to 0.078 as h001..h005."""
    data, config = uneven_pair(), ValidateConfig(n_resamples=20000, seed=0, generalization=False, baseline=False)

    def ocean_after(n_before):
        fillers = [
            Hypothesis(
                f"h{i + 1:03d}",
                "all",
                "b>a",
                f"filler {i}",
                "keywords",
                "keyword",
                keywords=(f"filler{i}",),
                order=i + 1,
            )
            for i in range(n_before)
        ]
        ocean = Hypothesis(
            f"h{n_before + 1:03d}",
            "all",
            "b>a",
            "b mentions ocean",
            "keywords",
            "keyword",
            keywords=("ocean",),
            property="uses “ocean”",
            order=n_before + 1,
        )
        row = validate_all(data, fillers + [ocean], config, 0.05)[-1]
        return row.p_value, row.statistic, row.n_subsample_dropped

    found = [ocean_after(n) for n in range(5)]
    assert found[0][2] > 0 and len(set(found)) == 1


def test_the_content_key_leaves_out_id_order_and_labels_but_not_the_claim():
    base = Hypothesis(
        "h1",
        "g1",
        "b>a",
        "tuned uses “ocean”",
        "keywords",
        "keyword",
        keywords=("ocean",),
        property="uses “ocean”",
        prototype=(0.1234567891,),
        order=1,
    )
    same = Hypothesis(
        "h9",
        "g1",
        "b>a",
        "relabelled b uses “ocean”",
        "keywords",
        "keyword",
        keywords=("ocean",),
        property="uses “ocean”",
        prototype=(0.1234567891,),
        order=9,
    )
    assert base.content_key() == same.content_key() == Hypothesis.from_dict(base.to_dict()).content_key()
    for change in (
        {"direction": "a>b"},
        {"group": "g2"},
        {"judge": "embedding"},
        {"keywords": ("sea",)},
        {"property": "uses “sea”"},
        {"prototype": (0.2,)},
    ):
        assert Hypothesis(**{**base.__dict__, **change}).content_key() != base.content_key()
    assert subsample_seed(0, base.content_key()) == subsample_seed(0, same.content_key())


def test_the_assumption_follows_the_rows_unit():
    assumption = findings._assumption
    assert assumption("none", True) == "none" and "independent draws" in assumption("text", False)
    assert "per-prompt differences" in assumption("prompt", True)
    assert "per-cluster differences" in assumption("cluster", True)
    assert "exchangeable between the sides" in assumption("cluster", False)


def test_the_signflip_row_names_its_unit_and_smallest_p():
    row = significance._signflip_result(0.2, 0.03, 5, 0, 2000, "cluster")
    assert row["unit"] == "cluster" and row["test"].startswith("paired sign-flip randomization test over clusters")
    assert "all 2^5 sign vectors" in row["test"] and row["smallest_p"] == 2.0**-5
    big = significance._signflip_result(0.2, 0.03, 12, 3, 2000)
    assert big["unit"] == "prompt" and "Monte Carlo, R=2000" in big["test"] and big["smallest_p"] == 1 / 2001
    assert "per prompt (3 left out" in big["test"]


class _Unread(np.ndarray):
    """Vectors that fail when any row is read (validation by keyword judges must not read them)."""

    def __getitem__(self, key):
        found = super().__getitem__(key)
        if np.asarray(found).size:
            raise AssertionError(f"vectors read: {key!r}")
        return found


def test_keyword_judges_read_no_vectors_and_the_embedding_judge_reads_them():
    """At 700,000 validation prompts, copying the validation texts' vectors costs 0.9 GB of resident memory;
    only a judge that reads them (the embedding judge) gets them."""
    data = make_pair()
    plain = validate_all(data, [OCEAN, PARK_A], CONFIG, q=0.05)
    data.vectors = np.asarray(data.vectors).view(_Unread)
    assert validate_all(data, [OCEAN, PARK_A], CONFIG, q=0.05) == plain
    prototype = Hypothesis("h4", "all", "b>a", "b near ocean", "clusters", "embedding", prototype=(1.0, 0.0), order=4)
    with pytest.raises(AssertionError, match="vectors read"):
        validate_all(data, [OCEAN, prototype], CONFIG, q=0.05)
    data.vectors = np.asarray(data.vectors)
    found = validate_all(data, [OCEAN, prototype], CONFIG, q=0.05)
    assert found[1].p_value < 0.001 and found[0] == plain[0]


def test_the_embedding_judge_refuses_vectors_that_do_not_match_the_texts():
    near = Hypothesis("h4", "all", "b>a", "b near ocean", "clusters", "embedding", prototype=(1.0, 0.0), order=4)
    with pytest.raises(ValueError, match="2 vectors for 3 texts"):
        embedding.score([near], JudgeInput(["a", "b", "c"], np.ones((2, 2))))
