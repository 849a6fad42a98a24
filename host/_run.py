"""``run_assets``: plan, check, run on an executor, tear down, report."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

from host._errors import RunFailure
from host._events import Event, RunFinished, RunResult, RunStarted
from host._executors.base import Executor, RunState
from host._executors.registry import resolve_executor
from host._graph import build_plan
from host._plugins import make_plugin_manager
from host._resource_graph import ResourceGraph
from host._scoped_plugins import with_scoped_plugins

__all__ = ["run_assets"]


def run_assets(
    assets: Sequence[Any],
    resources: Mapping[str, Any] | None = None,
    *,
    executor: str | Executor | type[Executor] = "in_process",
    executor_config: Mapping[str, Any] | None = None,
    selection: Iterable[str] | None = None,
    run_id: str | None = None,
    raise_on_error: bool = True,
    plugins: Iterable[object] = (),
) -> RunResult:
    """Run ``assets`` with ``resources`` on an executor, and tear down whatever came up.

    Everything is checked before any resource comes up: definitions (unresolved parameters,
    cycles, duplicate names, missing resources), the executor and its configuration, and, for
    executors that share this process's environment, every ``EnvVar`` the run will read.

    Each run works on fresh copies of the resources (private state never leaks between runs);
    a resource comes up at most once per run in each process, only where an asset needs it, and
    is torn down in reverse order of bring-up when the run ends there, whatever happened.

    Args:
        assets: ``@asset`` definitions.
        resources: resource key -> resource (a ``ConfigurableResource``, or any object, given to
            assets as it is).
        executor: an executor name (``host.executors`` entry point), class, or instance.
        executor_config: the executor's settings, validated by its ``Config`` model.
        selection: asset keys to run (with their upstream assets); default: all.
        run_id: the run's id; default: a new UUID.
        raise_on_error: raise :class:`host.RunFailure` if the run failed.
        plugins: extra hook plugins registered for this run only (after those registered with
            ``host.testing.register_plugin`` around the call).

    Returns:
        The run's :class:`host.RunResult`.

    Raises:
        DefinitionError: the definitions are wrong; nothing ran.
        ConfigError: a configuration (executor or resource) is invalid; nothing ran.
        RunFailure: the run failed and ``raise_on_error`` is true; raised after every teardown,
            chaining the first underlying error.
    """
    run_id = run_id or uuid.uuid4().hex
    graph = ResourceGraph.build(dict(resources or {}))
    plan = build_plan(assets, graph, selection)
    chosen = resolve_executor(executor, executor_config)
    chosen.check(plan, graph)
    if chosen.shares_environment:
        graph.check_environment(plan.resource_keys())
    plugins = with_scoped_plugins(plugins)
    manager = make_plugin_manager(plugins)
    events: list[Event] = []
    emit = _event_sink(events, manager.hook.host_event)
    state = RunState(run_id, chosen.name, plan, graph, manager, emit, plugins=plugins)

    start = time.perf_counter()
    emit(RunStarted(run_id, executor=chosen.name, assets=plan.order))
    manager.hook.host_run_start(run_id=run_id, executor=chosen.name, assets=plan.order)
    with _sigterm_raises_systemexit():
        chosen.execute(state)
    success = not state.failures and not state.teardown_errors
    emit(RunFinished(run_id, success=success, duration=time.perf_counter() - start))
    result = RunResult(
        run_id=run_id,
        success=success,
        outputs=state.outputs,
        failures=state.failures,
        skipped=tuple(state.skipped),
        resource_errors=tuple(state.teardown_errors),
        events=tuple(events),
    )
    if success:
        manager.hook.host_run_success(result=result)
        return result
    manager.hook.host_run_failure(result=result)
    if raise_on_error:
        raise RunFailure(_summary(result), result) from state.first_exception
    return result


def _event_sink(events: list[Event], host_event: Any) -> Callable[[Event], None]:
    """Append to ``events``; also call ``host_event`` when some plugin implements it."""
    if not host_event.get_hookimpls():
        return events.append

    def emit(event: Event) -> None:
        events.append(event)
        host_event(event=event)

    return emit


@contextlib.contextmanager
def _sigterm_raises_systemexit() -> Iterator[None]:
    """While the run is in the main thread, SIGTERM raises SystemExit(143) so teardown runs.

    A second SIGTERM while tearing down is ignored; the previous handler comes back after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _summary(result: RunResult) -> str:
    lines = [f"run {result.run_id} failed:"]
    for key, error in result.failures.items():
        lines.append(f"  asset {key!r}: {error.type.rpartition('.')[2]}: {error.message}")
    for error in result.resource_errors:
        lines.append(f"  teardown of {error.resource_key!r}: {error.message}")
    if result.skipped:
        lines.append(f"  skipped (upstream failed): {', '.join(result.skipped)}")
    return "\n".join(lines)
