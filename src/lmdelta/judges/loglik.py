"""The log-likelihood ratio of a text under the two models, per token: s(x) = log p_b(x) − log p_a(x),
each side's total log-probability of the answer divided by its own token count.

Not a Judge: it scores (prompt, answer) pairs the assistant wrote, not validation texts, and its
scores are unbounded log-ratios, not [0, 1]; the generative test (validate/generative.py) uses it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class LoglikScorer(Protocol):
    """A generator that scores given answers: (total log-probability, token count) per (prompt, answer)."""

    def loglik(self, pairs: list[tuple[str, str]]) -> list[tuple[float, int]]: ...


def per_token_log_ratio(
    pairs: list[tuple[str, str]], generator_a: LoglikScorer, generator_b: LoglikScorer
) -> np.ndarray:
    """log p_b − log p_a of each answer, each side's total divided by its own token count."""
    return _per_token(generator_b, pairs) - _per_token(generator_a, pairs)


def _per_token(generator: LoglikScorer, pairs: list[tuple[str, str]]) -> np.ndarray:
    return np.array([total / max(tokens, 1) for total, tokens in generator.loglik(pairs)])
