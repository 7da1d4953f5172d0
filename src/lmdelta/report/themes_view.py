"""The report's Themes section: stages/report/themes.json (written by the report stage) joined to the report's
finding cards, so each member links to its card and a claim validated in several scopes is listed once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lmdelta.report.merge import POOLED, SCOPE_NOTE, MergedFinding
from lmdelta.report.runfiles import load_json
from lmdelta.rundir import THEMES, RunDir
from lmdelta.themes import Member, Theme, Themes

logger = logging.getLogger(__name__)


def themes_context(
    run_dir: Path, rows: Sequence[Mapping[str, Any]] | None, merged: Sequence[MergedFinding]
) -> dict[str, Any] | None:
    """The section's content, or None for a run without themes.json (made before themes existed, or unfinished)."""
    data = load_json(RunDir(run_dir).stage_file("report", THEMES))
    if not data:
        return None
    try:
        found = Themes.from_dict(data)
    except (KeyError, TypeError, ValueError) as err:
        logger.warning("%s is not a themes file this version reads (%s); the report shows no themes", THEMES, err)
        return None
    by_id = {str(row["id"]): row for row in rows or []}
    cards = Cards({str(f.lead["anchor"]): f for f in merged}, by_id)
    return {
        "summary": found.summary,
        "rounds": list(found.rounds),
        "themes": [_theme(theme, cards) for theme in found.themes],
        "findings": sum(len(theme.members) for theme in found.themes),
    }


class Cards:
    """Where the report shows each finding: its row (by id) and the card of its claim (by the row's anchor)."""

    def __init__(self, cards: dict[str, MergedFinding], rows: dict[str, Mapping[str, Any]]) -> None:
        self.cards, self.rows = cards, rows
        self.card_of = {str(row["anchor"]): anchor for anchor, finding in cards.items() for row in finding.rows}

    def anchor(self, finding_id: str) -> str | None:
        row = self.rows.get(finding_id)
        return self.card_of.get(str(row["anchor"]), str(row["anchor"])) if row else None

    def keywords(self, finding_id: str) -> list[str]:
        row = self.rows.get(finding_id)
        return list(row.get("keywords") or []) if row else []


def _theme(theme: Theme, cards: Cards) -> dict[str, Any]:
    """One theme: its members strongest first, one entry per card (a claim's scopes together)."""
    members: dict[str, dict[str, Any]] = {}
    for member in theme.members:
        card = cards.anchor(member.id)
        if (card or member.id) not in members:
            members[card or member.id] = _member(member, card, cards.cards.get(card) if card else None)
    listed = list(members.values())
    return {
        "id": theme.id,
        "title": listed[0]["description"] if listed else theme.title,
        "effect": theme.effect,
        "directions": list(theme.directions),
        "rounds": list(theme.rounds),
        "members": listed,
        "evidence": [{"side": e.side, "text": e.text, "keywords": cards.keywords(e.finding)} for e in theme.evidence],
    }


def _member(member: Member, card: str | None, finding: MergedFinding | None) -> dict[str, Any]:
    """A member as listed: its claim without the "(prompts about GROUP)" the scope beside it repeats."""
    description = finding.description() if finding else member.description
    return {
        "description": description.removesuffix(f" ({SCOPE_NOTE} {member.group})"),
        "scope": (finding.scope_phrase() if finding else "") or _scope(member.group),
        "effect": member.effect,
        "round": member.round,
        "href": card,
    }


def _scope(group: str) -> str:
    return "all prompts" if group == POOLED else f"group {group}"
