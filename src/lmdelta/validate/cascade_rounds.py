"""The judge cascade in validate.mode = sequential: PPI++ terms as an anytime-valid e-process.

Each hypothesis's own judge (the cheap one) scores every text it reads; the strong judge
(llm.strong_judge) scores the texts of the prompts a seeded coin labels, with the fixed mode's coins
(validate.cascade.label_coins), so both modes ask the strong judge about the same prompts. Per prompt p, in
the rounds' order, with c_p and s_p the cheap and strong per-prompt differences and xi_p the label:

    y_p = lam_p g_p + (xi_p / pi) (s_p - lam_p g_p),    g_p = c_p - (mean of c over the prompts before p)

the active-inference form of PPI++ (stats.ppi), with lam_p (PPI++'s power tuning, cov(s, c) / var(c) over
the labelled prompts before p, clipped to [0, 1]; 1 until ten are labelled) and the centring both taken
from earlier prompts. Given everything before p, E[y_p] = E[s_p]: however biased the cheap judge, y has
the strong judge's mean, and |y_p| <= B = 2 + 3/pi. So y / B, a difference in [-1, 1] with mean E[s] / B,
goes into the same betting e-process, stopping rules and e-BH as any sequential hypothesis, and is valid
in finite samples (the fixed mode's PPI++ z-test is a CLT one).

What it costs: the bound B is large (28 at pi = 0.1) against y's spread, so the bets stay small and a
small difference is found less often than by the fixed mode's z-test on every prompt; a large one stops
early. benchmarks/cascade_sequential.py measures both (docs/benchmarks.md, judge cascade).
Labelling is uniform (pi per hypothesis from validate.strong_share and its scope's size, as in the fixed
mode): active labelling's pi depends on every prompt's cheap scores, which a round does not have yet.
A labelled prompt the strong judge could not score gets the least favourable strong difference (-1
against a "b>a" hypothesis, +1 against "a>b"): its term is then no larger than the true one would have
been, so the capital stays below a supermartingale under the null whatever the failures are (treating it
as unlabelled would not be valid: its term, lam g, need not have mean zero). Futility reads min_effect in
standard deviations of the strong judge's differences (y's own spread is mostly labelling noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from lmdelta import judges
from lmdelta.config import ValidateConfig
from lmdelta.records import Finding, Hypothesis
from lmdelta.stats.ppi import agreement
from lmdelta.validate.cascade import MIN_EXPECTED_LABELS, StrongJudge, label_coins, strong_mode
from lmdelta.validate.findings import clip_to_scores
from lmdelta.validate.sets import ValidationSet, balanced_differences

TUNED_FROM = 10  # labelled prompts before lam is estimated (1 until then: classic PPI)


def label_share(config: ValidateConfig, scope_size: int) -> float:
    """pi for a hypothesis whose scope has `scope_size` validation prompts: validate.strong_share, raised so that
    at least MIN_EXPECTED_LABELS prompts are expected (every prompt when the scope has fewer), as in fixed mode."""
    if scope_size <= 0:
        return 1.0
    return float(min(1.0, max(config.strong_share, MIN_EXPECTED_LABELS / scope_size)))


def bound(pi: float) -> float:
    """The largest |y_p| can be, with lam in [0, 1], |g| <= 2 and |s| <= 1: unlabelled, |lam g| <= 2; labelled,
    |lam g (1 - 1/pi) + s/pi| <= 2 (1/pi - 1) + 1/pi = 3/pi - 2. With pi = 1 every prompt is labelled and y = s."""
    return 1.0 if pi >= 1.0 else max(2.0, 3.0 / pi - 2.0)


def ppi_terms(cheap: np.ndarray, strong: np.ndarray, labelled: np.ndarray, pi: float) -> np.ndarray:
    """y_p for prompts in order (cheap: finite c_p; strong: s_p, finite wherever labelled; labelled: xi_p), each
    using only the prompts before it for lam and the centring."""
    c = np.asarray(cheap, dtype=float)
    s = np.asarray(strong, dtype=float)
    xi = np.asarray(labelled, dtype=bool)
    if not np.all(np.isfinite(s[xi])):
        raise ValueError("every labelled prompt needs a strong difference (give a failed one the least favourable)")
    before = np.concatenate([[0.0], np.cumsum(c)[:-1]])
    n_before = np.arange(c.size, dtype=float)
    g = c - np.divide(before, n_before, out=np.zeros_like(before), where=n_before > 0)
    lam = tuned_lams(c, np.where(xi, s, 0.0), xi)
    return lam * g + np.where(xi, (np.where(xi, s, 0.0) - lam * g) / pi, 0.0)


def tuned_lams(c: np.ndarray, s: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """Per prompt, cov(s, c) / var(c) over the labelled prompts before it, clipped to [0, 1] (1 until TUNED_FROM)."""

    def sums_before(values: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(np.where(xi, values, 0.0))[:-1]])

    n = sums_before(np.ones_like(c))
    sc, ss, scs, scc = sums_before(c), sums_before(s), sums_before(s * c), sums_before(c * c)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = scs - sc * ss / n
        var = scc - sc * sc / n
        lam = np.clip(cov / var, 0.0, 1.0)
    return np.where((n >= TUNED_FROM) & (var > 1e-12), lam, 1.0)


@dataclass
class Strong:
    """One hypothesis's strong side in the rounds: its pi, the strong per-prompt differences asked so far, and
    what its test read at its last round (for the finding)."""

    pi: float
    differences: dict[str, float] = field(default_factory=dict)  # prompt id -> s_p (NaN: not scored)
    calls: int = 0  # texts the strong judge scored
    labelled: dict[str, bool] = field(default_factory=dict)  # prompt id -> its coin said label it
    read: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # c, s, labelled, y


@dataclass
class CascadeRounds:
    """The strong judge's part of the rounds: which of a hypothesis's prompts it labels (the fixed mode's coins),
    asking it about the texts of newly labelled ones, and the PPI++ terms the e-process bets on."""

    strong: StrongJudge
    config: ValidateConfig

    def labels(self, h: Hypothesis, state: Strong, prompt_ids: list[str]) -> np.ndarray:
        """Whether the strong judge labels each prompt (a coin per prompt, kept once drawn)."""
        new = [pid for pid in prompt_ids if pid not in state.labelled]
        if new:
            coins = label_coins(self.config.resolved_seed, h.content_key(), new)
            state.labelled.update(zip(new, (coins < state.pi).tolist()))
        return np.array([state.labelled[pid] for pid in prompt_ids], dtype=bool)

    def ask(
        self,
        hypotheses: list[Hypothesis],
        states: list[Strong],
        texts_read: list[np.ndarray],
        vs: ValidationSet,
        texts: Sequence[str],
        vectors: np.ndarray,
        seeds: list[int],
    ) -> None:
        """Strong-judge the texts each hypothesis reads on its labelled prompts not asked about yet (one batch per
        LLM judge mode), and keep their per-prompt differences."""
        masks = []
        for h, state, rows in zip(hypotheses, states, texts_read):
            read = np.unique(vs.prompt_of_row[rows])
            new = np.array([p for p in read if vs.prompt_ids[p] not in state.differences], dtype=int)
            fresh = np.zeros(len(vs.prompt_ids), dtype=bool)
            if new.size:
                fresh[new] = self.labels(h, state, [vs.prompt_ids[p] for p in new])
            masks.append(rows & fresh[vs.prompt_of_row])
        if not any(mask.any() for mask in masks):
            return
        scores = [np.full(len(texts), np.nan) for _ in hypotheses]
        modes = [strong_mode(h, self.config.judge) for h in hypotheses]
        for name in dict.fromkeys(modes):
            picked = [i for i, m in enumerate(modes) if m == name and masks[i].any()]
            if not picked:
                continue
            chosen = [hypotheses[i] for i in picked]
            found = judges.score_hypotheses(
                chosen,
                vs,
                texts,
                vectors,
                name,
                self.strong.ask,
                self.strong.temperature,
                judged=[masks[i] for i in picked],
            )
            for i, values in zip(picked, found):
                scores[i] = np.where(masks[i], values, np.nan)
        differences = balanced_differences(scores, vs, seeds)[0]
        for state, mask, row in zip(states, masks, differences):
            asked = np.unique(vs.prompt_of_row[mask])
            state.differences.update((vs.prompt_ids[p], float(row[p])) for p in asked)
            state.calls += int(mask.sum())

    def evidence(
        self, h: Hypothesis, state: Strong, prompt_ids: list[str], cheap: np.ndarray
    ) -> tuple[np.ndarray, float | None]:
        """The hypothesis's differences for the e-process, aligned with `prompt_ids` (NaN where the cheap judge
        gave none): its PPI++ terms over B, in [-1, 1]; and the spread futility reads min_effect in, the strong
        judge's differences' standard deviation over B (the cheap judge's until two labels have come back)."""
        keep = np.isfinite(cheap)
        ids = [pid for pid, k in zip(prompt_ids, keep) if k]
        c = cheap[keep]
        labelled = self.labels(h, state, ids) if ids else np.zeros(0, dtype=bool)
        s = np.array([state.differences.get(pid, np.nan) if lab else np.nan for pid, lab in zip(ids, labelled)])
        scored = labelled & np.isfinite(s)
        worst = -1.0 if h.direction == "b>a" else 1.0
        y = ppi_terms(c, np.where(labelled & ~scored, worst, s), labelled, state.pi)
        state.read = (c, np.where(scored, s, np.nan), scored, y)
        out = np.full(len(prompt_ids), np.nan)
        out[keep] = y / bound(state.pi)
        basis = s[scored] if scored.sum() >= 2 else c
        spread = float(np.std(basis, ddof=1)) / bound(state.pi) if basis.size >= 2 else None
        return out, spread


def finding_fields(
    result: Finding, strong: Strong, cheap: np.ndarray, s: np.ndarray, labelled: np.ndarray, y: np.ndarray, model: str
) -> Finding:
    """A sequential finding's cascade fields: the PPI++ estimate of the strong judge's mean difference, the strong
    calls spent, the judges' agreement on the labelled prompts, and the cheap judge's own effect beside them (the
    e-process, its interval and its stop are set by the rounds, on y / B)."""
    agree = agreement(cheap, s, labelled)
    b = bound(strong.pi)
    cs = result.confidence_sequence
    interval: list[float | None] = [None if v is None else v * b for v in cs] if isinstance(cs, list) else [None, None]
    interval = clip_to_scores(interval)
    return replace(
        result,
        test=(
            f"betting e-process on PPI++ terms (cheap: {result.judge} judge; strong: {model.partition('@')[0]} on "
            f"{strong.pi:.0%} of prompts, uniform labelling)"
        ),
        effect=float(np.mean(y)) if y.size else None,
        effect_ci=interval,
        confidence_sequence=interval,
        strong_calls=strong.calls,
        strong_prompts=int(np.sum(labelled & np.isfinite(s))),
        cascade_agreement={"n": agree.n, "sign_agreement": agree.sign_agreement, "correlation": agree.correlation},
        cheap_p_value=None,
        cheap_effect=float(np.mean(cheap)) if cheap.size else None,
    )
