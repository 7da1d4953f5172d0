import errno
import json
import os
import stat
import subprocess
import sys

import pytest

from lmdelta import RUN_FORMAT
from lmdelta.errors import RunDirError
from lmdelta.records import StageRecord
from lmdelta.rundir import (
    JsonlAppender,
    RunDir,
    atomic_file,
    atomic_write_text,
    read_jsonl,
    salvage_jsonl,
    write_jsonl,
)


def test_torn_last_line_is_skipped_and_repaired(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"k": 1}\n{"k": 2}\n{"k": 3')  # a writer killed mid-line
    assert [row["k"] for row in read_jsonl(path)] == [1, 2]
    with JsonlAppender(path) as appender:
        appender.write([{"k": 4}])
    assert [row["k"] for row in read_jsonl(path)] == [1, 2, 4]


def test_damage_before_the_last_line_raises(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"k": 1}\nbroken\n{"k": 3}\n')
    with pytest.raises(RunDirError, match="line 2"):
        list(read_jsonl(path))


def test_refuses_a_foreign_folder_and_another_format(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not an lmdelta run directory"):
        RunDir(tmp_path).check_usable()
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"format": RUN_FORMAT + 1, "version": "9.9"}))
    with pytest.raises(RunDirError, match="run format"):
        RunDir(run).check_usable()


def test_stage_updates_are_persisted(tmp_path):
    run = RunDir(tmp_path / "run")
    run.update_stage("prompts", status="complete", counts={"prompts": 3})
    assert RunDir(tmp_path / "run").stage_record("prompts").counts == {"prompts": 3}
    assert not list((tmp_path / "run").glob(".*tmp*"))


# --- atomic writes ---------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_text(path, "old\n")
    with pytest.raises(OSError):
        with atomic_file(path) as handle:
            handle.write("half of the new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_planted_symlinks_at_temp_names_are_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    for name in [f".report.html.tmp-{pid}" for pid in range(os.getpid() - 5, os.getpid() + 5)] + [".report.html.tmp"]:
        (run / name).symlink_to(victim)
    atomic_write_text(run / "report.html", "<html></html>")
    assert victim.read_text() == "precious"
    assert not (run / "report.html").is_symlink() and (run / "report.html").read_text() == "<html></html>"


def test_written_files_get_the_mode_a_plain_open_gives(tmp_path):
    saved = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(saved)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


# --- the run lock --------------------------------------------------------------------------------

HOLD = """
import sys
from lmdelta.rundir import RunDir
with RunDir(sys.argv[1]).lock():
    print("locked", flush=True)
    sys.stdin.readline()
"""


def hold_lock(root):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_process_is_refused_and_told_who_holds_the_directory(tmp_path):
    holder = hold_lock(tmp_path / "run")
    try:
        assert f"pid {holder.pid}" in RunDir(tmp_path / "run").in_use_by()
        with pytest.raises(RunDirError, match=f"in use by another lmdelta process \\(pid {holder.pid} on "):
            with RunDir(tmp_path / "run").lock():
                pass
    finally:
        holder.communicate("\n")
    with RunDir(tmp_path / "run").lock():  # free again once the holder is done
        assert RunDir(tmp_path / "run").in_use_by() is None


def test_the_lock_dies_with_a_killed_holder(tmp_path):
    holder = hold_lock(tmp_path / "run")
    holder.kill()
    holder.wait()
    with RunDir(tmp_path / "run").lock():
        pass


def test_the_lock_is_reentrant_within_a_process_and_sweeps_leftover_temp_files(tmp_path):
    run = RunDir(tmp_path / "run")
    run.update_stage("generate", status="running")
    leftovers = [run.stage_dir("generate") / ".samples.jsonl.tmp-123", run.root / ".manifest.json.abc123.tmp"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial")
    nested = run.root / "null_experiment"
    RunDir(nested).update_stage("generate", status="running")
    (nested / ".keep.json.x1.tmp").write_text("another run directory's")
    with run.lock():
        with run.lock():
            pass
        assert not any(p.exists() for p in leftovers)
        assert (nested / ".keep.json.x1.tmp").exists()
    run.check_usable()  # the lock file is no foreign content


def test_a_run_dir_inside_a_file_is_refused_clearly(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file, so the run directory"):
        RunDir(tmp_path / "file" / "sub").check_usable()


# --- recorded outputs ----------------------------------------------------------------------------


def test_recorded_outputs_report_damage_and_loss(tmp_path):
    run = RunDir(tmp_path / "run")
    stage = run.stage_dir("generate")
    stage.mkdir(parents=True)
    (stage / "samples.jsonl").write_text('{"k": 1}\n{"k": 2}\n')
    (stage / "items.jsonl").write_text('{"k": 1}\n')
    (run.root / "report.html").write_text("<html>")
    record = StageRecord(outputs=run.record_outputs("generate", views=["report.html"]))
    assert run.damaged_outputs(record) == []
    (run.root / "report.html").write_text("<html>re-rendered, a view: not a damage</html>")
    (stage / "samples.jsonl").write_text('{"k": 1}\ngarbage\n')  # same size, other content
    (stage / "items.jsonl").unlink()
    assert sorted(run.damaged_outputs(record)) == [
        "stages/generate/items.jsonl is missing",
        "stages/generate/samples.jsonl changed after the stage finished",
    ]


def test_salvage_drops_damaged_lines_and_keeps_the_rest(tmp_path, caplog):
    path = tmp_path / "items.jsonl"
    path.write_text('{"k": 1}\ngarbage\n[1, 2]\n{"k": 3}\n')
    assert [row["k"] for row in salvage_jsonl(path)] == [1, 3]
    assert "2 damaged line(s)" in caplog.text
    assert [row["k"] for row in read_jsonl(path)] == [1, 3]


def test_answers_with_unicode_line_separators_are_stored_and_read_whole(tmp_path):
    """json.dumps leaves U+2028, U+2029 and U+0085 unescaped: only "\\n" ends a row (they were cut and dropped)."""
    path = tmp_path / "items.jsonl"
    texts = ["one\u2028two", "three\u2029four", "five\u0085six", "seven\x1cEight"]
    with JsonlAppender(path) as appender:
        appender.write([{"k": i, "text": t} for i, t in enumerate(texts)])
    assert [row["text"] for row in salvage_jsonl(path)] == texts
    assert [row["text"] for row in read_jsonl(path)] == texts
    write_jsonl(tmp_path / "copy.jsonl", ({"text": t} for t in texts))
    assert [row["text"] for row in read_jsonl(tmp_path / "copy.jsonl")] == texts
