"""The lexical baseline: how well do plain word counts tell a's answers from b's?

A bag-of-words logistic regression, cross-validated with folds grouped by prompt (answers to one
prompt never sit on both sides of a split). It is computed once per group, so the report shows it
once per group as context, never as a verdict on one finding (docs/statistics.md, section 7).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lmdelta.pairdata import PairData
from lmdelta.records import Finding
from lmdelta.stats.effects import auc
from lmdelta.validate.sets import ValidationSet
from lmdelta.words import WORD_PATTERN, normalize


def add_baselines(results: list[Finding], data: PairData, seed: int) -> list[Finding]:
    """The findings with the bag-of-words AUC of each one's scope (computed once per scope)."""
    vs = ValidationSet.build(data)
    texts = np.array([data.samples[i].text for i in vs.rows], dtype=object)
    cache: dict[str, float | None] = {}
    for result in results:
        if result.group not in cache:
            rows = vs.scope(result.group)[vs.prompt_of_row]
            cache[result.group] = bow_auc(list(texts[rows]), vs.is_b[rows], vs.prompt_of_row[rows], seed)
    return [replace(result, baseline_auc=cache[result.group]) for result in results]


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
