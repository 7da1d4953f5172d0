"""Kill a real `lmdelta run` mid-generate, re-run it, and check nothing finished was redone."""

import os
import signal
import subprocess
import sys
import time

import yaml

from conftest import write_bank
from lmdelta.rundir import RunDir, read_jsonl

N_PROMPTS, SAMPLES = 24, 2
TOTAL = N_PROMPTS * SAMPLES * 2


def config(tmp_path, tiny_model):
    data = {
        "prompts": {"source": str(write_bank(tmp_path / "bank.jsonl", n_groups=3, per_group=8))},
        "generate": {"a": {"model": str(tiny_model), "dtype": "float32"},
                     "b": {"model": str(tiny_model), "dtype": "float32", "system_prompt": "Talk about the sea."},
                     "samples_per_prompt": SAMPLES, "max_new_tokens": 24, "batch_size": 2},
        "embed": {"model": "fake:hashing"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def lmdelta(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "lmdelta", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=os.environ.copy(), **kwargs)


def kill_mid_generate(process, items, deadline=120.0):
    """SIGKILL the run once some, but not all, answers are stored."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if items.exists() and 10 <= items.read_text().count("\n") < TOTAL - 20:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return
        if process.poll() is not None:
            raise AssertionError("the run finished before it could be interrupted:\n" + process.stdout.read())
        time.sleep(0.01)
    raise AssertionError("the run never reached the generate stage")


def test_killed_run_resumes_without_redoing_finished_items(tmp_path, tiny_model):
    path = config(tmp_path, tiny_model)
    run_dir = tmp_path / "interrupted"
    items = run_dir / "stages/generate/items.jsonl"
    kill_mid_generate(lmdelta("run", path, "--run-dir", run_dir), items)
    finished = [row["key"] for row in read_jsonl(items)]
    assert 0 < len(finished) < TOTAL
    assert RunDir(run_dir).stage_record("generate")["status"] == "running"

    resumed = lmdelta("run", path, "--run-dir", run_dir)
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert "resuming an interrupted run" in output
    counts = RunDir(run_dir).stage_record("generate")["counts"]
    assert counts["a"]["reused"] + counts["b"]["reused"] == len(finished)
    assert counts["a"]["generated"] + counts["b"]["generated"] == TOTAL - len(finished)
    keys = [row["key"] for row in read_jsonl(items)]
    assert keys[: len(finished)] == finished and len(keys) == len(set(keys)) == TOTAL

    clean_dir = tmp_path / "clean"
    clean = lmdelta("run", path, "--run-dir", clean_dir)
    assert clean.wait(timeout=300) == 0
    assert (run_dir / "stages/generate/samples.jsonl").read_text() == \
        (clean_dir / "stages/generate/samples.jsonl").read_text()


def test_sigterm_marks_the_stage_interrupted(tmp_path, tiny_model):
    path = config(tmp_path, tiny_model)
    run_dir = tmp_path / "run"
    process = lmdelta("run", path, "--run-dir", run_dir)
    items = run_dir / "stages/generate/items.jsonl"
    start = time.monotonic()
    while not (items.exists() and items.read_text().count("\n") >= 4) and time.monotonic() - start < 120:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 130, output
    assert "Run the same command again to resume" in output and "Traceback" not in output
    assert RunDir(run_dir).stage_record("generate")["status"] == "interrupted"
