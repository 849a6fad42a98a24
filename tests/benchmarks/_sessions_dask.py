"""Sessions on dask: the multiprocess fan (16 assets, a 50 ms setup) 10 times on 2 Dask workers.

Three ways, interleaved would mean three clusters at once on two cores, so they run one after
the other, each timed per run:

* ``separate``: 10 ``run_assets`` calls, each starting (and closing) its own ``LocalCluster``;
* ``session``: 10 runs in one :class:`host.Session`, whose ``LocalCluster`` starts with the
  first run and closes with the session; the resource run-scoped (it comes up in each run);
* ``session, session-scoped resource``: the same with the resource ``host_scope =
  "session"``: it comes up once per worker process for the whole session (2 setups).

Runs 2-10 are compared (the first run of a session starts its cluster); ratios are of medians.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from host import RunResult, Session, run_assets
from tests.benchmarks import _workloads as w

__all__ = ["SessionSlowResource", "dask_sessions"]

WORKERS = 2
CONFIG = {"n_workers": WORKERS, "threads_per_worker": 1}


class SessionSlowResource(w.SlowResource):
    """:class:`SlowResource`, session-scoped: up once per session per worker process."""

    host_scope: ClassVar[Literal["run", "session"]] = "session"


def _timed_runs(
    runs: int, run: Callable[[list[Any], dict[str, Any]], RunResult], resource: type[Any]
) -> dict[str, Any]:
    """Seconds of each of ``runs`` calls of ``run(assets, resources)``, and the setups they
    made."""
    assets = w.mp_assets()
    seconds: list[float] = []
    with tempfile.TemporaryDirectory() as counter_dir:
        for _ in range(runs):
            resources = {"slow": resource(counter_dir=counter_dir)}
            gc.collect()
            start = time.perf_counter()
            result = run(assets, resources)
            seconds.append(time.perf_counter() - start)
            assert len(result.outputs) == w.MP_ASSETS, result.failures
        setups = w.count_setups(counter_dir)
    later = seconds[1:] or seconds
    return {
        "first_s": seconds[0],
        "later_median_s": statistics.median(later),
        "later_max_s": max(later),
        "samples_s": seconds,
        "setups": setups,
    }


def dask_sessions(runs: int = 10) -> dict[str, Any]:
    """Time the fan ``runs`` times on dask: separate calls, one session, one session with the
    resource session-scoped. Returns the figures by label, and the ratios of runs 2-``runs``
    (``separate_over_session``: how many times faster a run in the session is).

    Raises:
        ImportError: the dask executor's package (host-plugin-dask) is not installed.
    """
    import host_plugin_dask  # noqa: F401 (the executor must be there)

    figures: dict[str, Any] = {
        "workload": f"{w.MP_ASSETS} assets, a 50 ms setup, {WORKERS} Dask workers, {runs} runs",
    }

    def separate(assets: list[Any], resources: dict[str, Any]) -> RunResult:
        return run_assets(assets, resources, executor="dask", executor_config=CONFIG)

    figures["separate"] = _timed_runs(runs, separate, w.SlowResource)
    for label, resource in (
        ("session", w.SlowResource),
        ("session, session-scoped resource", SessionSlowResource),
    ):
        with Session(executor="dask", executor_config=CONFIG) as session:
            figures[label] = _timed_runs(runs, session.run_assets, resource)
    base = figures["separate"]["later_median_s"]
    figures["separate_over_session"] = {
        label: base / figures[label]["later_median_s"]
        for label in ("session", "session, session-scoped resource")
    }
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(dask_sessions(), indent=2))
