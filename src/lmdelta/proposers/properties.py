"""Text-property contrast: which interpretable properties of the answers (length, exclamation marks,
bold, hedging, sentiment, …: lmdelta.properties, and the run's own) differ between the two sides?

Every chosen property is scored once per comparison over all discovery texts (one Texts batch, so
tokens and sentences are computed once). In a scope, answers are paired by prompt where both sides
answered: each side's mean value per prompt and their difference d_p = b − a; in unaligned corpora
each text is its own unit. A property is proposed when it passes a screen on discovery data only: a
two-sided paired t test on the d_p (Welch's t over texts when unaligned) with p < max_p, and a
standardized difference |mean d| / sd(d) of at least min_effect. The screen only picks candidates;
validation tests them on held-out prompts with the property itself as the judge.

An amount and its presence view ("exclamation marks" and "uses exclamation marks") say the same thing
twice, as do the lengths in words and in characters, so per scope only the clearer of them (the larger
|t|, i.e. the smaller screening p) is proposed; then the strongest (largest |t|) first, at most
per_scope per scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmdelta.config import PropertyProposerConfig, RunConfig
from lmdelta.pairdata import PairData
from lmdelta.properties import Contrast, Property, contrast, describe, summary_statistic
from lmdelta.properties.base import PRESENCE_PREFIX
from lmdelta.proposers import in_scope
from lmdelta.records import Direction, Hypothesis

EVIDENCE = 3  # answers per side kept as evidence
# Built-in properties that measure the same thing as another one: only the clearer of them is proposed
# per scope (a longer answer is longer in words and in characters alike).
SAME_QUESTION = {"characters": "words"}
_REL_TOL = 1e-9  # a spread this small next to the mean is rounding error, not spread


@dataclass(frozen=True)
class Screen:
    """One property's contrast b − a in one scope on discovery data: the mean difference in the
    property's raw unit over units (prompts, or texts when unaligned), its sd, and the t test's result."""

    prop: Property
    difference: float
    sd: float
    t: float
    p_value: float
    n_units: int

    @property
    def effect(self) -> float:
        """|mean difference| / sd: infinite when every unit differs by the same non-zero amount."""
        if self.sd > 0:
            return abs(self.difference) / self.sd
        return np.inf if self.difference != 0 else 0.0

    @property
    def direction(self) -> Direction:
        return "b>a" if self.difference > 0 else "a>b"

    def passes(self, section: PropertyProposerConfig) -> bool:
        return bool(self.p_value < section.max_p and self.effect >= section.min_effect and self.difference != 0)


@dataclass(frozen=True)
class Candidate:
    """A screened property with the numbers its description gives (on the scope's discovery texts)."""

    screen: Screen
    readable: Contrast
    column: int  # the property's column in the proposer's values


@dataclass(frozen=True)
class ScopeAnswers:
    """A scope's discovery answers as the screen sees them: their rows, unit and side."""

    rows: np.ndarray  # sample rows, answers of prompts only one side answered left out when paired
    units: np.ndarray  # unit index per row: the prompt's (paired) or the row's own (texts)
    is_b: np.ndarray
    paired: bool


@dataclass(frozen=True)
class PropertyProposer:
    """The property proposer for one comparison: every chosen property's raw value for every discovery
    answer, computed once and shared by all scopes."""

    measures: tuple[Property, ...]
    specs: dict[str, dict[str, Any]]  # a user property's name (and its has_<name> view's) → its config entry
    values: DiscoveryScores  # raw values of discovery answers, NaN for other rows
    paired: bool

    def propose(self, data: PairData, scope: str, rows: np.ndarray, config: RunConfig) -> list[Hypothesis]:
        """The scope's strongest differing properties, one hypothesis each (see the module docstring)."""
        section = config.propose.properties
        units = scope_units(data, rows, self.paired)
        values = self.values[units.rows]
        screens = screen(self.measures, values, units)
        candidates = [
            Candidate(s, found, k)
            for k, s in enumerate(screens)
            if s.passes(section) and (found := readable(s, values[:, k], units.is_b)) is not None
        ]
        chosen = strongest(one_view_each(candidates), section.per_scope)
        return [self._hypothesis(data, scope, units, values, c) for c in chosen]

    def _hypothesis(
        self, data: PairData, scope: str, units: ScopeAnswers, values: np.ndarray, candidate: Candidate
    ) -> Hypothesis:
        s, prop = candidate.screen, candidate.screen.prop
        more, less = ("b", "a") if s.direction == "b>a" else ("a", "b")
        description = in_scope(describe(prop, data.labels[more], data.labels[less], candidate.readable), scope)
        column = values[:, candidate.column]
        return Hypothesis(
            id="",
            group=scope,
            direction=s.direction,
            description=description,
            proposer="properties",
            judge="property",
            property=statement(prop),
            evidence=evidence(data, units, column, more),
            provenance=provenance(candidate, units),
            measure=prop.name,
            measure_spec=self.specs.get(prop.name),
        )


def prepare(data: PairData, config: RunConfig) -> PropertyProposer | None:
    """The property proposer for this comparison (None when propose.properties is off): every chosen
    property scored over all discovery answers in one batch."""
    section = config.propose.properties
    if not section.enabled:
        return None
    measures = section.chosen()
    values = score_discovery(data, measures)
    specs = {}
    for spec in section.custom:
        specs[spec["name"]] = specs[PRESENCE_PREFIX + spec["name"]] = dict(spec)
    return PropertyProposer(measures, specs, values, data.shares_prompts())


@dataclass(frozen=True)
class DiscoveryScores:
    """Properties' raw values for the discovery answers (discovery answers × measures), read by the comparison's
    row numbers: `scores[rows]` is rows × measures, NaN for a row that is not a discovery answer. Only the
    discovery rows are stored (about a third of the answers; before, every answer had a row of NaN or values)."""

    position: np.ndarray  # per row of the comparison: its row in `values`, -1 for other answers
    values: np.ndarray

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if rows.dtype == bool:
            raise TypeError("DiscoveryScores takes row numbers, not a boolean mask (np.flatnonzero(mask))")
        at = self.position[rows.astype(np.int64, copy=False)]
        if not len(self.values):
            return np.full((len(at), self.values.shape[1]), np.nan)
        found = self.values[np.maximum(at, 0)]
        found[at < 0] = np.nan
        return found


def score_discovery(data: PairData, measures: tuple[Property, ...]) -> DiscoveryScores:
    """Every measure scored over all discovery answers in one batch."""
    discovery = data.rows("discovery")
    position = np.full(len(data.samples), -1, dtype=np.int64)
    position[discovery] = np.arange(len(discovery))
    values = np.full((len(discovery), len(measures)), np.nan)
    if len(discovery) and measures:
        batch = data.texts(discovery)
        batch.score_in_parts(prop.scorer for prop in measures)
        values[:] = np.column_stack([prop.score(batch) for prop in measures])
    return DiscoveryScores(position, values)


def scope_units(data: PairData, rows: np.ndarray, paired: bool) -> ScopeAnswers:
    """The scope's answers with their units: prompts answered by both sides when the corpora are
    paired (answers to other prompts left out), else each answer on its own."""
    is_b = data.samples.is_b(rows)
    if not paired:
        return ScopeAnswers(rows, np.arange(len(rows)), is_b, paired=False)
    prompt_ids = data.samples.prompt_ids(rows)
    sides: dict[str, set[bool]] = {}
    for pid, b in zip(prompt_ids, is_b):
        sides.setdefault(pid, set()).add(bool(b))
    both = sorted(pid for pid, found in sides.items() if len(found) == 2)
    position = {pid: k for k, pid in enumerate(both)}
    keep = np.array([pid in position for pid in prompt_ids], dtype=bool)
    units = np.array([position[pid] for pid, kept in zip(prompt_ids, keep) if kept], dtype=int)
    return ScopeAnswers(rows[keep], units, is_b[keep], paired=True)


def screen(measures: tuple[Property, ...], values: np.ndarray, units: ScopeAnswers) -> list[Screen]:
    """Each property's screening contrast b − a over the scope's units (values: rows × measures)."""
    if units.paired:
        n_units = int(units.units.max()) + 1 if len(units.units) else 0
        mean_a = _unit_means(values[~units.is_b], units.units[~units.is_b], n_units)
        mean_b = _unit_means(values[units.is_b], units.units[units.is_b], n_units)
        difference, sd, t, df, n = _paired_t(mean_b - mean_a)
    else:
        difference, sd, t, df, n = _welch_t(values[~units.is_b], values[units.is_b])
    p_values = _two_sided_p(t, df)
    return [
        Screen(prop, float(difference[k]), float(sd[k]), float(t[k]), float(p_values[k]), int(n[k]))
        for k, prop in enumerate(measures)
    ]


def _unit_means(values: np.ndarray, units: np.ndarray, n_units: int) -> np.ndarray:
    """Mean of each column's finite values per unit (units × measures), NaN where a unit has none."""
    finite = np.isfinite(values)
    sums = np.zeros((n_units, values.shape[1]))
    counts = np.zeros((n_units, values.shape[1]))
    np.add.at(sums, units, np.where(finite, values, 0.0))
    np.add.at(counts, units, finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _paired_t(d: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per column of d (units × measures): mean, sd, t = mean / (sd / √n), df = n − 1 and n, over finite d."""
    n, mean, var = _moments(d)
    sd = np.sqrt(var)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = _ratio(mean, sd / np.sqrt(n))
    return mean, sd, t, n - 1.0, n


def _welch_t(values_a: np.ndarray, values_b: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per column: mean b − mean a, the pooled sd √((var_a + var_b) / 2), Welch's t, its df and the
    number of texts, over finite values (NaN where a side has fewer than two)."""
    (n_a, mean_a, var_a), (n_b, mean_b, var_b) = _moments(values_a), _moments(values_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        se_a, se_b = var_a / n_a, var_b / n_b
        difference = mean_b - mean_a
        t = _ratio(difference, np.sqrt(se_a + se_b))
        df = (se_a + se_b) ** 2 / (se_a**2 / (n_a - 1) + se_b**2 / (n_b - 1))
    return difference, np.sqrt((var_a + var_b) / 2), t, df, n_a + n_b


def _moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: the number of finite values, their mean and variance (ddof 1); NaN below two values.
    A variance that is rounding error next to the mean (equal values summed in another order) is 0."""
    finite = np.isfinite(values)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n >= 2, np.where(finite, values, 0.0).sum(axis=0) / n, np.nan)
        var = np.where(finite, (values - mean) ** 2, 0.0).sum(axis=0) / (n - 1)
    var = np.where(var <= (_REL_TOL * mean) ** 2, 0.0, var)
    return n, mean, var


def _ratio(value: np.ndarray, se: np.ndarray) -> np.ndarray:
    """value / se, with a zero se giving ±inf for a non-zero value and 0 for zero (no spread at all)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = value / se
    return np.where(se == 0, np.where(value == 0, 0.0, np.sign(value) * np.inf), t)


def _two_sided_p(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    from scipy.special import stdtr  # lazy: scipy is slow to import (scipy.stats slower still)

    with np.errstate(invalid="ignore"):
        p = 2 * stdtr(df, -np.abs(t))
    return np.where(np.isinf(t), 0.0, p)


def readable(s: Screen, values: np.ndarray, is_b: np.ndarray) -> Contrast | None:
    """The numbers that show the difference on the scope's discovery answers (the favoured side first):
    the median (or share, for a presence), the mean where the medians do not differ that way, and None
    where neither does (unequal answer counts can make the texts disagree with the paired mean)."""
    more_is_b = s.direction == "b>a"
    more, less = (values[is_b], values[~is_b]) if more_is_b else (values[~is_b], values[is_b])
    found = contrast(s.prop, more, less, summary_statistic(s.prop, more, less))
    if found.statistic == "median" and not found.more > found.less:
        found = contrast(s.prop, more, less, "mean")
    return found if found.more > found.less else None


def one_view_each(candidates: list[Candidate]) -> list[Candidate]:
    """Properties that ask one question count once: an amount and its has_<name> presence view, and the
    lengths in words and in characters (SAME_QUESTION). The one with the larger |t| is kept; on a tie (a
    perfect split on both) the presence view, whose share of answers reads more plainly than a count."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        question = _question(c.screen.prop)
        held = best.get(question)
        clearer = held is None or abs(c.screen.t) > abs(held.screen.t)
        tie = held is not None and abs(c.screen.t) == abs(held.screen.t) and c.screen.prop.kind == "presence"
        if clearer or tie:
            best[question] = c
    kept = {c.column for c in best.values()}
    return [c for c in candidates if c.column in kept]


def _question(prop: Property) -> str:
    base = prop.name.removeprefix(PRESENCE_PREFIX)
    return SAME_QUESTION.get(base, base)


def strongest(candidates: list[Candidate], k: int) -> list[Candidate]:
    """The k candidates with the largest |t| (ties in registry order, which `sorted` keeps)."""
    return sorted(candidates, key=lambda c: -abs(c.screen.t))[:k]


def statement(prop: Property) -> str:
    """The hypothesis stated without either side, for blind judges."""
    if prop.kind == "presence":
        return f"{prop.phrase} — {prop.description}"
    return f"a high value of {prop.name} — {prop.description}"


def evidence(data: PairData, units: ScopeAnswers, column: np.ndarray, more: str) -> dict[str, list[str]]:
    """Sample ids of the favoured side's answers with the highest values and the other side's with the lowest."""
    found = {}
    for side, is_side in (("a", ~units.is_b), ("b", units.is_b)):
        candidates = np.flatnonzero(is_side & np.isfinite(column))
        order = np.argsort(-column[candidates] if side == more else column[candidates], kind="stable")
        found[side] = [data.samples[units.rows[i]].id for i in candidates[order][:EVIDENCE]]
    return found


def provenance(candidate: Candidate, units: ScopeAnswers) -> dict[str, Any]:
    """The discovery statistics behind the proposal."""
    s, numbers = candidate.screen, candidate.readable
    more, less = ("b", "a") if s.direction == "b>a" else ("a", "b")
    return {
        "property": s.prop.name,
        "kind": s.prop.kind,
        "unit": "prompt" if units.paired else "text",
        "n_units": s.n_units,
        "mean_difference": _rounded(s.difference),
        "sd": _rounded(s.sd),
        "standardized_effect": _rounded(s.effect),
        "t": _rounded(s.t),
        "screening_p": _rounded(s.p_value, 6),
        "statistic": numbers.statistic,
        "discovery": {more: _rounded(numbers.more), less: _rounded(numbers.less)},
        "discovery_texts": {"a": int((~units.is_b).sum()), "b": int(units.is_b.sum())},
    }


def _rounded(value: float, digits: int = 4) -> float | None:
    """A number as JSON holds it: rounded, None when infinite or undefined."""
    return round(float(value), digits) if np.isfinite(value) else None
