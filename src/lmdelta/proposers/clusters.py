"""Cluster over-representation: cluster a scope's discovery answers (both sides together), keep clusters
where one side holds clearly more than its share, and describe each by its distinctive text properties,
its distinctive words and its medoid.

What is clustered matters. Where the sides answer the same prompts, an answer's embedding is mostly its
prompt's topic, so clusters of raw embeddings are topics holding both sides' answers to their prompts in
equal numbers and no cluster is ever over-represented (HC3, 300 discovery answers: balanced shares
0.50-0.56 in all 8 clusters). With `within_prompt` on, each answer is clustered by how it differs from
its prompt's answers: its embedding minus the mean of the prompt's two side means, at unit length.
Clusters then gather kinds of difference ("longer, hedges more"), and a cluster's prototype is a
direction along which the embedding judge's paired score difference (a's answer against b's to one
prompt, so the shared topic cancels) measures that kind. Everything here uses discovery answers only;
the screening numbers pick candidates, validation on held-out prompts tests them.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from lmdelta.config import ClusterProposerConfig, RunConfig
from lmdelta.pairdata import PairData
from lmdelta.properties import CATALOGUE, Property
from lmdelta.proposers import in_scope
from lmdelta.proposers.keywords import contrast, document_counts
from lmdelta.proposers.properties import DiscoveryScores, score_discovery
from lmdelta.records import Direction, Hypothesis

log = logging.getLogger(__name__)
# k-means of a scope is fitted on at most this many of its answers (a seeded sample); the rest are assigned.
FIT_AT_MOST = 20_000
TRAIT_MIN_DISTANCE = 0.15  # a property names a cluster when P(member > other answer) is >= 0.65 or <= 0.35
REDUNDANT = 0.8  # a second property whose values rank the answers nearly as the first does adds nothing
SNIPPET = 90  # characters of the medoid quoted in a description
_DIFFERENCE_CHUNK = 65_536  # rows of within-prompt differences computed at once


@dataclass(frozen=True)
class ClusterFinding:
    direction: Direction
    share: float  # the favoured side's share of the cluster, after balancing side sizes
    p_value: float  # one-sided binomial on discovery counts: a screening score, not a test
    members: np.ndarray  # indices into the texts given
    medoid: int
    prototype: np.ndarray
    terms: tuple[str, ...]
    count_a: int
    count_b: int


@dataclass(frozen=True)
class Trait:
    """A text property that sets a cluster's answers apart from the scope's other discovery answers."""

    prop: Property
    auc: float  # P(a member's value > another answer's value), ties counting half
    member_median: float
    other_median: float

    @property
    def phrase(self) -> str:
        """A short phrase for a description: "longer", "more exclamation marks", "fewer words", "less often refuses"."""
        more = self.auc > 0.5
        if self.prop.kind == "presence":
            phrase = self.prop.phrase or self.prop.name
            return phrase if more else f"less often {phrase}"
        if more:
            return _strip_verb(self.prop.more)
        countable = self.prop.unit in (self.prop.noun, "per 100 words")
        return f"{'fewer' if countable else 'less'} {self.prop.noun or self.prop.name}"


@dataclass(frozen=True)
class ScopeAnswers:
    """The answers a scope clusters: their sample rows, sides and the vectors clustered."""

    rows: np.ndarray
    sides: np.ndarray  # "a"/"b" per row
    vectors: np.ndarray  # within-prompt differences at unit length, or the answers' own embeddings
    within_prompt: bool


@dataclass(frozen=True)
class ClusterProposer:
    """The cluster proposer for one comparison: each scope is clustered on its own; the catalogue's
    properties are scored once over all discovery answers (NaN for other rows)."""

    within_prompt: bool  # the section's setting, where the corpora share prompts
    measures: tuple[Property, ...]
    values: DiscoveryScores

    def propose(self, data: PairData, scope: str, rows: np.ndarray, config: RunConfig) -> list[Hypothesis]:
        """The scope's most over-represented clusters (smallest screening p first), one hypothesis each."""
        section = config.propose.clusters
        answers = scope_answers(data, rows, self.within_prompt)
        texts = data.strings(answers.rows)
        seed = config.propose.resolved_seed
        weights = None if data.weights is None else data.weight(answers.rows)
        findings = find(texts, answers.sides, answers.vectors, section, seed, section.per_scope, weights)
        _log_scope(scope, answers, findings, section)
        values = self.values[answers.rows]
        return [
            _hypothesis(data, scope, answers, f, traits(self.measures, values, f.members, section.properties))
            for f in findings
        ]


def prepare(data: PairData, config: RunConfig) -> ClusterProposer | None:
    """The cluster proposer (None when propose.clusters is off)."""
    section = config.propose.clusters
    if not section.enabled:
        return None
    measures = CATALOGUE if section.properties else ()
    return ClusterProposer(section.within_prompt and data.shares_prompts(), measures, score_discovery(data, measures))


def scope_answers(data: PairData, rows: np.ndarray, within_prompt: bool) -> ScopeAnswers:
    """The scope's answers and the vectors to cluster (see the module docstring): within-prompt
    differences, for which answers to prompts only one side answered here are left out, or raw embeddings."""
    sides = np.array(data.samples.sides(rows), dtype="U1")
    if not within_prompt:
        return ScopeAnswers(rows, sides, data.vectors_of(rows), within_prompt=False)
    prompts = data.samples.prompt_index()[1][np.asarray(rows, dtype=np.intp)]  # codes: no string per answer
    keep, differences = within_prompt_differences(data.vectors_of(rows), prompts, sides == "b")
    return ScopeAnswers(rows[keep], sides[keep], differences, within_prompt=True)


def within_prompt_differences(
    vectors: np.ndarray, prompts: np.ndarray, is_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which rows belong to a prompt both sides answered, and for those rows the embedding minus the
    prompt's centre (the mean of its a answers' mean and its b answers' mean, so each side weighs the
    same however many answers it has), scaled to unit length (a zero difference stays zero)."""
    _, prompt_of_row = np.unique(prompts, return_inverse=True)
    n_prompts = int(prompt_of_row.max()) + 1 if len(prompt_of_row) else 0
    means, counts = [], []
    for side in (~is_b, is_b):
        sums = np.zeros((n_prompts, vectors.shape[1]))
        np.add.at(sums, prompt_of_row[side], vectors[side])
        counts.append(np.bincount(prompt_of_row[side], minlength=n_prompts))
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.divide(sums, counts[-1][:, None], out=sums))  # the side's mean per prompt, in place
    keep = ((counts[0] > 0) & (counts[1] > 0))[prompt_of_row]
    centre = np.add(means[0], means[1], out=means[0])
    del means
    centre /= 2
    return keep, _unit_differences(vectors, keep, prompt_of_row, centre)


def _unit_differences(
    vectors: np.ndarray, keep: np.ndarray, prompt_of_row: np.ndarray, centre: np.ndarray
) -> np.ndarray:
    """The kept rows' embedding minus their prompt's centre, scaled to unit length (zero stays zero), float64: a
    chunk of rows at a time, so that at 600,000 answers no temporary is as large as the result (0.3 GB)."""
    rows = np.flatnonzero(keep)
    out = np.empty((rows.size, vectors.shape[1]))
    for start in range(0, rows.size, _DIFFERENCE_CHUNK):
        at = rows[start : start + _DIFFERENCE_CHUNK]
        part = out[start : start + at.size]
        np.subtract(vectors[at], centre[prompt_of_row[at]], out=part)
        norms = np.linalg.norm(part, axis=1, keepdims=True)
        np.divide(part, norms, out=part, where=norms > 0)
        part[~(norms[:, 0] > 0)] = 0.0
    return out


def find(
    texts: list[str],
    sides: np.ndarray,
    vectors: np.ndarray,
    section: ClusterProposerConfig,
    seed: int,
    limit: int | None = None,
    weights: np.ndarray | None = None,
) -> list[ClusterFinding]:
    """Over-represented clusters among discovery texts (sides: array of "a"/"b"), smallest screening p
    first; the first `limit` (all by default) with their distinctive words. With `weights` (a later search
    round's), texts count by their weight in the clustering, the sizes and the shares."""
    min_size, min_share = section.min_size, section.min_share
    labels = cluster_labels(vectors, section.k, seed, min_size, weights)
    if labels is None:
        return []
    weight = np.ones(len(sides)) if weights is None else np.asarray(weights, dtype=float)
    base_b = float(np.sum(weight[sides == "b"]) / max(np.sum(weight), 1e-12))
    _log_clusters(labels, sides, base_b)
    found = []
    for cluster in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == cluster)
        finding = _assess(sides, vectors, members, base_b, min_size, min_share, weight)
        if finding is not None:
            found.append(finding)
    found.sort(key=lambda f: f.p_value)
    chosen = found[:limit]
    background = document_counts(texts, 1) if chosen else None
    return [replace(f, terms=_terms(texts, f.members, background)) for f in chosen]


def cluster_labels(
    vectors: np.ndarray, k: int, seed: int, min_size: int, weights: np.ndarray | None = None
) -> np.ndarray | None:
    """k-means labels, k lowered so that clusters can average min_size members and to the number of distinct
    vectors (identical answers to a prompt all have a zero difference); None when fewer than 2. Past FIT_AT_MOST
    answers the centres are fitted on a seeded sample of that many (with their weights) and every answer takes
    its nearest centre: 8 centres in 64-384 dimensions are as well placed by 20,000 points, and the cost of a
    scope stops growing with it (at 2,000,000 texts the whole-corpus scope holds 600,000 discovery answers)."""
    from sklearn.cluster import KMeans  # heavy: only when a scope is clustered

    k = min(k, len(vectors) // max(min_size, 1))
    if len(vectors) > FIT_AT_MOST:  # fit on a seeded sample, then label every answer by its nearest centre
        sample = np.sort(np.random.default_rng(seed).choice(len(vectors), FIT_AT_MOST, replace=False))
        fit_on, fit_weights = vectors[sample], None if weights is None else np.asarray(weights)[sample]
    else:
        fit_on, fit_weights = vectors, weights
    k = distinct_rows_up_to(fit_on, k)
    if k < 2:
        return None
    model = KMeans(n_clusters=k, n_init=5, random_state=seed).fit(fit_on, sample_weight=fit_weights)
    return np.asarray(model.labels_ if fit_on is vectors else model.predict(vectors))


def distinct_rows_up_to(vectors: np.ndarray, bound: int) -> int:
    """min(bound, the number of distinct rows), reading rows only until `bound` distinct ones are seen: memory
    for `bound` rows, not a sorted copy of them all."""
    seen: set[bytes] = set()
    for row in vectors:
        if len(seen) >= bound:
            break
        seen.add(np.ascontiguousarray(row + 0.0).tobytes())  # + 0.0: -0.0 and 0.0 are one value, as np.unique sees
    return min(bound, len(seen))


def _assess(sides, vectors, members, base_b, min_size, min_share, weight) -> ClusterFinding | None:
    size = float(np.sum(weight[members]))
    if size < min_size:
        return None
    n_b = float(np.sum(weight[members][sides[members] == "b"]))
    n_a = size - n_b
    direction: Direction = "b>a" if n_b / size > base_b else "a>b"
    favoured, expected = (n_b, base_b) if direction == "b>a" else (n_a, 1 - base_b)
    share = _balanced_share(favoured / size, expected)
    if share < min_share:
        return None
    from scipy.stats import binomtest  # scipy.stats takes ~0.5 s to import: only when a cluster is assessed

    trials = max(int(round(size)), 1)  # a screening score: weighted counts are rounded to whole texts
    p_value = binomtest(min(int(round(favoured)), trials), trials, expected, alternative="greater").pvalue
    prototype = _unit(vectors[members].mean(axis=0))
    own = members[sides[members] == ("b" if direction == "b>a" else "a")]  # the example is the favoured side's
    medoid = int(own[np.argmax(vectors[own] @ prototype)])
    texts_b = int(np.sum(sides[members] == "b"))  # the texts themselves, whatever their weight
    texts_a = len(members) - texts_b
    return ClusterFinding(direction, share, float(p_value), members, medoid, prototype, (), texts_a, texts_b)


def _balanced_share(observed: float, expected: float) -> float:
    """The favoured side's share if both sides had contributed equally many texts overall."""
    odds = (observed / max(1 - observed, 1e-9)) / (expected / max(1 - expected, 1e-9))
    return odds / (1 + odds)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def _terms(texts: list[str], members: np.ndarray, background: Counter | None = None, n: int = 4) -> tuple[str, ...]:
    """Words that mark the cluster against the other discovery texts (background: document_counts(texts, 1))."""
    inside = np.zeros(len(texts), dtype=bool)
    inside[members] = True
    outside = [t for t, member in zip(texts, inside) if not member]
    background = document_counts(texts, 1) if background is None else background
    scored = contrast(outside, [texts[i] for i in members], background, len(texts), max_n=1)
    return tuple(t.ngram for t in sorted(scored, key=lambda t: -t.z)[:n] if t.z > 0)


# --- describing a cluster by its properties ---------------------------------------------------------------------


def traits(measures: tuple[Property, ...], values: np.ndarray, members: np.ndarray, n: int) -> list[Trait]:
    """Up to n properties that set the members apart from the other answers most (|AUC − 0.5| largest,
    at least TRAIT_MIN_DISTANCE; ties in catalogue order), from the values of the clustered answers. A
    property that says nearly the same as one chosen already (rank correlation over the answers above
    REDUNDANT: characters after words) is passed over."""
    if n == 0 or not measures:
        return []
    inside = np.zeros(len(values), dtype=bool)
    inside[members] = True
    finite = np.isfinite(values)
    ranks = _ranks(values, finite)
    aucs = member_auc(ranks, inside)
    distance = np.where(np.isfinite(aucs), np.abs(aucs - 0.5), -1.0)
    chosen: list[int] = []
    for j in np.argsort(-distance, kind="stable"):
        if len(chosen) == n or distance[j] < TRAIT_MIN_DISTANCE:
            break
        if not any(_correlation(ranks[:, j], ranks[:, c]) > REDUNDANT for c in chosen):
            chosen.append(int(j))
    return [_trait(measures[j], float(aucs[j]), values[:, j], inside) for j in chosen]


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over rows where both are finite (of ranks: Spearman's); 0 where undefined."""
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 3 or np.std(x[both]) == 0 or np.std(y[both]) == 0:
        return 0.0
    return float(np.corrcoef(x[both], y[both])[0, 1])


def _trait(prop: Property, auc: float, column: np.ndarray, inside: np.ndarray) -> Trait:
    with np.errstate(all="ignore"):
        member, other = (float(np.nanmedian(column[mask])) for mask in (inside, ~inside))
    return Trait(prop, auc, member, other)


def member_auc(ranks: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Per column of mid-ranks (NaN where a value is missing), the Mann-Whitney AUC of the members against
    the other rows: P(member > other) + P(tie) / 2 over finite values; NaN where either has none."""
    finite = np.isfinite(ranks)
    n_in = (finite & inside[:, None]).sum(axis=0)
    n_out = (finite & ~inside[:, None]).sum(axis=0)
    rank_sum = np.where(finite & inside[:, None], ranks, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_in * (n_in + 1) / 2) / (n_in * n_out)
    return np.where((n_in > 0) & (n_out > 0), auc, np.nan)


def _ranks(values: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Mid-ranks of each column's finite values among themselves (NaN elsewhere)."""
    from scipy.stats import rankdata  # lazy: scipy is slow to import

    ranks = np.full(values.shape, np.nan)
    for j in range(values.shape[1]):
        ranks[finite[:, j], j] = rankdata(values[finite[:, j], j])
    return ranks


def _strip_verb(comparative: str) -> str:
    """ "are longer" → "longer", "have more emoji" → "more emoji", "use more bold text" → "more bold text"."""
    for verb in ("are ", "have ", "use "):
        if comparative.startswith(verb):
            return comparative[len(verb) :]
    return comparative


# --- the hypothesis ---------------------------------------------------------------------------------------------


def _hypothesis(
    data: PairData, scope: str, answers: ScopeAnswers, finding: ClusterFinding, found: list[Trait]
) -> Hypothesis:
    more, less = ("b", "a") if finding.direction == "b>a" else ("a", "b")
    medoid = data.samples[answers.rows[finding.medoid]]
    snippet = medoid.text if len(medoid.text) <= SNIPPET else medoid.text[: SNIPPET - 3].rstrip() + "…"
    marks = _marks(found, finding.terms)
    # The example leads, as the findings table cuts descriptions short: what the cluster holds shows first.
    description = in_scope(
        f"{data.labels[more]}'s answers more often resemble “{snippet}”{marks} than {data.labels[less]}'s", scope
    )
    return Hypothesis(
        id="",
        group=scope,
        direction=finding.direction,
        description=description,
        proposer="clusters",
        judge="embedding",
        keywords=finding.terms,
        prototype=tuple(float(x) for x in finding.prototype),
        property=f"resembles this answer in kind: “{snippet}”{marks}",
        evidence=_evidence(data, answers, finding),
        provenance=_provenance(answers, finding, found, medoid.id),
    )


def _marks(found: list[Trait], terms: tuple[str, ...]) -> str:
    """What sets the cluster apart, in parentheses: " (longer, more hedging words; distinctive words: may)"."""
    parts = [", ".join(t.phrase for t in found)] if found else []
    if terms:
        parts.append(f"distinctive words: {', '.join(terms)}")
    return f" ({'; '.join(parts)})" if parts else ""


def _evidence(data: PairData, answers: ScopeAnswers, finding: ClusterFinding) -> dict[str, list[str]]:
    """Per side, the ids of the members closest to the cluster's prototype."""
    order = finding.members[np.argsort(-(answers.vectors[finding.members] @ finding.prototype), kind="stable")]
    return {side: [data.samples[answers.rows[i]].id for i in order if answers.sides[i] == side][:3] for side in "ab"}


def _provenance(answers: ScopeAnswers, finding: ClusterFinding, found: list[Trait], medoid: str) -> dict:
    return {
        "clustered": "within-prompt differences" if answers.within_prompt else "answer embeddings",
        "cluster_size": len(finding.members),
        "discovery_counts": {"a": finding.count_a, "b": finding.count_b},
        "balanced_share": round(finding.share, 3),
        "screening_p": finding.p_value,
        "terms": list(finding.terms),
        "properties": [
            {
                "property": t.prop.name,
                "auc": round(t.auc, 3),
                "median_in_cluster": _rounded(t.member_median),
                "median_elsewhere": _rounded(t.other_median),
            }
            for t in found
        ],
        "medoid": medoid,
    }


def _rounded(value: float) -> float | None:
    return round(value, 4) if np.isfinite(value) else None


def _log_clusters(labels: np.ndarray, sides: np.ndarray, base_b: float) -> None:
    """Every cluster's size, sides and balanced share of its larger side, for `--debug`."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    rows = []
    for cluster in range(int(labels.max()) + 1):
        in_cluster = labels == cluster
        n, n_b = int(in_cluster.sum()), int(np.sum(sides[in_cluster] == "b"))
        share_b = _balanced_share(n_b / n, base_b)
        rows.append(f"{n} (a {n - n_b}, b {n_b}, balanced b share {share_b:.2f})")
    log.debug("k-means, k = %d on %d answers: %s", len(rows), len(labels), "; ".join(rows))


def _log_scope(scope: str, answers: ScopeAnswers, findings: list[ClusterFinding], section: ClusterProposerConfig):
    """The screen's outcome, for `--debug`: how many answers were clustered and what passed."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    kept = ", ".join(
        f"{f.direction} size {len(f.members)} (a {f.count_a}, b {f.count_b}) share {f.share:.2f} p {f.p_value:.2g}"
        for f in findings
    )
    log.debug(
        "clusters in %s: %d answers (a %d, b %d), %s, k <= %d, min_size %d, min_share %.2f: %d proposed%s",
        scope,
        len(answers.rows),
        int(np.sum(answers.sides == "a")),
        int(np.sum(answers.sides == "b")),
        "within-prompt differences" if answers.within_prompt else "answer embeddings",
        section.k,
        section.min_size,
        section.min_share,
        len(findings),
        f": {kept}" if kept else "",
    )
