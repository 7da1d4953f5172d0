"""The caches hold every prompt and answer: created readable by their owner only."""

import os
import stat

import pytest
from conftest import fake_config

from lmdelta import pipeline
from lmdelta.config import load_config
from lmdelta.filehash import file_sha256
from lmdelta.rundir import RunDir


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    saved = os.umask(0o022)
    yield
    os.umask(saved)


def test_a_new_cache_is_private(tmp_path, monkeypatch, open_umask):
    cache = tmp_path / "fresh" / "cache"
    monkeypatch.setenv("LMDELTA_CACHE_DIR", str(cache))
    pipeline.run(load_config(fake_config(tmp_path, per_group=6), []), RunDir(tmp_path / "run"))
    file_sha256(tmp_path / "bank.jsonl", cache)
    assert mode(cache) == 0o700
    for name in ("embeddings.sqlite", "file-hashes.json"):
        assert mode(cache / name) == 0o600, name


def test_an_existing_cache_folder_keeps_its_mode(tmp_path, monkeypatch, open_umask):
    shared = tmp_path / "team-cache"
    shared.mkdir(mode=0o770)
    os.chmod(shared, 0o770)
    monkeypatch.setenv("LMDELTA_CACHE_DIR", str(shared))
    pipeline.run(load_config(fake_config(tmp_path, per_group=6), []), RunDir(tmp_path / "run"))
    assert mode(shared) == 0o770 and mode(shared / "embeddings.sqlite") == 0o600


def test_the_llm_reply_cache_is_private(tmp_path, open_umask):
    from lmdelta.llm.cache import ResponseCache
    from lmdelta.llm.types import ChatResponse, Usage

    with ResponseCache(tmp_path / "new" / "llm.sqlite") as cache:
        cache.put("k", ChatResponse(text="an answer", usage=Usage(1, 1)))
    assert mode(tmp_path / "new") == 0o700
    assert all(mode(p) == 0o600 for p in (tmp_path / "new").iterdir())


def test_a_credential_in_backend_args_reaches_no_file_of_the_run(tmp_path):
    """Headers are passed through to the provider; one named like a secret never enters a manifest,
    an answer identity or the config written with the results."""
    config = fake_config(
        tmp_path,
        per_group=6,
        generate__b={"model": "fake:words", "backend_args": {"headers": {"X-Api-Key": "sk-SECRET-42"}}},
    )
    pipeline.run(load_config(config, []), RunDir(tmp_path / "run"))
    leaked = [p for p in (tmp_path / "run").rglob("*") if p.is_file() and b"sk-SECRET-42" in p.read_bytes()]
    assert leaked == []
