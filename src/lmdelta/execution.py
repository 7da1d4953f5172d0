"""Run a model's batches on a Ray cluster (`execution.engine: ray`) and stream the results back.

A stage hands over a Task (a picklable recipe that loads the model) and its work items (batches of
requests, chunks of texts): `run_items`. Ray Data spreads the items over a pool of actors, each holding one replica
of the model, and returns each item's result as soon as the pool has it, in item order; the stage
stores results as they arrive, exactly as it does in this process, so an interrupted run keeps every
finished batch and resumes from there. The items are the ones the stage would compute here, so
results do not depend on the engine wherever the model computes a batch the same on every machine.

Work that arrives a batch at a time rather than as one list (an LLM judge's calls, gathered by the LLM
client) goes to a `Pool`: long-lived actors, one replica each, that the caller awaits batch by batch.
Pools are closed, and a local Ray started for them shut down, by `release` when the stage ends.

Ray is imported only when a Ray run starts (`pip install 'lmdelta[ray]'`).
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Protocol

from lmdelta.config import ExecutionConfig, RunConfig
from lmdelta.errors import DependencyError, LmdeltaError, StageError

log = logging.getLogger(__name__)
RAY_EXTRA = "pip install 'lmdelta[ray]'"
# Ray Data's background threads. Ray gives its executor 2 s to stop; on a busy machine it can take longer, and a
# thread that touches Ray after ray.shutdown() ends the whole process with exit status 1 and no error.
RAY_DATA_THREADS = ("StreamingExecutor-", "ray-data-metadata-prefetch", "map_tp_")
SETTLE_SECONDS = 60.0
_OPEN: list[Pool] = []  # pools not yet released; Ray itself is process-wide state, and so are they


class Worker(Protocol):
    """One model replica: computes an item's result (its model is freed when the actor ends)."""

    def __call__(self, item: Any, /) -> Any: ...


class Task(Protocol):
    """A picklable recipe for a Worker: it loads the model where the worker runs."""

    def start(self) -> Worker: ...


def on_ray(section: ExecutionConfig) -> bool:
    return section.engine == "ray"


def check(config: RunConfig) -> None:
    """A Ray run on a machine without Ray: say so before any stage runs."""
    if on_ray(config.execution):
        _import_ray()


def _import_ray() -> Any:
    """The ray module with Ray Data loaded, or a DependencyError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise DependencyError(
            f"execution.engine is ray, and Ray cannot be imported ({exc}).",
            f"{RAY_EXTRA}, or set execution.engine: local.",
        ) from None
    return ray


def run_items(section: ExecutionConfig, task: Task, items: Sequence[Any], what: str) -> Generator[Any, None, None]:
    """Each item's result, in order, computed by a pool of Ray actors that each start `task` once. A local Ray
    started here is shut down when the items are done, so later stages get its memory back."""
    if items:
        with closing(run_shaped(section, task, lambda workers: items, what)) as pairs:
            for _, result in pairs:
                yield result


def run_shaped(
    section: ExecutionConfig, task: Task, shape: Callable[[int], Sequence[Any]], what: str
) -> Generator[tuple[Any, Any], None, None]:
    """run_items for items made once the pool's size is known (`shape(workers)`), each with its result."""
    ray, started = _connect(section)
    context = ray.data.DataContext.get_current()
    saved = context.execution_options.preserve_order, context.enable_progress_bars
    context.execution_options.preserve_order, context.enable_progress_bars = True, False
    try:
        workers, cpus, gpus = _pool(section, None)
        items = shape(workers)
        if not items:
            return
        pool = (min(workers, len(items)), cpus, gpus)
        for index, result in enumerate(_checked(_results(ray, section, task, items, what, pool), what)):
            yield items[index], result
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved
        if started:
            shutdown(ray)


def _results(
    ray: Any, section: ExecutionConfig, task: Task, items: Sequence[Any], what: str, pool: tuple[int, float, float]
) -> Iterator[Any]:
    """The rows Ray returns, one per item. One block per item: Ray Data hands a block's results back when the
    whole block is done, so a block of many items would hold finished batches back (and lose them to a kill)."""
    data = ray.data
    workers, cpus, gpus = pool
    log.info("%s: %d items on %d Ray workers (%g CPU, %g GPU each)", what, len(items), workers, cpus, gpus)
    rows = [{"index": i, "payload": pickle.dumps(item)} for i, item in enumerate(items)]
    mapped = data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        RayWorker,
        fn_constructor_args=(pickle.dumps(task),),
        batch_size=1,
        compute=data.ActorPoolStrategy(size=workers),
        num_cpus=cpus,
        num_gpus=gpus,
    )
    return iter(mapped.iter_rows())


def _checked(rows: Iterator[Any], what: str) -> Iterator[Any]:
    """The items' results in order; a worker's failure as the lmdelta error it raised, or a StageError."""
    try:
        for expected, row in enumerate(rows):
            if int(row["index"]) != expected:  # preserve_order is Ray's promise; never a result on another item
                raise StageError(
                    f"{what}: Ray returned item {row['index']} where item {expected} was due.",
                    "Nothing was stored for it; run the same command again, or set execution.engine: local.",
                )
            result = pickle.loads(row["result"])
            if isinstance(result, Raised):
                raise result.kind(result.problem, result.fix)
            yield result
    except LmdeltaError:
        raise
    except Exception as exc:  # any other failure of a worker reaches here wrapped in Ray's own error types
        raise _failed(what, exc) from exc
    finally:
        close = getattr(rows, "close", None)
        if callable(close):
            close()  # Ray Data's iterator ends its execution now, not when it is collected


def _failed(what: str, exc: Exception) -> StageError:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return StageError(
        f"{what}: a Ray worker failed ({type(exc).__name__}: {lines[-1] if lines else 'no message'}).",
        "Every finished batch is kept. Check that the workers can import this lmdelta and load the models at the "
        "paths the config names (Ray's logs: /tmp/ray/session_latest/logs on each node), then run the same command "
        "again; or set execution.engine: local.",
    )


@dataclass(frozen=True)
class Raised:
    """An lmdelta error a worker raised, sent back as its result: Ray passes exceptions on as text, and the
    user's answer is the error's own problem and fix (a model the worker cannot load, a missing extra)."""

    kind: type[LmdeltaError]
    problem: str
    fix: str | None

    @classmethod
    def of(cls, exc: LmdeltaError) -> Raised:
        return cls(type(exc), exc.problem, exc.fix)


class RayWorker:
    """The actor Ray Data runs: it starts the task once and computes one item per call."""

    def __init__(self, task: bytes) -> None:
        self._worker: Worker | None = None
        self._raised: Raised | None = None
        try:
            self._worker = pickle.loads(task).start()
        except LmdeltaError as exc:  # reported with each item, as the driver would have raised it
            self._raised = Raised.of(exc)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {"index": list(batch["index"]), "result": [self.compute(payload) for payload in batch["payload"]]}

    def compute(self, payload: bytes) -> bytes:
        """One pickled item's pickled result (or the lmdelta error it raised, as a Raised)."""
        if self._worker is None:
            return pickle.dumps(self._raised)
        try:
            return pickle.dumps(self._worker(pickle.loads(payload)))
        except LmdeltaError as exc:
            return pickle.dumps(Raised.of(exc))


class Pool:
    """Long-lived Ray actors, each holding what a task loads, for work that arrives a batch at a time:
    `await pool.compute(item)` runs the item on the actor with the fewest items in flight. One pool per task
    (`Pool.of`): the pool takes every worker the cluster holds, so a second pool of its own could never be
    placed. Open until `release`, which the pipeline calls after every stage."""

    def __init__(self, section: ExecutionConfig, task: Task, what: str) -> None:
        ray, self._started = _connect(section)
        workers, cpus, gpus = _pool(section, None)
        log.info("%s: %d Ray workers (%g CPU, %g GPU each)", what, workers, cpus, gpus)
        actor = ray.remote(num_cpus=cpus, num_gpus=gpus)(RayWorker)
        self._ray, self.task, self.what = ray, task, what
        self._actors = [actor.remote(pickle.dumps(task)) for _ in range(workers)]
        self._in_flight = [0] * workers
        _OPEN.append(self)

    @classmethod
    def of(cls, section: ExecutionConfig, task: Task, what: str) -> Pool:
        """The open pool of an equal task, else a new one."""
        return next((pool for pool in _OPEN if pool.task == task), None) or cls(section, task, what)

    @property
    def size(self) -> int:
        return len(self._actors)

    async def compute(self, item: Any) -> Any:
        """The item's result; the lmdelta error the worker raised, or a StageError for any other failure."""
        if not self._actors:
            raise StageError(f"{self.what}: the Ray workers were released before this batch.", "Run the command again.")
        chosen = min(range(len(self._actors)), key=self._in_flight.__getitem__)
        self._in_flight[chosen] += 1
        try:
            raw = await self._actors[chosen].compute.remote(pickle.dumps(item))
        except Exception as exc:  # a worker that died, or one Ray could not place
            raise _failed(self.what, exc) from exc
        finally:
            self._in_flight[chosen] -= 1
        result = pickle.loads(raw)
        if isinstance(result, Raised):
            raise result.kind(result.problem, result.fix)
        return result

    def _end(self) -> bool:
        """End the actors (their models are freed); whether this pool started the local Ray."""
        actors, self._actors = self._actors, []
        for actor in actors:
            try:
                self._ray.kill(actor)
            except Exception as exc:  # already gone with its node: nothing is left to free
                log.debug("%s: could not end a Ray worker: %s", self.what, exc)
        return self._started


def release() -> None:
    """End every open pool's actors, then the local Ray one of them started (the pipeline calls this when a stage
    ends, however it ends; it never raises over the stage's own outcome)."""
    pools, _OPEN[:] = list(_OPEN), []
    started = [pool._end() for pool in pools]
    if any(started):
        ray = pools[started.index(True)]._ray
        if ray.is_initialized():
            shutdown(ray)


def shutdown(ray: Any) -> None:
    """ray.shutdown(), once Ray Data's background threads have stopped (up to SETTLE_SECONDS in all)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    for thread in threading.enumerate():
        if thread.name.startswith(RAY_DATA_THREADS) and thread is not threading.current_thread():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    ray.shutdown()


def _connect(section: ExecutionConfig) -> tuple[Any, bool]:
    """The ray module connected to the configured cluster (a Ray this process already joined, or a local one
    started here), and whether it was started or joined here."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray, False
    options: dict[str, Any] = {"address": section.address, "log_to_driver": False, "configure_logging": False}
    if section.address is None:
        options["include_dashboard"] = False
    where = f"the Ray cluster at {section.address}" if section.address else "a local Ray on this machine"
    log.info("connecting to %s", where)
    try:
        ray.init(**{**options, **section.init_args})
    except Exception as exc:
        raise StageError(
            f"Could not start or join {where} ({type(exc).__name__}: {exc}).",
            "Check execution.address (a running cluster: `ray status` on its head) and execution.init_args, and that "
            "this machine runs the cluster's Ray version; or set execution.engine: local.",
        ) from exc
    return ray, True


def _pool(section: ExecutionConfig, n_items: int | None) -> tuple[int, float, float]:
    """Workers, CPUs and GPUs per worker: the configured ones, else what the cluster holds (no more workers than
    items, where their number is known)."""
    import ray

    resources = ray.cluster_resources()
    gpus = section.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    workers = section.workers
    if workers is None:
        per = resources.get("GPU", 0) / gpus if gpus else resources.get("CPU", 1) / section.cpus_per_worker
        workers = max(1, int(per))
    return min(workers, n_items or workers), section.cpus_per_worker, gpus
