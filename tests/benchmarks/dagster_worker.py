"""Dagster's side of the benchmarks; runs in Dagster's own virtual environment, never in .venv.

It imports only the standard library and Dagster, and builds the same workloads as
``_workloads.py`` (same functions, same resources, same lifecycle methods). Started by the
runner, it reads one JSON request per line on stdin, times the request inside this process
exactly as the runner times host (``time.perf_counter`` around the run call, ``gc.collect()``
first), and writes one JSON answer per line on the original stdout (Dagster's own output goes to
stderr).

Requests: ``{"op": "version"}``, ``{"op": "fan", "n": N}``, ``{"op": "chain", "n": N}``,
``{"op": "mp_fan"}``, ``{"op": "quit"}``.

In-process runs use ``dagster.materialize`` with ``mem_io_manager`` (outputs stay in memory, as
host keeps them: Dagster is not charged for writing pickles to disk). The multiprocess fan runs an
asset job on ``multiprocess_executor`` with ``max_concurrent=2`` against a temporary persistent
instance, as Dagster requires for that executor.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg

#: How often each lifecycle method ran in this process.
COUNTS: dict[str, int] = {"setup": 0, "teardown": 0, "yield": 0}
#: Where :class:`SlowResource` leaves one file per setup (read in every step process).
COUNTER_DIR_VAR = "HOST_BENCH_COUNTER_DIR"
MP_ASSETS = 16


class SetupTeardownResource(dg.ConfigurableResource):  # type: ignore[misc]
    label: str = "setup"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        COUNTS["setup"] += 1

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        COUNTS["teardown"] += 1


class YieldResource(dg.ConfigurableResource):  # type: ignore[misc]
    label: str = "yield"

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[Any]:
        COUNTS["yield"] += 1
        yield self


class PlainResource(dg.ConfigurableResource):  # type: ignore[misc]
    label: str = "plain"


class SlowResource(dg.ConfigurableResource):  # type: ignore[misc]
    counter_dir: str
    delay: float = 0.05

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        time.sleep(self.delay)
        Path(self.counter_dir, f"setup-{os.getpid()}-{uuid.uuid4().hex}").touch()


def _fan(
    setup_res: SetupTeardownResource, yield_res: YieldResource, plain_res: PlainResource
) -> int:
    return 1


def _slow(slow: SlowResource) -> int:
    return os.getpid()


def _copies(fn: Callable[..., Any], prefix: str, n: int) -> list[Callable[..., Any]]:
    result: list[Callable[..., Any]] = []
    for i in range(n):
        name = f"{prefix}_{i}"
        copy = types.FunctionType(fn.__code__, fn.__globals__, name)
        # Evaluated annotations, as without ``from __future__ import annotations``.
        copy.__annotations__ = typing.get_type_hints(fn)
        copy.__qualname__ = name
        result.append(copy)
    return result


def _chain_functions(n: int) -> list[Callable[..., Any]]:
    lines = ["def chain_0() -> int:\n    return 0\n"]
    for i in range(1, n):
        lines.append(f"def chain_{i}(chain_{i - 1}: int) -> int:\n    return chain_{i - 1} + 1\n")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<chain {n}>", "exec"), namespace)
    return [namespace[f"chain_{i}"] for i in range(n)]


def mp_fan_job() -> dg.JobDefinition:
    """The multiprocess fan as a job; module-level so every step process can rebuild it."""
    slow = SlowResource(counter_dir=os.environ.get(COUNTER_DIR_VAR, tempfile.gettempdir()))
    assets = [dg.asset(fn) for fn in _copies(_slow, "mp", MP_ASSETS)]
    job = dg.define_asset_job(
        "mp_fan", executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2})
    )
    defs = dg.Definitions(assets=assets, resources={"slow": slow}, jobs=[job])
    return defs.resolve_job_def("mp_fan")


_built: dict[tuple[str, int], list[Any]] = {}


def _assets(kind: str, n: int) -> list[Any]:
    if (kind, n) not in _built:
        _built.clear()
        functions = _copies(_fan, "fan", n) if kind == "fan" else _chain_functions(n)
        _built[kind, n] = [dg.asset(fn) for fn in functions]
    return _built[kind, n]


def _materialize(kind: str, n: int) -> dict[str, Any]:
    assets = _assets(kind, n)
    resources: dict[str, Any] = {"io_manager": dg.mem_io_manager}
    if kind == "fan":
        resources.update(
            setup_res=SetupTeardownResource(), yield_res=YieldResource(), plain_res=PlainResource()
        )
    before = dict(COUNTS)
    gc.collect()
    start = time.perf_counter()
    result = dg.materialize(assets, resources=resources)
    seconds = time.perf_counter() - start
    assert result.success
    return {
        "seconds": seconds,
        "setups": COUNTS["setup"] - before["setup"] + COUNTS["yield"] - before["yield"],
    }


_counter_dirs: list[str] = []


def _counter_dir() -> str:
    if not _counter_dirs:
        _counter_dirs.append(tempfile.mkdtemp(prefix="host-bench-dagster-"))
        atexit.register(shutil.rmtree, _counter_dirs[0], True)
    return _counter_dirs[0]


def _mp_fan() -> dict[str, Any]:
    """One multiprocess run; setups counted from the files each step process left behind.

    The counter directory lives as long as this worker: Dagster keeps the job it rebuilt in this
    process (with the directory it read then) from one run to the next.
    """
    from dagster import DagsterInstance, execute_job, reconstructable

    counter_dir = _counter_dir()
    os.environ[COUNTER_DIR_VAR] = counter_dir
    for name in os.listdir(counter_dir):
        os.remove(os.path.join(counter_dir, name))
    with (
        tempfile.TemporaryDirectory() as home,
        DagsterInstance.local_temp(tempdir=home) as instance,
    ):
        gc.collect()
        start = time.perf_counter()
        outcome = execute_job(reconstructable(mp_fan_job), instance=instance)
        seconds = time.perf_counter() - start
        assert outcome.success
    setups = sum(1 for name in os.listdir(counter_dir) if name.startswith("setup-"))
    return {"seconds": seconds, "setups": setups}


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    op = request["op"]
    if op == "version":
        return {"version": dg.__version__, "python": sys.version.split()[0]}
    if op in ("fan", "chain"):
        return _materialize(op, int(request["n"]))
    if op == "mp_fan":
        return _mp_fan()
    raise ValueError(f"unknown request {op!r}")


def main() -> None:
    """Serve requests until ``quit`` or end of input."""
    # Dagster walks the asset graph recursively: a chain of 1000 assets overflows the default
    # limit (RecursionError while it builds the job). Speed is not affected.
    sys.setrecursionlimit(20_000)
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # anything printed goes to stderr
    _materialize("fan", 10)  # warm up: Dagster imports much of itself lazily
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        try:
            answer = _answer(request)
        except Exception:
            answer = {"error": traceback.format_exc()}
        protocol.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
