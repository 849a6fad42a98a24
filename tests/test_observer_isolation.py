"""Observer hooks never change a run; asset hooks do exactly what their hookspecs say.

On every executor: a ``host_event`` / ``host_run_success`` / ``host_run_failure`` observer
that raises (any ``Exception``,
at any event of the run) is reported on the ``host.plugins`` logger naming the plugin, and the
run, its resources' lifecycles (records the resources write themselves) and the other observers
go on unaffected. ``host_asset_start`` and ``host_asset_success`` raising fail that asset;
``host_asset_failure`` raising is logged and leaves the asset's error as it was.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host import AssetExecutionContext, ErrorInfo, Event, asset, hookimpl, run_assets
from tests import recording
from tests.observers import Captured, EventLog
from tests.recording import Recorded


class OwnBaseException(BaseException):
    """A BaseException of an observer's own (not an Exception, not an interrupt)."""


class _Inert:
    """What a caller-side observer becomes in a worker process."""


class Breaking:
    """Raises ``error`` from ``host_event`` at the ``nth`` event of type ``kind`` (0: every)."""

    def __init__(self, error: Exception, kind: str, nth: int = 0) -> None:
        self.error = error
        self.kind = kind
        self.nth = nth
        self.seen = 0

    @hookimpl
    def host_event(self, event: Event) -> None:
        if type(event).__name__ != self.kind:
            return
        self.seen += 1
        if self.nth in (0, self.seen):
            raise self.error

    def __reduce__(self) -> tuple[type[_Inert], tuple[()]]:
        return _Inert, ()


class BreakingRun:
    """Raises from the run observer hooks."""

    @hookimpl
    def host_run_success(self, result: Any) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    @hookimpl
    def host_run_failure(self, result: Any) -> None:
        raise ValueError("run failure observer broke")

    def __reduce__(self) -> tuple[type[_Inert], tuple[()]]:
        return _Inert, ()


class AssetHookFault:
    """Raises from one asset hook for asset ``key`` (picklable: it runs where the asset runs)."""

    def __init__(self, hook: str, key: str) -> None:
        self.hook = hook
        self.key = key

    def _maybe(self, hook: str, context: AssetExecutionContext) -> None:
        if hook == self.hook and context.asset_key == self.key:
            raise LookupError(f"{hook} of {self.key} broke on purpose")

    @hookimpl
    def host_asset_start(self, context: AssetExecutionContext) -> None:
        self._maybe("start", context)

    @hookimpl
    def host_asset_success(self, context: AssetExecutionContext, output: Any) -> None:
        self._maybe("success", context)

    @hookimpl
    def host_asset_failure(self, context: AssetExecutionContext, error: ErrorInfo) -> None:
        self._maybe("failure", context)


@asset
def first(db: Recorded) -> str:
    return db.use()


@asset
def second(first: str, cache: Recorded) -> str:
    return first + cache.use()


@asset
def alone(cache: Recorded) -> str:
    return cache.use()


@asset
def failing(db: Recorded) -> str:
    db.use()
    raise KeyError("failing failed on purpose")


def _resources(record: str) -> dict[str, Recorded]:
    return {
        "db": Recorded(record=record, label="db"),
        "cache": Recorded(record=record, label="cache"),
    }


def _assert_lifecycles_whole(record: str) -> None:
    records = recording.read(record)
    ups = recording.counts(records, "up")
    downs = recording.counts(records, "teardown")
    assert ups, "nothing came up"
    assert ups == downs, f"brought up {dict(ups)} but torn down {dict(downs)}"
    assert all(count == 1 for count in ups.values())


@pytest.fixture
def plugin_log() -> Any:
    handler = Captured()
    logger = logging.getLogger("host.plugins")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


_ERRORS = st.sampled_from(
    [
        BrokenPipeError(32, "Broken pipe"),
        ValueError("observer broke"),
        RuntimeError("observer broke"),
        KeyError("missing"),
        OSError(5, "I/O error"),
        UnicodeEncodeError("ascii", "\u00e9", 0, 1, "ordinal not in range"),
        # Not Exceptions, but raised by the observer's own code: still only its failure.
        SystemExit(0),
        GeneratorExit(),
        asyncio.CancelledError(),
        OwnBaseException("an observer's own BaseException"),
    ]
)
_KINDS = st.sampled_from(
    ["RunStarted", "ResourceEvent", "AssetStarted", "AssetSucceeded", "RunFinished"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(error=_ERRORS, kind=_KINDS, nth=st.integers(0, 3))
def test_a_raising_event_observer_changes_nothing_in_process(
    tmp_path_factory: pytest.TempPathFactory, plugin_log: Captured, error: Exception, kind: str,
    nth: int,
) -> None:
    record = str(tmp_path_factory.mktemp("obs") / "records.jsonl")
    log = EventLog()
    before = len(plugin_log.lines)
    result = run_assets(
        [first, second, alone],
        _resources(record),
        plugins=[Breaking(error, kind, nth), log],
    )
    assert result.success, result.failures
    assert result.outputs == {"first": "db", "second": "dbcache", "alone": "cache"}
    assert not result.resource_errors
    _assert_lifecycles_whole(record)
    # The other observer saw every event of the run.
    assert [type(e).__name__ for e in log.events] == [type(e).__name__ for e in result.events]
    seen = sum(type(e).__name__ == kind for e in result.events)
    raised = seen > 0 and (nth == 0 or nth <= seen)
    reported = [line for line in plugin_log.lines[before:] if "Breaking" in line]
    assert bool(reported) is raised
    if raised:
        assert "tests.test_observer_isolation.Breaking" in reported[0]
        assert "host_event" in reported[0] and type(error).__name__ in reported[0]


def test_a_raising_event_observer_changes_nothing_on_every_executor(
    executor: tuple[str, dict[str, Any]], record: str, plugin_log: Captured
) -> None:
    name, config = executor
    log = EventLog()
    broken = [Breaking(BrokenPipeError(32, "Broken pipe"), kind) for kind in
              ("ResourceEvent", "AssetStarted", "AssetSucceeded")]
    result = run_assets(
        [first, second, alone],
        _resources(record),
        executor=name,
        executor_config=config,
        plugins=[*broken, log],
    )
    assert result.success, result.failures
    assert result.outputs == {"first": "db", "second": "dbcache", "alone": "cache"}
    _assert_lifecycles_whole(record)
    assert len(log.events) == len(result.events)
    text = "\n".join(plugin_log.lines)
    assert "BrokenPipeError" in text and "host_event" in text
    # Reported with its traceback once per plugin, not once per event.
    assert text.count("Traceback") == len(broken)


def test_raising_run_observers_leave_the_result_as_it_is(record: str, plugin_log: Captured) -> None:
    result = run_assets([first, second], _resources(record), plugins=[BreakingRun()])
    assert result.success
    assert result.outputs["second"] == "dbcache"
    assert "host_run_success" in "\n".join(plugin_log.lines)

    _assert_lifecycles_whole(record)
    again = record + ".failing"
    failed = run_assets(
        [failing, alone], _resources(again), plugins=[BreakingRun()], raise_on_error=False
    )
    assert not failed.success and "failing" in failed.failures
    assert failed.outputs["alone"] == "cache"
    assert "host_run_failure" in "\n".join(plugin_log.lines)
    _assert_lifecycles_whole(again)


class Refusing:
    """Refuses every run in ``host_run_start`` (a plugin whose own configuration is invalid)."""

    @hookimpl
    def host_run_start(self, run_id: str) -> None:
        raise LookupError("this plugin's configuration is invalid")


def test_a_run_start_hook_that_raises_stops_the_run_before_anything_comes_up(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    name, config = executor
    with pytest.raises(LookupError, match="configuration is invalid"):
        run_assets(
            [first, second],
            _resources(record),
            executor=name,
            executor_config=config,
            plugins=[Refusing()],
        )
    assert recording.read(record) == []


@pytest.mark.parametrize("hook", ["start", "success"])
def test_a_raising_asset_start_or_success_hook_fails_that_asset_on_every_executor(
    executor: tuple[str, dict[str, Any]], record: str, hook: str
) -> None:
    name, config = executor
    result = run_assets(
        [first, second, alone],
        _resources(record),
        executor=name,
        executor_config=config,
        plugins=[AssetHookFault(hook, "first")],
        raise_on_error=False,
    )
    assert not result.success
    assert set(result.failures) == {"first"}
    error = result.failures["first"]
    assert error.type == "builtins.LookupError"
    assert f"{hook} of first broke on purpose" in error.message
    assert result.skipped == ("second",)
    assert result.outputs == {"alone": "cache"}
    _assert_lifecycles_whole(record)


def test_a_raising_asset_failure_hook_changes_no_error_on_every_executor(
    executor: tuple[str, dict[str, Any]], record: str, plugin_log: Captured
) -> None:
    name, config = executor
    result = run_assets(
        [failing, alone],
        _resources(record),
        executor=name,
        executor_config=config,
        plugins=[AssetHookFault("failure", "failing")],
        raise_on_error=False,
    )
    assert set(result.failures) == {"failing"}
    assert result.failures["failing"].type == "builtins.KeyError"
    assert result.outputs == {"alone": "cache"}
    _assert_lifecycles_whole(record)
    if name == "in_process":  # logged where the asset ran
        assert "host_asset_failure hook failed for asset 'failing'" in "\n".join(plugin_log.lines)
