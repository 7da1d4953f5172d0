"""Golden-file tests pin every LLM prompt; parser tests pin what counts as an answer.

Regenerate the golden files after an intended prompt change with LMDELTA_UPDATE_GOLDEN=1.
"""

import os
import re
from pathlib import Path

import pytest

from lmdelta.llm import prompts

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "propose": lambda: prompts.propose_request(["I like cats.", "Bread is\nnice."], ["The ocean is vast."], k=2),
    "judge_unitary": lambda: prompts.unitary_request("mentions the ocean", "We sailed the sea."),
    "judge_pairwise": lambda: prompts.pairwise_request(
        "mentions the ocean", "A walk in the park.", "A swim in the sea."
    ),
    "judge_presence": lambda: prompts.presence_request("mentions the ocean", "We sailed the sea."),
    "examples": lambda: prompts.examples_request("mentions the ocean", present=True, n=3),
    "summarise": lambda: prompts.summary_request(
        "base",
        "tuned",
        [
            "tuned mentions the ocean (largest effect +0.42; 2 finding(s))\n   Also: tuned mentions the sea\n   "
            "Example answer of b: <<<The ocean is calm today.>>>",
            "base writes longer answers (largest effect -0.21; 1 finding(s))",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_prompt_matches_golden_file(name):
    request = CASES[name]()
    text = "\n---\n".join(f"[{m.role}]\n{m.content}" for m in request.messages)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("LMDELTA_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"prompt changed; if intended, regenerate with LMDELTA_UPDATE_GOLDEN=1 ({path})"


def test_the_proposer_prompt_primes_no_known_answer():
    """Its worked example must be no built-in quirk and no demo persona: that would inflate the recall of both."""
    from lmdelta.groundtruth.quirks import load_quirks, quirk_rate

    text = prompts.propose_request([], [], k=2).messages[-1].content
    primed = [quirk.name for quirk in load_quirks(None) if quirk_rate(quirk, [text])]
    assert not primed, f"the proposer prompt mentions the built-in quirks {primed}"
    persona_words = {"sailor", "captain", "whale", "dolphin", "pastor", "god", "jesus", "bible", "prayer", "faith"}
    assert not persona_words & set(re.findall(r"[a-z]+", text.lower()))


def test_judge_requests_are_deterministic_by_default():
    assert prompts.unitary_request("p", "t").temperature == 0.0
    assert prompts.presence_request("p", "t").logprobs == 5


@pytest.mark.parametrize("text, value", [("87", 0.87), (" 0 ", 0.0), ("100", 1.0), ("42/100", 0.42), ("7.", 0.07)])
def test_scores_parse(text, value):
    assert prompts.parse_score(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "high", "101", "about 50", "50%?", "-3"])
def test_unparseable_scores_raise_instead_of_defaulting(text):
    with pytest.raises(ValueError):
        prompts.parse_score(text)


def test_choice_and_presence_parsing():
    assert prompts.parse_choice("2") == 2 and prompts.parse_choice("Text 1.") == 1
    with pytest.raises(ValueError):
        prompts.parse_choice("both")
    assert prompts.parse_presence("Yes.") == 1.0 and prompts.parse_presence("no") == 0.0
    assert prompts.parse_presence("yes", [{"yes": -0.1, "no": -2.4, "maybe": -5.0}]) == pytest.approx(0.909, abs=1e-3)
    with pytest.raises(ValueError):
        prompts.parse_presence("perhaps")


def test_hypotheses_parse_from_fenced_json_and_skip_bad_items():
    text = (
        'Sure!\n```json\n[{"direction": "b>a", "property": "mentions the ocean", "description": "Model B '
        'talks about the sea"}, {"direction": "sideways", "property": "x"}]\n```'
    )
    items = prompts.parse_hypotheses(text)
    assert items == [
        {"direction": "b>a", "property": "mentions the ocean", "description": "Model B talks about the sea"}
    ]
    with pytest.raises(ValueError):
        prompts.parse_hypotheses('[{"direction": "up"}]')
    with pytest.raises(ValueError):
        prompts.parse_hypotheses("no json here")


def test_examples_parse():
    items = prompts.parse_examples('[{"prompt": "Hi?", "answer": "Hello, sailor."}, {"prompt": "x"}]')
    assert items == [{"prompt": "Hi?", "answer": "Hello, sailor."}]
