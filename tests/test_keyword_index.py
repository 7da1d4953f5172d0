"""The keyword proposer reads scope counts off a sparse n-gram index built once per comparison; the
terms are exactly those the text-by-text contrast gives, weighted (later search rounds) or not."""

import numpy as np
import pytest

from lmdelta.proposers import keywords

WORDS = "ocean sea wave castle tower the of a curious stay !".split()


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 9))) for _ in range(n)]


@pytest.mark.parametrize("weighted", [False, True])
def test_index_counts_give_the_contrast_terms(weighted):
    texts = _texts(120, seed=1)
    rows = np.arange(0, 240, 2)  # sample rows of the discovery texts (not 0..n-1)
    index = keywords.NgramIndex.build(rows, texts, 3, symbols=True)
    scope = np.sort(np.random.default_rng(2).choice(len(texts), size=70, replace=False))
    half = scope[::2], scope[1::2]  # side a, side b (positions in `texts`)
    weights = (np.where(np.arange(len(half[0])) % 3 == 0, 0.0, 1.0), np.full(len(half[1]), 0.25)) if weighted else None
    side_texts = [[texts[i] for i in h] for h in half]
    background = keywords.document_counts(texts, 3, symbols=True)
    expected = keywords.contrast(*side_texts, background, len(texts), 3, 10.0, symbols=True, weights=weights)
    counts = [index.counts(rows[h], None if weights is None else w) for h, w in zip(half, weights or (None, None))]
    sizes = [float(len(h)) if weights is None else float(np.sum(w)) for h, w in zip(half, weights or (None, None))]
    held = (index.counts(rows[half[0]]) + index.counts(rows[half[1]])) > 0
    got = keywords.scored_terms(index.vocab, counts, sizes, index.background, len(texts), 10.0, held)
    assert [t.ngram for t in got] == [t.ngram for t in expected]
    for new, old in zip(got, expected):
        assert (new.count_a, new.count_b) == (old.count_a, old.count_b)
        assert new.z == pytest.approx(old.z, rel=1e-12) and new.delta == pytest.approx(old.delta, rel=1e-12)
    strong = keywords.scored_terms(index.vocab, counts, sizes, index.background, len(texts), 10.0, held, 1.0)
    assert [t.ngram for t in strong] == [t.ngram for t in expected if abs(t.z) >= 1.0]
    assert 0 < len(strong) < len(expected)


@pytest.mark.parametrize("block", [1, 5, 10_000])
def test_counts_add_each_texts_weight_in_index_order(monkeypatch, block):
    """The weighted counts are float64 sums taken text by text in index order (what the 0/1 matrix's product
    with the weights gave before the matrix's values were dropped): compared bit for bit with that loop, for
    any block size, rows in any order, a row given twice, and weights of 0."""
    monkeypatch.setattr(keywords, "_COUNT_BLOCK", block)
    texts = _texts(200, seed=4)
    rows = np.arange(len(texts)) * 2 + 1
    index = keywords.NgramIndex.build(rows, texts, 3, symbols=True)
    rng = np.random.default_rng(5)
    for trial in range(6):
        picked = rng.permutation(rows)[: rng.integers(1, len(rows))]
        weights = rng.random(len(picked)) * (rng.random(len(picked)) < 0.8) if trial % 3 else None
        if trial == 4:
            picked = np.concatenate([picked, picked[:3]])
            weights = np.concatenate([weights, weights[:3]])
        selector = np.zeros(len(rows))
        np.add.at(selector, np.searchsorted(rows, picked), 1.0 if weights is None else weights)
        expected = np.zeros(len(index.vocab))
        for position, weight in enumerate(selector.tolist()):
            for gram in keywords.ngrams(texts[position], 3, symbols=True):
                expected[index.vocab.index(gram)] += weight
        got = index.counts(picked, weights)
        assert got.view(np.uint64).tolist() == expected.view(np.uint64).tolist()
    assert index.background.tolist() == index.counts(rows).tolist()


def test_rows_outside_the_index_are_refused():
    index = keywords.NgramIndex.build(np.array([3, 5]), ["ocean", "sea"], 1)
    assert list(index.counts(np.array([5]))) == [0.0, 1.0]  # vocabulary sorted: ocean, sea
    with pytest.raises(ValueError, match="outside the n-gram index"):
        index.counts(np.array([4]))
    empty = keywords.NgramIndex.build(np.array([], dtype=int), [], 1)
    assert empty.counts(np.array([], dtype=int)).tolist() == []
    with pytest.raises(ValueError, match="outside the n-gram index"):
        empty.counts(np.array([0]))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("min_df", [2, 3, 5])
def test_an_index_without_rare_ngrams_proposes_the_same_terms(weighted, min_df):
    """Leaving out n-grams fewer than min_texts discovery texts hold loses no term top_terms keeps."""
    texts = _texts(300, seed=min_df)
    rows = np.arange(len(texts)) * 3
    full = keywords.NgramIndex.build(rows, texts, 3, symbols=True)
    pruned = keywords.NgramIndex.build(rows, texts, 3, symbols=True, min_df=min_df)
    frequent = {gram for gram, df in zip(full.vocab, full.background) if df >= min_df}
    assert frequent <= set(pruned.vocab) <= set(full.vocab) and len(pruned.vocab) < len(full.vocab)
    assert all(pruned.background[i] == full.background[full.vocab.index(g)] for i, g in enumerate(pruned.vocab))
    rng = np.random.default_rng(min_df)
    for _ in range(4):
        scope = np.sort(rng.choice(len(texts), size=150, replace=False))
        half = rows[scope[::2]], rows[scope[1::2]]
        weights = (rng.choice([0.25, 1.0], size=len(half[0])), rng.choice([0.25, 1.0], size=len(half[1])))
        chosen = []
        for index in (full, pruned):
            w = weights if weighted else (None, None)
            counts = [index.counts(h, x) for h, x in zip(half, w)]
            sizes = [float(len(h)) if x is None else float(np.sum(x)) for h, x in zip(half, w)]
            held = (index.counts(half[0]) + index.counts(half[1])) > 0
            terms = keywords.scored_terms(index.vocab, counts, sizes, index.background, len(texts), 10.0, held)
            chosen.append([keywords.top_terms(terms, d, 8, 0.5, min_df) for d in ("b>a", "a>b")])
        assert chosen[0] == chosen[1] and any(chosen[0])


@pytest.mark.parametrize("chunk,parts", [(7, 4), (1, 16), (10_000, 1)])
def test_frequent_hashes_counted_a_chunk_at_a_time_are_those_of_all_texts_at_once(monkeypatch, chunk, parts):
    """The n-grams' document counts are summed over chunks of texts (an n-gram in several chunks adds up), in
    parts by hash: the same hashes as counting every text's n-grams at once."""
    monkeypatch.setattr(keywords, "_HASH_CHUNK", chunk)
    monkeypatch.setattr(keywords, "_HASH_PARTS", parts)
    texts = _texts(200, seed=4)
    df: dict[int, int] = {}
    for text in texts:
        for gram in keywords.ngrams(text, 3, symbols=True):
            df[hash(gram)] = df.get(hash(gram), 0) + 1
    for min_df in (2, 5):
        expected = {h for h, count in df.items() if count >= min_df}
        assert keywords._frequent_hashes(texts, 3, True, min_df) == expected and expected
