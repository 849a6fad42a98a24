"""SIGINT and SIGTERM to a script holding a ``host.Session``, while a run in it is inside an asset.

The script opens a session, runs once (the session resource comes up in each process that ran an
asset), and starts a second run whose asset waits in the session resource's process until it is
signalled. What must hold, on every executor that keeps sessions: the script ends as Python ends
on that signal (SIGINT: killed by it once ``KeyboardInterrupt`` has unwound the session; SIGTERM:
``SystemExit(143)``), every session resource that came up is torn down exactly once per process,
every run resource too, and no process that wrote a record is left (``/proc``). The evidence is
what the resources wrote themselves (``tests.sessions.Controlled``), counted per process.

The default run signals one combination per executor; the rest run under ``-m slow``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.processes import assert_no_child_left, children
from tests.recording import read
from tests.sessions import alive, by_pid, worker_pids

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, os, pathlib, sys, time
from host import Session, asset
from tests.sessions import Controlled, SessionControlled

record, held, executor, config = sys.argv[1:5]


@asset
def warm(db, conn):
    return [db.use(), conn.use()]


@asset
def hold(db):
    db.use()
    pathlib.Path(held).write_text(str(os.getpid()))
    while True:
        time.sleep(0.01)


if __name__ == "__main__":
    resources = {
        "db": SessionControlled(record=record, label="db"),
        "conn": Controlled(record=record, label="conn"),
    }
    with Session(executor, json.loads(config)) as session:
        session.run_assets([warm], resources)
        session.run_assets([hold, warm], resources)
"""

EXECUTORS: dict[str, dict[str, Any]] = {
    "in_process": {},
    "multiprocess": {"max_workers": 2},
    "dask": {"n_workers": 2, "threads_per_worker": 1},
}

#: One signal per executor in the default run; the others under ``-m slow``.
DEFAULT = {("in_process", "SIGINT"), ("multiprocess", "SIGTERM"), ("dask", "SIGINT")}

#: How the script ends on each signal (``Popen.returncode``).
ENDS = {"SIGINT": -signal.SIGINT, "SIGTERM": 143}


def _cases() -> list[Any]:
    return [
        pytest.param(
            executor,
            name,
            marks=[] if (executor, name) in DEFAULT else [pytest.mark.slow],
            id=f"{executor}-{name}",
        )
        for executor in EXECUTORS
        for name in ENDS
    ]


def _wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the script ended before its asset was held:\n{out}\n{err}")
        assert time.monotonic() < deadline, "the asset was never held"
        time.sleep(0.05)


def _counts(rows: list[dict[str, Any]], label: str, event: str) -> dict[int, int]:
    found: dict[int, int] = {}
    for pid, mine in by_pid(rows).items():
        n = sum(1 for r in mine if r["label"] == label and r["event"] == event)
        if n:
            found[pid] = n
    return found


@pytest.mark.parametrize(("executor", "signal_name"), _cases())
def test_a_signal_during_a_session_run_tears_every_session_resource_down_once(
    tmp_path: Path, executor: str, signal_name: str
) -> None:
    if executor == "dask":
        pytest.importorskip("host_plugin_dask")
    script = tmp_path / "session_script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    record, held = tmp_path / "record.jsonl", tmp_path / "held"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    before = set(children())
    process = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(record),
            str(held),
            executor,
            json.dumps(EXECUTORS[executor]),
        ],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(held, process)
        process.send_signal(getattr(signal, signal_name))
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == ENDS[signal_name], (process.returncode, out, err)
    records = read(str(record))
    held_pid = int(held.read_text())
    db_ups = _counts(records, "db", "up")
    assert db_ups.get(held_pid) == 1, f"the held asset's process has no session resource: {db_ups}"
    assert _counts(records, "db", "setup") == db_ups == _counts(records, "db", "teardown")
    assert _counts(records, "conn", "up") == _counts(records, "conn", "teardown") != {}
    if executor != "in_process":
        assert held_pid != os.getpid() and held_pid in worker_pids(records)
    assert not alive(worker_pids(records) - {process.pid}), "a worker outlived the session"
    assert_no_child_left(before)
