"""Proposers at scale keep per-scope memory small without changing what they propose: the cluster proposer's
bound on k counts distinct rows only up to the bound, and the keyword proposer's evidence reads answers one at
a time until it has three."""

from __future__ import annotations

import numpy as np
import pytest

from lmdelta.proposers.clusters import distinct_rows_up_to
from lmdelta.proposers.keywords import ReadInOrder
from lmdelta.records import Sample
from lmdelta.words import Keyword, tokens


@pytest.mark.parametrize("bound", [0, 1, 2, 5, 7, 50])
def test_distinct_rows_up_to_is_the_sorted_count_capped(bound):
    rng = np.random.default_rng(bound)
    distinct = rng.normal(size=(7, 4))
    vectors = distinct[rng.integers(0, 7, size=40)]
    vectors[:5] = 0.0  # identical zero differences, as identical answers to a prompt give
    expected = min(bound, len(np.unique(vectors, axis=0)))
    assert distinct_rows_up_to(vectors, bound) == expected
    assert distinct_rows_up_to(vectors[:0], bound) == 0


def test_distinct_rows_up_to_counts_signed_zeros_as_one_value():
    vectors = np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, -0.0]])
    assert distinct_rows_up_to(vectors, 5) == len(np.unique(vectors, axis=0)) == 2


def test_distinct_rows_up_to_reads_a_non_contiguous_view():
    vectors = np.arange(24, dtype=float).reshape(6, 4)[:, ::2]
    assert distinct_rows_up_to(vectors, 10) == 6


def sample(i: int, text: str) -> Sample:
    return Sample(
        prompt_id=f"p{i}", side="b", index=0, text=text, n_tokens=3, finish_reason="stop", seed=i, key=f"k{i}"
    )


@pytest.mark.parametrize("term", ["ocean", "the ocean", "deep blue", "!"])
def test_the_evidence_is_the_first_three_of_every_holder(term):
    texts = ["The ocean is deep!", "no sea here", "the ocean, the deep blue ocean", "Ocean.", "deep blue sea!", "ocean"]
    samples = [sample(i, t) for i, t in enumerate(texts * 2)]
    keyword = Keyword.of(term)
    every = [s.id for s in samples if keyword.found_in(tokens(s.text))]
    answers = ReadInOrder(samples)
    assert answers.first_holding(keyword) == every[:3]
    assert answers.first_holding(Keyword.of("nowhere")) == []  # reads every answer, each tokenised once
    assert answers.first_holding(keyword) == every[:3] and len(answers._tokens) == len(samples)
    assert ReadInOrder(samples[:1]).first_holding(keyword) == [i for i in every[:1] if i == samples[0].id]
