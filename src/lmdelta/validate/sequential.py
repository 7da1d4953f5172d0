"""Validation in rounds: each hypothesis is tested on the prompts seen so far with an anytime-valid
betting e-process and leaves the loop as soon as its evidence is decisive, its confidence sequence
rules out any effect worth reporting, or its prompt cap is reached; the decisions are made by e-BH
over every hypothesis's e-value at stopping.

This module holds the bookkeeping over a matrix of per-prompt differences that already exists (H
hypotheses × P prompts, NaN where a prompt is outside a hypothesis's scope), taken in a fixed,
seeded prompt order; generating and judging only what a round needs is the validate stage's part.
Valid at any stopping rule: an e-process stopped at any data-dependent time is an e-value, and e-BH
controls the FDR for e-values under any dependence (stats.sequential).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lmdelta.hashing import child_seed
from lmdelta.stats.fdr import PowerGamma
from lmdelta.stats.sequential import ROUND_GRID, Side, betting_test, confidence_sequences, e_bh

Reason = Literal["rejected", "futile", "cap", "exhausted", "live"]


@dataclass(frozen=True)
class Rounds:
    """Round sizes in prompts: `first`, then each round `growth` times the previous, up to `cap` prompts
    in all (None: every prompt there is)."""

    first: int = 16
    growth: float = 2.0
    cap: int | None = None

    def __post_init__(self) -> None:
        if self.first < 1 or self.growth < 1.0 or (self.cap is not None and self.cap < 1):
            raise ValueError("rounds need first >= 1, growth >= 1 and cap >= 1")

    def boundaries(self, available: int) -> list[int]:
        """Cumulative prompt counts at the end of each round."""
        limit = available if self.cap is None else min(available, self.cap)
        ends, size, total = [], float(self.first), 0
        while total < limit:
            total = min(limit, total + max(1, int(round(size))))
            ends.append(total)
            size *= self.growth
        return ends


@dataclass(frozen=True)
class Outcome:
    """Where one hypothesis left the loop and with what evidence."""

    round: int  # 1-based round it stopped after
    reason: Reason
    n_prompts: int  # in-scope prompts its test used
    e_value: float
    p_value: float  # anytime-valid: 1 / the largest capital so far
    ci: tuple[float, float]  # confidence sequence for the mean difference at stopping
    rejected: bool = False  # e-BH's decision over all hypotheses (set by `decide`)


def run_rounds(
    D: np.ndarray,
    directions: Sequence[str],
    rounds: Rounds,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    futility_alpha: float | None = None,
    online: bool = False,
    standardized: bool = False,
) -> list[Outcome]:
    """Test each row of D (in column order, the prompts' seeded order) round by round.

    A hypothesis stops when its e-value reaches len(D)/alpha (then e-BH rejects it whatever the others
    show; with `online`, also e-LOND's level for its place, the rows being in proposal order), when its
    confidence sequence at level 1 - futility_alpha (default alpha) excludes every effect of at least
    `min_effect` in its direction (futile; with min_effect 0, when it excludes the direction altogether),
    at the prompt cap, or when the prompts run out (`standardized`: min_effect in standard deviations of d,
    as the validate stage reads it). Directions are "b>a" (E[d] > 0) or "a>b".
    """
    D = np.asarray(D, dtype=float)
    ends = rounds.boundaries(D.shape[1])
    sure = stop_thresholds(len(D), alpha, online)
    return [
        _one(D[h], direction, ends, Stopping(alpha, sure[h], min_effect, futility_alpha, standardized))
        for h, direction in enumerate(directions)
    ]


E_LOND_GAMMA = PowerGamma(1.5, horizon=100_000)  # the spending sequence of decide's e-LOND


def stop_thresholds(m: int, q: float, online: bool = False) -> list[float]:
    """Per hypothesis, in proposal order, the e-value past which its decision cannot change, so that it may
    stop betting: m/q, where e-BH rejects it whatever the others show; under e-LOND (online) the t-th also
    needs e >= 1/(q gamma_t), its level when nothing before it was rejected."""
    sure = [m / q] * m
    if online:
        sure = [max(s, 1.0 / (q * float(E_LOND_GAMMA(t)))) for t, s in enumerate(sure, start=1)]
    return sure


def _one(d: np.ndarray, direction: str, ends: list[int], rule: Stopping) -> Outcome:
    outcome = None
    for number, end in enumerate(ends, start=1):
        seen = d[:end][~np.isnan(d[:end])]
        outcome = assess(seen, direction, rule, number, last=number == len(ends), more=end < d.size)
        if outcome.reason != "live":
            return outcome
    return outcome or Outcome(0, "exhausted", 0, 1.0, 1.0, (-1.0, 1.0))


@dataclass(frozen=True)
class Stopping:
    """When a hypothesis leaves the rounds: rejected once its e-value reaches `sure`, futile once a confidence
    sequence at level 1 - `futility_alpha` (default alpha) rules out every effect of at least `min_effect` in
    its direction. `alpha` is the level of the test's confidence sequence and of its stakes."""

    alpha: float
    sure: float
    min_effect: float = 0.0
    futility_alpha: float | None = None
    standardized: bool = False  # min_effect in standard deviations of d (the validate stage's), not in d's units

    def futility_bound(self, seen: np.ndarray) -> float:
        """The smallest mean difference worth pursuing: min_effect, or min_effect standard deviations of the
        differences seen so far (at least one step of the confidence sequence's grid). Judges score on scales
        of their own (a share of answers, a fixed scale for a text property), so a raw 0.05 is a large effect
        for one and a small one for another; a standardized bound means the same for all. It may depend on
        the data seen: futility only ever removes rejections."""
        if not self.standardized:
            return self.min_effect
        spread = float(np.std(seen, ddof=1)) if seen.size > 1 else 1.0
        return max(self.min_effect * spread, 2.0 / (ROUND_GRID - 1))


def assess(seen: np.ndarray, direction: str, rule: Stopping, number: int, last: bool, more: bool) -> Outcome:
    """One hypothesis after round `number`, from the finite differences of the prompts it has seen (in
    the seeded order): its outcome, with reason "live" while it should go on. `last`: no round follows
    (the cap, or the prompts ran out when `more` is False).

    Stopping for futility never makes a rejection, so its level costs no validity, only power: a real
    effect of at least min_effect is stopped as futile with probability at most futility_alpha
    (time-uniformly)."""
    side: Side = "greater" if direction == "b>a" else "less"
    test = betting_test(seen, side=side, alpha=rule.alpha)
    cs, loose = confidence_sequences(seen, (rule.alpha, rule.futility_alpha or rule.alpha), ROUND_GRID)
    reason = _reason(test.e_value, rule.sure, loose, direction, rule.futility_bound(seen), last, more) or "live"
    return Outcome(number, reason, seen.size, test.e_value, test.p_value, (cs.low, cs.high))


def _reason(e_value, sure, cs, direction, min_effect, last: bool, more: bool) -> Reason | None:
    if e_value >= sure:
        return "rejected"
    futile = cs.excludes_above(min_effect) if direction == "b>a" else cs.excludes_below(min_effect)
    if futile and cs.n:
        return "futile"
    if last:
        return "cap" if more else "exhausted"
    return None


def round_order(prompt_ids: Sequence[str], seed: int) -> list[str]:
    """The validation prompts in the order the rounds take them: a seeded hash of each id, so a prompt's
    place does not depend on which other prompts exist, and is fixed before any answer is seen (the
    e-process needs its observations in an order chosen in advance)."""
    return sorted(prompt_ids, key=lambda pid: (child_seed(seed, "round order", pid), pid))


def decide(outcomes: list[Outcome], alpha: float = 0.05) -> list[Outcome]:
    """e-BH over every hypothesis's e-value at stopping."""
    rejected = e_bh([o.e_value for o in outcomes], alpha)
    return [Outcome(**{**o.__dict__, "rejected": bool(r)}) for o, r in zip(outcomes, rejected)]
