"""Packs: in a session on dask, assets quick in an earlier run go to the workers several to a task.

Each asset says which Dask task it ran in (``distributed.get_worker().get_current_task()``), in
which process, and writes a record of its own; a control file the test writes before each run
says which asset fails, kills its worker, or hangs. The evidence is what the assets and the
run-scoped resource wrote, against what the run reports.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from dask_tracked import Tracked, count, read
from distributed import get_worker
from test_sessions import PerRun, assert_gone, check_run_lifecycle, worker_pids

from host import AssetDefinition, AssetSucceeded, RunResult, Session, asset

QUICK = 8
#: The assets take well under a millisecond; a loaded machine must not make one of them look
#: slower than ``pack_below`` (the default, 0.01 s, is a few Dask tasks' overhead).
PACK_BELOW = 0.5
SESSION = {"n_workers": 2, "pack_below": PACK_BELOW}


def _control(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def make_quick(i: int, control: str) -> AssetDefinition:
    name = f"quick_{i}"

    @asset(name=name)
    def quick(r: PerRun) -> dict[str, Any]:
        assert r._up
        todo = _control(control)
        here = {"pid": os.getpid(), "task": str(get_worker().get_current_task())}
        with open(r.record, "a") as out:
            out.write(json.dumps({"event": "ran", "asset": name, "run": todo["run"], **here}))
            out.write("\n")
        if todo.get("fail") == name:
            raise ValueError(f"{name} failed on purpose")
        if todo.get("kill") == name:
            os.kill(os.getpid(), signal.SIGKILL)
        if todo.get("hang") == name:
            while True:  # Python code: the run's timeout interrupts it
                time.sleep(0.01)
        if todo.get("block") == name:
            time.sleep(3)  # one call in C: the run's timeout cannot interrupt it
        return here

    return quick


def make_after() -> AssetDefinition:
    @asset(name="after_0")
    def after_0(quick_0: dict[str, Any]) -> int:
        return int(quick_0["pid"])

    return after_0


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    return str(tmp_path / "records.jsonl"), str(tmp_path / "control.json")


def _run(
    session: Session, assets: list[AssetDefinition], record: str, control: str, **todo: Any
) -> RunResult:
    """The next run of ``session``, with what the control file says its assets do."""
    Path(control).write_text(json.dumps({"run": len(session.runs), **todo}))
    return session.run_assets(assets, {"r": PerRun(record=record)}, raise_on_error=False)


def _learn(session: Session, assets: list[AssetDefinition], record: str, control: str) -> None:
    """Two runs: the first asset in each process takes longest (its first imports), so the
    second tells the session how long each takes when warm."""
    for _ in range(2):
        assert _run(session, assets, record, control).success


def _tasks(result: RunResult) -> set[str]:
    return {output["task"] for key, output in result.outputs.items() if key.startswith("quick")}


@pytest.mark.parametrize(
    ("threads", "pack_below", "tasks"),
    [
        pytest.param(1, None, 2, id="1 thread per worker: one pack per worker"),
        pytest.param(1, 0.0, QUICK, id="pack_below 0: one task per asset"),
        pytest.param(
            2, None, 4, id="2 threads per worker: one pack per thread", marks=pytest.mark.slow
        ),
    ],
)
def test_quick_assets_of_a_later_run_go_several_to_a_task_and_fail_alone(
    files: tuple[str, str], threads: int, pack_below: float | None, tasks: int
) -> None:
    record, control = files
    config: dict[str, Any] = {**SESSION, "threads_per_worker": threads}
    if pack_below is not None:
        config["pack_below"] = pack_below
    assets = [make_quick(i, control) for i in range(QUICK)]
    with Session(executor="dask", executor_config=config) as session:
        first = _run(session, assets, record, control)
        _run(session, assets, record, control)  # as _learn does, keeping the first result
        packed = _run(session, assets, record, control)
        # One asset of a pack fails: that one alone, and what is downstream of it is skipped.
        third = _run(session, [*assets, make_after()], record, control, fail="quick_0")
        pids = worker_pids(session)
    assert first.success and packed.success, (first.failures, packed.failures)
    assert len(_tasks(first)) == QUICK  # nothing known of the assets yet: one task each
    assert len(_tasks(packed)) == tasks
    for result in (packed, third):
        index = session.runs.index(result.run_id)
        ran = [r for r in read(record) if r["event"] == "ran" and r["run"] == index]
        assert sorted(r["asset"] for r in ran) == sorted(f"quick_{i}" for i in range(QUICK))
        # Each asset's own events, from the process it ran in.
        succeeded = {e.asset_key: e.pid for e in result.events if isinstance(e, AssetSucceeded)}
        outputs = {k: o["pid"] for k, o in result.outputs.items() if k.startswith("quick")}
        assert succeeded == outputs
    assert set(third.failures) == {"quick_0"}
    assert third.failures["quick_0"].type == "builtins.ValueError"
    assert "after_0" in third.skipped
    assert set(third.outputs) == {f"quick_{i}" for i in range(1, QUICK)}
    check_run_lifecycle(read(record), session.runs)
    assert_gone(pids)


def test_a_worker_that_dies_in_a_pack_fails_each_asset_of_it_and_the_session_goes_on(
    files: tuple[str, str],
) -> None:
    record, control = files
    assets = [make_quick(i, control) for i in range(QUICK)]
    with Session(executor="dask", executor_config=SESSION) as session:
        _learn(session, assets, record, control)
        result = _run(session, assets, record, control, kill="quick_3")
        client = session.executor.session_client(session.session_id)  # type: ignore[attr-defined]
        client.wait_for_workers(2, timeout=60)  # hang guard: the nanny restarts the dead one
        later = _run(session, assets, record, control)
        pids = worker_pids(session)
    ran = [r for r in read(record) if r["event"] == "ran" and r["run"] == 2]
    (dead,) = {r["pid"] for r in ran if r["asset"] == "quick_3"}
    task = next(r["task"] for r in ran if r["asset"] == "quick_3")
    # Every asset of the dead worker's pack fails (one pack of half the assets per worker):
    # those that ran before it, it, and those after it; their results went down with it.
    assert {r["asset"] for r in ran if r["task"] == task} <= set(result.failures)
    assert len(result.failures) == QUICK // 2
    for key, failure in result.failures.items():
        assert failure.type == "host._errors.WorkerDiedError", failure
        if key != "quick_3":
            assert "quick_3" in failure.message
            assert "whether each ran is not known" in failure.message
    # The other worker's pack came back whole.
    assert set(result.outputs) == {f"quick_{i}" for i in range(QUICK)} - set(result.failures)
    assert all(o["pid"] != dead for o in result.outputs.values())
    # The run's resource, up in the dead process, is reported; the other went down in the run.
    assert [e.resource_key for e in result.resource_errors] == ["r"]
    assert f"process {dead}" in result.resource_errors[0].message
    assert later.success and not later.resource_errors
    check_run_lifecycle([r for r in read(record) if r.get("run") == later.run_id], [later.run_id])
    assert_gone(pids | {dead})


def test_one_task_per_asset_a_worker_dies_holding_fails_each_saying_it_may_not_have_started(
    files: tuple[str, str],
) -> None:
    record, control = files
    assets = [make_quick(i, control) for i in range(QUICK)]
    with Session(executor="dask", executor_config={**SESSION, "pack_below": 0}) as session:
        _learn(session, assets, record, control)
        result = _run(session, assets, record, control, kill="quick_3")
        pids = worker_pids(session)
    ran = [r for r in read(record) if r["event"] == "ran" and r["run"] == 2]
    (dead,) = {r["pid"] for r in ran if r["asset"] == "quick_3"}
    # Dask handed the dying worker its share of the ready tasks at once: each fails, and
    # says it may not have started there.
    assert "quick_3" in result.failures
    for failure in result.failures.values():
        assert failure.type == "host._errors.WorkerDiedError", failure
        assert "Dask worker " in failure.message and " died while running asset " in failure.message
        assert "whether it had started is not known" in failure.message
    everything = set(result.outputs) | set(result.failures) | set(result.skipped)
    assert everything == {f"quick_{i}" for i in range(QUICK)}
    assert_gone(pids | {dead})


@pytest.mark.slow
def test_the_run_timeout_in_a_pack_stops_the_asset_running_and_those_after_it(
    files: tuple[str, str],
) -> None:
    record, control = files
    assets = [make_quick(i, control) for i in range(QUICK)]
    with Session(executor="dask", executor_config=SESSION) as session:
        _learn(session, assets, record, control)
        Path(control).write_text(json.dumps({"run": 2, "hang": "quick_2"}))
        result = session.run_assets(
            assets, {"r": PerRun(record=record)}, raise_on_error=False, timeout=3
        )
        pids = worker_pids(session)
    ran = {r["asset"] for r in read(record) if r["event"] == "ran" and r["run"] == 2}
    assert result.failures["quick_2"].type == "host._errors.RunTimeoutError"
    # Every asset is accounted for: those after it in its pack (one of half the assets) did
    # not start, past the run's timeout; the other pack came back whole.
    assert set(result.outputs) | set(result.failures) == {f"quick_{i}" for i in range(QUICK)}
    assert all(f.type == "host._errors.RunTimeoutError" for f in result.failures.values())
    assert len(result.failures) > 1 and not set(result.failures) - {"quick_2"} & ran
    assert not result.resource_errors
    check_run_lifecycle(read(record), session.runs)
    assert_gone(pids)


def test_a_pack_stuck_past_the_timeout_fails_each_asset_of_it_and_the_session_goes_on(
    files: tuple[str, str],
) -> None:
    record, control = files
    assets = [make_quick(i, control) for i in range(QUICK)]
    config = {**SESSION, "grace_period": 0.5}
    with Session(executor="dask", executor_config=config) as session:
        _learn(session, assets, record, control)
        Path(control).write_text(json.dumps({"run": 2, "block": "quick_2"}))
        result = session.run_assets(
            assets, {"r": PerRun(record=record)}, raise_on_error=False, timeout=1
        )
        (blocked,) = {r["pid"] for r in read(record) if r.get("asset") == "quick_2"}
        assert_gone({blocked})  # its nanny replaced it
        client = session.executor.session_client(session.session_id)  # type: ignore[attr-defined]
        client.wait_for_workers(2, timeout=60)
        later = _run(session, assets, record, control)
        pids = worker_pids(session)
    # Its pack (half the assets) gave no result: which of them had run is not known.
    assert "quick_2" in result.failures and len(result.failures) == QUICK // 2
    for failure in result.failures.values():
        assert failure.type == "host._errors.RunTimeoutError", failure
        assert "gave no result" in failure.message and "was restarted" in failure.message
        assert "whether each ran is not known" in failure.message
    # The other pack came back whole.
    assert set(result.outputs) == {f"quick_{i}" for i in range(QUICK)} - set(result.failures)
    assert later.success
    check_run_lifecycle([r for r in read(record) if r.get("run") == later.run_id], [later.run_id])
    assert_gone(pids)


class SessionTracked(Tracked):
    """:class:`Tracked`, session-scoped."""

    host_scope: ClassVar[Literal["run", "session"]] = "session"


@asset
def kept_user(kept: SessionTracked) -> int:
    kept.use()
    return os.getpid()


@asset
def blocked(kept: SessionTracked) -> int:
    kept.use()
    time.sleep(3)  # one call in C: the run's timeout cannot interrupt it
    return os.getpid()


def test_a_session_resource_a_restarted_worker_tore_down_is_not_reported_lost_at_close(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "records.jsonl")
    resources = {"kept": SessionTracked(path=path, label="kept")}
    config = {"n_workers": 1, "grace_period": 0.5}
    with Session(executor="dask", executor_config=config) as session:
        first = session.run_assets([kept_user], resources).outputs["kept_user"]
        stuck = session.run_assets([blocked], resources, timeout=1, raise_on_error=False)
        # Its nanny replaces it: once the call returns, it tears the session resource down.
        assert_gone({first})
        client = session.executor.session_client(session.session_id)  # type: ignore[attr-defined]
        client.wait_for_workers(1, timeout=60)
        after = session.run_assets([kept_user], resources).outputs["kept_user"]
    assert stuck.failures["blocked"].type == "host._errors.RunTimeoutError"
    assert after != first
    # Down once in each process, by the resource's own records; the close reported no loss.
    records = read(path)
    assert count(records, "setup") == count(records, "teardown")
    assert count(records, "setup") == {("kept", first): 1, ("kept", after): 1}
    assert session.teardown_errors == []
