"""The weight analysis where users meet it: the `weights` stage of a run (when both sides are weights on this
machine), `lmdelta weights A B`, and the ground-truth scorecard's line beside the null finetune."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_weights import Q, base_tensors, planted, write_model  # noqa: F401  (planted: a fixture)

from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.errors import ConfigError
from lmdelta.groundtruth.lines import weights_line
from lmdelta.groundtruth.weights import card_entry
from lmdelta.rundir import RunDir
from lmdelta.stages import weights as stage
from lmdelta.stages.contract import StageContext
from lmdelta.weights import WEIGHTS, WEIGHTS_SUMMARY


def config(*overrides: str):
    return load_config(None, list(overrides), env={})


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ((), "both sides load the same weights"),
        (("generate.a.model=fake:words", "generate.b.model=fake:words"), "not a model whose weights are on"),
        (("prompts.source=corpus",), "saved outputs"),
        (("weights.run=never",), "weights.run is never"),
    ],
)
def test_runs_without_weights_to_compare_say_why(overrides, reason):
    assert reason in stage.why_not(config(*overrides))


def test_an_adapter_counts_only_on_side_bs_copy_of_side_as_model(tmp_path, planted):  # noqa: F811
    a, b = planted
    assert stage.why_not(config(f"generate.a.model={a}", f"generate.b.model={b}")) is None
    assert stage.why_not(config(f"generate.a.model={a}", f"generate.b.model={a}", f"generate.b.adapter={b}")) is None
    other = config(f"generate.a.model={a}", f"generate.b.model={b}", f"generate.b.adapter={b}")
    assert "another model" in stage.why_not(other)
    with pytest.raises(ConfigError, match="weights.run is always"):
        stage.check(config("weights.run=always"))


def test_the_stage_writes_the_analysis_at_the_root_and_clears_its_own_when_it_no_longer_applies(tmp_path, planted):  # noqa: F811
    a, b = planted
    run_dir = RunDir(tmp_path / "run")
    run_dir.claim()
    ctx = StageContext(run_dir, "weights", tmp_path / "cache")
    result = stage.run(ctx, config(f"generate.a.model={a}", f"generate.b.model={b}"))
    assert result.counts["matrices"] == 15 and result.counts["matrices_with_spikes"] >= 1
    assert (run_dir.root / WEIGHTS).exists() and (run_dir.root / WEIGHTS_SUMMARY).exists()
    run_dir.update_stage("weights", counts=result.counts)
    gone = stage.run(ctx, config("weights.run=never"))
    assert gone.counts == {"status": "not run: weights.run is never"}
    assert not (run_dir.root / WEIGHTS).exists()


def test_files_the_stage_did_not_write_are_left_alone(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.claim()
    (run_dir.root / WEIGHTS_SUMMARY).write_text("{}")  # written by `lmdelta weights A B --run-dir RUN`
    stage.run(StageContext(run_dir, "weights", tmp_path / "cache"), config())
    assert (run_dir.root / WEIGHTS_SUMMARY).exists()


def test_the_command_prints_where_the_change_sits(tmp_path, planted):  # noqa: F811
    a, b = planted
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["weights", str(a), str(b), "--run-dir", str(out), "--set", "top_k=4"])
    assert result.exit_code == 0, result.output
    assert "15 matrices compared (dense)" in result.output
    matrices = [line for line in result.output.splitlines() if line.strip().endswith("above the edge)")]
    assert Q.format(1) in matrices[0]  # the planted edit is the most changed matrix
    assert json.loads((out / WEIGHTS_SUMMARY).read_text())["options"]["top_k"] == 4


def test_the_command_names_a_bad_option_and_a_missing_model(tmp_path, planted):  # noqa: F811
    a, _ = planted
    bad = CliRunner().invoke(main, ["weights", str(a), str(a), "--run-dir", str(tmp_path), "--set", "top_k=0"])
    assert bad.exit_code != 0 and "weights.top_k" in bad.output
    missing = CliRunner().invoke(main, ["weights", str(a), str(tmp_path / "nowhere"), "--run-dir", str(tmp_path)])
    assert missing.exit_code != 0 and "nowhere" in missing.output


def test_the_scorecard_says_how_far_beyond_the_null_finetune_and_where():
    def summary(scale: float) -> dict:
        layers = {str(i): {"relative_change": scale * (1 + i)} for i in range(4)}
        return {"totals": {"matrices": 8, "relative_change": scale}, "by_layer": layers, "by_module": {}}

    main_summary = {**summary(0.02), "null_finetune": {"ratio": 2.0}}
    main_summary["by_layer"]["0"]["relative_change"] = 0.2  # layer 0: ten times the null's
    entry = card_entry(main_summary, summary(0.01))
    assert entry["ratio_to_null"] == 2.0 and entry["layers_beyond_null"][0]["layer"] == "0"
    assert entry["layers_beyond_null"][0]["ratio_to_null"] == pytest.approx(20.0)
    line = weights_line(entry)
    assert "2.000%" in line and "2.00x the null finetune's" in line and "layers 0 (20.00x)" in line
    assert "null" not in weights_line(card_entry(summary(0.02), None))


def test_base_tensors_are_float32():
    assert all(v.dtype == np.float32 for v in base_tensors().values())
