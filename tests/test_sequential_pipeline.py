"""validate.mode = sequential end to end on fake models: rounds, on-demand answers, e-BH / e-LOND,
accounting, budget stops, resumption after kill -9 mid-round, corpus mode."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.errors import StageError
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.validate.sequential import Rounds

SEQUENTIAL = ("validate.mode=sequential",)


def run(config_path, run_dir, *overrides):
    pipeline.run(load_config(config_path, list(overrides)), RunDir(run_dir))
    return RunDir(run_dir)


def rows(path):
    return list(read_jsonl(path))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One sequential and one fixed run of the same config (built once: several tests read them)."""
    root = tmp_path_factory.mktemp("sequential")
    config = fake_config(root, per_group=40)
    return config, run(config, root / "seq", *SEQUENTIAL), run(config, root / "fixed")


def test_sequential_run_answers_validation_prompts_only_in_rounds(runs):
    _, seq, _ = runs
    splits = {p["id"]: p["split"] for p in rows(seq.stage_file("prompts", "prompts.jsonl"))}
    generated = rows(seq.stage_file("generate", "samples.jsonl"))
    assert generated and all(splits[s["prompt_id"]] != "validation" for s in generated)
    answered = rows(seq.stage_file("validate", "validation_items.jsonl"))
    assert answered and all(splits[a["prompt_id"]] == "validation" for a in answered)
    assert len({a["key"] for a in answered}) == len(answered)
    log = rows(seq.stage_file("validate", "rounds.jsonl"))
    # validate.answers_per_prompt = 1 answer a side, and validate.max_answers_per_prompt unset: no deeper answers
    # (the last round's count of prompts per depth says so).
    depth: dict[str, int] = {}
    for a in answered:
        depth[a["prompt_id"]] = max(depth.get(a["prompt_id"], 0), a["index"] + 1)
    assert sum(a["index"] == 0 for a in answered) == 2 * len(depth)
    assert log[-1]["answers_per_prompt"] == {str(m): list(depth.values()).count(m) for m in sorted(set(depth.values()))}
    assert set(depth.values()) == {1} and log[-1]["answers_per_prompt"] == {"1": len(depth)}
    assert [r["round"] for r in log] == list(range(1, len(log) + 1))
    answered_per_round = [r["prompts_answered"] for r in log]
    assert answered_per_round == sorted(answered_per_round) and answered_per_round[0] < answered_per_round[-1]


def test_sequential_findings_carry_their_stop_and_are_decided_by_e_bh(runs):
    _, seq, _ = runs
    found = rows(seq.findings_path())
    assert found and all(f["procedure"] == "e-BH" and f["test"] == "betting e-process" for f in found)
    for f in found:
        assert f["stop_reason"] in ("rejected", "futile", "cap", "exhausted") and f["stop_round"] >= 1
        assert 0 < f["p_value"] <= 1 and f["e_value"] >= 0
        low, high = f["confidence_sequence"]
        assert -1 <= low <= high <= 1 and f["effect_ci"] == [low, high]
        assert f["p_value"] <= 1 / f["e_value"] + 1e-12  # anytime p = 1 / the largest capital <= 1 / the last
        assert "no symmetry needed" in f["assumption"]  # the e-process's null, not the sign-flip's
        assert f["effect_ci_fcr"] is None and f["fcr_level"] is None  # no t interval to adjust for selection
    ocean = [f for f in found if f["validated"] and "ocean" in f["description"] and f["direction"] == "b>a"]
    assert ocean and ocean[0]["stop_reason"] == "rejected"
    validated = sorted(f["e_value"] for f in found if f["validated"])
    assert validated[0] >= len(found) / (0.05 * len(validated))  # e-BH's threshold at k = R
    null = rows(seq.findings_path("null"))
    assert not any(f["validated"] for f in null)


def test_summary_counts_tokens_and_judge_calls_and_sequential_spends_less(runs):
    _, seq, fixed = runs
    s, f = (json.loads(rd.summary_path.read_text()) for rd in (seq, fixed))
    assert s["mode"] == "sequential" and f["mode"] == "fixed" and f["procedure"] == "BH"
    for summary in (s, f):
        tokens = summary["tokens_generated"]
        assert tokens["total"]["total"] == sum(tokens[split]["total"] for split in tokens if split != "total")
        assert tokens["discovery"] == s["tokens_generated"]["discovery"]  # the same discovery answers
    assert s["tokens_generated"]["validation"]["total"] < f["tokens_generated"]["validation"]["total"]
    assert 0 < s["judge_calls"]["validation_pairs"] < f["judge_calls"]["validation_pairs"]
    answered = rows(seq.stage_file("validate", "validation_items.jsonl"))
    assert s["tokens_generated"]["validation"]["total"] == sum(a["n_tokens"] for a in answered)


def test_switching_modes_reuses_every_answer(runs, tmp_path):
    config, seq, _ = runs
    answered = {row["key"] for row in read_jsonl(seq.stage_file("validate", "validation_items.jsonl"))}
    n_validation = sum(p["split"] == "validation" for p in rows(seq.stage_file("prompts", "prompts.jsonl")))
    manifest = run(config, seq.root, "validate.mode=fixed").load_manifest()
    counts = manifest.stages["generate"].counts
    # fixed asks for 2 answers per validation prompt and side: the rounds' first answers are reused by key
    assert counts["a"]["generated"] + counts["b"]["generated"] == 2 * 2 * n_validation - len(answered)
    assert counts["a"]["reused"] > 0
    back = run(config, seq.root, *SEQUENTIAL).load_manifest()
    assert back.stages["generate"].counts["a"]["generated"] == 0
    assert back.stages["validate"].counts["sequential"]["prompts_answered"] > 0


def test_rounds_give_at_most_max_round_new_prompts_and_status_says_how_far(runs, tmp_path):
    """Each round's line records how far into its scope an undecided hypothesis has read; validate.max_round
    (default 128, past these scopes) bounds the new prompts a round, so a small one replays the same answers in
    more, smaller rounds."""
    config, seq, _ = runs
    n_validation = sum(p["split"] == "validation" for p in rows(seq.stage_file("prompts", "prompts.jsonl")))
    reach = [r["scope_prompts"] for r in rows(seq.stage_file("validate", "rounds.jsonl"))]
    assert reach == Rounds(16, 1.5, most=128).boundaries(n_validation)[: len(reach)]
    copy = tmp_path / "copy"
    shutil.copytree(seq.root, copy)
    small = run(config, copy, *SEQUENTIAL, "validate.max_round=8")
    reach = [r["scope_prompts"] for r in rows(small.stage_file("validate", "rounds.jsonl"))]
    assert reach == Rounds(16, 1.5, most=8).boundaries(n_validation)[: len(reach)] and len(reach) > 2
    assert reach[:3] == [8, 16, 24]
    output = subprocess.run(
        [sys.executable, "-m", "lmdelta", "status", str(copy)], capture_output=True, text=True, check=True
    ).stdout
    assert "validation round 2 (up to 16 prompts a hypothesis):" in output
    assert '<th scope="col" class="n">prompts a hypothesis</th>' in small.report_path.read_text()


def test_online_primary_decides_by_e_lond(tmp_path):
    rd = run(fake_config(tmp_path, per_group=40), tmp_path / "run", *SEQUENTIAL, "decide.primary=online")
    found = rows(rd.findings_path())
    assert {f["procedure"] for f in found} == {"e-LOND"} and {f["online_procedure"] for f in found} == {"e-LOND"}
    assert any(f["validated"] for f in found)
    for f in found:
        assert f["validated"] == (f["e_value"] * f["online_level"] >= 1)


def test_budget_stop_then_resume_generates_nothing_twice(tmp_path):
    config = fake_config(tmp_path, per_group=40)
    short = (*SEQUENTIAL, "generate.max_new_tokens=16")  # round 1 is estimated at 16 tokens an answer
    with pytest.raises(StageError, match="budget.generated_tokens = 2,000"):
        run(config, tmp_path / "run", *short, "budget.generated_tokens=2000")
    items = tmp_path / "run/stages/validate/validation_items.jsonl"
    before = [row["key"] for row in read_jsonl(items)]
    assert before  # the rounds before the stop are kept
    rd = run(config, tmp_path / "run", *short)
    after = [row["key"] for row in read_jsonl(items)]
    assert after[: len(before)] == before and len(after) == len(set(after)) > len(before)
    clean = run(config, tmp_path / "clean", *short)
    assert rd.findings_path().read_text() == clean.findings_path().read_text()


def test_judge_call_budget_stops_before_the_round(tmp_path):
    with pytest.raises(StageError, match="budget.judge_calls"):
        run(fake_config(tmp_path, per_group=40), tmp_path / "run", *SEQUENTIAL, "budget.judge_calls=100")


def test_corpus_mode_sequential_saves_judging_and_refuses_unaligned_corpora(tmp_path):
    corpus = tmp_path / "outputs.jsonl"
    lines = []
    for p in range(80):
        for side in ("base", "tuned"):
            sea = side == "tuned" and p % 3 != 0
            text = f"Answer to question {p}: " + ("we sail the ocean blue" if sea else "we walk in the park")
            lines.append({"side": side, "text": text, "prompt_id": f"q{p}", "prompt": f"Question {p}?"})
    corpus.write_text("".join(json.dumps(row) + "\n" for row in lines))
    path = tmp_path / "config.yaml"
    path.write_text(
        json.dumps(
            {
                "prompts": {"source": "corpus"},
                "corpus": {"path": str(corpus)},
                "generate": {"a": {"label": "base"}, "b": {"label": "tuned"}},
                "embed": {"model": "fake:hashing"},
                "validate": {"mode": "sequential"},
                "controls": {"null": False},
            }
        )
    )
    rd = run(path, tmp_path / "run")
    found = rows(rd.findings_path())
    assert any(f["validated"] and "ocean" in f["description"] for f in found)
    assert not (tmp_path / "run/stages/validate/validation_items.jsonl").exists()  # nothing generated
    unaligned = tmp_path / "unaligned.jsonl"
    unaligned.write_text("".join(json.dumps({"side": r["side"], "text": r["text"]}) + "\n" for r in lines))
    with pytest.raises(StageError, match="validate.mode=fixed"):
        run(path, tmp_path / "run2", f"corpus.path={unaligned}")


STALL_AFTER = 28  # answers a generator gives before it stops: past discovery, inside validation round 1


def test_kill_mid_round_resumes_without_regenerating(tmp_path):
    config = fake_config(tmp_path, per_group=40)
    overrides = [*SEQUENTIAL, "prompts.discovery_fraction=0.2", "generate.samples_per_prompt=1"]
    run_dir = tmp_path / "run"
    items = run_dir / "stages/validate/validation_items.jsonl"
    env = {**os.environ, "LMDELTA_FAKE_STALL_AFTER": str(STALL_AFTER)}
    args = [sys.executable, "-m", "lmdelta", "run", str(config), "--run-dir", str(run_dir)]
    args += [item for o in overrides for item in ("--set", o)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    start = time.monotonic()
    while not (items.exists() and items.read_text().count("\n") >= STALL_AFTER):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() - start < 300, "the run never reached validation"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = [row["key"] for row in read_jsonl(items)]
    assert len(finished) == STALL_AFTER
    resumed = run(config, run_dir, *overrides)
    keys = [row["key"] for row in read_jsonl(items)]
    assert keys[: len(finished)] == finished and len(keys) == len(set(keys))
    clean = run(config, tmp_path / "clean", *overrides)
    assert resumed.findings_path().read_text() == clean.findings_path().read_text()


def test_status_and_report_show_the_rounds_and_the_spending(runs):
    _, seq, fixed = runs
    output = subprocess.run(
        [sys.executable, "-m", "lmdelta", "status", str(seq.root)], capture_output=True, text=True, check=True
    ).stdout
    assert "validation round 1 (up to 16 prompts a hypothesis):" in output and "judge calls" in output
    html = seq.report_path.read_text()
    assert "Validation rounds" in html and "(hypothesis, text) pairs judged" in html and "e-BH" in html
    fixed_html = fixed.report_path.read_text()
    assert "Validation rounds" not in fixed_html and "Spent (fixed validation)" in fixed_html


def test_an_llm_judge_through_a_loopback_server_is_asked_only_what_the_rounds_need(tmp_path, monkeypatch):
    """validate.judge = presence with an OpenAI-compatible judge: each (property, text) is asked once, and
    fewer are asked than the fixed mode judges; a rerun with other stop settings pays nothing more."""
    from llm_servers import ScriptedServer
    from test_cascade import STRONG_B, TEXT, presence_answer

    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-test-judge")
    with ScriptedServer("openai", [], responder=presence_answer) as server:
        overrides = [
            f"llm.judge.model=openai-compatible/judge@{server.url}/v1",
            "validate.judge=presence",
            "propose.scopes=all",
            "controls.null=false",
            "propose.clusters.enabled=false",
            "propose.properties.enabled=false",
            "propose.keywords.per_scope=2",
        ]
        config = fake_config(tmp_path, per_group=48, generate__b=STRONG_B)
        seq = run(config, tmp_path / "sequential", *overrides, *SEQUENTIAL)
        prompts = [r.body["messages"][-1]["content"] for r in server.requests]
        asked = [(p.split("Property:")[1].split("\n")[0], TEXT.findall(p)[0]) for p in prompts]
        found = rows(seq.findings_path())
        run(config, tmp_path / "sequential", *overrides, *SEQUENTIAL, "validate.min_effect=0.1")
        assert len(server.requests) == len(asked)  # replayed from the cache: nothing asked twice
        fixed = run(config, tmp_path / "fixed", *overrides)
    assert asked and len(set(asked)) == len(asked)
    assert any(f["validated"] and "ocean" in f["description"] for f in found)
    assert len(asked) == sum(f["n_texts"] for f in found)  # exactly the texts the tests used
    assert len(asked) < sum(f["n_texts"] for f in rows(fixed.findings_path()))
