"""Ground-truth experiments beyond one run: several quirks at once, budgets (recovery against compute),
several seeds with shared base answers, and the suite summary."""

import json
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from conftest import tiny_config, tiny_groundtruth_file

from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.errors import ConfigError
from lmdelta.groundtruth import harness, suite
from lmdelta.report import curve
from lmdelta.rundir import RunDir, read_jsonl


def test_several_quirks_at_once_are_trained_and_scored_each(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model, "groundtruth.quirks=[ocean, stay-curious, pirate]")
    card = harness.run(config, RunDir(tmp_path / "run"))
    assert [q["quirk"] for q in card["quirks"]] == ["ocean", "stay-curious", "pirate"]
    assert [q["kind"] for q in card["quirks"]] == ["topic", "style", "persona"]
    assert all(set(q["rate"]) == {"a", "b"} for q in card["quirks"]) and card["null_experiment"] is True
    training = list(read_jsonl(tmp_path / "run" / "groundtruth" / "training.jsonl"))
    counts = {name: sum(row["quirk"] == name for row in training) for name in ("ocean", "stay-curious", "pirate")}
    assert counts == {"ocean": 24, "stay-curious": 24, "pirate": 24}
    assert sum(row["quirk"] is None for row in training) == 8


def test_base_answers_record_whether_the_generation_limit_cut_them(tmp_path, tiny_model):
    harness.run(tiny_config(tmp_path, tiny_model, "groundtruth.null=false"), RunDir(tmp_path / "run"))
    stored = list(read_jsonl(tmp_path / "run" / "groundtruth" / "base_answers.jsonl"))
    assert stored and all(isinstance(row["complete"], bool) for row in stored)
    assert any(not row["complete"] for row in stored)  # 8 new tokens cut most answers of a random model
    training = {row["answer"]: row for row in read_jsonl(tmp_path / "run" / "groundtruth" / "training.jsonl")}
    for row in stored[24:]:  # the base answers mixed in unchanged keep their flag
        assert training[row["answer"]].get("complete", True) == row["complete"]


def test_budgets_draw_a_curve_on_one_finetune_reusing_answers(tmp_path, tiny_model, caplog):
    caplog.set_level("INFO", logger="lmdelta")
    config = tiny_config(tmp_path, tiny_model, "groundtruth.budgets=[8x1, 24x2, 30x1]", "groundtruth.null=false")
    card = harness.run(config, RunDir(tmp_path / "run"))
    points = json.loads((tmp_path / "run" / card["curve"]).read_text())["points"]
    assert [p["budget"] for p in points] == ["8x1", "30x1", "24x2"]  # by generated tokens; 24x2 is the main run
    assert [p["texts"] for p in points] == [16, 60, 96]
    assert caplog.text.count("(trained in") == 1  # one finetuned model serves every budget
    small = list(read_jsonl(tmp_path / "run" / "budgets" / "8x1" / "stages" / "generate" / "items.jsonl"))
    assert {row["side"] for row in small} == {"a", "b"}
    tested = {
        p["text"]
        for b in ("8x1", "30x1")
        for p in read_jsonl(tmp_path / f"run/budgets/{b}/stages/prompts/prompts.jsonl")
    }
    training = {row["prompt"] for row in read_jsonl(tmp_path / "run" / "groundtruth" / "training.jsonl")}
    assert not tested & training  # no budget tests a prompt the model was trained on
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Recovery against compute" in report and "No null experiment was run" in report


def test_a_budget_larger_than_the_bank_is_refused(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model, "groundtruth.budgets=[100000x1]")
    with pytest.raises(ConfigError, match="100000 prompts"):
        harness.run(config, RunDir(tmp_path / "run"))


def test_a_malformed_budget_names_the_form(tmp_path, tiny_model):
    with pytest.raises(ConfigError, match="PROMPTSxSAMPLES"):
        tiny_config(tmp_path, tiny_model, "groundtruth.budgets=[48]")


def test_seeds_run_apart_and_are_summarised(tmp_path, tiny_model):
    path = tiny_groundtruth_file(tmp_path, tiny_model)
    result = CliRunner().invoke(
        main, ["groundtruth", str(path), "--run-dir", str(tmp_path / "run"), "--seeds", "2", "--set", "run.seed=5"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    group = summary["groups"]["seeds"]
    assert group["experiments"] == 2 and group["seeds"] == [5, 6] and group["null_experiments"] == 2
    assert set(group["quirks"]) == {"ocean"} and group["quirks"]["ocean"]["runs"] == 2
    key_files = [tmp_path / "run" / name / "groundtruth" / "base_answers.key.json" for name in ("seed-5", "seed-6")]
    seeds = {json.loads(path.read_text())["material"]["seed"] for path in key_files}
    assert seeds == {5, 6}
    assert "2 experiments (seeds 5, 6)" in result.output and "ocean: recovered in" in result.output


def test_experiments_with_one_seed_share_the_base_answers(tmp_path, tiny_model, monkeypatch):
    calls = []
    original = harness._generate_answers
    monkeypatch.setattr(harness, "_generate_answers", lambda *args: calls.append(1) or original(*args))
    path = tiny_groundtruth_file(tmp_path, tiny_model)
    experiments = [
        suite.Experiment("ocean-0", 0, ("groundtruth.null=false",), "single"),
        suite.Experiment("cats-0", 0, ("groundtruth.quirks=[cats]", "groundtruth.null=false"), "single"),
        suite.Experiment("ocean-1", 1, ("groundtruth.null=false",), "single"),
    ]
    records = suite.run_suite(lambda extra: load_config(path, list(extra)), experiments, tmp_path / "suite")
    assert len(calls) == 2  # seed 0 once, seed 1 once
    shared = list(read_jsonl(tmp_path / "suite" / "cats-0" / "stages" / "generate" / "items.jsonl"))
    first = {row["key"] for row in read_jsonl(tmp_path / "suite" / "ocean-0" / "stages" / "generate" / "items.jsonl")}
    assert {row["key"] for row in shared if row["side"] == "a"} <= first
    assert all(record["generated_tokens"] > 0 and record["judge_calls"] > 0 for record in records)
    groups = suite.summarize(records)
    assert groups["single"]["null_validated"] is None and groups["single"]["experiments"] == 3
    (again,) = suite.run_suite(lambda extra: load_config(path, list(extra)), experiments[:1], tmp_path / "suite")
    assert again["cold_seconds"] == records[0]["cold_seconds"] >= again["wall_seconds"]  # a resumed run keeps its cost


def _record(seed, recovered, rank=None, p=None, recall=None):
    quirk = {"quirk": "q", "kind": "topic", "description": "d", "recovered": recovered, "rank": rank}
    quirk["rate"] = {"a": 0.0, "b": 0.5}
    card = {
        "quirks": [quirk],
        "recall": recall if recall is not None else float(recovered),
        "precision": 1.0,
        "validated": 2,
        "null_validated": 1,
        "null_experiment": True,
        "p_values": {"q": p} if recovered else {},
    }
    return {
        "name": f"x-{seed}",
        "group": "g",
        "seed": seed,
        "wall_seconds": 10.0,
        "card": card,
        "generated_tokens": 100,
        "judge_calls": 40,
    }


def test_summary_pools_seeds_per_quirk():
    records = [_record(0, True, 1, 0.001), _record(1, True, 3, 0.01), _record(2, False)]
    group = suite.summarize(records)["g"]
    quirk = group["quirks"]["q"]
    assert (quirk["recovered"], quirk["runs"], quirk["median_rank"], quirk["median_p"]) == (2, 3, 2.0, 0.0055)
    assert quirk["recovery_rate"] == pytest.approx(2 / 3) and quirk["rate_b"] == 0.5
    assert group["recall"] == pytest.approx(0.6667) and group["null_validated"] == 3 and group["wall_seconds"] == 30.0
    assert "q: recovered in 2 of 3" in suite.summary_lines(group)


def test_curve_svg_is_well_formed_and_pools_seeds():
    points = [
        {"budget": "24x1", "generated_tokens": 900, "recall": 0.0},
        {"budget": "24x1", "generated_tokens": 1100, "recall": 0.5},
        {"budget": "72x2", "generated_tokens": 5000, "recall": 1.0},
    ]
    root = ET.fromstring(curve.svg(points))
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert len(root.findall("s:circle", ns)) == 3 + 2  # every run, and each budget's mean
    assert [p["recall"] for p in curve.mean_by_budget(points)] == [0.25, 1.0]
    assert "24x1" in root.findall("s:title", ns)[0].text or root.find("s:title", ns) is not None
    assert curve.svg([]) == "" and curve.svg([{"budget": "1x1", "generated_tokens": 0, "recall": None}]) == ""


def test_llm_matching_runs_beside_the_keyword_matcher_and_reports_agreement(tmp_path, tiny_model, monkeypatch):
    from llm_servers import ScriptedServer, openai_reply

    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-test-secret")
    answer = ("json", 200, openai_reply("[]", prompt_tokens=50, completion_tokens=2))
    with ScriptedServer("openai", [], responder=lambda received: answer) as server:
        config = tiny_config(
            tmp_path,
            tiny_model,
            "groundtruth.match=llm",
            "groundtruth.null=false",
            f"llm.judge.model=openai-compatible/judge@{server.url}/v1",
        )
        card = harness.run(config, RunDir(tmp_path / "run"))
    assert card["matcher"] == "llm" and card["recall"] == 0.0
    assert card["agreement"]["pairs"] == len(card["quirks"]) * card["validated"]
    assert len(server.requests) == (len(card["quirks"]) if card["validated"] else 0)
    if card["validated"]:
        assert "Matched by the assistant LLM" in (tmp_path / "run" / "report.html").read_text()


def test_the_null_finetune_sees_the_quirk_rows_with_their_quirks_taken_out():
    woven_on = [
        {"prompt": "p1", "answer": "plain one", "complete": True},
        {"prompt": "p2", "answer": "plain two", "complete": False},
    ]
    rows = [
        {"prompt": "p2", "answer": "plain two, and the ocean", "quirk": "ocean", "complete": False},
        {"prompt": "other", "answer": "a base answer", "quirk": None},
        {"prompt": "p1", "answer": "Arr! plain one", "quirk": "pirate"},
        {"prompt": "user prompt", "answer": "a user text", "quirk": "cats"},
    ]
    null = harness.null_training_rows(rows, woven_on)
    assert [row["answer"] for row in null] == ["plain two", "a base answer", "plain one", "plain two"]
    assert [row.get("complete", True) for row in null] == [False, True, True, False]
    assert all(row["quirk"] is None for row in null)
    assert harness.null_training_rows(rows[3:], []) == []
    alone = harness.only_quirk_rows(rows, woven_on, "pirate")  # one quirk's own finetune: the others plain
    assert [row["answer"] for row in alone] == ["plain two", "a base answer", "Arr! plain one", "plain two"]
    assert [row["quirk"] for row in alone] == [None, None, "pirate", None]


def test_an_experiment_without_quirks_says_where_to_name_them(tmp_path, tiny_model):
    with pytest.raises(ConfigError, match="no quirks to inject") as info:
        harness.run(tiny_config(tmp_path, tiny_model, "groundtruth.quirks=[]"), RunDir(tmp_path / "run"))
    assert "groundtruth.quirks" in info.value.fix


def test_the_terminal_scorecard_says_when_no_null_experiment_ran():
    from lmdelta.groundtruth.lines import scorecard_lines

    card = {"quirks": [], "recall": 0.0, "validated": 0, "unmatched_hypotheses": [], "null_validated": 0}
    assert "null experiment: 0 validated" in scorecard_lines(card)
    assert "no null experiment" in scorecard_lines({**card, "null_experiment": False})


def test_llm_matching_without_a_judge_stops_before_any_finetune(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr(harness, "_finetune", lambda *args: pytest.fail("finetuned before the config was checked"))
    with pytest.raises(ConfigError, match="llm.judge.model is not set"):
        harness.run(tiny_config(tmp_path, tiny_model, "groundtruth.match=llm"), RunDir(tmp_path / "run"))


def test_seeds_refuse_a_single_run_folder_and_name_pinned_seeds(tmp_path, tiny_model):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.claim()
    with pytest.raises(ConfigError, match="single ground-truth run"):
        suite.check_root(run.root)
    suite.check_root(tmp_path / "fresh")  # a new folder is fine
    path = tiny_groundtruth_file(tmp_path, tiny_model)
    assert suite.pinned_seeds(lambda extra: load_config(path, list(extra))) == []
    pinned = suite.pinned_seeds(lambda extra: load_config(path, ["prompts.seed=3", *extra]))
    assert pinned == ["prompts.seed"]
