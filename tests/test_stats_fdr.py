"""Multiple testing: BH/BY against scipy, online levels against the published formulas, FDR in simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lmdelta.stats import fdr

# The 15 p-values of the onlineFDR documentation examples (Robertson et al., Bioconductor).
DOC_P = [
    2.90e-08,
    0.06743,
    0.01514,
    0.08174,
    0.00171,
    3.60e-05,
    0.79149,
    0.27201,
    0.28295,
    7.59e-08,
    0.69274,
    0.30443,
    0.00136,
    0.72342,
    0.54757,
]


# --- batch ------------------------------------------------------------------------------------


def test_bh_matches_scipy_false_discovery_control():
    rng = np.random.default_rng(0)
    for _ in range(30):
        m = int(rng.integers(1, 200))
        p = np.where(rng.random(m) < 0.3, rng.beta(0.2, 5.0, m), rng.random(m))
        adjusted = stats.false_discovery_control(p, method="bh")
        np.testing.assert_allclose(fdr.bh_adjusted(p), adjusted, rtol=1e-12)
        for q in (0.01, 0.05, 0.2):
            np.testing.assert_array_equal(fdr.benjamini_hochberg(p, q), adjusted <= q)


def test_by_matches_scipy_and_is_bh_at_reduced_level():
    rng = np.random.default_rng(1)
    p = np.where(rng.random(150) < 0.3, rng.beta(0.1, 5.0, 150), rng.random(150))
    harmonic = np.sum(1.0 / np.arange(1, 151))
    np.testing.assert_array_equal(fdr.benjamini_yekutieli(p, 0.05), fdr.benjamini_hochberg(p, 0.05 / harmonic))
    np.testing.assert_array_equal(
        fdr.benjamini_yekutieli(p, 0.05), stats.false_discovery_control(p, method="by") <= 0.05
    )


def test_nan_counts_in_the_denominator_and_is_never_rejected():
    p = [0.01, 0.02]
    assert fdr.benjamini_hochberg(p, 0.05).all()  # m = 2: thresholds 0.025, 0.05
    with_nan = fdr.benjamini_hochberg(p + [np.nan] * 3, 0.05)  # m = 5: thresholds 0.01, 0.02
    np.testing.assert_array_equal(with_nan, [True, True, False, False, False])
    more_nan = fdr.benjamini_hochberg(p + [np.nan] * 8, 0.05)  # m = 10: 0.005, 0.01 -> none
    assert not more_nan.any()
    adjusted = fdr.bh_adjusted([0.01, np.nan, 0.04])
    assert np.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.03) and adjusted[2] == pytest.approx(0.06)
    assert fdr.benjamini_hochberg([]).size == 0 and not fdr.benjamini_hochberg([np.nan]).any()
    with pytest.raises(ValueError):
        fdr.benjamini_hochberg([0.5, 1.5])


def test_bh_adjusted_is_monotone_and_capped():
    rng = np.random.default_rng(2)
    p = rng.random(100) ** 3
    adjusted = fdr.bh_adjusted(p)
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0) and np.all(adjusted <= 1.0) and np.all(adjusted >= p)


# --- online: independent transcriptions of the published formulas ------------------------------


def saffron_levels(p, alpha, lam, w0, gamma):
    """Ramdas et al. (2018), Algorithm 1, written out literally (O(t^2))."""
    levels, rejections = [], []
    for t in range(1, len(p) + 1):
        cand = [p[i - 1] <= lam for i in range(1, t)]
        value = w0 * gamma(t - sum(cand))
        for j, tau in enumerate(rejections):
            c_plus = sum(cand[tau : t - 1])  # candidates at times tau+1 .. t-1
            weight = (1 - lam) * alpha - w0 if j == 0 else (1 - lam) * alpha
            value += weight * gamma(t - tau - c_plus)
        levels.append(min(lam, value))
        if p[t - 1] <= levels[-1]:
            rejections.append(t)
    return np.array(levels)


def addis_levels(p, alpha, lam, tau, w0, gamma0):
    """Tian & Ramdas (2019), Algorithm 1, literally; gamma0 is indexed from 0."""
    levels, kappas = [], []
    for t in range(1, len(p) + 1):
        selected = sum(p[i - 1] <= tau for i in range(1, t))
        c0 = sum(p[i - 1] <= lam for i in range(1, t))
        inner = w0 * gamma0(selected - c0)
        for j, kappa in enumerate(kappas):
            kappa_star = sum(p[i - 1] <= tau for i in range(1, kappa + 1))
            c_plus = sum(p[i - 1] <= lam for i in range(kappa + 1, t))
            inner += (alpha - w0 if j == 0 else alpha) * gamma0(selected - kappa_star - c_plus)
        levels.append(min(lam, (tau - lam) * inner))
        if p[t - 1] <= levels[-1]:
            kappas.append(t)
    return np.array(levels)


def lord_levels(p, alpha, w0, gamma):
    """Ramdas et al. (2017), LORD++, literally."""
    levels, rejections = [], []
    for t in range(1, len(p) + 1):
        value = gamma(t) * w0
        for j, tau in enumerate(rejections):
            value += (alpha - w0 if j == 0 else alpha) * gamma(t - tau)
        levels.append(value)
        if p[t - 1] <= value:
            rejections.append(t)
    return np.array(levels)


REFERENCE_NORM = float(np.sum(np.arange(1, 100_001, dtype=float) ** -1.5))


def reference_gamma(j):
    """gamma_j ~ j^-1.5 normalised over 1..100,000, as the reference system used."""
    return float(j) ** -1.5 / REFERENCE_NORM


def random_stream(rng, n=60):
    return np.where(rng.random(n) < 0.3, rng.beta(0.05, 1.0, n), rng.random(n))


def test_saffron_first_levels_by_hand():
    w0, g1, g2 = 0.00625, reference_gamma(1), reference_gamma(2)
    assert g1 == pytest.approx(0.3837, abs=1e-4)
    _, levels = fdr.run_online("saffron", [0.3] * 20)  # candidates, never rejected
    np.testing.assert_allclose(levels, w0 * g1)
    assert w0 * g1 == pytest.approx(0.0024, abs=5e-5)
    # reject, candidate, non-candidate, reject, ...
    _, levels = fdr.run_online("saffron", [1e-6, 0.3, 0.8, 1e-7, 0.9])
    pay1, pay = 0.5 * 0.05 - w0, 0.5 * 0.05
    expected = [w0 * g1, w0 * g1 + pay1 * g1, w0 * g1 + pay1 * g1, w0 * g2 + pay1 * g2, w0 * g2 + pay1 * g2 + pay * g1]
    np.testing.assert_allclose(levels, expected, rtol=1e-12)


def test_online_levels_equal_literal_formulas_on_random_streams():
    rng = np.random.default_rng(3)
    addis_gamma = fdr.PowerGamma(1.6)
    for _ in range(10):
        p = random_stream(rng)
        _, levels = fdr.run_online("saffron", p)
        np.testing.assert_allclose(levels, saffron_levels(p, 0.05, 0.5, 0.00625, reference_gamma), rtol=1e-10)
        _, levels = fdr.run_online("addis", p)
        expected = addis_levels(p, 0.05, 0.25, 0.5, 0.025, lambda j: float(addis_gamma(j + 1)))
        np.testing.assert_allclose(levels, expected, rtol=1e-10)
        _, levels = fdr.run_online("lord++", p)
        np.testing.assert_allclose(levels, lord_levels(p, 0.05, 0.025, fdr.LordGamma()), rtol=1e-10)


def test_online_levels_match_published_onlinefdr_examples():
    """Golden values printed in the onlineFDR reference pages (SAFFRON, ADDIS, LORD++ examples),
    obtained there with W0 = alpha/2 in their SAFFRON parameterisation (ours: (1 - lam) alpha / 2),
    gamma_j ~ j^-1.6, and for LORD++ W0 = alpha/10 with C = 0.07720838."""
    _, levels = fdr.run_online("saffron", DOC_P, w0=0.0125, gamma=fdr.PowerGamma(1.6))
    np.testing.assert_allclose(
        levels[[0, 1, 5, 6, 7, 11, 14]],
        [0.005468627, 0.010937254, 0.021874508, 0.032811762, 0.010823845, 0.009265591, 0.009064367],
        rtol=1e-6,
    )
    reject, levels = fdr.run_online("addis", DOC_P)
    np.testing.assert_allclose(
        levels[[0, 1, 5, 6, 8, 9, 10, 12, 14]],
        [
            0.002734314,
            0.005468627,
            0.010937254,
            0.016405881,
            0.005411923,
            0.002828822,
            0.008297449,
            0.003589243,
            0.009057870,
        ],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(np.flatnonzero(reject), [0, 4, 5, 9, 12])
    reject, levels = fdr.run_online("lord++", DOC_P, w0=0.005, gamma=fdr.LordGamma(0.07720838))
    np.testing.assert_allclose(
        levels[[0, 1, 2, 5, 6, 10, 14]],
        [0.0002675839, 0.0024664457, 0.0005732818, 0.0003447286, 0.0029745013, 0.0032185913, 0.0007059610],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(np.flatnonzero(reject), [0, 5, 9])


def test_addis_discarded_p_values_do_not_advance_time():
    procedure = fdr.Addis()
    first = procedure.level()
    procedure.test(0.9)  # discarded (> tau)
    assert procedure.level() == first
    procedure.test(0.1)  # candidate (<= lam): does not spend either
    assert procedure.level() == first
    procedure.test(0.4)  # selected non-candidate: time moves on
    assert procedure.level() == pytest.approx(0.25 * 0.025 * float(fdr.PowerGamma(1.6)(2)))


def test_lord_first_levels_by_hand():
    g = fdr.LordGamma()
    assert float(g(1)) == pytest.approx(0.0722 * np.log(2))
    _, levels = fdr.run_online("lord++", [1e-9, 0.5, 0.5])
    expected = [0.025 * g(1), 0.025 * g(2) + 0.025 * g(1), 0.025 * g(3) + 0.025 * g(2)]
    np.testing.assert_allclose(levels, np.array(expected, dtype=float), rtol=1e-12)


def test_gamma_sequences_sum_to_at_most_one():
    assert np.sum(fdr.PowerGamma(1.5, horizon=100_000)(np.arange(1, 100_001))) == pytest.approx(1.0)
    assert fdr.PowerGamma(1.5, horizon=10)(11) == 0.0
    assert fdr.PowerGamma(1.6)(1) == pytest.approx(0.4374901658)
    assert np.sum(fdr.LordGamma()(np.arange(1, 1_000_001))) < 1.0


def test_online_nan_is_treated_as_one_and_names_are_checked():
    reject, levels = fdr.run_online("saffron", [np.nan, 0.9])
    reject_one, levels_one = fdr.run_online("saffron", [1.0, 0.9])
    np.testing.assert_array_equal(levels, levels_one)
    assert not reject.any() and not reject_one.any()
    with pytest.raises(ValueError, match="Did you mean 'saffron'"):
        fdr.run_online("safron", [0.1])
    with pytest.raises(ValueError):
        fdr.Saffron(w0=0.5)


# --- FDR in simulation -------------------------------------------------------------------------


def simulate_fdp(procedure, n_streams=300, m=100, null_share=0.8, q=0.05, seed=4):
    rng = np.random.default_rng(seed)
    fdps, discoveries = [], 0
    for _ in range(n_streams):
        is_null = rng.random(m) < null_share
        p = np.where(is_null, rng.random(m), rng.beta(0.1, 1.0, m))
        reject = procedure(p, q)
        discoveries += reject.sum()
        fdps.append((reject & is_null).sum() / max(1, reject.sum()))
    return np.mean(fdps), np.std(fdps) / np.sqrt(n_streams), discoveries / n_streams


@pytest.mark.parametrize("name", ["bh", "by", "saffron", "addis", "lord++"])
def test_fdr_controlled_in_simulation(name):
    if name == "bh":
        procedure = fdr.benjamini_hochberg
    elif name == "by":
        procedure = fdr.benjamini_yekutieli
    else:

        def procedure(p, q):
            return fdr.run_online(name, p, alpha=q)[0]

    mean_fdp, standard_error, per_stream = simulate_fdp(procedure)
    assert mean_fdp <= 0.05 + 3 * standard_error
    assert per_stream > 2  # and it does find things
