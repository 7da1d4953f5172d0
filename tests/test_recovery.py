"""Damaged, missing or stale outputs, and two runs in one directory: detected, recovered, never mixed.

Every recovery instruction an error message gives is followed here, to check that it works.
"""

import re
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.cli import main
from lmdelta.config import load_config
from lmdelta.errors import StageError
from lmdelta.rundir import RunDir, read_jsonl

RESULTS = (
    "hypotheses.jsonl",
    "summary.json",
    "config.yaml",
    "stages/generate/samples.jsonl",
    "stages/decide/decisions.jsonl",
)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def finished(tmp_path):
    """A finished run on fake models, and a byte copy of its results."""
    config = fake_config(tmp_path, per_group=8)
    run_dir = tmp_path / "run"
    result = invoke("run", config, "--run-dir", run_dir)
    assert result.exit_code == 0, result.output
    return config, run_dir, snapshot(run_dir)


def snapshot(run_dir):
    return {name: (run_dir / name).read_bytes() for name in RESULTS}


def damage_line(path, number=1):
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = "garbage\n"
    path.write_text("".join(lines))


@pytest.mark.parametrize(
    "name",
    [
        "stages/generate/samples.jsonl",
        "stages/generate/items.jsonl",
        "stages/propose/hypotheses.jsonl",
        "hypotheses.jsonl",
    ],
)
def test_a_damaged_output_reruns_its_stage_and_the_results_come_back(finished, name):
    config, run_dir, before = finished
    damage_line(run_dir / name)
    result = invoke("run", config, "--run-dir", run_dir)
    assert result.exit_code == 0, result.output
    assert "outputs damaged: " + name in result.output
    assert snapshot(run_dir) == before


def test_a_deleted_stage_folder_is_recomputed(finished):
    """The audit's sequence: delete a stage folder, then re-run with a downstream change."""
    config, run_dir, before = finished
    shutil.rmtree(run_dir / "stages/generate")
    result = invoke("run", config, "--run-dir", run_dir, "--set", "validate.n_resamples=3000")
    assert result.exit_code == 0, result.output
    assert "generate is missing" in result.output or "samples.jsonl is missing" in result.output
    assert (run_dir / "stages/generate/samples.jsonl").read_bytes() == before["stages/generate/samples.jsonl"]


def test_the_advice_for_damaged_results_works(finished):
    _, run_dir, before = finished
    damage_line(run_dir / "hypotheses.jsonl")
    refused = invoke("report", run_dir)
    assert refused.exit_code == 2 and "line 1 is not valid JSON" in refused.output
    command = re.search(r"`(lmdelta run [^`]+)`", refused.output).group(1)
    repaired = invoke(*command.split()[1:])
    assert repaired.exit_code == 0, repaired.output
    assert snapshot(run_dir) == before
    assert invoke("report", run_dir).exit_code == 0


def test_a_rerun_that_fails_midway_leaves_the_config_that_made_the_results(finished, monkeypatch):
    config, run_dir, before = finished
    from lmdelta.stages import validate

    def fail(ctx, config):
        raise StageError("The judge went away.", "Try again later.")

    monkeypatch.setattr(validate, "run", fail)
    result = invoke("run", config, "--run-dir", run_dir, "--set", "generate.a.label=OLDMODEL")
    assert result.exit_code == 2 and "The judge went away" in result.output
    assert snapshot(run_dir) == before
    assert invoke("report", run_dir).exit_code == 0
    assert "OLDMODEL" not in (run_dir / "report.html").read_text()


HOLD = """
import sys
from lmdelta.rundir import RunDir
with RunDir(sys.argv[1]).lock():
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_second_run_in_a_busy_directory_is_refused_and_changes_nothing(finished, tmp_path):
    config, run_dir, before = finished
    (tmp_path / "other").mkdir()
    other = fake_config(tmp_path / "other", per_group=8, generate__b={"model": "fake:words"})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        for args in (("run", other, "--run-dir", run_dir), ("report", run_dir)):
            result = invoke(*args)
            assert result.exit_code == 2, result.output
            assert f"in use by another lmdelta process (pid {holder.pid}" in result.output
        dry = invoke("run", other, "--run-dir", run_dir, "--dry-run")
        assert dry.exit_code == 0 and "a run now would be refused" in dry.output
    finally:
        holder.communicate("\n")
    assert snapshot(run_dir) == before


def test_a_stage_record_without_its_files_is_not_trusted(tmp_path):
    """A complete generate record whose folder is gone (the audit's crash) re-runs generate."""
    config = load_config(fake_config(tmp_path, per_group=8), [])
    run_dir = RunDir(tmp_path / "run")
    pipeline.run(config, run_dir)
    shutil.rmtree(run_dir.stage_dir("generate"))
    plan = pipeline.plan(config, run_dir, tmp_path / "cache")
    assert plan.reason["generate"].startswith("outputs damaged")
    assert plan.reason["embed"] == "upstream generate will re-run"
    pipeline.run(config, run_dir)
    assert len(list(read_jsonl(run_dir.stage_dir("generate") / "samples.jsonl"))) > 0
