"""Per-prompt scores stored flat (`Ragged`) give the intervals exactly what the list of arrays gave."""

import numpy as np
import pytest

from lmdelta.stats import effects
from lmdelta.stats.ragged import Ragged, flatten


def _groups(seed: int, n_prompts: int = 40):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, size=n_prompts)  # some prompts without a text on this side
    values = (rng.random(counts.sum()) < 0.3).astype(float)
    values[rng.random(values.size) < 0.1] = np.nan  # unscorable answers
    ragged = Ragged(values, counts)
    return ragged, [values[s : s + c] for s, c in zip(ragged.starts, counts)]


def test_ragged_is_the_sequence_of_its_prompts():
    ragged, listed = _groups(1)
    assert len(ragged) == len(listed)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(ragged, listed))
    assert all(np.array_equal(ragged[p], listed[p], equal_nan=True) for p in range(len(listed)))
    with pytest.raises(ValueError, match="counts sum to"):
        Ragged(np.zeros(3), np.array([1, 1]))


def test_flatten_drops_unscorable_values_prompt_by_prompt():
    ragged, listed = _groups(2)
    values, counts = flatten(ragged)
    expected_values, expected_counts = flatten(listed)
    assert np.array_equal(values, expected_values) and np.array_equal(counts, expected_counts)
    assert np.isfinite(values).all() and counts.sum() == values.size


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_intervals_are_the_same_from_ragged_and_from_lists(seed):
    (ragged_a, list_a), (ragged_b, list_b) = _groups(seed), _groups(seed + 100)
    assert effects.prevalence_ci(ragged_a) == effects.prevalence_ci(list_a)
    assert effects.auc_ci(ragged_a, ragged_b) == effects.auc_ci(list_a, list_b)
    assert effects.auc_ci(ragged_a, ragged_b).note is None  # a real interval was compared, not two notes
