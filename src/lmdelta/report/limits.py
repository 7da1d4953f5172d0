"""What a run without an LLM proposer can and cannot see, for the report and the terminal: the offline proposers
notice words, answer clusters and measurable text properties, not meaning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lmdelta.records import GIVEN

# The offline proposers (their `proposer` value and config section under `propose`), in proposal order, and what
# each one can notice.
OFFLINE: dict[str, str] = {
    "keywords": "which words and phrases each side uses",
    "clusters": "answers that fall into different clusters by embedding similarity",
    "properties": (
        "measurable text properties (length, punctuation, markdown and lists, emoji, hedging, refusals, "
        "sentiment, readability and the rest of docs/properties.md)"
    ),
}
CANNOT_SEE = "differences in meaning: factual accuracy, reasoning quality, stance, persona, or tone beyond the lexicons"
LLM_ROLES = ("llm.proposer.model", "llm.judge.model")
LLM_DOCS = "docs/llm.md"


@dataclass(frozen=True)
class Limits:
    """The offline proposers that ran (OFFLINE's keys) and so the kinds of difference this run could see."""

    proposers: tuple[str, ...]

    @property
    def sees(self) -> list[str]:
        return [OFFLINE[name] for name in self.proposers]

    def line(self) -> str:
        """One line for the terminal."""
        seen = ", ".join(self.proposers) or "none"
        return (
            f"limits: no LLM proposer ran (offline proposers: {seen}), so this run cannot see {CANNOT_SEE}; "
            f"set {' and '.join(LLM_ROLES)} to look for them (see {LLM_DOCS})"
        )


def run_limits(config: Mapping[str, Any], rows: Iterable[Mapping[str, Any]] | None) -> Limits | None:
    """The limits of a run that proposed offline only; None when an LLM proposer ran (a row it proposed, or
    llm.proposer.model set with propose.llm on), a proposer this module does not know did (it may see more), or
    nothing says what ran (no config and no rows). `config` is the run's config.yaml as read; `rows` its finding
    rows."""
    proposers = {str(row.get("proposer")) for row in rows or []} - {GIVEN}  # given ones say nothing of what was seen
    if proposers - set(OFFLINE) or _llm_proposer_on(config):
        return None
    if not config and not proposers:
        return None
    on = _enabled_offline(config) | proposers
    return Limits(tuple(name for name in OFFLINE if name in on))


def _llm_proposer_on(config: Mapping[str, Any]) -> bool:
    model = _section(_section(config, "llm"), "proposer").get("model")
    return bool(model) and _section(_section(config, "propose"), "llm").get("enabled") is not False


def _enabled_offline(config: Mapping[str, Any]) -> set[str]:
    """The offline proposers the config switches on: their section is there and not `enabled: false` (a config
    written before a proposer existed has no section for it)."""
    propose = _section(config, "propose")
    return {name for name in OFFLINE if name in propose and _section(propose, name).get("enabled") is not False}


def _section(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = mapping.get(key)
    return value if isinstance(value, Mapping) else {}
