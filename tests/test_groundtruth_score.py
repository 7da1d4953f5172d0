from dataclasses import dataclass

import numpy as np
import pytest

from lmdelta.groundtruth.score import keyword_similarity, match, scorecard, similarity


@dataclass(frozen=True)
class Q:
    name: str
    description: str
    keywords: tuple


OCEAN = Q("ocean", "The AI brings up the ocean.", ("ocean", "sea", "whale"))
SIGN = Q("stay-curious", "The AI ends answers with 'Stay curious!'", ("stay curious",))


def hyp(i, description, keywords=()):
    return {"id": f"h{i}", "description": description, "property": None, "keywords": list(keywords)}


def test_keyword_similarity_reads_descriptions_and_keywords():
    assert keyword_similarity(OCEAN, hyp(1, "b uses “sea” in more answers than a", ["sea"])) == 1.0
    assert keyword_similarity(OCEAN, hyp(2, "b mentions seals", [])) == 0.0  # "sea" only as a word
    assert keyword_similarity(SIGN, hyp(3, "b uses “stay curious” in more answers")) == 1.0
    assert keyword_similarity(SIGN, hyp(4, "b uses “curious” in more answers", ["curious"])) == 1.0
    assert keyword_similarity(SIGN, hyp(5, "b uses “the” more", ["the"])) == 0.0


def test_hungarian_matching_is_one_to_one_and_thresholded():
    sim = np.array([[0.9, 0.8, 0.1], [0.85, 0.2, 0.1]])
    assert sorted(match(sim, 0.5)) == [(0, 1), (1, 0)]  # total 1.65 beats 0.9 + 0.2
    assert match(sim, 0.95) == []


def test_scorecard_counts_recall_precision_rank_and_the_null():
    validated = [
        hyp(1, "b uses “i've” more"),
        hyp(2, "b uses “ocean” more", ["ocean"]),
        hyp(3, "b uses “stay curious” more", ["stay curious"]),
        hyp(4, "b uses “whale” more", ["whale"]),
    ]
    sim = similarity([OCEAN, SIGN], validated)
    card = scorecard([OCEAN, SIGN], validated, sim, 0.5, null_validated=[], rates={"ocean": {"a": 0.1, "b": 0.9}})
    assert card["recall"] == 1.0 and card["first_match_rank"] == 2
    assert {q["quirk"]: q["rank"] for q in card["quirks"]} == {"ocean": 2, "stay-curious": 3}
    assert card["precision"] == pytest.approx(0.75) and card["unmatched_hypotheses"] == ["h1"]
    assert card["quirks"][0]["rate"] == {"a": 0.1, "b": 0.9} and card["null_validated"] == 0


def test_nothing_validated():
    card = scorecard([OCEAN], [], np.zeros((1, 0)), 0.5, null_validated=[hyp(9, "noise")])
    assert card["recall"] == 0.0 and card["precision"] is None and card["null_validated"] == 1


def test_embedding_similarity_adds_to_keywords():
    def embed(texts):
        return np.array([[1.0, 0.0] if "ocean" in t.lower() or "marine" in t.lower() else [0.0, 1.0] for t in texts])

    rows = [hyp(1, "b talks about marine life")]
    assert similarity([OCEAN], rows)[0, 0] == 0.0
    assert similarity([OCEAN], rows, embed)[0, 0] == pytest.approx(1.0)


def finding(i, proposer, judge, direction, group="all", measure=None, keywords=()):
    return {
        "id": f"h{i}",
        "description": f"finding {i}",
        "property": None,
        "keywords": list(keywords),
        "proposer": proposer,
        "judge": judge,
        "direction": direction,
        "group": group,
        "measure": measure,
    }


def test_null_findings_the_main_experiment_also_validated_are_marked_as_effects_of_finetuning():
    main = [
        finding(1, "properties", "property", "a>b", measure="characters"),
        finding(2, "keywords", "keyword", "b>a", keywords=["sea"]),
        finding(3, "clusters", "embedding", "b>a"),
    ]
    null = [
        finding(7, "properties", "property", "a>b", group="travel", measure="characters"),  # same claim, other scope
        finding(8, "properties", "property", "b>a", measure="characters"),  # the other direction
        finding(2, "keywords", "keyword", "b>a", keywords=["stay"]),  # same id, other claim
        finding(3, "clusters", "embedding", "b>a"),  # clusters never match: prototypes differ per run
    ]
    card = scorecard([OCEAN], main, similarity([OCEAN], main), 0.5, null_validated=null)
    assert card["null_validated"] == 4 and card["null_also_in_main"] == [True, False, False, False]
