import json

import pytest

from lmdelta import RUN_FORMAT
from lmdelta.errors import RunDirError
from lmdelta.rundir import JsonlAppender, RunDir, read_jsonl


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
    assert RunDir(tmp_path / "run").stage_record("prompts")["counts"] == {"prompts": 3}
    assert not list((tmp_path / "run").glob(".*tmp*"))
