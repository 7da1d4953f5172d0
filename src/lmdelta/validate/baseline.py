"""The lexical baseline: how well do plain word counts tell a's answers from b's?

A bag-of-words logistic regression, cross-validated with folds grouped by prompt (answers to one
prompt never sit on both sides of a split). It is computed once per group, so the report shows it
once per group as context, never as a verdict on one finding (docs/statistics.md, section 7).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lmdelta.hashing import child_seed
from lmdelta.pairdata import PairData
from lmdelta.records import Finding
from lmdelta.stats.effects import auc
from lmdelta.validate.sets import ValidationSet
from lmdelta.words import WORD_PATTERN, normalize

# The baseline of a scope with more validation prompts than this is fitted on a seeded sample of that many prompts
# (all their answers): its AUC is context, and at 20,000 prompts its standard error is already below 0.005, while
# vectorising and cross-validating 1.4 million answers took minutes and the largest table of a 2,000,000-text run.
BASELINE_PROMPTS = 20_000


def add_baselines(results: list[Finding], data: PairData, seed: int) -> list[Finding]:
    """The findings with the bag-of-words AUC of each one's scope (computed once per scope)."""
    vs = ValidationSet.build(data)
    cache: dict[str, float | None] = {}
    for result in results:
        if result.group not in cache:
            rows = _baseline_rows(vs, result.group, seed)
            texts = [data.samples[vs.rows[i]].text for i in rows]
            cache[result.group] = bow_auc(texts, vs.is_b[rows], vs.prompt_of_row[rows], seed)
    return [replace(result, baseline_auc=cache[result.group]) for result in results]


def _baseline_rows(vs: ValidationSet, group: str, seed: int) -> np.ndarray:
    """The validation rows of the scope's prompts, or of a seeded sample of BASELINE_PROMPTS of them."""
    prompts = np.flatnonzero(vs.scope(group))
    if prompts.size > BASELINE_PROMPTS:
        prompts = np.sort(
            np.random.default_rng(child_seed(seed, "baseline", group)).choice(prompts, BASELINE_PROMPTS, replace=False)
        )
    keep = np.zeros(len(vs.prompt_ids), dtype=bool)
    keep[prompts] = True
    return np.flatnonzero(keep[vs.prompt_of_row])


def bow_auc(texts: list[str], is_b: np.ndarray, prompt_index: np.ndarray, seed: int, folds: int = 5) -> float | None:
    """Out-of-fold AUC of P(b | words); None when there are too few prompts or one side is missing."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    n_prompts = len(np.unique(prompt_index))
    if n_prompts < 2 or is_b.all() or not is_b.any():
        return None
    # words as the keyword proposer sees them: escapes decoded, split contractions joined, then lowercased
    vectorizer = CountVectorizer(preprocessor=_normalized, token_pattern=WORD_PATTERN)
    try:
        features = vectorizer.fit_transform(texts)
    except ValueError:  # no words at all
        return None
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)
    splitter = GroupKFold(n_splits=min(folds, n_prompts))
    proba = cross_val_predict(
        model, features, is_b.astype(int), groups=prompt_index, cv=splitter, method="predict_proba"
    )[:, 1]
    return auc(proba[is_b], proba[~is_b])


def _normalized(text: str) -> str:
    return normalize(text).lower()
