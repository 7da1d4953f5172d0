"""Proposers turn discovery samples into hypotheses. They never see validation prompts.

Two kinds, asked by stages.propose in a fixed order that is the online-FDR order: per scope, each
`Proposer` in turn; then each `BatchProposer` once over every planned scope.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.pairdata import PairData
from lmdelta.records import Hypothesis


class Proposer(Protocol):
    """Proposes in one scope at a time, from that scope's discovery rows (indices into data.samples).

    Each proposer's module has `prepare(data, config)`, run once per comparison: it returns None
    when the proposer is turned off, else a proposer holding what every scope shares (keywords:
    n-gram document counts over all discovery texts), so that work is not redone per scope and
    `propose` stays the whole per-scope contract. Hypotheses come back with id="": the stage
    numbers them in proposal order.
    """

    def propose(self, data: PairData, scope: str, rows: np.ndarray, config: RunConfig) -> list[Hypothesis]: ...


class BatchProposer(Protocol):
    """Proposes in every planned scope with one call, for work that batches across scopes (the LLM
    proposer sends one request per scope together).

    Its module's `prepare(config, session)` returns None when it is off (the session is the stage's
    LLMSession, None when the run opens none). `propose_scopes` returns the hypotheses (id="") in
    scope order, and a skipped record (group, rule, reason) per scope it was asked for but could not
    propose in, e.g. a failed call: such a scope was proposed in, so it is reported, never dropped.
    `search` is the search round (lmdelta.proposers.llm.Search: its number, and what earlier rounds proposed).
    """

    def propose_scopes(
        self, data: PairData, scopes: dict[str, np.ndarray], config: RunConfig, search: Any = None
    ) -> tuple[list[Hypothesis], list[dict[str, Any]]]: ...


def in_scope(description: str, scope: str) -> str:
    """A hypothesis's description with the scope it was proposed in, unless that is all prompts."""
    return description if scope == "all" else f"{description} (prompts about {scope})"
