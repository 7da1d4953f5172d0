"""The cluster proposer on synthetic vectors: paired answers share their prompt's topic, so raw clusters are
balanced and within-prompt differences are what separates the sides; clusters are named by properties."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lmdelta.config import ClusterProposerConfig, RunConfig
from lmdelta.pairdata import PairData
from lmdelta.properties import get
from lmdelta.proposers import clusters
from lmdelta.records import Prompt, Sample

DIM = 16


def paired_vectors(n_prompts: int = 40, style: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Answers a, b to each prompt: a large shared topic vector each (8 topics), b shifted along one
    style direction (dimension 15) by `style`. Rows alternate a, b; returns vectors, sides, prompt ids."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(8, DIM)) * 5.0
    topics[:, -1] = 0.0
    vectors, sides, prompts = [], [], []
    for p in range(n_prompts):
        topic = topics[p % 8] + rng.normal(scale=0.5, size=DIM)
        for side in ("a", "b"):
            vector = topic + rng.normal(scale=0.2, size=DIM)
            vector[-1] += style if side == "b" else 0.0
            vectors.append(vector)
            sides.append(side)
            prompts.append(f"p{p}")
    return np.array(vectors), np.array(sides), np.array(prompts)


def test_raw_embeddings_of_paired_answers_cluster_by_topic_and_never_by_side():
    """The HC3 diagnosis in small: both sides' answers to a prompt land in the same topic cluster."""
    vectors, sides, _ = paired_vectors()
    texts = ["answer text"] * len(sides)
    assert clusters.find(texts, sides, vectors, ClusterProposerConfig(k=4, min_size=6, min_share=0.7), seed=0) == []


def test_within_prompt_differences_separate_the_sides():
    vectors, sides, prompts = paired_vectors()
    keep, differences = clusters.within_prompt_differences(vectors, prompts, sides == "b")
    assert keep.all() and np.allclose(np.linalg.norm(differences, axis=1), 1.0)
    texts = ["plain answer"] * len(sides)
    found = clusters.find(texts, sides, differences, ClusterProposerConfig(k=4, min_size=6, min_share=0.7), seed=0)
    assert {f.direction for f in found} == {"a>b", "b>a"}
    for f in found:
        favoured = f.count_b if f.direction == "b>a" else f.count_a
        assert favoured == len(f.members) and sides[f.medoid] == f.direction[0]
        assert np.sign(f.prototype[-1]) == (1 if f.direction == "b>a" else -1)  # the style direction


def test_within_prompt_differences_weigh_each_side_equally_and_leave_out_one_sided_prompts():
    vectors = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 4.0], [5.0, 5.0]])
    prompts = np.array(["p", "p", "p", "q"])
    is_b = np.array([False, False, True, True])
    keep, differences = clusters.within_prompt_differences(vectors, prompts, is_b)
    assert keep.tolist() == [True, True, True, False]  # q: only b answered
    centre = (np.array([2.0, 0.0]) + np.array([0.0, 4.0])) / 2  # a's mean and b's mean, halved
    expected = vectors[:3] - centre
    assert np.allclose(differences, expected / np.linalg.norm(expected, axis=1, keepdims=True))


def test_a_zero_difference_stays_zero():
    vectors = np.array([[1.0, 2.0], [1.0, 2.0]])
    keep, differences = clusters.within_prompt_differences(vectors, np.array(["p", "p"]), np.array([False, True]))
    assert keep.all() and np.all(differences == 0.0)


def test_within_prompt_differences_a_chunk_of_rows_at_a_time_are_those_of_one_pass(monkeypatch):
    """At 600,000 answers the differences are computed a chunk of rows at a time (no temporary as large as the
    result): the same bits as in one pass, float32 vectors included; a row with no direction (zero or NaN) is 0."""
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(500, 6)).astype(np.float32)
    vectors[3] = np.nan
    prompts = np.array([f"p{i % 170}" for i in range(500)])
    is_b = rng.random(500) < 0.5
    one = clusters.within_prompt_differences(vectors, prompts, is_b)
    monkeypatch.setattr(clusters, "_DIFFERENCE_CHUNK", 7)
    chunked = clusters.within_prompt_differences(vectors, prompts, is_b)
    assert np.array_equal(one[0], chunked[0]) and np.array_equal(one[1], chunked[1])
    centre_rows = one[1][np.flatnonzero(one[0]) == 3]
    assert one[1].dtype == np.float64 and (centre_rows.size == 0 or np.all(centre_rows == 0.0))
    assert np.allclose(np.linalg.norm(one[1], axis=1)[np.any(one[1] != 0, axis=1)], 1.0)


def test_member_auc_is_the_pairwise_win_rate_with_ties_and_missing_values():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 4, size=(30, 3)).astype(float)
    values[[2, 7], 1] = np.nan
    values[:, 2] = np.nan
    inside = np.zeros(30, dtype=bool)
    inside[:11] = True
    finite = np.isfinite(values)
    aucs = clusters.member_auc(clusters._ranks(values, finite), inside)
    for j in range(2):
        x, y = values[inside & finite[:, j], j], values[~inside & finite[:, j], j]
        wins = (x[:, None] > y[None, :]).mean() + 0.5 * (x[:, None] == y[None, :]).mean()
        assert aucs[j] == pytest.approx(wins)
    assert np.isnan(aucs[2])


def test_traits_name_the_strongest_properties_once_each():
    words, characters, marks, hedging = get("words"), get("characters"), get("exclamation_marks"), get("hedging")
    rng = np.random.default_rng(2)
    n = 60
    inside = np.arange(n) < 20
    word_counts = np.where(inside, 300, 100) + rng.integers(0, 50, n)
    values = np.column_stack(
        [
            word_counts,
            word_counts * 5.0 + rng.integers(0, 5, n),  # characters: the same ranking as words, so redundant
            np.where(inside, 0.0, rng.integers(1, 4, n)),  # members have no "!"
            rng.random(n),  # hedging: unrelated to membership
        ]
    ).astype(float)
    found = clusters.traits((words, characters, marks, hedging), values, np.flatnonzero(inside), 3)
    assert [t.prop.name for t in found] == ["words", "exclamation_marks"]
    assert [t.phrase for t in found] == ["longer", "fewer exclamation marks"]
    assert found[0].auc == 1.0 and found[1].auc == 0.0
    assert clusters.traits((words,), values[:, :1], np.flatnonzero(inside), 0) == []


def test_trait_phrases_read_for_every_kind_of_property():
    phrases = {
        name: (clusters.Trait(get(name), 0.9, 1, 0).phrase, clusters.Trait(get(name), 0.1, 0, 1).phrase)
        for name in ("bold", "sentiment", "refusal", "hedging")
    }
    assert phrases == {
        "bold": ("more bold text", "fewer bold spans"),
        "sentiment": ("more positive", "less positive sentiment"),
        "refusal": ("refuses", "less often refuses"),
        "hedging": ("more hedging words", "fewer hedging words"),
    }


def paired_data(n_prompts: int = 40) -> PairData:
    """b's answers are longer and say "indeed!"; the vectors are paired_vectors', b shifted along a style direction."""
    vectors, sides, prompt_ids = paired_vectors(n_prompts)
    prompts = [Prompt(f"p{p}", f"question {p}", "g", "discovery" if p < 30 else "validation") for p in range(n_prompts)]
    samples = []
    for row, (side, pid) in enumerate(zip(sides, prompt_ids)):
        text = f"Topic {pid} answer." + (" Indeed it is so, and more words follow here! Indeed!" if side == "b" else "")
        samples.append(Sample(str(pid), side, 0, text, 5, "stop", row, f"k{row}"))
    return PairData(prompts, samples, vectors, {p.id: p.group for p in prompts}, {"a": "base", "b": "tuned"})


def test_the_proposer_describes_clusters_by_properties_words_and_an_example():
    data = paired_data()
    config = RunConfig(propose={"clusters": {"k": 4, "min_size": 6}}).resolved()
    proposer = clusters.prepare(data, config)
    assert proposer is not None and proposer.within_prompt
    found = proposer.propose(data, "all", data.rows("discovery"), config)
    assert len(found) == 2 and {h.direction for h in found} == {"a>b", "b>a"}
    tuned = next(h for h in found if h.direction == "b>a")
    assert tuned.description.startswith("tuned's answers more often resemble “Topic p")
    assert "Indeed!”" in tuned.description  # the example is one of tuned's answers
    assert "(longer" in tuned.description and "distinctive words: " in tuned.description
    assert tuned.description.endswith(") than base's") and "indeed" in tuned.keywords
    assert tuned.provenance["clustered"] == "within-prompt differences"
    assert tuned.provenance["properties"][0]["property"] in ("words", "characters", "sentences")
    assert all(sample_id.startswith("b:") for sample_id in tuned.evidence["b"])


def test_raw_embeddings_are_clustered_when_asked_or_when_no_prompt_is_shared():
    data = paired_data()
    off = RunConfig(propose={"clusters": {"within_prompt": False, "k": 4}}).resolved()
    proposer = clusters.prepare(data, off)
    assert proposer is not None and not proposer.within_prompt
    assert proposer.propose(data, "all", data.rows("discovery"), off) == []  # topic clusters: balanced
    samples = [replace(s, prompt_id=f"{s.prompt_id}-{s.side}") for s in data.samples]  # every text its own unit
    prompts = [replace(p, id=f"{p.id}-{side}") for p in data.prompts for side in "ab"]
    unaligned = PairData(prompts, samples, data.vectors, {p.id: p.group for p in prompts}, data.labels)
    proposer = clusters.prepare(unaligned, RunConfig())
    assert proposer is not None and not proposer.within_prompt


def test_properties_zero_names_none_and_off_proposes_nothing():
    data = paired_data()
    bare = RunConfig(propose={"clusters": {"k": 4, "min_size": 6, "properties": 0}}).resolved()
    proposer = clusters.prepare(data, bare)
    assert proposer is not None and proposer.measures == ()
    found = proposer.propose(data, "all", data.rows("discovery"), bare)
    assert found and all(h.provenance["properties"] == [] for h in found)
    assert clusters.prepare(data, RunConfig(propose={"clusters": {"enabled": False}})) is None
