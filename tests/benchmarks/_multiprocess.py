"""Workload 3: 16 assets whose resource takes 50 ms to set up, on 2 worker processes.

host's process executors bring the resource up once per worker (2 setups); Dagster's
``multiprocess_executor`` starts a process per step and brings it up in each. The executors are
found through their ``host.executors`` entry points; one that is not installed is skipped with a
note saying so. Each host executor runs as configured by default (workers started by the run,
a LocalCluster started by the run), and in its faster setting where it has one (workers forked
from a server process; a Dask cluster already running, started before the timed runs).
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

import importlib_metadata
from pydantic import ValidationError

from host import run_assets
from tests.benchmarks import _workloads as w
from tests.benchmarks._dagster import DagsterWorker
from tests.benchmarks._harness import Run, interleave

__all__ = ["VARIANTS", "executor_settings", "run_multiprocess"]

#: (label, executor name, settings beyond the worker count). ``address`` is filled in with a
#: running cluster's address.
VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("multiprocess", "multiprocess", {}),
    ("multiprocess (forkserver)", "multiprocess", {"start_method": "forkserver"}),
    ("dask", "dask", {}),
    ("dask (running cluster)", "dask", {"address": None}),
)
#: Where each executor comes from.
SHIPPED_BY = {"multiprocess": "host itself", "dask": "the host-plugin-dask package"}
#: Names an executor's Config may give its worker count.
_WORKER_FIELDS = ("workers", "max_workers", "n_workers", "num_workers", "processes")
WORKERS = 2


def executor_settings(name: str, extra: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The ``executor_config`` for 2 single-threaded workers, or ``None`` and why not."""
    group = importlib_metadata.entry_points(group="host.executors")
    found = [ep for ep in group if ep.name == name]
    if not found:
        return None, (
            f"skipped: executor {name!r} is not installed (no 'host.executors' entry point named "
            f"{name!r}; it comes with {SHIPPED_BY.get(name, 'its plugin')})"
        )
    try:
        cls = found[0].load()
    except Exception as exc:
        return None, f"skipped: executor {name!r} does not import: {type(exc).__name__}: {exc}"
    model = getattr(cls, "Config", None)
    fields = getattr(model, "model_fields", {})
    config = dict(extra)
    if "address" not in config:
        for field in _WORKER_FIELDS:
            if field in fields:
                config[field] = WORKERS
                break
        else:
            return None, (
                f"skipped: executor {name!r} has no worker-count setting among {_WORKER_FIELDS} "
                f"(its settings: {sorted(fields)})"
            )
        if "threads_per_worker" in fields:
            config["threads_per_worker"] = 1
    try:
        model.model_validate(config)  # type: ignore[union-attr]
    except ValidationError as exc:
        return None, f"skipped: executor {name!r} does not take {config}: {exc.errors()[0]['msg']}"
    return config, ""


@contextlib.contextmanager
def _running_cluster() -> Iterator[str | None]:
    """The address of a 2-worker Dask cluster for the duration, or ``None`` without Dask."""
    try:
        from distributed import LocalCluster
    except ImportError:
        yield None
        return
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield str(cluster.scheduler_address)


def _host_run(name: str, config: Mapping[str, Any]) -> Run:
    assets = w.mp_assets()

    def sample() -> tuple[float, dict[str, Any]]:
        with tempfile.TemporaryDirectory() as counter_dir:
            resources = {"slow": w.SlowResource(counter_dir=counter_dir)}
            gc.collect()
            start = time.perf_counter()
            result = run_assets(assets, resources, executor=name, executor_config=dict(config))
            seconds = time.perf_counter() - start
            assert len(result.outputs) == w.MP_ASSETS
            return seconds, {"setups": w.count_setups(counter_dir), "config": dict(config)}

    return sample


def run_multiprocess(
    repetitions: int, dagster: DagsterWorker | None, dagster_repetitions: int
) -> dict[str, Any]:
    """Time the multiprocess fan on each host executor variant and on Dagster, interleaved."""
    figures: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        contenders: dict[str, Run] = {}
        reps: dict[str, int] = {}
        for label, name, extra in VARIANTS:
            settings = dict(extra)
            if "address" in settings:
                config, why_not = executor_settings(name, {})
                if config is not None:
                    address = stack.enter_context(_running_cluster())
                    if address is None:
                        config, why_not = None, "skipped: dask.distributed is not installed"
                    else:
                        config, why_not = executor_settings(name, {"address": address})
            else:
                config, why_not = executor_settings(name, settings)
            if config is None:
                figures[label] = {"skipped": why_not}
                continue
            contenders[label] = _host_run(name, config)
            reps[label] = repetitions
        if dagster is not None:
            contenders["dagster"] = lambda: dagster.run("mp_fan")
            reps["dagster"] = dagster_repetitions
        if contenders:
            host_labels = tuple(label for label in contenders if label != "dagster")
            for label, samples in interleave(contenders, reps, warmup=host_labels).items():
                figures[label] = samples.as_json()
    return figures
