"""The multiprocess executor: setups counted per worker pid, shipping, dead workers, signals.

Asset functions live at module level (or come from factories) so they reach the workers; the
resources of ``tests.recording`` write the evidence, with the pid of the process they ran in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from host import (
    AssetDefinition,
    AssetFailed,
    AssetStarted,
    AssetSucceeded,
    ConfigError,
    ConfigurableResource,
    DefinitionError,
    Event,
    PluginError,
    ResourceEvent,
    RunFailure,
    RunFinished,
    RunStarted,
    WorkerDiedError,
    WorkerError,
    asset,
    hookimpl,
    run_assets,
)
from host.executors import ShippingError
from tests.recording import Recorded, RecordedPair, counts, read, write

ROOT = Path(__file__).resolve().parent.parent
MP = {"executor": "multiprocess", "executor_config": {"max_workers": 2}}

# -- assets ----------------------------------------------------------------------------------


@asset
def base() -> int:
    return 3


def make_scaled(factor: int) -> AssetDefinition:
    """A factory: each asset is a closure over ``factor``."""

    @asset(name=f"scaled_{factor}")
    def scaled(base: int) -> tuple[int, int]:
        return factor * base, os.getpid()

    return scaled


def make_user(i: int) -> AssetDefinition:
    @asset(name=f"user_{i}")
    def user(r: Recorded) -> int:
        r.use()
        return os.getpid()

    return user


@asset
def needs_pair(pair: RecordedPair) -> int:
    pair.use()
    return os.getpid()


@asset
def first(r: Recorded) -> int:
    r.use()
    return os.getpid()


@asset
def killer(r: Recorded) -> None:
    r.use()
    # Die only once `first` has brought the resource up in the other worker.
    deadline = time.monotonic() + 30
    while not any(x["event"] == "use" and x["pid"] != os.getpid() for x in read(r.record)):
        if time.monotonic() > deadline:
            raise AssertionError("the other worker never used the resource")
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)


@asset
def after_killer(killer: None) -> None:
    raise AssertionError("downstream of a dead worker must not run")


@asset
def exits_hard() -> None:
    os._exit(3)


@asset
def interrupted(r: Recorded) -> None:
    r.use()
    raise KeyboardInterrupt


class NeedsTwoArgs(Exception):
    """An exception that pickles but cannot be unpickled (its __init__ takes two arguments)."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}-{b}")


@asset
def raises_odd() -> None:
    raise NeedsTwoArgs("x", "y")


@asset
def returns_lock() -> Any:
    return threading.Lock()


@asset
def after_lock(returns_lock: Any) -> None:
    raise AssertionError("downstream of a failed asset must not run")


# -- setups per pid --------------------------------------------------------------------------


def test_sixteen_assets_two_workers_one_setup_per_worker(record: str, no_child_left: None) -> None:
    resources = {
        "r": Recorded(record=record, label="r"),
        "pair": RecordedPair(record=record, label="pair", inner=Recorded(record=record,
                                                                         label="inner")),
        "unused": Recorded(record=record, label="unused"),
    }
    assets = [make_user(i) for i in range(16)] + [needs_pair]
    result = run_assets(assets, resources, **MP)

    assert result.success
    records = read(record)
    setups, teardowns = counts(records, "setup"), counts(records, "teardown")
    uses = {(r["label"], r["pid"]) for r in records if r["event"] == "use"}
    workers = {pid for _, pid in uses}
    assert len(workers) == 2 and os.getpid() not in workers
    # Exactly one setup and one teardown per worker that ran an asset needing the resource.
    assert setups == teardowns == Counter(dict.fromkeys(uses, 1)) + Counter(
        {("inner", pid): 1 for label, pid in uses if label == "pair"}
    )
    assert {pid for _, pid in setups} <= workers
    assert "unused" not in {label for label, _ in setups}
    assert {result.outputs[f"user_{i}"] for i in range(16)} <= workers
    # Each worker tears down in reverse order of bring-up.
    for pid in workers:
        mine = [(r["event"], r["label"]) for r in records
                if r["pid"] == pid and r["event"] in ("setup", "teardown")]
        ups = [label for event, label in mine if event == "setup"]
        assert [label for event, label in mine if event == "teardown"] == ups[::-1]


def test_factory_made_assets_run_in_workers(no_child_left: None) -> None:
    result = run_assets([base, *(make_scaled(f) for f in (1, 2, 5))], **MP)
    scaled = {key: value for key, value in result.outputs.items() if key != "base"}
    assert {key: value for key, (value, _) in scaled.items()} == {
        "scaled_1": 3, "scaled_2": 6, "scaled_5": 15,
    }
    assert os.getpid() not in {pid for _, pid in scaled.values()}


MAIN_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from host import ConfigurableResource, asset, run_assets
    from tests.recording import write

    class Counter(ConfigurableResource):
        record: str

        def setup_for_execution(self, context):
            write(self.record, event="setup", key=context.resource_key, label="counter")

        def teardown_after_execution(self, context):
            write(self.record, event="teardown", key=context.resource_key, label="counter")

    def make(i):
        @asset(name=f"part_{i}")
        def part(counter: Counter) -> int:
            return i * 10
        return part

    @asset
    def total(part_0, part_1, part_2, part_3):
        return part_0 + part_1 + part_2 + part_3

    if __name__ == "__main__":
        result = run_assets(
            [*(make(i) for i in range(4)), total],
            {"counter": Counter(record=sys.argv[1])},
            executor="multiprocess",
            executor_config={"max_workers": 2},
        )
        print(json.dumps({"total": result.outputs["total"], "pid": os.getpid()}))
    """
)


def _python(script: Path, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(script), *args], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs
    )


def test_assets_and_resources_of_a_main_script(record: str, tmp_path: Path) -> None:
    import json

    script = tmp_path / "script.py"
    script.write_text(MAIN_SCRIPT)
    out, err = _python(script, record).communicate(timeout=120)
    assert err == "" or "Traceback" not in err, err
    result = json.loads(out)
    assert result["total"] == 60
    records = read(record)
    setups = counts(records, "setup")
    assert setups == counts(records, "teardown")
    assert all(n == 1 for n in setups.values())
    assert result["pid"] not in {pid for _, pid in setups}


def test_an_unguarded_main_script_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "from host import asset, run_assets\n"
        "@asset\n"
        "def a(): return 1\n"
        "run_assets([a], executor='multiprocess', executor_config={'max_workers': 1})\n"
    )
    _, err = _python(script).communicate(timeout=120)
    assert "WorkerError" in err and "if __name__ == '__main__':" in err, err


# -- what cannot be shipped ------------------------------------------------------------------


class Started:
    """Records host_run_start calls (to prove that nothing started)."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    @hookimpl
    def host_run_start(self, run_id: str, executor: str, assets: tuple[str, ...]) -> None:
        self.runs.append(run_id)


def test_an_unpicklable_asset_is_a_definition_error_before_anything_starts(
    record: str, no_child_left: None
) -> None:
    lock = threading.Lock()

    @asset
    def holds_a_lock(r: Recorded) -> bool:
        return lock.locked()

    @asset
    def lock_default(x: Any = threading.Lock()) -> None:  # noqa: B008
        return None

    started = Started()
    resources = {"r": Recorded(record=record, label="r")}
    for bad in (holds_a_lock, lock_default):
        with pytest.raises(DefinitionError, match=rf"asset '{bad.key}' .*cannot be sent") as info:
            run_assets([first, bad], resources, plugins=[started], **MP)
        assert "lock" in str(info.value)
    assert started.runs == []
    assert read(record) == []


class HoldsAnything(ConfigurableResource):
    thing: Any


def test_an_unpicklable_resource_is_a_definition_error(no_child_left: None) -> None:
    @asset
    def uses(h: HoldsAnything) -> None:
        return None

    with pytest.raises(DefinitionError, match=r"resource 'h' \(HoldsAnything\) cannot be sent"):
        run_assets([uses], {"h": HoldsAnything(thing=threading.Lock())}, **MP)
    # A resource no asset needs is not shipped, so it does not matter that it cannot be.
    result = run_assets([base], {"h": HoldsAnything(thing=threading.Lock())}, **MP)
    assert result.outputs == {"base": 3}


def test_an_unpicklable_output_fails_its_asset(no_child_left: None) -> None:
    result = run_assets([returns_lock, after_lock, base], raise_on_error=False, **MP)
    assert "cannot be pickled" in result.failures["returns_lock"].message
    assert result.skipped == ("after_lock",)
    assert result.outputs == {"base": 3}


def test_an_exception_that_cannot_be_unpickled_arrives_as_text(no_child_left: None) -> None:
    with pytest.raises(RunFailure) as info:
        run_assets([raises_odd], **MP)
    cause = info.value.__cause__
    assert type(cause) is ShippingError
    assert "NeedsTwoArgs" in str(cause) and "x-y" in str(cause) and "Traceback" in str(cause)
    assert info.value.result.failures["raises_odd"].type.endswith("NeedsTwoArgs")


# -- dead workers and interrupts -------------------------------------------------------------


def test_a_killed_worker_fails_its_asset_and_the_other_still_tears_down(
    record: str, no_child_left: None
) -> None:
    resources = {"r": Recorded(record=record, label="r")}
    with pytest.raises(RunFailure) as info:
        run_assets([first, killer, after_killer], resources, **MP)

    result = info.value.result
    error = result.failures["killer"]
    assert error.type == "host._errors.WorkerDiedError"
    assert "died while running asset 'killer'" in error.message
    assert "killed by signal SIGKILL" in error.message
    assert isinstance(info.value.__cause__, WorkerDiedError)
    assert result.outputs.keys() == {"first"}
    assert "after_killer" in result.skipped
    records = read(record)
    setups, teardowns = counts(records, "setup"), counts(records, "teardown")
    dead = next(pid for pid in {pid for _, pid in setups} if ("r", pid) not in teardowns)
    survivor = result.outputs["first"]
    assert set(setups) == {("r", dead), ("r", survivor)}
    assert teardowns == Counter({("r", survivor): 1})  # the survivor tore down; the dead could not
    # Its time is from when it started in its worker, not from when it was sent (which also
    # counts the worker's own start).
    began = {e.asset_key: e.timestamp for e in result.events_of(AssetStarted)}
    [died] = [e for e in result.events_of(AssetFailed) if e.asset_key == "killer"]
    assert abs(died.duration - (died.timestamp - began["killer"])) < 0.05
    assert [e.resource_key for e in result.resource_errors] == ["r"]
    assert "was not torn down" in result.resource_errors[0].message
    failed = [e for e in result.events if isinstance(e, AssetFailed)]
    assert [(e.asset_key, e.pid) for e in failed] == [("killer", dead)]


def test_a_worker_that_exits_names_its_exit_code(no_child_left: None) -> None:
    result = run_assets([exits_hard, base], raise_on_error=False, **MP)
    message = result.failures["exits_hard"].message
    assert "died while running asset 'exits_hard': exited with code 3" in message


def test_keyboard_interrupt_in_a_worker_asset_tears_down_and_ends_the_run(
    record: str, no_child_left: None
) -> None:
    resources = {"r": Recorded(record=record, label="r")}
    result = run_assets([interrupted], resources, raise_on_error=False, **MP)
    assert result.failures["interrupted"].type == "builtins.KeyboardInterrupt"
    records = read(record)
    assert counts(records, "setup") == counts(records, "teardown") != Counter()


SIGNAL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from host import asset, run_assets
    from tests.recording import Recorded, write

    record = sys.argv[1]

    @asset
    def slow(r: Recorded):
        r.use()
        write(record, event="running", key="", label="slow")
        time.sleep(60)

    @asset
    def quick(r: Recorded):
        r.use()

    if __name__ == "__main__":
        start = sys.argv[2] if len(sys.argv) > 2 else "spawn"
        run_assets([slow, quick], {"r": Recorded(record=record, label="r")},
                   executor="multiprocess",
                   executor_config={"max_workers": 2, "start_method": start})
    """
)


@pytest.mark.parametrize(
    ("signum", "status", "start"),
    [
        (signal.SIGTERM, 128 + signal.SIGTERM, "spawn"),
        (signal.SIGINT, -signal.SIGINT, "spawn"),
        # The workers find the caller gone themselves, also when their parent is the fork
        # server.
        (signal.SIGKILL, -signal.SIGKILL, "spawn"),
        (signal.SIGKILL, -signal.SIGKILL, "forkserver"),
    ],
    ids=["SIGTERM", "SIGINT", "SIGKILL", "SIGKILL-forkserver"],
)
def test_a_signal_to_the_caller_tears_down_every_worker(
    signum: int, status: int, start: str, record: str, tmp_path: Path
) -> None:
    script = tmp_path / "run.py"
    script.write_text(SIGNAL_SCRIPT)
    proc = _python(script, record, start)
    try:
        deadline = time.monotonic() + 60
        while True:  # both workers have the resource up and `slow` is running
            records = read(record)
            if len(counts(records, "setup")) == 2 and any(r["event"] == "running" for r in records):
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    records = read(record)
    setups = counts(records, "setup")
    assert len(setups) == 2 and proc.pid not in {pid for _, pid in setups}
    deadline = time.monotonic() + 30  # a killed caller waits for nothing: the workers go alone
    while any(_alive(pid) for _, pid in setups) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts(read(record), "teardown") == setups
    for _, pid in setups:  # the workers are gone, not orphaned
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


# -- events and plugins ----------------------------------------------------------------------


class EventLog:
    """Collects the run's events through ``host_event`` (called in the caller only)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def host_event(self, event: Event) -> None:
        self.events.append(event)


def test_events_from_workers_arrive_in_order_with_their_pids(
    record: str, no_child_left: None
) -> None:
    log = EventLog()
    resources = {"r": Recorded(record=record, label="r")}
    result = run_assets([make_user(i) for i in range(6)], resources, plugins=[log], **MP)

    assert list(result.events) == log.events
    assert isinstance(log.events[0], RunStarted) and isinstance(log.events[-1], RunFinished)
    assert log.events[0].pid == log.events[-1].pid == os.getpid()
    workers = {e.pid for e in log.events[1:-1]}
    assert len(workers) == 2 and os.getpid() not in workers
    for pid in workers:
        mine = [e for e in log.events if e.pid == pid]
        kinds = [
            (type(e).__name__, getattr(e, "phase", None) or getattr(e, "asset_key", None))
            for e in mine
        ]
        # Per worker: an asset starts, brings the resource up (yield > setup), succeeds; later
        # assets reuse it; teardown comes last.
        assert kinds[0][0] == "AssetStarted"
        assert kinds[1:3] == [("ResourceEvent", "setup"), ("ResourceEvent", "yield_enter")]
        assert kinds[-2:] == [("ResourceEvent", "teardown"), ("ResourceEvent", "yield_exit")]
        middle = [k for k in kinds[3:-2]]
        assert all(name in ("AssetStarted", "AssetSucceeded") for name, _ in middle)
        asset_pids = {e.pid for e in mine if isinstance(e, AssetStarted | AssetSucceeded)}
        assert asset_pids == {pid}
        assert {r["pid"] for r in read(record)} == workers
    assert all(isinstance(e.duration, float) for e in log.events if isinstance(e, ResourceEvent))


class PidHooks:
    """Writes a record (with the pid) from resource and asset hooks."""

    def __init__(self, path: str) -> None:
        self.path = path

    @hookimpl
    def host_asset_start(self, context: Any) -> None:
        write(self.path, event="hook", key=context.asset_key, label="asset_start")

    @hookimpl(wrapper=True)
    def host_resource_setup(self, resource: Any, context: Any) -> Any:
        write(self.path, event="hook", key=context.resource_key, label="resource_setup")
        return (yield)


def test_run_plugins_are_active_in_the_workers(record: str, tmp_path: Path) -> None:
    hooks_file = str(tmp_path / "hooks.jsonl")
    resources = {"r": Recorded(record=record, label="r")}
    run_assets([make_user(i) for i in range(4)], resources, plugins=[PidHooks(hooks_file)], **MP)
    hooks = read(hooks_file)
    starts = sorted(r["key"] for r in hooks if r["label"] == "asset_start")
    assert starts == [f"user_{i}" for i in range(4)]
    setups = {r["pid"] for r in hooks if r["label"] == "resource_setup"}
    assert setups == {pid for _, pid in counts(read(record), "setup")}
    assert os.getpid() not in {r["pid"] for r in hooks}


def test_a_plugin_that_cannot_be_pickled_is_a_plugin_error(no_child_left: None) -> None:
    class Locked:
        lock = threading.Lock()

        def __init__(self) -> None:
            self.held = threading.Lock()

    with pytest.raises(PluginError, match="cannot be sent to worker processes"):
        run_assets([base], plugins=[Locked()], **MP)


def _cannot_load() -> None:
    raise RuntimeError("this plugin does not load in a worker")


class LoadsOnlyHere:
    """Pickles in the caller; unpickling it (in a worker) raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_cannot_load, ())


def test_a_worker_that_cannot_load_the_run_is_a_worker_error(no_child_left: None) -> None:
    with pytest.raises(WorkerError, match="could not take part in the run") as info:
        run_assets([base], plugins=[LoadsOnlyHere()], **MP)
    assert "does not load in a worker" in str(info.value.__cause__)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "problem"),
    [({"max_workers": 0}, "max_workers"), ({"start_method": "fork"}, "start_method"),
     ({"workers": 2}, "workers")],
)
def test_invalid_executor_config(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        run_assets([base], executor="multiprocess", executor_config=config)


def test_forkserver_start_method(record: str, no_child_left: None) -> None:
    resources = {"r": Recorded(record=record, label="r")}
    result = run_assets(
        [make_user(i) for i in range(3)], resources, executor="multiprocess",
        executor_config={"max_workers": 2, "start_method": "forkserver"},
    )
    assert result.success
    records = read(record)
    assert counts(records, "setup") == counts(records, "teardown")
    assert os.getpid() not in {pid for _, pid in counts(records, "setup")}


def test_no_more_workers_than_assets(record: str) -> None:
    log = EventLog()
    run_assets([base], executor="multiprocess", executor_config={"max_workers": 8},
               plugins=[log])
    assert len({e.pid for e in log.events} - {os.getpid()}) == 1


def test_every_worker_s_teardown_failures_are_reported(record: str, no_child_left: None) -> None:
    """Each worker reports its own teardown failures; none is lost (they were once told apart
    by id(), which a later worker's freshly unpickled error could reuse)."""
    from host_plugin_faults import Fault, Faults

    from tests.graphs import make_asset

    resources = {"r": Recorded(record=record, label="r")}
    result = run_assets(
        [make_asset("bad", fail=True), *(make_user(i) for i in range(16))],
        resources,
        plugins=[Faults(Fault(phase="teardown", action="raise"))],
        raise_on_error=False,
        **MP,
    )
    workers = {pid for _, pid in counts(read(record), "teardown")}
    assert workers  # one worker, or both when both ran an asset needing `r`
    assert [e.resource_key for e in result.resource_errors] == ["r"] * len(workers)
    messages = " ".join(e.message for e in result.resource_errors)
    assert all(f"process {pid}" in messages for pid in workers)


def test_teardown_errors_are_recorded_once_each_even_when_ids_are_reused() -> None:
    from host import ResourceTeardownError, RunState
    from host._graph import build_plan
    from host._plugins import make_plugin_manager
    from host._resource_graph import ResourceGraph

    graph = ResourceGraph.build({})
    state = RunState("run", "multiprocess", build_plan([], graph), graph, make_plugin_manager(),
                     lambda event: None)
    for worker in range(3):  # each batch is unpickled afresh and dropped, as workers report
        state.record_teardown_errors([ResourceTeardownError(f"w{worker}", resource_key="r")])
    error = ResourceTeardownError("again", resource_key="r")
    state.record_teardown_errors([error, error])  # the same object twice: once
    assert [e.message for e in state.teardown_errors] == ["w0", "w1", "w2", "again"]
