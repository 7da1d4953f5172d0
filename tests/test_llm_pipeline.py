"""The pipeline with LLM roles, end to end through the real OpenAI SDK against a loopback
OpenAI-compatible server that answers by content: proposer → LLM judge → tests → decisions."""

import hashlib
import json
import re

import pytest
from click.testing import CliRunner
from conftest import fake_config
from llm_servers import ScriptedServer, openai_reply

from lmdelta import pipeline
from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.errors import StageError
from lmdelta.rundir import RunDir, read_jsonl

SECRET = "sk-test-secret-4242"
PROPOSAL = [
    {"direction": "b>a", "property": "mentions the ocean", "description": "Model B brings up the ocean"},
    {"direction": "a>b", "property": "talks about cooking", "description": "Model A talks about cooking"},
]


def answer(received):
    """A judge that reads the text: 90 when it mentions the ocean, else 10; yes/no and 1/2 alike."""
    prompt = received.body["messages"][-1]["content"]
    if prompt.startswith("You are helping to audit"):
        return ("json", 200, openai_reply(json.dumps(PROPOSAL), prompt_tokens=400, completion_tokens=80))
    if prompt.startswith("Write "):
        return ("json", 200, openai_reply(json.dumps(examples(prompt)), prompt_tokens=80, completion_tokens=300))
    texts = re.findall(r"<<<\n(.*?)\n>>>", prompt, flags=re.S)
    ocean = ["ocean" in t.lower() for t in texts]
    if "Which text shows" in prompt:
        reply = "1" if ocean[0] and not ocean[1] else "2" if ocean[1] and not ocean[0] else "1"
    elif "Does the text show" in prompt:
        reply = "yes" if ocean[0] and "ocean" in prompt.split("Property:")[1].split("\n")[0] else "no"
    else:
        reply = "90" if ocean[0] and "ocean" in prompt.split("Property:")[1].split("\n")[0] else "10"
    return ("json", 200, openai_reply(reply, prompt_tokens=60, completion_tokens=1))


def examples(prompt):
    """Examples that show (or avoid) the property: ocean words when it is about the ocean."""
    shows = "clearly shows" in prompt and "ocean" in prompt
    topic = "the ocean is calm and the ocean is deep" if shows else "the park is green and the bread is warm"
    return [{"prompt": f"Question {i}?", "answer": f"Answer {i}: {topic}."} for i in range(6)]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    with ScriptedServer("openai", [], responder=answer) as running:
        yield running


def llm_config(tmp_path, server, *overrides, **config):
    model = f"openai-compatible/judge-model@{server.url}/v1"
    path = fake_config(
        tmp_path,
        per_group=16,
        generate__b={"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.8}},
        **config,
    )
    prices = json.dumps({"openai-compatible/judge-model": {"input": 1.0, "output": 2.0}})
    return load_config(
        path,
        [
            f"llm.proposer.model={model}",
            f"llm.judge.model={model}",
            f"llm.prices={prices}",
            "propose.keywords.enabled=false",
            "propose.clusters.enabled=false",
            "propose.properties.enabled=false",
            "propose.scopes=all",
            "propose.rounds=1",  # the calls these tests count; rounds: tests/test_search_pipeline.py
            "controls.null=false",
            *overrides,
        ],
    )


def test_llm_proposes_and_judges_end_to_end(tmp_path, server):
    run_dir = tmp_path / "run"
    pipeline.run(llm_config(tmp_path, server), RunDir(run_dir))
    rows = list(read_jsonl(run_dir / "hypotheses.jsonl"))
    assert {r["proposer"] for r in rows} == {"llm"} and {r["judge"] for r in rows} == {"llm-unitary"}
    ocean = next(r for r in rows if r["property"] == "mentions the ocean")
    assert ocean["validated"] and ocean["effect"] > 0.3 and "brings up the ocean" in ocean["description"]
    assert ocean["description"].startswith("b brings up")  # "Model B" became the side's label
    usage = RunDir(run_dir).load_manifest().llm_usage
    assert usage["calls"] == len(server.requests) and usage["cost_usd"] > 0
    assert set(usage["by_stage"]) == {"propose", "validate"}
    status = CliRunner().invoke(main, ["status", str(run_dir)])
    assert "LLM:" in status.output and "validate/judge" in status.output


def test_a_second_run_is_served_from_the_cache_at_no_cost(tmp_path, server):
    pipeline.run(llm_config(tmp_path, server), RunDir(tmp_path / "one"))
    calls = len(server.requests)
    pipeline.run(llm_config(tmp_path, server), RunDir(tmp_path / "two"))
    assert len(server.requests) == calls
    usage = RunDir(tmp_path / "two").load_manifest().llm_usage
    assert usage["calls"] == 0 and usage["cost_usd"] == 0 and usage["cached"] > 0
    first = [r["p_value"] for r in read_jsonl(tmp_path / "one/hypotheses.jsonl")]
    assert first == [r["p_value"] for r in read_jsonl(tmp_path / "two/hypotheses.jsonl")]


def test_a_cold_run_pays_for_each_distinct_request_once(tmp_path, server):
    """Hypotheses of four scopes share two properties, and each scores every validation text: identical
    requests in flight share one call (issue #10 item 12; the audit saw 46 % duplicates). Deduplication
    is off: it would drop each group's repeat of the pooled scope's hypothesis before any judging."""
    overrides = ("propose.scopes=both", "propose.dedup.enabled=false")
    pipeline.run(llm_config(tmp_path, server, *overrides), RunDir(tmp_path / "run"))
    bodies = [json.dumps(r.body, sort_keys=True) for r in server.requests]
    assert len(bodies) == len(set(bodies)), f"{len(bodies) - len(set(bodies))} paid requests were duplicates"
    usage = RunDir(tmp_path / "run").load_manifest().llm_usage
    assert usage["calls"] == len(bodies) and usage["merged"] > 0
    assert usage["requests"] == usage["calls"] + usage["cached"]


def test_two_judge_models_make_two_cache_entries(tmp_path, server):
    pipeline.run(llm_config(tmp_path, server), RunDir(tmp_path / "one"))
    calls = len(server.requests)
    other = f"openai-compatible/other-judge@{server.url}/v1"
    pipeline.run(llm_config(tmp_path, server, f"llm.judge.model={other}"), RunDir(tmp_path / "two"))
    judged_again = len(server.requests) - calls
    assert judged_again > 0 and all(r.body["model"] == "other-judge" for r in server.requests[calls:])


def test_budget_stops_cleanly_and_the_resumed_run_matches(tmp_path, server):
    with pytest.raises(StageError, match="budget"):
        pipeline.run(llm_config(tmp_path, server, "budget.usd=0.004"), RunDir(tmp_path / "run"))
    manifest = RunDir(tmp_path / "run").load_manifest()
    assert manifest.stages["validate"].status == "interrupted"
    paid = len(server.requests)
    pipeline.run(llm_config(tmp_path, server, "budget.usd=10"), RunDir(tmp_path / "run"))
    keys = [json.dumps(r.body, sort_keys=True) for r in server.requests]
    assert len(keys) == len(set(keys)), "a paid call was made twice"
    assert len(server.requests) > paid
    pipeline.run(llm_config(tmp_path, server), RunDir(tmp_path / "clean"))
    resumed = [(r["id"], r["p_value"]) for r in read_jsonl(tmp_path / "run/hypotheses.jsonl")]
    assert resumed == [(r["id"], r["p_value"]) for r in read_jsonl(tmp_path / "clean/hypotheses.jsonl")]


@pytest.mark.parametrize("mode", ["pairwise", "presence"])
def test_other_judge_modes(tmp_path, server, mode):
    pipeline.run(llm_config(tmp_path, server, f"validate.judge={mode}"), RunDir(tmp_path / "run"))
    ocean = next(r for r in read_jsonl(tmp_path / "run/hypotheses.jsonl") if r["property"] == "mentions the ocean")
    assert ocean["judge"] == f"llm-{mode}" and ocean["validated"]


def test_no_key_in_any_output(tmp_path, server, isolated_cache):
    pipeline.run(llm_config(tmp_path, server), RunDir(tmp_path / "run"))
    assert server.last.headers["authorization"] == f"Bearer {SECRET}"
    for folder in (tmp_path / "run", isolated_cache):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert SECRET.encode() not in path.read_bytes(), path


def test_missing_key_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = fake_config(tmp_path, per_group=16)
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(path),
            "--run-dir",
            str(tmp_path / "run"),
            "--set",
            "llm.proposer.model=openai/gpt-4.1-mini",
            "--set",
            "llm.judge.model=openai/gpt-4.1-mini",
        ],
    )
    assert result.exit_code == 2 and "OPENAI_API_KEY" in result.output


def test_dry_run_checks_the_llm_key(tmp_path, monkeypatch):
    """A missing key is listed as needed at run time (the config may be checked on another machine than the one
    that runs it); a misspelt provider is an error of the config itself."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    path = fake_config(tmp_path, per_group=16)
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run", "--set", "llm.judge.model=anthropic/claude-x"])
    assert result.exit_code == 0 and "needed at run time: llm.judge: an API key in ANTHROPIC_API_KEY" in result.output
    assert "a run here would stop before starting" in result.output
    typo = CliRunner().invoke(main, ["run", str(path), "--dry-run", "--set", "llm.judge.model=anthropc/claude-x"])
    assert typo.exit_code == 2 and "anthropic" in typo.output


def test_generative_validation_scores_examples_under_both_models(tmp_path, server):
    pipeline.run(
        llm_config(tmp_path, server, "validate.generative=true", "validate.generative_examples=6"),
        RunDir(tmp_path / "run"),
    )
    rows = {r["property"]: r for r in read_jsonl(tmp_path / "run/hypotheses.jsonl")}
    ocean = rows["mentions the ocean"]
    assert ocean["generative_n"] == 12 and ocean["generative_effect"] > 0 and ocean["generative_p"] < 0.01
    assert rows["talks about cooking"]["generative_p"] > 0.05  # b's fake model does not favour cooking


def test_an_outage_past_the_retry_budget_stops_the_stage_resumably(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    down = ("json", 503, {"error": {"message": "overloaded", "type": "server_error"}})
    with ScriptedServer("openai", [down] * 40) as server:
        config = llm_config(tmp_path, server, "llm.max_attempts=2")
        with pytest.raises(StageError, match="failed after retries"):
            pipeline.run(config, RunDir(tmp_path / "run"))
        assert RunDir(tmp_path / "run").load_manifest().stages["propose"].status == "interrupted"
        server.responder = answer
        server._steps.clear()
        pipeline.run(config, RunDir(tmp_path / "run"))
    assert any(r["validated"] for r in read_jsonl(tmp_path / "run/hypotheses.jsonl"))


def test_extra_judges_record_agreement_and_the_report_shows_costs(tmp_path, server):
    other = f"openai-compatible/second-judge@{server.url}/v1"
    pipeline.run(llm_config(tmp_path, server, f"validate.extra_judges=[{other}]"), RunDir(tmp_path / "run"))
    ocean = next(r for r in read_jsonl(tmp_path / "run/hypotheses.jsonl") if r["property"] == "mentions the ocean")
    agreement = ocean["judge_agreement"][other]
    assert agreement["spearman"] == pytest.approx(1.0) and agreement["agreement"] == 1.0 and agreement["n"] > 10
    html = (tmp_path / "run/report.html").read_text()
    assert "Assistant LLM calls and cost" in html and "validate / judge" in html


def one_property_per_scope(received):
    """As `answer`, but each proposer request (one scope's discovery answers) gets a property of its own, so no
    judge request of one group's hypothesis coincides with another's: every out-of-group judge call is paid."""
    prompt = received.body["messages"][-1]["content"]
    if prompt.startswith("You are helping to audit"):
        tag = hashlib.sha256(prompt.encode()).hexdigest()[:8]
        proposal = [{**PROPOSAL[0], "property": f"mentions the ocean (variant {tag})"}]
        return ("json", 200, openai_reply(json.dumps(proposal), prompt_tokens=400, completion_tokens=80))
    return answer(received)


def judge_calls(server, start=0):
    return sum(
        not r.body["messages"][-1]["content"].startswith("You are helping to audit") for r in server.requests[start:]
    )


def test_llm_judged_group_hypotheses_get_a_generalisation_test_at_bounded_cost(tmp_path, monkeypatch):
    """The LLM judge used to score in-scope texts only, so an LLM-judged group hypothesis had no
    generalisation test (generalization_p silently null; audit M3). Now it also judges a seeded sample of
    other groups' prompts, as many as its group has: the extra calls equal the in-scope ones, no more."""
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    with ScriptedServer("openai", [], responder=one_property_per_scope) as server:
        pipeline.run(
            llm_config(tmp_path, server, "propose.scopes=groups", "validate.generalization=false"),
            RunDir(tmp_path / "off"),
        )
        in_scope = judge_calls(server)
        seen = len(server.requests)
        pipeline.run(llm_config(tmp_path, server, "propose.scopes=groups"), RunDir(tmp_path / "on"))
        extra = judge_calls(server, seen)  # in-scope answers come from the cache
    rows = [r for r in read_jsonl(tmp_path / "on/hypotheses.jsonl") if r["group"] != "all"]
    assert len({r["group"] for r in rows}) == 3 and {r["judge"] for r in rows} == {"llm-unitary"}
    for r in rows:
        assert r["generalization_p"] is not None and r["generalization_units"] == r["n_prompts"]
        assert r["generalization_q"] is not None and isinstance(r["generalization_validated"], bool)
    texts_per_prompt = 4  # 2 samples per side
    assert in_scope == sum(texts_per_prompt * r["n_prompts"] for r in rows)
    assert extra == sum(texts_per_prompt * r["generalization_units"] for r in rows) == in_scope
    off = {r["group"]: r for r in read_jsonl(tmp_path / "off/hypotheses.jsonl")}
    assert all(r.get("generalization_p") is None and r["generalization_q"] is None for r in off.values())


def test_a_budget_spent_on_generalisation_calls_stops_cleanly_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", SECRET)
    with ScriptedServer("openai", [], responder=one_property_per_scope) as server:
        with pytest.raises(StageError, match="budget"):
            pipeline.run(
                llm_config(tmp_path, server, "propose.scopes=groups", "budget.usd=0.012"), RunDir(tmp_path / "run")
            )
        assert RunDir(tmp_path / "run").load_manifest().stages["validate"].status == "interrupted"
        pipeline.run(llm_config(tmp_path, server, "propose.scopes=groups", "budget.usd=10"), RunDir(tmp_path / "run"))
        keys = [json.dumps(r.body, sort_keys=True) for r in server.requests]
        assert len(keys) == len(set(keys)), "a paid call was made twice"
        pipeline.run(llm_config(tmp_path, server, "propose.scopes=groups"), RunDir(tmp_path / "clean"))
    fields = ("id", "p_value", "generalization_p", "generalization_units")
    resumed = [tuple(r[f] for f in fields) for r in read_jsonl(tmp_path / "run/hypotheses.jsonl")]
    assert resumed == [tuple(r[f] for f in fields) for r in read_jsonl(tmp_path / "clean/hypotheses.jsonl")]
    assert all(r[2] is not None for r in resumed)
