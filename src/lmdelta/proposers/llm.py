"""LLM proposer: show the proposer model N discovery answers per side of a group and ask for
1..k specific, falsifiable hypotheses, each with a side-free property a blind judge can score.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from lmdelta.llm import prompts
from lmdelta.records import Hypothesis

log = logging.getLogger(__name__)
FAILED = "proposer failed"  # the `rule` of a skipped entry whose call failed: a scope proposed in, not left out


def requests_for(data, scopes_rows: dict[str, np.ndarray], section, temperature: float, seed: int):
    """One proposal request per scope, with the answers shown (sample ids) for provenance."""
    out = {}
    for scope, rows in scopes_rows.items():
        rng = np.random.default_rng([seed, len(scope), sum(map(ord, scope))])
        shown = {side: _pick(data, rows, side, section.texts_per_side, rng) for side in ("a", "b")}
        texts = {side: [data.samples[i].text for i in shown[side]] for side in shown}
        request = prompts.propose_request(texts["a"], texts["b"], section.per_scope, section.instruction, temperature)
        out[scope] = (request, {side: [data.samples[i].id for i in shown[side]] for side in shown})
    return out


def _pick(data, rows: np.ndarray, side: str, n: int, rng: np.random.Generator) -> list[int]:
    candidates = [int(i) for i in rows if data.samples[i].side == side]
    if len(candidates) <= n:
        return candidates
    return sorted(rng.choice(candidates, size=n, replace=False).tolist())


def propose(data, scopes_rows: dict[str, np.ndarray], ask, model: str, section, temperature: float, seed: int
            ) -> tuple[list[Hypothesis], list[dict[str, Any]]]:
    """Hypotheses per scope, plus a record per scope whose call failed (kept, never silent).

    `ask(requests, parse)` returns [(CallResult, parsed)] in order (see LLMSession.asker).
    """
    planned = requests_for(data, scopes_rows, section, temperature, seed)
    answers = ask([request for request, _ in planned.values()], prompts.parse_hypotheses)
    found, failed = [], []
    for (scope, (_, shown)), (result, items) in zip(planned.items(), answers):
        if not result.ok:
            failed.append({"group": scope, "rule": FAILED,
                           "reason": f"LLM proposer failed ({result.error_kind}): {result.error_message}"})
            continue
        found += [_hypothesis(scope, item, shown, data.labels, model) for item in items[: section.per_scope]]
    return found, failed


def _hypothesis(scope: str, item: dict[str, str], shown: dict[str, list[str]], labels: dict[str, str],
                model: str) -> Hypothesis:
    description = _name_sides(item["description"], labels)
    if scope != "all":
        description += f" (prompts about {scope})"
    return Hypothesis(id="", group=scope, direction=item["direction"], description=description, proposer="llm",
                      judge="llm", property=item["property"], evidence={side: ids[:3] for side, ids in shown.items()},
                      provenance={"model": model, "texts_shown": {s: len(v) for s, v in shown.items()}})


def _name_sides(text: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\bModel A\b", labels["a"], text)
    return re.sub(r"\bModel B\b", labels["b"], text)
