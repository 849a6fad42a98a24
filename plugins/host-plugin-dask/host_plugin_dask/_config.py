"""The ``executor_config`` of the dask executor."""

from __future__ import annotations

import os

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from host import ExecutorConfig

__all__ = ["DaskConfig"]


class DaskConfig(ExecutorConfig):
    """Where the run's assets go.

    Attributes:
        address: the address of a running Dask scheduler (``tcp://host:8786``). Default: none,
            and the run starts a ``LocalCluster`` of its own, and closes it when it ends (in a
            :class:`host.Session`, the session starts one for all its runs and closes it when
            it closes).
        n_workers: worker processes of the run's own LocalCluster (default: the CPU count).
        threads_per_worker: threads in each of them (default 1). With more than one, assets
            in one worker process run concurrently and share that process's resources, which
            must then be thread-safe (a resource still comes up once per process).
        grace_period: seconds the caller waits past a limit before it gives up on a worker and
            restarts it (default 5): past the run's ``timeout`` for an asset still running,
            and past the ``teardown_timeout`` of the resource a worker is taking down.
        pack_below: in a :class:`host.Session`, the assets that took less than this many
            seconds in an earlier run of the session go to the workers several to a Dask task
            (one task's overhead, a few milliseconds, instead of one per asset), as many of
            these packs as the workers have task threads (more, to keep each under about
            0.1 s). Default 0.01; 0 sends every asset as its own task. When a worker dies
            during a pack, none of its results come back: each of its assets fails with
            :class:`host.WorkerDiedError`. Runs outside a session send one asset per task.
    """

    address: str | None = None
    n_workers: PositiveInt = Field(default_factory=lambda: os.cpu_count() or 1)
    threads_per_worker: PositiveInt = 1
    grace_period: PositiveFloat = 5.0
    pack_below: NonNegativeFloat = 0.01

    @model_validator(mode="after")
    def _cluster_or_address(self) -> DaskConfig:
        given = {"n_workers", "threads_per_worker"} & self.model_fields_set
        if self.address is not None and given:
            raise ValueError(
                f"n_workers and threads_per_worker apply only to the LocalCluster a run starts; "
                f"with address the cluster is given: leave out {', '.join(sorted(given))}"
            )
        return self
