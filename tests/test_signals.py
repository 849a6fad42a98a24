"""SIGINT and SIGTERM to a run at every phase, and SIGKILL of a worker: survivors tear down.

The run is a real process: ``host run`` (the console script) or a Python script calling
``run_assets``, on the in-process and multiprocess executors, and on Dask clusters.
``host-plugin-faults`` holds the run for a second at the chosen phase (a plan in
``HOST_FAULTS``, which the installed plugin reads, or which the script passes to the run) and
logs that it got there; the test then sends the signal from outside, to the process that
called the run. The evidence is the resources' own records. Exit codes:

* ``host run``: 130 after SIGINT, 143 after SIGTERM, 1 when a worker was killed (the run
  failed), each after every surviving resource was torn down;
* a Python script: killed by SIGINT (``-2``: Python re-raises it once ``KeyboardInterrupt`` has
  unwound the run), or 143 after SIGTERM (``SystemExit(143)``).

The process must end after the signal; the wait is generous (30 s) and no duration is asserted.
The default run covers every phase for ``host run`` and a few combinations elsewhere; the whole
matrix (every phase, both signals, every kind of caller) runs with ``pytest -m slow
tests/test_signals.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from host_plugin_faults import ASSET_PHASES, PHASES, read_log

from host._discovery import RESOURCES_GROUP
from tests.dists import HOST, environ, make_dist
from tests.recording import read
from tests.test_contract import check_lifecycle

ROOT = Path(__file__).resolve().parent.parent

ASSETS = """
from tests.graphs import make_asset

first = make_asset("first", resources=["a"])
second = make_asset("second", upstream=["first"], resources=["b"])
"""

RUN = """
[run]
assets = ["signal_assets"]
executor = "EXECUTOR"
executor_config = CONFIG

[resources.a]
type = "gensig.recorded"
[resources.a.config]
record = "RECORD"
label = "a"

[resources.b]
type = "gensig.pair"
[resources.b.config]
record = "RECORD"
label = "b"
inner = { resource = "a" }
"""

SCRIPT = """
import json, os, sys
from host import load_run_config
from host_plugin_faults import Faults

if __name__ == "__main__":
    # The plan goes with the run (to every worker, a running Dask cluster's too).
    plan = json.loads(os.environ.pop("HOST_FAULTS"))
    faults = Faults(*plan["faults"], log=plan["log"], state_dir=plan["state_dir"])
    load_run_config(sys.argv[1]).run(plugins=[faults])
"""

#: Where the run is held: the phase, and the key there (``b`` needs ``a``, which is up first).
KEYS = {phase: ("second" if phase in ASSET_PHASES else "b") for phase in PHASES}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A distribution registering the recording resources as resource types."""
    site = tmp_path_factory.mktemp("signal-site")
    make_dist(
        site,
        "gen-signals",
        entry_points={
            RESOURCES_GROUP: {
                "gensig.recorded": "tests.recording:Recorded",
                "gensig.pair": "tests.recording:RecordedPair",
            }
        },
    )
    return site


@dataclass
class Run:
    """A run in a subprocess, held at one phase."""

    process: subprocess.Popen[str]
    record: Path
    log: Path

    def wait_until_held(self) -> dict[str, Any]:
        """Wait for the fault plugin to log that the run reached its phase; the log line."""
        deadline = time.monotonic() + 60
        while not (fired := read_log(self.log)):
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"the run ended before its phase:\n{out}\n{err}")
            assert time.monotonic() < deadline, "the run never reached its phase"
            time.sleep(0.02)
        return fired[0]

    def finish(self) -> tuple[int, str, str]:
        """Wait (generously) for the process to end; its exit code and output."""
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


@pytest.fixture
def start(site: Path, tmp_path: Path) -> Iterator[Any]:
    """Start a run held at a phase: ``start(phase, executor, how="host"|"script")``."""
    started: list[subprocess.Popen[str]] = []

    def start(
        phase: str,
        executor: str = "in_process",
        how: str = "host",
        config: str = "{}",
        hold: float = 1.0,
    ) -> Run:
        record, log = tmp_path / "records.jsonl", tmp_path / "faults.jsonl"
        (tmp_path / "signal_assets.py").write_text(textwrap.dedent(ASSETS))
        text = (
            RUN.replace("EXECUTOR", executor)
            .replace("CONFIG", config)
            .replace("RECORD", str(record))
        )
        run_config = tmp_path / "run.toml"
        run_config.write_text(textwrap.dedent(text))
        (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT))
        plan = {
            "faults": [
                {"phase": phase, "key": KEYS[phase], "action": "hang", "hang_seconds": hold,
                 "once": True}
            ],
            "log": str(log),
            "state_dir": str(tmp_path / "state"),
        }
        env = environ(
            None,
            PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]),
            HOST_FAULTS=json.dumps(plan),
        )
        command = (
            [HOST, "run", "--plain", str(run_config)]
            if how == "host"
            else [sys.executable, str(tmp_path / "script.py"), str(run_config)]
        )
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return Run(process, record, log)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def check_torn_down(run: Run, dead: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    """Every resource that came up (wrote "up") in a surviving process was torn down, once, in
    reverse order; one interrupted while coming up was not."""
    records = read(run.record)
    check_lifecycle(records)
    ups = {(r["label"], r["pid"]) for r in records if r["event"] == "up"}
    teardowns = {(r["label"], r["pid"]) for r in records if r["event"] == "teardown"}
    assert ups, "nothing came up"
    for label, pid in ups:
        if pid not in dead:
            assert (label, pid) in teardowns, f"{label} was left up in process {pid}"
    assert teardowns <= ups
    return records


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


_CODES = {"SIGINT": (signal.SIGINT, 130, -signal.SIGINT), "SIGTERM": (signal.SIGTERM, 143, 143)}


def matrix(phases: list[str] | tuple[str, ...], default: set[tuple[str, str]]) -> list[Any]:
    """(phase, signal number, host exit code, script exit code) for every phase and signal;
    the combinations not in ``default`` run in the slow job only (``-m slow``)."""
    params = []
    for phase in phases:
        for name, (signum, host_code, script_code) in _CODES.items():
            marks = () if (phase, name) in default else (pytest.mark.slow,)
            params.append(
                pytest.param(phase, signum, host_code, script_code, id=f"{phase}-{name}",
                             marks=marks)
            )
    return params


ALL = "phase", "signum", "host_code", "script_code"


# -- host run, every phase -------------------------------------------------------------------


@pytest.mark.parametrize(ALL, matrix(PHASES, {(p, s) for p in PHASES for s in _CODES}))
def test_a_signal_to_host_run_at_every_phase(
    start: Any, phase: str, signum: int, host_code: int, script_code: int
) -> None:
    run = start(phase)
    held = run.wait_until_held()
    assert held["pid"] == run.process.pid  # the in-process executor: the phase runs right there
    run.process.send_signal(signum)
    code, _, err = run.finish()
    assert code == host_code, err
    check_torn_down(run)
    word = "interrupted (SIGINT)" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert f"host: error: {word}" in err


#: The worker phases the default run signals the ``multiprocess`` caller at, with SIGTERM: one
#: while a resource comes up, one in an asset, one while a resource goes down (every phase runs
#: on ``in_process`` by default, above; every phase with both signals under ``-m slow``).
WORKER_PHASES_BY_DEFAULT = ("setup", "asset_body", "teardown")


@pytest.mark.parametrize(
    ALL,
    matrix(
        PHASES,
        {(p, "SIGTERM") for p in WORKER_PHASES_BY_DEFAULT} | {("asset_body", "SIGINT")},
    ),
)
def test_a_signal_to_host_run_while_a_worker_is_at_every_phase(
    start: Any, phase: str, signum: int, host_code: int, script_code: int
) -> None:
    run = start(phase, "multiprocess", config="{ max_workers = 2 }")
    held = run.wait_until_held()
    assert held["pid"] != run.process.pid  # the phase runs in a worker
    run.process.send_signal(signum)
    code, _, err = run.finish()
    assert code == host_code, err
    records = check_torn_down(run)
    workers = {r["pid"] for r in records}
    assert run.process.pid not in workers and all(_gone(pid) for pid in workers)


def test_a_second_sigint_stops_waiting_for_a_teardown_that_hangs(start: Any) -> None:
    """The first SIGINT waits for the teardown; a second one abandons it (as Ctrl-C twice)."""
    run = start("teardown", hold=600.0)  # b's teardown hangs (after b's own code ran)
    run.wait_until_held()
    run.process.send_signal(signal.SIGINT)
    time.sleep(0.2)  # (ordering only: the first is held before the second arrives)
    assert run.process.poll() is None  # held: still tearing down
    run.process.send_signal(signal.SIGINT)
    code, _, err = run.finish()
    assert code == 130, err
    downs = [r["label"] for r in read(run.record) if r["event"] == "teardown"]
    assert downs == ["b", "a"]  # the hang was abandoned; the next teardown still ran


# -- a process inside run_assets -------------------------------------------------------------


@pytest.mark.parametrize(
    ALL, matrix(PHASES, {("asset_body", "SIGINT"), ("teardown", "SIGTERM")})
)
@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_a_signal_to_a_script_inside_run_assets(
    start: Any, executor: str, phase: str, signum: int, host_code: int, script_code: int
) -> None:
    config = "{ max_workers = 2 }" if executor == "multiprocess" else "{}"
    run = start(phase, executor, how="script", config=config)
    run.wait_until_held()
    run.process.send_signal(signum)
    code, _, err = run.finish()
    assert code == script_code, err
    check_torn_down(run)


@pytest.mark.parametrize(ALL, matrix(PHASES, {("asset_body", "SIGINT"), ("teardown", "SIGTERM")}))
def test_a_signal_to_a_script_running_on_a_dask_cluster(
    start: Any,
    host_dask_address: str,
    phase: str,
    signum: int,
    host_code: int,
    script_code: int,
) -> None:
    run = start(phase, "dask", how="script", config=f'{{ address = "{host_dask_address}" }}')
    held = run.wait_until_held()
    assert held["pid"] != run.process.pid  # a worker of the session's cluster
    run.process.send_signal(signum)
    code, _, err = run.finish()
    assert code == script_code, err
    check_torn_down(run)


@pytest.mark.parametrize(ALL, matrix(["asset_body"], {("asset_body", "SIGTERM")}))
def test_a_signal_to_host_run_on_its_own_dask_cluster(
    start: Any, phase: str, signum: int, host_code: int, script_code: int
) -> None:
    run = start(phase, "dask", config="{ n_workers = 1 }")
    held = run.wait_until_held()
    assert held["pid"] != run.process.pid
    run.process.send_signal(signum)
    code, _, err = run.finish()
    assert code == host_code, err
    records = check_torn_down(run)
    assert all(_gone(pid) for pid in {r["pid"] for r in records})  # the cluster is closed


# -- SIGKILL of a worker ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "phase",
    [
        pytest.param(p, marks=() if p in ("asset_body", "teardown") else pytest.mark.slow)
        for p in PHASES
    ],
)
def test_sigkill_of_a_worker_at_every_phase(start: Any, phase: str) -> None:
    run = start(phase, "multiprocess", config="{ max_workers = 2 }")
    held = run.wait_until_held()
    victim = held["pid"]
    os.kill(victim, signal.SIGKILL)
    code, out, err = run.finish()
    assert code == 1, err  # the run failed, and says why
    assert f"worker process {victim}" in out + err
    assert "killed by signal SIGKILL" in out + err
    records = check_torn_down(run, dead=frozenset({victim}))
    left = {
        r["label"] for r in records if r["pid"] == victim and r["event"] == "setup"
    } - {r["label"] for r in records if r["pid"] == victim and r["event"] == "teardown"}
    for label in left:  # what the dead worker held is reported as not torn down
        assert f"resource '{label}'" in err
        assert "was not torn down" in err
    assert all(_gone(pid) for pid in {r["pid"] for r in records})
