"""The per-process side of a run: the resource stack and the runtime that drives hooks.

A :class:`ProcessRuntime` exists once per run per process (the caller's process for the
in-process executor, each worker for the others). Its :class:`ResourceStack` brings a resource
up the first time an asset in that process needs it, dependencies first, through the
``host_resource_yield`` hook, and tears everything down in reverse order when the process is done
with the run, whatever happened. Events go to ``emit``: the run's event log in the caller's
process, a queue to the parent in a worker.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

if TYPE_CHECKING:
    import asyncio

from host._builtin_hooks import BuiltinPlugin
from host._context import InitResourceContext
from host._errors import (
    ConfigError,
    HostInterrupt,
    ResourceSetupError,
    ResourceTeardownError,
    is_interrupt,
)
from host._events import ErrorInfo, Event, ResourceEvent, ResourcePhase, describe_exception
from host._interrupts import signals_held
from host._resource import ConfigurableResource
from host._resource_graph import ResourceGraph
from host._secrets import mask, secrets_of
from host._timeouts import (
    Deadline,
    DeadlineExceeded,
    PhaseTimeouts,
    interrupts_sent,
    phase_timeouts,
)

__all__ = ["AssetHooks", "ProcessRuntime", "ResourceStack", "distribution_of"]

T = TypeVar("T")


@functools.cache
def _packages() -> Mapping[str, list[str]]:
    import importlib_metadata

    return importlib_metadata.packages_distributions()


def distribution_of(cls: type) -> str | None:
    """``"name version"`` of the installed distribution that ships ``cls``, if any."""
    import importlib_metadata

    top = cls.__module__.partition(".")[0]
    names = _packages().get(top)
    if not names:
        return None
    try:
        return f"{names[0]} {importlib_metadata.version(names[0])}"
    except importlib_metadata.PackageNotFoundError:
        return names[0]


def _close_abandoned(cm: object) -> None:
    """Close a generator context manager whose ``__enter__`` was interrupted.

    If the interrupt came after the generator reached its ``yield`` (the resource is up), its
    ``finally`` runs now, not whenever the object is collected; otherwise this does nothing.
    """
    generator = getattr(cm, "gen", None)
    if inspect.isgenerator(generator):
        with contextlib.suppress(Exception):
            generator.close()


def _describe(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class AssetHooks:
    """Which asset hooks a run's plugins implement, read once per run per process.

    Attributes:
        start / success / failure: some plugin implements ``host_asset_start`` /
            ``host_asset_success`` / ``host_asset_failure`` (an observer no plugin implements
            is not called at all).
        execute_is_builtin: ``host_asset_execute`` has only the built-in implementation, which
            is then called directly (what pluggy would do for it, without its machinery).
        need_context: some hook receives the asset's execution context.
    """

    start: bool
    success: bool
    failure: bool
    execute_is_builtin: bool
    need_context: bool

    @classmethod
    def of(cls, hook: pluggy.HookRelay) -> AssetHooks:
        """Read the hook implementations registered now."""
        execute = hook.host_asset_execute.get_hookimpls()
        start = bool(hook.host_asset_start.get_hookimpls())
        success = bool(hook.host_asset_success.get_hookimpls())
        failure = bool(hook.host_asset_failure.get_hookimpls())
        builtin = (
            len(execute) == 1
            and isinstance(execute[0].plugin, BuiltinPlugin)
            and not (execute[0].wrapper or execute[0].hookwrapper)
        )
        return cls(start, success, failure, builtin, start or success or failure or not builtin)


class ProcessRuntime:
    """One run in one process: the hook relay, the event sink and the event loop.

    Attributes:
        run_id: the run's id.
        executor: the executor's name.
        hook: the plugin manager's hook relay.
        emit: where events go.
        timeouts: resource key -> setup/teardown timeouts given for the run, which replace the
            class's own (``host_setup_timeout``, ``host_teardown_timeout``).
        run_deadline: the run's ``timeout`` when it is counted in this thread; stopped when
            the resources start going down (teardowns have their own timeouts).
        secrets: the secret values of the resources brought up here (``SecretStr`` fields and
            values read from the environment), which error reports must not show.
    """

    def __init__(
        self,
        run_id: str,
        executor: str,
        hook: pluggy.HookRelay,
        emit: Callable[[Event], None],
        *,
        timeouts: Mapping[str, PhaseTimeouts] | None = None,
        run_deadline: Deadline | None = None,
    ) -> None:
        self.run_id = run_id
        self.executor = executor
        self.hook = hook
        self.emit = emit
        self.timeouts: Mapping[str, PhaseTimeouts] = timeouts or {}
        self.run_deadline = run_deadline
        self.secrets: set[str] = set()
        #: Teardown failures of every resource stack of this runtime, in order.
        self.teardown_errors: list[ResourceTeardownError] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed_phases: dict[str, ResourcePhase] = {}

    @functools.cached_property
    def asset_hooks(self) -> AssetHooks:
        """The asset hooks implemented, read on first use: plugins registered on the manager
        after that take effect in the next run."""
        return AssetHooks.of(self.hook)

    def failed_phase(self, key: str, default: str) -> str:
        """The innermost phase of resource ``key`` that failed in this run, or ``default``."""
        return self._failed_phases.get(key, default)

    def run_async(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` to completion on this run's event loop (made on first use).

        One loop serves the whole run in this process, so a connection opened in an async
        setup can be used by async assets and closed by an async teardown.

        An interrupt that stops the loop while the coroutine waits (a deadline: a resource's
        setup or teardown timeout, the run's timeout; a signal) never leaves it pending on the
        loop, where it would resume during a later call (another resource's async teardown):
        it is cancelled, and the loop runs until it has ended (its ``finally`` blocks and
        ``CancelledError`` handlers have run); then the interrupt goes on. A coroutine that
        swallows its cancellation and returns has swallowed the interrupt, as synchronous code
        catching it does: its result is returned, and the caller's deadline says it ran late.
        A further interrupt while the coroutine stops goes on at once (Ctrl-C twice); the
        coroutine is then cancelled again in :meth:`close`.

        Outside the main thread an interrupt is raised only when the thread runs Python code
        (see :mod:`host._timeouts`), never while the loop waits in ``select``: there the loop
        wakes up every :data:`_WAKE_UP` seconds while it runs, so that a deadline stops an
        ``await`` that would wait longer.

        Raises:
            BaseException: what the coroutine raised, or the interrupt that stopped it.
        """
        import asyncio  # only runs with async resources or assets need it

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        loop = self._loop
        task = asyncio.ensure_future(awaitable, loop=loop)
        beat = None if threading.current_thread() is threading.main_thread() else _WakeUp(loop)
        try:
            return loop.run_until_complete(task)
        except BaseException:
            if not task.done():  # interrupted from outside the coroutine: stop it first
                task.cancel()
                _run_down(loop, task)
                if not task.cancelled() and task.exception() is None:
                    return task.result()
            elif not task.cancelled():
                task.exception()  # retrieved: it is what goes on (asyncio logs it otherwise)
            raise
        finally:
            if beat is not None:
                beat.cancel()

    def resolve(self, value: Any) -> Any:
        """``value``, or its result if it is awaitable (an ``async`` method's coroutine)."""
        if isinstance(value, Awaitable):
            return self.run_async(value)
        return value

    def phase(
        self, phase: ResourcePhase, key: str, call: Callable[[], T]
    ) -> T:
        """Run one resource phase, timed, and emit its :class:`ResourceEvent`."""
        start = time.perf_counter()
        try:
            result = call()
        except BaseException as exc:
            self._failed_phases.setdefault(key, phase)
            self.emit(
                ResourceEvent(
                    self.run_id,
                    resource_key=key,
                    phase=phase,
                    duration=time.perf_counter() - start,
                    error=ErrorInfo.from_exception(exc, resource_key=key),
                )
            )
            raise
        self.emit(
            ResourceEvent(
                self.run_id, resource_key=key, phase=phase, duration=time.perf_counter() - start
            )
        )
        return result

    def close(self) -> None:
        """Close the event loop, if one was made.

        Tasks still pending on it (a resource's background task, a coroutine abandoned by a
        second interrupt) are cancelled and run to their end first, as ``asyncio.run`` does.
        """
        if self._loop is not None:
            import asyncio

            loop, self._loop = self._loop, None
            try:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:  # (gather() of nothing would make a loop of its own)
                    with contextlib.suppress(Exception):
                        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()


#: Seconds between the wake-ups of an event loop run outside the main thread.
_WAKE_UP = 0.05


class _WakeUp:
    """Wakes ``loop`` up every :data:`_WAKE_UP` seconds until cancelled."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle = loop.call_later(_WAKE_UP, self._beat)

    def _beat(self) -> None:
        self._handle = self._loop.call_later(_WAKE_UP, self._beat)

    def cancel(self) -> None:
        self._handle.cancel()


def _run_down(loop: asyncio.AbstractEventLoop, task: asyncio.Future[Any]) -> None:
    """Run ``loop`` until ``task`` (cancelled) has ended; what it ends with is read later.

    Raises:
        BaseException: a further interrupt that came while it ended.
    """
    try:
        loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            raise


class ResourceStack:
    """The resources brought up in this process for one run, torn down in reverse order.

    Use it as a context manager: leaving it tears down every resource that came up, passing on
    the exception that is leaving the block (if any) to each resource's context manager.
    """

    def __init__(self, graph: ResourceGraph, runtime: ProcessRuntime) -> None:
        self._graph = graph
        self._runtime = runtime
        self._stack = contextlib.ExitStack()
        self._instances: dict[str, Any] = {}  # key -> the resource object brought up
        self._values: dict[str, Any] = {}  # key -> what its yield gave (what assets receive)
        self._given: dict[str, Any] = {}  # the same by the keys assets asked for (aliases too)
        self._failed: dict[str, ResourceSetupError] = {}
        self._configs: dict[str, dict[str, Any]] = {}  # key -> its context's resource_config
        #: Teardown failures, in the order they happened.
        self.teardown_errors: list[ResourceTeardownError] = []
        #: Keys in the order they came up.
        self.order: list[str] = []

    def __enter__(self) -> ResourceStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The run's own timeout does not cut teardowns short (each has its own), and neither
        # does a signal: SIGINT/SIGTERM wait until every resource is down.
        if self._runtime.run_deadline is not None:
            self._runtime.run_deadline.disarm()
        with signals_held():
            self._stack.__exit__(exc_type, exc, tb)

    def close(self) -> None:
        """Tear down every resource that came up, in reverse order of bring-up."""
        self.__exit__(None, None, None)

    def _timeouts(self, key: str, cls: type) -> PhaseTimeouts:
        """The setup and teardown timeouts of resource ``key``: the run's, else its class's."""
        return phase_timeouts(cls, self._runtime.timeouts.get(key))

    def get(self, key: str) -> Any:
        """The value assets receive for resource ``key``, bringing it up on first use.

        Raises:
            ResourceSetupError: it (or a dependency) failed to come up, now or earlier in this
                run in this process; it is not tried again.
        """
        try:
            return self._given[key]
        except KeyError:
            pass
        canonical = self._graph.nodes[key].key
        if canonical not in self._values:
            self._bring_up(canonical)
        value = self._given[key] = self._values[canonical]
        return value

    def _bring_up(self, key: str) -> Any:
        """Bring ``key`` up with what it depends on, dependencies first; give the instance.

        Iterative over the graph's closure of ``key`` (a chain of any depth is fine). When a
        dependency fails, the resources on the way from it to ``key`` fail naming it, and
        nothing else of the closure is brought up.
        """
        failing = False
        for name in self._graph.closure([key]):
            if name in self._instances:
                continue
            if name in self._failed:
                failing = True
                continue
            node = self._graph.nodes[name]
            broken = next(
                ((field, dep) for field, dep in node.deps.items() if dep in self._failed), None
            )
            if broken is not None:
                field, dep = broken
                self._fail(
                    name, type(node.resource), "setup", f"its dependency {dep!r} (field "
                    f"{field!r}) failed to come up", self._failed[dep]
                )
                failing = True
            elif not failing:
                try:
                    self._bring_up_one(name)
                except ResourceSetupError:
                    failing = True  # recorded in self._failed; its dependents fail above
        if key in self._failed:
            raise self._failed[key]
        return self._instances[key]

    def _bring_up_one(self, key: str) -> Any:
        """Bring ``key`` up; its dependencies are up already."""
        node = self._graph.nodes[key]
        if not isinstance(node.resource, ConfigurableResource):
            self._instances[key] = self._values[key] = node.resource
            return node.resource
        cls = type(node.resource)
        deps = {field: self._instances[dep] for field, dep in node.deps.items()}
        try:
            instance = node.resource.instantiate(key, deps)
        except ConfigError as exc:
            raise self._fail(key, cls, "config", str(exc), exc) from None
        config = self._configs[key] = instance.masked_config(
            {field: self._configs[dep] for field, dep in node.deps.items() if dep in self._configs}
        )
        context = InitResourceContext(
            resource_key=key,
            resource_config=config,
            run_id=self._runtime.run_id,
            resources=deps,
            executor=self._runtime.executor,
            _runtime=self._runtime,
        )
        self._runtime.secrets.update(secrets_of(instance))
        timeouts = self._timeouts(key, cls)
        try:
            cm = self._runtime.hook.host_resource_yield(resource=instance, context=context)
        except Exception as exc:  # a hook plugin failed to give the context manager
            raise self._fail(key, cls, "yield_enter", describe_exception(exc), exc) from exc
        entered: list[Any] = []  # filled the moment the context manager is entered
        deadline = Deadline(timeouts.setup)
        try:
            with deadline:
                self._runtime.phase("yield_enter", key, lambda: entered.append(cm.__enter__()))
        except DeadlineExceeded as exc:
            if not deadline.expired or self._run_expired():
                self._keep(key, instance, cls, cm, entered, timeouts.teardown)
                raise  # the run's own timeout: it ends the run
            if not entered:
                raise self._timed_out(key, cls, timeouts.setup, stopped=True) from exc
        except Exception as exc:
            self._keep(key, instance, cls, cm, entered, timeouts.teardown)
            phase = self._runtime.failed_phase(key, "yield_enter")
            raise self._fail(key, cls, phase, describe_exception(exc), exc) from exc
        except BaseException as exc:
            # Interrupted after it came up, before it was recorded: it still goes down with
            # the others.
            self._keep(key, instance, cls, cm, entered, timeouts.teardown)
            if not entered:
                _close_abandoned(cm)
            if entered or is_interrupt(exc):
                raise
            # Raised by its own setup code (sys.exit(), GeneratorExit, a BaseException of its
            # own): its setup failed, as with an Exception; it is not tried again.
            phase = self._runtime.failed_phase(key, "yield_enter")
            detail = (
                f"{describe_exception(exc)} ({type(exc).__name__} is not an Exception: raised "
                f"by its own setup code, it is this resource's setup failure and ends neither "
                f"the run nor the process)"
            )
            raise self._fail(key, cls, phase, detail, exc) from exc
        if deadline.expired:  # it came up, too late to be stopped: take it down again
            with signals_held():  # as every teardown: a signal waits until it is down
                self._exit(key, cls, cm, timeouts.teardown, None, None, None)
            raise self._timed_out(key, cls, timeouts.setup, stopped=False)
        self._keep(key, instance, cls, cm, entered, timeouts.teardown)
        return instance

    def _keep(
        self,
        key: str,
        instance: Any,
        cls: type,
        cm: contextlib.AbstractContextManager[Any],
        entered: list[Any],
        teardown_timeout: float | None,
    ) -> None:
        """Record a resource whose context manager was entered, so that it goes down."""
        if not entered or key in self._instances:
            return
        self._stack.push(functools.partial(self._exit, key, cls, cm, teardown_timeout))
        self._instances[key] = instance
        self._values[key] = entered[0]
        self.order.append(key)

    def _run_expired(self) -> bool:
        deadline = self._runtime.run_deadline
        return deadline is not None and deadline.expired

    def _timed_out(
        self, key: str, cls: type, seconds: float | None, *, stopped: bool
    ) -> ResourceSetupError:
        phase = self._runtime.failed_phase(key, "yield_enter") if stopped else "yield_enter"
        what = (
            "and was stopped"
            if stopped
            else "(it could not be stopped sooner: it was in code that cannot be interrupted "
            "here, or it caught the interruption and carried on); it came up late and was "
            "taken down again"
        )
        cause = TimeoutError(f"resource {key!r} did not come up within {seconds:g} s")
        return self._fail(
            key,
            cls,
            phase,
            f"it did not come up within its setup_timeout of {seconds:g} s {what}. Find out "
            f"why its setup is slow or hangs, or give it more time (setup_timeout for the "
            f"key, or host_setup_timeout on the class)",
            cause,
        )

    def _fail(
        self, key: str, cls: type, phase: str, detail: str, cause: BaseException
    ) -> ResourceSetupError:
        error = ResourceSetupError(
            f"resource {key!r} ({_describe(cls)}"
            + (f", from {dist}" if (dist := distribution_of(cls)) else "")
            + f") failed to come up in phase {phase!r} in process {os.getpid()}: "
            + mask(detail, self._runtime.secrets),
            resource_key=key,
            resource_class=_describe(cls),
            phase=phase,
            distribution=dist,
        )
        error.__cause__ = cause
        self._failed[key] = error
        return error

    def _exit(
        self,
        key: str,
        cls: type,
        cm: contextlib.AbstractContextManager[Any],
        timeout: float | None,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Take resource ``key`` down; record how that failed, never raise what its code raised.

        Whatever the resource's own teardown code raises, ``Exception`` or not
        (``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``, a ``BaseException`` of its
        own), is its teardown failure: recorded as a :class:`ResourceTeardownError` chaining it,
        and the other resources go on going down. A teardown stopped by its
        ``teardown_timeout``, or one that went on past it (it caught the interruption), is
        recorded too. What is sent from outside goes on, ending the teardown: a second Ctrl-C
        (see :func:`signals_held`), an interrupt from another thread, another deadline (the
        run's), the host's own :class:`SignalExit`. So does the exception leaving the run, when
        the context manager re-raises it.
        """
        deadline = Deadline(timeout)
        sent = interrupts_sent()
        try:
            with deadline:
                self._runtime.phase("yield_exit", key, lambda: cm.__exit__(exc_type, exc, tb))
        except BaseException as error:
            if error is exc:  # the context manager re-raised what it was given
                return False
            if isinstance(error, DeadlineExceeded) and deadline.expired:
                cause = TimeoutError(f"resource {key!r} did not go down within {timeout:g} s")
                cause.__cause__ = error
                self._teardown_failed(
                    key,
                    cls,
                    f"it did not go down within its teardown_timeout of {timeout:g} s and was "
                    f"stopped; what it holds may not be released",
                    cause,
                )
                return False
            if isinstance(error, HostInterrupt) or interrupts_sent() != sent:
                raise  # sent from outside the resource's code: it ends the teardown
            detail = describe_exception(error)
            if not isinstance(error, Exception):
                detail += (
                    f" ({type(error).__name__} is not an Exception: raised by its own teardown "
                    f"code, it is this resource's teardown failure, and it ends neither the "
                    f"run nor the process. Raise an Exception to report a failed teardown)"
                )
            if deadline.expired:
                detail += (
                    f" (raised after its teardown_timeout of {timeout:g} s had passed: it did "
                    f"not stop when interrupted)"
                )
            self._teardown_failed(key, cls, detail, error)
            return False
        if deadline.expired:  # it went down, but only after the time it was given
            cause = TimeoutError(
                f"resource {key!r} went down only after its teardown_timeout of {timeout:g} s"
            )
            self._teardown_failed(
                key,
                cls,
                f"it overran its teardown_timeout of {timeout:g} s: it did not stop when "
                f"interrupted (it caught the interruption and carried on, or was in code that "
                f"cannot be interrupted) and went down late. Let DeadlineExceeded and "
                f"asyncio.CancelledError go on in its teardown, or give it more time "
                f"(teardown_timeout for the key, or host_teardown_timeout on the class)",
                cause,
            )
        return False  # never swallow what is leaving the run

    def _teardown_failed(self, key: str, cls: type, detail: str, cause: BaseException) -> None:
        phase = self._runtime.failed_phase(key, "yield_exit")
        dist = distribution_of(cls)
        failure = ResourceTeardownError(
            f"resource {key!r} ({_describe(cls)}"
            + (f", from {dist}" if dist else "")
            + f") failed to tear down in phase {phase!r} in process {os.getpid()}: "
            + mask(detail, self._runtime.secrets),
            resource_key=key,
            resource_class=_describe(cls),
            phase=phase,
            distribution=dist,
        )
        failure.__cause__ = cause
        self.teardown_errors.append(failure)
        self._runtime.teardown_errors.append(failure)
