"""heap.give_back returns freed memory between stages: the collector, Arrow's pool and glibc's malloc_trim,
each called when present and skipped where the platform lacks it; the pipeline calls it after every stage."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import fake_config

from lmdelta import heap, pairdata, pipeline
from lmdelta.config import load_config
from lmdelta.pairdata import PairData
from lmdelta.rundir import RunDir


def test_give_back_releases_arrows_pool_and_trims_the_c_heap(monkeypatch):
    calls = []
    pool = types.SimpleNamespace(release_unused=lambda: calls.append("arrow"))
    monkeypatch.setitem(sys.modules, "pyarrow", types.SimpleNamespace(default_memory_pool=lambda: pool))
    monkeypatch.setattr(heap, "_malloc_trim", lambda: lambda pad: calls.append(("trim", pad)))
    heap.give_back()
    assert calls == ["arrow", ("trim", 0)]


def test_give_back_skips_what_the_platform_lacks(monkeypatch):
    monkeypatch.delitem(sys.modules, "pyarrow", raising=False)  # never imported only to release it
    monkeypatch.setattr(heap, "_malloc_trim", lambda: None)  # no glibc (macOS, musl)
    heap.give_back()
    assert "pyarrow" not in sys.modules


def test_malloc_trim_is_found_or_absent_without_error():
    heap._malloc_trim.cache_clear()
    trim = heap._malloc_trim()
    assert trim is None or trim(0) in (0, 1)


def test_the_pipeline_gives_memory_back_after_every_stage(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "give_back", lambda: calls.append(1))
    the_plan = pipeline.run(load_config(fake_config(tmp_path)), RunDir(tmp_path / "run"))
    assert len(calls) == len(the_plan.reason) and len(calls) > 5


def _rss_file_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("RssFile:")[1].split()[0]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssFile from /proc (Linux)")
def test_release_mapped_lets_go_of_the_pages_read_and_the_data_stays(tmp_path):
    """A memory-mapped array's pages read count towards the RSS (0.5 GB of vectors at 2,000,000 answers); let go,
    they leave the resident set, and reading again gives the same values."""
    path = tmp_path / "vectors.npy"
    np.save(path, np.arange(8 * 2**20, dtype=np.float64).reshape(-1, 64))  # 64 MiB
    mapped = np.load(path, mmap_mode="r")
    rows = np.arange(0, mapped.shape[0], 7)
    data = PairData([], [], mapped, {})
    before = _rss_file_mib()
    found = data.vectors_of(rows)
    assert np.array_equal(found, np.arange(8 * 2**20, dtype=np.float64).reshape(-1, 64)[rows])
    float(mapped.sum())  # every page read
    read = _rss_file_mib()
    heap.release_mapped(mapped)
    assert read - before > 48 and _rss_file_mib() < read - 48
    assert np.array_equal(mapped[rows], found)
    heap.release_mapped(np.zeros(3))  # not mapped: nothing happens
    assert data.vectors_of(np.array([], dtype=int)).shape == (0, 64)


def test_vectors_are_copied_a_chunk_at_a_time_each_chunk_let_go(monkeypatch):
    """vectors_of lets the mapped pages go after every chunk of rows, so a read of 600,000 rows holds one chunk's
    stretch of the file, not all of it; the rows come back in their order, equal to one fancy-indexing read."""
    vectors = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    released = []
    monkeypatch.setattr(pairdata, "VECTOR_CHUNK", 8)
    monkeypatch.setattr(pairdata.heap, "release_mapped", released.append)
    rows = np.array([3, 1, 49, 7, 7, *range(10, 40)])
    found = PairData([], [], vectors, {}).vectors_of(rows)
    assert np.array_equal(found, vectors[rows]) and found.dtype == vectors.dtype
    assert len(released) == -(-len(rows) // 8)
