"""Generative validation, no judge needed: the assistant writes answers that show a hypothesis's
property and answers that do not; each is scored by s(x) = log p_b(x) − log p_a(x) per token
(each model's mean log-probability of the answer's tokens, under its own system prompt and chat
template), and a label permutation test asks whether the property-showing answers score higher
(for "b>a"). The score is lmdelta.judges.loglik.per_token_log_ratio.

Each example is written by its own call (its own sample index), so examples are independent
draws and the text is the unit of the test; a per-token score keeps a length difference between
the two kinds of example from deciding the test by itself. The p-values form their own family
(BH over the generative tests of a run, see stages/decide.py).
"""

from __future__ import annotations

from typing import Any

from lmdelta.judges.inputs import Ask
from lmdelta.judges.loglik import LoglikScorer, per_token_log_ratio
from lmdelta.llm import prompts
from lmdelta.llm.types import CallResult
from lmdelta.records import Hypothesis
from lmdelta.stats import tests

# Per hypothesis: {"present": [(prompt, answer)…], "absent": […]}, or None when too few came back.
Examples = dict[str, list[tuple[str, str]]] | None


def write_examples(hypotheses: list[Hypothesis], ask: Ask, n: int, temperature: float) -> list[Examples]:
    """Per hypothesis: {"present": [(prompt, answer)…], "absent": […]}, one call per example; None when
    fewer than two examples of a kind came back."""
    requests = [
        prompts.examples_request(h.property or h.description, present, 1, temperature, sample_index=i)
        for h in hypotheses
        for present in (True, False)
        for i in range(n)
    ]
    answers = iter(ask(requests, prompts.parse_examples))
    out = []
    for _ in hypotheses:
        kinds = {kind: _first_examples([next(answers) for _ in range(n)]) for kind in ("present", "absent")}
        out.append(kinds if all(len(found) >= 2 for found in kinds.values()) else None)
    return out


def _first_examples(answers: list[tuple[CallResult, Any]]) -> list[tuple[str, str]]:
    return [(parsed[0]["prompt"], parsed[0]["answer"]) for result, parsed in answers if result.ok and parsed]


def score_and_test(
    hypotheses: list[Hypothesis],
    examples: list[Examples],
    generator_a: LoglikScorer,
    generator_b: LoglikScorer,
    n_resamples: int,
    seed: int,
) -> list[dict[str, Any]]:
    """The generative test of each hypothesis (fields prefixed generative_)."""
    results: list[dict[str, Any]] = []
    for h, found in zip(hypotheses, examples):
        if found is None:
            results.append({"generative_p": None, "generative_effect": None, "generative_n": 0})
            continue
        present, absent = (per_token_log_ratio(found[k], generator_a, generator_b) for k in ("present", "absent"))
        alternative: tests.Alternative = "greater" if h.direction == "b>a" else "less"
        test = tests.text_permutation(absent, present, alternative, n_resamples, seed)
        results.append(
            {
                "generative_p": test.p_value,
                "generative_effect": float(present.mean() - absent.mean()),
                "generative_n": int(present.size + absent.size),
            }
        )
    return results
