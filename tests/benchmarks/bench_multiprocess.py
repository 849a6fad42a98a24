"""Benchmark (not a test): 16 assets needing a resource whose setup sleeps 50 ms, 2 workers.

For each process executor, counts the setups (expected: exactly 2, one per worker process) and
times the whole ``run_assets`` call, median of several runs:

* ``multiprocess`` with ``start_method="spawn"`` (the default) and ``"forkserver"``;
* ``dask`` on a LocalCluster the run starts and closes, and on a running cluster (``address``).

It also times bare worker start-up per start method: two processes that import the host's worker
module and answer (what every multiprocess run pays before its first asset).

Run it from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_multiprocess [--runs 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from host import AssetDefinition, ConfigurableResource, InitResourceContext, asset, run_assets

ASSETS = 16
WORKERS = 2
SETUP_SECONDS = 0.05


class SlowResource(ConfigurableResource):
    """Takes 50 ms to come up; leaves one file per setup in ``directory``."""

    directory: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        time.sleep(SETUP_SECONDS)
        Path(self.directory, f"setup-{os.getpid()}-{time.monotonic_ns()}").touch()


def _make(i: int) -> AssetDefinition:
    @asset(name=f"a{i}")
    def compute(slow: SlowResource) -> int:
        return i

    return compute


def _run(executor: str, config: dict[str, Any]) -> tuple[float, int]:
    """One timed run: (seconds, setups)."""
    assets = [_make(i) for i in range(ASSETS)]
    with tempfile.TemporaryDirectory() as directory:
        resources = {"slow": SlowResource(directory=directory)}
        start = time.perf_counter()
        result = run_assets(assets, resources, executor=executor, executor_config=config)
        seconds = time.perf_counter() - start
        assert len(result.outputs) == ASSETS
        return seconds, len(os.listdir(directory))


def _measure(label: str, runs: int, once: Callable[[], tuple[float, int]]) -> None:
    samples = [once() for _ in range(runs)]
    times = [seconds for seconds, _ in samples]
    setups = sorted({n for _, n in samples})
    counted = "/".join(map(str, setups))
    print(
        f"{label:<44} setups {counted:>5}   median {statistics.median(times):6.3f} s"
        f"   min {min(times):6.3f} s   max {max(times):6.3f} s"
    )


def _answer(conn: Connection) -> None:
    import host.executors._worker  # noqa: F401  (what a worker imports)

    conn.send(os.getpid())
    conn.close()


def _startup(method: str) -> tuple[float, int]:
    context = multiprocessing.get_context(method)
    start = time.perf_counter()
    pairs = []
    for _ in range(WORKERS):
        parent, child = context.Pipe()
        process = context.Process(target=_answer, args=(child,))
        process.start()
        child.close()
        pairs.append((parent, process))
    for parent, _ in pairs:
        parent.recv()
    seconds = time.perf_counter() - start
    for _, process in pairs:
        process.join()
    return seconds, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per case (default 7)")
    runs = parser.parse_args().runs
    print(f"{ASSETS} assets, resource setup {SETUP_SECONDS * 1000:.0f} ms, {WORKERS} workers, "
          f"{runs} runs each, {os.cpu_count()} CPUs\n")

    print("worker start-up (2 processes importing the host's worker module):")
    for method in ("spawn", "forkserver", "fork"):
        _measure(f"  {method}", runs, lambda m=method: _startup(m))  # type: ignore[misc]

    print("\nwhole run_assets call:")
    for method in ("spawn", "forkserver"):
        config = {"max_workers": WORKERS, "start_method": method}
        _run("multiprocess", config)  # warm-up (imports, forkserver start)
        _measure(f"  multiprocess ({method})", runs, lambda c=config: _run("multiprocess", c))

    if importlib.util.find_spec("host_plugin_dask") is None:
        print("  dask: skipped, host-plugin-dask is not installed")
        return
    own = {"n_workers": WORKERS, "threads_per_worker": 1}
    _measure("  dask (LocalCluster started by each run)", max(3, runs // 2),
             lambda: _run("dask", own))
    from distributed import LocalCluster

    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster:
        by_address = {"address": cluster.scheduler_address}
        _run("dask", by_address)  # warm-up
        _measure("  dask (running LocalCluster, by address)", runs,
                 lambda: _run("dask", by_address))


if __name__ == "__main__":
    main()
