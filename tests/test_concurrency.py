"""Runs at the same time on the same resource objects: 50 threads of one process, 10 processes.

Each run works on fresh copies: a resource's private state (``_run``: the run it was brought up
for, ``_up``) is never another run's, and every run's lifecycle is complete, counted from the
records each copy writes with its run id and pid. Half the runs fail on purpose (an injected
fault), which must not disturb the others.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from host_plugin_faults import Fault, Faults

from host import AssetExecutionContext, RunResult, asset, run_assets
from tests.recording import Recorded, RecordedPair, RecordedYield, read
from tests.test_contract import check_lifecycle

ROOT = Path(__file__).resolve().parent.parent
THREADS = 50
PROCESSES = 10

_barrier = threading.Barrier(THREADS)


@asset
def observe(
    plain: Recorded, pair: RecordedPair, held: RecordedYield, context: AssetExecutionContext
) -> tuple[str, ...]:
    """Waits until every run holds its resources up, then reports whose copies it got."""
    _barrier.wait(timeout=120)
    for resource in (plain, pair, held):
        resource.use()
    return (plain._run, pair._run, pair.inner._run, held._run, context.run_id)


@asset
def after(observe: tuple[str, ...], plain: Recorded) -> str:
    plain.use()
    return plain._run


def _resources(record: str) -> dict[str, Any]:
    inner = Recorded(record=record, label="inner")
    return {
        "plain": Recorded(record=record, label="plain"),
        "pair": RecordedPair(record=record, label="pair", inner=inner),
        "held": RecordedYield(record=record, label="held"),
    }


def check_runs(records: list[dict[str, Any]], run_ids: list[str]) -> None:
    """Per run and process: every copy came up once and went down once, in reverse order."""
    by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_run[record["run"]].append(record)
    assert sorted(by_run) == sorted(run_ids)
    for run_id, rows in by_run.items():
        check_lifecycle(rows)
        ups = [r["label"] for r in rows if r["event"] == "setup"]
        downs = [r["label"] for r in rows if r["event"] == "teardown"]
        assert sorted(ups) == ["held", "inner", "pair", "plain"], (run_id, ups)
        assert downs == ups[::-1], (run_id, ups, downs)


def test_fifty_runs_in_parallel_threads_share_no_private_state(record: str) -> None:
    resources = _resources(record)
    run_ids = [f"thread-run-{i}" for i in range(THREADS)]

    def one(i: int) -> RunResult:
        plugins = [Faults(Fault(phase="asset_end", action="raise", key="after"))] if i % 2 else []
        return run_assets(
            [observe, after], resources, run_id=run_ids[i], raise_on_error=False, plugins=plugins
        )

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(one, range(THREADS)))

    for i, result in enumerate(results):
        assert result.run_id == run_ids[i]
        assert result.outputs["observe"] == (run_ids[i],) * 5  # its own copies, every one
        if i % 2:
            assert result.failures["after"].type.endswith("InjectedFault")
        else:
            assert result.success and result.outputs["after"] == run_ids[i]
    check_runs(read(record), run_ids)
    # The objects passed in were never brought up themselves.
    for resource in (*resources.values(), resources["pair"].inner):
        assert (resource._up, resource._run) == (False, "")


SCRIPT = """
import pickle, sys
from host import run_assets
from host_plugin_faults import Fault, Faults
from tests.graphs import make_asset

ASSETS = [
    make_asset("first", resources=["plain", "pair"]),
    make_asset("second", resources=["held", "plain"]),
    make_asset("last", upstream=["first", "second"], resources=["pair"]),
]

if __name__ == "__main__":
    resources = pickle.loads(open(sys.argv[1], "rb").read())
    index = int(sys.argv[2])
    late = Faults(Fault(phase="asset_body", action="raise", key="last"))
    result = run_assets(
        ASSETS,
        resources,
        executor="multiprocess" if index % 2 else "in_process",
        executor_config={"max_workers": 2} if index % 2 else {},
        run_id=f"process-run-{index}",
        raise_on_error=False,
        plugins=[late] if index % 3 == 0 else [],
    )
    print(sorted(result.outputs), sorted(result.failures))
"""


def test_ten_runs_in_parallel_processes_on_the_same_resource_objects(
    record: str, tmp_path: Path, no_child_left: None
) -> None:
    objects = tmp_path / "resources.pkl"
    objects.write_bytes(pickle.dumps(_resources(record)))
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(objects), str(i)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for i, (process, (out, err)) in enumerate(zip(processes, outputs, strict=True)):
        assert process.returncode == 0, err
        failed = "['last']" if i % 3 == 0 else "[]"
        expected_outputs = "['first', 'second']" if i % 3 == 0 else "['first', 'last', 'second']"
        assert out.strip() == f"{expected_outputs} {failed}", (i, out, err)
    records = read(record)
    run_ids = [f"process-run-{i}" for i in range(PROCESSES)]
    by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in records:
        by_run[row["run"]].append(row)
    assert sorted(by_run) == sorted(run_ids)
    for run_id, rows in by_run.items():
        check_lifecycle(rows)  # per process of that run
        ups = {(r["label"], r["pid"]) for r in rows if r["event"] == "setup"}
        downs = {(r["label"], r["pid"]) for r in rows if r["event"] == "teardown"}
        assert ups == downs and ups, run_id
        uses = {(r["label"], r["pid"]) for r in rows if r["event"] == "use"}
        assert {(label, pid) for label, pid in uses} <= ups, run_id
