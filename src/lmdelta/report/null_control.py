"""What the null control says: how many hypotheses it tested and validated, and whether its p-values
look uniform. A pure function of null_control.jsonl and summary.json, for the HTML report and the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lmdelta.jsonvalues import finite
from lmdelta.records import PROPOSER_FAILED

NOMINAL = 0.05  # the share of null p-values at or below it should be about this
LEVEL = 0.95
Status = Literal["off", "untestable", "passed", "failed"]


@dataclass(frozen=True)
class NullControl:
    """`passed`: it tested something and validated nothing; `failed`: it validated something;
    `untestable`: it tested nothing (`reason` says why); `off`: it did not run."""

    status: Status
    tested: int = 0
    validated: int = 0
    reason: str | None = None
    small: int = 0  # tested hypotheses with p ≤ NOMINAL
    small_ci: tuple[float, float] | None = None  # Clopper–Pearson interval of small / tested
    ks: float | None = None  # one-sided KS distance D+ = max(F_n(p) − p): an excess of small p-values
    ks_p: float | None = None

    @property
    def small_share(self) -> float | None:
        return self.small / self.tested if self.tested else None

    @property
    def leans_small(self) -> bool:
        """More p-values ≤ 0.05 than chance allows: the interval for their share lies above 0.05."""
        return self.small_ci is not None and self.small_ci[0] > NOMINAL


def summarize_null(rows: list[dict[str, Any]] | None, summary: dict[str, Any] | None) -> NullControl:
    """The null control from its decided rows (None: no null_control.jsonl) and summary.json's `null` entry."""
    if rows is None and not summary:
        return NullControl("off")
    summary = summary or {}
    if rows is None:  # only the summary survives: counts, but no p-values to describe
        tested, validated = int(summary.get("tested") or 0), int(summary.get("validated") or 0)
        p_values: list[float] = []
    else:
        p_values = [p for p in (finite(row.get("p_value")) for row in rows) if p is not None]
        tested, validated = len(p_values), sum(1 for row in rows if row.get("validated") is True)
    if validated:
        status: Status = "failed"
    elif tested:
        status = "passed"
    else:
        return NullControl("untestable", reason=_why_untested(rows or [], summary.get("skipped_groups") or []))
    found = NullControl(status, tested, validated)
    if not p_values:
        return found
    small = sum(p <= NOMINAL for p in p_values)
    ks, ks_p = ks_excess_small(p_values)
    return NullControl(
        status, tested, validated, small=small, small_ci=clopper_pearson(small, len(p_values)), ks=ks, ks_p=ks_p
    )


def _why_untested(rows: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> str:
    if rows:
        return f"none of its {len(rows)} hypotheses had validation answers it could score"
    entries = [entry for entry in skipped if isinstance(entry, dict) and entry.get("group")]
    failed = sorted({str(e["group"]) for e in entries if e.get("rule") == PROPOSER_FAILED})
    by_reason: dict[str, list[str]] = {}
    for entry in entries:
        if entry.get("rule") != PROPOSER_FAILED:  # a failed call is a scope proposed in, not one left out
            by_reason.setdefault(str(entry.get("reason") or "skipped"), []).append(str(entry["group"]))
    failures = f"the LLM proposer failed in: {', '.join(failed)}" if failed else ""
    if not by_reason:
        aside = f" ({failures})" if failures else ""
        return (
            f"the proposers found no difference on the relabelled discovery prompts{aside}, "
            "so there was nothing to test"
        )
    left_out = "; ".join(f"{', '.join(groups)}: {reason}" for reason, groups in by_reason.items())
    aside = f"; {failures}" if failures else ""
    return f"it proposed no hypotheses on the relabelled discovery prompts (scopes left out: {left_out}{aside})"


def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact two-sided binomial interval for k successes in n trials."""
    from scipy.stats import beta

    tail = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def ks_excess_small(p_values: list[float]) -> tuple[float, float]:
    """One-sided Kolmogorov–Smirnov distance of the p-values from uniform, toward too many small ones.

    Valid randomization p-values may be conservative (discrete, many at 1 when a property is rare),
    which a two-sided test would also flag; only an excess of small p-values counts against a test.
    """
    from scipy.stats import kstest

    result = kstest(p_values, "uniform", alternative="greater")
    return float(result.statistic), float(result.pvalue)


def headline(null: NullControl) -> str | None:
    """One line for the terminal (None when the null control did not run)."""
    if null.status == "off":
        return None
    if null.status == "untestable":
        return f"null control: not testable ({null.reason})"
    counts = f"{null.validated} of {null.tested} validated"
    if null.status == "failed":
        text = f"null control FAILED (a/b relabelled at random, no real difference): {counts}"
    else:
        text = f"null control (a/b relabelled at random): {counts}"
    return text + _distribution(null)


def _distribution(null: NullControl) -> str:
    if null.small_ci is None or null.ks_p is None:
        return ""
    low, high = null.small_ci
    text = (
        f"; p ≤ {NOMINAL:g} in {null.small} of {null.tested} ({null.small_share:.0%}, "
        f"95% CI {low:.0%}–{high:.0%}), KS D+ = {null.ks:.2f} (p = {_p(null.ks_p)})"
    )
    return text + (" — more small p-values than chance allows" if null.leans_small else "")


def _p(value: float) -> str:
    return f"{value:.1e}" if value < 1e-3 else f"{value:.2f}"
