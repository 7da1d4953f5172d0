"""Anytime-valid betting tests, confidence sequences, e-BH and e-LOND: formulas by hand, identities
from the papers, and type-I error / coverage under optional stopping by (fast, seeded) simulation."""

import math

import numpy as np
import pytest

from lmdelta.stats.fdr import PowerGamma, benjamini_hochberg
from lmdelta.stats.sequential import (
    ELond,
    betting_test,
    confidence_sequence,
    e_bh,
    growth_stakes,
    horizon_stakes,
    lower_bound,
    plugin_stakes,
    upper_bound,
)


def test_plugin_stakes_follow_wsr23_by_hand():
    x = np.array([1.0, 1.0, 0.0])
    log_term = 2 * math.log(2 / 0.05)
    mu1 = (0.5 + 1) / 2
    sigma1 = (0.25 + (1 - mu1) ** 2) / 2
    mu2 = (0.5 + 2) / 3
    sigma2 = (0.25 + (1 - mu1) ** 2 + (1 - mu2) ** 2) / 3
    expected = [
        math.sqrt(log_term / (0.25 * 1 * math.log(2))),
        math.sqrt(log_term / (sigma1 * 2 * math.log(3))),
        math.sqrt(log_term / (sigma2 * 3 * math.log(4))),
    ]
    assert plugin_stakes(x, 0.05) == pytest.approx(expected)


def test_growth_stakes_are_wsr23_agrapa_by_hand():
    """aGRAPA: (mu_{t-1} - m) / (sigma2_{t-1} + (mu_{t-1} - m)^2) from the regularised running estimates,
    never negative; the first stake (nothing seen) is the cap."""
    x = np.array([1.0, 1.0, 0.0, 0.0])
    mu1 = (0.5 + 1) / 2
    sigma1 = (0.25 + (1 - mu1) ** 2) / 2
    mu2 = (0.5 + 2) / 3
    sigma2 = (0.25 + (1 - mu1) ** 2 + (1 - mu2) ** 2) / 3
    mu3 = (0.5 + 2) / 4
    sigma3 = (0.25 + (1 - mu1) ** 2 + (1 - mu2) ** 2 + (0 - mu3) ** 2) / 4
    expected = [(mu - 0.5) / (var + (mu - 0.5) ** 2) for mu, var in ((mu1, sigma1), (mu2, sigma2), (mu3, sigma3))]
    stakes = growth_stakes(x, 0.5, +1)
    assert stakes[0] == 1.0 and stakes[1:] == pytest.approx(expected)  # the first: TRUNCATION / m, half the capital
    assert growth_stakes(x, 0.5, -1)[1:] == pytest.approx([0.0, 0.0, 0.0])  # no bet against the evidence


def test_horizon_stakes_by_hand():
    x = np.array([1.0, 0.0])
    sigma1 = (0.25 + (1 - 0.75) ** 2) / 2
    expected = [math.sqrt(2 * math.log(1 / 0.2) / (v * 300)) for v in (0.25, sigma1)]
    assert horizon_stakes(x, 0.2, 300) == pytest.approx(expected)


def test_one_sided_bounds_cover_the_mean_uniformly_in_time_and_mirror():
    rng = np.random.default_rng(5)
    truth = float(np.mean(np.clip(rng.normal(0.1, 0.5, size=1_000_000), -1, 1)))
    misses = 0
    runs = 300
    for _ in range(runs):
        d = np.clip(rng.normal(0.1, 0.5, size=200), -1, 1)
        misses += upper_bound(d, 0.2, 100) < truth  # the running intersection over all 200 looks
    assert misses / runs <= 0.2
    d = np.clip(rng.normal(0.1, 0.5, size=300), -1, 1)
    assert lower_bound(d, 0.2, 100) == pytest.approx(-upper_bound(-d, 0.2, 100))
    assert lower_bound(d, 0.2, 100) < float(np.mean(d)) < upper_bound(d, 0.2, 100)
    assert upper_bound([], 0.2, 100) == 1.0


def test_capital_grows_by_at_most_three_quarters_per_top_score_and_rejects_at_one_over_alpha():
    """With every difference +1: the first stake is capped at half the capital (a factor 1.5); after one
    prompt the aGRAPA stake on the x scale is 0.25 / (0.15625 + 0.0625) = 8/7 (a factor 1 + 4/7); from the
    fourth prompt on it sits at STAKE_CAP's cap, a factor 1.75: 12.6 after five prompts, 22.0 >= 20 after six."""
    capital = betting_test([1.0] * 8).capital
    factors = capital[1:] / capital[:-1]
    assert capital[0] == pytest.approx(1.5) and factors[0] == pytest.approx(1 + 4 / 7)
    assert factors[2:] == pytest.approx(1.75) and np.all(factors <= 1.75 + 1e-12)
    five, six = betting_test([1.0] * 5), betting_test([1.0] * 6)
    assert not five.rejected and six.rejected and six.p_value == pytest.approx(1 / capital[5])
    both = betting_test([1.0] * 3, side="two-sided")  # the "less" half loses its first stake, then stops betting
    assert both.capital == pytest.approx(0.5 * capital[:3] + 0.5 * 0.5)
    # betting the wrong way loses the first stake, then the stakes follow the evidence and stop
    assert betting_test([1.0] * 20, side="less").e_value == pytest.approx(0.5)


def test_empty_and_nan_differences():
    assert betting_test([]).p_value == 1.0 and betting_test([np.nan]).n == 0
    assert betting_test([1.0, np.nan, 1.0]).n == 2
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        betting_test([1.5])
    with pytest.raises(ValueError, match="side"):
        betting_test([0.1], side="both")


@pytest.mark.parametrize("side", ["greater", "two-sided"])
def test_type_one_error_under_continuous_monitoring_stays_below_alpha(side):
    """Looking after every prompt and stopping at the first rejection (the most optional stopping there
    is): the share of null sequences ever rejected is at most alpha (Ville), here for skewed bounded
    differences with mean zero."""
    rng = np.random.default_rng(7)
    rejected = 0
    runs = 600
    for _ in range(runs):
        d = rng.choice([-0.2, 0.8], p=[0.8, 0.2], size=300)  # mean 0, skewed
        rejected += betting_test(d, side=side).rejected  # p = 1/max capital: ever crossed 1/alpha
    assert rejected / runs <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


def test_a_real_difference_is_found_long_before_a_fixed_sample_would_end():
    rng = np.random.default_rng(1)
    d = np.clip(rng.normal(0.3, 0.3, size=400), -1, 1)
    result = betting_test(d)
    first = int(np.argmax(result.capital >= 20)) + 1
    assert result.rejected and first < 60


def test_confidence_sequence_covers_the_mean_uniformly_in_time():
    rng = np.random.default_rng(3)
    truth = float(np.mean(np.clip(rng.normal(0.2, 0.4, size=1_000_000), -1, 1)))  # the clipped mean
    misses = 0
    runs = 300
    for _ in range(runs):
        d = np.clip(rng.normal(0.2, 0.4, size=150), -1, 1)
        cs = confidence_sequence(d)  # the running intersection over all 150 looks
        misses += not (cs.low <= truth <= cs.high)
    assert misses / runs <= 0.05


def test_confidence_sequence_narrows_and_supports_futility():
    d = np.full(400, 0.02)
    early, late = confidence_sequence(d[:20]), confidence_sequence(d)
    assert late.high - late.low < early.high - early.low
    assert late.low <= 0.02 <= late.high and late.excludes_above(0.2) and not early.excludes_above(0.2)
    assert confidence_sequence([]).low == -1.0 and confidence_sequence([]).high == 1.0


def test_e_bh_by_hand_and_counts_nan_as_no_evidence():
    assert e_bh([100, 30, 5, 1], alpha=0.1).tolist() == [True, True, False, False]  # 30 >= 4/(0.1*2)
    assert e_bh([100, 30, 5, np.nan], alpha=0.1).tolist() == [True, True, False, False]
    assert not e_bh([19.9], alpha=0.05).any() and e_bh([20.0], alpha=0.05).all()
    assert e_bh([], alpha=0.05).size == 0
    with pytest.raises(ValueError):
        e_bh([-1.0])


def test_e_bh_on_reciprocal_p_values_is_bh():
    """Wang & Ramdas (2022): e-BH applied to e = 1/p rejects exactly what BH rejects."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = np.concatenate([rng.uniform(size=30), rng.uniform(0, 0.01, size=rng.integers(0, 10))])
        assert (e_bh(1 / p, alpha=0.1) == benjamini_hochberg(p, q=0.1)).all()


def test_e_lond_levels_by_hand():
    gamma = PowerGamma(2.0, horizon=4)
    norm = 1 + 1 / 4 + 1 / 9 + 1 / 16
    procedure = ELond(0.1, gamma)
    assert procedure.level() == pytest.approx(0.1 / norm)
    assert procedure.test(1 / (0.1 / norm) + 1e-9) is True  # just enough evidence
    assert procedure.level() == pytest.approx(0.1 * (1 / 4) / norm * 2)  # one rejection so far
    assert procedure.test(5.0) is False and procedure.test(float("nan")) is False
    assert procedure.rejections == 1 and procedure.t == 3
    assert procedure.test(float("inf")) is True  # a capital that overflowed is overwhelming evidence


def test_e_lond_controls_fdr_on_simulated_streams():
    rng = np.random.default_rng(5)
    fdp = []
    for _ in range(300):
        real = rng.uniform(size=60) < 0.2
        e = np.where(real, rng.exponential(400, size=60), rng.exponential(1.0, size=60))  # null: E[e] = 1
        procedure = ELond(0.1, PowerGamma(1.6))
        rejected = np.array([procedure.test(value) for value in e])
        fdp.append((rejected & ~real).sum() / max(rejected.sum(), 1))
    assert np.mean(fdp) <= 0.1


@pytest.mark.parametrize("n, interval", [(60, (-0.048, 0.244)), (200, (0.026, 0.176))])
def test_confidence_sequence_matches_an_independent_implementation(n, interval):
    """The same hedged-capital sequence computed by ville 0.1.0 (`ville.means.BettingCS(bounds=(-1, 1),
    alpha=0.05, grid=1001)`, which hedges by the maximum of the two bets where this takes their mixture)
    on this deterministic sequence; its predictable stakes agreed with `plugin_stakes` exactly."""
    d = np.clip(0.1 + 0.5 * np.sin(np.arange(1, n + 1) * 1.7), -1, 1)
    cs = confidence_sequence(d)
    assert (cs.low, cs.high) == pytest.approx(interval, abs=1e-9)
