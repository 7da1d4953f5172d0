"""The judge cascade (hierarchical validation): the hypothesis's own judge (the cheap one) scores every
validation text, a strong LLM judge (llm.strong_judge) the texts of a seeded sample of prompts, and the
test combines both by PPI++ (lmdelta.stats.ppi), which is valid however biased the cheap judge is.

Per hypothesis, over its in-scope validation prompts with a cheap per-prompt difference (the balanced
differences validate tests, with the hypothesis's subsample seed):

1. pi_p, the probability that prompt p is labelled: validate.strong_share (`uniform`), or proportional
   to the cheap judge's uncertainty about the prompt (`active`, ppi.choose_labels, same expected count);
   at least MIN_EXPECTED_LABELS prompts are expected (every prompt when it has fewer), as the PPI++
   interval is a CLT one.
2. A coin per (validate.seed, hypothesis content key, prompt id) labels p when it falls below pi_p: the
   labelled prompts depend neither on the other hypotheses nor on any strong answer.
3. The strong judge scores the texts of the labelled prompts only (presence, unitary or pairwise as the
   hypothesis's judge implies), giving the strong per-prompt differences there.
4. ppi_mean(cheap, strong, labelled, pi) in the hypothesis's direction replaces the finding's test and
   effect; the cheap judge's own p-value and effect are kept beside them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lmdelta import judges
from lmdelta.config import ValidateConfig
from lmdelta.errors import ConfigError
from lmdelta.hashing import child_seed
from lmdelta.judges.inputs import Ask
from lmdelta.pairdata import PairData
from lmdelta.records import Finding, Hypothesis
from lmdelta.stats.ppi import Alternative, MeanTest, agreement, choose_labels, ppi_mean
from lmdelta.validate.findings import clip_to_scores
from lmdelta.validate.sets import ValidationSet, balanced_differences, subsample_seed

# The PPI++ interval and z-test are CLT ones: below this many expected strong labels a hypothesis gets more
# (all its prompts when it has fewer), whatever validate.strong_share says.
MIN_EXPECTED_LABELS = 20
# Active labelling: every prompt's probability is at least this share of the uniform rate (ppi.choose_labels).
ACTIVE_FLOOR = 0.2


@dataclass(frozen=True)
class StrongJudge:
    """The strong judge: how to ask it (LLMSession.asker), its model string and its temperature."""

    ask: Ask
    model: str
    temperature: float = 0.0


@dataclass(frozen=True, eq=False)
class Labels:
    """One hypothesis's labelling: `use` the prompts in its test, `pi` and `labelled` per prompt (all prompts)."""

    use: np.ndarray
    pi: np.ndarray
    labelled: np.ndarray


def strong_mode(hypothesis: Hypothesis, mode: str) -> str:
    """How the strong judge asks about a hypothesis: the LLM judge mode validate.judge names, or (auto) yes/no
    for a presence judge's hypotheses and the 0–100 scale for the others."""
    if mode != "auto":
        return mode
    return "presence" if judges.is_presence_mode(hypothesis, mode) else "unitary"


def uncertainty(scores: np.ndarray, vs: ValidationSet) -> np.ndarray:
    """The cheap judge's uncertainty per prompt, the proxy active labelling uses: sqrt(m (1 − m)), m the mean
    of the prompt's finite cheap scores over both sides. That is the SD of a yes/no answer drawn from them:
    largest where the answers are split or unsure (m near 0.5), 0 where all are a confident 0 (or all 1)."""
    finite = np.isfinite(scores)
    n_prompts = len(vs.prompt_ids)
    total = np.bincount(vs.prompt_of_row[finite], weights=scores[finite], minlength=n_prompts)
    count = np.bincount(vs.prompt_of_row[finite], minlength=n_prompts)
    mean = np.clip(np.divide(total, count, out=np.full(n_prompts, 0.5), where=count > 0), 0.0, 1.0)
    return np.sqrt(mean * (1.0 - mean))


def label_coins(seed: int, key: Any, prompt_ids: list[str]) -> np.ndarray:
    """A uniform number in [0, 1) per prompt, from validate.seed, the hypothesis's content and the prompt id."""
    return np.array([(child_seed(seed, "strong label", key, pid) >> 11) * 2.0**-53 for pid in prompt_ids])


def label(h: Hypothesis, d_cheap: np.ndarray, scores: np.ndarray, vs: ValidationSet, config: ValidateConfig) -> Labels:
    """Which of the hypothesis's prompts the strong judge labels, and with what probability each."""
    use = vs.scope(h.group) & np.isfinite(d_cheap)
    pi = np.zeros(len(vs.prompt_ids))
    n = int(use.sum())
    if n == 0:
        return Labels(use, pi, np.zeros_like(use))
    budget = max(config.strong_share * n, min(n, MIN_EXPECTED_LABELS))
    if config.strong_labels == "uniform" or budget >= n:
        pi[use] = min(1.0, budget / n)
    else:  # choose_labels draws labels too; these coins are not used (ours are per prompt, below)
        rng = np.random.default_rng(0)
        pi[use] = choose_labels(uncertainty(scores, vs)[use], budget, rng, floor=ACTIVE_FLOOR).pi
    coins = label_coins(config.resolved_seed, h.content_key(), vs.prompt_ids)
    return Labels(use, pi, use & (coins < pi))


def strong_scores(
    hypotheses: list[Hypothesis],
    plans: list[Labels],
    vs: ValidationSet,
    texts: Sequence[str],
    vectors: np.ndarray,
    mode: str,
    strong: StrongJudge,
) -> list[np.ndarray]:
    """The strong judge's scores of the labelled prompts' texts (NaN elsewhere); one batch per LLM judge mode."""
    modes = [strong_mode(h, mode) for h in hypotheses]
    scores: list[np.ndarray] = [np.full(len(texts), np.nan) for _ in hypotheses]
    for name in dict.fromkeys(modes):
        picked = [i for i, m in enumerate(modes) if m == name]
        found = judges.score_hypotheses(
            [hypotheses[i] for i in picked],
            vs,
            texts,
            vectors,
            name,
            strong.ask,
            strong.temperature,
            judged=[plans[i].labelled[vs.prompt_of_row] for i in picked],
        )
        for i, values in zip(picked, found):
            scores[i] = values
    return scores


def cascade_all(
    results: list[Finding],
    data: PairData,
    hypotheses: list[Hypothesis],
    config: ValidateConfig,
    cheap_ask: Ask | None,
    strong: StrongJudge,
) -> list[Finding]:
    """The findings with their test replaced by the cascade's; findings without a test stay as they are."""
    vs = ValidationSet.build(data)
    if not vs.aligned:
        raise ConfigError(
            "The judge cascade (llm.strong_judge) compares the judges per prompt, but this corpus pairs no "
            "answers of both sides to the same prompt.",
            "Unset llm.strong_judge.model for this corpus, or give both sides' answers prompt ids they share.",
        )
    texts = data.samples.text_rows(vs.rows)
    vectors = judges.judge_vectors(data, vs.rows, hypotheses, config.judge)
    scopes = [vs.scope(h.group)[vs.prompt_of_row] for h in hypotheses]
    cheap = judges.score_hypotheses(hypotheses, vs, texts, vectors, config.judge, cheap_ask, judged=scopes)
    seeds = [subsample_seed(config.resolved_seed, h.content_key()) for h in hypotheses]
    d_cheap = _differences(cheap, vs, seeds)
    tested = [r.unit != "none" for r in results]
    plans = [
        label(h, d_cheap[i] if tested[i] else np.full(len(vs.prompt_ids), np.nan), cheap[i], vs, config)
        for i, h in enumerate(hypotheses)
    ]
    strong_found = strong_scores(hypotheses, plans, vs, texts, vectors, config.judge, strong)
    d_strong = _differences(strong_found, vs, seeds)
    out = []
    for i, result in enumerate(results):
        if not tested[i]:
            out.append(result)
            continue
        calls = int(plans[i].labelled[vs.prompt_of_row].sum())
        out.append(rectified(result, plans[i], d_cheap[i], d_strong[i], calls, config, strong.model))
    return out


def _differences(scores: Sequence[np.ndarray], vs: ValidationSet, seeds: list[int]) -> np.ndarray:
    return balanced_differences(scores, vs, seeds)[0]


def rectified(
    result: Finding,
    plan: Labels,
    d_cheap: np.ndarray,
    d_strong: np.ndarray,
    calls: int,
    config: ValidateConfig,
    model: str,
) -> Finding:
    """The finding with PPI++'s test and effect (the cheap judge's kept beside them)."""
    use = plan.use
    args = (d_cheap[use], np.where(plan.labelled, d_strong, np.nan)[use], plan.labelled[use], plan.pi[use])
    alternative: Alternative = "greater" if result.direction == "b>a" else "less"
    test = ppi_mean(*args, alternative=alternative)
    interval = ppi_mean(*args, alpha=1.0 - config.ci_level)
    agree = agreement(*args[:3])
    n_labels = int(plan.labelled.sum())
    return replace(
        result,
        statistic=_z(test),
        p_value=test.p_value,
        n_prompts=test.n,
        n_units=test.n,
        test=describe_test(result.judge, model, n_labels / max(test.n, 1), config.strong_labels),
        smallest_p=None,  # a z-test has no floor
        effect=interval.estimate,
        effect_ci=clip_to_scores([interval.low, interval.high]),
        effect_se=interval.se,
        effect_df=float(test.n_labelled - 1) if test.n_labelled >= 2 else None,
        effect_ci_note=interval.note,
        strong_calls=calls,
        strong_prompts=n_labels,
        cascade_agreement={
            "n": agree.n,
            "sign_agreement": agree.sign_agreement,
            "correlation": agree.correlation,
            "cheap_weight": test.lam,
        },
        cheap_p_value=result.p_value,
        cheap_effect=result.effect,
    )


def _z(test: MeanTest) -> float:
    return test.estimate / test.se if math.isfinite(test.se) and test.se > 0 else math.nan


def describe_test(cheap: str, model: str, share: float, labels: str) -> str:
    """What the finding's test says: PPI++, both judges, and the share of prompts the strong one labelled."""
    return (
        f"PPI++ z-test over prompts (cheap: {cheap} judge; strong: {model.partition('@')[0]} on {share:.0%} of "
        f"prompts, {labels} labelling)"
    )
