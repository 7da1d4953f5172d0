"""A local LLM (`local/…` judge, proposer or writer) on a Ray run: its batches are computed by a pool of Ray
actors (llm.providers.ray_chat, execution.Pool) and give the answers this process gives; the pool ends with
the stage. Skipped, with the reason, where Ray is not installed (conftest.local_ray)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from conftest import build_tiny_model, fake_config

from lmdelta import execution, pipeline
from lmdelta.config import ExecutionConfig, LLMConfig, load_config
from lmdelta.errors import StageError
from lmdelta.llm.providers import build_provider
from lmdelta.llm.providers.ray_chat import ChatTask, RayChat, _ChatWorker, _Failure
from lmdelta.llm.session import concurrency
from lmdelta.llm.types import ChatRequest, Message
from lmdelta.rundir import RESULTS, RunDir, read_jsonl

RAY = ExecutionConfig(engine="ray")


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat"))


def requests() -> list[ChatRequest]:
    """Greedy and seeded-sampled requests of several lengths: more than one batch of 4."""
    prompts = ["the cat sat", "how do tides work", "write a poem", "name a colour", "why is the sky blue"]
    return [
        ChatRequest(messages=(Message("user", p),), max_tokens=3 + i % 4, temperature=t, seed=7, sample_index=i)
        for i, p in enumerate(prompts)
        for t in (0.0, 1.0)
    ]


def answers(provider, asked):
    async def all_of_them():
        try:
            return await asyncio.gather(*(provider.complete(r) for r in asked))
        finally:
            await provider.aclose()

    return [(r.text, r.usage.output_tokens, r.finish_reason) for r in asyncio.run(all_of_them())]


def test_ray_workers_answer_as_the_local_model_does(local_ray, tiny_chat):
    options = {"dtype": "float32", "max_batch": 4}
    local = build_provider(f"local/{tiny_chat}", backend_args=options)
    on_ray = RayChat(str(tiny_chat), options, RAY)
    try:
        assert on_ray.identity() == local.identity()  # one response cache for both engines
        assert on_ray.concurrency == 4 * 2 * 2  # a batch computing and one waiting on each of two workers
        assert concurrency(on_ray, LLMConfig()) == 16 and concurrency(on_ray, LLMConfig(concurrency=64)) == 16
        assert concurrency(on_ray, LLMConfig(concurrency=3)) == 3  # a limit the config sets still holds
        assert answers(on_ray, requests()) == answers(local, requests())
        assert answers(on_ray, requests()[:3]) == answers(local, requests()[:3])  # a second event loop, same workers
    finally:
        execution.release()
    assert execution._OPEN == []


def test_two_local_models_share_one_pool_of_workers(local_ray, tiny_chat, tmp_path):
    """A judge and a strong judge (or a proposer) both local: one pool, whose workers load each model; a second
    pool would wait for ever for workers the first holds."""
    other = build_tiny_model(tmp_path / "other", seed=1)
    judge = RayChat(str(tiny_chat), {"dtype": "float32", "max_batch": 4}, RAY)
    strong = RayChat(str(other), {"dtype": "float32"}, RAY)
    try:
        assert len(execution._OPEN) == 1
        local = build_provider(f"local/{other}", backend_args={"dtype": "float32"})
        assert answers(strong, requests()[:4]) == answers(local, requests()[:4])
        float32 = {"dtype": "float32"}
        assert answers(judge, requests()[:4]) == answers(
            build_provider(f"local/{tiny_chat}", backend_args=float32), requests()[:4]
        )
    finally:
        execution.release()
    assert execution._OPEN == []


def test_the_driver_decides_the_dtype_the_cache_key_names(local_ray, tiny_chat):
    on_ray = RayChat(str(tiny_chat), {"dtype": "auto"}, RAY)
    try:
        assert on_ray._options["dtype"] == on_ray.identity()["dtype"] != "auto"  # not resolved again on a worker
    finally:
        execution.release()


def test_a_worker_that_cannot_load_the_model_raises_its_own_error(local_ray, tmp_path):
    pool = execution.Pool.of(RAY, ChatTask(), "local LLMs")
    try:
        failure = asyncio.run(pool.compute((str(tmp_path / "no-such-model"), {}, requests()[:1])))
        assert isinstance(failure, _Failure) and "no-such-model" in failure.message
    finally:
        execution.release()


def test_release_ends_every_pool_before_the_ray_one_started_and_never_raises():
    """Pools end in any order; the Ray one of them started shuts down once, after all of them, and a worker
    already gone does not turn the stage's outcome into an error."""
    events = []

    class FakeRay:
        def kill(self, actor):
            events.append(("kill", actor))
            if actor == "gone":
                raise RuntimeError("actor handle not found")

        def is_initialized(self):
            return True

        def shutdown(self):
            events.append(("shutdown",))

    pools = []
    for started, actors in ((True, ["a1", "gone"]), (False, ["b1"])):
        pool = object.__new__(execution.Pool)
        pool._ray, pool._started, pool._actors, pool.what, pool.task = FakeRay(), started, actors, "x", object()
        pools.append(pool)
    execution._OPEN[:] = pools
    execution.release()
    assert events == [("kill", "a1"), ("kill", "gone"), ("kill", "b1"), ("shutdown",)]
    assert execution._OPEN == []


def test_a_failed_batch_comes_back_as_a_provider_error_kind():
    class OutOfMemoryError(RuntimeError):
        pass

    class Chat:
        model = "tiny"

        def generate_batch(self, batch):
            raise OutOfMemoryError("CUDA out of memory")

    worker = _ChatWorker()
    worker.chats[("tiny", "[]")] = Chat()  # type: ignore[assignment]
    failure = worker(("tiny", {}, requests()[:2]))
    assert failure == _Failure("transient", "local tiny: OutOfMemoryError: CUDA out of memory")  # retried


def test_a_released_pool_refuses_work_with_a_fix(local_ray):
    pool = execution.Pool.of(RAY, ChatTask(), "local LLMs")
    execution.release()
    with pytest.raises(StageError, match="released before this batch"):
        asyncio.run(pool.compute(("embedded:smollm2-135m-instruct", {}, requests()[:1])))


def test_a_ray_run_judges_with_the_local_model_as_one_process_does(local_ray, tmp_path, tiny_chat, monkeypatch):
    """Every hypothesis judged by the tiny local model (presence), on Ray and not, each with a cache of its own:
    the same calls get the same replies. (A random model's replies score nothing, so the tests' NaNs match too.)"""
    config = fake_config(tmp_path, per_group=4)
    judge = [f"llm.judge.model=local/{tiny_chat}", "llm.judge.backend_args.dtype=float32"]
    overrides = ["validate.judge=presence", *judge]
    for where, extra in (("local", []), ("ray", ["execution.engine=ray"])):
        monkeypatch.setenv("LMDELTA_CACHE_DIR", str(tmp_path / f"cache-{where}"))
        pipeline.run(load_config(config, [*overrides, *extra]), RunDir(tmp_path / where))
        assert execution._OPEN == []  # the stage's workers ended with it
    replies = {where: cached_replies(tmp_path / f"cache-{where}" / "llm.sqlite") for where in ("local", "ray")}
    assert len(replies["local"]) > 50 and replies["ray"] == replies["local"]
    tested = {where: list(read_jsonl(tmp_path / where / "stages" / "validate" / RESULTS)) for where in ("local", "ray")}
    assert tested["ray"] == tested["local"] and len(tested["local"]) > 0


def cached_replies(path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT key, text FROM responses").fetchall())
