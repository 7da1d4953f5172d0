"""Unaligned corpora: whole clusters as the unit when texts share one (corpus.columns.cluster), and a
warning when texts look clustered without it (statistics audit 2026-12-01, M6)."""

import numpy as np
import pytest

from lmdelta import judges
from lmdelta.config import ValidateConfig
from lmdelta.hashing import child_seed
from lmdelta.pairdata import PairData, null_pair
from lmdelta.records import Hypothesis, Prompt, Sample
from lmdelta.stats import cluster_tests, effects
from lmdelta.stats import tests as st
from lmdelta.validate import texts
from lmdelta.validate.findings import validate_all
from lmdelta.validate.sets import ValidationSet
from lmdelta.validate.texts import clustering_warning, near_duplicate_share, text_effects, text_test

CONFIG = ValidateConfig(n_resamples=2000, seed=0)


def along_first_axis(data, hypothesis_id="h1", direction="b>a"):
    """An embedding-judged hypothesis whose score is (first coordinate of the unit vector + 1) / 2."""
    prototype = (1.0,) + (0.0,) * (data.vectors.shape[1] - 1)
    return Hypothesis(hypothesis_id, "all", direction, "differs", "clusters", "embedding", prototype=prototype, order=1)


def first_axis_scores(data, vs):
    """The judge's scores of the validation rows (the embedding judge that validate_all runs)."""
    return judges.score(along_first_axis(data), [], data.vectors[vs.rows])


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def hidden_clusters(rng, n_clusters, per_cluster, icc=0.5, shift=0.0):
    """The audit's design (sim_unaligned.py): each side's texts come from its own hidden prompts;
    latent = prompt effect + text noise, ICC `icc`. Returns scores, is_b and the cluster of each text."""
    u = rng.normal(0.0, np.sqrt(icc), (2 * n_clusters, 1))
    latent = u + rng.normal(0.0, np.sqrt(1 - icc), (2 * n_clusters, per_cluster))
    latent[n_clusters:] += shift
    clusters = np.repeat(np.arange(2 * n_clusters), per_cluster)
    return expit(latent).ravel(), clusters >= n_clusters, clusters


def unaligned_pair(rng, n_clusters=40, per_cluster=5, icc=0.5, dim=16, near_copies=False):
    """An unaligned PairData whose units are clusters (per_cluster texts of one side each) or, with
    per_cluster=1, single texts. Embedding vectors carry the score in their first coordinate; with
    near_copies, consecutive pairs of single texts get almost the same vector."""
    scores, is_b, clusters = hidden_clusters(rng, n_clusters, per_cluster, icc)
    prompts = [Prompt(f"c-{c}", "", "all", "validation") for c in range(2 * n_clusters)]
    samples = [
        Sample(f"c-{c}", "b" if b else "a", i % per_cluster, f"text {i}", 5, "stop", i, f"k{i}")
        for i, (b, c) in enumerate(zip(is_b, clusters))
    ]
    noise = rng.normal(size=(scores.size, dim))
    if near_copies:
        noise[1::2] = noise[0::2] + 0.05 * rng.normal(size=noise[1::2].shape)
    vectors = np.column_stack([2 * scores - 1, noise])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return PairData(prompts, samples, vectors, {p.id: "all" for p in prompts})


# --- the test and its unit ----------------------------------------------------------------------


def test_cluster_units_give_the_cluster_permutation_with_its_unit_named():
    data = unaligned_pair(np.random.default_rng(1))
    vs = ValidationSet.build(data)
    assert not vs.aligned and vs.clustered
    result = validate_all(data, [along_first_axis(data)], CONFIG, q=0.05)[0]
    assert result.unit == "cluster" and result.n_units == 80 and result.n_texts == 400
    assert result.test.startswith("cluster-level") and "80 clusters of 400 texts" in result.test
    assert result.assumption == texts.CLUSTER_ASSUMPTION
    scores = first_axis_scores(data, vs)
    expected = cluster_tests.cluster_permutation(scores, vs.is_b, vs.prompt_of_row, "greater", 2000, 0)
    assert (result.statistic, result.p_value) == (expected.statistic, expected.p_value)
    assert result.clustering_warning is None


def test_single_text_units_keep_the_text_permutation_unchanged():
    data = unaligned_pair(np.random.default_rng(2), n_clusters=100, per_cluster=1)
    vs = ValidationSet.build(data)
    assert not vs.aligned and not vs.clustered and vs.clusters is None
    result = validate_all(data, [along_first_axis(data)], CONFIG, q=0.05)[0]
    scores = first_axis_scores(data, vs)
    expected = st.text_permutation(scores[~vs.is_b], scores[vs.is_b], "greater", 2000, 0)
    assert result.unit == "text" and result.test.startswith("text-level")
    assert (result.statistic, result.p_value) == (expected.statistic, expected.p_value)
    welch = effects.welch_ci(scores[~vs.is_b], scores[vs.is_b])
    assert result.effect_ci == [welch.low, welch.high]


def test_the_null_control_swaps_whole_clusters():
    data = unaligned_pair(np.random.default_rng(3))
    null = null_pair(data, seed=0)
    sides = {}
    for s in null.samples:
        sides.setdefault(s.prompt_id, set()).add(s.side)
    assert all(len(found) == 1 for found in sides.values()) and ValidationSet.build(null).clustered
    assert validate_all(null, [along_first_axis(null)], CONFIG, q=0.05)[0].unit == "cluster"


def test_type_one_error_with_hidden_clusters_in_the_audits_design():
    """100 texts a side in hidden prompts of 20 texts, ICC 0.5: the text-level test rejected 0.33 of
    true nulls in the audit; with the cluster as the unit the test keeps alpha."""
    rng = np.random.default_rng(7)
    text, cluster = [], []
    for j in range(300):
        scores, is_b, clusters = hidden_clusters(rng, 5, 20)
        rows = np.ones(scores.size, dtype=bool)
        text.append(text_test(scores, rows, is_b, "greater", 499, j)["p_value"])
        cluster.append(text_test(scores, rows, is_b, "greater", 499, j, clusters)["p_value"])
    assert np.mean(np.array(text) <= 0.05) > 0.2
    assert np.mean(np.array(cluster) <= 0.05) < 0.09  # binomial sd at 300 draws: 0.013


# --- effects ------------------------------------------------------------------------------------


def test_clustered_welch_equals_welch_for_single_texts():
    rng = np.random.default_rng(4)
    a, b = rng.random(30), rng.random(45) + 0.1
    plain = effects.welch_ci(a, b, 0.9)
    clustered = effects.clustered_welch_ci([[x] for x in a], [[x] for x in b], 0.9)
    for field in ("value", "low", "high", "se", "df"):
        assert getattr(clustered, field) == pytest.approx(getattr(plain, field), rel=1e-12)
    assert "one cluster" in effects.clustered_welch_ci([a], [b[:5], b[5:]]).note


def test_cluster_intervals_cover_where_text_intervals_do_not():
    """With 5 texts per hidden prompt (ICC 0.5), Welch over texts covers the true difference (0) far
    too rarely; the cluster-robust interval covers about 0.95, and so does the AUC's clustered one."""
    rng = np.random.default_rng(5)
    config = ValidateConfig(ci_level=0.95)
    plain, clustered, auc = [], [], []
    for _ in range(300):
        scores, is_b, clusters = hidden_clusters(rng, 20, 5)
        rows = np.ones(scores.size, dtype=bool)
        e_text = text_effects(scores, rows, is_b, config)[0]
        e_cluster, a_cluster, groups_a, groups_b = text_effects(scores, rows, is_b, config, clusters)
        plain.append(e_text.low <= 0 <= e_text.high)
        clustered.append(e_cluster.low <= 0 <= e_cluster.high)
        auc.append(a_cluster.low <= 0.5 <= a_cluster.high)
        assert len(groups_a) == len(groups_b) == 20  # prevalence intervals get one group per cluster
    assert np.mean(plain) < 0.85 and np.mean(clustered) >= 0.92 and np.mean(auc) >= 0.92


# --- the near-duplicate warning -----------------------------------------------------------------


def brute_force_share(vectors, is_b, picked):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    sims[is_b[:, None] != is_b[None, :]] = -np.inf
    return np.mean(sims[picked].max(axis=1) >= 0.9)


def test_near_duplicate_share_matches_brute_force_in_any_block_size(monkeypatch):
    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(500, 8))
    vectors[250:400] = vectors[100:250] + 0.05 * rng.normal(size=(150, 8))  # near-copies
    is_b = rng.random(500) < 0.5
    share, n = near_duplicate_share(vectors, is_b, seed=3)
    assert n == 300 and 0.05 < share < 0.9
    for block in (1, 7, 10_000):
        monkeypatch.setattr(texts, "_NEIGHBOUR_BLOCK", block)
        assert near_duplicate_share(vectors, is_b, seed=3) == (share, n)
    # the sample: seeded, so the brute force over the same rows gives the same share
    picked = np.sort(np.random.default_rng(child_seed(3, "near duplicates")).choice(500, 300, replace=False))
    assert share == pytest.approx(brute_force_share(vectors, is_b, picked))
    assert near_duplicate_share(vectors[:40], is_b[:40], seed=3)[1] == 40  # all texts when fewer


def test_a_zero_vector_has_no_near_duplicate():
    vectors = np.zeros((4, 3))
    assert near_duplicate_share(vectors, np.array([0, 0, 1, 1], bool), seed=0) == (0.0, 4)
    assert clustering_warning(vectors, np.array([0, 0, 1, 1], bool), seed=0) is None


def test_near_duplicate_single_texts_put_a_warning_on_every_row():
    data = unaligned_pair(np.random.default_rng(8), n_clusters=150, per_cluster=1, dim=64, near_copies=True)
    results = validate_all(data, [along_first_axis(data), along_first_axis(data, "h2", "a>b")], CONFIG, q=0.05)
    warning = results[0].clustering_warning
    assert warning and "corpus.columns.cluster" in warning and "over-reject" in warning
    assert results[1].clustering_warning == warning and results[0].unit == "text"


def test_independent_single_texts_get_no_warning():
    data = unaligned_pair(np.random.default_rng(9), n_clusters=150, per_cluster=1, dim=64)
    assert validate_all(data, [along_first_axis(data)], CONFIG, q=0.05)[0].clustering_warning is None


def test_an_aligned_comparison_gets_no_warning():
    """Aligned prompts: the sign-flip holds however answers to a prompt correlate; near-duplicates do not matter."""
    rng = np.random.default_rng(10)
    prompts = [Prompt(f"p{p}", "", "all", "validation") for p in range(30)]
    samples = [
        Sample(f"p{p}", side, k, "same answer", 5, "stop", 0, f"{side}{p}{k}")
        for p in range(30)
        for side in "ab"
        for k in range(2)
    ]
    vectors = np.tile(rng.normal(size=(1, 8)), (len(samples), 1))  # every text a duplicate of every other
    data = PairData(prompts, samples, vectors, {p.id: "all" for p in prompts})
    result = validate_all(data, [along_first_axis(data)], CONFIG, 0.05)[0]
    assert "clustering_warning" in result.to_dict() and result.clustering_warning is None
