"""The search loop end to end: the LLM proposer behind a loopback OpenAI-compatible server is told in
round 2 what round 1 proposed, repeats are dropped, the loop stops by itself, the online procedure
decides in proposal order across rounds, and a run killed mid-round resumes without paying twice."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from llm_servers import ScriptedServer, openai_reply
from test_llm_pipeline import SECRET, llm_config
from test_llm_pipeline import answer as judge_answer

from lmdelta import pipeline, search
from lmdelta.cli import main
from lmdelta.rundir import RunDir, read_jsonl

OCEAN = {"direction": "b>a", "property": "mentions the ocean", "description": "Model B brings up the ocean"}
OCEAN_AGAIN = {"direction": "b>a", "property": "mentions the ocean", "description": "Model B talks of the ocean"}
COOKING = {"direction": "a>b", "property": "talks about cooking", "description": "Model A talks about cooking"}


def proposer(received):
    """Round 1 proposes the ocean; told it was proposed, the next round adds cooking and restates the ocean."""
    prompt = received.body["messages"][-1]["content"]
    if not prompt.startswith("You are helping to audit"):
        return judge_answer(received)
    told = "already proposed" in prompt
    items = [OCEAN_AGAIN, COOKING] if told else [OCEAN]
    if told and "talks about cooking" in prompt:  # round 3: nothing new to say
        items = [OCEAN_AGAIN]
    return ("json", 200, openai_reply(json.dumps(items), prompt_tokens=400, completion_tokens=80))


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    with ScriptedServer("openai", [], responder=proposer) as running:
        yield running


def proposals(server) -> list[str]:
    return [
        r.body["messages"][-1]["content"]
        for r in server.requests
        if r.body["messages"][-1]["content"].startswith("You are helping to audit")
    ]


def test_rounds_tell_the_llm_what_was_proposed_and_stop_by_themselves(tmp_path, server):
    config = llm_config(tmp_path, server, "propose.rounds=5", "decide.primary=online")
    pipeline.run(config, RunDir(tmp_path / "run"))
    asked = proposals(server)
    assert len(asked) == 3 and "already proposed" not in asked[0]
    assert "- mentions the ocean (more in Model B)" in asked[1]
    rows = list(read_jsonl(tmp_path / "run/hypotheses.jsonl"))
    assert [(r["property"], r["provenance"]["round"]) for r in sorted(rows, key=lambda r: r["order"])] == [
        ("mentions the ocean", 1),
        ("talks about cooking", 2),
    ]
    assert all(r["procedure"] == "SAFFRON" for r in rows)
    ocean = next(r for r in rows if r["property"] == "mentions the ocean")
    assert ocean["validated"] and ocean["online_reject"]
    stage = tmp_path / "run/stages/propose"
    rounds = list(read_jsonl(stage / "search_rounds.jsonl"))
    assert [r.get("new") for r in rounds[:-1]] == [1, 1, 0] and rounds[-1] == {"stopped": search.NO_NEW}
    duplicates = list(read_jsonl(stage / "duplicates.jsonl"))
    assert [d["action"] for d in duplicates] == ["dropped", "dropped"]  # the restated ocean, twice
    assert all(d["hypothesis"]["property"] == "mentions the ocean" for d in duplicates)
    said = "Search: 3 rounds of proposing (stopped: no new distinct hypothesis), new hypotheses per round 1, 1, 0"
    assert said in (tmp_path / "run/report.html").read_text()
    assert said in CliRunner().invoke(main, ["status", str(tmp_path / "run")]).output
    assert "search round 1" in (tmp_path / "run/report.html").read_text()  # the validated ocean card


def test_a_run_killed_mid_round_resumes_without_paying_twice(tmp_path, server, monkeypatch):
    config = llm_config(tmp_path, server, "propose.rounds=5")
    real = search.deduplicate
    calls = []

    def dies_in_round_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(search, "deduplicate", dies_in_round_two)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(config, RunDir(tmp_path / "run"))
    assert RunDir(tmp_path / "run").load_manifest().stages["propose"].status == "interrupted"
    paid = len(server.requests)
    monkeypatch.setattr(search, "deduplicate", real)
    pipeline.run(config, RunDir(tmp_path / "run"))
    bodies = [json.dumps(r.body, sort_keys=True) for r in server.requests]
    assert len(bodies) == len(set(bodies)), "a paid call was made twice"
    assert len(proposals(server)) == 3 and paid == 2  # rounds 1 and 2 were paid before the kill
    pipeline.run(config, RunDir(tmp_path / "clean"))
    resumed = [(r["id"], r["property"], r["p_value"]) for r in read_jsonl(tmp_path / "run/hypotheses.jsonl")]
    clean = [(r["id"], r["property"], r["p_value"]) for r in read_jsonl(tmp_path / "clean/hypotheses.jsonl")]
    assert resumed == clean


def growing_config(tmp_path, *overrides):
    from conftest import fake_config

    from lmdelta.config import load_config

    path = fake_config(tmp_path, per_group=20, generate__b={"model": "fake:words", "backend_args": STRONG_B})
    return load_config(path, ["propose.rounds=3", "propose.first_share=0.34", *overrides])


STRONG_B = {"topic_words": ["ocean", "castle"], "topic_rate": 0.8}


def test_discovery_answers_grow_round_by_round_and_are_counted(tmp_path):
    config = growing_config(tmp_path)
    pipeline.run(config, RunDir(tmp_path / "run"))
    run = RunDir(tmp_path / "run")
    counts = run.load_manifest().stages["propose"].counts["discovery"]
    samples = list(read_jsonl(tmp_path / "run/stages/generate/samples.jsonl"))
    prompts = {p["id"]: p["split"] for p in read_jsonl(tmp_path / "run/stages/prompts/prompts.jsonl")}
    up_front = {s["prompt_id"] for s in samples if prompts[s["prompt_id"]] == "discovery"}
    assert 0 < len(up_front) < counts["prompts"] and counts["generated"] > 0
    rounds = [r for r in read_jsonl(tmp_path / "run/stages/propose/search_rounds.jsonl") if "round" in r]
    answered = [r["discovery_prompts"] for r in rounds]
    assert answered[0] == len(up_front) and answered == sorted(answered) and answered[-1] == counts["prompts_answered"]
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    tokens = summary["tokens_generated"]["discovery"]
    stored = sum(s["n_tokens"] for s in samples if prompts[s["prompt_id"]] == "discovery")
    assert tokens["total"] == stored + sum(counts["tokens"].values())


def test_a_run_killed_while_discovery_grows_resumes_without_generating_twice(tmp_path, monkeypatch):
    config = growing_config(tmp_path)
    real = search.deduplicate
    calls = []

    def dies_in_round_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # round 2's discovery answers are stored by then
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(search, "deduplicate", dies_in_round_two)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(config, RunDir(tmp_path / "run"))
    stored = list(read_jsonl(tmp_path / "run/stages/propose/discovery_items.jsonl"))
    assert stored
    monkeypatch.setattr(search, "deduplicate", real)
    pipeline.run(config, RunDir(tmp_path / "run"))
    again = list(read_jsonl(tmp_path / "run/stages/propose/discovery_items.jsonl"))
    assert again[: len(stored)] == stored and len({r["key"] for r in again}) == len(again)
    pipeline.run(config, RunDir(tmp_path / "clean"))
    resumed = [(r["id"], r["description"], r["p_value"]) for r in read_jsonl(tmp_path / "run/hypotheses.jsonl")]
    clean = [(r["id"], r["description"], r["p_value"]) for r in read_jsonl(tmp_path / "clean/hypotheses.jsonl")]
    assert resumed == clean
