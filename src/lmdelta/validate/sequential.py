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

from lmdelta.stats.sequential import Side, betting_test, confidence_sequence, e_bh

Reason = Literal["rejected", "futile", "cap", "exhausted"]


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
) -> list[Outcome]:
    """Test each row of D (in column order, the prompts' seeded order) round by round.

    A hypothesis stops when its e-value reaches len(D)/alpha (then e-BH rejects it whatever the others
    show), when its confidence sequence excludes every effect of at least `min_effect` in its direction
    (futile; with min_effect 0, when it excludes the direction altogether), at the prompt cap, or when
    the prompts run out. Directions are "b>a" (E[d] > 0) or "a>b".
    """
    D = np.asarray(D, dtype=float)
    ends = rounds.boundaries(D.shape[1])
    sure = len(D) / alpha
    return [_one(D[h], direction, ends, alpha, sure, min_effect) for h, direction in enumerate(directions)]


def _one(d: np.ndarray, direction: str, ends: list[int], alpha: float, sure: float, min_effect: float) -> Outcome:
    side: Side = "greater" if direction == "b>a" else "less"
    outcome = None
    for number, end in enumerate(ends, start=1):
        seen = d[:end][~np.isnan(d[:end])]
        test = betting_test(seen, side=side, alpha=alpha)
        cs = confidence_sequence(seen, alpha=alpha)
        reason = _reason(test.e_value, sure, cs, direction, min_effect, number == len(ends), end < d.size)
        outcome = Outcome(number, reason or "cap", seen.size, test.e_value, test.p_value, (cs.low, cs.high))
        if reason:
            return outcome
    return outcome or Outcome(0, "exhausted", 0, 1.0, 1.0, (-1.0, 1.0))


def _reason(e_value, sure, cs, direction, min_effect, last: bool, more: bool) -> Reason | None:
    if e_value >= sure:
        return "rejected"
    futile = cs.excludes_above(min_effect) if direction == "b>a" else cs.excludes_below(min_effect)
    if futile and cs.n:
        return "futile"
    if last:
        return "cap" if more else "exhausted"
    return None


def decide(outcomes: list[Outcome], alpha: float = 0.05) -> list[Outcome]:
    """e-BH over every hypothesis's e-value at stopping."""
    rejected = e_bh([o.e_value for o in outcomes], alpha)
    return [Outcome(**{**o.__dict__, "rejected": bool(r)}) for o, r in zip(outcomes, rejected)]
