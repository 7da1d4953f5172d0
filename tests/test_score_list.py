"""Scores held narrow, read as float64: each array in the narrowest type that keeps every value's bits, and
validation's results unchanged by it."""

from __future__ import annotations

import numpy as np
import pytest
from test_validation import CONFIG, OCEAN, PARK_A, make_pair

from lmdelta import judges
from lmdelta.judges.scorelist import ScoreList, narrowest, widened
from lmdelta.records import Hypothesis
from lmdelta.validate.findings import validate_all


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        ([0.0, 1.0, 1.0, 0.0], np.uint8),  # keyword and presence judges
        ([0.0, 1.0, np.nan], np.float16),  # presences with unjudged texts
        ([-0.0, 1.0], np.float16),  # a negative zero keeps its sign
        ([0.5, 0.25, -3.0, np.inf], np.float16),
        (np.float32([0.1, 0.7311, -0.2]).astype(np.float64), np.float32),  # the embedding judge's similarities
        ([70000.0, 1.0], np.float32),  # past float16's range
        ([0.1, 1 / 3], np.float64),  # probabilities and rescaled values that need every digit
        ([], np.float16),
    ],
)
def test_each_array_is_held_in_the_narrowest_exact_type(values: list[float], dtype: type) -> None:
    held = narrowest(values)
    assert held.dtype == dtype
    back = widened(held)
    original = np.asarray(values, dtype=np.float64)
    assert back.dtype == np.float64 and back.view(np.uint64).tolist() == original.view(np.uint64).tolist()


def test_a_strided_view_is_narrowed_too() -> None:
    values = np.arange(12, dtype=np.float64).reshape(3, 4)[:, 1] / 4
    assert narrowest(values).dtype == np.float16 and widened(narrowest(values)).tolist() == values.tolist()


def test_the_list_reads_float64_and_holds_less() -> None:
    rows = 10_000
    scores = ScoreList([np.ones(rows), np.full(rows, 0.1), np.zeros(rows)])
    assert [s.dtype for s in scores] == [np.float64] * 3
    assert [s.dtype for s in scores[1:]] == [np.float64] * 2
    assert scores.nbytes() == rows + 8 * rows + rows  # two byte arrays and one float64
    scores[0] = np.full(rows, 0.5)
    scores.append(np.ones(4))
    scores.insert(0, np.zeros(2))
    del scores[1]
    assert [len(s) for s in scores] == [2, rows, rows, 4]
    assert scores[-1].tolist() == [1.0] * 4
    assert (scores[1] == 0.1).all() and scores[1][0] - scores[2][0] == 0.1
    assert "held as" in repr(scores)


def test_differences_never_meet_a_narrow_type() -> None:
    scores = ScoreList([np.array([0.0, 1.0]), np.array([1.0, 0.0])])
    assert (scores[0] - scores[1]).tolist() == [-1.0, 1.0]  # uint8 would wrap around to 255


def test_validation_results_are_the_same_as_with_a_plain_list(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_pair(rate_a=0.2, rate_b=0.55, seed=3)
    proto = Hypothesis("h4", "all", "b>a", "ocean-like", "clusters", "embedding", prototype=(0.8, 0.6), order=4)
    hypotheses = [OCEAN, PARK_A, proto]
    held: list[str] = []

    class Seen(ScoreList):
        def __setitem__(self, i: int, value: np.ndarray) -> None:  # type: ignore[override]
            super().__setitem__(i, value)
            held.append(str(self._held[i].dtype))

    monkeypatch.setattr(judges, "ScoreList", Seen)
    narrow = validate_all(data, hypotheses, CONFIG, q=0.05)
    assert held[:3] == ["uint8", "uint8", "float64"]  # as the judges gave them; then spent (emptied) by validate_all
    monkeypatch.setattr(judges, "ScoreList", list)
    plain = validate_all(data, hypotheses, CONFIG, q=0.05)
    assert narrow == plain
