"""The worker side: one Dask ``WorkerPlugin`` per run holds the run's state in each worker process.

The caller registers a :class:`RunPlugin` for the run; Dask installs a copy on every worker of
the cluster (and on workers that join later) and calls its ``teardown`` when the plugin is
unregistered or the worker closes. The plugin keeps, per worker process, the run's plugin
manager and resource stack (:class:`host.executors.WorkerRun`), made the first time
an asset of the run lands there: a worker that runs none of the run's assets brings nothing up.

Assets run as ordinary Dask tasks (:func:`run_asset`; several in turn, :func:`run_pack`, for
the quick assets of a session's run) in the worker's task threads; the run ends
on each worker with :func:`close_run`, sent by ``Client.run`` and executed in the worker's task
thread pool, so resources are torn down by the same threads that brought them up (a SQLite
connection, an event loop). The plugin's ``teardown`` closes whatever is still open if that call
never came (the caller was killed, the worker is shutting down).

Output: while the run is installed on a worker, what Python code there writes to ``sys.stdout``
and ``sys.stderr`` (``print``, ``warnings``, tracebacks printed by ``threading``) and every log
record that reaches the root logger (``context.log``, the assets' own loggers; Dask's own
loggers do not propagate there) is kept, masked with the run's secrets, and goes back with the
next task's result (or with the end of the run there); the caller masks it again and writes it
to its own ``sys.stdout``/``sys.stderr`` or re-emits the record on the same logger. Output
written below Python (C code writing to file descriptor 2) is not captured on Dask.

Events go back to the caller with each task's result. Resources coming up and going down are
also logged on the scheduler (topic :data:`TOPIC`) before the asset goes on, so the caller can
tell what was left up in a worker process that died in the middle of an asset.

Sessions (:class:`host.Session`): a run of a session brings its session-scoped resources up
into this process's store of the session (``host.executors`` keeps it, found by the session's
id), where later runs of the session in this process find them. A :class:`SessionPlugin`
registered when the session opens holds the session's id; the session ends here with
:func:`close_session_here` (``Client.run``, in the task thread pool: reverse order of bring-up),
or, if that call never came, in the plugin's ``teardown`` when the worker closes.

A run of a session registers no plugin of its own (two round trips to every worker per run):
each of its tasks carries the run's payload, and the first one to land in a process makes the
run's state there (a :class:`RunPlugin` kept in this module, found by the run's name). It ends
with :func:`close_run` as any run, or, if that never came, with the session's plugin
``teardown``. A run that ended in a process stays ended there: a task of it that arrives late
is not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from distributed import WorkerPlugin, get_worker
from distributed.utils import sync

from host import ErrorInfo, Event, ResourceEvent, ResourceTeardownError
from host.executors import (
    CapturedOutput,
    RunPayload,
    ShippedError,
    StepResult,
    WorkerRun,
    close_session_resources,
    loads,
    mask,
    teardown_due,
)

if TYPE_CHECKING:
    from distributed import Worker

__all__ = [
    "TOPIC",
    "RunPlugin",
    "SessionPlugin",
    "SessionTeardownResult",
    "TaskResult",
    "TeardownResult",
    "close_run",
    "close_session_here",
    "interrupt_run",
    "run_asset",
    "run_pack",
]

#: The scheduler event topic where workers log the run's resources coming up and going down
#: (one topic for every run: the scheduler keeps a bounded log per topic, forever).
TOPIC = "host-resources"


@dataclass(frozen=True)
class TaskResult:
    """What one asset task returns to the caller.

    Attributes:
        result: the asset's result (output or error, pickled).
        events: the events of the task, in order (the asset's and any resource bring-up).
        address: the worker's address.
        pid: the worker process.
        output: what the run wrote on the worker meanwhile, masked, in order: ``("stdout" |
            "stderr", text)``, and ``("log", record fields)`` for log records.
        threads: the worker's task threads (how many assets it runs at once).
    """

    result: StepResult
    events: list[Event] = field(default_factory=list)
    address: str = ""
    pid: int = 0
    output: list[tuple[str, Any]] = field(default_factory=list)
    threads: int = 1


@dataclass(frozen=True)
class TeardownResult:
    """What ending the run on one worker gave.

    Attributes:
        failures: teardown failures, in order.
        events: the teardown events, in order (so far, if ``stuck``).
        pid: the worker process.
        output: what the run wrote and logged there since the last task (see TaskResult).
        stuck: the teardown did not end within the limit the caller gave; it is still going
            on in a task thread there (the caller restarts the worker).
    """

    failures: list[ShippedError] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    pid: int = 0
    output: list[tuple[str, Any]] = field(default_factory=list)
    stuck: bool = False


@dataclass(frozen=True)
class SessionTeardownResult:
    """What closing a session on one worker gave.

    Attributes:
        failures: the teardown failures of its session resources, in order.
        events: the teardown events, in order (``run_id`` is the session's), masked.
        pid: the worker process.
        output: what the teardowns wrote and logged there (see TaskResult), masked.
    """

    failures: list[ShippedError] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    pid: int = 0
    output: list[tuple[str, Any]] = field(default_factory=list)


#: Session id -> the secrets of its runs in this process (one growing set per run), masked in
#: what the session's close reports from here.
_SESSION_SECRETS: dict[str, list[set[str]]] = {}
_SESSION_SECRETS_LOCK = threading.Lock()


def _note_session_secrets(session_id: str, secrets: set[str]) -> None:
    with _SESSION_SECRETS_LOCK:
        _SESSION_SECRETS.setdefault(session_id, []).append(secrets)


#: Run name -> the state of a session's run in this process (made by its first task here).
_SESSION_RUNS: dict[str, RunPlugin] = {}
#: Session id -> the names of its runs that ended in this process (a late task is not run),
#: oldest first; the last :data:`_ENDED_KEPT` of them.
_ENDED_RUNS: dict[str, dict[str, None]] = {}
_ENDED_KEPT = 4096
_SESSION_RUNS_LOCK = threading.Lock()


def _session_run(name: str, session_id: str, payload: bytes) -> RunPlugin:
    """The state of session run ``name`` in this process, made from ``payload`` the first time
    (a run that already ended here stays ended: its state is a closed one)."""
    with _SESSION_RUNS_LOCK:
        run = _SESSION_RUNS.get(name)
        if run is None:
            run = RunPlugin(payload, session_id=session_id)
            run.setup(get_worker())
            if name in _ENDED_RUNS.get(session_id, ()):
                run._closed = True
            else:
                _SESSION_RUNS[name] = run
        return run


def _take_session_run(name: str, session_id: str) -> RunPlugin | None:
    """Session run ``name``'s state here, taken out, or None; the run is ended here either
    way (a task of it that comes later is not run)."""
    with _SESSION_RUNS_LOCK:
        ended = _ENDED_RUNS.setdefault(session_id, {})
        ended[name] = None
        if len(ended) > _ENDED_KEPT:
            del ended[next(iter(ended))]
        return _SESSION_RUNS.pop(name, None)


def _take_session_runs(session_id: str) -> list[RunPlugin]:
    """The runs of ``session_id`` still open here, taken out; the session forgets its ended
    runs."""
    with _SESSION_RUNS_LOCK:
        names = [n for n, run in _SESSION_RUNS.items() if run.session_id == session_id]
        _ENDED_RUNS.pop(session_id, None)
        return [_SESSION_RUNS.pop(name) for name in names]


def _masked_info(info: ErrorInfo, secrets: Collection[str]) -> ErrorInfo:
    if not secrets:
        return info
    return dataclasses.replace(
        info, message=mask(info.message, secrets), traceback=mask(info.traceback, secrets)
    )


def _masked_event(event: Event, secrets: Collection[str]) -> Event:
    error = getattr(event, "error", None)
    if not isinstance(error, ErrorInfo) or not secrets:
        return event
    changes: dict[str, Any] = {"error": _masked_info(error, secrets)}
    return dataclasses.replace(event, **changes)


def _log_resource(worker: Worker, event: ResourceEvent, session_id: str | None) -> None:
    """Log a resource coming up or going down on the scheduler (:data:`TOPIC`), and wait for
    it to be logged: if this process dies, the caller still learns what was up here (a dead
    task returns nothing). Best effort: it never fails the resource's phase."""
    message = {
        "run": event.run_id,
        "address": worker.address,
        "pid": event.pid,
        "resource": event.resource_key,
        "phase": event.phase,
        "ok": event.error is None,
        "scope": event.scope,
        "session": session_id,
    }
    with contextlib.suppress(Exception):
        sync(worker.loop, worker.scheduler.log_event, topic=TOPIC, msg=message, callback_timeout=10)


def _close_session(session_id: str, worker: Worker) -> SessionTeardownResult:
    """Tear down session ``session_id``'s resources in this process (reverse order of
    bring-up; nothing if none came up here), in this thread; report what happened, masked.
    Each one going down is also logged on the scheduler, so that a close that no caller
    hears (the worker restarted by its nanny) still says it went down."""
    with _SESSION_SECRETS_LOCK:
        secrets: set[str] = set().union(*_SESSION_SECRETS.pop(session_id, []))
    events: list[Event] = []

    def note(event: Event) -> None:
        events.append(event)
        if isinstance(event, ResourceEvent) and event.phase == "yield_exit":
            _log_resource(worker, event, session_id)

    output = CapturedOutput(secrets)
    output.install()
    try:
        failures: list[ResourceTeardownError] = close_session_resources(session_id, note)
    finally:
        output.uninstall()
    pid = os.getpid()
    shipped = [
        ShippedError.pack(
            error, _masked_info(ErrorInfo.from_exception(error, error.resource_key), secrets), pid
        )
        for error in failures
    ]
    return SessionTeardownResult(
        shipped, [_masked_event(event, secrets) for event in events], pid, output.take()
    )


class SessionPlugin(WorkerPlugin):
    """A session on one Dask worker: closes what the session left up here if the worker closes
    (or the plugin is removed) before :func:`close_session_here` came.

    Args:
        session_id: the session.
    """

    idempotent = False

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id

    def setup(self, worker: Worker) -> None:
        self._worker = worker

    async def teardown(self, worker: Worker) -> None:
        """Dask removes the plugin (the session closed) or closes the worker: the session's
        runs still open here end, then the session."""
        loop = asyncio.get_running_loop()
        pool = worker.executors["default"]
        with contextlib.suppress(Exception):  # the worker is going; nobody to report to
            for run in _take_session_runs(self.session_id):
                await loop.run_in_executor(pool, run.close)
            await loop.run_in_executor(pool, _close_session, self.session_id, worker)


async def close_session_here(session_id: str, dask_worker: Worker) -> SessionTeardownResult:
    """``Client.run`` target: close session ``session_id`` on this worker, in its task thread
    pool (where its session resources were brought up)."""
    loop = asyncio.get_running_loop()
    result: SessionTeardownResult = await loop.run_in_executor(
        dask_worker.executors["default"], _close_session, session_id, dask_worker
    )
    return result


class RunPlugin(WorkerPlugin):
    """The run's state on one Dask worker: created lazily, closed once.

    Registered as a Dask worker plugin for a run outside a session; for a run of a session,
    made by its first task in each process and kept in this module (see the module's text).

    Args:
        payload: the run's :class:`RunPayload`, pickled with cloudpickle (asset functions by
            value); unpickled on the worker only when its first asset of the run arrives.
        session_id: the run's session, if it has one.
    """

    idempotent = False

    def __init__(self, payload: bytes, session_id: str | None = None) -> None:
        self._payload = payload
        self._run: WorkerRun | None = None
        self._closed = False
        self._interrupted = False
        self._output: CapturedOutput | None = None
        self._session_id: str | None = session_id

    @property
    def session_id(self) -> str | None:
        """The run's session (None outside one)."""
        return self._session_id

    def setup(self, worker: Worker) -> None:
        self._worker = worker
        self._lock = threading.RLock()
        self._local = threading.local()

    def _emit(self, event: Event) -> None:
        # Each task thread collects its own events; they go back with the task's result.
        events: list[Event] | None = getattr(self._local, "events", None)
        if events is not None:
            events.append(event)
        if isinstance(event, ResourceEvent) and event.phase in ("yield_enter", "yield_exit"):
            # Also logged on the scheduler, before the asset goes on.
            _log_resource(self._worker, event, self._session_id)

    def _collect(self) -> list[Event]:
        events: list[Event] = []
        self._local.events = events
        return events

    def run_asset(self, key: str, inputs: dict[str, bytes]) -> TaskResult:
        """Run asset ``key`` in this thread, bringing its resources up here if needed.

        The run's timeout is counted here (``RunPayload.until``): an asset that would start
        after it is not run, one still running when it passes is interrupted.
        """
        events = self._collect()
        secrets: set[str] = set()
        try:
            with self._lock:
                if self._closed:
                    raise RuntimeError(f"the run already ended on worker process {os.getpid()}")
                if self._interrupted:
                    raise KeyboardInterrupt(f"the run was interrupted; asset {key!r} not run")
                if self._run is None:
                    payload: RunPayload = loads(self._payload)
                    self._session_id = payload.session_id
                    self._run = WorkerRun(payload, self._emit, threads=True)
                    if payload.session_id is not None:
                        _note_session_secrets(payload.session_id, self._run.runtime.secrets)
                    self._output = CapturedOutput(self._run.runtime.secrets)
                    self._output.install()
                run = self._run
                secrets = run.runtime.secrets
            result = run.run(key, inputs, counted=True)
        except BaseException as exc:  # a task must not raise KeyboardInterrupt into Dask
            result = StepResult.failed(key, exc, secrets)
        finally:
            self._local.events = None
        output = self._output.take() if self._output is not None else []
        worker = get_worker()
        return TaskResult(
            result, events, worker.address, os.getpid(), output, worker.state.nthreads
        )

    def interrupt(self) -> list[str]:
        """Interrupt the run's assets running here (KeyboardInterrupt in their threads).

        Assets of the run that start here afterwards are not run. Returns the interrupted
        asset keys.
        """
        with self._lock:
            self._interrupted = True
            return self._run.interrupt(KeyboardInterrupt) if self._run is not None else []

    def close(self) -> TeardownResult:
        """Tear down what the run brought up in this process (once); report what happened."""
        events = self._collect()
        self._closing = events  # what close_run reports if the teardown does not end in time
        output, self._output = self._output, None
        self._closing_output = output
        try:
            with self._lock:
                self._closed = True
                run, self._run = self._run, None
            self._closing_order = list(run.stack.order) if run is not None else []
            failures = run.close() if run is not None else []
            if run is not None:
                run.report_lingering_threads(
                    f"Dask worker process {os.getpid()} ({self._worker.address})",
                    ignore=("Dask-",),
                )
        finally:
            self._local.events = None
            if output is not None:
                output.uninstall()
        return TeardownResult(failures, events, os.getpid(), output.take() if output else [])

    async def teardown(self, worker: Worker) -> None:
        """Dask removes the plugin (end of run) or closes the worker: close if still open."""
        if self._run is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(worker.executors["default"], self.close)


def _plugin(name: str) -> RunPlugin:
    plugin = get_worker().plugins.get(name)
    if not isinstance(plugin, RunPlugin):
        raise RuntimeError(
            f"the host run plugin {name!r} is not installed on this worker (the run ended?)"
        )
    return plugin


def run_asset(
    plugin_name: str,
    key: str,
    inputs: dict[str, bytes],
    payload: bytes | None = None,
    session_id: str | None = None,
) -> TaskResult:
    """The Dask task of one asset: run it with the run's state on this worker.

    Args:
        plugin_name: the run's name (its plugin's, outside a session).
        key: the asset.
        inputs: its upstream outputs, pickled.
        payload: the run's payload, for a run of session ``session_id`` (which registers no
            plugin): the first task of the run here makes the run's state from it.
        session_id: the run's session.
    """
    if payload is not None and session_id is not None:
        return _session_run(plugin_name, session_id, payload).run_asset(key, inputs)
    return _plugin(plugin_name).run_asset(key, inputs)


def run_pack(
    plugin_name: str,
    assets: list[tuple[str, dict[str, bytes]]],
    payload: bytes | None = None,
    session_id: str | None = None,
) -> list[TaskResult]:
    """The Dask task of several assets of a session's run: each runs in turn in this thread,
    as :func:`run_asset` runs one (a failure fails that asset only; the others still run).

    Args:
        plugin_name: the run's name.
        assets: (asset key, its upstream outputs pickled) for each, in the order to run them.
        payload: the run's payload (see :func:`run_asset`).
        session_id: the run's session.
    """
    results: list[TaskResult] = []
    for key, inputs in assets:
        try:
            results.append(run_asset(plugin_name, key, inputs, payload, session_id))
        except BaseException as exc:  # an interrupt between two assets: this one is not run
            failed = StepResult.failed(key, exc)
            worker = get_worker()
            results.append(
                TaskResult(failed, [], worker.address, os.getpid(), [], worker.state.nthreads)
            )
    return results


def _found(plugin_name: str, dask_worker: Worker) -> RunPlugin | None:
    """The run's state here: a session's run, else the run's plugin (None: neither)."""
    with _SESSION_RUNS_LOCK:
        run = _SESSION_RUNS.get(plugin_name)
    if run is not None:
        return run
    plugin = dask_worker.plugins.get(plugin_name)
    return plugin if isinstance(plugin, RunPlugin) else None


def interrupt_run(plugin_name: str, dask_worker: Worker) -> list[str]:
    """``Client.run`` target: interrupt the run's assets running on this worker."""
    plugin = _found(plugin_name, dask_worker)
    if plugin is None:
        return []
    return plugin.interrupt()


async def close_run(
    plugin_name: str,
    timeouts: dict[str, float | None],
    grace: float,
    dask_worker: Worker,
    session_id: str | None = None,
) -> TeardownResult:
    """``Client.run`` target: end the run on this worker, in its task thread pool.

    Args:
        plugin_name: the run's plugin (its name, for a run of a session).
        timeouts: resource key -> its teardown timeout (``None``: no limit).
        grace: seconds more a teardown gets past its timeout. A resource still going down
            then (its deadline could not stop it: C code that never returns to Python) makes
            this return what happened so far with ``stuck`` set; the teardown goes on in its
            thread (a thread cannot be stopped), and the caller restarts the worker.
        dask_worker: this worker (given by ``Client.run``).
        session_id: the run's session, if it has one (the run has no plugin then).
    """
    plugin = (
        _take_session_run(plugin_name, session_id)
        if session_id is not None
        else dask_worker.plugins.get(plugin_name)
    )
    if not isinstance(plugin, RunPlugin):
        return TeardownResult(pid=os.getpid())
    loop = asyncio.get_running_loop()
    closing = loop.run_in_executor(dask_worker.executors["default"], plugin.close)
    since, seen = loop.time(), 0
    while True:
        done, _ = await asyncio.wait({closing}, timeout=0.1)
        if done:
            result: TeardownResult = closing.result()
            return result
        events = list(getattr(plugin, "_closing", []))
        down = {
            e.resource_key
            for e in events
            if isinstance(e, ResourceEvent) and e.phase == "yield_exit"
        }
        if len(down) != seen:  # the next resource started going down
            since, seen = loop.time(), len(down)
        left = [key for key in getattr(plugin, "_closing_order", []) if key not in down]
        due = teardown_due(left, since, timeouts, grace)
        if due is not None and loop.time() > due:
            output = getattr(plugin, "_closing_output", None)
            return TeardownResult(
                events=events,
                pid=os.getpid(),
                output=output.take() if output is not None else [],
                stuck=True,
            )
