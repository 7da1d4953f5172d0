"""When the machine says no (a full disk, a permission, memory) or the config can only fail later:
one clear message with the fix, exit code 2, earlier outputs byte-identical, no temp files left.

Faults are injected deterministically (patched calls), so the tests do not depend on the user
running them (root ignores file modes) or on a real full disk.
"""

import builtins
import errno
import pathlib
import sqlite3

import pytest
from click.testing import CliRunner
from conftest import fake_config

from lmdelta import rundir
from lmdelta.cli import main

OUTPUTS = (
    "hypotheses.jsonl",
    "summary.json",
    "config.yaml",
    "report.html",
    "stages/generate/samples.jsonl",
    "stages/decide/decisions.jsonl",
)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(run_dir):
    return {name: (run_dir / name).read_bytes() for name in OUTPUTS}


def assert_clear_refusal(result, *phrases):
    assert result.exit_code == 2, result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    assert "please report it" not in result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


def temp_files(root):
    return [p for p in root.rglob("*") if rundir.TEMP.match(p.name)]


@pytest.fixture
def finished(tmp_path):
    config = fake_config(tmp_path, per_group=8)
    run_dir = tmp_path / "run"
    assert invoke("run", config, "--run-dir", run_dir).exit_code == 0
    return config, run_dir, snapshot(run_dir)


def fail_on(monkeypatch, target, name, error, after=0):
    """Make `target.name` raise `error` from its (after + 1)-th call on."""
    original, calls = getattr(target, name), [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, failing)


def test_a_full_disk_during_generate_stops_cleanly_and_the_rerun_finishes(tmp_path, monkeypatch):
    config = fake_config(tmp_path, per_group=8)
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run/stages/generate/items.jsonl"))
    with monkeypatch.context() as patch:
        fail_on(patch, rundir.JsonlAppender, "write", full, after=2)
        result = invoke("run", config, "--run-dir", tmp_path / "run")
    assert_clear_refusal(
        result,
        "No space left on the disk while writing",
        "items.jsonl",
        "Free some space",
        "run the same command again",
    )
    assert rundir.RunDir(tmp_path / "run").stage_record("generate").status == "interrupted"
    assert temp_files(tmp_path / "run") == []
    assert invoke("run", config, "--run-dir", tmp_path / "run").exit_code == 0
    assert invoke("run", config, "--run-dir", tmp_path / "clean").exit_code == 0
    assert snapshot(tmp_path / "run").keys() == snapshot(tmp_path / "clean").keys()
    assert (tmp_path / "run/hypotheses.jsonl").read_bytes() == (tmp_path / "clean/hypotheses.jsonl").read_bytes()


def test_a_full_disk_while_writing_a_whole_file_leaves_no_temp_file(finished, monkeypatch):
    config, run_dir, before = finished
    fail_on(monkeypatch, rundir.os, "fsync", OSError(errno.ENOSPC, "No space left on device"))
    result = invoke("run", config, "--run-dir", run_dir, "--set", "decide.q=0.1")
    assert_clear_refusal(result, "No space left on the disk")
    monkeypatch.undo()
    assert temp_files(run_dir) == [] and snapshot(run_dir) == before


def test_a_full_cache_disk_names_the_cache(tmp_path, monkeypatch):
    from lmdelta.embedcache import EmbeddingCache

    fail_on(monkeypatch, EmbeddingCache, "put_many", sqlite3.OperationalError("database or disk is full"))
    result = invoke("run", fake_config(tmp_path, per_group=8), "--run-dir", tmp_path / "run")
    assert_clear_refusal(result, "The disk holding the lmdelta cache", "LMDELTA_CACHE_DIR")


def test_an_unreadable_input_file_says_so(finished, monkeypatch):
    config, run_dir, before = finished
    bank = config.parent / "other-bank.jsonl"
    bank.write_bytes((config.parent / "bank.jsonl").read_bytes())
    real_read = pathlib.Path.read_bytes

    def guarded(path):
        if path == bank:
            raise PermissionError(errno.EACCES, "Permission denied", str(bank))
        return real_read(path)

    monkeypatch.setattr(pathlib.Path, "read_bytes", guarded)
    result = invoke("run", config, "--run-dir", run_dir, "--set", f"prompts.source={bank}")
    assert_clear_refusal(result, f"Permission denied: {bank}", "Give this user access")
    monkeypatch.undo()
    assert snapshot(run_dir) == before


def test_a_run_dir_that_cannot_be_written_says_so(finished, monkeypatch):
    config, run_dir, before = finished
    real_open = builtins.open

    def read_only(file, mode="r", *args, **kwargs):
        if str(file).startswith(str(run_dir)) and any(m in mode for m in "wa+"):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only)
    result = invoke("run", config, "--run-dir", run_dir)
    assert_clear_refusal(result, f"Cannot write to the run directory {run_dir}", "permissions")
    monkeypatch.undo()
    assert snapshot(run_dir) == before


def test_a_run_dir_below_a_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = invoke("run", fake_config(tmp_path), "--run-dir", tmp_path / "afile" / "sub")
    assert_clear_refusal(result, "is a file, so the run directory", "Choose another --run-dir")


class OutOfMemoryError(RuntimeError):  # named as torch names the CUDA allocator's
    pass


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried"),
        OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    ],
    ids=["python", "torch-cpu", "torch-cuda"],
)
def test_running_out_of_memory_names_the_settings_to_lower(finished, monkeypatch, error):
    config, run_dir, before = finished
    from lmdelta.stages import validate

    fail_on(monkeypatch, validate, "validate_all", error)
    result = invoke("run", config, "--run-dir", run_dir, "--set", "validate.n_resamples=2500")
    assert_clear_refusal(result, "ran out of memory", "prompts.limit")
    monkeypatch.undo()
    assert snapshot(run_dir) == before


@pytest.mark.parametrize(
    "overrides, phrase",
    [
        (["validate.judge=unitary"], "validate.judge = unitary"),
        (["validate.extra_judges=[openai-compatible/x@http://127.0.0.1:9/v1]"], "validate.extra_judges"),
        (["llm.proposer.model=openai/gpt-4.1-mini"], "the LLM proposer"),
    ],
)
def test_configs_that_would_fail_in_validate_are_refused_before_anything_runs(finished, overrides, phrase):
    config, run_dir, before = finished
    sets = [arg for o in overrides for arg in ("--set", o)]
    for extra in (["--dry-run"], []):
        result = invoke("run", config, "--run-dir", run_dir, *sets, *extra)
        assert_clear_refusal(result, "llm.judge.model is not set", phrase, "Set llm.judge.model")
    assert snapshot(run_dir) == before


def test_generative_validation_in_corpus_mode_is_refused_by_the_dry_run(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(f'{{"prompt": "q{i}", "side": "{s}", "text": "answer {i} {s}"}}\n' for i in range(20) for s in "ab")
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"corpus: {{path: {corpus}}}\nembed: {{model: 'fake:hashing'}}\n"
        "validate: {generative: true}\nllm: {judge: {model: 'openai/gpt-4.1-mini'}}\n"
    )
    result = invoke("run", config, "--run-dir", tmp_path / "run", "--dry-run")
    assert_clear_refusal(result, "validate.generative", "corpus")
    assert not (tmp_path / "run").exists()


def test_an_unpriced_model_under_a_budget_is_refused_by_the_dry_run(finished):
    config, run_dir, before = finished
    result = invoke(
        "run",
        config,
        "--run-dir",
        run_dir,
        "--dry-run",
        "--set",
        "budget.usd=5",
        "--set",
        "llm.judge.model=gemini/gemini-1.5-flash",
        "--set",
        "validate.judge=unitary",
    )
    assert_clear_refusal(result, "no price is known for gemini/gemini-1.5-flash", "llm.prices")
    assert snapshot(run_dir) == before
