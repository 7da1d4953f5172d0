"""The embed stage writes vectors a chunk at a time, reads them back memory-mapped, and an interrupted
stage keeps every finished chunk in the shared cache (the rerun embeds only the rest)."""

import numpy as np
import pytest

from lmdelta.backends.embedders.fake import HashingEmbedder
from lmdelta.config import load_config
from lmdelta.rundir import RunDir
from lmdelta.stages import embed
from lmdelta.stages.contract import StageContext


class Flaky(HashingEmbedder):
    """A hashing embedder that fails on its `fail_at`-th call (an interrupted stage)."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__({"name": "flaky"}, dim=16)
        self.fail_at = fail_at
        self.texts = 0

    def embed(self, texts):
        if self.fail_at is not None and self.calls + 1 == self.fail_at:
            raise KeyboardInterrupt
        self.texts += len(texts)
        return super().embed(texts)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(embed, "CHUNK", 7)
    config = load_config(None, ["embed.model=fake:hashing"])
    ctx = StageContext(RunDir(tmp_path / "run"), "embed", tmp_path / "cache")
    texts = [f"answer number {i} about {'the sea' if i % 3 else 'cooking'}" for i in range(40)] + ["answer number 1"]
    return ctx, config, texts


def _with(monkeypatch, model):
    monkeypatch.setattr(embed, "build_embedder", lambda *args: model)


def test_chunked_file_holds_every_vector_in_order(setup, monkeypatch, tmp_path):
    ctx, config, texts = setup
    model = Flaky()
    _with(monkeypatch, model)
    with embed._Embedder(ctx, config) as embedder:
        dim = embedder.to_file(tmp_path / "v.npy", texts)
        assert (embedder.computed, embedder.cached) == (41, 0)
    stored = np.load(tmp_path / "v.npy", mmap_mode="r")
    assert dim == 16 and stored.shape == (41, 16) and stored.dtype == np.float32
    assert np.array_equal(stored, HashingEmbedder({}, dim=16).embed(texts))
    assert model.calls == 6  # ceil(41 / 7) chunks


def test_an_interrupted_stage_keeps_its_finished_chunks(setup, monkeypatch, tmp_path):
    ctx, config, texts = setup
    _with(monkeypatch, Flaky(fail_at=4))
    with pytest.raises(KeyboardInterrupt), embed._Embedder(ctx, config) as embedder:
        embedder.to_file(tmp_path / "v.npy", texts)
    assert not (tmp_path / "v.npy").exists()  # no half-written file is left for a reader
    resumed = Flaky()
    _with(monkeypatch, resumed)
    with embed._Embedder(ctx, config) as embedder:
        embedder.to_file(tmp_path / "v.npy", texts)
        assert (embedder.cached, embedder.computed) == (21, 20)  # 3 chunks of 7 kept, the rest embedded
    assert resumed.texts == 20
    assert np.array_equal(np.load(tmp_path / "v.npy"), HashingEmbedder({}, dim=16).embed(texts))


def test_no_texts_give_an_empty_file(setup, tmp_path):
    ctx, config, _ = setup
    with embed._Embedder(ctx, config) as embedder:
        assert embedder.to_file(tmp_path / "v.npy", []) == 1
    assert np.load(tmp_path / "v.npy").shape == (0, 1)


def test_the_log_gets_a_progress_line_every_few_seconds_and_the_last(setup, monkeypatch, tmp_path, caplog):
    import logging

    from lmdelta import progress

    ctx, config, texts = setup
    _with(monkeypatch, Flaky())
    monkeypatch.setattr(embed, "LOG_EVERY", 3600.0)
    with caplog.at_level(logging.INFO, logger="lmdelta"), embed._Embedder(ctx, config) as embedder:
        embedder.meter = progress.Meter("embed", len(texts), "texts")
        embedder.to_file(tmp_path / "v.npy", texts)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("embed:")]
    assert len(lines) == 2 and lines[0].startswith("embed: 7/41") and lines[-1].startswith("embed: 41/41")
