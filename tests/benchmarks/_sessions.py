"""Workload: the multiprocess fan, 10 runs in one ``host.Session`` against 10 separate calls.

The fan of 16 assets whose resource takes 50 ms to set up (``_workloads.mp_assets``), on 2
workers. Three contenders, interleaved in rounds, each sample a block of 10 runs:

* ``separate calls``: 10 ``run_assets`` calls (each starts its workers and sets the resource up
  in each);
* ``session``: 10 runs in one session (warm workers; the resource run-scoped, so set up again
  in each run);
* ``session, resource session-scoped``: the same with ``scope = "session"`` for the resource
  (set up once per worker for the whole session).

Reported: the median of runs 2-10 of each session against the median separate call (the
goal: at least 4x faster), and with the resource session-scoped the setups counted over the
10 runs (goal: exactly 2) and the median of its runs 2-10 (goal: under 30 ms), as a ratio to
the separate calls too. If ``tests/benchmarks/_sessions_dask.py`` exists, its
``dask_sessions(10)`` figures are included under ``dask``.
"""

from __future__ import annotations

import gc
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from host import Session, run_assets
from host.executors import MultiprocessExecutor
from tests.benchmarks import _workloads as w
from tests.benchmarks._harness import interleave

__all__ = ["RUNS", "run_sessions"]

RUNS = 10
CONFIG = {"max_workers": 2}
SCOPED = {"resources": {"slow": {"scope": "session"}}}


def _block(kind: str, per_run: list[list[float]], setups: list[int]) -> Callable[[], float]:
    """One sample: 10 runs of ``kind``; each run's seconds go to ``per_run``, the setups of
    the block to ``setups``."""
    assets = w.mp_assets()

    def sample() -> float:
        times: list[float] = []
        with tempfile.TemporaryDirectory() as counter_dir:
            resources = {"slow": w.SlowResource(counter_dir=counter_dir)}
            gc.collect()
            start = time.perf_counter()
            if kind == "separate calls":
                for _ in range(RUNS):
                    began = time.perf_counter()
                    result = run_assets(
                        assets, resources, executor="multiprocess", executor_config=CONFIG
                    )
                    times.append(time.perf_counter() - began)
                    assert len(result.outputs) == w.MP_ASSETS
            else:
                scoped = SCOPED if kind.endswith("session-scoped") else None
                with Session("multiprocess", CONFIG) as session:
                    for _ in range(RUNS):
                        began = time.perf_counter()
                        result = session.run_assets(assets, resources, run_config=scoped)
                        times.append(time.perf_counter() - began)
                        assert len(result.outputs) == w.MP_ASSETS
            seconds = time.perf_counter() - start
            setups.append(w.count_setups(counter_dir))
        per_run.append(times)
        return seconds

    return sample


def _figures(per_run: list[list[float]], setups: list[int], block: list[float]) -> dict[str, Any]:
    later = [s for times in per_run for s in times[1:]]
    return {
        "first_run_median_s": statistics.median(times[0] for times in per_run),
        "later_runs_median_s": statistics.median(later),
        "all_runs_median_s": statistics.median(s for times in per_run for s in times),
        "block_median_s": statistics.median(block),
        "setups_per_block": setups,
        "blocks": len(per_run),
        "runs_s": per_run,
    }


def run_sessions(repetitions: int) -> dict[str, Any]:
    """Time the three contenders (``repetitions`` blocks of 10 runs each), interleaved."""
    kinds = ("separate calls", "session", "session, resource session-scoped")
    per_run: dict[str, list[list[float]]] = {k: [] for k in kinds}
    setups: dict[str, list[int]] = {k: [] for k in kinds}
    contenders = {k: _block(k, per_run[k], setups[k]) for k in kinds}
    samples = interleave(contenders, dict.fromkeys(kinds, repetitions))
    figures: dict[str, Any] = {
        "runs_per_block": RUNS,
        "executor_config": CONFIG,
        "multiprocess_keeps_sessions": MultiprocessExecutor.supports_sessions,
        "contenders": {},
    }
    for kind in kinds:
        if samples[kind].error is not None:
            figures["contenders"][kind] = {"error": samples[kind].error}
            continue
        figures["contenders"][kind] = _figures(per_run[kind], setups[kind], samples[kind].seconds)
    separate = figures["contenders"].get("separate calls", {}).get("all_runs_median_s")
    if separate:
        for kind in kinds[1:]:
            entry = figures["contenders"].get(kind, {})
            if "later_runs_median_s" in entry:
                entry["separate_over_later_runs"] = separate / entry["later_runs_median_s"]
    if importlib.util.find_spec("tests.benchmarks._sessions_dask") is not None:
        from tests.benchmarks import _sessions_dask

        run_dask = getattr(_sessions_dask, "dask_sessions", None)
        figures["dask"] = (
            run_dask(RUNS)
            if callable(run_dask)
            else {"skipped": "tests/benchmarks/_sessions_dask.py has no dask_sessions"}
        )
    return figures
