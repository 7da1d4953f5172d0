"""The hypothesis search loop: rounds of proposing on the discovery answers (propose.rounds).

Round 1 is the proposers as they always ran. After each round the new hypotheses are compared with
every earlier one (lmdelta.diversity: near-duplicates dropped or merged), the discovery texts the kept
ones fire on are explained away (they keep weight `propose.explain_weight` in the offline proposers'
contrasts, and the LLM proposer is shown other texts), and the LLM proposer is told what was already
proposed in its scope. The loop stops by itself when a round adds no new distinct hypothesis.

Every round reads discovery answers only: the hypotheses that reach validation are a function of
the discovery data, so BH over all of them, or an online procedure in proposal order, is exactly as
valid as for one round. (Feeding back what *validation* decided would make later hypotheses depend
on the validation data; docs/search.md says why the loop does not.)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.diversity import Claimed, Duplicate, Embed, claim, claimed, deduplicate, explained, refired
from lmdelta.pairdata import PairData
from lmdelta.proposers.llm import Search
from lmdelta.records import Hypothesis, Prompt
from lmdelta.validate.sequential import round_order

log = logging.getLogger(__name__)
# One round of every proposer over the planned scopes: (data with the round's weights, the round) →
# (hypotheses in proposal order, records of scopes a proposer failed in).
ProposeRound = Callable[[PairData, Search], tuple[list[Hypothesis], list[dict[str, Any]]]]
# The comparison a round proposes on, by round (1-based), when discovery answers grow round by round.
Grow = Callable[[int], PairData]
NO_NEW = "no new distinct hypothesis"
LAST_ROUND = "propose.rounds reached"


@dataclass
class SearchResult:
    hypotheses: list[Hypothesis]  # in proposal order, not yet numbered
    failed: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = LAST_ROUND


def search(
    data: PairData,
    scopes: list[str],
    config: RunConfig,
    propose_round: ProposeRound,
    embed: Embed | None = None,
    grow: Grow | None = None,
) -> SearchResult:
    """Run the rounds; see the module docstring. With `grow`, each round's comparison is grow(round): the
    discovery answers of that round's prompts (discovery_schedule) are generated before it proposes."""
    section = config.propose
    kept: list[Claimed] = []
    result = SearchResult([])
    for number in range(1, section.rounds + 1):
        if grow is not None:
            data = grow(number)
        discovery = data.rows("discovery")
        texts = data.strings(discovery)
        vectors = data.vectors_of(discovery)
        if grow is not None and number > 1:  # the kept ones' firing sets over the grown discovery answers
            kept = refired(kept, texts, vectors)
        weights = None if number == 1 else _weights(kept, discovery, len(data.samples), section.explain_weight)
        view = data if weights is None else replace(data, weights=weights)
        proposed, failed = propose_round(view, Search(number, _earlier(kept, scopes)))
        if section.rounds > 1:
            proposed = [replace(h, provenance={**(h.provenance or {}), "round": number}) for h in proposed]
        fresh, kept, left_out = deduplicate(claimed(proposed, texts, vectors, embed), kept, section.dedup)
        kept += fresh
        result.failed += failed
        result.duplicates += left_out
        result.rounds.append(_round_row(number, proposed, fresh, left_out, weights, data, discovery))
        log.info("propose: round %d: %s", number, _brief(result.rounds[-1]))
        if not fresh:
            result.stopped = NO_NEW
            break
    result.hypotheses = [item.hypothesis for item in kept]
    return result


def _brief(row: dict[str, Any]) -> str:
    return f"{row['proposed']} proposed, {row['new']} new, {row['merged'] + row['dropped']} near-duplicates"


def _earlier(kept: list[Claimed], scopes: list[str]) -> dict[str, list[str]]:
    """Per scope, the claims kept so far that the LLM proposer should not repeat there (its own, and the pooled
    scope's), each with its direction."""
    return {
        scope: [
            f"{claim(item.hypothesis)} ({_side(item.hypothesis)})"
            for item in kept
            if item.hypothesis.group in (scope, "all")
        ]
        for scope in scopes
    }


def _side(hypothesis: Hypothesis) -> str:
    return "more in Model B" if hypothesis.direction == "b>a" else "more in Model A"


def _weights(kept: list[Claimed], discovery: np.ndarray, n_samples: int, weight: float) -> np.ndarray:
    """Per sample: `weight` for the discovery texts a kept hypothesis fires on, 1 for the rest."""
    out = np.ones(n_samples)
    out[discovery[explained(kept, len(discovery))]] = weight
    return out


def _round_row(
    number: int,
    proposed: list[Hypothesis],
    fresh: list[Claimed],
    left_out: list[Duplicate],
    weights: np.ndarray | None,
    data: PairData,
    discovery: np.ndarray,
) -> dict[str, Any]:
    """One line of the propose stage's rounds record."""
    explained_texts = 0 if weights is None else int(np.sum(weights[discovery] < 1.0))
    return {
        "round": number,
        "proposed": len(proposed),
        "new": len(fresh),
        "merged": sum(d.action == "merged" for d in left_out),
        "dropped": sum(d.action == "dropped" for d in left_out),
        "explained_texts": explained_texts,
        "discovery_texts": len(discovery),
        "discovery_prompts": len(set(data.samples.prompt_ids(discovery))),
    }


def grows(config: RunConfig) -> bool:
    """Whether discovery answers are generated round by round (propose.first_share < 1 with several rounds)."""
    return config.propose.first_share < 1.0 and config.propose.rounds > 1 and not config.uses_corpus


def discovery_schedule(prompts: list[Prompt], config: RunConfig) -> list[list[Prompt]]:
    """Per round, the discovery prompts answered by then: the first ceil(n·s_r) of them in a seeded order
    fixed in advance, s_1 = propose.first_share rising evenly to 1 at the last round (all of them, one
    round, when discovery answers do not grow)."""
    discovery = [p for p in prompts if p.split == "discovery"]
    rounds = config.propose.rounds if grows(config) else 1
    if rounds == 1:
        return [discovery]
    by_id = {p.id: p for p in discovery}
    ordered = [by_id[pid] for pid in round_order(list(by_id), config.propose.resolved_seed)]
    first = config.propose.first_share
    shares = [first + (1.0 - first) * r / (rounds - 1) for r in range(rounds)]
    return [ordered[: math.ceil(len(ordered) * share - 1e-9)] for share in shares]
