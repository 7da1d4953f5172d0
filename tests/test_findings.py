"""propose → validate → decide → report end to end on fake models with a known difference."""

import json

from click.testing import CliRunner
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.rundir import RunDir, read_jsonl

REQUIRED = (
    "id group direction description proposer judge n_prompts n_texts statistic p_value effect effect_ci auc "
    "auc_ci prevalence_a prevalence_b baseline_auc bh_reject by_reject online_reject online_level "
    "generalization_p generalization_effect"
).split()
STRONG = {"model": "fake:words", "backend_args": {"topic_words": ["ocean"], "topic_rate": 0.8}}


def run(tmp_path, *overrides, per_group=16, **config):
    path = fake_config(tmp_path, per_group=per_group, **config)
    pipeline.run(load_config(path, list(overrides)), RunDir(tmp_path / "run"))
    return tmp_path / "run"


def test_a_known_difference_is_validated_and_the_null_control_finds_nothing(tmp_path):
    run_dir = run(tmp_path, generate__b=STRONG)
    rows = list(read_jsonl(run_dir / "hypotheses.jsonl"))
    assert rows and all(set(REQUIRED) <= set(row) for row in rows)
    validated = [r for r in rows if r["validated"]]
    assert any("ocean" in r["description"] and r["direction"] == "b>a" for r in validated)
    ocean = next(r for r in validated if r["keywords"] == ["ocean"] and r["group"] == "all")
    assert ocean["prevalence_b"] > 0.5 > ocean["prevalence_a"] and ocean["effect_ci"][0] > 0
    null = list(read_jsonl(run_dir / "null_control.jsonl"))
    assert not any(r["validated"] for r in null)
    assert all(set(REQUIRED) <= set(row) for row in null)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["main"]["validated"] == len(validated) and summary["null"]["validated"] == 0
    assert all(set(r["effect_ci_fcr"] or []) and r["fcr_level"] == summary["main"]["fcr_level"] for r in validated)
    assert all("replication" in r for r in rows) and summary["main"]["replication"]["status"] == "not run"
    html = (run_dir / "report.html").read_text()
    assert "ocean" in html and "null control" in html.lower()


def test_no_difference_validates_nothing(tmp_path):
    """Both sides are the same fake model: what discovery proposes is chance, and must not validate."""
    run_dir = run(tmp_path, generate__b={"model": "fake:words"})
    rows = list(read_jsonl(run_dir / "hypotheses.jsonl"))
    tested = [r for r in rows if r["p_value"] is not None]
    assert len(tested) >= 5, "the test needs chance hypotheses to test, or it proves nothing"
    assert not [r for r in rows if r["validated"]]


def test_hypotheses_come_from_discovery_prompts_only(tmp_path):
    run_dir = run(tmp_path, generate__b=STRONG)
    splits = {p["id"]: p["split"] for p in read_jsonl(run_dir / "stages/prompts/prompts.jsonl")}
    for row in read_jsonl(run_dir / "stages/propose/hypotheses.jsonl"):
        for ids in row["evidence"].values():
            assert all(splits[sample_id.split(":")[1]] == "discovery" for sample_id in ids)
    for row in read_jsonl(run_dir / "hypotheses.jsonl"):
        for examples in row["examples"].values():
            assert all(splits[e["sample_id"].split(":")[1]] == "validation" for e in examples)


def test_small_groups_are_skipped_with_a_reason(tmp_path):
    run_dir = run(tmp_path, per_group=6, generate__b=STRONG)
    summary = json.loads((run_dir / "summary.json").read_text())
    reasons = {s["group"]: s["reason"] for s in summary["main"]["skipped_groups"]}
    assert set(reasons) == {"g0", "g1", "g2"} and all("validation prompts" in r for r in reasons.values())


def test_changing_q_reruns_from_propose_which_skips_groups_by_q(tmp_path, caplog):
    path = fake_config(tmp_path, per_group=16, generate__b=STRONG)
    pipeline.run(load_config(path), RunDir(tmp_path / "run"))
    caplog.set_level("INFO", logger="lmdelta")
    pipeline.run(load_config(path, ["decide.q=0.1"]), RunDir(tmp_path / "run"))
    assert "group    done before" in caplog.text and "propose  running (changed: decide.q" in caplog.text


def test_cli_prints_findings_and_report_rerenders(tmp_path):
    path = fake_config(tmp_path, per_group=16, generate__b=STRONG)
    result = CliRunner().invoke(main, ["run", str(path), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "tested hypotheses validated at q = 0.05" in result.output and "null control" in result.output
    assert "replication: not run: no confirmation prompts; set prompts.confirmation_fraction" in result.output
    assert "* adjusted for having been selected among" in result.output
    assert "report:" in result.output
    (tmp_path / "run/report.html").unlink()
    again = CliRunner().invoke(main, ["report", str(tmp_path / "run")])
    assert again.exit_code == 0 and (tmp_path / "run/report.html").exists()
