"""Worker processes that misbehave: a teardown stuck below Python, a thread left running, SIGHUP.

* A teardown stuck in a call that no signal stops (signals blocked, then ``time.sleep``,
  ``os.read`` on a pipe nobody writes, ``signal.sigwait``, joining a thread that never ends),
  in every placement in the worker's stack: past its teardown timeout plus the grace period
  the worker is killed (restarted, on Dask), the run ends and fails, the stuck resource is
  reported by key and class, the resources below it as not torn down, those above it were torn
  down, and no process is left behind. Also when the caller gets SIGTERM meanwhile.
* A non-daemon thread left running by a resource or an asset in a worker: a warning names the
  thread and what started it, and the worker exits by itself (it is not killed after waiting).
* SIGHUP to ``host run`` or to a script while an asset runs: handled as SIGTERM; every resource
  that came up is torn down; exit status 129.

Evidence: the resources' own records (``tests.recording``) and /proc (``tests.processes``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import ConfigurableResource, InitResourceContext, asset, run_assets
from tests.processes import assert_no_child_left, children
from tests.recording import Recorded, read, write
from tests.test_signals import check_torn_down, site, start

__all__ = ["site", "start"]  # fixtures of tests.test_signals, used here

ROOT = Path(__file__).resolve().parent.parent

#: Signals a stuck teardown blocks, so that nothing (SIGALRM of its deadline, the caller's
#: SIGINT/SIGTERM) can stop it: only SIGKILL.
_BLOCKED = {
    signal.SIGALRM,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGUSR1,
}

How = Literal["sleep", "read", "sigwait", "join"]


def _stuck_forever(how: How) -> None:
    """Block in C code that no signal can stop (they are blocked in this thread)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
    if how == "sleep":
        time.sleep(3600)
    elif how == "read":
        read_end, _write_end = os.pipe()
        os.read(read_end, 1)
    elif how == "sigwait":
        signal.sigwait({signal.SIGUSR2})
    else:
        never = threading.Event()
        thread = threading.Thread(target=never.wait, daemon=True)
        thread.start()
        thread.join()


class StuckTeardown(ConfigurableResource):
    """Records like :class:`tests.recording.Recorded`; its teardown never returns."""

    record: str
    label: str
    how: How = "sleep"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.label)
        write(self.record, event="up", key=context.resource_key, label=self.label)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="stuck", key=context.resource_key, label=self.label)
        _stuck_forever(self.how)
        write(self.record, event="teardown", key=context.resource_key, label=self.label)


class StuckOnTop(StuckTeardown):
    """A stuck teardown above a dependency (which goes down after it)."""

    inner: Recorded


@asset
def uses_stuck(stuck: StuckTeardown) -> int:
    return os.getpid()


@asset
def uses_stuck_then_after(stuck: StuckTeardown, after: Recorded) -> int:
    # ``after`` comes up after ``stuck``: it goes down first, and is torn down.
    return os.getpid()


@asset
def uses_stuck_on_top(stuck: StuckOnTop) -> int:
    return os.getpid()


Placement = Literal["alone", "above_a_dependency", "below_another"]


def _stuck_run(record: str, how: How, placement: Placement) -> tuple[list[Any], dict[str, Any]]:
    """The assets and resources of a run with a stuck teardown at ``placement``."""
    stuck = StuckTeardown(record=record, label="stuck", how=how)
    if placement == "alone":
        return [uses_stuck], {"stuck": stuck}
    if placement == "below_another":
        after = Recorded(record=record, label="after")
        return [uses_stuck_then_after], {"stuck": stuck, "after": after}
    inner = Recorded(record=record, label="inner")
    on_top = StuckOnTop(record=record, label="stuck", how=how, inner=inner)
    return [uses_stuck_on_top], {"stuck": on_top, "inner": inner}


def _gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is gone too
    except OSError:
        return True


#: Dask restarts a worker after its nanny waited 4 s for it: every example costs that, so the
#: Dask property runs in the slow job; the default run has one Dask example (below).
STUCK_EXECUTORS = ["multiprocess", pytest.param("dask", marks=pytest.mark.slow)]


def _config(executor: str) -> dict[str, Any]:
    if executor == "multiprocess":
        return {"max_workers": 1, "grace_period": 1.0}
    return {"n_workers": 1, "grace_period": 1.0}


@pytest.mark.parametrize("executor", STUCK_EXECUTORS)
@settings(max_examples=4, deadline=None)
@given(
    how=st.sampled_from(["sleep", "read", "sigwait", "join"]),
    placement=st.sampled_from(["alone", "above_a_dependency", "below_another"]),
)
def test_a_stuck_teardown_kills_its_worker_and_is_reported(
    tmp_path_factory: pytest.TempPathFactory, executor: str, how: How, placement: Placement
) -> None:
    _check_stuck_run(tmp_path_factory, executor, how, placement)


def test_a_stuck_teardown_on_dask_restarts_its_worker_and_is_reported(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _check_stuck_run(tmp_path_factory, "dask", "join", "above_a_dependency")


def _check_stuck_run(
    tmp_path_factory: pytest.TempPathFactory, executor: str, how: How, placement: Placement
) -> None:
    record = str(tmp_path_factory.mktemp("stuck") / "records.jsonl")
    before = set(children())
    assets, resources = _stuck_run(record, how, placement)
    result = run_assets(
        assets,
        resources,
        executor=executor,
        executor_config=_config(executor),
        resource_timeouts={"stuck": {"teardown": 1.0}},
        raise_on_error=False,
    )
    assert not result.success
    assert not result.failures  # the asset itself succeeded
    errors = {error.resource_key: error for error in result.resource_errors}
    stuck = errors.pop("stuck")
    assert "did not go down within its teardown_timeout of 1 s" in stuck.message
    assert "StuckTeardown" in stuck.message or "StuckOnTop" in stuck.message
    assert "killed" in stuck.message
    records = read(record)
    labels = {r["label"]: r for r in records if r["event"] == "up"}
    worker = labels["stuck"]["pid"]
    assert worker != os.getpid()
    assert not [r for r in records if r["event"] == "teardown" and r["label"] == "stuck"]
    if placement == "above_a_dependency":  # below the stuck one: never reached
        assert "was not torn down" in errors.pop("inner").message
    if placement == "below_another":  # above the stuck one: went down first
        assert [r["label"] for r in records if r["event"] == "teardown"] == ["after"]
    assert not errors
    assert _gone(worker)
    assert_no_child_left(before)


STUCK_SCRIPT = """
import sys
from host import run_assets
from tests.test_worker_faults import StuckTeardown, uses_stuck

if __name__ == "__main__":
    resource = StuckTeardown(record=sys.argv[1], label="stuck", how="sleep")
    run_assets(
        [uses_stuck],
        {"stuck": resource},
        executor="multiprocess",
        executor_config={"max_workers": 1, "grace_period": 1.0},
        resource_timeouts={"stuck": {"teardown": 1.0}},
    )
"""


def _wait_for(path: Path, event: str, process: subprocess.Popen[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        found = [r for r in read(path) if r["event"] == event]
        if found:
            return found[0]
        if process.poll() is not None:
            raise AssertionError(f"ended before {event!r}: {process.communicate()}")
        assert time.monotonic() < deadline, f"never reached {event!r}"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_the_caller_while_a_teardown_is_stuck_ends_the_run(
    tmp_path: Path, signum: signal.Signals
) -> None:
    record = tmp_path / "records.jsonl"
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(STUCK_SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(script), str(record)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        worker = _wait_for(record, "stuck", process)["pid"]
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)  # a hang guard only
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signum, err
    assert _gone(worker)


# -- lingering threads -----------------------------------------------------------------------


def _linger() -> None:
    threading.Event().wait()


class StartsAThread(ConfigurableResource):
    """Starts a non-daemon thread in its setup and never stops it."""

    record: str
    label: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        threading.Thread(target=_linger, name=f"lingering-{self.label}", daemon=False).start()
        write(self.record, event="up", key=context.resource_key, label=self.label)


@asset
def uses_thread_resource(keeper: StartsAThread) -> int:
    return os.getpid()


@asset
def starts_a_thread() -> int:
    threading.Thread(target=_linger, name="lingering-asset", daemon=False).start()
    return os.getpid()


@pytest.mark.parametrize(
    ("executor", "starter"),
    [
        ("multiprocess", "resource"),
        ("multiprocess", "asset"),
        ("dask", "resource"),
        pytest.param("dask", "asset", marks=pytest.mark.slow),
    ],
)
def test_a_lingering_thread_is_reported_and_not_waited_for(
    record: str, executor: str, starter: str, caplog: pytest.LogCaptureFixture, no_child_left: None
) -> None:
    if starter == "resource":
        assets: list[Any] = [uses_thread_resource]
        resources: dict[str, Any] = {"keeper": StartsAThread(record=record, label="keeper")}
        thread, owner = "lingering-keeper", "resource 'keeper'"
    else:
        assets, resources = [starts_a_thread], {}
        thread, owner = "lingering-asset", "asset 'starts_a_thread'"
    config = {"max_workers": 1} if executor == "multiprocess" else {"n_workers": 1}
    with caplog.at_level(logging.WARNING, logger="host"):
        result = run_assets(assets, resources, executor=executor, executor_config=config)
    assert result.success  # a lingering thread does not fail the run
    warnings = [r.getMessage() for r in caplog.records if r.name == "host.executors"]
    lingering = [w for w in warnings if "non-daemon thread" in w]
    assert len(lingering) == 1, warnings
    assert repr(thread) in lingering[0] and owner in lingering[0]
    assert f"process {result.outputs[assets[0].key]}" in lingering[0]
    # The worker left by itself: it was not killed after a wait for the thread.
    assert not [w for w in warnings if "was killed" in w], warnings


# -- SIGHUP ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "executor"),
    [
        ("asset_body", "in_process"),
        ("asset_body", "multiprocess"),
        pytest.param("teardown", "in_process", marks=pytest.mark.slow),
        pytest.param("setup", "multiprocess", marks=pytest.mark.slow),
    ],
)
@pytest.mark.parametrize("how", ["host", "script"])
def test_sighup_tears_down_and_exits_129(start: Any, phase: str, executor: str, how: str) -> None:
    config = "{ max_workers = 2 }" if executor == "multiprocess" else "{}"
    run = start(phase, executor, how=how, config=config)
    run.wait_until_held()
    run.process.send_signal(signal.SIGHUP)
    code, _, err = run.finish()
    assert code == 129, err
    records = check_torn_down(run)
    if how == "host":
        assert "host: error: terminated (SIGHUP)" in err
    assert all(_gone(pid) for pid in {r["pid"] for r in records} - {run.process.pid})
