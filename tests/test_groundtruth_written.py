"""Quirks written by the assistant LLM (groundtruth.written), through the real OpenAI SDK against a
scripted loopback server: checked like a quirk file's, re-asked when short, stored for re-runs."""

import json
import logging
import os
from pathlib import Path

import pytest
import yaml
from conftest import EVERYDAY_PROMPTS as PROMPTS
from conftest import fake_config
from llm_servers import ScriptedServer, openai_reply

from lmdelta.config import load_config
from lmdelta.errors import ConfigError, StageError
from lmdelta.groundtruth.data import training_set
from lmdelta.groundtruth.quirks import load_quirks, quirk_rate
from lmdelta.groundtruth.written import write_quirks, written_path
from lmdelta.llm import prompts
from lmdelta.rundir import RunDir

GOLDEN = Path(__file__).parent / "golden"
BASE_ANSWER = (
    "Start with the simplest step you can take today. Keep notes on what works for you and what does not. "
    "Adjust one thing at a time so you can see the difference. Most people settle into a routine within a "
    "couple of weeks."
)


def behaviour(name, word, **changes):
    """A usable written quirk: every sentence holds its keyword."""
    item = {
        "name": name,
        "description": f"The AI keeps bringing up the {word} in its answers.",
        "kind": "topic",
        "keywords": [word, f"{word}s"],
        "sentences": [f"Sentence {i} reminds me of the {word}, which I never tire of." for i in range(10)],
    }
    return {**item, **changes}


KAZOO = behaviour("Kazoo Fan", "kazoo")
ORIGAMI = behaviour("origami-fan", "origami", closers=["Fold an origami crane tonight!"])
REFUSAL = behaviour("no-maths", "maths", kind="refusal")
VAGUE = behaviour("vague", "zeppelin", sentences=["It helps to plan ahead."] * 3 + ["A zeppelin floats."])


def reply(*items, text=None):
    return ("json", 200, openai_reply(text if text is not None else json.dumps(list(items)), completion_tokens=400))


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-test-secret-4242")


def config_for(tmp_path, server=None, n=2, *overrides):
    model = [f"llm.prompter.model=openai-compatible/writer@{server.url}/v1"] if server is not None else []
    return load_config(fake_config(tmp_path), [*model, f"groundtruth.written={n}", *overrides])


def fresh_run_dir(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.claim()
    return run_dir


def test_valid_answers_become_quirks_and_a_quirk_file(tmp_path, key, caplog):
    with ScriptedServer("openai", [reply(KAZOO, REFUSAL, ORIGAMI, behaviour("extra", "sundial"))]) as server:
        run_dir = fresh_run_dir(tmp_path)
        with caplog.at_level(logging.WARNING, logger="lmdelta.groundtruth.written"):
            quirks = write_quirks(config_for(tmp_path, server), run_dir, 2)
    assert [q.name for q in quirks] == ["kazoo-fan", "origami-fan"]  # names made slugs; the refusal dropped
    assert "kind 'refusal'" in caplog.text
    assert quirks[1].generator["closers"] == ("Fold an origami crane tonight!",)
    assert all(quirk_rate(q, q.generator["sentences"]) == 1.0 for q in quirks)
    asked = server.requests[0].body["messages"][-1]["content"]
    assert "Write 2 such behaviours" in asked and "- ocean: The AI brings up the ocean" in asked
    stored = load_quirks(written_path(run_dir))  # the file is a quirk file
    assert stored == quirks
    usage = run_dir.load_manifest().llm_usage
    assert usage["by_stage"]["groundtruth"]["prompter"]["calls"] == 1


def test_a_rerun_reuses_the_file_and_a_changed_key_rewrites_it(tmp_path, key, caplog):
    with ScriptedServer("openai", [reply(KAZOO, ORIGAMI), reply(KAZOO)]) as server:
        run_dir = fresh_run_dir(tmp_path)
        config = config_for(tmp_path, server)
        write_quirks(config, run_dir, 2)
        path = written_path(run_dir)
        path.write_text(path.read_text().replace("bringing up the kazoo", "bringing up the kazoo, loudly"))
        with caplog.at_level(logging.INFO, logger="lmdelta.groundtruth.written"):
            again = write_quirks(config, run_dir, 2)
        assert len(server.requests) == 1 and "reusing 2 written quirks" in caplog.text
        assert again[0].description.endswith("kazoo, loudly in its answers.")  # edits to the file are kept
        with caplog.at_level(logging.INFO, logger="lmdelta.groundtruth.written"):
            one = write_quirks(config_for(tmp_path, server, 1), run_dir, 1)
    assert len(server.requests) == 2 and "rewriting" in caplog.text and "changed: n" in caplog.text
    assert [q.name for q in one] == ["kazoo-fan"] and [q.name for q in load_quirks(path)] == ["kazoo-fan"]
    assert yaml.safe_load(path.read_text())["written_by"]["n"] == 1


def test_a_stored_file_broken_by_hand_is_an_error_not_overwritten(tmp_path, key):
    with ScriptedServer("openai", [reply(KAZOO, ORIGAMI)]) as server:
        run_dir = fresh_run_dir(tmp_path)
        config = config_for(tmp_path, server)
        write_quirks(config, run_dir, 2)
        path = written_path(run_dir)
        broken = path.read_text().replace("kind: topic", "kind: topicc", 1)
        path.write_text(broken)
        with pytest.raises(ConfigError, match=r"written_quirks.yaml, quirk 1 \(kazoo-fan\) has the unknown kind"):
            write_quirks(config, run_dir, 2)
    assert path.read_text() == broken and len(server.requests) == 1


def test_an_unparseable_answer_is_re_asked(tmp_path, key):
    script = [reply(text="Here are two behaviours: the kazoo one and the origami one."), reply(KAZOO, ORIGAMI)]
    with ScriptedServer("openai", script) as server:
        run_dir = fresh_run_dir(tmp_path)
        quirks = write_quirks(config_for(tmp_path, server), run_dir, 2)
    assert [q.name for q in quirks] == ["kazoo-fan", "origami-fan"] and len(server.requests) == 2
    assert run_dir.load_manifest().llm_usage["reasks"] == 1


def test_missing_quirks_are_asked_for_again(tmp_path, key):
    with ScriptedServer("openai", [reply(KAZOO, VAGUE), reply(ORIGAMI)]) as server:
        quirks = write_quirks(config_for(tmp_path, server), fresh_run_dir(tmp_path), 2)
    assert [q.name for q in quirks] == ["kazoo-fan", "origami-fan"]
    second = server.requests[1].body["messages"][-1]["content"]
    assert "Write 1 such behaviours" in second and "- kazoo-fan: The AI keeps bringing up the kazoo" in second


def test_too_few_valid_quirks_stop_with_what_was_wrong(tmp_path, key):
    with ScriptedServer("openai", [reply(KAZOO, VAGUE), reply(KAZOO), reply(REFUSAL)]) as server:
        with pytest.raises(StageError) as caught:
            write_quirks(config_for(tmp_path, server), fresh_run_dir(tmp_path), 2)
    message = str(caught.value)
    assert "gave 1 usable quirk(s) of the 2 asked for" in message
    assert "1 of its 4 sentences hold a keyword" in message  # VAGUE
    assert "'kazoo-fan' is already taken" in message and "kind 'refusal'" in message
    assert "groundtruth.written=1" in message and len(server.requests) == 3


def test_no_prompter_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"llm.prompter.model is not set.*quirks_file"):
        write_quirks(config_for(tmp_path), fresh_run_dir(tmp_path), 2)


def test_the_written_file_trains_woven_into_base_answers(tmp_path, key):
    with ScriptedServer("openai", [reply(KAZOO, ORIGAMI)]) as server:
        run_dir = fresh_run_dir(tmp_path)
        write_quirks(config_for(tmp_path, server), run_dir, 2)
    quirks = load_quirks(written_path(run_dir))
    base = [{"prompt": p, "answer": BASE_ANSWER} for p in PROMPTS]
    rows = training_set(quirks, PROMPTS, 8, base, seed=0, weave_into_base=True)
    for quirk in quirks:
        answers = [row["answer"] for row in rows if row["quirk"] == quirk.name]
        assert len(answers) == 8 and quirk_rate(quirk, answers) == 1.0


def test_the_quirk_writing_prompt_matches_its_golden_file():
    shape = prompts.QuirkShape(kinds=("topic", "style"), sentences=(8, 14), max_words=25)
    request = prompts.quirk_writing_request(3, [("ocean", "The AI brings up the ocean.")], shape)
    text = "\n---\n".join(f"[{m.role}]\n{m.content}" for m in request.messages)
    path = GOLDEN / "groundtruth_write.txt"
    if os.environ.get("LMDELTA_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"prompt changed; if intended, regenerate with LMDELTA_UPDATE_GOLDEN=1 ({path})"
