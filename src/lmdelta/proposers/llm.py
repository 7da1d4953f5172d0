"""LLM proposer: show the proposer model N discovery answers per side of a group and ask for
1..k specific, falsifiable hypotheses, each with a side-free property a blind judge can score.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmdelta.config import LLMProposerConfig, RunConfig
from lmdelta.llm import prompts
from lmdelta.llm.session import LLMSession
from lmdelta.llm.types import CallResult, ChatRequest
from lmdelta.pairdata import PairData
from lmdelta.proposers import in_scope
from lmdelta.records import PROPOSER_FAILED, Direction, Hypothesis

log = logging.getLogger(__name__)
# LLMSession.asker's function: (requests, parse) -> [(CallResult, parsed)] in order.
Ask = Callable[[list[ChatRequest], Callable[[str], Any]], list[tuple[CallResult, Any]]]


@dataclass(frozen=True)
class Search:
    """Where a search round stands, for the LLM proposer: the round (1-based) and, per scope, the claims
    proposed before it that the proposer is told not to repeat."""

    round: int = 1
    earlier: dict[str, list[str]] = field(default_factory=dict)

    def seed_extra(self) -> list[int]:
        """Nothing in the first round (its draws are as before rounds existed), else the round."""
        return [] if self.round == 1 else [self.round]


def enabled(config: RunConfig) -> bool:
    """The LLM proposer runs when it is on and a proposer model is set (else propose opens no LLM session)."""
    return bool(config.propose.llm.enabled and config.llm.proposer.model)


@dataclass(frozen=True)
class LLMProposer:
    """A batch proposer: one request per scope, all sent together through the stage's LLM session."""

    ask: Ask
    model: str
    temperature: float

    def propose_scopes(
        self, data: PairData, scopes: dict[str, np.ndarray], config: RunConfig, search: Search | None = None
    ) -> tuple[list[Hypothesis], list[dict[str, Any]]]:
        return propose(
            data,
            scopes,
            self.ask,
            self.model,
            config.propose.llm,
            self.temperature,
            config.propose.resolved_seed,
            search or Search(),
        )


def prepare(config: RunConfig, session: LLMSession | None) -> LLMProposer | None:
    """The LLM proposer on the session's proposer role (None when it is off or no session is open)."""
    if session is None or not enabled(config):
        return None
    return LLMProposer(session.asker("proposer"), session.model("proposer"), session.temperature("proposer"))


def requests_for(
    data: PairData,
    scopes_rows: dict[str, np.ndarray],
    section: LLMProposerConfig,
    temperature: float,
    seed: int,
    search: Search | None = None,
) -> dict[str, tuple[ChatRequest, dict[str, list[str]]]]:
    """One proposal request per scope, with the answers shown (sample ids) for provenance. In a later search
    round the texts shown are drawn afresh, unexplained ones first, and the request lists what was proposed."""
    search = search or Search()
    out = {}
    for scope, rows in scopes_rows.items():
        rng = np.random.default_rng([seed, len(scope), sum(map(ord, scope)), *search.seed_extra()])
        shown = {side: _pick(data, rows, side, section.texts_per_side, rng) for side in ("a", "b")}
        texts = {side: [data.samples[i].text for i in shown[side]] for side in shown}
        request = prompts.propose_request(
            texts["a"],
            texts["b"],
            section.per_scope,
            section.instruction,
            temperature,
            exhausted=search.earlier.get(scope, []),
        )
        out[scope] = (request, {side: [data.samples[i].id for i in shown[side]] for side in shown})
    return out


def _pick(data: PairData, rows: np.ndarray, side: str, n: int, rng: np.random.Generator) -> list[int]:
    """n of the side's texts at random; texts an earlier round explained away only when too few others remain."""
    candidates = np.array([int(i) for i in rows if data.samples[i].side == side], dtype=int)
    if len(candidates) <= n:
        return sorted(candidates.tolist())
    fresh = candidates[data.weight(candidates) >= 1.0]
    if len(fresh) >= n and len(fresh) < len(candidates):
        candidates = fresh
    return sorted(rng.choice(candidates, size=n, replace=False).tolist())


def propose(
    data: PairData,
    scopes_rows: dict[str, np.ndarray],
    ask: Ask,
    model: str,
    section: LLMProposerConfig,
    temperature: float,
    seed: int,
    search: Search | None = None,
) -> tuple[list[Hypothesis], list[dict[str, Any]]]:
    """Hypotheses per scope, plus a record per scope whose call failed (kept, never silent).

    `ask(requests, parse)` returns [(CallResult, parsed)] in order (see LLMSession.asker).
    """
    planned = requests_for(data, scopes_rows, section, temperature, seed, search)
    answers = ask([request for request, _ in planned.values()], prompts.parse_hypotheses)
    found: list[Hypothesis] = []
    failed: list[dict[str, Any]] = []
    for (scope, (_, shown)), (result, items) in zip(planned.items(), answers):
        if not result.ok:
            failed.append(
                {
                    "group": scope,
                    "rule": PROPOSER_FAILED,
                    "reason": f"LLM proposer failed ({result.error_kind}): {result.error_message}",
                }
            )
            continue
        found += [_hypothesis(scope, item, shown, data.labels, model) for item in items[: section.per_scope]]
    return found, failed


def _hypothesis(
    scope: str, item: dict[str, str], shown: dict[str, list[str]], labels: dict[str, str], model: str
) -> Hypothesis:
    description = in_scope(_name_sides(item["description"], labels), scope)
    return Hypothesis(
        id="",
        group=scope,
        direction=_direction(item["direction"]),
        description=description,
        proposer="llm",
        judge="llm",
        property=item["property"],
        evidence={side: ids[:3] for side, ids in shown.items()},
        provenance={"model": model, "texts_shown": {s: len(v) for s, v in shown.items()}},
    )


def _direction(value: str) -> Direction:
    """The parsed item's direction (prompts.parse_hypotheses keeps only items with one of the two)."""
    if value == "b>a":
        return "b>a"
    if value == "a>b":
        return "a>b"
    raise ValueError(f"not a direction: {value!r}")


def _name_sides(text: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\bModel A\b", labels["a"], text)
    return re.sub(r"\bModel B\b", labels["b"], text)
