"""Kill a real `lmdelta run` mid-generate, re-run it, and check nothing finished was redone.

The fake model stalls after a known number of answers (LMDELTA_FAKE_STALL_AFTER), so the run is
interrupted at the same point on a fast or a slow machine: no race with the kill.
"""

import os
import signal
import subprocess
import sys
import time

import yaml
from conftest import write_bank

from lmdelta.rundir import RunDir, read_jsonl

N_PROMPTS, SAMPLES, BATCH = 24, 2, 2
TOTAL = N_PROMPTS * SAMPLES * 2
STALL_AFTER = 10  # answers side a gives before its generator stops answering


def config(tmp_path):
    data = {
        "prompts": {"source": str(write_bank(tmp_path / "bank.jsonl", n_groups=3, per_group=8))},
        "generate": {
            "a": {"model": "fake:words"},
            "b": {"model": "fake:words", "backend_args": {"topic_words": ["sea"], "topic_rate": 0.5}},
            "samples_per_prompt": SAMPLES,
            "batch_size": BATCH,
        },
        "embed": {"model": "fake:hashing"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def lmdelta(*args, stall: bool = False):
    env = os.environ.copy()
    env.pop("LMDELTA_FAKE_STALL_AFTER", None)
    if stall:
        env["LMDELTA_FAKE_STALL_AFTER"] = str(STALL_AFTER)
    return subprocess.Popen(
        [sys.executable, "-m", "lmdelta", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def wait_for_stall(process, items, timeout=300.0):
    """Until the stalled run has stored exactly the answers it gave before stalling."""
    start = time.monotonic()
    while not (items.exists() and items.read_text().count("\n") >= STALL_AFTER):
        if process.poll() is not None:
            raise AssertionError("the run ended before it stalled:\n" + process.stdout.read())
        if time.monotonic() - start > timeout:
            raise AssertionError("the run never reached the generate stage")
        time.sleep(0.01)


def test_killed_run_resumes_without_redoing_finished_items(tmp_path):
    path = config(tmp_path)
    run_dir = tmp_path / "interrupted"
    items = run_dir / "stages/generate/items.jsonl"
    process = lmdelta("run", path, "--run-dir", run_dir, stall=True)
    wait_for_stall(process, items)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = [row["key"] for row in read_jsonl(items)]
    assert len(finished) == STALL_AFTER
    assert RunDir(run_dir).stage_record("generate").status == "running"

    resumed = lmdelta("run", path, "--run-dir", run_dir)  # the killed run's lock died with it
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert "resuming an interrupted run" in output
    counts = RunDir(run_dir).stage_record("generate").counts
    assert counts["a"]["reused"] + counts["b"]["reused"] == len(finished)
    assert counts["a"]["generated"] + counts["b"]["generated"] == TOTAL - len(finished)
    keys = [row["key"] for row in read_jsonl(items)]
    assert keys[: len(finished)] == finished and len(keys) == len(set(keys)) == TOTAL

    clean_dir = tmp_path / "clean"
    clean = lmdelta("run", path, "--run-dir", clean_dir)
    assert clean.wait(timeout=300) == 0
    for name in ("stages/generate/samples.jsonl", "hypotheses.jsonl", "summary.json"):
        assert (run_dir / name).read_text() == (clean_dir / name).read_text(), name
    assert not [p for p in run_dir.rglob("*.tmp*")]


def test_sigterm_marks_the_stage_interrupted(tmp_path):
    path = config(tmp_path)
    run_dir = tmp_path / "run"
    process = lmdelta("run", path, "--run-dir", run_dir, stall=True)
    wait_for_stall(process, run_dir / "stages/generate/items.jsonl")
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 130, output
    assert "Run the same command again to resume" in output and "Traceback" not in output
    assert RunDir(run_dir).stage_record("generate").status == "interrupted"
