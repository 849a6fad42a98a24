"""``run_assets``: plan, check, run on an executor, tear down, report."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from host._errors import (
    ConfigError,
    DefinitionError,
    RunFailure,
    describe_validation,
    validation_problems,
)
from host._events import AssetStarted, Event, RunFinished, RunResult, RunStarted
from host._graph import Plan
from host._interrupts import sigterm_raises_systemexit
from host._launch import prepare_run
from host._plugins import observer, run_plugin_manager
from host._resource import ConfigurableResource
from host._resource_graph import ResourceGraph
from host._scoped_plugins import with_scoped_plugins
from host._secret_values import secret_values
from host._secrets import mask_event
from host._timeouts import Deadline, DeadlineExceeded, PhaseTimeouts, Seconds
from host.executors.base import Executor, RunState
from host.executors.registry import resolve_executor

__all__ = ["RunSession", "execute_run", "resolve_timeouts", "run_assets"]


class RunSession(Protocol):
    """What :func:`execute_run` needs of the session a run is part of."""

    #: The session's id; ``None``: its executor keeps no session (each run on its own).
    session_id: str | None

    def admit(self, graph: ResourceGraph, plan: Plan, run_id: str) -> None:
        """Check run ``run_id`` against the session before anything comes up.

        Raises:
            ConfigError: a session-scoped resource's config differs from the one it came up
                with in this session.
            SessionError: the session is closed.
        """


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
    timeout: float | None = None,
    resource_timeouts: Mapping[str, PhaseTimeouts | Mapping[str, Any]] | None = None,
    run_config: Mapping[str, Any] | None = None,
    history: str | os.PathLike[str] | None = None,
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
        timeout: seconds the run may take to bring resources up and compute its assets. When
            they pass, the assets still running are interrupted and those not started are not
            run (each fails with :class:`host.RunTimeoutError`); then everything that came up
            is torn down as usual, each teardown within its own ``teardown_timeout``.
        resource_timeouts: resource key -> ``{"setup": seconds, "teardown": seconds}`` (or a
            ``PhaseTimeouts``), replacing the class's ``host_setup_timeout`` /
            ``host_teardown_timeout`` for that key. A resource still coming up when its setup
            timeout passes is stopped and fails with :class:`host.ResourceSetupError`; one
            still going down is stopped and reported in ``RunResult.resource_errors``, and the
            others are still torn down. ``specs/reliability.md`` says what can be stopped.
        run_config: launch-time config, in Dagster's shape ``{"ops": {ASSET: {"config":
            {...}}}, "resources": {KEY: {"config": {...}}}}`` or host's, with ``"assets"`` for
            ``"ops"``. An asset's config (a ``host.Config`` instance may stand for its
            ``{"config": ...}``) is validated by the class its config parameter is annotated
            with; a resource's replaces the values it holds field by field, and completes one
            declared with ``configure_at_launch()`` or ``.partial()``. Validated before
            anything comes up.
        history: a run history database (sqlite) to record the run in (``specs/history.md``);
            default: not recorded. Recording never fails the run: a database that cannot be
            written is one warning on the ``host.history`` logger.

    Returns:
        The run's :class:`host.RunResult`.

    Raises:
        DefinitionError: the definitions are wrong; nothing ran.
        ConfigError: a configuration (executor, resource, asset, timeouts, ``run_config``) is
            invalid or missing; nothing ran.
        RunFailure: the run failed and ``raise_on_error`` is true; raised after every teardown,
            chaining the first underlying error.
    """
    return execute_run(
        assets,
        resources,
        resolve_executor(executor, executor_config),
        selection=selection,
        run_id=run_id,
        raise_on_error=raise_on_error,
        plugins=plugins,
        timeout=timeout,
        resource_timeouts=resource_timeouts,
        run_config=run_config,
        history=history,
    )


def execute_run(
    assets: Sequence[Any],
    resources: Mapping[str, Any] | None,
    chosen: Executor,
    *,
    selection: Iterable[str] | None = None,
    run_id: str | None = None,
    raise_on_error: bool = True,
    plugins: Iterable[object] = (),
    timeout: float | None = None,
    resource_timeouts: Mapping[str, PhaseTimeouts | Mapping[str, Any]] | None = None,
    run_config: Mapping[str, Any] | None = None,
    history: str | os.PathLike[str] | None = None,
    session: RunSession | None = None,
) -> RunResult:
    """:func:`run_assets` on an executor instance already made; ``session`` is the
    :class:`host.Session` the run is part of (see :class:`RunSession`), if any."""
    run_id = run_id or uuid.uuid4().hex
    graph, plan = prepare_run(assets, resources, selection, run_config)
    graph.check_config(plan.resource_keys())
    chosen.check(plan, graph)
    if chosen.shares_environment:
        graph.check_environment(plan.resource_keys())
    seconds = _run_timeout(timeout)
    timeouts = resolve_timeouts(graph, plan, resource_timeouts)
    if session is not None:  # last: a run refused above leaves the session as it was
        session.admit(graph, plan, run_id)
    plugins = with_scoped_plugins(plugins)
    manager = run_plugin_manager(plugins)
    secrets = set(secret_values({key: node.resource for key, node in graph.nodes.items()}))
    events: list[Event] = []
    emit = _event_sink(events, manager.hook.host_event, secrets)
    state = RunState(
        run_id,
        chosen.name,
        plan,
        graph,
        manager,
        emit,
        plugins=plugins,
        timeout=seconds,
        timeouts=timeouts,
        secrets=secrets,
        session_id=None if session is None else session.session_id,
    )

    recording = None if history is None else _recording(history, state, selection)
    start = time.perf_counter()
    emit(RunStarted(run_id, executor=chosen.name, assets=plan.order))
    manager.hook.host_run_start(run_id=run_id, executor=chosen.name, assets=plan.order)
    # An executor that does not count the timeout itself is interrupted where it runs.
    deadline = Deadline(None if chosen.supports_timeout else seconds)
    state.run_deadline = deadline
    with sigterm_raises_systemexit():
        try:
            with deadline:
                chosen.execute(state)
        except DeadlineExceeded:
            if not deadline.expired:
                raise
            _timed_out(state, events)
        except BaseException as exc:
            if recording is not None:
                recording.interrupted(events, exc)
            raise
        finally:
            state.collect_teardown_errors()
    if secrets and not manager.hook.host_event.get_hookimpls():
        events[:] = [mask_event(event, secrets) for event in events]
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
    if recording is not None:
        recording.finish(result)
    if success:
        observer(manager.hook.host_run_success)(result=result)
        return result
    observer(manager.hook.host_run_failure)(result=result)
    if raise_on_error:
        raise RunFailure(_summary(result), result) from state.first_exception
    return result


def _recording(history: str | os.PathLike[str], state: RunState, selection: Any) -> Any:
    """Start recording the run into ``history`` (``host._history``, imported only then)."""
    from host._history import start_recording

    return start_recording(
        history,
        state.run_id,
        executor=state.executor,
        planned=state.plan.order,
        selection=None if selection is None else list(selection),
        types={key: type(node.resource) for key, node in state.resources.nodes.items()},
        secrets=state.secrets,
    )


def _run_timeout(timeout: float | None) -> float | None:
    """``timeout``, checked: a positive number of seconds, or ``None``."""
    if timeout is None:
        return None
    try:
        seconds: float = TypeAdapter(Seconds).validate_python(timeout)
    except ValidationError as exc:
        problem = validation_problems(exc)[0].message
        raise ConfigError(
            f"timeout={timeout!r} is not a valid run timeout: {problem}. Give the seconds the "
            f"run may take (a positive number), or None for no limit."
        ) from None
    return seconds


def resolve_timeouts(
    graph: ResourceGraph,
    plan: Plan,
    given: Mapping[str, PhaseTimeouts | Mapping[str, Any]] | None,
) -> dict[str, PhaseTimeouts]:
    """The per-key timeouts of a run, checked before anything comes up.

    Checks the ``host_setup_timeout`` / ``host_teardown_timeout`` of every resource class the
    plan needs, and ``given`` (keys must be resource keys of the run).

    Raises:
        ConfigError: a timeout is not a positive number of seconds, or names an unknown key.
        DefinitionError: a resource class declares an invalid timeout.
    """
    for key in graph.closure(plan.resource_keys()):
        cls = type(graph.nodes[key].resource)
        if not issubclass(cls, ConfigurableResource):
            continue
        try:
            PhaseTimeouts(setup=cls.host_setup_timeout, teardown=cls.host_teardown_timeout)
        except ValidationError as exc:
            problem = describe_validation(exc, where=lambda p: f"host_{p.loc[0]}_timeout")
            raise DefinitionError(
                f"resource class {cls.__module__}.{cls.__qualname__} (key {key!r}) declares an "
                f"invalid timeout: {problem}. Use a positive number of seconds, or None."
            ) from None
    resolved: dict[str, PhaseTimeouts] = {}
    for key, value in (given or {}).items():
        if key not in graph.nodes:
            raise ConfigError(
                f"resource_timeouts names {key!r}, which is not a resource of the run (resources: "
                f"{sorted(graph.nodes) or 'none'}).",
                resource_key=key,
            )
        try:
            timeouts = (
                value if isinstance(value, PhaseTimeouts) else PhaseTimeouts.model_validate(value)
            )
        except ValidationError as exc:
            problem = describe_validation(exc)
            raise ConfigError(
                f"resource_timeouts[{key!r}] is invalid: {problem}. Give "
                f'{{"setup": seconds, "teardown": seconds}} (either may be left out).',
                resource_key=key,
            ) from None
        resolved[graph.nodes[key].key] = timeouts
    return resolved


def _timed_out(state: RunState, events: Collection[Event]) -> None:
    """The run's timeout passed in this thread: fail each asset that has no outcome."""
    started = {event.asset_key: event for event in events if isinstance(event, AssetStarted)}
    for key in state.plan.order:
        if key in state.outputs or key in state.failures or key in state.skipped:
            continue
        begun = started.get(key)
        state.time_out(key, None if begun is None else time.time() - begun.timestamp)


def _event_sink(
    events: list[Event], host_event: Any, secrets: Collection[str] = ()
) -> Callable[[Event], None]:
    """Append to ``events``; also call ``host_event`` when some plugin implements it.

    Without ``host_event`` observers the events are appended as they are (errors are masked
    when the run ends); an observer gets each event with known ``secrets`` masked in its error.
    An observer that raises is reported and the run goes on (:func:`host._plugins.observer`).
    """
    if not host_event.get_hookimpls():
        return events.append
    notify = observer(host_event)

    def emit(event: Event) -> None:
        event = mask_event(event, secrets)
        events.append(event)
        notify(event=event)

    return emit


def _summary(result: RunResult) -> str:
    lines = [f"run {result.run_id} failed:"]
    for key, error in result.failures.items():
        lines.append(f"  asset {key!r}: {error.type.rpartition('.')[2]}: {error.message}")
    for error in result.resource_errors:
        lines.append(f"  teardown of {error.resource_key!r}: {error.message}")
    if result.skipped:
        lines.append(f"  skipped (upstream failed): {', '.join(result.skipped)}")
    return "\n".join(lines)
