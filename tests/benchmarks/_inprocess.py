"""Workloads 1 and 2: the in-process fan and chain, for host, the bare loop and Dagster."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from host import asset
from tests.benchmarks import _workloads as w
from tests.benchmarks._dagster import DagsterWorker
from tests.benchmarks._harness import Run, interleave, timed

__all__ = ["SIZES", "run_in_process"]

#: The asset counts of both workloads.
SIZES = (10, 100, 1000, 10000)


def _counting(run: Callable[[], Any]) -> Run:
    """Time ``run`` and report how many resource bring-ups (setup or yield) it made."""
    time_it = timed(run)

    def sample() -> tuple[float, dict[str, Any]]:
        before = w.COUNTS["setup"] + w.COUNTS["yield"]
        seconds = time_it()
        return seconds, {"setups": w.COUNTS["setup"] + w.COUNTS["yield"] - before}

    return sample


def _per_asset_overhead_us(results: Mapping[str, Any], n: int) -> dict[str, float]:
    """(median of a contender - median of the bare loop) / N, in microseconds."""
    if "median_s" not in results.get("bare", {}):
        return {}
    bare = results["bare"]["median_s"]
    return {
        name: (figures["median_s"] - bare) / n * 1e6
        for name, figures in results.items()
        if name != "bare" and "median_s" in figures
    }


def run_in_process(
    kind: str,
    sizes: Sequence[int],
    repetitions: Mapping[int, int],
    dagster: DagsterWorker | None,
    dagster_repetitions: Mapping[int, int],
) -> dict[str, Any]:
    """Time ``kind`` (``"fan"`` or ``"chain"``) at each size; contenders interleaved.

    Args:
        kind: the workload.
        sizes: the asset counts.
        repetitions: size -> samples of host and the bare loop.
        dagster: Dagster's worker, or ``None`` to leave Dagster out.
        dagster_repetitions: size -> samples of Dagster (0: not run at that size).
    """
    figures: dict[str, Any] = {}
    for n in sizes:
        if kind == "fan":
            functions = w.fan_functions(n)
            host_run = w.host_fan([asset(fn) for fn in functions])
            bare_run = w.bare_fan(functions)
        else:
            functions = w.chain_functions(n)
            host_run = w.host_chain([asset(fn) for fn in functions])
            bare_run = w.bare_chain(functions)
        contenders: dict[str, Run] = {"host": _counting(host_run), "bare": _counting(bare_run)}
        reps = {"host": repetitions[n], "bare": repetitions[n]}
        if dagster is not None and dagster_repetitions.get(n, 0) > 0:
            contenders["dagster"] = lambda n=n: dagster.run(kind, n=n)  # type: ignore[misc]
            reps["dagster"] = dagster_repetitions[n]
        samples = interleave(contenders, reps, warmup=("host", "bare"))
        del host_run, bare_run, functions
        results: dict[str, Any] = {name: s.as_json() for name, s in samples.items()}
        if dagster is not None and "dagster" not in results:
            results["dagster"] = {"skipped": f"not run at N={n} (see --dagster-max-n)"}
        results["overhead_us_per_asset"] = _per_asset_overhead_us(results, n)
        figures[str(n)] = results
    return figures
