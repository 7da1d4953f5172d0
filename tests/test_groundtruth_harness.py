"""`lmdelta groundtruth` end to end on a tiny random-init model: inject → discover → score."""

import json

import yaml
from click.testing import CliRunner
from conftest import fake_config, tiny_config

from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.groundtruth import harness
from lmdelta.report.render import render_report
from lmdelta.rundir import RunDir, read_jsonl


def test_the_experiment_writes_a_scorecard_and_both_runs(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model)
    card = harness.run(config, RunDir(tmp_path / "run"))
    root = tmp_path / "run"
    saved = json.loads((root / "scorecard.json").read_text())
    assert saved["quirks"][0]["quirk"] == "ocean" and set(saved["quirks"][0]["rate"]) == {"a", "b"}
    assert {"recall", "precision", "first_match_rank", "null_validated", "unmatched_hypotheses"} <= set(card)
    assert (root / "hypotheses.jsonl").exists() and (root / "null_experiment" / "hypotheses.jsonl").exists()
    training = list(read_jsonl(root / "groundtruth" / "training.jsonl"))
    tested = {p["text"] for p in read_jsonl(root / "stages/prompts/prompts.jsonl")}
    assert len(training) == 24 + 8 and not tested & {row["prompt"] for row in training}
    assert "Ground truth" in (root / "report.html").read_text()
    b_model = RunDir(root).load_manifest().stages["generate"].material["identity"]["b"]["model"]
    assert b_model != str(tiny_model) and "finetuned" in b_model


def test_a_scorecard_written_before_null_also_in_main_still_renders(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model)
    harness.run(config, RunDir(tmp_path / "run"))
    path = tmp_path / "run" / "scorecard.json"
    old = json.loads(path.read_text())
    old.pop("null_also_in_main")
    path.write_text(json.dumps(old))
    assert "Null experiment" in render_report(tmp_path / "run").read_text()


def test_a_rerun_reuses_the_finetune_and_every_stage(tmp_path, tiny_model, caplog):
    config = tiny_config(tmp_path, tiny_model)
    harness.run(config, RunDir(tmp_path / "run"))
    caplog.set_level("INFO", logger="lmdelta")
    harness.run(config, RunDir(tmp_path / "run"))
    assert "(reused)" in caplog.text and "generate running" not in caplog.text


def test_unknown_quirk_and_quirk_without_data(tmp_path, tiny_model):
    result = CliRunner().invoke(
        main,
        [
            "groundtruth",
            str(_write(tmp_path, tiny_model)),
            "--run-dir",
            str(tmp_path / "run"),
            "--set",
            "groundtruth.quirks=[ocen]",
        ],
    )
    assert result.exit_code == 2 and "ocean" in result.output
    quirks = tmp_path / "quirks.yaml"
    quirks.write_text(yaml.safe_dump([{"name": "sonnets", "description": "The AI answers in sonnets."}]))
    result = CliRunner().invoke(
        main,
        [
            "groundtruth",
            str(_write(tmp_path, tiny_model)),
            "--run-dir",
            str(tmp_path / "run2"),
            "--set",
            f"groundtruth.quirks_file={quirks}",
            "--set",
            "groundtruth.quirks=null",
        ],
    )
    assert result.exit_code == 2 and "no training data" in result.output


def _write(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model)
    path = tmp_path / "written.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path


def _fake_base_config(tmp_path, *overrides):
    path = fake_config(tmp_path, groundtruth__base="fake:words", groundtruth__per_quirk=3, groundtruth__base_samples=2)
    return load_config(path, list(overrides)).resolved()


def _counting_generator(monkeypatch):
    calls = []
    original = harness._generate_answers
    monkeypatch.setattr(harness, "_generate_answers", lambda *args: calls.append(1) or original(*args))
    return calls


def test_stored_base_answers_are_reused_only_while_their_key_matches(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger="lmdelta")
    calls = _counting_generator(monkeypatch)
    run_dir, prompts = RunDir(tmp_path / "run"), [f"Prompt number {i} about things" for i in range(8)]
    first = harness._base_answers(_fake_base_config(tmp_path), run_dir, prompts)
    again = harness._base_answers(_fake_base_config(tmp_path), run_dir, prompts)
    assert len(first) == 5 and again == first and len(calls) == 1 and "reusing 5 stored" in caplog.text
    reseeded = harness._base_answers(_fake_base_config(tmp_path, "groundtruth.seed=4"), run_dir, prompts)
    assert len(calls) == 2 and reseeded != first and "changed: seed: 3 → 4" in caplog.text
    harness._base_answers(_fake_base_config(tmp_path, "generate.temperature=0.3"), run_dir, prompts)
    assert len(calls) == 3 and "sampling.temperature" in caplog.text
    harness._base_answers(_fake_base_config(tmp_path, "generate.temperature=0.3"), run_dir, prompts[1:])
    assert len(calls) == 4 and "changed: prompts" in caplog.text
    stored = list(read_jsonl(tmp_path / "run" / "groundtruth" / "base_answers.jsonl"))
    assert len({row["key"] for row in stored}) == 1


def test_stored_base_answers_without_a_key_are_regenerated(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger="lmdelta")
    calls = _counting_generator(monkeypatch)
    path = tmp_path / "run" / "groundtruth" / "base_answers.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "answer": "stale"}) + "\n" for i in range(5)))
    rows = harness._base_answers(_fake_base_config(tmp_path), RunDir(tmp_path / "run"), [f"q{i}" for i in range(8)])
    assert len(calls) == 1 and "stale" not in {row["answer"] for row in rows} and "regenerating" in caplog.text


def test_the_scorecard_says_how_far_each_finetune_moved_the_weights_beyond_the_null(tmp_path, tiny_model):
    from lmdelta.groundtruth.lines import scorecard_lines

    config = tiny_config(tmp_path, tiny_model, "groundtruth.weights_per_quirk=true")
    card = harness.run(config, RunDir(tmp_path / "run"))
    moved = card["weights"]
    assert moved["relative_change"] > 0 and moved["null_relative_change"] > 0 and moved["ratio_to_null"] > 0
    assert moved["layers_beyond_null"] and "ratio_to_null" in moved["layers_beyond_null"][0]
    assert set(moved["per_quirk"]) == {quirk["quirk"] for quirk in card["quirks"]}
    assert (tmp_path / "run" / "weights_summary.json").exists()  # the report's weights section
    assert (tmp_path / "run" / "null_experiment" / "weights_summary.json").exists()
    lines = scorecard_lines(card)
    assert "the null finetune's ‖ΔW‖" in lines and "ocean alone: moved" in lines
