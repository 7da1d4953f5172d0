"""Multiple-testing control: batch Benjamini-Hochberg / Yekutieli and online SAFFRON, ADDIS, LORD++.

Batch procedures count every hypothesis passed in the denominator m, including those whose
p-value is NaN (a test that could not be run is still a test that was tried; dropping it
would quietly loosen the threshold). NaN is never rejected. Online procedures treat NaN as
p = 1: a super-uniform null p-value, which spends wealth but cannot produce a discovery.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property

import numpy as np


def _as_p_values(p_values) -> np.ndarray:
    p = np.asarray(p_values, dtype=float).ravel()
    finite = p[~np.isnan(p)]
    if np.any((finite < 0) | (finite > 1)):
        raise ValueError("p-values must lie in [0, 1] (NaN allowed)")
    return p


def _step_up(p: np.ndarray, q: float) -> np.ndarray:
    """Reject the k smallest p-values, k the largest i with p_(i) <= q i / m (m counts NaN too)."""
    reject = np.zeros(p.size, dtype=bool)
    tested = np.flatnonzero(~np.isnan(p))
    if tested.size == 0:
        return reject
    order = tested[np.argsort(p[tested], kind="stable")]
    below = p[order] <= q * np.arange(1, tested.size + 1) / p.size
    if below.any():
        reject[order[: np.flatnonzero(below)[-1] + 1]] = True
    return reject


def benjamini_hochberg(p_values, q: float = 0.05) -> np.ndarray:
    """BH step-up at level q: FDR <= q for independent or positively dependent (PRDS) p-values."""
    return _step_up(_as_p_values(p_values), q)


def benjamini_yekutieli(p_values, q: float = 0.05) -> np.ndarray:
    """BH at q / sum_{i<=m} 1/i: FDR <= q under arbitrary dependence between the p-values."""
    p = _as_p_values(p_values)
    harmonic = float(np.sum(1.0 / np.arange(1, p.size + 1))) if p.size else 1.0
    return _step_up(p, q / harmonic)


def bh_adjusted(p_values) -> np.ndarray:
    """BH-adjusted p-values (q-values): min over j >= i of m p_(j) / j, capped at 1; NaN stays NaN.

    benjamini_hochberg(p, q) rejects exactly the hypotheses whose adjusted value is <= q.
    """
    p = _as_p_values(p_values)
    adjusted = np.full(p.size, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    if tested.size == 0:
        return adjusted
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * p.size / np.arange(1, tested.size + 1)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return adjusted


# --- spending sequences ------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerGamma:
    """gamma_j proportional to j^(-exponent), j >= 1, summing to one.

    horizon=None normalises over all j (by the Riemann zeta function); a finite horizon
    normalises over 1..horizon and sets gamma_j = 0 beyond it, as the reference did for SAFFRON.
    """

    exponent: float
    horizon: int | None = None

    def __post_init__(self) -> None:
        if self.exponent <= 1.0:
            raise ValueError("exponent must exceed 1 for the sequence to be summable")

    @cached_property
    def norm(self) -> float:
        if self.horizon is None:
            from scipy.special import zeta

            return float(zeta(self.exponent))
        return float(np.sum(np.arange(1, self.horizon + 1, dtype=float) ** -self.exponent))

    def __call__(self, j) -> np.ndarray:
        j = np.asarray(j, dtype=float)
        values = j**-self.exponent / self.norm
        return values if self.horizon is None else np.where(j <= self.horizon, values, 0.0)


@dataclass(frozen=True)
class LordGamma:
    """Javanmard-Montanari (2018, eq. 31): gamma_j = C log(max(j, 2)) / (j exp(sqrt(log j))).

    C = 0.0722 is the constant they published; the series then sums to about 0.913 over all
    j (numerically, 12.645 C), so it satisfies sum gamma_j <= 1 with a little to spare.
    """

    constant: float = 0.0722

    def __call__(self, j) -> np.ndarray:
        j = np.asarray(j, dtype=float)
        return self.constant * np.log(np.maximum(j, 2.0)) / (j * np.exp(np.sqrt(np.log(j))))


# --- online procedures -------------------------------------------------------------------------


class Saffron:
    """SAFFRON (Ramdas, Zrnic, Wainwright, Jordan 2018) with constant candidate threshold lam.

    alpha_t = min{lam, W0 g(t - C0+) + ((1-lam) alpha - W0) g(t - tau_1 - C1+)
                       + sum_{j>=2} (1-lam) alpha g(t - tau_j - Cj+)},
    tau_j the j-th rejection time, Cj+ the candidates (p <= lam) after tau_j and before t.
    t - tau_j - Cj+ = 1 + (non-candidates since tau_j), so only the non-candidate count at each
    rejection is stored: O(rejections) per step. Defaults follow the reference: alpha 0.05,
    lam 0.5, W0 = (1-lam) alpha / 4, gamma_j ~ j^-1.5 normalised over 1..100,000.
    """

    def __init__(self, alpha: float = 0.05, lam: float = 0.5, w0: float | None = None, gamma=None):
        if not 0.0 < lam < 1.0:
            raise ValueError("lam must be in (0, 1)")
        self.alpha, self.lam = alpha, lam
        self.w0 = (1.0 - lam) * alpha / 4.0 if w0 is None else w0
        if not 0.0 <= self.w0 <= (1.0 - lam) * alpha:
            raise ValueError("w0 must be in [0, (1 - lam) alpha]")
        self.gamma = PowerGamma(1.5, horizon=100_000) if gamma is None else gamma
        self._non_candidates = 0
        self._marks: list[int] = []  # non-candidate count at each rejection

    def level(self) -> float:
        """The level the next p-value will be tested at."""
        wealth = self.w0 * self.gamma(1 + self._non_candidates)
        if self._marks:
            payout = np.full(len(self._marks), (1.0 - self.lam) * self.alpha)
            payout[0] -= self.w0
            wealth += payout @ self.gamma(1 + self._non_candidates - np.asarray(self._marks))
        return float(min(self.lam, wealth))

    def test(self, p: float) -> tuple[bool, float]:
        level = self.level()
        p = 1.0 if np.isnan(p) else float(p)
        reject = p <= level
        if reject:
            self._marks.append(self._non_candidates)
        if p > self.lam:
            self._non_candidates += 1
        return bool(reject), level


class Addis:
    """ADDIS (Tian & Ramdas 2019): SAFFRON that discards p > tau, for conservative nulls.

    alpha_t = min{lam, (tau - lam) [W0 g(S - C0+) + (alpha - W0) g(S - k*_1 - C1+)
                                    + alpha sum_{j>=2} g(S - k*_j - Cj+)]},
    S the selected (p <= tau) before t, k*_j the selected up to the j-th rejection. Discarded
    p-values do not advance time; S - k*_j - Cj+ counts selected non-candidates
    (lam < p <= tau) since rejection j. The paper indexes gamma from 0 with
    gamma_j ~ (j+1)^-1.6 summing to one over all j >= 0, i.e. g(k) = PowerGamma(1.6)(k + 1).
    Defaults alpha 0.05, lam 0.25, tau 0.5 (the paper's); W0 = alpha / 2 (the onlineFDR
    default in the paper's parameterisation, where W0 <= alpha).
    """

    def __init__(self, alpha: float = 0.05, lam: float = 0.25, tau: float = 0.5, w0: float | None = None, gamma=None):
        if not 0.0 <= lam < tau <= 1.0:
            raise ValueError("need 0 <= lam < tau <= 1")
        self.alpha, self.lam, self.tau = alpha, lam, tau
        self.w0 = alpha / 2.0 if w0 is None else w0
        if not 0.0 <= self.w0 <= alpha:
            raise ValueError("w0 must be in [0, alpha]")
        self.gamma = PowerGamma(1.6) if gamma is None else gamma
        self._selected_non_candidates = 0
        self._marks: list[int] = []

    def level(self) -> float:
        wealth = self.w0 * self.gamma(1 + self._selected_non_candidates)
        if self._marks:
            payout = np.full(len(self._marks), self.alpha)
            payout[0] -= self.w0
            wealth += payout @ self.gamma(1 + self._selected_non_candidates - np.asarray(self._marks))
        return float(min(self.lam, (self.tau - self.lam) * wealth))

    def test(self, p: float) -> tuple[bool, float]:
        level = self.level()
        p = 1.0 if np.isnan(p) else float(p)
        reject = p <= level
        if reject:
            self._marks.append(self._selected_non_candidates)
        if self.lam < p <= self.tau:
            self._selected_non_candidates += 1
        return bool(reject), level


class LordPlusPlus:
    """LORD++ (Ramdas, Yang, Wainwright, Jordan 2017).

    alpha_t = gamma_t W0 + (alpha - W0) gamma_{t - tau_1} + alpha sum_{j>=2} gamma_{t - tau_j},
    with W0 = alpha / 2 and the Javanmard-Montanari sequence (LordGamma) by default.
    """

    def __init__(self, alpha: float = 0.05, w0: float | None = None, gamma=None):
        self.alpha = alpha
        self.w0 = alpha / 2.0 if w0 is None else w0
        if not 0.0 <= self.w0 <= alpha:
            raise ValueError("w0 must be in [0, alpha]")
        self.gamma = LordGamma() if gamma is None else gamma
        self._t = 0  # hypotheses tested so far
        self._rejections: list[int] = []

    def level(self) -> float:
        t = self._t + 1
        wealth = self.w0 * self.gamma(t)
        if self._rejections:
            payout = np.full(len(self._rejections), self.alpha)
            payout[0] -= self.w0
            wealth += payout @ self.gamma(t - np.asarray(self._rejections))
        return float(wealth)

    def test(self, p: float) -> tuple[bool, float]:
        level = self.level()
        p = 1.0 if np.isnan(p) else float(p)
        self._t += 1
        reject = p <= level
        if reject:
            self._rejections.append(self._t)
        return bool(reject), level


ONLINE_PROCEDURES = {"saffron": Saffron, "addis": Addis, "lord++": LordPlusPlus}


def make_online(name: str, alpha: float = 0.05, **params):
    """Build an online procedure by name; an unknown name gets a "did you mean" hint."""
    key = name.lower()
    if key not in ONLINE_PROCEDURES:
        close = difflib.get_close_matches(key, ONLINE_PROCEDURES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown online procedure {name!r}; choose from {sorted(ONLINE_PROCEDURES)}.{hint}")
    return ONLINE_PROCEDURES[key](alpha=alpha, **params)


def run_online(name: str, p_values, alpha: float = 0.05, **params) -> tuple[np.ndarray, np.ndarray]:
    """Test p-values in the given order; returns (rejections, levels used)."""
    procedure = make_online(name, alpha, **params)
    p = np.asarray(p_values, dtype=float).ravel()
    reject = np.zeros(p.size, dtype=bool)
    levels = np.zeros(p.size)
    for t, value in enumerate(p):
        reject[t], levels[t] = procedure.test(value)
    return reject, levels
