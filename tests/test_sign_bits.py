"""The Monte Carlo sign-flip keeps its P × R sign matrix bit-packed (an eighth of the memory) and unpacks a
block of resamples at a time: the signs, and so every p-value, are exactly those of the unpacked draw."""

import numpy as np
import pytest

from lmdelta.stats import tests as st


def _plain_bits(width: int, n_resamples: int, seed: int) -> np.ndarray:
    """The draw as it was kept before: (width, R) booleans, prompt by prompt from one generator."""
    rng = np.random.default_rng(seed)
    bits = np.empty((width, n_resamples), dtype=bool)
    step = st._chunk_rows(n_resamples)
    for start in range(0, width, step):
        stop = min(width, start + step)
        bits[start:stop] = rng.random((stop - start, n_resamples)) < 0.5
    return bits


@pytest.mark.parametrize(("width", "n_resamples", "chunk"), [(37, 1001, 1 << 21), (300, 999, 5000), (9, 64, 40)])
def test_packed_blocks_are_the_plain_signs(monkeypatch, width, n_resamples, chunk):
    monkeypatch.setattr(st, "_CHUNK_ELEMENTS", chunk)  # small chunks: blocks that start mid-byte
    packed = st._sign_bits(width, n_resamples, seed=7)
    assert packed.dtype == np.uint8 and packed.shape == (width, -(-n_resamples // 8))
    blocks = np.concatenate(list(st._monte_carlo_sign_blocks(packed, n_resamples)))
    assert np.array_equal(blocks, _plain_bits(width, n_resamples, seed=7).T * 2.0 - 1.0)


def test_p_values_are_unchanged_by_packing(monkeypatch):
    """Hand-checkable: the p-values against a count over the plain signs, for ragged rows."""
    monkeypatch.setattr(st, "_CHUNK_ELEMENTS", 3000)
    rng = np.random.default_rng(3)
    D = rng.normal(0.1, 1.0, size=(4, 60))
    D[1, 40:] = np.nan  # a row with fewer prompts sees the first rows of the same signs
    stats, p = st.paired_signflip_many(D, None, "greater", n_resamples=999, seed=11)
    signs = _plain_bits(60, 999, seed=11).T * 2.0 - 1.0
    for h in range(4):
        d = D[h][np.isfinite(D[h])]
        t_star = signs[:, : len(d)] @ d / len(d)
        tol = st._tolerance(d[None, :], axis=1)[0]
        count = np.sum(t_star >= d.mean() - tol)
        assert p[h] == pytest.approx((1 + count) / 1000, abs=0) and stats[h] == pytest.approx(d.mean())
