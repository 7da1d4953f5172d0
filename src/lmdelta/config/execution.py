"""Where the heavy per-batch work runs: in this process, or on a Ray cluster. Nothing here changes a
result (every field is volatile): the same batches are computed either way, by the same code."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lmdelta.config.base import VOLATILE, Section


class ExecutionConfig(Section):
    engine: Literal["local", "ray"] = Field(default="local", json_schema_extra=VOLATILE)
    (
        "`local`: every model runs in this process. `ray`: generation by models loaded in process, embedding and the "
        "calls of `local/…` LLMs (judge, proposer) run on a Ray cluster (`pip install 'lmdelta[ray]'`), one model "
        "replica per worker, the batches spread over the workers and streamed back into this run's stores as they "
        "finish."
    )
    address: str | None = Field(default=None, json_schema_extra=VOLATILE)
    (
        "The Ray cluster to join (`auto`, `ray://HEAD:10001` or `HEAD:6379`); unset: a Ray already started in this "
        "process, else a local Ray started for the run on this machine."
    )
    workers: int | None = Field(default=None, ge=1, json_schema_extra=VOLATILE)
    (
        "Model replicas (Ray actors) per model; default: one per GPU of the cluster (over `gpus_per_worker`), or one "
        "per `cpus_per_worker` CPUs on a cluster without GPUs."
    )
    cpus_per_worker: float = Field(default=1.0, gt=0, json_schema_extra=VOLATILE)
    """CPUs each worker reserves (and the threads its model computes with)."""
    gpus_per_worker: float | None = Field(default=None, ge=0, json_schema_extra=VOLATILE)
    (
        "GPUs each worker reserves; default 1 where the cluster has GPUs, else 0. Set it to vLLM's "
        "`tensor_parallel_size` when a replica spans several GPUs."
    )
    init_args: dict[str, Any] = Field(default_factory=dict, json_schema_extra=VOLATILE)
    """Passed to `ray.init` unchanged, e.g. `runtime_env: {pip: [lmdelta]}` or `namespace`."""
