"""LLM judges, blind to side: unitary (0–100 per text), presence (yes/no, P(yes) from logprobs when
the provider gives them), pairwise (which of two answers to one prompt shows it more, asked in
both orders to cancel position bias). Unparseable or failed calls leave NaN: dropped and counted.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmdelta.errors import ConfigError
from lmdelta.judges.inputs import Ask, JudgeInput, PromptLayout
from lmdelta.llm import prompts
from lmdelta.records import Hypothesis


def _judged(hypotheses: list[Hypothesis], vs: PromptLayout, judged: list[np.ndarray] | None) -> list[np.ndarray]:
    """The texts each hypothesis is judged on (a mask over the texts): `judged` when given, else its scope's."""
    return list(judged) if judged is not None else [vs.scope(h.group)[vs.prompt_of_row] for h in hypotheses]


def plan_single(
    hypotheses: list[Hypothesis],
    vs: PromptLayout,
    texts: Sequence[str],
    mode: str,
    temperature: float,
    judged: list[np.ndarray] | None = None,
) -> list[tuple[int, int, Any]]:
    """(hypothesis index, row, request) for every judged text of each hypothesis."""
    make = prompts.unitary_request if mode == "unitary" else prompts.presence_request
    plan = []
    for h_index, (h, text_mask) in enumerate(zip(hypotheses, _judged(hypotheses, vs, judged))):
        for row in np.flatnonzero(text_mask).tolist():
            plan.append((h_index, row, make(h.property or h.description, texts[row], temperature=temperature)))
    return plan


def plan_pairs(
    hypotheses: list[Hypothesis],
    vs: PromptLayout,
    texts: Sequence[str],
    temperature: float,
    judged: list[np.ndarray] | None = None,
) -> list[tuple[int, tuple[int, int, bool], Any]]:
    """Both orders of (a answer i, b answer i) for every prompt's judged texts; bool: b shown first."""
    plan = []
    for h_index, (h, text_mask) in enumerate(zip(hypotheses, _judged(hypotheses, vs, judged))):
        prop = h.property or h.description
        for prompt in np.unique(vs.prompt_of_row[text_mask]):
            rows = np.flatnonzero((vs.prompt_of_row == prompt) & text_mask)
            a_rows, b_rows = rows[~vs.is_b[rows]], rows[vs.is_b[rows]]
            for ra, rb in zip(a_rows, b_rows):
                plan.append(
                    (
                        h_index,
                        (int(ra), int(rb), False),
                        prompts.pairwise_request(prop, texts[ra], texts[rb], temperature),
                    )
                )
                plan.append(
                    (
                        h_index,
                        (int(ra), int(rb), True),
                        prompts.pairwise_request(prop, texts[rb], texts[ra], temperature),
                    )
                )
    return plan


def score_all(
    hypotheses: list[Hypothesis],
    vs: PromptLayout,
    texts: Sequence[str],
    ask: Ask,
    mode: str,
    temperature: float = 0.0,
    judged: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """One score array per hypothesis over the validation rows (NaN where not scored).

    `ask(requests, parse)` returns [(CallResult, parsed)] in order (see LLMSession.asker). `judged`
    holds a mask over the texts per hypothesis (default: its scope's texts); the other texts stay NaN.
    """
    scores = [np.full(len(texts), np.nan) for _ in hypotheses]
    if mode == "pairwise":
        plan = plan_pairs(hypotheses, vs, texts, temperature, judged)
        _fill_pairs(scores, plan, ask([r for _, _, r in plan], prompts.parse_choice))
        return scores
    single = plan_single(hypotheses, vs, texts, mode, temperature, judged)
    parse = prompts.parse_score if mode == "unitary" else prompts.parse_presence
    for (h_index, row, _), (result, value) in zip(single, ask([r for _, _, r in single], parse)):
        if mode == "presence" and result.ok:  # the text as the client parsed it (an ok result's is never None)
            scores[h_index][row] = prompts.parse_presence(result.text or "", result.logprobs)
        elif result.ok:
            scores[h_index][row] = value
    return scores


def score(hypotheses: list[Hypothesis], inputs: JudgeInput, judged: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The Judge: score_all in `inputs.llm_mode`; it costs a call per text, so only the `judged` texts are scored."""
    if inputs.ask is None:
        raise ConfigError(
            "Some hypotheses need an LLM judge, but llm.judge.model is not set.",
            "Set llm.judge.model (e.g. openai/gpt-4.1-mini), or validate.judge=auto without LLM proposals.",
        )
    if inputs.layout is None:
        raise ValueError("The LLM judge needs the texts' prompt layout (JudgeInput.layout), to plan its calls.")
    return score_all(hypotheses, inputs.layout, inputs.texts, inputs.ask, inputs.llm_mode, inputs.temperature, judged)


def _fill_pairs(scores, plan, answers) -> None:
    wins: dict[tuple[int, int, int], list[float]] = {}
    for (h_index, (ra, rb, b_first), _), (result, choice) in zip(plan, answers):
        if result.ok:
            b_won = (choice == 1) if b_first else (choice == 2)
            wins.setdefault((h_index, ra, rb), []).append(1.0 if b_won else 0.0)
    for (h_index, ra, rb), outcomes in wins.items():
        share = float(np.mean(outcomes))
        scores[h_index][rb], scores[h_index][ra] = share, 1.0 - share


def agreement(main: np.ndarray, other: np.ndarray) -> dict[str, float | int | None]:
    """Spearman correlation and agreement above/below 0.5 on the texts both judges scored."""
    from scipy.stats import spearmanr

    both = np.isfinite(main) & np.isfinite(other)
    if both.sum() < 3:
        return {"n": int(both.sum()), "spearman": None, "agreement": None}
    with warnings.catch_warnings():  # constant scores have no rank correlation: reported as None
        warnings.simplefilter("ignore")
        rho = spearmanr(main[both], other[both]).statistic
    same = np.mean((main[both] >= 0.5) == (other[both] >= 0.5))
    return {"n": int(both.sum()), "spearman": None if np.isnan(rho) else float(rho), "agreement": float(same)}
