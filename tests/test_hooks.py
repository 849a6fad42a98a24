"""Hooks: the built-in behaviour is a plugin; plugins observe, wrap and replace each phase."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from host import (
    AssetExecutionContext,
    AssetSucceeded,
    ConfigurableResource,
    ErrorInfo,
    Event,
    InitResourceContext,
    ResourceEvent,
    RunResult,
    asset,
    hookimpl,
    run_assets,
)
from tests.graphs import make_asset
from tests.recording import Recorded, RecordedYield, read


class Observer:
    """Records every hook call it sees."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.events: list[Event] = []

    @hookimpl
    def host_run_start(self, run_id: str, executor: str, assets: tuple[str, ...]) -> None:
        self.calls.append(("run_start", assets))

    @hookimpl
    def host_run_success(self, result: RunResult) -> None:
        self.calls.append(("run_success", result.success))

    @hookimpl
    def host_run_failure(self, result: RunResult) -> None:
        self.calls.append(("run_failure", sorted(result.failures)))

    @hookimpl
    def host_asset_start(self, context: AssetExecutionContext) -> None:
        self.calls.append(("asset_start", context.asset_key))

    @hookimpl
    def host_asset_success(self, context: AssetExecutionContext, output: Any) -> None:
        self.calls.append(("asset_success", context.asset_key))

    @hookimpl
    def host_asset_failure(self, context: AssetExecutionContext, error: ErrorInfo) -> None:
        self.calls.append(("asset_failure", context.asset_key))

    @hookimpl
    def host_event(self, event: Event) -> None:
        self.events.append(event)


def test_observer_sees_runs_assets_and_every_resource_phase(record: str) -> None:
    observer = Observer()
    resources = {
        "r": Recorded(record=record, label="r"),
        "y": RecordedYield(record=record, label="y"),
    }
    assets = [make_asset("a", resources=["r", "y"]), make_asset("b", upstream=["a"], fail=True)]
    result = run_assets(assets, resources, plugins=[observer], raise_on_error=False)

    assert observer.calls == [
        ("run_start", ("a", "b")),
        ("asset_start", "a"),
        ("asset_success", "a"),
        ("asset_start", "b"),
        ("asset_failure", "b"),
        ("run_failure", ["b"]),
    ]
    assert tuple(observer.events) == result.events
    phases = [(e.resource_key, e.phase) for e in observer.events if isinstance(e, ResourceEvent)]
    assert phases == [
        ("r", "setup"),
        ("r", "yield_enter"),
        ("y", "yield_enter"),
        ("y", "yield_exit"),
        ("r", "teardown"),
        ("r", "yield_exit"),
    ]
    for event in observer.events:
        if isinstance(event, ResourceEvent):
            assert event.pid == os.getpid() and event.duration >= 0 and event.error is None


class Wrapper:
    """Wraps each resource phase and records what it saw, results and exceptions."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl(wrapper=True)
    def host_resource_setup(self, resource: Any, context: InitResourceContext) -> Any:
        try:
            result = yield
        except Exception as exc:
            self.seen.append(("setup", context.resource_key, f"raised {type(exc).__name__}"))
            raise
        self.seen.append(("setup", context.resource_key, "ok"))
        return result

    @hookimpl(wrapper=True)
    def host_resource_yield(self, resource: Any, context: InitResourceContext) -> Any:
        inner = yield
        seen = self.seen
        key = context.resource_key

        @contextlib.contextmanager
        def wrapped() -> Iterator[Any]:
            seen.append(("enter", key, "start"))
            with inner as value:
                seen.append(("enter", key, "ok"))
                yield value
            seen.append(("exit", key, "ok"))

        return wrapped()

    @hookimpl(wrapper=True)
    def host_resource_teardown(self, resource: Any, context: InitResourceContext) -> Any:
        result = yield
        self.seen.append(("teardown", context.resource_key, "ok"))
        return result


def test_wrappers_see_results_and_exceptions_of_each_phase(record: str) -> None:
    wrapper = Wrapper()
    resources = {
        "good": Recorded(record=record, label="good"),
        "bad": Recorded(record=record, label="bad", fail_setup=True),
    }
    assets = [make_asset("a", resources=["good"]), make_asset("b", resources=["bad"])]
    result = run_assets(assets, resources, plugins=[wrapper], raise_on_error=False)

    assert set(result.failures) == {"b"}
    assert wrapper.seen == [
        ("enter", "good", "start"),
        ("setup", "good", "ok"),
        ("enter", "good", "ok"),
        ("enter", "bad", "start"),
        ("setup", "bad", "raised RuntimeError"),
        ("teardown", "good", "ok"),
        ("exit", "good", "ok"),
    ]


def test_a_plugin_can_replace_a_phase(record: str) -> None:
    class SkipSetup:
        @hookimpl(tryfirst=True)
        def host_resource_setup(self, resource: Any, context: InitResourceContext) -> bool:
            return True  # a non-None result: the built-in setup is not called

    class Doubler:
        @hookimpl(wrapper=True)
        def host_asset_execute(self, context: Any, fn: Any, kwargs: Any) -> Any:
            return (yield) * 2

    @asset
    def a() -> int:
        return 21

    resources = {"r": Recorded(record=record, label="r")}
    result = run_assets(
        [a, make_asset("b", resources=["r"], fail=False)],
        resources,
        plugins=[SkipSetup(), Doubler()],
        raise_on_error=False,
    )
    assert result.outputs["a"] == 42
    assert "b" in result.failures  # `use()` fails: the replaced setup never brought `r` up
    assert [r["event"] for r in read(record)] == ["teardown"]


def test_plugins_are_registered_for_one_run_only() -> None:
    observer = Observer()
    run_assets([make_asset("a")], plugins=[observer])
    count = len(observer.calls)
    run_assets([make_asset("a")])
    assert len(observer.calls) == count == 4


class BrokenObservers:
    """Observers that raise: on success for asset ``a``, on failure for asset ``b``."""

    @hookimpl
    def host_asset_success(self, context: AssetExecutionContext, output: Any) -> None:
        if context.asset_key == "a":
            raise RuntimeError("observer bug")

    @hookimpl
    def host_asset_failure(self, context: AssetExecutionContext, error: ErrorInfo) -> None:
        raise RuntimeError("failure observer bug")


def test_a_raising_success_observer_fails_the_asset_on_every_executor(
    executor: tuple[str, dict[str, Any]],
) -> None:
    name, config = executor
    result = run_assets(
        [make_asset("a"), make_asset("c")],
        executor=name,
        executor_config=config,
        plugins=[BrokenObservers()],
        raise_on_error=False,
    )
    assert set(result.failures) == {"a"}
    assert result.failures["a"].message == "observer bug"
    assert "c" in result.outputs
    # No asset both succeeded and failed: the success observer runs before AssetSucceeded.
    assert [e.asset_key for e in result.events_of(AssetSucceeded)] == ["c"]


def test_a_raising_failure_observer_keeps_the_assets_error_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @asset
    def b() -> None:
        raise ValueError("the asset's own error")

    with caplog.at_level("ERROR", logger="host.plugins"):
        result = run_assets([b], plugins=[BrokenObservers()], raise_on_error=False)
    assert result.failures["b"].message == "the asset's own error"
    logged = [r for r in caplog.records if r.name == "host.plugins"]
    assert len(logged) == 1
    assert "'b'" in logged[0].getMessage()
    assert logged[0].exc_info is not None
    assert str(logged[0].exc_info[1]) == "failure observer bug"


def test_resource_replaced_by_custom_yield_skips_setup_hooks() -> None:
    class Custom(ConfigurableResource):
        @contextlib.contextmanager
        def yield_for_execution(self, context: InitResourceContext) -> Iterator[str]:
            yield "the value assets receive"

    wrapper = Wrapper()

    @asset
    def a(custom: Any) -> Any:
        return custom

    result = run_assets([a], {"custom": Custom()}, plugins=[wrapper])
    assert result.outputs["a"] == "the value assets receive"
    assert [s[0] for s in wrapper.seen] == ["enter", "enter", "exit"]


class BrokenYield:
    """A hook plugin whose ``host_resource_yield`` wrapper fails for one resource."""

    @hookimpl(wrapper=True)
    def host_resource_yield(self, resource: Any, context: Any) -> Any:
        inner = yield
        if context.resource_key == "broken":
            raise LookupError("no context manager for you")
        return inner


def test_a_hook_plugin_failing_to_give_the_context_manager_fails_that_resource(
    record: str,
) -> None:
    resources = {
        "fine": Recorded(record=record, label="fine"),
        "broken": Recorded(record=record, label="broken"),
    }
    result = run_assets(
        [make_asset("a", resources=["fine", "broken"])],
        resources,
        plugins=[BrokenYield()],
        raise_on_error=False,
    )
    error = result.failures["a"]
    assert error.type == "host._errors.ResourceSetupError" and error.resource_key == "broken"
    assert "LookupError: no context manager for you" in error.message
    events = [(r["event"], r["label"]) for r in read(record) if r["event"] != "use"]
    assert events == [("setup", "fine"), ("up", "fine"), ("teardown", "fine")]
