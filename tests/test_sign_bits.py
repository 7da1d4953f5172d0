"""The Monte Carlo sign-flip draws its shared sign matrix a block of resamples at a time, each block from its own
generator, and never holds the P x R matrix: the p-values are exactly those of a count over the matrix built
straight from its definition, whatever the chunking, and the memory does not grow with P x R."""

import tracemalloc

import numpy as np
import pytest

from lmdelta.stats import tests as st


def _plain_signs(width: int, n_resamples: int, seed: int) -> np.ndarray:
    """The (width, R) matrix of +-1 from its definition: block j of 1,024 resamples is PCG64(SeedSequence([seed, j])),
    16 raw little-endian 64-bit words a prompt, bit i of a prompt's words the sign of resample j * 1024 + i."""
    blocks = []
    for j in range(-(-n_resamples // 1024)):
        words = np.random.PCG64(np.random.SeedSequence([seed, j])).random_raw(width * 16).astype("<u8")
        bits = np.unpackbits(words.view(np.uint8).reshape(width, 128), axis=1, bitorder="little")
        blocks.append(bits)
    return np.concatenate(blocks, axis=1)[:, :n_resamples] * 2.0 - 1.0


def _hand_p(d: np.ndarray, signs: np.ndarray, alternative: str) -> float:
    t_star = d @ signs[: d.size] / d.size
    tol = st._tolerance(d[None, :], axis=1)[0]
    count = np.sum(st._as_extreme(t_star, d.mean(), tol, alternative))
    return (1 + count) / (1 + signs.shape[1])


@pytest.mark.parametrize("chunk", [1 << 21, 3 * 1024, 1024])  # 2,048 / 3 / 1 prompts a chunk
@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_p_values_are_a_count_over_the_defined_signs(monkeypatch, chunk, alternative):
    """Ragged rows (fewer prompts see the first rows of the same signs), R not a multiple of the block."""
    monkeypatch.setattr(st, "_CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(3)
    D = rng.normal(0.1, 1.0, size=(4, 60))
    D[1, 40:] = np.nan
    D[3, ::3] = np.nan  # gaps are packed to the front, order kept
    stats, p = st.paired_signflip_many(D, None, alternative, n_resamples=2500, seed=11)
    signs = _plain_signs(60, 2500, seed=11)
    for h in range(4):
        d = D[h][np.isfinite(D[h])]
        assert p[h] == pytest.approx(_hand_p(d, signs, alternative), abs=0)
        assert stats[h] == pytest.approx(d.mean())
        single = st.paired_signflip(d, alternative, n_resamples=2500, seed=11)  # the row-wise test
        assert single.p_value == p[h]


def test_less_is_greater_on_the_negated_differences():
    rng = np.random.default_rng(8)
    D = np.round(rng.normal(0.0, 1.0, size=(5, 80)), 1)  # discrete: ties are counted exactly
    _, p_less = st.paired_signflip_many(D, None, "less", n_resamples=3000, seed=2)
    _, p_greater = st.paired_signflip_many(-D, None, "greater", n_resamples=3000, seed=2)
    assert np.array_equal(p_less, p_greater)


def _peak(call):
    """call()'s result and the peak of the memory it traced (numpy's buffers included)."""
    tracemalloc.start()
    try:
        return call(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_prompts_times_resamples(monkeypatch):
    """200,000 prompts x R = 2,048: the sign matrix would take 51 MB even bit-packed; the test holds a chunk."""
    monkeypatch.setattr(st, "_CHUNK_ELEMENTS", 1 << 16)  # 64 prompts x 1,024 resamples a chunk
    d = np.random.default_rng(0).normal(0.0, 1.0, size=(1, 200_000))
    (_, p), peak = _peak(lambda: st.paired_signflip_many(d, None, "greater", n_resamples=2048, seed=1))
    assert 0 < p[0] <= 1
    assert peak < 12 * 2**20  # the data twice (1.6 MB each), a mask and a chunk; 51 MB with the matrix held


def test_row_masks_rows_and_alternatives_per_row_give_each_call_alone():
    """One P-long mask per row (hypothesis_tests passes its scopes' masks, without an (H, P) stack), the rows
    picked by `rows`, and an alternative per row: each row's statistic and p-value are those of its own call."""
    rng = np.random.default_rng(4)
    D = rng.normal(0.2, 1.0, size=(5, 50))
    D[0, 10:30] = np.nan
    mask = rng.random(D.shape) < 0.8
    kinds = ["greater", "less", "two-sided", "less"]
    stats, p = st.paired_signflip_many(D, list(mask), kinds, n_resamples=1500, seed=5, rows=[4, 0, 2, 1])
    for k, (row, kind) in enumerate(zip([4, 0, 2, 1], kinds)):
        alone = st.paired_signflip_many(D[row : row + 1], mask[row : row + 1], kind, n_resamples=1500, seed=5)
        assert (stats[k], p[k]) == (alone[0][0], alone[1][0])


def test_the_differences_are_neither_copied_nor_changed(monkeypatch):
    """150 hypotheses x 40,000 prompts, each scoped to a tenth of the prompts: the test holds their positions
    and a chunk, not a second (H, P) table (48 MB here, 0.8 GB at 700,000 prompts)."""
    monkeypatch.setattr(st, "_CHUNK_ELEMENTS", 1 << 16)  # 64 prompts x 1,024 resamples a chunk
    rng = np.random.default_rng(1)
    D = rng.normal(0.0, 1.0, size=(150, 40_000))
    before = D.copy()
    masks = [np.arange(40_000) % 10 == h % 10 for h in range(150)]
    (_, p), peak = _peak(lambda: st.paired_signflip_many(D, masks, "greater", n_resamples=1100, seed=3))
    assert np.array_equal(D, before) and np.all((0 < p) & (p <= 1))
    assert peak < D.nbytes / 4


def test_both_directions_in_one_call_give_each_direction_alone():
    """hypothesis_tests negates the a > b rows to test them with the b > a rows: statistics and p-values are those
    of each direction's own call, a zero statistic included (0.0, not -0.0)."""
    from lmdelta.config import ValidateConfig
    from lmdelta.records import Hypothesis
    from lmdelta.validate.sets import ValidationSet
    from lmdelta.validate.significance import hypothesis_tests, paired_differences

    prompts = 40
    vs = ValidationSet(
        np.arange(2 * prompts),
        [f"p{i}" for i in range(prompts)],
        np.repeat(np.arange(prompts), 2),
        np.tile([False, True], prompts),
        np.array(["all"] * prompts),
    )
    rng = np.random.default_rng(6)
    scores = [(rng.random(2 * prompts) < 0.3).astype(float) for _ in range(4)]
    scores[3] = np.tile([1.0, 0.0, 0.0, 1.0], prompts // 2)  # d = -1, +1, -1, +1, ...: mean exactly 0
    hyps = [
        Hypothesis(f"h{i}", "all", "a>b" if i % 2 else "b>a", f"word {i}", "keywords", "keyword", keywords=(f"w{i}",))
        for i in range(4)
    ]
    config = ValidateConfig(seed=2)
    paired = paired_differences(scores, hyps, vs, config)
    together = hypothesis_tests(scores, paired, [vs.scope("all")] * 4, hyps, vs, config, 3000)
    for i in range(4):
        alone = hypothesis_tests(
            [scores[i]], (paired[0][i : i + 1], paired[1][i : i + 1]), [vs.scope("all")], [hyps[i]], vs, config, 3000
        )[0]
        assert (together[i]["statistic"], together[i]["p_value"]) == (alone["statistic"], alone["p_value"])
    assert together[3]["statistic"] == 0.0 and np.copysign(1.0, together[3]["statistic"]) == 1.0
