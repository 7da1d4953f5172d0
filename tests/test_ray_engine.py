"""`execution.engine: ray`: generation and embedding on a local Ray cluster (ray runs on CPU here) give the
run a single process gives, and a Ray stage interrupted mid-way resumes from its finished batches. Skipped,
with the reason, where Ray is not installed (the `ray` extra; `make test` installs it with `dev`)."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
from conftest import fake_config

from lmdelta import execution, pipeline
from lmdelta.config import ExecutionConfig, load_config
from lmdelta.errors import DependencyError
from lmdelta.rundir import RunDir, read_jsonl
from lmdelta.stages import generate


def run(config_path, run_dir, *overrides):
    pipeline.run(load_config(config_path, list(overrides)), RunDir(run_dir))
    return RunDir(run_dir).load_manifest()


def stage_file(run_dir, stage, name):
    return run_dir / "stages" / stage / name


def answers(run_dir):
    return sorted(
        (r["key"], r["text"], r["n_tokens"]) for r in read_jsonl(stage_file(run_dir, "generate", "items.jsonl"))
    )


def test_a_ray_run_is_the_single_process_run(local_ray, tmp_path, monkeypatch):
    config = fake_config(tmp_path)
    monkeypatch.setenv("LMDELTA_CACHE_DIR", str(tmp_path / "cache-local"))
    run(config, tmp_path / "local")
    monkeypatch.setenv("LMDELTA_CACHE_DIR", str(tmp_path / "cache-ray"))  # nothing reused: Ray computes it all
    manifest = run(config, tmp_path / "ray", "execution.engine=ray")
    assert manifest.stages["embed"].counts["computed"] > 0
    assert answers(tmp_path / "ray") == answers(tmp_path / "local")
    for name in ("samples.jsonl",):
        assert (
            stage_file(tmp_path / "ray", "generate", name).read_bytes()
            == stage_file(tmp_path / "local", "generate", name).read_bytes()
        )
    for name in ("samples.npy", "prompts.npy"):
        assert np.array_equal(
            np.load(stage_file(tmp_path / "ray", "embed", name)), np.load(stage_file(tmp_path / "local", "embed", name))
        )
    for stage, name in (("propose", "hypotheses.jsonl"), ("decide", "decisions.jsonl")):
        assert list(read_jsonl(stage_file(tmp_path / "ray", stage, name))) == list(
            read_jsonl(stage_file(tmp_path / "local", stage, name))
        )
    assert manifest.stages["generate"].counts["b"]["generated"] == 36


def stopped_after(count: int, real):
    """run_items (or run_shaped) that stops the run after `count` results, as if it were killed between items."""

    def stopping(section, task, items, what):
        for done, result in enumerate(real(section, task, items, what)):
            if done == count:
                raise KeyboardInterrupt
            yield result

    return stopping


@pytest.mark.parametrize("shard_items", [4, 1])
def test_a_ray_generation_stopped_mid_way_resumes_from_its_finished_batches(
    local_ray, tmp_path, monkeypatch, shard_items
):
    """Side a: 9 batches of generate.batch_size (4) answers. The fake generator does not stream, so each batch is an
    item of its own however many could travel together (SHARD_ITEMS 1 would group 4 on 2 workers)."""
    config = fake_config(tmp_path)
    monkeypatch.setattr(generate, "SHARD_ITEMS", shard_items)
    real = execution.run_shaped
    monkeypatch.setattr(execution, "run_shaped", stopped_after(3, real))
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "run", "execution.engine=ray")
    stored = list(read_jsonl(stage_file(tmp_path / "run", "generate", "items.jsonl")))
    assert len(stored) == 3 * 4  # three items of one batch each, side a
    monkeypatch.setattr(execution, "run_shaped", real)
    manifest = run(config, tmp_path / "run", "execution.engine=ray")
    counts = manifest.stages["generate"].counts
    assert counts["a"]["reused"] == 12 and counts["a"]["generated"] == 36 - 12
    assert answers(tmp_path / "run") == sorted(set(answers(tmp_path / "run")))  # nothing generated twice


def test_workers_default_to_the_clusters_cpus_and_never_outnumber_the_items(local_ray):
    assert execution._pool(ExecutionConfig(engine="ray"), 100) == (2, 1.0, 0.0)
    assert execution._pool(ExecutionConfig(engine="ray"), 1) == (1, 1.0, 0.0)
    assert execution._pool(ExecutionConfig(engine="ray", workers=3, cpus_per_worker=0.5), 10) == (3, 0.5, 0.0)


def test_a_ray_run_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    config = load_config(fake_config(tmp_path), ["execution.engine=ray"])
    with pytest.raises(DependencyError, match="Ray cannot be imported") as err:
        execution.check(config)
    assert "lmdelta[ray]" in err.value.fix and "engine: local" in err.value.fix


def test_the_engine_is_not_part_of_any_fingerprint(tmp_path):
    config = fake_config(tmp_path)
    run_dir, cache = RunDir(tmp_path / "run"), tmp_path / "cache"
    local = pipeline.plan(load_config(config), run_dir, cache)
    on_ray = pipeline.plan(load_config(config, ["execution.engine=ray", "execution.workers=4"]), run_dir, cache)
    assert local.fingerprint == on_ray.fingerprint


def test_a_dry_run_says_where_the_models_run(tmp_path):
    from lmdelta.preview import describe_run

    lines = describe_run(load_config(fake_config(tmp_path), ["execution.engine=ray", "execution.address=auto"]))
    assert "execution: generation, embedding and local LLMs on the Ray cluster at auto" in lines
    assert not any(line.startswith("execution:") for line in describe_run(load_config(fake_config(tmp_path))))


def test_a_transformers_model_answers_the_same_on_ray(local_ray, tmp_path, tiny_model, isolated_cache, monkeypatch):
    """The real backend on Ray: the workers load the weights; the driver reads only the tokenizer (to partition
    the batches as a single process does). One thread on both sides, so the kernels sum in the same order."""
    torch = pytest.importorskip("torch")
    config = fake_config(
        tmp_path,
        generate__a={"model": str(tiny_model), "dtype": "float32"},
        generate__b={"model": str(tiny_model), "dtype": "float32", "system_prompt": "Talk about the sea."},
        generate__max_new_tokens=6,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(config, tmp_path / "local")
    finally:
        torch.set_num_threads(threads)
    manifest = run(config, tmp_path / "ray", "execution.engine=ray")
    assert manifest.stages["generate"].counts["a"]["generated"] == 36
    assert answers(tmp_path / "ray") == answers(tmp_path / "local")
    # 9 batches a side on 2 workers: items of 4, 4 and 1 batches; stopped after the first item, then resumed
    monkeypatch.setattr(generate, "SHARD_ITEMS", 1)
    real = execution.run_shaped
    monkeypatch.setattr(execution, "run_shaped", stopped_after(1, real))
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "ray-shards", "execution.engine=ray")
    assert len(list(read_jsonl(stage_file(tmp_path / "ray-shards", "generate", "items.jsonl")))) == 4 * 4
    monkeypatch.setattr(execution, "run_shaped", real)
    counts = run(config, tmp_path / "ray-shards", "execution.engine=ray").stages["generate"].counts
    assert counts["a"]["reused"] == 16 and counts["a"]["generated"] == 36 - 16
    assert answers(tmp_path / "ray-shards") == answers(tmp_path / "local")


def test_consecutive_batches_travel_together_while_every_worker_gets_several_items():
    batches = [[f"r{i}-{j}" for j in range(2)] for i in range(300)]
    assert generate.shards(batches[:40], workers=10) == [[batch] for batch in batches[:40]]  # a batch an item
    for n, workers, per in ((16, 2, 2), (64, 2, 8), (100, 8, 3), (300, 1, 8), (300, 64, 1)):
        items = generate.shards(batches[:n], workers)
        assert [len(item) for item in items] == [per] * (n // per) + ([n % per] if n % per else [])
        assert [batch for item in items for batch in item] == batches[:n]


def test_a_transformers_worker_decodes_an_item_as_one_continuous_batch(tmp_path, tiny_model, isolated_cache):
    """Rows freed by a finished answer take the item's next batch's requests; the answers are those of the batches
    decoded one by one (float32), in the item's order."""
    pytest.importorskip("torch")
    from lmdelta.backends.protocols import GenerationRequest

    item = [
        [
            GenerationRequest(f"k{b}-{i}", f"p{b}-{i}", f"Question {b}.{i}: tell me {'more ' * i}", 0, 100 * b + i)
            for i in range(3)
        ]
        for b in range(3)
    ]
    worker = dataclasses.replace(_task(tmp_path, str(tiny_model)), rows=4).start()  # 9 requests through 4 rows
    streamed = []
    real = worker._generator.stream
    worker._generator.stream = lambda requests, sampling, rows: (
        streamed.append((len(requests), rows)) or real(requests, sampling, rows)
    )
    together = worker(item)
    assert streamed == [(9, 4)]
    one_by_one = [answer for batch in item for answer in worker._generator.generate(batch, worker._sampling)]
    assert [(a.text, a.n_tokens) for a in together] == [(a.text, a.n_tokens) for a in one_by_one]


def _task(tmp_path, model: str, **backend_args):
    from lmdelta.backends.protocols import SamplingSettings
    from lmdelta.config import ModelSpec
    from lmdelta.stages.generate import GenerateTask

    spec = ModelSpec(model=model, backend_args=backend_args)
    return GenerateTask(spec, {"backend": "hf", "dtype": "float32"}, "cpu", tmp_path, SamplingSettings(4, 1.0, 1.0))


def _item(prompt: str = "hi"):
    """A Ray item of the generate stage: one batch of one request."""
    from lmdelta.backends.protocols import GenerationRequest

    return [[GenerationRequest(key=prompt, prompt_id=prompt, prompt=prompt, index=0, seed=1)]]


def test_a_worker_that_cannot_load_its_model_stops_the_stage_with_its_own_error(local_ray, tmp_path):
    from lmdelta.errors import ModelNotFoundError

    task = _task(tmp_path, str(tmp_path / "no-such-model"))
    with pytest.raises(ModelNotFoundError, match="Unknown language model") as err:
        list(execution.run_items(ExecutionConfig(engine="ray"), task, [_item()], "generate a"))
    assert err.value.fix  # the worker's own fix reaches the user


def test_any_other_worker_failure_is_a_stage_error_with_the_fix(local_ray, tmp_path):
    from lmdelta.errors import StageError

    task = _task(tmp_path, "fake:words", length="not a number")  # the fake generator fails to start
    with pytest.raises(StageError, match="generate a: a Ray worker failed") as err:
        list(execution.run_items(ExecutionConfig(engine="ray"), task, [_item()], "generate a"))
    assert "finished batch is kept" in err.value.fix and "engine: local" in err.value.fix


def test_each_item_is_a_block_of_its_own_so_results_stream_back(local_ray, tmp_path, monkeypatch):
    """Ray Data returns a block's results once the whole block is done: one item per block."""
    seen = {}
    real = local_ray.data.from_items

    def recording(rows, **options):
        seen.update(options, rows=len(rows))
        return real(rows, **options)

    monkeypatch.setattr(local_ray.data, "from_items", recording)
    items = [_item(f"p{i}") for i in range(5)]
    answers = list(execution.run_items(ExecutionConfig(engine="ray"), _task(tmp_path, "fake:words"), items, "gen"))
    assert seen == {"override_num_blocks": 5, "rows": 5}
    assert [a[0].text for a in answers] == [a[0].text for a in map(_task(tmp_path, "fake:words").start(), items)]


def test_a_cluster_that_cannot_be_joined_names_the_address(local_ray, monkeypatch):
    from lmdelta.errors import StageError

    def refused(**options):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(local_ray, "is_initialized", lambda: False)
    monkeypatch.setattr(local_ray, "init", refused)
    section = ExecutionConfig(engine="ray", address="10.0.0.9:6379")
    with pytest.raises(StageError, match="Could not start or join the Ray cluster at 10.0.0.9:6379") as err:
        list(execution.run_items(section, None, [1], "embed"))
    assert "execution.address" in err.value.fix


def test_an_embed_stage_stopped_mid_way_on_ray_keeps_its_finished_chunks(local_ray, tmp_path, monkeypatch):
    from lmdelta.stages import embed
    from lmdelta.stages.contract import StageContext

    monkeypatch.setattr(embed, "CHUNK", 5)
    config = load_config(None, ["embed.model=fake:hashing", "execution.engine=ray"])
    ctx = StageContext(RunDir(tmp_path / "run"), "embed", tmp_path / "cache")
    texts = [f"answer {i} about the {'sea' if i % 2 else 'hills'}" for i in range(23)]
    real = execution.run_items
    monkeypatch.setattr(execution, "run_items", stopped_after(2, real))
    with pytest.raises(KeyboardInterrupt), embed._Embedder(ctx, config) as embedder:
        embedder.compute_on_ray(config, [texts])
    monkeypatch.setattr(execution, "run_items", real)
    with embed._Embedder(ctx, config) as embedder:
        embedder.compute_on_ray(config, [texts])
        vectors = embedder.matrix(texts)
        assert (embedder.computed, embedder.cached) == (13, 10)  # two chunks of 5 were kept
    single = load_config(None, ["embed.model=fake:hashing"])
    with embed._Embedder(StageContext(RunDir(tmp_path / "one"), "embed", tmp_path / "cache-one"), single) as one:
        assert np.array_equal(vectors, one.matrix(texts))


def test_a_failure_while_storing_ends_the_ray_items_at_once(local_ray, tmp_path, monkeypatch):
    """An error raised while a stage stores what Ray returned closes the items' generator there and then (a local
    Ray started for them shuts down), not when the error's traceback is dropped: a notebook keeps that for good."""
    config = fake_config(tmp_path)
    closed = []
    real = execution.run_shaped

    def recording(*args):
        try:
            yield from real(*args)
        finally:
            closed.append(True)

    def failing(side, answered, *rest):
        next(iter(answered))
        raise OSError("No space left on device")

    monkeypatch.setattr(execution, "run_shaped", recording)
    monkeypatch.setattr(generate, "_decode", failing)
    with pytest.raises(OSError, match="No space left") as caught:
        run(config, tmp_path / "run", "execution.engine=ray")
    assert closed == [True] and caught.value  # the traceback is still held here
