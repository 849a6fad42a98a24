"""Timeouts: a resource that hangs coming up or going down, and a run that takes too long.

``host_setup_timeout`` / ``host_teardown_timeout`` on the class, ``resource_timeouts`` per key
and ``timeout`` for the run (``run_assets``, or ``setup_timeout``, ``teardown_timeout`` and
``[run] timeout`` in a run config). Hanging resources (``tests.recording.Hanging``) hang in
Python code unless told to block in one system call; what each kind of hang can and cannot be
stopped by, per thread and executor, is in ``specs/reliability.md`` and tested here.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from host import (
    ConfigError,
    DefinitionError,
    ResourceSetupError,
    RunFailure,
    RunResult,
    asset,
    load_run_config,
    run_assets,
)
from host._discovery import RESOURCES_GROUP
from tests.dists import HOST, make_dist, run
from tests.graphs import forever, make_asset
from tests.recording import Hanging, Recorded, counts, read
from tests.test_contract import check_lifecycle

Executor = tuple[str, dict[str, Any]]


class SlowToStart(Hanging):
    """Hangs in setup; its class allows 0.3 s for that."""

    host_setup_timeout: ClassVar[float | None] = 0.3


@asset
def stubborn() -> None:
    """Hangs where no interruption reaches it (as C code that never returns to Python would):
    it ignores the signal a multiprocess worker is told to stop its asset with."""
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    while True:
        time.sleep(0.01)


def _torn_down(records: list[dict[str, Any]], label: str) -> bool:
    return any(r["event"] == "teardown" and r["label"] == label for r in records)


# -- setup and teardown timeouts, on every executor ------------------------------------------


def test_a_resource_hanging_in_setup_fails_the_run_instead_of_hanging_it(
    executor: Executor, record: str
) -> None:
    name, config = executor
    resources = {
        "ok": Recorded(record=record, label="ok"),
        "slow": SlowToStart(record=record, label="slow"),
    }
    assets = [make_asset("first", resources=["ok"]), make_asset("second", ["first"], ["slow"])]
    with pytest.raises(RunFailure) as info:
        run_assets(assets, resources, executor=name, executor_config=config)

    error = info.value.result.failures["second"]
    assert error.type == "host._errors.ResourceSetupError"
    assert error.resource_key == "slow"
    assert "did not come up within its setup_timeout of 0.3 s" in error.message
    assert "'slow'" in error.message and "tests.test_timeouts.SlowToStart" in error.message
    cause = info.value.__cause__
    assert isinstance(cause, ResourceSetupError) and cause.resource_key == "slow"
    records = read(record)
    check_lifecycle(records)
    assert _torn_down(records, "ok")
    assert not _torn_down(records, "slow")  # it never came up


def test_a_hanging_teardown_is_reported_and_the_others_are_torn_down(
    executor: Executor, record: str
) -> None:
    name, config = executor
    resources = {
        "first": Recorded(record=record, label="first"),
        "stuck": Hanging(record=record, label="stuck", hang_in="teardown"),
        "last": Recorded(record=record, label="last"),
    }
    result = run_assets(
        [make_asset("all", resources=["first", "stuck", "last"])],
        resources,
        executor=name,
        executor_config=config,
        raise_on_error=False,
        resource_timeouts={"stuck": {"teardown": 0.3}},
    )
    assert result.outputs == {"all": ["all"]}
    assert not result.success
    (error,) = result.resource_errors
    assert error.resource_key == "stuck"
    assert "did not go down within its teardown_timeout of 0.3 s" in error.message
    records = read(record)
    assert _torn_down(records, "first") and _torn_down(records, "last")
    ups = [r["label"] for r in records if r["event"] == "setup"]
    assert ups == ["first", "stuck", "last"]
    downs = [r["label"] for r in records if r["event"] == "teardown"]
    assert downs == ["last", "first"]  # reverse order; the stuck one was stopped midway


def test_the_run_timeout_interrupts_a_hanging_asset_and_skips_what_did_not_start(
    executor: Executor, record: str
) -> None:
    name, config = executor
    resources = {"r": Recorded(record=record, label="r")}
    assets = [make_asset("quick", resources=["r"]), forever, make_asset("after", ["forever"])]
    with pytest.raises(RunFailure) as info:
        run_assets(assets, resources, executor=name, executor_config=config, timeout=2.0)
    result = info.value.result
    assert result.outputs == {"quick": ["quick"]}
    forever_error, after_error = result.failures["forever"], result.failures["after"]
    assert forever_error.type == after_error.type == "host._errors.RunTimeoutError"
    assert "was interrupted after" in forever_error.message
    assert "the run's timeout of 2 s passed" in forever_error.message
    assert "was not run" in after_error.message
    records = read(record)
    check_lifecycle(records)
    assert counts(records, "setup") == counts(records, "teardown")


def test_a_worker_that_cannot_be_interrupted_is_killed_after_a_grace_period(
    record: str, no_child_left: None
) -> None:
    resources = {"r": Recorded(record=record, label="r")}
    assets = [make_asset("quick", resources=["r"]), stubborn]
    result = run_assets(
        assets,
        resources,
        executor="multiprocess",
        # The run's timeout leaves a loaded machine time to start the worker; the grace after
        # it is short, so the test stays quick.
        executor_config={"max_workers": 1, "grace_period": 1.0},
        raise_on_error=False,
        timeout=5.0,
    )
    error = result.failures["stubborn"]
    assert error.type == "host._errors.RunTimeoutError"
    assert "cannot be interrupted" in error.message and "was killed" in error.message
    # `r` was up in the killed worker: not torn down, and reported.
    assert [e.resource_key for e in result.resource_errors] == ["r"]
    assert "was not torn down" in result.resource_errors[0].message


# -- what can be stopped, in which thread ----------------------------------------------------


def _in_thread(call: Any) -> Any:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(call()))
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    return box[0]


def test_in_another_thread_a_python_hang_is_stopped(record: str) -> None:
    def go() -> RunResult:
        resources = {"slow": SlowToStart(record=record, label="slow")}
        return run_assets([make_asset("a", resources=["slow"])], resources, raise_on_error=False)

    result = _in_thread(go)
    assert "did not come up within its setup_timeout" in result.failures["a"].message
    assert "was stopped" in result.failures["a"].message


def test_in_another_thread_a_blocking_call_is_stopped_only_when_it_returns(record: str) -> None:
    """A thread other than the main one cannot be interrupted inside one blocking call: the
    interruption is raised when the call returns (here, before the setup finishes)."""

    def go() -> RunResult:
        slow = SlowToStart(record=record, label="slow", seconds=0.8, blocking=True)
        resources = {"slow": slow}
        return run_assets([make_asset("a", resources=["slow"])], resources, raise_on_error=False)

    result = _in_thread(go)
    assert "did not come up within its setup_timeout" in result.failures["a"].message
    records = read(record)
    assert [r["event"] for r in records] == ["setup"]  # it never came up: nothing to tear down


def test_in_the_main_thread_a_blocking_call_is_interrupted(record: str) -> None:
    slow = SlowToStart(record=record, label="slow", blocking=True)
    result = run_assets(
        [make_asset("a", resources=["slow"])], {"slow": slow}, raise_on_error=False
    )
    assert "and was stopped" in result.failures["a"].message


def test_timeouts_end_with_no_interruption_left_behind(record: str) -> None:
    """After a run whose timeouts did not fire, nothing is raised later in this thread."""
    fast = Recorded(record=record, label="fast")
    for _ in range(20):
        run_assets(
            [make_asset("a", resources=["fast"])],
            {"fast": fast},
            resource_timeouts={"fast": {"setup": 0.001, "teardown": 0.001}},
            timeout=0.01,
            raise_on_error=False,
        )
    time.sleep(0.05)  # a late interruption would be raised here


# -- declaring timeouts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"timeout": 0}, "timeout=0 is not a valid run timeout"),
        ({"timeout": -1.5}, "timeout=-1.5 is not a valid run timeout"),
        ({"timeout": float("inf")}, "timeout=inf is not a valid run timeout"),
        ({"timeout": "soon"}, "timeout='soon' is not a valid run timeout"),
        ({"resource_timeouts": {"nope": {"setup": 1}}}, "names 'nope', which is not a resource"),
        ({"resource_timeouts": {"r": {"setup": -1}}}, "resource_timeouts['r'] is invalid: setup"),
        ({"resource_timeouts": {"r": {"stup": 1}}}, "resource_timeouts['r'] is invalid: stup"),
    ],
)
def test_invalid_timeouts_are_config_errors_before_anything_comes_up(
    record: str, kwargs: dict[str, Any], problem: str
) -> None:
    resources = {"r": Recorded(record=record, label="r")}
    with pytest.raises(ConfigError) as info:
        run_assets([make_asset("a", resources=["r"])], resources, **kwargs)
    assert problem in str(info.value)
    assert read(record) == []


class BadlyDeclared(Recorded):
    host_teardown_timeout: ClassVar[float | None] = -3.0


def test_an_invalid_class_timeout_is_a_definition_error(record: str) -> None:
    with pytest.raises(DefinitionError, match=r"BadlyDeclared \(key 'r'\) declares an invalid"):
        run_assets(
            [make_asset("a", resources=["r"])], {"r": BadlyDeclared(record=record, label="r")}
        )
    assert read(record) == []


def test_the_key_overrides_the_class(record: str) -> None:
    slow = SlowToStart(record=record, label="slow", seconds=0.6)
    result = run_assets(
        [make_asset("a", resources=["slow"])],
        {"slow": slow},
        resource_timeouts={"slow": {"setup": 5.0}},  # more time than the class allows
    )
    assert result.success


# -- the run config and `host run` -----------------------------------------------------------

RUN_CONFIG = """
[run]
assets = ["timeout_assets"]
timeout = 30

[resources.slow]
type = "gentimeout.hanging"
setup_timeout = 0.5
teardown_timeout = 0.5
[resources.slow.config]
record = "RECORD"
label = "slow"
"""


@pytest.fixture
def timeout_project(tmp_path: Path, record: str) -> Path:
    site = tmp_path / "site"
    make_dist(
        site,
        "gen-timeouts",
        entry_points={RESOURCES_GROUP: {"gentimeout.hanging": "tests.recording:Hanging"}},
    )
    (tmp_path / "timeout_assets.py").write_text(
        "from tests.graphs import make_asset\n\nuses = make_asset('uses', resources=['slow'])\n"
    )
    path = tmp_path / "run.toml"
    path.write_text(textwrap.dedent(RUN_CONFIG.replace("RECORD", record)))
    return path


def test_timeouts_in_a_run_config(timeout_project: Path, record: str) -> None:
    root = str(Path(__file__).resolve().parent.parent)
    done = run(
        [HOST, "run", "--plain", str(timeout_project)],
        site=timeout_project.parent / "site",
        env={"PYTHONPATH": os.pathsep.join([str(timeout_project.parent / "site"), root])},
    )
    assert done.returncode == 1, done.stderr
    assert "did not come up within its setup_timeout of 0.5 s" in done.stderr
    assert read(record)[0]["event"] == "setup"


def test_a_run_config_passes_its_timeouts_to_the_run(
    timeout_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(timeout_project.parent / "site"))
    from host._discovery import reset_discovery

    reset_discovery()
    try:
        kwargs = load_run_config(timeout_project).run_kwargs()
    finally:
        reset_discovery()
    assert kwargs["timeout"] == 30
    timeouts = kwargs["resource_timeouts"]["slow"]
    assert (timeouts.setup, timeouts.teardown) == (0.5, 0.5)
