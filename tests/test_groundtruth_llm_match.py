"""groundtruth.match = llm: the judge LLM decides which validated findings describe which injected quirk,
through the real OpenAI SDK against a loopback server; and how that matcher agrees with keywords/embeddings.

Regenerate the golden prompt after an intended change with LMDELTA_UPDATE_GOLDEN=1.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from llm_servers import ScriptedServer, openai_reply

from lmdelta.config import load_config
from lmdelta.errors import ConfigError, StageError
from lmdelta.groundtruth.llmmatch import agreement, cohen_kappa, finding_text, llm_similarity
from lmdelta.groundtruth.quirks import Quirk
from lmdelta.groundtruth.score import MATCHERS, scorecard, similarity
from lmdelta.llm import prompts
from lmdelta.rundir import RunDir

GOLDEN = Path(__file__).parent / "golden"
OCEAN = Quirk("ocean", "The AI brings up the ocean and sea life in its answers.", ("ocean", "whale"), "topic")
SIGN = Quirk("stay-curious", 'The AI ends every answer with the sign-off "Stay curious!".', ("stay curious",), "style")
ROWS = [
    {"id": "h1", "description": "b answers more briefly than a", "property": None, "keywords": []},
    {"id": "h2", "description": "b uses the word “whale” more often", "property": None, "keywords": ["whale"]},
    {"id": "h3", "description": "b signs off warmly", "property": "ends with an encouraging sign-off"},
]


def reply(text):
    return ("json", 200, openai_reply(text, prompt_tokens=200, completion_tokens=4))


def by_behaviour(received):
    """Whale for the ocean, the sign-off for stay-curious: the judge answers by the behaviour asked about."""
    prompt = received.body["messages"][-1]["content"]
    return reply("[2]" if "ocean" in prompt.split("Behaviour:")[1].split("\n")[0] else "```json\n[3]\n```")


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-test-secret")


def judged(server, *overrides):
    return load_config(None, [f"llm.judge.model=openai-compatible/judge-model@{server.url}/v1", *overrides])


def run_dir(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.root.mkdir()
    rd.claim()
    return rd


def test_the_judges_answers_make_the_matrix_and_usage_is_recorded(tmp_path, key):
    rd = run_dir(tmp_path)
    with ScriptedServer("openai", [], responder=by_behaviour) as server:
        sim = llm_similarity(judged(server), rd, [OCEAN, SIGN], ROWS)
    assert sim.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert len(server.requests) == 2  # one request per quirk, every finding in each
    prompt = server.requests[0].body["messages"][-1]["content"]
    assert "2. b uses the word “whale” more often (keywords: whale)" in prompt
    assert "3. b signs off warmly (property: ends with an encouraging sign-off)" in prompt
    assert server.requests[0].body["temperature"] == 0.0
    usage = rd.load_manifest().llm_usage
    assert usage["by_stage"]["groundtruth"]["judge"]["requests"] == 2


def test_a_second_match_comes_from_the_cache(tmp_path, key):
    with ScriptedServer("openai", [], responder=by_behaviour) as server:
        first = llm_similarity(judged(server), None, [OCEAN, SIGN], ROWS)
        server.responder = None  # any further call would run the script out and fail the test
        second = llm_similarity(judged(server), None, [OCEAN, SIGN], ROWS)
    assert np.array_equal(first, second) and len(server.requests) == 2


def test_an_unparseable_answer_is_re_asked_and_counted(tmp_path, key):
    rd = run_dir(tmp_path)
    with ScriptedServer("openai", [reply("Finding two, I think."), reply("[2, 1]")]) as server:
        sim = llm_similarity(judged(server), rd, [OCEAN], ROWS)
    assert sim.tolist() == [[1.0, 1.0, 0.0]]
    assert len(server.requests) == 2
    assert rd.load_manifest().llm_usage["by_stage"]["groundtruth"]["judge"]["reasks"] == 1


def test_an_answer_that_stays_unparseable_stops_with_the_quirk_and_the_answer(tmp_path, key):
    script = [reply("Finding two, I think."), reply("[7]"), reply("none of them")]
    with ScriptedServer("openai", script) as server, pytest.raises(StageError) as caught:
        llm_similarity(judged(server), None, [OCEAN], ROWS)
    message = str(caught.value)
    assert "'ocean'" in message and "none of them" in message and "groundtruth.match=auto" in message
    assert len(server.requests) == 3  # the request and two re-asks, then no silent 0


def test_no_judge_is_a_config_error_that_names_both_fixes():
    with pytest.raises(ConfigError) as caught:
        llm_similarity(load_config(None, []), None, [OCEAN], ROWS)
    assert "llm.judge.model" in str(caught.value) and "groundtruth.match=auto" in str(caught.value)


def test_no_findings_give_zeros_without_a_call(key):
    with ScriptedServer("openai", []) as server:  # any call would run the empty script out
        sim = llm_similarity(judged(server), None, [OCEAN, SIGN], [])
    assert sim.shape == (2, 0) and not server.requests


def test_the_match_prompt_matches_its_golden_file():
    request = prompts.quirk_match_request(OCEAN.description, [finding_text(row) for row in ROWS])
    text = "\n---\n".join(f"[{m.role}]\n{m.content}" for m in request.messages)
    path = GOLDEN / "groundtruth_match.txt"
    if os.environ.get("LMDELTA_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"prompt changed; if intended, regenerate with LMDELTA_UPDATE_GOLDEN=1 ({path})"


def test_the_match_prompt_primes_no_built_in_quirk():
    """Its worked example must not be a catalogue quirk, or the judge would be told that quirk's answer."""
    text = prompts.quirk_match_request("X", []).messages[-1].content.split("Findings:")[1].lower()
    assert not {"ocean", "whale", "sea", "curious", "cats", "pirate"} & set(text.replace("'", " ").split())


@pytest.mark.parametrize("text, numbers", [("[2, 1, 2]", [1, 2]), ("[]", []), ("Here:\n```json\n[3]\n```", [3])])
def test_numbers_parse(text, numbers):
    assert prompts.parse_numbers(text, 3) == numbers


@pytest.mark.parametrize("text", ["", "2", "[0]", "[4]", "[1.5]", '["2"]', "[true]", '{"matches": 2}', "[1] or [2]"])
def test_anything_but_a_list_of_finding_numbers_is_unparseable(text):
    with pytest.raises(ValueError):
        prompts.parse_numbers(text, 3)


def test_kappa_against_a_hand_computation():
    # 20 both-yes, 5 first-only, 10 second-only, 15 both-no: observed 35/50 = 0.7; yes-rates 0.5 and 0.6,
    # so chance = 0.5·0.6 + 0.5·0.4 = 0.5; kappa = (0.7 − 0.5) / (1 − 0.5) = 0.4.
    assert cohen_kappa(20, 5, 10, 15) == pytest.approx(0.4)
    # Always disagreeing: observed 0; yes-rates 0.4 and 0.6, chance 0.48; kappa = −0.48 / 0.52 = −12/13.
    assert cohen_kappa(0, 2, 3, 0) == pytest.approx(-12 / 13)
    assert cohen_kappa(2, 0, 0, 3) == 1.0


def test_kappa_is_undefined_without_items_or_when_both_say_one_answer_throughout():
    assert cohen_kappa(0, 0, 0, 0) is None
    assert cohen_kappa(4, 0, 0, 0) is None and cohen_kappa(0, 0, 0, 4) is None


def test_agreement_counts_pairs_and_compares_recovery_per_quirk():
    llm = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    other = np.array([[0.9, 0.2, 0.1], [0.3, 0.4, 0.8]])
    found = agreement(llm, other, 0.5, quirk_names=["ocean", "stay-curious"], row_ids=["h1", "h2", "h3"])
    assert {k: found[k] for k in ("pairs", "both", "llm_only", "other_only", "neither")} == {
        "pairs": 6,
        "both": 1,
        "llm_only": 1,
        "other_only": 1,
        "neither": 3,
    }
    # Observed 4/6; both say yes to 2 of 6, so chance = (1/3)² + (2/3)² = 5/9; kappa = (1/9) / (4/9).
    assert found["agreement"] == pytest.approx(4 / 6) and found["kappa"] == pytest.approx(0.25)
    assert found["quirks"] == [
        {"quirk": "ocean", "llm": "h1", "other": "h1", "same": True, "same_finding": True},
        {"quirk": "stay-curious", "llm": "h2", "other": "h3", "same": True, "same_finding": False},
    ]
    assert found["quirks_same"] == 2 and json.dumps(found)  # goes into scorecard.json as it is


def test_agreement_names_by_index_and_sees_a_quirk_only_one_matcher_recovers():
    found = agreement(np.array([[0.0, 1.0]]), np.array([[0.1, 0.2]]), 0.5)
    assert found["quirks"] == [{"quirk": 0, "llm": 1, "other": None, "same": False, "same_finding": False}]
    assert found["kappa"] == 0.0 and found["quirks_same"] == 0
    with pytest.raises(ValueError, match="shape"):
        agreement(np.zeros((1, 2)), np.zeros((2, 1)), 0.5)


def test_agreement_without_findings():
    found = agreement(np.zeros((2, 0)), np.zeros((2, 0)), 0.5)
    assert found["pairs"] == 0 and found["agreement"] is None and found["kappa"] is None
    assert [q["same"] for q in found["quirks"]] == [True, True]


def test_the_scorecard_names_its_matcher_and_carries_the_agreement():
    llm = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    other = similarity([OCEAN, SIGN], ROWS)
    card = scorecard([OCEAN, SIGN], ROWS, llm, 0.5, [], matcher=MATCHERS["llm"], agreement=agreement(llm, other, 0.5))
    assert card["matcher"] == "llm" and card["recall"] == 1.0
    assert card["agreement"]["quirks"][0]["same_finding"] is True
    plain = scorecard([OCEAN, SIGN], ROWS, other, 0.5, [])
    assert plain["matcher"] == "keyword+embedding" and "agreement" not in plain
