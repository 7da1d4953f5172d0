"""Generative validation, no judge needed: the assistant writes answers that show a hypothesis's
property and answers that do not; each is scored by s(x) = log p_b(x) − log p_a(x) under the two
models being compared (each with its own system prompt and chat template), and a label
permutation test asks whether the property-showing answers score higher (for "b>a").

The examples are written independently of each other, so the text is the unit of the test.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmdelta.llm import prompts
from lmdelta.stats import tests


def write_examples(hypotheses, ask, n: int, temperature: float) -> list[dict[str, list[tuple[str, str]]] | None]:
    """Per hypothesis: {"present": [(prompt, answer)…], "absent": […]}, or None when a call failed."""
    requests = [prompts.examples_request(h.property or h.description, present, n, temperature)
                for h in hypotheses for present in (True, False)]
    answers = ask(requests, prompts.parse_examples)
    out = []
    for i in range(len(hypotheses)):
        (ok_p, present), (ok_a, absent) = answers[2 * i], answers[2 * i + 1]
        if not (ok_p.ok and ok_a.ok):
            out.append(None)
            continue
        out.append({"present": [(e["prompt"], e["answer"]) for e in present[:n]],
                    "absent": [(e["prompt"], e["answer"]) for e in absent[:n]]})
    return out


def score_and_test(hypotheses, examples, generator_a, generator_b, n_resamples: int, seed: int) -> list[dict[str, Any]]:
    """The generative test of each hypothesis (fields prefixed generative_)."""
    results = []
    for h, found in zip(hypotheses, examples):
        if found is None or not found["present"] or not found["absent"]:
            results.append({"generative_p": None, "generative_effect": None, "generative_n": 0})
            continue
        present, absent = (_log_ratio(found[k], generator_a, generator_b) for k in ("present", "absent"))
        alternative = "greater" if h.direction == "b>a" else "less"
        test = tests.text_permutation(absent, present, alternative, n_resamples, seed)
        results.append({"generative_p": test.p_value, "generative_effect": float(present.mean() - absent.mean()),
                        "generative_n": int(present.size + absent.size)})
    return results


def _log_ratio(pairs: list[tuple[str, str]], generator_a, generator_b) -> np.ndarray:
    return np.asarray(generator_b.loglik(pairs)) - np.asarray(generator_a.loglik(pairs))
