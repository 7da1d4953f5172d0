"""The hypothesis search loop: near-duplicates merged or dropped by claim similarity and firing overlap,
explained-away texts weighted down, rounds that stop by themselves, and the LLM proposer told what
earlier rounds proposed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lmdelta.config import DedupConfig, RunConfig
from lmdelta.diversity import Claimed, claimed, deduplicate, fires, overlap
from lmdelta.llm import prompts
from lmdelta.pairdata import PairData
from lmdelta.proposers import keywords
from lmdelta.proposers.llm import Search, requests_for
from lmdelta.records import Hypothesis, Prompt, Sample
from lmdelta.search import NO_NEW, search
from lmdelta.stages import propose

FILLER = "the answer talks about plain things in a calm and ordinary way".split()


def keyword_hypothesis(word: str, group: str = "all", direction: str = "b>a") -> Hypothesis:
    return Hypothesis(
        "",
        group,
        direction,  # type: ignore[arg-type]
        f"b uses “{word}” in more answers than a",
        "keywords",
        "keyword",
        keywords=(word,),
        property=f"uses the word or phrase “{word}”",
    )


def llm_hypothesis(claim: str, group: str = "all") -> Hypothesis:
    return Hypothesis("", group, "b>a", f"b {claim}", "llm", "llm", property=claim)


def texts_pair(texts_b: list[str], texts_a: list[str] | None = None) -> PairData:
    """One discovery prompt per text; side a answers plain filler unless given."""
    n = len(texts_b)
    texts_a = texts_a or [" ".join(FILLER) for _ in range(n)]
    prompts_ = [Prompt(f"p{i}", f"question {i}", "g0", "discovery") for i in range(n)]
    samples = [
        Sample(f"p{i}", side, 0, text, 10, "stop", 0, f"{side}{i}")
        for i in range(n)
        for side, text in (("a", texts_a[i]), ("b", texts_b[i]))
    ]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(samples), 8))
    return PairData(prompts_, samples, vectors, {p.id: "g0" for p in prompts_}, {"a": "a", "b": "b"})


def two_quirks(n: int = 40) -> PairData:
    """b mentions the ocean in half its answers (the first half) and castles in the other half, less often."""
    texts_b = []
    for i in range(n):
        words = list(FILLER)
        if i < n // 2:
            words.insert(3, "ocean")
        elif i % 4 != 0:
            words.insert(5, "castle")
        texts_b.append(" ".join(words))
    return texts_pair(texts_b)


def test_firing_overlap_is_jaccard_so_a_narrow_claim_inside_a_broad_one_is_no_duplicate():
    one = np.array([1, 1, 1, 1, 0, 0], dtype=bool)
    other = np.array([1, 1, 0, 0, 0, 0], dtype=bool)
    assert overlap(one, other) == 0.5
    assert overlap(one, np.array([1, 0, 0, 0, 1, 1], dtype=bool)) == pytest.approx(1 / 6)
    assert overlap(one, np.zeros(6, dtype=bool)) == 0.0
    assert overlap(np.zeros(6, dtype=bool), np.zeros(6, dtype=bool)) is None and overlap(one, None) is None


def test_an_amount_property_is_compared_by_its_claim_only():
    longer = Hypothesis(
        "", "all", "b>a", "b is longer", "properties", "property", property="is longer", measure="words"
    )
    texts = ["ocean " * 30, "ocean " * 25, "short", "tiny", "ocean " * 20]
    found = claimed([keyword_hypothesis("ocean"), longer], texts, np.zeros((5, 4)), None)
    assert found[1].fires is None
    kept, _, _ = deduplicate(found, [], DedupConfig(overlap=0.1))
    assert len(kept) == 2


def test_a_keyword_fires_on_the_texts_that_hold_it_and_an_llm_claim_on_none():
    texts = ["the ocean is deep", "a calm lake", "Ocean waves"]
    assert fires(keyword_hypothesis("ocean"), texts, np.zeros((3, 4))).tolist() == [True, False, True]
    assert fires(llm_hypothesis("mentions the sea"), texts, np.zeros((3, 4))) is None


def test_keywords_that_fire_on_the_same_texts_are_merged_into_the_first():
    texts = ["sea and ocean", "the ocean by the sea", "ocean sea", "a lake", "sea", "ocean"]
    found = claimed([keyword_hypothesis("ocean"), keyword_hypothesis("sea")], texts, np.zeros((6, 4)), None)
    kept, _, left_out = deduplicate(found, [], DedupConfig(overlap=0.6))
    assert [k.hypothesis.keywords for k in kept] == [("ocean", "sea")]
    assert kept[0].hypothesis.description == "b uses “ocean” or “sea” in more answers than a"
    assert kept[0].hypothesis.property == "uses the word or phrase “ocean” or “sea”"
    assert left_out[0].action == "merged" and left_out[0].overlap == pytest.approx(0.6)  # 3 shared of 5


def test_the_overlap_threshold_is_respected():
    texts = ["sea and ocean", "the ocean by the sea", "ocean sea", "a lake", "sea", "ocean"]
    found = claimed([keyword_hypothesis("ocean"), keyword_hypothesis("sea")], texts, np.zeros((6, 4)), None)
    kept, _, left_out = deduplicate(found, [], DedupConfig(overlap=0.8))  # the overlap is 3/5
    assert len(kept) == 2 and left_out == []


def test_claim_similarity_drops_a_restated_llm_hypothesis_but_not_another_claim():
    vectors = {"mentions the ocean": [1.0, 0.0], "brings up the sea": [0.95, 0.31], "is rude": [0.0, 1.0]}
    hypotheses = [llm_hypothesis(c) for c in vectors]
    found = claimed(hypotheses, [], np.zeros((0, 2)), lambda texts: np.array([vectors[t] for t in texts]))
    kept, _, left_out = deduplicate(found, [], DedupConfig(similarity=0.9))
    assert [k.hypothesis.property for k in kept] == ["mentions the ocean", "is rude"]
    assert left_out[0].action == "dropped" and left_out[0].similarity == pytest.approx(0.95, abs=0.01)
    kept, _, _ = deduplicate(found, [], DedupConfig(similarity=0.99))
    assert len(kept) == 3


def test_only_hypotheses_of_one_direction_and_one_scope_can_duplicate():
    texts = ["ocean"] * 4 + ["lake"] * 2
    same = DedupConfig(overlap=0.5)
    cases = [
        (keyword_hypothesis("ocean", "all"), keyword_hypothesis("ocean", "all", "a>b"), 2),  # other direction
        (keyword_hypothesis("ocean", "g1"), keyword_hypothesis("ocean", "g2"), 2),  # two different groups
        (keyword_hypothesis("ocean", "all"), keyword_hypothesis("ocean", "g1"), 2),  # a claim about g1 itself
        (keyword_hypothesis("ocean", "g1"), keyword_hypothesis("ocean", "g1"), 1),
    ]
    for first, second, n_kept in cases:
        found = claimed([first, second], texts, np.zeros((6, 4)), None)
        kept, _, _ = deduplicate(found, [], same)
        assert len(kept) == n_kept, (first.group, second.group, second.direction)


def test_dedup_off_keeps_near_duplicates_but_never_tests_one_claim_twice():
    texts = ["sea and ocean", "ocean sea", "a lake"]
    found = claimed(
        [keyword_hypothesis("ocean"), keyword_hypothesis("sea"), keyword_hypothesis("ocean")],
        texts,
        np.zeros((3, 4)),
        None,
    )
    kept, _, left_out = deduplicate(found, [], DedupConfig(enabled=False))
    assert [k.hypothesis.keywords for k in kept] == [("ocean",), ("sea",)]
    assert [d.action for d in left_out] == ["dropped"]


def test_a_merge_into_an_earlier_round_updates_the_kept_hypothesis_in_place():
    texts = ["sea ocean", "ocean sea", "lake"]
    earlier = claimed([keyword_hypothesis("ocean"), keyword_hypothesis("lake")], texts, np.zeros((3, 4)), None)
    new = claimed([keyword_hypothesis("sea")], texts, np.zeros((3, 4)), None)
    fresh, kept, _ = deduplicate(new, earlier, DedupConfig())
    assert fresh == [] and [k.hypothesis.keywords for k in kept] == [("ocean", "sea"), ("lake",)]


def test_weights_explain_texts_away_in_the_keyword_contrast():
    data = two_quirks()
    texts_b = [s.text for s in data.samples if s.side == "b"]
    texts_a = [s.text for s in data.samples if s.side == "a"]
    background = keywords.document_counts(texts_a + texts_b, 1)
    plain = {t.ngram: t for t in keywords.contrast(texts_a, texts_b, background, 80, 1)}
    weight_b = np.array([0.0 if "ocean" in t else 1.0 for t in texts_b])
    weighted = {
        t.ngram: t
        for t in keywords.contrast(texts_a, texts_b, background, 80, 1, weights=(np.ones(len(texts_a)), weight_b))
    }
    assert plain["ocean"].z > plain["castle"].z
    assert weighted["ocean"].count_b == 0 and weighted["castle"].z > plain["castle"].z


def rounds_config(rounds: int, **propose_section) -> RunConfig:
    section = {
        "rounds": rounds,
        "scopes": "all",
        "clusters": {"enabled": False},
        "properties": {"enabled": False},
        "keywords": {"per_scope": 1, "max_ngram": 1},
        **propose_section,
    }
    return RunConfig.model_validate({"propose": section, "validate": {"min_prompts": 2}}).resolved()


def discovery_only(data: PairData) -> PairData:
    """The same texts with the last quarter of prompts made validation prompts, so scopes can be planned."""
    n = len(data.prompts)
    prompts_ = [replace(p, split="validation") if i >= 3 * n // 4 else p for i, p in enumerate(data.prompts)]
    return replace(data, prompts=prompts_)


def test_one_round_finds_one_quirk_and_the_loop_finds_both_then_stops_by_itself():
    data = discovery_only(two_quirks(48))
    one, _ = propose.propose_all(data, rounds_config(1))
    assert [h.keywords for h in one] == [("ocean",)]
    found, _ = propose.search_all(data, rounds_config(5))
    words = [h.keywords for h in found.hypotheses if h.direction == "b>a"]
    assert words[:2] == [("ocean",), ("castle",)]
    assert found.stopped == NO_NEW and len(found.rounds) < 5
    assert [h.order for h in found.hypotheses] == sorted(h.order for h in found.hypotheses)
    assert [h.provenance["round"] for h in found.hypotheses] == sorted(h.provenance["round"] for h in found.hypotheses)
    assert found.rounds[1]["explained_texts"] > 0
    kept_ids = {h.id for h in found.hypotheses}
    assert found.duplicates and all(d.kept.id in kept_ids for d in found.duplicates)  # named by their final ids


def test_without_explaining_away_a_second_round_repeats_the_first_and_stops():
    data = discovery_only(two_quirks(48))
    found, _ = propose.search_all(data, rounds_config(5, explain_weight=1.0))
    assert [h.keywords for h in found.hypotheses] == [("ocean",)]
    assert found.stopped == NO_NEW and len(found.rounds) == 2 and found.rounds[1]["new"] == 0


def test_a_later_round_shows_the_llm_proposer_what_was_proposed_and_fresh_texts():
    data = two_quirks(30)
    rows = {"all": data.rows("discovery")}
    section = RunConfig().propose.llm
    first = requests_for(data, rows, section, 1.0, 0)["all"][0]
    explained = np.array([1.0 if "ocean" not in s.text else 0.25 for s in data.samples])
    later = requests_for(
        replace(data, weights=explained), rows, section, 1.0, 0, Search(2, {"all": ["mentions the ocean (more in B)"]})
    )["all"]
    body_first, body_later = first.messages[0].content, later[0].messages[0].content
    assert "already proposed" not in body_first
    assert "already proposed" in body_later and "- mentions the ocean (more in B)" in body_later
    shown_b = later[1]["b"]
    assert not any("ocean" in next(s.text for s in data.samples if s.id == sid) for sid in shown_b)
    instruction = prompts.template("propose_instruction").strip()
    assert f"{instruction}\n\nModel A answers:" in body_first  # round 1 reads as before rounds existed


def test_search_records_each_round_and_why_it_stopped():
    data = discovery_only(two_quirks(48))
    calls: list[int] = []

    def one_round(view: PairData, where: Search):
        calls.append(where.round)
        return [keyword_hypothesis("ocean")], []

    found = search(data, ["all"], rounds_config(4), one_round)
    assert calls == [1, 2] and found.stopped == NO_NEW
    assert [r["new"] for r in found.rounds] == [1, 0] and found.rounds[1]["dropped"] == 1


def test_claimed_vectors_are_unit_length():
    found = claimed(
        [llm_hypothesis("x"), llm_hypothesis("y")], [], np.zeros((0, 2)), lambda t: np.array([[3.0, 4.0], [0.0, 2.0]])
    )
    assert all(isinstance(c, Claimed) and np.isclose(np.linalg.norm(c.vector), 1.0) for c in found)


def test_two_properties_firing_on_the_same_answers_are_two_findings():
    def presence(name: str) -> Hypothesis:
        return Hypothesis("", "all", "b>a", f"b {name}", "properties", "property", property=name, measure=name)

    texts = ["- one\n- two", "- a\n- b\n- c", "plain", "- x\n- y"]
    found = claimed([presence("has_bullet_points"), presence("has_line_breaks")], texts, np.zeros((4, 4)), None)
    assert found[0].fires is not None and overlap(found[0].fires, found[1].fires) == 1.0
    kept, _, left_out = deduplicate(found, [], DedupConfig(overlap=0.5))
    assert len(kept) == 2 and left_out == []


def test_the_discovery_schedule_grows_evenly_from_the_first_share_to_all():
    from lmdelta.search import discovery_schedule

    prompts_ = [Prompt(f"p{i}", f"q {i}", "g", "discovery") for i in range(10)] + [
        Prompt("v0", "q v", "g", "validation")
    ]
    config = RunConfig.model_validate({"propose": {"rounds": 3, "first_share": 0.4}}).resolved()
    schedule = discovery_schedule(prompts_, config)
    assert [len(r) for r in schedule] == [4, 7, 10]
    assert all(set(p.id for p in a) <= set(p.id for p in b) for a, b in zip(schedule, schedule[1:]))
    assert all(p.split == "discovery" for p in schedule[-1])
    again = discovery_schedule(list(reversed(prompts_)), config)  # a seeded order of its own, not the bank's
    assert [p.id for p in again[0]] == [p.id for p in schedule[0]]
    for whole in ({"rounds": 3, "first_share": 1.0}, {"rounds": 1, "first_share": 0.4}):
        assert [
            len(r) for r in discovery_schedule(prompts_, RunConfig.model_validate({"propose": whole}).resolved())
        ] == [10]
