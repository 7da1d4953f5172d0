"""Keyword contrast: which 1–3-grams does one side use in more answers than the other?

The score is the log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn
2008, "Fightin' Words"), applied to document frequencies: y_w of N texts on a side contain w,
the prior is Beta(α0·s_w, α0·(1 − s_w)) with s_w the share of all discovery texts containing w
and α0 = `prior_strength` pseudo-texts, and

    δ_w = logit((y_b + α0 s_w) / (N_b + α0)) − logit((y_a + α0 s_w) / (N_a + α0)),  z_w = δ_w / sd(δ_w).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.pairdata import PairData
from lmdelta.records import DIRECTIONS, Direction, Hypothesis, Sample
from lmdelta.words import words

STOP = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being it its
this that these those i you he she we they me my your our their his her them us do does did so not no yes can
could would should will just than then there here what which who whom how when where why all any some such
very too also into about over more most other only own same s t don't i'm it's you're don’t i’m it’s you’re""".split()
)


@dataclass(frozen=True)
class Term:
    ngram: str
    z: float
    delta: float
    count_a: int
    count_b: int


@dataclass(frozen=True)
class KeywordProposer:
    """The keyword proposer for one comparison: the background is every discovery text, shared by all scopes."""

    background: Counter
    n_background: int

    def propose(self, data: PairData, scope: str, rows: np.ndarray, config: RunConfig) -> list[Hypothesis]:
        """Per direction (b>a first), the scope's strongest n-grams, one hypothesis each."""
        section = config.propose.keywords
        texts = {side: [data.samples[i] for i in rows if data.samples[i].side == side] for side in ("a", "b")}
        terms = contrast(
            [s.text for s in texts["a"]],
            [s.text for s in texts["b"]],
            self.background,
            self.n_background,
            section.max_ngram,
            section.prior_strength,
        )
        return [
            _hypothesis(data, scope, direction, term, texts)
            for direction in DIRECTIONS
            for term in top_terms(terms, direction, section.per_scope, section.min_z, section.min_texts)
        ]


def prepare(data: PairData, config: RunConfig) -> KeywordProposer | None:
    """The keyword proposer for this comparison (None when propose.keywords is off)."""
    if not config.propose.keywords.enabled:
        return None
    discovery = data.rows("discovery")
    background = document_counts([data.samples[i].text for i in discovery], config.propose.keywords.max_ngram)
    return KeywordProposer(background, len(discovery))


def _hypothesis(
    data: PairData, scope: str, direction: Direction, term: Term, texts: dict[str, list[Sample]]
) -> Hypothesis:
    more, less = ("b", "a") if direction == "b>a" else ("a", "b")
    padded = f" {term.ngram} "
    hits = {side: [s.id for s in texts[side] if padded in f" {_spaced_words(s.text)} "] for side in ("a", "b")}
    description = f"{data.labels[more]} uses “{term.ngram}” in more answers than {data.labels[less]}" + (
        "" if scope == "all" else f" (prompts about {scope})"
    )
    provenance = {
        "z": round(term.z, 3),
        "log_odds": round(term.delta, 3),
        "discovery_texts_with_term": {"a": term.count_a, "b": term.count_b},
        "discovery_texts": {"a": len(texts["a"]), "b": len(texts["b"])},
    }
    return Hypothesis(
        id="",
        group=scope,
        direction=direction,
        description=description,
        proposer="keywords",
        judge="keyword",
        keywords=(term.ngram,),
        property=f"uses the word or phrase “{term.ngram}”",
        evidence={k: v[:3] for k, v in hits.items()},
        provenance=provenance,
    )


def _spaced_words(text: str) -> str:
    """The text's words joined by single spaces, so an n-gram padded with spaces matches whole words only."""
    return " ".join(words(text))


def ngrams(text: str, max_n: int) -> set[str]:
    """The distinct 1..max_n-grams of a text; n-grams made only of stop words are left out."""
    tokens = words(text)
    found = set()
    for n in range(1, max_n + 1):
        for start in range(len(tokens) - n + 1):
            gram = tokens[start : start + n]
            if not all(w in STOP for w in gram):
                found.add(" ".join(gram))
    return found


def document_counts(texts: list[str], max_n: int) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        counts.update(ngrams(text, max_n))
    return counts


def contrast(
    texts_a: list[str],
    texts_b: list[str],
    background: Counter,
    n_background: int,
    max_n: int = 3,
    prior_strength: float = 10.0,
) -> list[Term]:
    """Every n-gram seen on either side, scored b-versus-a (positive z: more frequent in b)."""
    count_a, count_b = document_counts(texts_a, max_n), document_counts(texts_b, max_n)
    vocab = sorted(set(count_a) | set(count_b))
    if not vocab:
        return []
    y_a = np.array([count_a[w] for w in vocab], dtype=float)
    y_b = np.array([count_b[w] for w in vocab], dtype=float)
    share = np.array([background[w] for w in vocab], dtype=float) / max(n_background, 1)
    share = np.clip(share, 1e-3, 1 - 1e-3)
    logit_a, var_a = _log_odds(y_a, len(texts_a), share, prior_strength)
    logit_b, var_b = _log_odds(y_b, len(texts_b), share, prior_strength)
    delta = logit_b - logit_a
    z = delta / np.sqrt(var_a + var_b)
    return [Term(w, float(zv), float(dv), int(ca), int(cb)) for w, zv, dv, ca, cb in zip(vocab, z, delta, y_a, y_b)]


def _log_odds(y: np.ndarray, n: int, share: np.ndarray, alpha0: float) -> tuple[np.ndarray, np.ndarray]:
    """Posterior log-odds of containing each n-gram under a Beta(α0·share, α0·(1 − share)) prior."""
    hit = y + alpha0 * share
    miss = np.maximum(n - y, 0) + alpha0 * (1 - share)
    return np.log(hit) - np.log(miss), 1.0 / hit + 1.0 / miss


def top_terms(terms: list[Term], direction: Direction, k: int, min_z: float, min_texts: int) -> list[Term]:
    """The k strongest n-grams favouring one side, skipping ones nested in a stronger pick.

    Ties go to the shorter n-gram: "ocean" says the same as "about the ocean", more generally.
    """
    sign = 1.0 if direction == "b>a" else -1.0
    ranked = sorted((t for t in terms if sign * t.z >= min_z), key=lambda t: (-sign * t.z, t.ngram.count(" "), t.ngram))
    chosen: list[Term] = []
    for term in ranked:
        favoured = term.count_b if direction == "b>a" else term.count_a
        if favoured < min_texts or any(_nested(term.ngram, c.ngram) for c in chosen):
            continue
        chosen.append(term)
        if len(chosen) == k:
            break
    return chosen


def _nested(one: str, other: str) -> bool:
    padded_one, padded_other = f" {one} ", f" {other} "
    return padded_one in padded_other or padded_other in padded_one
