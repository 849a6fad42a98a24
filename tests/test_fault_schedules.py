"""Random schedules with injected faults, on every executor: the lifecycle holds whatever fails.

Each schedule is a random asset graph over random resources with dependencies (the strategy of
``tests.test_contract``, built-in failures included), plus one random fault of
``host-plugin-faults``: raise, hang, kill the process, exit, or send SIGINT/SIGTERM (to the
process itself, or to the caller), at a random phase (setup, yield enter/exit, teardown, asset
start/body/end) for a random key, in every process or in the first one only. The evidence is
what each resource wrote itself (``tests.recording``), what the fault plugin logged before it
acted, the run's events (collected as they happen, so even a run ended by a signal has them)
and its result. Checked for every schedule:

* per process: brought up at most once, torn down at most once, in reverse order of bring-up;
* a resource that came up is torn down exactly once in every process that survived the run; in
  a process that was killed, what was left up is reported (``RunResult.resource_errors``);
* a resource that did not come up is never torn down;
* a resource is brought up only in a process that ran an asset needing it;
* every failure is attributed: an injected fault at an asset phase fails that asset with
  ``InjectedFault``, one at a setup phase fails the assets needing the resource with
  ``ResourceSetupError``, one at a teardown phase is a resource error of that key, a killed
  worker is a ``WorkerDiedError``, a hang ends in a timeout; nothing fails without a cause;
* every asset is accounted for once (output, failure or skip), and ``success`` agrees;
* a signal to the run ends it with ``KeyboardInterrupt`` (SIGINT) or ``SystemExit(143)``
  (SIGTERM), after every teardown;
* no child process is left, the call returns (a watchdog dumps every thread's stack and ends
  the session if one schedule takes more than five minutes);
* the resources' secret appears nowhere: result, events, errors, logs, fault log, trace file.

The default run tries 8 schedules per executor; the dedicated job runs 1000 per executor:
``pytest -m slow tests/test_fault_schedules.py``. With ``HOST_SCHEDULE_STATS=FILE`` set, each
schedule appends one JSON line there (executor, fault, what fired, how the run ended): the
figures of ``specs/reliability.md`` are counted from it.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from host_plugin_faults import ASSET_PHASES, PHASES, Fault, Faults, read_log
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host import AssetStarted, Event, RunResult, run_assets
from tests.observers import Captured, EventLog
from tests.processes import assert_no_child_left, children
from tests.recording import read
from tests.test_contract import build, check_lifecycle, schedules

Executor = tuple[str, dict[str, Any]]

SECRET = "tok-5ecr3t-7a9b1c"

#: Seconds a resource may take to come up or go down in schedules with a hanging fault.
PHASE_TIMEOUT = 0.3
#: The run's timeout in schedules where an asset phase hangs, per executor (a multiprocess run
#: starts its workers within it).
RUN_TIMEOUT = {"in_process": 0.5, "multiprocess": 3.0, "dask": 2.0}

SETUP_PHASES = ("setup", "yield_enter")
TEARDOWN_PHASES = ("teardown", "yield_exit")


# -- the faults ------------------------------------------------------------------------------


def _actions(executor: str) -> list[str]:
    if executor == "in_process":  # killing the caller would kill the test session
        return ["raise", "raise", "hang", "signal"]
    return ["raise", "raise", "hang", "kill", "exit", "signal"]


@st.composite
def faults(draw: st.DrawFn, schedule: dict[str, Any], executor: str) -> Fault | None:
    """No fault (now and then), or one random fault placed where ``schedule`` will reach it."""
    if draw(st.integers(0, 7)) == 7:  # (hypothesis favours 0: make it the common case)
        return None
    kinds = {r["label"]: r["kind"] for r in schedule["resources"]}
    used = sorted({label for a in schedule["assets"] for label in a["resources"]})
    phases = [p for p in PHASES if p in ASSET_PHASES or used]
    phase = draw(st.sampled_from(phases))
    if phase in ASSET_PHASES:
        keys = [a["name"] for a in schedule["assets"]]
    else:
        keys = [*used, *(f"{label}.inner" for label in used if kinds[label] == "pair")]
        if phase in ("setup", "teardown"):  # only resources that keep the default yield
            keys = [key for key in keys if kinds.get(key) != "yield"]
    key = draw(st.sampled_from([None, *keys]))
    action = draw(st.sampled_from(_actions(executor)))
    fields: dict[str, Any] = {"phase": phase, "action": action, "key": key}
    fields["once"] = executor != "in_process" and draw(st.booleans())
    if executor == "dask" and action in ("kill", "exit"):
        fields["once"] = True  # one crash per run (see FaultCluster)
    if action == "signal":
        fields["signum"] = draw(st.sampled_from(["SIGINT", "SIGTERM"]))
        # A second SIGINT while the run tears down means "stop waiting" (as Ctrl-C twice): the
        # guarantee is for one. (Repeated SIGTERMs are dropped, so they stay repeated.)
        fields["once"] = fields["once"] or fields["signum"] == "SIGINT"
        if executor == "multiprocess":
            fields["target"] = draw(st.sampled_from(["self", "parent"]))
        elif executor == "dask":  # a Dask worker's parent is its nanny: signal the caller
            fields["target"] = os.getpid()
    return Fault(**fields)


# -- running one schedule --------------------------------------------------------------------


@dataclass
class Outcome:
    """What running one schedule gave."""

    schedule: dict[str, Any]
    fault: Fault | None
    executor: str
    result: RunResult | None
    interrupted: BaseException | None
    records: list[dict[str, Any]]
    fired: list[dict[str, Any]]
    events: list[Event]
    texts: list[str] = field(default_factory=list)  # everything that must not hold the secret
    run_timeout: float | None = None
    children_before: set[int] = field(default_factory=set)


def run_schedule(
    schedule: dict[str, Any], fault: Fault | None, executor: Executor, work: Path
) -> Outcome:
    """Run ``schedule`` with ``fault`` injected; gather the evidence."""
    name, config = executor
    work.mkdir(parents=True, exist_ok=True)
    record, log, trace = work / "records.jsonl", work / "faults.jsonl", work / "trace.jsonl"
    for path in (record, log, trace):
        path.unlink(missing_ok=True)
    resources, assets = build(schedule, str(record), secret=SECRET)
    observer = EventLog()
    plugins: list[object] = [observer]
    if fault is not None:
        plugins.insert(0, Faults(fault, log=str(log), state_dir=str(work / "state")))
    kwargs: dict[str, Any] = {}
    run_timeout = None
    if fault is not None and fault.action == "hang":
        kwargs["resource_timeouts"] = {
            key: {"setup": PHASE_TIMEOUT, "teardown": PHASE_TIMEOUT}
            for key in _resource_keys(schedule)
        }
        if fault.phase in ASSET_PHASES:
            run_timeout = kwargs["timeout"] = RUN_TIMEOUT[name]
    captured = Captured()
    root = logging.getLogger()
    root.addHandler(captured)
    os.environ["HOST_TRACE_FILE"] = str(trace)
    before = set(children())
    result: RunResult | None = None
    interrupted: BaseException | None = None
    faulthandler.dump_traceback_later(300, exit=True)
    try:
        result = run_assets(
            assets,
            resources,
            executor=name,
            executor_config=config,
            raise_on_error=False,
            plugins=plugins,
            **kwargs,
        )
    except (KeyboardInterrupt, SystemExit) as exc:
        interrupted = exc
    finally:
        faulthandler.cancel_dump_traceback_later()
        root.removeHandler(captured)
        del os.environ["HOST_TRACE_FILE"]
    outcome = Outcome(
        schedule,
        fault,
        name,
        result,
        interrupted,
        read(record),
        read_log(log),
        observer.events,
        run_timeout=run_timeout,
        children_before=before,
    )
    outcome.texts = [
        repr(result),
        repr(observer.events),
        "\n".join(captured.lines),
        log.read_text() if log.exists() else "",
        trace.read_text() if trace.exists() else "",
    ]
    return outcome


def _resource_keys(schedule: dict[str, Any]) -> list[str]:
    keys = [r["label"] for r in schedule["resources"]]
    return keys + [f"{r['label']}.inner" for r in schedule["resources"] if r["kind"] == "pair"]


# -- what must hold --------------------------------------------------------------------------


def _key_of(label: str) -> str:
    """The resource key a record's label was brought up under (``r0_inner`` -> ``r0.inner``)."""
    return label.replace("_inner", ".inner")


def _fails_setup(schedule: dict[str, Any]) -> set[str]:
    """Labels whose own setup raises on purpose (their record is written first)."""
    failing = set()
    for spec in schedule["resources"]:
        if spec["fail_setup"]:
            failing.add(f"{spec['label']}_inner" if spec["kind"] == "pair" else spec["label"])
    return failing


def _needed_labels(schedule: dict[str, Any], asset: str) -> set[str]:
    """The labels asset ``asset`` needs, with dependencies."""
    spec = next(a for a in schedule["assets"] if a["name"] == asset)
    kinds = {r["label"]: r["kind"] for r in schedule["resources"]}
    labels = set(spec["resources"])
    labels |= {f"{label}_inner" for label in spec["resources"] if kinds[label] == "pair"}
    return labels


def check(outcome: Outcome) -> None:
    """Every guarantee of the module docstring, for one schedule (with the evidence on failure)."""
    try:
        _check(outcome)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n\n{_evidence(outcome)}") from None


def _evidence(outcome: Outcome) -> str:
    """What a failing schedule left: records, faults fired, events, result."""
    lines = ["records:"]
    lines += [f"  {r}" for r in outcome.records]
    lines += ["faults fired:"] + [f"  {f}" for f in outcome.fired]
    lines += ["events:"]
    for event in outcome.events:
        what = getattr(event, "asset_key", None) or getattr(event, "resource_key", "")
        error = getattr(event, "error", None)
        lines.append(
            f"  {type(event).__name__} {what} {getattr(event, 'phase', '')} pid={event.pid}"
            + (f" {error.type}: {error.message[:200]}" if error is not None else "")
        )
    result = outcome.result
    if result is None:
        lines.append(f"interrupted: {outcome.interrupted!r}")
    else:
        lines += [f"failure {k}: {v.type}: {v.message[:300]}" for k, v in result.failures.items()]
        lines += [f"resource error: {e.message[:300]}" for e in result.resource_errors]
        lines.append(f"skipped: {result.skipped}")
    return "\n".join(lines)


def _check(outcome: Outcome) -> None:
    schedule, fault, result = outcome.schedule, outcome.fault, outcome.result
    fired = outcome.fired
    dead = {f["pid"] for f in fired if f["action"] in ("kill", "exit")}
    check_lifecycle(outcome.records)

    # Brought up / torn down, per process. A resource is up once it wrote "up" (the last thing
    # its setup does); one that wrote only "setup" failed, or was interrupted, coming up.
    setups = {(r["label"], r["pid"]) for r in outcome.records if r["event"] == "setup"}
    ups = {(r["label"], r["pid"]) for r in outcome.records if r["event"] == "up"}
    teardowns = {(r["label"], r["pid"]) for r in outcome.records if r["event"] == "teardown"}
    reported = {e.resource_key for e in result.resource_errors} if result else set()
    assert ups <= setups
    for label, pid in setups:
        torn = (label, pid) in teardowns
        if (label, pid) not in ups:
            assert not torn, f"{label} never came up in {pid} but was torn down"
        elif pid not in dead:
            assert torn, f"{label} came up in surviving process {pid} and was never torn down"
        elif not torn and result is not None:
            assert _key_of(label) in reported, f"{label} left up in dead {pid}, not reported"
    for label, pid in ups:
        if label in _fails_setup(schedule):
            raise AssertionError(f"{label} came up in {pid} though its setup fails")

    # Only where an asset needing it ran.
    started: dict[int, set[str]] = defaultdict(set)
    for event in outcome.events:
        if isinstance(event, AssetStarted):
            started[event.pid].add(event.asset_key)
    needed = set().union(*(_needed_labels(schedule, a["name"]) for a in schedule["assets"]))
    # (A Dask task's events come back with its result: lost if its worker died, or if the run
    # was interrupted while it ran; then only "some asset needs it" can be checked.)
    partial = outcome.executor == "dask" and (dead or outcome.interrupted is not None)
    for label, pid in setups:
        assert label in needed, f"{label} came up though no asset needs it"
        if partial and (pid in dead or outcome.interrupted is not None):
            continue
        assert any(label in _needed_labels(schedule, a) for a in started.get(pid, ())), (
            f"{label} came up in {pid}, where no asset needing it ran"
        )

    # A signal to the run ends it with the matching exception; nothing else does.
    if outcome.interrupted is not None:
        assert fault is not None and fault.action == "signal", repr(outcome.interrupted)
        reached_caller = any(f["action"] == "signal" for f in fired)
        assert reached_caller, "the run was interrupted but no signal was sent"
        if isinstance(outcome.interrupted, SystemExit):
            assert outcome.interrupted.code == 128 + signal.SIGTERM
        else:
            assert isinstance(outcome.interrupted, KeyboardInterrupt)
    else:
        assert result is not None
        check_result(outcome, result, dead)

    for text in outcome.texts:
        assert SECRET not in text, "the secret leaked"


def check_result(outcome: Outcome, result: RunResult, dead: set[int]) -> None:
    """Accounting and attribution, for a run that returned its result."""
    schedule, fault, fired = outcome.schedule, outcome.fault, outcome.fired
    keys = {a["name"] for a in schedule["assets"]}
    assert set(result.outputs) | set(result.failures) | set(result.skipped) == keys
    assert not set(result.outputs) & set(result.failures)
    assert not set(result.skipped) & (set(result.outputs) | set(result.failures))
    assert result.success == (not result.failures and not result.resource_errors)
    specs = {a["name"]: a for a in schedule["assets"]}
    hang = fault is not None and fault.action == "hang"
    for key, error in result.failures.items():
        kind = error.type.rpartition(".")[2]
        if kind == "InjectedFault":
            assert fault is not None and fault.phase in ASSET_PHASES
            assert fault.key in (None, key)
        elif kind == "ResourceSetupError":
            closure = {_key_of(label) for label in _needed_labels(schedule, key)}
            assert error.resource_key in closure, (key, error.resource_key)
            causes = ("failed on purpose", "injected fault", "setup_timeout")
            assert any(c in error.traceback for c in causes), error.traceback
        elif kind == "ValueError":
            assert specs[key]["fail"]
        elif kind == "WorkerDiedError":
            assert dead, error.message
        elif kind == "RunTimeoutError":
            assert hang and outcome.run_timeout is not None, error.message
        elif kind in ("KeyboardInterrupt", "SystemExit", "SignalExit"):  # a worker signalled itself
            assert fault is not None and fault.action == "signal" and fault.target == "self"
        else:
            raise AssertionError(f"{key} failed for no reason of the schedule: {error}")
        assert SECRET not in error.message + error.traceback
    for error in result.resource_errors:
        assert error.resource_key in set(_resource_keys(schedule))
    # What fired is where it must show.
    for shot in fired:
        if shot["action"] != "raise":
            continue
        if shot["phase"] in ASSET_PHASES:
            failure = result.failures.get(shot["key"])
            assert failure is not None and failure.type.endswith("InjectedFault"), shot
        elif shot["phase"] in TEARDOWN_PHASES and shot["pid"] not in dead:
            assert shot["key"] in {e.resource_key for e in result.resource_errors}, shot
        elif shot["phase"] in SETUP_PHASES:
            assert any("injected fault" in e.traceback for e in result.failures.values()), shot


# -- the tests -------------------------------------------------------------------------------


class FaultCluster:
    """The Dask cluster of these schedules: two worker processes, started on first use.

    Its own rather than the session's, because schedules kill its workers: a Dask nanny whose
    worker is killed again and again now and then fails to start a new one (a Dask
    limitation); the cluster is then closed and started afresh, and the schedules go on.
    """

    def __init__(self) -> None:
        self.cluster: Any = None
        self.client: Any = None
        #: How many times the cluster had to be started afresh.
        self.restarts = 0

    @property
    def address(self) -> str:
        if self.cluster is None:
            self._start()
        return str(self.cluster.scheduler_address)

    def _start(self) -> None:
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"allowed_failures": 0},
        )
        self.client = Client(self.cluster, set_as_default=False)

    def close(self) -> None:
        if self.cluster is not None:
            self.client.close()
            self.cluster.close()
            self.cluster = self.client = None

    def workers(self, dead: set[int]) -> set[int]:
        """The pids of its two workers, none of ``dead`` among them (restarting if need be)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.client.wait_for_workers(2, timeout=10)
                pids = set(self.client.run(os.getpid, on_error="ignore").values())
            except Exception:  # (the wait timed out: see below)
                continue
            if len(pids) == 2 and not pids & dead:
                return pids
            time.sleep(0.1)
        self.close()
        self.restarts += 1
        self._start()
        self.client.wait_for_workers(2, timeout=60)
        return set(self.client.run(os.getpid).values())


@pytest.fixture(scope="module")
def fault_cluster() -> Iterator[FaultCluster]:
    cluster = FaultCluster()
    yield cluster
    cluster.close()


def check_one(
    data: st.DataObject, executor: Executor, tmp_path: Path, fault_cluster: FaultCluster
) -> None:
    name, _ = executor
    if name == "dask":
        executor = (name, {"address": fault_cluster.address})
    schedule = data.draw(schedules(), label="schedule")
    fault = data.draw(faults(schedule, name), label="fault")
    outcome = run_schedule(schedule, fault, executor, tmp_path / "schedule")
    before = outcome.children_before
    if name == "dask":
        # The cluster's worker processes are children of this one: a worker restarted by its
        # nanny is new, and is no process of the run's.
        dead = {f["pid"] for f in outcome.fired if f["action"] in ("kill", "exit")}
        before = before | fault_cluster.workers(dead)
    assert_no_child_left(before)
    check(outcome)
    _count(outcome, fault_cluster.restarts)


def _count(outcome: Outcome, restarts: int) -> None:
    """One line of figures per schedule, when ``HOST_SCHEDULE_STATS`` names a file."""
    path = os.environ.get("HOST_SCHEDULE_STATS")
    if not path:
        return
    result = outcome.result
    line = {
        "executor": outcome.executor,
        "fault": None if outcome.fault is None else outcome.fault.model_dump(mode="json"),
        "fired": len(outcome.fired),
        "actions": sorted({f["action"] for f in outcome.fired}),
        "interrupted": type(outcome.interrupted).__name__ if outcome.interrupted else None,
        "success": None if result is None else result.success,
        "failures": 0 if result is None else len(result.failures),
        "resource_errors": 0 if result is None else len(result.resource_errors),
        "setups": sum(1 for r in outcome.records if r["event"] == "up"),
        "teardowns": sum(1 for r in outcome.records if r["event"] == "teardown"),
        "cluster_restarts": restarts,
    }
    with open(path, "a") as file:
        file.write(json.dumps(line) + "\n")


_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=8, **_SETTINGS)
@given(data=st.data())
def test_random_schedules_with_faults(
    data: st.DataObject, executor: Executor, tmp_path: Path, fault_cluster: FaultCluster
) -> None:
    check_one(data, executor, tmp_path, fault_cluster)


@pytest.mark.slow
@settings(max_examples=1000, **_SETTINGS)
@given(data=st.data())
def test_random_schedules_with_faults_long(
    data: st.DataObject, executor: Executor, tmp_path: Path, fault_cluster: FaultCluster
) -> None:
    check_one(data, executor, tmp_path, fault_cluster)
