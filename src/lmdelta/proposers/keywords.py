"""Keyword contrast: which 1–3-grams of words, and which symbols ("!", "**", "—", emoji), does one
side use in more answers than the other? Texts are read through lmdelta.words, as the keyword judge
reads them: literal escapes decoded and Treebank-split contractions joined before words are counted.

The score is the log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn
2008, "Fightin' Words"), applied to document frequencies: y_w of N texts on a side contain w,
the prior is Beta(α0·s_w, α0·(1 − s_w)) with s_w the share of all discovery texts containing w
and α0 = `prior_strength` pseudo-texts, and

    δ_w = logit((y_b + α0 s_w) / (N_b + α0)) − logit((y_a + α0 s_w) / (N_a + α0)),  z_w = δ_w / sd(δ_w).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmdelta.config import RunConfig
from lmdelta.pairdata import PairData
from lmdelta.proposers import in_scope
from lmdelta.records import DIRECTIONS, Direction, Hypothesis, Sample
from lmdelta.sampletable import SampleTable
from lmdelta.words import Keyword, Tokens, is_symbol, tokens, words

_CONTRACTED = """don't can't won't isn't aren't wasn't weren't doesn't didn't haven't hasn't wouldn't couldn't
shouldn't i'm i've i'll i'd it's you're we're they're he's she's that's there's let's""".split()
STOP = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being it its
this that these those i you he she we they me my your our their his her them us do does did so not no yes can
could would should will just than then there here what which who whom how when where why all any some such
very too also into about over more most other only own same s t""".split()
    + _CONTRACTED
    + [word.replace("'", "’") for word in _CONTRACTED]
)
# _frequent_hashes counts the n-grams of this many texts at once, and keeps the counts in this many parts.
_HASH_CHUNK = 50_000
_HASH_PARTS = 16
_COUNT_BLOCK = 16_384  # texts whose n-grams are gathered at once when counting (about 1.6 M n-grams at 100 each)


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

    index: NgramIndex

    def propose(self, data: PairData, scope: str, rows: np.ndarray, config: RunConfig) -> list[Hypothesis]:
        """Per direction (b>a first), the scope's strongest n-grams, one hypothesis each."""
        section = config.propose.keywords
        is_b = data.samples.is_b(rows)
        side_rows = [np.asarray(rows, dtype=int)[~is_b], np.asarray(rows, dtype=int)[is_b]]
        weights = (None, None) if data.weights is None else (data.weight(side_rows[0]), data.weight(side_rows[1]))
        index = self.index
        counts = [index.counts(r, w) for r, w in zip(side_rows, weights)]  # later rounds: weighted
        sizes = [float(len(r)) if w is None else float(np.sum(w)) for r, w in zip(side_rows, weights)]
        held = None if data.weights is None else (index.counts(side_rows[0]) + index.counts(side_rows[1])) > 0
        prior = section.prior_strength
        least = max(section.min_z, 0.0)  # top_terms keeps |z| ≥ min_z only
        terms = scored_terms(index.vocab, counts, sizes, index.background, len(index.rows), prior, held, least)
        found = {side: ReadInOrder(data.samples.take(r)) for side, r in zip("ab", side_rows)}
        return [
            _hypothesis(data, scope, direction, term, found)
            for direction in DIRECTIONS
            for term in top_terms(terms, direction, section.per_scope, section.min_z, section.min_texts)
        ]


def prepare(data: PairData, config: RunConfig) -> KeywordProposer | None:
    """The keyword proposer for this comparison (None when propose.keywords is off): the discovery texts'
    n-grams indexed once, shared with the null control's proposer (the same texts)."""
    if not config.propose.keywords.enabled:
        return None
    section = config.propose.keywords
    discovery = data.rows("discovery")
    key = ("ngram-index", len(data.samples), discovery.tobytes(), section.max_ngram, section.symbols, section.min_texts)
    index = data.shared.get(key)
    if not isinstance(index, NgramIndex):
        texts = data.strings(discovery)
        index = data.shared[key] = NgramIndex.build(
            discovery, texts, section.max_ngram, symbols=section.symbols, min_df=section.min_texts
        )
    return KeywordProposer(index)


@dataclass(frozen=True)
class NgramIndex:
    """Which discovery texts hold which n-grams, as the column numbers of a sparse texts × n-grams 0/1 matrix
    (CSR without its values, which are all 1): a scope's (weighted) document counts are read from it instead of
    re-reading its texts, each search round and each scope."""

    rows: np.ndarray  # the sample rows indexed (ascending), in matrix row order
    vocab: list[str]  # column names, sorted
    starts: np.ndarray  # text i's n-grams are columns[starts[i]:starts[i + 1]]
    columns: np.ndarray  # int32 (int64 past 2^31 n-grams), each at most once per text
    background: np.ndarray  # per n-gram, how many indexed texts hold it

    @classmethod
    def build(
        cls, rows: np.ndarray, texts: list[str], max_n: int, *, symbols: bool = False, min_df: int = 1
    ) -> NgramIndex:
        """The index of `texts` (the discovery texts at sample `rows`). With `min_df` > 1 it leaves out n-grams
        fewer texts hold: no scope can count them min_df times (a scope's texts are discovery texts, and a
        search round's weights are at most 1), so no term that min_texts = min_df lets through is lost, and
        the vocabulary, most of which are n-grams one text holds, shrinks to what can be proposed."""
        frequent = _frequent_hashes(texts, max_n, symbols, min_df) if min_df > 1 else None
        ids: dict[str, int] = {}
        pieces: list[np.ndarray] = []  # first-seen ids, a chunk of texts at a time (no Python list of them all)
        lengths = np.zeros(len(texts), dtype=np.int64)
        for start in range(0, len(texts), _HASH_CHUNK):
            found: list[int] = []
            for i, text in enumerate(texts[start : start + _HASH_CHUNK], start):
                grams = ngrams(text, max_n, symbols=symbols)
                kept = grams if frequent is None else [gram for gram in grams if hash(gram) in frequent]
                found += [ids.setdefault(gram, len(ids)) for gram in kept]
                lengths[i] = len(kept)
            pieces.append(np.array(found, dtype=np.int32 if len(ids) < 2**31 else np.int64))
        vocab = sorted(ids)
        rank = np.empty(len(vocab), dtype=np.int64)  # first-seen id → column in sorted order
        rank[[ids[gram] for gram in vocab]] = np.arange(len(vocab))
        del ids
        starts = np.concatenate([[0], np.cumsum(lengths)])
        columns = np.empty(int(starts[-1]), dtype=np.int32 if len(vocab) < 2**31 else np.int64)
        at = 0
        while pieces:  # each chunk's ids as columns, the chunk let go as it is copied
            piece = pieces.pop(0)
            columns[at : at + piece.size] = rank[piece]
            at += piece.size
        background = np.bincount(columns, minlength=len(vocab)).astype(np.float64)
        return cls(np.asarray(rows, dtype=np.int64), vocab, starts, columns, background)

    def counts(self, rows: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Per n-gram, how many of `rows` (sample rows, all indexed) hold it; with `weights`, their weight sum.

        The sums are added text by text in index order, a block of texts at a time, exactly as the product of
        the 0/1 matrix's transpose with the texts' weights adds them (the same float64 sums, bit for bit), without
        keeping the matrix's values: at 600,000 discovery texts those were 0.47 GB of ones."""
        where = np.searchsorted(self.rows, rows)
        inside = len(self.rows) and np.array_equal(self.rows[np.minimum(where, len(self.rows) - 1)], rows)
        if len(rows) and not inside:
            raise ValueError("rows outside the n-gram index (only discovery texts are indexed)")
        selector = np.zeros(len(self.rows))  # a text's weight (summed if it is given twice)
        np.add.at(selector, where, 1.0 if weights is None else np.asarray(weights, dtype=float))
        chosen = np.flatnonzero(selector)  # ascending; a text of weight 0 adds nothing
        out = np.zeros(len(self.vocab))
        for block in range(0, len(chosen), _COUNT_BLOCK):
            texts = chosen[block : block + _COUNT_BLOCK]
            lengths = self.starts[texts + 1] - self.starts[texts]
            at = np.repeat(self.starts[texts] - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
            if weights is None and (selector[texts] == 1.0).all():  # whole counts: exact in any order
                out += np.bincount(self.columns[at], minlength=len(out))
            else:
                np.add.at(out, self.columns[at], np.repeat(selector[texts], lengths))
        return out


class ReadInOrder:
    """A side's answers in a scope, tokenised as the evidence search first reads them and kept: every hypothesis
    reads from the first answer until three hold its term, so each answer is tokenised at most once per scope,
    and only as far as some hypothesis read (often a few answers; before, all of them, up front)."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = SampleTable.of(samples)
        self._tokens: list[Tokens] = []

    def __len__(self) -> int:
        return len(self.samples)

    def first_holding(self, keyword: Keyword, count: int = 3) -> list[str]:
        """The ids of the first `count` answers that hold the keyword."""
        hits: list[str] = []
        for i in range(len(self.samples)):  # a text is decoded only to be tokenised, a sample built only for a hit
            if i == len(self._tokens):
                found = tokens(self.samples.text(i))  # kept without its word tuple, which matching never reads
                self._tokens.append(Tokens((), found.spaced, found.symbols))
            if keyword.found_in(self._tokens[i]):
                hits.append(self.samples[i].id)
                if len(hits) == count:
                    break
        return hits


def _frequent_hashes(texts: list[str], max_n: int, symbols: bool, min_df: int) -> set[int]:
    """The hashes of the n-grams at least `min_df` texts hold, counted as 64-bit hashes (16 bytes an n-gram, not
    a string). Two n-grams that share a hash count each other's texts too: one can be kept that did not need
    to be, never one left out that is needed. Counted a chunk of texts at a time: each chunk's distinct hashes
    and their counts, kept in parts by the hash's top bits, each part summed at the end. At 600,000 discovery
    texts every occurrence at once was 92 M hashes (0.7 GB), and sorting them took as much again twice."""
    parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(_HASH_PARTS)]
    edges = np.array([-(2**63) + k * (2**64 // _HASH_PARTS) for k in range(1, _HASH_PARTS)], dtype=np.int64)
    for start in range(0, len(texts), _HASH_CHUNK):
        chunk = texts[start : start + _HASH_CHUNK]
        hashes = np.fromiter((hash(g) for text in chunk for g in ngrams(text, max_n, symbols=symbols)), dtype=np.int64)
        values, counts = np.unique(hashes, return_counts=True)
        del hashes
        cuts = [0, *np.searchsorted(values, edges).tolist(), values.size]
        for part, (low, high) in zip(parts, zip(cuts[:-1], cuts[1:])):
            part.append((values[low:high], counts[low:high].astype(np.int32)))
    frequent: set[int] = set()
    for k, part in enumerate(parts):
        values, inverse = np.unique(
            np.concatenate([v for v, _ in part] or [np.empty(0, np.int64)]), return_inverse=True
        )
        totals = np.bincount(inverse, weights=np.concatenate([c for _, c in part] or [np.empty(0, np.int32)]))
        parts[k] = []
        frequent.update(values[totals >= min_df].tolist())
    return frequent


def _hypothesis(
    data: PairData, scope: str, direction: Direction, term: Term, found: dict[str, ReadInOrder]
) -> Hypothesis:
    more, less = ("b", "a") if direction == "b>a" else ("a", "b")
    keyword = Keyword.of(term.ngram)
    hits = {side: found[side].first_holding(keyword) for side in ("a", "b")}
    description = in_scope(f"{data.labels[more]} uses “{term.ngram}” in more answers than {data.labels[less]}", scope)
    kind = "symbol" if keyword.symbol else "word or phrase"
    provenance = {
        "z": round(term.z, 3),
        "log_odds": round(term.delta, 3),
        "discovery_texts_with_term": {"a": term.count_a, "b": term.count_b},
        "discovery_texts": {"a": len(found["a"]), "b": len(found["b"])},
    }
    return Hypothesis(
        id="",
        group=scope,
        direction=direction,
        description=description,
        proposer="keywords",
        judge="keyword",
        keywords=(term.ngram,),
        property=f"uses the {kind} “{term.ngram}”",
        evidence=hits,
        provenance=provenance,
    )


def ngrams(text: str, max_n: int, *, symbols: bool = False) -> set[str]:
    """The distinct 1..max_n-grams of a text's words (n-grams made only of stop words left out) and,
    with `symbols`, its distinct symbols. Word n-grams run over words only, so punctuation between two
    words does not part them: the keyword judge finds them the same way (lmdelta.words.Keyword)."""
    if symbols:
        found_tokens = tokens(text)
        text_words, found = found_tokens.words, set(found_tokens.symbols)
    else:
        text_words, found = tuple(words(text)), set()
    for n in range(1, max_n + 1):
        for start in range(len(text_words) - n + 1):
            gram = text_words[start : start + n]
            if not all(w in STOP for w in gram):
                found.add(" ".join(gram))
    return found


def document_counts(
    texts: list[str], max_n: int, *, symbols: bool = False, weights: np.ndarray | None = None
) -> Counter:
    """How many of the texts hold each n-gram (and each symbol, with `symbols`); with `weights`, the
    sum of the weights of the texts that hold it (a search round's explained-away texts count less)."""
    counts: Counter = Counter()
    for i, text in enumerate(texts):
        found = ngrams(text, max_n, symbols=symbols)
        if weights is None:
            counts.update(found)
        else:
            counts.update(dict.fromkeys(found, float(weights[i])))
    return counts


def contrast(
    texts_a: list[str],
    texts_b: list[str],
    background: Counter,
    n_background: int,
    max_n: int = 3,
    prior_strength: float = 10.0,
    *,
    symbols: bool = False,
    weights: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Term]:
    """Every n-gram (and symbol, with `symbols`) seen on either side, scored b-versus-a (positive z: more
    frequent in b). With `weights` (per text of a, per text of b) texts count by their weight: N is the
    sum of a side's weights and y the weighted count of the texts holding the n-gram."""
    weight_a, weight_b = weights if weights is not None else (None, None)
    count_a = document_counts(texts_a, max_n, symbols=symbols, weights=weight_a)
    count_b = document_counts(texts_b, max_n, symbols=symbols, weights=weight_b)
    vocab = sorted(set(count_a) | set(count_b))
    n_a = len(texts_a) if weight_a is None else float(np.sum(weight_a))
    n_b = len(texts_b) if weight_b is None else float(np.sum(weight_b))
    counts = [np.array([count[w] for w in vocab], dtype=float) for count in (count_a, count_b)]
    shares = np.array([background[w] for w in vocab], dtype=float)
    held = np.ones(len(vocab), dtype=bool)  # the vocabulary is what the texts hold
    return scored_terms(vocab, counts, [n_a, n_b], shares, n_background, prior_strength, held)


def scored_terms(
    vocab: list[str],
    counts: list[np.ndarray],
    sizes: list[float],
    background: np.ndarray,
    n_background: int,
    prior_strength: float,
    held: np.ndarray | None = None,
    min_abs_z: float = 0.0,
) -> list[Term]:
    """The log-odds z of every n-gram of `vocab` held by some text of either side (counts: per side, per
    n-gram; sizes: N per side; background: discovery texts holding each n-gram; held: whether some text of
    the scope holds it, which a weighted count of 0 does not tell; default: a count above 0). Only n-grams
    with |z| ≥ min_abs_z become Terms (top_terms keeps none below its min_z): a scope of many texts holds
    hundreds of thousands of n-grams, nearly all of them near z = 0."""
    y_a, y_b = counts
    seen = np.flatnonzero((y_a > 0) | (y_b > 0) if held is None else held)
    if not len(seen):
        return []
    y_a, y_b = y_a[seen], y_b[seen]
    share = np.clip(background[seen] / max(n_background, 1), 1e-3, 1 - 1e-3)
    logit_a, var_a = _log_odds(y_a, sizes[0], share, prior_strength)
    logit_b, var_b = _log_odds(y_b, sizes[1], share, prior_strength)
    delta = logit_b - logit_a
    z = delta / np.sqrt(var_a + var_b)
    keep = np.flatnonzero(np.abs(z) >= min_abs_z)
    counts_a, counts_b = np.rint(y_a[keep]).astype(int).tolist(), np.rint(y_b[keep]).astype(int).tolist()
    return [
        Term(vocab[w], zv, dv, ca, cb)
        for w, zv, dv, ca, cb in zip(seen[keep].tolist(), z[keep].tolist(), delta[keep].tolist(), counts_a, counts_b)
    ]


def _log_odds(y: np.ndarray, n: float, share: np.ndarray, alpha0: float) -> tuple[np.ndarray, np.ndarray]:
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
    """One n-gram inside the other, or one symbol the run (or the emoji variant) of the other: "*" and "**"."""
    if is_symbol(one) or is_symbol(other):
        return one.startswith(other) or other.startswith(one)
    padded_one, padded_other = f" {one} ", f" {other} "
    return padded_one in padded_other or padded_other in padded_one
