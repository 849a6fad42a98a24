"""Sessions on the dask executor, on real LocalClusters the sessions start (2 worker processes).

The resources write their own records (one JSON line each, with the pid and the phase of the
test they happened in: ``run-N`` or ``close``, read from a control file the test writes before
each step). The control file also says which faults to raise: a session resource's setup, its
``host_check`` (false, or raising), its teardown, or an asset. The records are the evidence:
session resources come up once per worker process and go down once, at close, in reverse order;
run resources come up and go down within each run; the worker processes do not outlive the
session.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from dask_tracked import read
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import PrivateAttr

from host import (
    AssetDefinition,
    ConfigurableResource,
    InitResourceContext,
    ResourceEvent,
    ResourceRecycled,
    ResourceReused,
    RunFailure,
    Session,
    SessionTeardownError,
    asset,
)

DASK = {"executor": "dask", "executor_config": {"n_workers": 2, "threads_per_worker": 1}}
SESSION_LABELS = ("base", "inner", "pair")


def _write(path: str, **record: Any) -> None:
    """Append one record (short O_APPEND writes do not interleave between processes)."""
    line = json.dumps({**record, "pid": os.getpid()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _control(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def set_control(path: str, phase: str, **faults: Any) -> None:
    """What the resources do next: the phase they record, the faults they raise."""
    Path(path).write_text(json.dumps({"phase": phase, **faults}))


class Kept(ConfigurableResource):
    """Session-scoped; records setup, up, check, use and teardown; faults from the control."""

    host_scope: ClassVar[Literal["run", "session"]] = "session"

    record: str
    control: str
    label: str
    _up: bool = PrivateAttr(default=False)
    _uses: int = PrivateAttr(default=0)  # private state that must persist across runs

    def _note(self, event: str, context: InitResourceContext | None = None) -> dict[str, Any]:
        control = _control(self.control)
        key = context.resource_key if context is not None else ""
        _write(self.record, event=event, label=self.label, key=key, phase=control["phase"])
        return control

    def setup_for_execution(self, context: InitResourceContext) -> None:
        assert not self._up, f"{self.label} set up twice on one instance"
        if self.label in self._note("setup", context).get("setup", ()):
            raise RuntimeError(f"setup of {self.label} failed on purpose")
        self._up = True
        self._note("up", context)

    def host_check(self, context: InitResourceContext) -> bool:
        verdict = self._note("check", context).get("check", {}).get(self.label, "ok")
        if verdict == "raise":
            raise ConnectionError(f"{self.label} lost its connection on purpose")
        return bool(verdict == "ok")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        control = self._note("teardown", context)
        self._up = False
        if self.label in control.get("teardown", ()):
            raise RuntimeError(f"teardown of {self.label} failed on purpose")

    def use(self) -> dict[str, Any]:
        """Called by assets: fails unless up; says where and how often this copy was used."""
        assert self._up, f"{self.label} used while not up"
        self._uses += 1
        control = self._note("use")
        if control.get("asset"):
            raise ValueError("the asset failed on purpose")
        return {"pid": os.getpid(), "uses": self._uses}


class KeptPair(Kept):
    """Session-scoped, depending on another session-scoped resource."""

    inner: Kept

    def setup_for_execution(self, context: InitResourceContext) -> None:
        assert self.inner._up, f"{self.label} set up before its dependency"
        super().setup_for_execution(context)


class PerRun(ConfigurableResource):
    """Run-scoped: records setup and teardown with the run id."""

    record: str
    label: str = "run"
    _up: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        assert not self._up
        _write(self.record, event="setup", label=self.label, run=context.run_id)
        self._up = True

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        _write(self.record, event="teardown", label=self.label, run=context.run_id)
        self._up = False


def make_user(i: int) -> AssetDefinition:
    @asset(name=f"user_{i}")
    def user(base: Kept, pair: KeptPair, r: PerRun) -> dict[str, Any]:
        assert r._up
        pair.use()
        return base.use()

    return user


USERS = [make_user(i) for i in range(6)]


def resources(record: str, control: str) -> dict[str, Any]:
    inner = Kept(record=record, control=control, label="inner")
    return {
        "base": Kept(record=record, control=control, label="base"),
        "pair": KeptPair(record=record, control=control, label="pair", inner=inner),
        "r": PerRun(record=record),
    }


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    return str(tmp_path / "records.jsonl"), str(tmp_path / "control.json")


def worker_pids(session: Session) -> set[int]:
    client = session.executor.session_client(session.session_id)  # type: ignore[attr-defined]
    answers = client.run(os.getpid, on_error="return").values()
    return {pid for pid in answers if isinstance(pid, int)}


def assert_gone(pids: set[int]) -> None:
    """No process of ``pids`` is left (a hang guard, not a timing: the cluster's close joined
    its workers, /proc may lag a moment behind)."""
    until = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < until:
        time.sleep(0.05)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def check_session_lifecycle(
    records: list[dict[str, Any]], check_faults: dict[str, set[str]], closed_in: str = "close"
) -> Counter[tuple[int, str]]:
    """Replay the session resources' records per process: each one that came up went down
    exactly once. At close, last up first down; between runs only when its host_check failed
    in that phase (``check_faults``: phase -> labels), or that of "inner", which "pair"
    depends on, and never while "pair" is still up on "inner". Returns (pid, label) -> how
    many times it came up. ``closed_in``: the phase the session closed in."""
    stacks: dict[int, list[str]] = {}
    ups: Counter[tuple[int, str]] = Counter()
    for r in records:
        if r.get("label") not in SESSION_LABELS:
            continue
        stack = stacks.setdefault(r["pid"], [])
        label = r["label"]
        if r["event"] == "up":
            assert label not in stack, f"{label} up twice at once in {r['pid']}"
            stack.append(label)
            ups[r["pid"], label] += 1
        elif r["event"] == "teardown" and r["phase"] == closed_in:
            assert stack and stack[-1] == label, f"not last up first down: {r} on {stack}"
            stack.pop()
        elif r["event"] == "teardown":
            recycled = check_faults.get(r["phase"], set())
            because = {label, "inner"} if label == "pair" else {label}
            assert recycled & because, f"{label} torn down in {r['phase']} without a failed check"
            assert label in stack, f"{label} torn down while not up: {r}"
            assert not (label == "inner" and "pair" in stack), "inner went down under pair"
            stack.remove(label)
    assert all(not stack for stack in stacks.values()), f"left up: {stacks}"
    return ups


def check_run_lifecycle(records: list[dict[str, Any]], run_ids: list[str]) -> None:
    """The run-scoped resource: up at most once per run per process, down within the run."""
    per_run = [r for r in records if r.get("label") == "run"]
    setups = Counter((r["run"], r["pid"]) for r in per_run if r["event"] == "setup")
    downs = Counter((r["run"], r["pid"]) for r in per_run if r["event"] == "teardown")
    assert setups == downs
    assert set(setups.values()) <= {1}
    assert {run for run, _ in setups} <= set(run_ids)


def test_a_session_keeps_its_cluster_and_session_resources_across_runs(
    files: tuple[str, str],
) -> None:
    record, control = files
    with Session(**DASK) as session:
        results = []
        for i in range(3):
            set_control(control, f"run-{i}")
            results.append(session.run_assets(USERS, resources(record, control)))
            if i == 0:  # the session's cluster starts with its first run
                pids = worker_pids(session)
            # The run's own resource is down when the run returns; the session's are not.
            assert [r for r in read(record) if r["label"] == "run"][-1]["event"] == "teardown"
        # Two runs at once, from two threads, on the same workers.
        set_control(control, "run-threads")
        threaded: list[Any] = []
        threads = [
            threading.Thread(
                target=lambda: threaded.append(
                    session.run_assets(USERS, resources(record, control))
                )
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(threaded) == 2
        assert worker_pids(session) == pids  # the same cluster for every run
        before_close = read(record)
        set_control(control, "close")
    for result in [*results, *threaded]:
        assert result.success
        assert {output["pid"] for output in result.outputs.values()} <= pids
    assert not [r for r in before_close if r["event"] == "teardown" and r["label"] != "run"]
    ups = check_session_lifecycle(read(record), {})
    assert set(ups.values()) == {1}  # once per worker process for the whole session
    assert {pid for pid, _ in ups} <= pids
    check_run_lifecycle(read(record), session.runs)
    # Later runs reused what the first brought up, and its private state went on.
    reused = [e for e in results[2].events if isinstance(e, ResourceReused)]
    assert {e.resource_key for e in reused} == {"base", "pair", "pair.inner"}
    assert all(e.since_run != results[2].run_id for e in reused)
    assert max(o["uses"] for o in results[2].outputs.values()) > len(USERS) // 2
    assert [e for e in session.events if isinstance(e, ResourceEvent)]
    assert {e.run_id for e in session.events} == {session.session_id}
    assert session.teardown_errors == []
    assert_gone(pids)


def test_a_failed_run_and_the_exception_leaving_the_block_still_close_the_session(
    files: tuple[str, str],
) -> None:
    record, control = files
    with pytest.raises(RunFailure), Session(**DASK) as session:
        set_control(control, "run-0")
        session.run_assets(USERS, resources(record, control))
        pids = worker_pids(session)
        set_control(control, "run-1", asset=True)
        session.run_assets(USERS, resources(record, control))  # raises RunFailure
    # Nothing went down in the runs; all went down once as the failure left the block.
    ups = check_session_lifecycle(read(record), {}, closed_in="run-1")
    assert ups and set(ups.values()) == {1}
    assert_gone(pids)


def test_a_failed_host_check_recycles_and_a_failed_teardown_is_reported_at_close(
    files: tuple[str, str],
) -> None:
    record, control = files
    session = Session(**DASK)
    with pytest.raises(SessionTeardownError) as raised, session:
        set_control(control, "run-0")
        session.run_assets(USERS, resources(record, control))
        pids = worker_pids(session)
        set_control(control, "run-1", check={"inner": "false"})
        second = session.run_assets(USERS, resources(record, control))
        set_control(control, "close", teardown=["base"])
    recycled = [e for e in second.events if isinstance(e, ResourceRecycled)]
    assert recycled and {e.resource_key for e in recycled} == {"pair.inner"}
    assert all("host_check returned False" in e.reason for e in recycled)
    ups = check_session_lifecycle(read(record), {"run-1": {"inner"}})
    assert {label for _, label in ups} == set(SESSION_LABELS)
    up_base = {pid for pid, label in ups if label == "base"}
    assert len(raised.value.errors) == len(up_base)
    assert {info.resource_key for info in session.teardown_errors} == {"base"}
    assert all("failed on purpose" in info.message for info in session.teardown_errors)
    assert_gone(pids)


def test_session_resources_of_a_worker_that_died_are_reported_lost_at_close(
    files: tuple[str, str],
) -> None:
    record, control = files
    session = Session(**DASK)
    with pytest.raises(SessionTeardownError), session:
        set_control(control, "run-0")
        first = session.run_assets(USERS, resources(record, control))
        pids = worker_pids(session)
        victim = first.outputs["user_0"]["pid"]
        os.kill(victim, signal.SIGKILL)
        until = time.monotonic() + 60  # hang guard: the nanny starts a new worker process
        while victim in (now := worker_pids(session)) or len(now) < 2:
            assert time.monotonic() < until, "the killed worker was not replaced"
            time.sleep(0.1)
        set_control(control, "run-1")
        assert session.run_assets(USERS, resources(record, control)).success
        pids |= worker_pids(session)
        set_control(control, "close")
    lost = {info.resource_key for info in session.teardown_errors}
    assert lost == {"base", "pair", "pair.inner"}
    for info in session.teardown_errors:
        assert "was not torn down" in info.message
        assert f"Dask worker process {victim} " in info.message
    # The others went down once, at close; the victim's never did.
    records = [r for r in read(record) if r["pid"] != victim]
    check_session_lifecycle(records, {})
    victims = [r for r in read(record) if r["pid"] == victim and r["label"] in SESSION_LABELS]
    assert {r["label"] for r in victims if r["event"] == "up"} == set(SESSION_LABELS)
    assert not [r for r in victims if r["event"] == "teardown"]
    assert_gone(pids)


def test_a_session_on_a_running_cluster_connects_once_and_leaves_its_workers_running(
    files: tuple[str, str], host_dask_address: str
) -> None:
    record, control = files
    config = {"executor": "dask", "executor_config": {"address": host_dask_address}}
    with Session(**config) as session:
        for i in range(2):
            set_control(control, f"run-{i}")
            assert session.run_assets(USERS, resources(record, control)).success
        client = session.executor.session_client(session.session_id)  # type: ignore[attr-defined]
        pids = worker_pids(session)
        set_control(control, "close")
    assert client.status == "closed"  # the session's own client, closed with it
    ups = check_session_lifecycle(read(record), {})
    assert ups and set(ups.values()) == {1}
    # The cluster is not the session's: its workers are still there.
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)


# -- property: random schedules of runs and faults ----------------------------------------------

FAULTS = st.one_of(
    st.just({}),
    st.just({"asset": True}),
    st.builds(lambda label: {"setup": [label]}, st.sampled_from(SESSION_LABELS)),
    st.builds(
        lambda label, verdict: {"check": {label: verdict}},
        st.sampled_from(SESSION_LABELS),
        st.sampled_from(["false", "raise"]),
    ),
)
SCHEDULES = st.tuples(
    st.lists(FAULTS, min_size=1, max_size=3),
    st.lists(st.sampled_from(SESSION_LABELS), max_size=2, unique=True),
)


def check_schedule(tmp: Path, schedule: tuple[list[dict[str, Any]], list[str]]) -> None:
    runs, failing_teardowns = schedule
    tmp.mkdir()
    record, control = str(tmp / "records.jsonl"), str(tmp / "control.json")
    session = Session(**DASK)
    checks: dict[str, set[str]] = {}
    try:
        with session:
            pids: set[int] = set()
            for i, faults in enumerate(runs):
                set_control(control, f"run-{i}", **faults)
                checks[f"run-{i}"] = set(faults.get("check", {}))
                result = session.run_assets(USERS, resources(record, control), raise_on_error=False)
                if not faults:
                    assert result.success, result.failures
                if faults.get("asset"):
                    assert not result.success
                pids |= worker_pids(session)
            set_control(control, "close", teardown=failing_teardowns)
    except SessionTeardownError as error:
        raised: SessionTeardownError | None = error
    else:
        raised = None
    records = read(record)
    check_session_lifecycle(records, checks)
    check_run_lifecycle(records, session.runs)
    # Each failing teardown at close is reported, once per process it was up in.
    up_at_close = Counter(
        r["label"] for r in records if r["event"] == "teardown" and r.get("phase") == "close"
    )
    expected = sum(up_at_close[label] for label in failing_teardowns)
    assert len(session.teardown_errors) == expected
    assert (raised is not None) == (expected > 0)
    assert_gone(pids)


@settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(schedule=SCHEDULES)
def test_random_schedules_tear_every_session_resource_down_once_at_close(
    tmp_path: Path, schedule: tuple[list[dict[str, Any]], list[str]]
) -> None:
    check_schedule(tmp_path / f"s{time.monotonic_ns()}", schedule)


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(schedule=SCHEDULES)
def test_random_schedules_tear_every_session_resource_down_once_at_close_slow(
    tmp_path: Path, schedule: tuple[list[dict[str, Any]], list[str]]
) -> None:
    check_schedule(tmp_path / f"s{time.monotonic_ns()}", schedule)


# -- a session's runs carry their payload; a lost worker in the middle of one ------------------


@asset(name="first")
def first_user(r: PerRun) -> int:
    assert r._up
    return os.getpid()


@asset(name="killer")
def killer(r: PerRun) -> None:
    assert r._up
    # Die only once `first` has brought the run's resource up in the other worker.
    deadline = time.monotonic() + 30
    while not any(x["event"] == "setup" and x["pid"] != os.getpid() for x in read(r.record)):
        if time.monotonic() > deadline:
            raise AssertionError("the other worker never brought the resource up")
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)


@asset(name="after_killer")
def after_killer(killer: None) -> None:
    raise AssertionError("downstream of a dead worker must not run")


@pytest.mark.parametrize(
    "assets",
    [[first_user, killer, after_killer], [first_user, killer]],
    ids=["the dead worker's asset has a downstream asset", "it is the last asset"],
)
def test_run_resources_of_a_worker_lost_in_a_session_run_are_reported_in_that_run(
    files: tuple[str, str], assets: list[AssetDefinition]
) -> None:
    record, _ = files
    with Session(**DASK) as session:
        result = session.run_assets(assets, {"r": PerRun(record=record)}, raise_on_error=False)
        pids = {result.outputs["first"]}
        client = session.executor.session_client(session.session_id)  # type: ignore[attr-defined]
        client.wait_for_workers(2, timeout=60)  # hang guard: the nanny restarts the dead one
        # The session goes on: its next run's tasks bring the run's state to the new process.
        later = session.run_assets(
            [first_user, *[make_run_user(i) for i in range(4)]], {"r": PerRun(record=record)}
        )
        pids |= worker_pids(session)
    assert result.failures["killer"].type == "host._errors.WorkerDiedError"
    setups = {r["pid"] for r in read(record) if r["event"] == "setup" and r["run"] == result.run_id}
    (dead,) = setups - {result.outputs["first"]}
    pids.add(dead)
    # Seen from the scheduler's log, though the dead process told the caller nothing.
    assert [e.resource_key for e in result.resource_errors] == ["r"]
    assert f"process {dead}" in result.resource_errors[0].message
    assert later.success and not later.resource_errors
    check_run_lifecycle([r for r in read(record) if r["run"] == later.run_id], [later.run_id])
    assert_gone(pids)


def make_run_user(i: int) -> AssetDefinition:
    @asset(name=f"run_user_{i}")
    def run_user(r: PerRun) -> int:
        assert r._up
        return os.getpid()

    return run_user


def make_big_user(i: int, size: int) -> AssetDefinition:
    blob = bytes(size)  # goes with the asset, by value: the run's payload is larger than 1 MiB

    @asset(name=f"big_{i}")
    def big(r: PerRun) -> int:
        assert r._up
        return len(blob)

    return big


def test_a_session_run_with_a_large_payload_sends_it_once_and_ends_everywhere(
    files: tuple[str, str],
) -> None:
    record, _ = files
    assets = [make_big_user(i, 2 << 20) for i in range(4)]
    with Session(**DASK) as session:
        results = [session.run_assets(assets, {"r": PerRun(record=record)}) for _ in range(2)]
        pids = worker_pids(session)
    for result in results:
        assert result.success and set(result.outputs.values()) == {2 << 20}
    check_run_lifecycle(read(record), session.runs)
    assert_gone(pids)
