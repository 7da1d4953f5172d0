"""One finding per claim: the same hypothesis tested in several scopes (groups, and the pooled `all`) is shown
once, with each scope's effect. Presentation only: every test stays a row of hypotheses.jsonl and in its FDR family.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lmdelta.jsonvalues import finite

POOLED = "all"  # the scope of every prompt pooled (propose.scopes)
SCOPE_NOTE = "prompts about"  # proposers end a group's description with "(prompts about GROUP)"
Row = Mapping[str, Any]  # a finding row: records.Finding's fields by name, as the files and the report hold them


def content_key(row: Row) -> tuple[Any, ...]:
    """What a finding claims, whatever scope it was tested in: its proposer, judge and direction, and what it
    measures: the property's `measure` when it has one, else its keywords (as a set, case-folded), else its
    side-free `property` statement (else its description). Not its id, group, order or numbers.

    An embedding-judged hypothesis (an answer cluster) keys by its own id: it is scored against a prototype made
    from its own scope's answers, so the clusters of two scopes are never the same claim, even with the same words."""
    head = (str(row.get("proposer") or ""), str(row.get("judge") or ""), str(row.get("direction") or ""))
    if head[1] == "embedding":
        return (*head, "id", str(row.get("id") or ""))
    if row.get("measure"):
        return (*head, "measure", str(row["measure"]))
    keywords = frozenset(str(k).strip().casefold() for k in row.get("keywords") or [] if str(k).strip())
    if keywords:
        return (*head, "keywords", keywords)
    return (*head, "claim", str(row.get("property") or row.get("description") or ""))


@dataclass(frozen=True)
class MergedFinding:
    """The rows of one claim: `rows` every scope it was tested in (groups by name, then the pooled scope), `lead`
    the row its card leads with (the pooled scope when validated there, else the validated row with the smallest p)."""

    key: tuple[Any, ...]
    rows: tuple[Row, ...]
    lead: Row

    @property
    def validated(self) -> list[Row]:
        return [row for row in self.rows if is_validated(row)]

    @property
    def merged(self) -> bool:
        return len(self.rows) > 1

    def description(self) -> str:
        """The lead's description, without the "(prompts about GROUP)" the proposers add in a group's scope when the
        claim stands for several scopes (each one is named beside its effect)."""
        text = str(self.lead.get("description") or "")
        suffix = f" ({SCOPE_NOTE} {self.lead.get('group')})"
        return text.removesuffix(suffix) if self.merged else text

    def scope_phrase(self) -> str:
        """Where it was validated, for a card's chip: "in 3 of 5 groups", "in 4 groups and pooled"; empty for a claim
        tested in one scope only."""
        if not self.merged:
            return ""
        pooled = any(row.get("group") == POOLED and is_validated(row) for row in self.rows)
        return self.groups_phrase() + (" and pooled" if pooled else "")

    def groups_phrase(self) -> str:
        """In how many of the groups it was tested in (the pooled scope aside) it was validated: "in 3 of 5 groups",
        "in 4 groups" (all of them)."""
        groups = [row for row in self.rows if row.get("group") != POOLED]
        validated = sum(is_validated(row) for row in groups)
        counted = f"{validated} of {len(groups)}" if validated < len(groups) else f"{len(groups)}"
        return f"in {counted} group{'' if len(groups) == 1 else 's'}"


def merge_findings(rows: Iterable[Row]) -> list[MergedFinding]:
    """The validated claims, each once with every scope it was tested in (validated there or not), strongest first:
    by the smallest p-value among their validated rows."""
    by_key: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        by_key.setdefault(content_key(row), []).append(row)
    merged = [_merged(key, found) for key, found in by_key.items() if any(is_validated(row) for row in found)]
    return sorted(merged, key=lambda finding: min(_strength(row) for row in finding.validated))


def is_validated(row: Row) -> bool:
    return row.get("validated") is True


def _merged(key: tuple[Any, ...], rows: list[Row]) -> MergedFinding:
    ordered = sorted(rows, key=lambda row: (row.get("group") == POOLED, str(row.get("group") or "")))
    validated = [row for row in ordered if is_validated(row)]
    pooled = [row for row in validated if row.get("group") == POOLED]
    lead = pooled[0] if pooled else min(validated, key=_strength)
    return MergedFinding(key=key, rows=tuple(ordered), lead=lead)


def _strength(row: Row) -> tuple[float, float]:
    """Smaller is stronger: the p-value, then the proposal order (missing ones last)."""
    p, order = finite(row.get("p_value")), finite(row.get("order"))
    return (math.inf if p is None else p, math.inf if order is None else order)
