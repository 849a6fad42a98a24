"""A session's warm ``multiprocess`` workers: one killed between runs is replaced, and what it
held is reported lost when the session closes; one killed during a run reports it in that run.
Records are written by the resources themselves, per pid."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from host import Session, SessionTeardownError, asset
from tests.processes import assert_no_child_left, children
from tests.recording import read
from tests.sessions import SessionControlled, set_faults


@asset
def where(db: SessionControlled) -> int:
    db.use()
    return os.getpid()


@asset
def dies(db: SessionControlled) -> int:
    db.use()
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def _gone(pid: int) -> None:
    for _ in range(200):
        if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still there")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


LIFECYCLE = ("setup", "up", "teardown")


def _events(records: list[dict[str, Any]], pid: int) -> list[str]:
    return [r["event"] for r in records if r["pid"] == pid and r["event"] in LIFECYCLE]


def _replaced(records: list[dict[str, Any]], first: int, after: int) -> None:
    """The interrupted worker ``first`` brought its session resource up and down once, by
    itself, and so did ``after``, which replaced it (down at close)."""
    assert _events(records, first) == ["setup", "up", "teardown"]
    assert _events(records, after) == ["setup", "up", "teardown"]


def test_a_worker_killed_between_runs_is_replaced_and_its_resources_reported_lost(
    record: str,
) -> None:
    before = set(children())
    resources = {"db": SessionControlled(record=record, label="db")}
    session = Session("multiprocess", {"max_workers": 1})
    with pytest.raises(SessionTeardownError) as info, session:
        killed = session.run_assets([where], resources).outputs["where"]
        os.kill(killed, signal.SIGKILL)
        _gone(killed)
        second = session.run_assets([where], resources).outputs["where"]
        third = session.run_assets([where], resources).outputs["where"]
    assert second != killed and third == second  # replaced once, then kept
    (lost,) = info.value.errors
    assert lost.resource_key == "db" and f"worker process {killed}" in lost.message
    assert "not torn down" in lost.message and "SIGKILL" in lost.message
    records = read(record)
    assert _events(records, killed) == ["setup", "up"]  # it never went down: it was killed
    assert _events(records, second) == ["setup", "up", "teardown"]  # once, at close
    assert session.teardown_errors == list(info.value.errors)
    assert_no_child_left(before)


def test_a_worker_killed_just_before_the_next_run_is_replaced_in_that_run(record: str) -> None:
    """Killed and, at once, the next run: it may still look alive when the run takes it."""
    before = set(children())
    resources = {"db": SessionControlled(record=record, label="db")}
    session = Session("multiprocess", {"max_workers": 1})
    killed = []
    with pytest.raises(SessionTeardownError) as info, session:
        pid = session.run_assets([where], resources).outputs["where"]
        for _ in range(3):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            pid = session.run_assets([where], resources).outputs["where"]  # no WorkerError
    assert len(set(killed) | {pid}) == 4
    # Each killed worker's session resource is reported once, at close.
    assert sorted(e.message for e in info.value.errors) == sorted(
        f"session resource 'db' was not torn down: worker process {k}, where it was up, "
        f"killed by signal SIGKILL."
        for k in killed
    )
    records = read(record)
    for k in killed:
        assert _events(records, k) == ["setup", "up"]
    assert _events(records, pid) == ["setup", "up", "teardown"]
    assert_no_child_left(before)


def test_a_worker_that_dies_during_a_run_reports_its_session_resources_in_that_run(
    record: str,
) -> None:
    before = set(children())
    resources = {"db": SessionControlled(record=record, label="db")}
    with Session("multiprocess", {"max_workers": 1}) as session:
        first = session.run_assets([where], resources).outputs["where"]
        broken = session.run_assets([dies], resources, raise_on_error=False)
        after = session.run_assets([where], resources).outputs["where"]
    assert not broken.success and "died" in broken.failures["dies"].message
    assert [e.resource_key for e in broken.resource_errors] == ["db"]
    assert f"worker process {first}" in broken.resource_errors[0].message
    assert after != first
    assert session.teardown_errors == []  # reported once, in the run where it happened
    records = read(record)
    assert _events(records, after) == ["setup", "up", "teardown"]
    assert_no_child_left(before)


@asset
def signalled(db: SessionControlled) -> int:
    """Sends its own worker the signal named in ``db``'s label suffix, then waits to be
    interrupted by it."""
    db.use()
    os.kill(os.getpid(), getattr(signal, db.label.rsplit("-", 1)[1]))
    time.sleep(30)
    return 0


@pytest.mark.parametrize(
    "name", ["SIGINT", "SIGTERM", pytest.param("SIGHUP", marks=pytest.mark.slow)]
)
def test_a_worker_interrupted_during_a_run_is_not_kept_and_the_next_run_gets_a_new_one(
    record: str, name: str
) -> None:
    before = set(children())
    resources = {"db": SessionControlled(record=record, label=f"db-{name}")}
    with Session("multiprocess", {"max_workers": 1}) as session:
        first = session.run_assets([where], resources).outputs["where"]
        broken = session.run_assets([signalled], resources, raise_on_error=False)
        after = session.run_assets([where], resources).outputs["where"]  # no WorkerError
    assert not broken.success and set(broken.failures) == {"signalled"}
    assert after != first
    _replaced(read(record), first, after)
    assert session.teardown_errors == []
    assert_no_child_left(before)


def test_a_failed_teardown_of_a_worker_interrupted_during_a_run_is_reported_once_at_close(
    record: str, tmp_path: Path
) -> None:
    before = set(children())
    control = str(tmp_path / "control.json")
    resources = {"db": SessionControlled(record=record, label="db-SIGTERM", control=control)}
    session = Session("multiprocess", {"max_workers": 1})
    with pytest.raises(SessionTeardownError) as info, session:
        first = session.run_assets([where], resources).outputs["where"]
        set_faults(control, teardown=["db-SIGTERM"])  # the interrupted worker's teardown fails
        broken = session.run_assets([signalled], resources, raise_on_error=False)
        after = session.run_assets([where], resources).outputs["where"]  # waited for it
        set_faults(control)  # the new worker's teardown, at close, goes well
    assert not broken.success and after != first
    (error,) = info.value.errors
    assert error.resource_key == "db" and "failed on purpose" in error.message
    assert session.teardown_errors == [error]
    _replaced(read(record), first, after)
    assert_no_child_left(before)


@pytest.mark.parametrize("name", ["SIGINT", pytest.param("SIGTERM", marks=pytest.mark.slow)])
def test_a_worker_interrupted_in_a_host_check_tears_down_and_the_next_run_gets_a_new_one(
    record: str, tmp_path: Path, name: str
) -> None:
    before = set(children())
    control = str(tmp_path / "control.json")
    resources = {"db": SessionControlled(record=record, label="db", control=control)}
    with Session("multiprocess", {"max_workers": 1}) as session:
        first = session.run_assets([where], resources).outputs["where"]
        set_faults(control, check={"db": name})  # the check before reuse gets the signal
        broken = session.run_assets([where], resources, raise_on_error=False)
        set_faults(control)
        after = session.run_assets([where], resources).outputs["where"]
    assert not broken.success and "where" not in broken.outputs
    assert after != first
    _replaced(read(record), first, after)
    assert session.teardown_errors == []
    assert_no_child_left(before)
