"""Run a model's batches on a Ray cluster (`execution.engine: ray`) and stream the results back.

A stage hands over a Task (a picklable recipe that loads the model) and its work items (batches of
requests, chunks of texts). Ray Data spreads the items over a pool of actors, each holding one replica
of the model, and returns each item's result as soon as the pool has it, in item order; the stage
stores results as they arrive, exactly as it does in this process, so an interrupted run keeps every
finished batch and resumes from there. The items are the ones the stage would compute here, so
results do not depend on the engine wherever the model computes a batch the same on every machine.

Ray is imported only when a Ray run starts (`pip install 'lmdelta[ray]'`).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lmdelta.config import ExecutionConfig, RunConfig
from lmdelta.errors import DependencyError, LmdeltaError, StageError

log = logging.getLogger(__name__)
RAY_EXTRA = "pip install 'lmdelta[ray]'"


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


def run_items(section: ExecutionConfig, task: Task, items: Sequence[Any], what: str) -> Iterator[Any]:
    """Each item's result, in order, computed by a pool of Ray actors that each start `task` once. A local Ray
    started here is shut down when the items are done, so later stages get its memory back."""
    if not items:
        return
    ray, started = _connect(section)
    context = ray.data.DataContext.get_current()
    saved = context.execution_options.preserve_order, context.enable_progress_bars
    context.execution_options.preserve_order, context.enable_progress_bars = True, False
    try:
        yield from _checked(_results(ray, section, task, items, what), what)
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved
        if started:
            ray.shutdown()


def _results(ray: Any, section: ExecutionConfig, task: Task, items: Sequence[Any], what: str) -> Iterator[Any]:
    """The rows Ray returns, one per item. One block per item: Ray Data hands a block's results back when the
    whole block is done, so a block of many items would hold finished batches back (and lose them to a kill)."""
    data = ray.data
    workers, cpus, gpus = _pool(section, len(items))
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
        return {"index": list(batch["index"]), "result": [self._compute(payload) for payload in batch["payload"]]}

    def _compute(self, payload: bytes) -> bytes:
        if self._worker is None:
            return pickle.dumps(self._raised)
        try:
            return pickle.dumps(self._worker(pickle.loads(payload)))
        except LmdeltaError as exc:
            return pickle.dumps(Raised.of(exc))


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


def _pool(section: ExecutionConfig, n_items: int) -> tuple[int, float, float]:
    """Workers, CPUs and GPUs per worker: the configured ones, else what the cluster holds."""
    import ray

    resources = ray.cluster_resources()
    gpus = section.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    workers = section.workers
    if workers is None:
        per = resources.get("GPU", 0) / gpus if gpus else resources.get("CPU", 1) / section.cpus_per_worker
        workers = max(1, int(per))
    return min(workers, n_items), section.cpus_per_worker, gpus
