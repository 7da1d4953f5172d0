"""Texts.score_in_parts: properties scored a part at a time (each part's analyses shared, then dropped) give
exactly the values of one batch, for every property in the catalogue: each scores a text by itself. This is
what lets the property proposer and judge score 600,000 answers without holding every token at once."""

from __future__ import annotations

import numpy as np
import pytest

from lmdelta.properties import CATALOGUE, Texts

TEXTS = [
    "Sure! Here's a quick answer: the tide rises twice a day. 🌊",
    "",
    "I can't help with that.",
    "```python\nprint('hi')\n```\nThat prints hi.",
    "- one\n- two\n- three\n\n**Bold** claim, *italic* aside.",
    "Well... I think, perhaps, it might be so? Maybe not!",
    "Die Antwort ist nein. C'est la vie. 答えはいいえです。",
    "As an AI language model, I do not have feelings, but I am happy to help you today.",
    "Numbers: 1, 2, 3.5 and 42%. See https://example.com for more.",
    "Wow wow wow. Great great great answer answer.",
    "Short.",
] * 3


def test_every_property_scores_the_same_in_parts_as_in_one_batch():
    whole = Texts(TEXTS)
    parted = Texts(TEXTS)
    parted.score_in_parts((prop.scorer for prop in CATALOGUE), part=4)
    assert "_results" in parted.__dict__ and len(parted.__dict__["_results"]) >= len({p.scorer for p in CATALOGUE})
    for prop in CATALOGUE:
        np.testing.assert_array_equal(prop.score(parted), prop.score(whole), err_msg=prop.name)


def test_a_small_batch_is_scored_as_before():
    batch = Texts(TEXTS[:5])
    batch.score_in_parts((prop.scorer for prop in CATALOGUE), part=10)
    assert "_results" not in batch.__dict__ or not batch.__dict__["_results"]  # left to memo, analyses shared


def test_values_scored_in_parts_are_the_values_of_one_batch_and_are_kept():
    from lmdelta.properties.values import Values

    whole = Texts(TEXTS)
    held = Values(TEXTS, part=4)
    found = held.of(CATALOGUE)
    for prop, values in zip(CATALOGUE, found):
        np.testing.assert_array_equal(values, prop.score(whole), err_msg=prop.name)
    again = held.of(CATALOGUE[:2])
    assert all(a is b for a, b in zip(again, found))  # kept, not scored again
    with pytest.raises(ValueError, match="read-only"):
        again[0][:] = -1.0  # no reader can change another's
    assert [v.size for v in Values([], part=4).of(CATALOGUE[:3])] == [0, 0, 0]
