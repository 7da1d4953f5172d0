"""The generate stage's answers as mapped columns beside samples.jsonl: built once, read back field for field,
checked against the file they came from, rebuilt when stale or damaged, and never in the way of a read."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from test_sample_table import _samples

from lmdelta import samplecolumns, sampletable
from lmdelta.records import Sample
from lmdelta.rundir import write_jsonl
from lmdelta.sampletable import SampleTable


def _write(path: Path, samples: list[Sample]) -> Path:
    write_jsonl(path, (s.to_dict() for s in samples))
    return path


def test_a_large_file_is_read_through_mapped_columns_equal_to_its_records(tmp_path: Path) -> None:
    samples = _samples()
    path = _write(tmp_path / "samples.jsonl", samples)
    table = samplecolumns.load(path, threshold=0)
    assert (tmp_path / "samples.columns" / "meta.json").is_file()
    assert table == samples
    assert table.texts() == [s.text for s in samples]
    assert table._text.mapped and table._key.mapped
    assert table.nbytes() < 64  # the codes of the three repeated strings are mapped too: nothing is held
    rows = np.array([3, 0, 9])
    assert table.take(rows) == [samples[i] for i in rows]
    assert table.with_swapped(np.ones(len(samples), dtype=bool)).sides() == [
        "b" if s.side == "a" else "a" for s in samples
    ]


def test_the_folder_gets_the_run_directorys_permissions_and_a_first_build_logs_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())
    with caplog.at_level(logging.WARNING, logger="lmdelta.samplecolumns"):
        samplecolumns.load(path, threshold=0)
    assert not caplog.records
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "samples.columns").stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_small_file_is_read_into_memory_and_writes_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())
    assert samplecolumns.load(path) == _samples()  # far below COLUMNS_BYTES
    assert not (tmp_path / "samples.columns").exists()


def test_the_columns_are_built_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())
    samplecolumns.load(path, threshold=0)

    def refuse(*args: object) -> None:
        raise AssertionError("built again")

    monkeypatch.setattr(samplecolumns, "_build", refuse)
    assert samplecolumns.load(path, threshold=0) == _samples()


def test_columns_of_an_older_file_are_built_again(tmp_path: Path) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())
    held = samplecolumns.load(path, threshold=0)
    _write(path, _samples("again ") + _samples("more "))  # the stage ran again: a new file in its place
    os.utime(path, ns=(1, 1))  # even with a modification time that went backwards
    assert samplecolumns.load(path, threshold=0) == _samples("again ") + _samples("more ")
    assert held == _samples()  # a table opened before keeps reading the old columns


@pytest.mark.parametrize("damage", ["truncate", "meta", "missing"])
def test_damaged_columns_are_built_again(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())
    samplecolumns.load(path, threshold=0)
    folder = tmp_path / "samples.columns"
    if damage == "truncate":
        (folder / "text.utf8").write_bytes((folder / "text.utf8").read_bytes()[:10])
    elif damage == "meta":
        (folder / "meta.json").write_text("{not json", encoding="utf-8")
    else:
        (folder / "seed.u64").unlink()
    with caplog.at_level(logging.WARNING, logger="lmdelta.samplecolumns"):
        assert samplecolumns.load(path, threshold=0) == _samples()
    assert json.loads((folder / "meta.json").read_text(encoding="utf-8"))["rows"] == len(_samples())
    assert "damaged" in caplog.text


def test_a_torn_last_line_is_left_out_as_the_file_reader_does(tmp_path: Path) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"key": "torn", "te')
    assert samplecolumns.load(path, threshold=0) == _samples()


def test_a_builder_killed_mid_way_leaves_nothing_that_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())

    def killed(rows: object, folder: Path) -> None:
        (folder / "text.utf8").write_bytes(b"half")
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(samplecolumns, "_write", killed)
        with pytest.raises(KeyboardInterrupt):
            samplecolumns.load(path, threshold=0)
    assert not (tmp_path / "samples.columns").exists()
    assert not list(tmp_path.glob(".samples.columns.*.tmp"))
    leftover = tmp_path / ".samples.columns.abc.tmp"  # what a kill -9 would leave: swept by the next build
    leftover.mkdir()
    (leftover / "text.utf8").write_bytes(b"half")
    assert samplecolumns.load(path, threshold=0) == _samples()
    assert not leftover.exists()


def test_an_unwritable_folder_reads_the_file_into_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())

    def no_room(*args: object, **kwargs: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(samplecolumns.tempfile, "mkdtemp", no_room)
    with caplog.at_level(logging.WARNING, logger="lmdelta.samplecolumns"):
        table = samplecolumns.load(path, threshold=0)
    assert table == _samples()
    assert "No space left on device" in caplog.text and "into memory" in caplog.text


def test_a_seed_past_64_bits_reads_the_file_into_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    samples = _samples()
    samples[3] = Sample("p9", "b", 0, "big seed", 1, "stop", 2**70, "big")
    path = _write(tmp_path / "samples.jsonl", samples)
    with caplog.at_level(logging.WARNING, logger="lmdelta.samplecolumns"):
        table = samplecolumns.load(path, threshold=0)
    assert table == samples and isinstance(table, SampleTable)
    assert "outside the column's range" in caplog.text
    assert not (tmp_path / "samples.columns").exists()


def test_an_empty_file_has_empty_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "samples.jsonl", [])
    table = samplecolumns.load(path, threshold=0)
    assert len(table) == 0 and table.texts() == [] and table.is_b().tolist() == []


def test_many_prompts_and_finish_reasons_get_wider_codes(tmp_path: Path) -> None:
    samples = [Sample(f"p{k}", "a", 0, f"t{k}", 1, f"finish{k}", k, f"k{k}") for k in range(300)]
    path = _write(tmp_path / "samples.jsonl", samples)
    assert samplecolumns.load(path, threshold=0) == samples


def test_a_rebuild_while_a_reader_opens_never_gives_it_a_mixed_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that read the old meta.json when another process put new columns in place gets one file's
    answers, never the old meta's rows with the new files' texts."""
    path = _write(tmp_path / "samples.jsonl", _samples())
    samplecolumns.load(path, threshold=0)
    mapped, rebuilt = samplecolumns._mapped, []

    def rebuilt_meanwhile(directory: int, meta: dict) -> SampleTable:
        if not rebuilt:
            rebuilt.append(True)
            _write(path, _samples("new ") + _samples("more "))
            samplecolumns._build(path, samplecolumns.columns_folder(path))
        return mapped(directory, meta)

    monkeypatch.setattr(samplecolumns, "_mapped", rebuilt_meanwhile)
    table = samplecolumns.load(path, threshold=0)
    assert rebuilt and table == _samples("new ") + _samples("more ")


def test_a_rewrite_of_the_same_size_and_time_is_seen(tmp_path: Path) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples("old "))
    before = path.stat()
    samplecolumns.load(path, threshold=0)
    _write(path, _samples("new "))  # written by renaming a new file into place, as the generate stage does
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert samplecolumns.load(path, threshold=0) == _samples("new ")


def test_an_old_folder_left_by_a_killed_rebuild_is_swept_by_the_next_open(tmp_path: Path) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())
    samplecolumns.load(path, threshold=0)
    old = tmp_path / ".samples.columns.123.old.tmp"  # killed between putting the new folder in and removing this
    old.mkdir()
    (old / "text.utf8").write_bytes(b"x" * 100)
    assert samplecolumns.load(path, threshold=0) == _samples()
    assert not old.exists()


def test_mapped_columns_are_plain_arrays_that_still_count_as_mapped(tmp_path: Path) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())
    table = samplecolumns.load(path, threshold=0)
    buffer = table._text.buffer
    assert type(buffer) is np.ndarray  # slicing a plain view is as fast as memory
    assert table._text.mapped and table.nbytes() < 64


def test_reading_many_texts_lets_the_mapped_texts_and_offsets_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: list[np.ndarray] = []
    monkeypatch.setattr(sampletable.heap, "release_mapped", released.append)
    monkeypatch.setattr(sampletable, "MANY_ROWS", 5)
    table = samplecolumns.load(_write(tmp_path / "samples.jsonl", _samples()), threshold=0)
    table.texts(range(6))
    assert [r is table._text.buffer for r in released] == [True, False] and released[1] is table._text.starts


def test_valid_columns_are_used_when_leftovers_cannot_be_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "samples.jsonl", _samples())
    samplecolumns.load(path, threshold=0)
    (tmp_path / ".samples.columns.9.old.tmp").mkdir()

    def no_lock(lock: Path) -> None:
        raise PermissionError(13, "Permission denied", str(lock))

    monkeypatch.setattr(samplecolumns, "locked", no_lock)
    table = samplecolumns.load(path, threshold=0)
    assert table == _samples() and table._text.mapped
