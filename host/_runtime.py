"""The runtime of one run in one process: the hook relay, the event sink, how awaitables run.

A :class:`ProcessRuntime` is what the contexts and the built-in plugin see of a run
(:class:`host._context.Runtime`). How it runs an ``async`` method's awaitable is a policy given
to it, not a subclass: :class:`OwnLoop` (the run's own event loop, optionally refusing inside a
running loop) or :class:`CallerLoop` (the caller's loop, from a helper thread).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

import pluggy

if TYPE_CHECKING:
    import asyncio

from host._builtin_hooks import BuiltinPlugin
from host._errors import ResourceError, ResourceTeardownError
from host._events import (
    STEP,
    ErrorInfo,
    Event,
    LogRecorded,
    ResourceEvent,
    ResourcePhase,
    safe_str,
)
from host._secrets import mask
from host._timeouts import Deadline, PhaseTimeouts

__all__ = [
    "AssetHooks",
    "AwaitableRunner",
    "CallerLoop",
    "OwnLoop",
    "ProcessRuntime",
    "Step",
    "distribution_of",
    "in_step",
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


# -- log capture ----------------------------------------------------------------------------------


class Step:
    """The step of a run running in this thread (or task): an asset, or a resource phase.

    Made for each asset and each resource phase (a plain class with slots: cheap to make).

    Attributes:
        runtime: the run's runtime in this process.
        asset_key: the asset computing (``None`` in a resource phase).
        resource_key: the resource whose phase runs (``None`` for an asset).
        phase: the resource phase.
    """

    __slots__ = ("asset_key", "phase", "resource_key", "runtime")

    def __init__(
        self,
        runtime: ProcessRuntime,
        asset_key: str | None = None,
        resource_key: str | None = None,
        phase: ResourcePhase | None = None,
    ) -> None:
        self.runtime = runtime
        self.asset_key = asset_key
        self.resource_key = resource_key
        self.phase = phase

    @property
    def name(self) -> str:
        """``"asset NAME"`` or ``"resource KEY"``."""
        if self.asset_key is not None:
            return f"asset {self.asset_key}"
        return f"resource {self.resource_key}"

    def record(self, record: logging.LogRecord) -> None:
        """Emit ``record`` as a :class:`LogRecorded` event of this step, masked.

        The record itself is masked in place too (its message formatted, its exception and
        stack as text), so the handlers that see it after this one never show a secret (what
        was logged stays in the private ``_host_unmasked``, which no handler of the host shows
        or forwards), and
        it is tagged ``host_step`` (the step's :attr:`name`), which travels with a record a
        worker forwards.
        """
        runtime = self.runtime
        secrets = runtime.secrets
        raw = safe_str(record.msg) if not record.args else _message(record)
        message = mask(raw, secrets)
        if message != raw:
            # What the code logged, for this process's own checks of code that logs a secret
            # (``host.testing.check_resource``); a private attribute, never forwarded.
            record._host_unmasked = raw
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            with contextlib.suppress(Exception):
                record.exc_text = logging.Formatter().formatException(record.exc_info)
        text = message
        if record.exc_text:
            record.exc_text = mask(record.exc_text, secrets)
            text = f"{text}\n{record.exc_text}"
        if record.stack_info:
            record.stack_info = mask(record.stack_info, secrets)
            text = f"{text}\n{record.stack_info}"
        record.host_step = self.name
        runtime.emit(
            LogRecorded(
                runtime.run_id,
                level=record.levelno,
                level_name=record.levelname,
                logger=record.name,
                message=text,
                asset_key=self.asset_key,
                resource_key=self.resource_key,
                phase=self.phase,
            )
        )


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        return f"{safe_str(record.msg)} (its arguments do not fit: {safe_str(record.args)})"


@contextlib.contextmanager
def in_step(step: Step) -> Iterator[None]:
    """Run the block as ``step``: what it logs or warns is that step's."""
    token = STEP.set(step)
    try:
        yield
    finally:
        STEP.reset(token)


class _Capture(logging.Handler):
    """On the root logger while a run is in this process: a record emitted in a step becomes
    that step's :class:`LogRecorded` event (a record emitted elsewhere is left alone).

    Inserted first among the root logger's handlers, so that the handlers after it (a worker's
    :class:`~host.executors.LogForwarder`) see the ``host_step`` tag.
    """

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)

    def handle(self, record: logging.LogRecord) -> bool:  # no lock: nothing shared is written
        step = STEP.get()
        if step is None or getattr(record, "host_captured", False):
            return False
        try:
            step.record(record)
        except Exception:
            self.handleError(record)
            return False
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and not _handled_elsewhere(record):
            last.handle(record)  # as if no handler were installed here
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


def _handled_elsewhere(record: logging.LogRecord) -> bool:
    """Whether a handler other than the capture's sees ``record`` on its way up."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(handler is not _CAPTURE for handler in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` while a run is in this process: a warning issued in a step is
    logged on ``py.warnings`` (as ``logging.captureWarnings`` does), so it is that step's."""
    step = STEP.get()
    previous = _installed["showwarning"]
    if step is None or file is not None:
        if callable(previous):
            previous(message, category, filename, lineno, file, line)
        return
    text = f"{filename}:{lineno}: {category.__name__}: {message}"
    logging.getLogger("py.warnings").warning("%s", text)


_CAPTURE = _Capture()
#: How many runtimes in this process capture now, and the ``showwarning`` they replaced.
_installed: dict[str, Any] = {"count": 0, "showwarning": None}
_install_lock = threading.Lock()


def _start_capture() -> None:
    """Count one more runtime capturing here (called under ``_install_lock``)."""
    _installed["count"] += 1
    root = logging.getLogger()
    if _CAPTURE not in root.handlers:
        root.handlers.insert(0, _CAPTURE)
    if warnings.showwarning is not _show_warning:
        _installed["showwarning"] = warnings.showwarning
        warnings.showwarning = _show_warning


def _stop_capture() -> None:
    """Count one runtime less capturing here (called under ``_install_lock``)."""
    _installed["count"] -= 1
    if _installed["count"] > 0:
        return
    logging.getLogger().removeHandler(_CAPTURE)
    if warnings.showwarning is _show_warning:
        warnings.showwarning = _installed["showwarning"]
    _installed["showwarning"] = None


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

    def step(self, asset_key: str) -> Step:
        """The step of computing asset ``asset_key`` (see :func:`in_step`); the capture of log
        records and warnings in this process starts with the first step."""
        if not self._capturing:
            self._capture()
        return Step(self, asset_key=asset_key)

    def _capture(self) -> None:
        with _install_lock:
            if self._capturing:
                return
            self._capturing = True
            _start_capture()

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
                )
            )
            raise
        finally:
            STEP.reset(token)
        self.emit(
            ResourceEvent(
                self.run_id, resource_key=key, phase=phase, duration=time.perf_counter() - start
            )
        )
        return result

    def close(self) -> None:
        """Close the event loop, if one was made (see :meth:`OwnLoop.close`); stop capturing
        log records here."""
        try:
            self.loop.close()
        finally:
            with _install_lock:
                if self._capturing:
                    self._capturing = False
                    _stop_capture()
