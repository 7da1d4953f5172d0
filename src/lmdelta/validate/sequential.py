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
from lmdelta.stats.sequential import (
    ROUND_GRID,
    STAKE_CAP,
    Side,
    betting_test,
    confidence_sequences,
    e_bh,
    lower_bound,
    upper_bound,
)

Reason = Literal["rejected", "futile", "cap", "exhausted", "live"]


@dataclass(frozen=True)
class Rounds:
    """Round sizes in prompts: `first`, then each round `growth` times the previous but at most `most` new ones
    (None: no limit) or a sixteenth of those already given, whichever is more, up to `cap` prompts in all (None:
    every prompt there is).

    `most` bounds the overshoot: a hypothesis whose futility bound is crossed early in a round has been given the
    rest of that round's prompts all the same, and a group is answered until its slowest hypothesis stops, so
    rounds that grow without limit pay up to `growth` − 1 of a group's prompts past the last decision. The
    sixteenth keeps the rounds few on a very large scope (past 2,048 prompts at `most` 128): each round reads
    every answer so far, so rounds of a fixed size would cost time quadratic in the scope."""

    first: int = 16
    growth: float = 2.0
    cap: int | None = None
    most: int | None = None

    def __post_init__(self) -> None:
        if self.first < 1 or self.growth < 1.0 or any(n is not None and n < 1 for n in (self.cap, self.most)):
            raise ValueError("rounds need first >= 1, growth >= 1, cap >= 1 and most >= 1")

    def boundaries(self, available: int) -> list[int]:
        """Cumulative prompt counts at the end of each round."""
        limit = available if self.cap is None else min(available, self.cap)
        ends, size, total = [], float(self.first), 0
        while total < limit:
            if self.most is not None:
                size = min(size, max(self.most, total // 16))
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

    A hypothesis stops when its e-value reaches the point past which e-BH rejects it whatever the others
    show (`settled_threshold`: m/alpha, lower once others have settled; with `online`, also e-LOND's level
    for its place, the rows being in proposal order), when a one-sided confidence sequence at level
    1 - futility_alpha (default alpha) excludes every effect of at least `min_effect` in its direction
    (futile; with min_effect 0, when it excludes the direction altogether), at the prompt cap, or when the
    prompts run out (`standardized`: min_effect in standard deviations of d, as the validate stage reads
    it). Directions are "b>a" (E[d] > 0) or "a>b".
    """
    D = np.asarray(D, dtype=float)
    ends = rounds.boundaries(D.shape[1])
    static = stop_thresholds(len(D), alpha, online)
    outcomes: list[Outcome | None] = [None] * len(D)
    for number, end in enumerate(ends, start=1):
        for h, direction in enumerate(directions):
            if not _live(outcomes[h]):
                continue
            sure = static[h] if online else settled_threshold(len(D), alpha, _settled(outcomes))
            rule = Stopping(alpha, sure, min_effect, futility_alpha, standardized)
            seen = D[h, :end][~np.isnan(D[h, :end])]
            outcomes[h] = assess(seen, direction, rule, number, last=number == len(ends), more=end < D.shape[1])
    return [o or Outcome(0, "exhausted", 0, 1.0, 1.0, (-1.0, 1.0)) for o in outcomes]


def _live(outcome: Outcome | None) -> bool:
    return outcome is None or outcome.reason == "live"


def _settled(outcomes: Sequence[Outcome | None]) -> int:
    return sum(o is not None and o.reason == "rejected" for o in outcomes)


E_LOND_GAMMA = PowerGamma(1.5, horizon=100_000)  # the spending sequence of decide's e-LOND


def stop_thresholds(m: int, q: float, online: bool = False) -> list[float]:
    """Per hypothesis, in proposal order, the e-value past which its decision cannot change before any other
    has settled: m/q, where e-BH rejects it whatever the others show; under e-LOND (online) the t-th also
    needs e >= 1/(q gamma_t), its level when nothing before it was rejected."""
    sure = [m / q] * m
    if online:
        sure = [max(s, 1.0 / (q * float(E_LOND_GAMMA(t)))) for t, s in enumerate(sure, start=1)]
    return sure


def settled_threshold(m: int, q: float, settled: int) -> float:
    """The e-value past which e-BH at level q over m hypotheses rejects a hypothesis whatever the unsettled
    ones show, once `settled` others have stopped past this rule's threshold: m / (q (settled + 1)).

    Why: the j-th to settle had e >= m/(q j) >= m/(q s) with s = settled + 1 counting the new one, so at least
    s e-values are >= m/(q s); e-BH rejects the k* largest with k* the largest k where the k-th largest is
    >= m/(q k), hence k* >= s and every e-value >= m/(q s) is rejected, the s settled ones included. The
    settled e-values are frozen (they stop betting) and the others can only add rejections."""
    return m / (q * (settled + 1))


@dataclass(frozen=True)
class Stopping:
    """When a hypothesis leaves the rounds: rejected once its e-value reaches `sure`, futile once a confidence
    sequence at level 1 - `futility_alpha` (default alpha) rules out every effect of at least `min_effect` in
    its direction. `alpha` is the level of the confidence sequence reported with a finding."""

    alpha: float
    sure: float
    min_effect: float = 0.0
    futility_alpha: float | None = None
    standardized: bool = False  # min_effect in standard deviations of d (the validate stage's), not in d's units
    spread: float | None = None  # the standard deviation min_effect is read in (None: that of the differences seen)

    def futility_bound(self, seen: np.ndarray) -> float:
        """The smallest mean difference worth pursuing: min_effect, or min_effect standard deviations of the
        differences seen so far, or of `spread` when given (at least one step of the confidence sequence's grid).
        Judges score on scales of their own (a share of answers, a fixed scale for a text property), so a raw
        0.05 is a large effect for one and a small one for another; a standardized bound means the same for all.
        The judge cascade's differences are PPI++ terms whose spread is mostly labelling noise, so it passes the
        strong judge's own (validate.cascade_rounds). It may depend on the data seen: futility only ever removes
        rejections."""
        if not self.standardized:
            return self.min_effect
        spread = self.spread if self.spread is not None else float(np.std(seen, ddof=1)) if seen.size > 1 else 1.0
        return max(self.min_effect * spread, 2.0 / (ROUND_GRID - 1))

    @property
    def horizon(self) -> float:
        """The number of prompts the futility bound is tuned for: where a bound of width min_effect standard
        deviations is first within reach, 2 log(1/futility_alpha) / min_effect^2 (min_effect read as standard
        deviations of d; d's standard deviation is at most 1 when it is raw). A constant, so the stakes stay
        predictable; with min_effect 0 the bound is tuned for 1,000 prompts."""
        level = self.futility_alpha or self.alpha
        return 2.0 * np.log(1.0 / level) / self.min_effect**2 if self.min_effect > 0 else 1000.0


def assess(seen: np.ndarray, direction: str, rule: Stopping, number: int, last: bool, more: bool) -> Outcome:
    """One hypothesis after round `number`, from the finite differences of the prompts it has seen (in
    the seeded order): its outcome, with reason "live" while it should go on. `last`: no round follows
    (the cap, or the prompts ran out when `more` is False).

    Stopping for futility never makes a rejection, so its level costs no validity, only power: a real
    effect of at least min_effect is stopped as futile with probability at most futility_alpha
    (time-uniformly: the bound is a one-sided confidence sequence)."""
    side: Side = "greater" if direction == "b>a" else "less"
    test = betting_test(seen, side=side, alpha=rule.alpha)
    (cs,) = confidence_sequences(seen, (rule.alpha,), ROUND_GRID)
    reason = _reason(test.e_value, rule, seen, direction, last, more) or "live"
    return Outcome(number, reason, seen.size, test.e_value, test.p_value, (cs.low, cs.high))


def _reason(e_value: float, rule: Stopping, seen: np.ndarray, direction: str, last: bool, more: bool) -> Reason | None:
    if e_value >= rule.sure:
        return "rejected"
    if seen.size and _futile(seen, direction, rule):
        return "futile"
    if last:
        return "cap" if more else "exhausted"
    return None


def _futile(seen: np.ndarray, direction: str, rule: Stopping) -> bool:
    """Whether the one-sided confidence sequence rules out every effect worth pursuing in the direction."""
    level, bound = rule.futility_alpha or rule.alpha, rule.futility_bound(seen)
    if direction == "b>a":
        return upper_bound(seen, level, rule.horizon, ROUND_GRID) < bound
    return lower_bound(seen, level, rule.horizon, ROUND_GRID) > -bound


WORTH = 0.25  # a further answer to a prompt must add this share of one answer's growth to be worth taking
# Deeper answers are planned on this share of the growth the estimates promise: an undecided hypothesis's estimate
# is optimistic (the clear ones have stopped), and on the demos the full rate deepened 60 prompts for no finding.
PLAN_SHARE = 0.5


@dataclass(frozen=True)
class Depth:
    """How many answers per prompt and side a hypothesis takes for its next prompts: `start`, and up to `most`
    where its scope has too few prompts left for the evidence it still needs (validate.answers_per_prompt,
    validate.max_answers_per_prompt). `min_effect` in standard deviations of d, as the futility rule reads it."""

    start: int = 1
    most: int = 1
    min_effect: float = 0.1

    def next(
        self,
        seen: np.ndarray,
        direction: str,
        e_value: float,
        sure: float,
        left: int,
        depths: np.ndarray,
        within: float | None,
    ) -> int:
        """The answers per prompt for the prompts a live hypothesis takes next, from what it has seen.

        Fresh prompts tell more than further answers to seen ones, and cost the same, so a hypothesis stays at
        `start` while its scope has prompts enough: deeper answers only pay when the prompts left (`left`) are
        fewer than the evidence still needed, log(sure / e_value), would take at `start`, and some
        depth would make them enough (a hypothesis no depth can save is not paid for). The rate is
        the betting e-process's growth per prompt at m answers a side (`growth`: the Kelly stake for the mean
        and variance seen, capped as the test caps it), and m answers a side shrink d's variance only in its
        within-prompt part: `within`, the share of a single answer pair's variance that lies within prompts,
        estimated once prompts with two answers or more exist (None: not yet; then taken as 1, the case where
        more answers help most), and the plan counts on PLAN_SHARE of it (an undecided hypothesis's estimate is
        optimistic). A further answer is worth taking only while it adds at least WORTH of the growth one answer
        a side gives (with answers to a prompt all alike, or a stake already at its cap, it adds little). It
        takes the fewest answers that suffice. Only a hypothesis whose estimate is at
        least one standard error past `min_effect` in its direction gets deeper answers, so null hypotheses stay
        cheap. `depths` holds the answers a side each seen prompt was read at. The choice uses only prompts
        already seen and applies to prompts not yet answered, so it is predictable: the capital stays an
        e-process (statistics.md section 9.1)."""
        if self.most <= self.start or left <= 0 or seen.size < 2:
            return self.start
        mean = float(np.mean(seen)) * (1.0 if direction == "b>a" else -1.0)
        spread = float(np.std(seen, ddof=1))
        if spread <= 0.0 or mean - spread / np.sqrt(seen.size) < self.min_effect * spread:
            return self.start
        share = 1.0 if within is None else min(max(within, 0.0), 1.0)
        factor = [1.0 - share + share / m for m in range(1, self.most + 1)]  # d's variance at m over at 1
        # the variance of d with one answer a side: the prompts seen were read at their own depths
        single = spread**2 / float(np.mean([factor[min(int(m), self.most) - 1] for m in depths]))
        rate = [growth(mean, single * f) for f in factor]
        useful = self.start
        while useful < self.most and rate[useful] - rate[useful - 1] >= WORTH * rate[0]:
            useful += 1
        need = max(np.log(sure / max(e_value, 1e-300)), 0.0)
        for m in range(self.start, useful + 1):
            if need <= left * rate[m - 1] * PLAN_SHARE:
                return m
        return self.start


def growth(mean: float, variance: float) -> float:
    """The betting e-process's expected log growth per prompt on differences of this mean and variance (mean in
    the bet's direction): the Kelly stake mean / (variance + mean^2), capped at STAKE_CAP as the test's stakes
    are (a factor 1 + stake × d), to second order. Near its cap a stake gains little from a smaller variance."""
    stake = min(mean / (variance + mean**2), STAKE_CAP)
    return stake * mean - stake**2 * (variance + mean**2) / 2.0


def within_share(pairs: Sequence[np.ndarray], least: int = 8) -> float | None:
    """The share of one answer pair's variance that lies within prompts: `pairs` holds, per prompt with two
    answer pairs or more, the differences b_i - a_i of its pairs. The mean within-prompt variance over the
    variance of all the differences together; None with fewer than `least` such prompts."""
    if len(pairs) < least:
        return None
    within = float(np.mean([np.var(d, ddof=1) for d in pairs]))
    total = float(np.var(np.concatenate(list(pairs)), ddof=1))
    return min(within / total, 1.0) if total > 0 else None


def round_order(prompt_ids: Sequence[str], seed: int) -> list[str]:
    """The validation prompts in the order the rounds take them: a seeded hash of each id, so a prompt's
    place does not depend on which other prompts exist, and is fixed before any answer is seen (the
    e-process needs its observations in an order chosen in advance)."""
    return sorted(prompt_ids, key=lambda pid: (child_seed(seed, "round order", pid), pid))


def decide(outcomes: list[Outcome], alpha: float = 0.05) -> list[Outcome]:
    """e-BH over every hypothesis's e-value at stopping."""
    rejected = e_bh([o.e_value for o in outcomes], alpha)
    return [Outcome(**{**o.__dict__, "rejected": bool(r)}) for o, r in zip(outcomes, rejected)]
