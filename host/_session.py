"""``host.Session``: several runs on one executor's warm processes, with session-scoped resources.

A session keeps its executor (and what the executor starts: the ``multiprocess`` executor's
worker processes, the ``dask`` plugin's ``LocalCluster``) from its first run until it closes.
Every run inside keeps the run contract unchanged (resources up at most once per run per
process, torn down when the run ends there, fresh copies per run); a session-scoped resource
(``host_scope = "session"``, or ``scope = "session"`` for a key in the run config) comes up once
per session per process and is torn down when the session closes, whatever happens. What stays
up in each process is :mod:`host._session_resources`'s business; this module checks runs
against the session and closes it.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from host._errors import (
    ConfigError,
    SessionError,
    SessionTeardownError,
)
from host._events import ErrorInfo, Event, RunResult
from host._function_resource import ResourceDefinition
from host._graph import Plan
from host._interrupts import sigterm_raises_systemexit
from host._plugins import observer, run_plugin_manager
from host._resource import ConfigurableResource
from host._resource_graph import ResourceGraph
from host._run import execute_run
from host._scoped_plugins import with_scoped_plugins
from host._secret_values import secret_values
from host._secrets import mask_error, mask_event
from host._timeouts import PhaseTimeouts
from host.executors.base import Executor
from host.executors.registry import resolve_executor

__all__ = ["Session"]

log = logging.getLogger("host.session")


class Session:
    """Runs that share an executor's processes, and resources that outlive one run.

    Use it as a context manager (or call :meth:`close`)::

        with host.Session(executor="multiprocess", executor_config={"max_workers": 2}) as s:
            first = s.run_assets([report], {"warehouse": Warehouse(dsn=...)})
            second = s.run_assets([report], {"warehouse": Warehouse(dsn=...)})

    :meth:`run_assets` takes the arguments of :func:`host.run_assets` but the executor's and
    gives the same :class:`~host.RunResult`. Runs may be started from several threads at
    once; each is isolated from the others (its own resources, events and result).

    Session-scoped resources (``host_scope = "session"`` on the class, or ``scope =
    "session"`` for the key in ``run_config["resources"]``) come up once per session per
    process, the first time a run there needs them, are reused by later runs in that process
    (a :class:`~host.ResourceReused` event in each), and go down in reverse order when the
    session closes: at the end of the ``with`` block whatever ended it (an exception, Ctrl-C,
    SIGTERM in the main thread), or when :meth:`close` is called. Their private state persists
    across runs; their config cannot change within a session (a run giving a different config
    for such a key is a :class:`~host.ConfigError`, before anything comes up). Before a run
    reuses one, its ``host_check(context)`` is called if it has one (false or raising: torn
    down and brought up again, a :class:`~host.ResourceRecycled` event), and one up for longer
    than its ``host_max_lifetime`` seconds is recycled the same way. What a session-scoped
    resource depends on must be session-scoped too (a :class:`~host.DefinitionError`
    otherwise).

    Executors keep sessions when they say so (``Executor.supports_sessions``: ``in_process``,
    ``multiprocess`` and ``dask`` do); on another executor each run is on its own and a
    session-scoped resource is run-scoped.

    Args:
        executor: an executor name (``host.executors`` entry point), class, or instance; one
            instance serves every run of the session.
        executor_config: its settings.
        plugins: hook plugins registered for every run of the session (each run may add its
            own), and for the session's close.
        session_id: the session's id (default: ``"session-"`` and a new UUID); the ``run_id``
            of the events of its close.

    Attributes:
        session_id: as given.
        executor: the executor instance.
        runs: the ids of the runs started in the session, in order.
        events: the events of the session's close (the teardown of session resources), masked.
        teardown_errors: session resources that failed to go down or were lost, masked.
    """

    def __init__(
        self,
        executor: str | Executor | type[Executor] = "in_process",
        executor_config: Mapping[str, Any] | None = None,
        *,
        plugins: Iterable[object] = (),
        session_id: str | None = None,
    ) -> None:
        self.session_id = session_id or f"session-{uuid.uuid4().hex}"
        self.executor = resolve_executor(executor, executor_config)
        self.runs: list[str] = []
        self.events: list[Event] = []
        self.teardown_errors: list[ErrorInfo] = []
        self._plugins = tuple(plugins)
        self._keeps = type(self.executor).supports_sessions
        self._lock = threading.Lock()
        self._configs: dict[str, tuple[str, Any]] = {}  # session-scoped key -> its config
        self._secrets: set[str] = set()
        self._closed = False
        self._opened = False
        self._running: collections.Counter[int] = collections.Counter()  # thread -> its runs
        self._idle = threading.Condition(self._lock)  # notified when a run of it ends
        self._signals: contextlib.ExitStack | None = None

    # -- runs --------------------------------------------------------------------------------

    def run_assets(
        self,
        assets: Sequence[Any],
        resources: Mapping[str, Any] | None = None,
        *,
        selection: Iterable[str] | None = None,
        run_id: str | None = None,
        raise_on_error: bool = True,
        plugins: Iterable[object] = (),
        timeout: float | None = None,
        resource_timeouts: Mapping[str, PhaseTimeouts | Mapping[str, Any]] | None = None,
        run_config: Mapping[str, Any] | None = None,
        history: str | os.PathLike[str] | None = None,
    ) -> RunResult:
        """Run ``assets`` in the session: :func:`host.run_assets` on the session's executor.

        Raises:
            SessionError: the session is closed.
            DefinitionError, ConfigError, RunFailure: as :func:`host.run_assets`; also a
                ``ConfigError`` when a session-scoped resource is given a config other than
                the one it came up with in this session.
        """
        self._open()
        try:
            return execute_run(
                assets,
                resources,
                self.executor,
                selection=selection,
                run_id=run_id,
                raise_on_error=raise_on_error,
                plugins=(*self._plugins, *plugins),
                timeout=timeout,
                resource_timeouts=resource_timeouts,
                run_config=run_config,
                history=history,
                session=_Admission(self),
            )
        finally:
            with self._lock:
                self._running[threading.get_ident()] -= 1
                self._idle.notify_all()

    def _open(self) -> None:
        with self._lock:
            if self._closed:
                raise SessionError(
                    f"session {self.session_id} is closed; start a new host.Session for more "
                    f"runs."
                )
            if not self._opened:
                self._opened = True
                if self._keeps:
                    self.executor.open_session(self.session_id)
            self._running[threading.get_ident()] += 1

    def admit(self, graph: ResourceGraph, plan: Plan, run_id: str) -> None:
        """Check a run's session-scoped resources against the session (see
        :meth:`run_assets`), and remember their config.

        Raises:
            ConfigError: naming the key and the fields whose config differs.
            SessionError: the session is closed.
        """
        keys = graph.session_keys(plan.resource_keys()) if self._keeps else []
        with self._lock:
            if self._closed:
                raise SessionError(f"session {self.session_id} is closed.")
            seen: dict[str, tuple[str, Any]] = {}
            for key in keys:
                resource = graph.nodes[key].resource
                config = _config_of(resource)
                before = self._configs.get(key)
                if before is not None and before != config:
                    raise ConfigError(
                        f"resource {key!r} is session-scoped and came up in session "
                        f"{self.session_id} with another config ({_difference(before, config)}); "
                        f"a session resource's config cannot change within a session. Give it "
                        f"the same config, bind the new one to another key, or start a new "
                        f"host.Session. Nothing was brought up.",
                        resource_key=key,
                    )
                seen[key] = config
            self._configs.update(seen)
            self.runs.append(run_id)
            self._secrets.update(secret_values({key: graph.nodes[key].resource for key in keys}))

    # -- closing -----------------------------------------------------------------------------

    def __enter__(self) -> Session:
        self._signals = contextlib.ExitStack()
        self._signals.enter_context(sigterm_raises_systemexit())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except SessionTeardownError as error:
            if exc is None:
                raise
            # What ended the block goes on; the failed teardowns are noted on it, not lost.
            note = getattr(exc, "add_note", None)  # (Python 3.11 and later; logged anyway)
            if note is not None:
                note(str(error))
        finally:
            if self._signals is not None:
                self._signals.close()
                self._signals = None

    def close(self) -> None:
        """Tear down every session resource, in every process the session used, in reverse
        order of bring-up; stop what the executor started for the session. Once; later calls
        do nothing. Runs of the session going on in other threads are waited for first (a
        ``KeyboardInterrupt`` during the wait ends it: the teardown happens then); runs
        started after ``close`` began are refused (:class:`host.SessionError`).

        Raises:
            SessionTeardownError: session resources failed to go down (or were lost with a
                worker that died); every other one was still torn down. Also logged (logger
                ``host.session``).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            opened = self._opened
        try:
            with self._idle:  # a Ctrl-C here ends the wait; the teardown still runs
                self._idle.wait_for(self._others_done)
        finally:
            if opened and self._keeps:
                self._tear_down()

    def _others_done(self) -> bool:
        """Whether no run of the session is going on in a thread other than this one."""
        me = threading.get_ident()
        return not any(n for ident, n in self._running.items() if ident != me)

    def _tear_down(self) -> None:
        plugins = with_scoped_plugins(self._plugins)
        manager = run_plugin_manager(plugins)
        secrets = self._secrets
        notify = observer(manager.hook.host_event)

        def emit(event: Event) -> None:
            event = mask_event(event, secrets)
            self.events.append(event)
            notify(event=event)

        errors = self.executor.close_session(self.session_id, emit)
        infos = [
            mask_error(ErrorInfo.from_exception(error, error.resource_key), secrets)
            for error in errors
        ]
        self.teardown_errors.extend(infos)
        if infos:
            lines = "\n".join(f"  {info.resource_key!r}: {info.message}" for info in infos)
            message = (
                f"session {self.session_id}: {len(infos)} session resource(s) did not go down "
                f"cleanly when it closed (or were lost with their worker):\n{lines}"
            )
            log.error("%s", message)
            raise SessionTeardownError(message, infos)


class _Admission:
    """The session as :func:`host._run.execute_run` sees it (``RunSession``)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.session_id = session.session_id if session._keeps else None

    def admit(self, graph: ResourceGraph, plan: Plan, run_id: str) -> None:
        self._session.admit(graph, plan, run_id)


def _config_of(resource: Any) -> tuple[str, Any]:
    """What must not change for a session-scoped resource: its class and config values."""
    cls = type(resource)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(resource, ConfigurableResource):
        return name, resource.model_dump()
    if isinstance(resource, ResourceDefinition):
        return name, (resource.resource_fn, repr(resource._config))
    return name, id(resource)


def _difference(before: tuple[str, Any], after: tuple[str, Any]) -> str:
    """Which part differs: the class, or the names of the fields (never their values)."""
    if before[0] != after[0]:
        return f"class {before[0]} then, {after[0]} now"
    old, new = before[1], after[1]
    if isinstance(old, dict) and isinstance(new, dict):
        fields = sorted(k for k in {*old, *new} if old.get(k, _MISSING) != new.get(k, _MISSING))
        names = ", ".join(map(repr, fields))
        return f"fields {names} differ" if len(fields) != 1 else f"field {names} differs"
    return "its config differs"


_MISSING = object()

