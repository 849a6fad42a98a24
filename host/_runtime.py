"""The runtime of one run in one process: the hook relay, the event sink, how awaitables run.

A :class:`ProcessRuntime` is what the contexts and the built-in plugin see of a run
(:class:`host._context.Runtime`). How it runs an ``async`` method's awaitable is a policy given
to it, not a subclass: :class:`OwnLoop` (the run's own event loop, optionally refusing inside a
running loop) or :class:`CallerLoop` (the caller's loop, from a helper thread).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import pluggy

if TYPE_CHECKING:
    import asyncio

from host._builtin_hooks import BuiltinPlugin
from host._errors import ResourceError, ResourceTeardownError
from host._events import (
    STEP,
    ErrorInfo,
    Event,
    ResourceEvent,
    ResourcePhase,
)
from host._log_capture import Step, install_lock, start_capture, stop_capture
from host._secrets import mask
from host._timeouts import Deadline, PhaseTimeouts

__all__ = [
    "AssetHooks",
    "AwaitableRunner",
    "CallerLoop",
    "OwnLoop",
    "ProcessRuntime",
    "distribution_of",
    "resource_failure",
]

T = TypeVar("T")
E = TypeVar("E", bound=ResourceError)


@functools.cache
def _packages() -> Mapping[str, list[str]]:
    """Top-level module -> the distributions that ship it.

    From the installed files (``packages_distributions``); an editable install made with a
    ``.pth`` file (as hatchling's is) lists no module in its ``RECORD``, so a module no file
    names is mapped to the distributions whose entry points point into it.
    """
    import importlib_metadata

    found = {top: list(names) for top, names in importlib_metadata.packages_distributions().items()}
    by_entry_point: dict[str, list[str]] = {}
    for dist in importlib_metadata.distributions():
        name = dist.metadata["Name"]
        for entry in dist.entry_points:
            top = entry.value.partition(":")[0].partition(".")[0].strip()
            if name and top and top not in found:
                names = by_entry_point.setdefault(top, [])
                if name not in names:
                    names.append(name)
    return found | by_entry_point


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


def resource_failure(
    error_type: type[E],
    key: str,
    cls: type,
    failed_to: str,
    phase: str,
    detail: str,
    secrets: set[str],
    cause: BaseException,
) -> E:
    """The error of resource ``key`` (of class ``cls``) that ``failed_to`` ("come up", "tear
    down") in ``phase``: its class, distribution and process named, ``detail`` masked."""
    described = f"{cls.__module__}.{cls.__qualname__}"
    dist = distribution_of(cls)
    error = error_type(
        f"resource {key!r} ({described}"
        + (f", from {dist}" if dist else "")
        + f") failed to {failed_to} in phase {phase!r} in process {os.getpid()}: "
        + mask(detail, secrets),
        resource_key=key,
        resource_class=described,
        phase=phase,
        distribution=dist,
    )
    error.__cause__ = cause
    return error


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


class AwaitableRunner(Protocol):
    """How a run in one process runs awaitables (``async`` lifecycle methods and assets)."""

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` to completion and give its result (or raise what it raised)."""
        ...

    def close(self) -> None:
        """Release the loop, if this runner made one."""
        ...


class OwnLoop:
    """Awaitables run on an event loop of the run's own, made on first use.

    One loop serves the whole run in this process, so a connection opened in an async setup
    can be used by async assets and closed by an async teardown.

    Args:
        refuse_inside: if given, an awaitable to run while an event loop is already running in
            this thread is refused with ``RuntimeError(refuse_inside)`` (it is closed, never
            awaited) instead of starting a second loop there.
    """

    def __init__(self, refuse_inside: str | None = None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refuse_inside = refuse_inside

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` to completion on this run's event loop (made on first use).

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

        if self._refuse_inside is not None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                if asyncio.iscoroutine(awaitable):
                    awaitable.close()  # never awaited, on purpose: no "never awaited" warning
                raise RuntimeError(self._refuse_inside)
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


class CallerLoop:
    """Awaitables run on the caller's event loop, sent there from a helper thread.

    Each awaitable is sent to ``loop`` and waited for, so what it opens belongs to the loop
    the caller's coroutines run on (``async with open_resource(...)``).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run(self, awaitable: Awaitable[T]) -> T:
        import asyncio

        async def wait() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wait(), self._loop).result()

    def close(self) -> None:
        """Nothing to close: the loop is the caller's."""


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


class ProcessRuntime:
    """One run in one process: the hook relay, the event sink and how awaitables run.

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
        loop: how awaitables run (default: :class:`OwnLoop`).
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
        loop: AwaitableRunner | None = None,
    ) -> None:
        self.run_id = run_id
        self.executor = executor
        self.hook = hook
        self.emit = emit
        self.timeouts: Mapping[str, PhaseTimeouts] = timeouts or {}
        self.run_deadline = run_deadline
        self.secrets: set[str] = set()
        self.loop: AwaitableRunner = loop if loop is not None else OwnLoop()
        #: Teardown failures of every resource stack of this runtime, in order.
        self.teardown_errors: list[ResourceTeardownError] = []
        self._failed_phases: dict[str, ResourcePhase] = {}
        self._capturing = False
        #: The scope of the resources whose phases run here (``ResourceEvent.scope``).
        self.scope: Literal["run", "session"] = "run"

    def step(self, asset_key: str) -> Step:
        """The step of computing asset ``asset_key`` (see :func:`host._log_capture.in_step`);
        the capture of log records and warnings in this process starts with the first step."""
        if not self._capturing:
            self._capture()
        return Step(self, asset_key=asset_key)

    def _capture(self) -> None:
        with install_lock:
            if self._capturing:
                return
            self._capturing = True
            start_capture()

    @functools.cached_property
    def asset_hooks(self) -> AssetHooks:
        """The asset hooks implemented, read on first use: plugins registered on the manager
        after that take effect in the next run."""
        return AssetHooks.of(self.hook)

    def failed_phase(self, key: str, default: str) -> str:
        """The innermost phase of resource ``key`` that failed in this run, or ``default``."""
        return self._failed_phases.get(key, default)

    def run_async(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` to completion with this run's :attr:`loop` policy.

        Raises:
            BaseException: what the coroutine raised, or the interrupt that stopped it.
        """
        return self.loop.run(awaitable)

    def resolve(self, value: Any) -> Any:
        """``value``, or its result if it is awaitable (an ``async`` method's coroutine)."""
        if isinstance(value, Awaitable):
            return self.run_async(value)
        return value

    def phase(self, phase: ResourcePhase, key: str, call: Callable[[], T]) -> T:
        """Run one resource phase, timed, and emit its :class:`ResourceEvent`; what it logs
        or warns is the resource's (:class:`LogRecorded`)."""
        if not self._capturing:
            self._capture()
        start = time.perf_counter()
        token = STEP.set(Step(self, resource_key=key, phase=phase))
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
                    scope=self.scope,
                )
            )
            raise
        finally:
            STEP.reset(token)
        self.emit(
            ResourceEvent(
                self.run_id,
                resource_key=key,
                phase=phase,
                duration=time.perf_counter() - start,
                scope=self.scope,
            )
        )
        return result

    def close(self) -> None:
        """Close the event loop, if one was made (see :meth:`OwnLoop.close`); stop capturing
        log records here."""
        try:
            self.loop.close()
        finally:
            with install_lock:
                if self._capturing:
                    self._capturing = False
                    stop_capture()
