"""The keyword judge searches all texts at once (one joined string, text to text); its answers are those of
Keyword.found_in asked text by text, for words, phrases across punctuation, symbols and edge positions."""

import numpy as np
import pytest

from lmdelta.judges.keyword import Presence, keyword_presence
from lmdelta.words import Keyword, tokens

PIECES = ["ocean", "Ocean!", "sea", "the sea", "sea-side", "**", "😊", "don't", "ca n't", "x", "", "\\n", "—", "oceans"]


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(PIECES, size=rng.integers(0, 7))) for _ in range(n)]


@pytest.mark.parametrize("seed,shard", [(0, Presence.SHARD), (1, Presence.SHARD), (2, Presence.SHARD), (3, 7), (4, 1)])
def test_presence_is_found_in_text_by_text(seed, shard):
    """Also when the texts are split into shards of 7 or 1 texts (a keyword at a shard's edge)."""
    texts = _texts(300, seed)
    keywords = [("ocean",), ("the sea",), ("sea side",), ("**",), ("😊", "x"), ("don't",), ("oceans", "—"), ("absent",)]
    found = [tokens(t) for t in texts]
    presence = Presence(found, shard=shard)
    assert len(presence.shards) == -(-300 // shard)
    for group in keywords:
        parsed = [Keyword.of(k) for k in group]
        expected = np.array([1.0 if any(k.found_in(t) for k in parsed) else 0.0 for t in found])
        assert np.array_equal(presence.any_of(group), expected), group
        assert np.array_equal(keyword_presence(group, texts), expected)


def test_the_first_and_last_text_and_no_texts():
    assert keyword_presence(("sea",), ["sea", "no", "a sea"]).tolist() == [1.0, 0.0, 1.0]
    assert keyword_presence(("sea",), []).tolist() == []
    assert keyword_presence(("sea",), ["", "", "sea"]).tolist() == [0.0, 0.0, 1.0]


class _Watched(list):
    """Texts that record what the judge reads: slices only, no pass over all of them at once."""

    def __init__(self, texts):
        super().__init__(texts)
        self.slices = []

    def __getitem__(self, i):
        if isinstance(i, slice):
            self.slices.append(len(range(*i.indices(len(self)))))
        return super().__getitem__(i)

    def __iter__(self):
        raise AssertionError("the judge read every text at once")


def test_the_judge_reads_the_texts_a_shard_at_a_time(monkeypatch):
    from lmdelta import judges
    from lmdelta.judges.inputs import JudgeInput
    from lmdelta.records import Hypothesis

    monkeypatch.setattr(Presence, "SHARD", 7)
    texts = _texts(100, 5)
    groups = [("ocean",), ("the sea", "**"), ("absent",)]
    hypotheses = [
        Hypothesis(f"h{i}", "all", "b>a", "d", "keywords", "keyword", keywords=group) for i, group in enumerate(groups)
    ]
    watched = _Watched(texts)
    found = list(judges.JUDGES["keyword"](hypotheses, JudgeInput(watched, np.zeros((100, 2)))))
    assert watched.slices == [7] * 14 + [2]
    for group, scores in zip(groups, found):
        assert scores.dtype == float and np.array_equal(scores, keyword_presence(group, texts)), group


def test_the_judge_lets_each_hypothesis_booleans_go_once_handed_out():
    import gc
    import weakref

    from lmdelta import judges
    from lmdelta.judges.inputs import JudgeInput
    from lmdelta.judges.keyword import _handed_out

    hits = [np.zeros(1000, dtype=bool), np.ones(1000, dtype=bool)]
    watched = [weakref.finalize(h, lambda: None) for h in hits]
    out = _handed_out(hits)
    first = next(out)
    gc.collect()
    assert first.tolist() == [0.0] * 1000 and not watched[0].alive and watched[1].alive
    second = next(out)
    gc.collect()
    assert second.tolist() == [1.0] * 1000 and not watched[1].alive
    assert list(judges.JUDGES["keyword"]([], JudgeInput(["sea"], np.zeros((1, 2))))) == []
