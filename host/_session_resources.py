"""Session-scoped resources in one process: up once per session, reused by its runs, down at close.

A :class:`host.Session` keeps its processes (the caller's, its warm workers) across runs. In
each of them, the session-scoped resources (``host_scope = "session"``, or ``scope =
"session"`` for a key in the run config) live in one :class:`SessionResources`, found by the
session's id (:func:`session_resources`). A run's :class:`host._lifecycle.ResourceStack` asks
it first: a resource already up is reused (a :class:`~host.ResourceReused` event), after its
``host_check`` passed and while it is younger than its ``host_max_lifetime``; otherwise it is
torn down (with the session resources that depend on it, a :class:`~host.ResourceRecycled`
event) and brought up again, into this store rather than the run's teardown stack. Closing the
store (:func:`close_session_resources`, when the session closes) tears every one down in
reverse order of bring-up, by the policy of :mod:`host._teardown`, once.

Each store has its own runtime (:attr:`SessionResources.runtime`): the phases of session
resources run there, their awaitables on the session's own event loop in this process (a loop
that outlives each run), and their events go to the run that is using the store at the time
(with ``scope="session"``), or to the session itself when it closes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from host._context import InitResourceContext
from host._errors import ResourceTeardownError, is_interrupt
from host._events import Event, ResourceRecycled, ResourceReused, describe_exception
from host._runtime import OwnLoop, ProcessRuntime
from host._secrets import mask
from host._teardown import TeardownStack

__all__ = [
    "SessionLoop",
    "SessionResources",
    "close_session_resources",
    "session_resources",
]

T = TypeVar("T")


class SessionLoop:
    """The event loop of a session in one process: made on first use, kept across runs.

    A run's ``close`` leaves it (:meth:`close` does nothing); :meth:`shutdown` closes it when
    the session closes. Awaitables from several threads run on it one at a time.
    """

    def __init__(self) -> None:
        self._own = OwnLoop()
        self._lock = threading.RLock()

    def run(self, awaitable: Awaitable[T]) -> T:
        with self._lock:
            return self._own.run(awaitable)

    def close(self) -> None:
        """Nothing: the loop outlives each run (see :meth:`shutdown`)."""

    def shutdown(self) -> None:
        """Close the loop, its pending tasks cancelled first (:meth:`OwnLoop.close`)."""
        with self._lock:
            self._own.close()


@dataclass
class _Entry:
    """One session resource up in this process."""

    key: str
    cls: type
    instance: Any
    value: Any
    cm: contextlib.AbstractContextManager[Any]
    teardown_timeout: float | None
    context: InitResourceContext | None
    needs: frozenset[str]
    secrets: frozenset[str]
    since_run: str
    since: float = field(default_factory=time.monotonic)
    uses: int = 1


class SessionResources:
    """The session-scoped resources up in this process for one session.

    Args:
        session_id: the session's id (the ``run_id`` of the events of its close).

    Attributes:
        runtime: where the phases of session resources run (see the module's docstring).
        lock: held while a session resource is looked up, brought up or recycled.
        closed: :meth:`close` has run; nothing more is kept.
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.loop = SessionLoop()
        # No hooks until a run attaches (nothing is up before that).
        self.runtime = ProcessRuntime(session_id, "session", cast(Any, None), _drop, loop=self.loop)
        self.runtime.scope = "session"
        self.lock = threading.RLock()
        self.closed = False
        self._entries: dict[str, _Entry] = {}  # in bring-up order

    @property
    def keys(self) -> list[str]:
        """The session resources up here, in bring-up order."""
        return list(self._entries)

    def attach(self, run: ProcessRuntime) -> ProcessRuntime:
        """Point :attr:`runtime` at ``run`` (its id, hooks, events, timeouts, deadline) for
        what comes next under :attr:`lock`; give it."""
        view = self.runtime
        view.run_id = run.run_id
        view.executor = run.executor
        view.hook = run.hook
        view.emit = run.emit
        view.timeouts = run.timeouts
        view.run_deadline = run.run_deadline
        view.secrets = run.secrets
        view.teardown_errors = []
        return view

    def reuse(self, key: str, run: ProcessRuntime) -> _Entry | None:
        """Resource ``key`` for ``run`` if it is up and may be reused, else ``None``.

        Past its ``host_max_lifetime``, or when its ``host_check(context)`` returns false or
        raises, it is recycled first (:meth:`recycle`), and ``None`` is given: the caller
        brings it up again. Call it under :attr:`lock`, after :meth:`attach`.

        Raises:
            BaseException: an interrupt that came during its ``host_check``.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        reason = self._stale(entry, run)
        if reason is not None:
            self.recycle(key, reason, run)
            return None
        entry.uses += 1
        run.secrets.update(entry.secrets)
        run.emit(
            ResourceReused(
                run.run_id,
                resource_key=key,
                session_id=self.session_id,
                since_run=entry.since_run,
                uses=entry.uses,
                age=time.monotonic() - entry.since,
            )
        )
        return entry

    def _stale(self, entry: _Entry, run: ProcessRuntime) -> str | None:
        """Why ``entry`` must not be reused by ``run``, or ``None``: it may."""
        lifetime = getattr(entry.cls, "host_max_lifetime", None)
        age = time.monotonic() - entry.since
        if lifetime is not None and age > lifetime:
            return f"it was up for {age:.3g} s, past its host_max_lifetime of {lifetime:g} s"
        check = getattr(entry.instance, "host_check", None)
        if not callable(check):
            return None
        context = entry.context
        if context is not None:
            context = dataclasses.replace(context, run_id=run.run_id, _runtime=self.runtime)
        try:
            healthy = self.runtime.resolve(check(context))
        except BaseException as exc:
            if is_interrupt(exc):
                raise
            return f"its host_check raised {describe_exception(exc)}"
        if not healthy:
            return f"its host_check returned {healthy!r}"
        return None

    def keep(
        self,
        key: str,
        cls: type,
        instance: Any,
        value: Any,
        cm: contextlib.AbstractContextManager[Any],
        teardown_timeout: float | None,
        needs: frozenset[str],
        secrets: frozenset[str],
    ) -> None:
        """Resource ``key`` came up for the run attached: keep it until the session closes."""
        context = getattr(instance, "_host_context", None)
        self._entries[key] = _Entry(
            key,
            cls,
            instance,
            value,
            cm,
            teardown_timeout,
            context if isinstance(context, InitResourceContext) else None,
            needs,
            secrets,
            self.runtime.run_id,
        )

    def recycle(self, key: str, reason: str, run: ProcessRuntime) -> list[ResourceTeardownError]:
        """Tear ``key`` down now, with the session resources that depend on it (reverse order
        of bring-up), for ``run``: a :class:`ResourceRecycled` event first; teardown failures
        are ``run``'s (appended to ``run.teardown_errors`` and given)."""
        run.emit(
            ResourceRecycled(
                run.run_id,
                resource_key=key,
                session_id=self.session_id,
                reason=mask(reason, run.secrets),
            )
        )
        going = [e for e in self._entries.values() if e.key == key or key in e.needs]
        for entry in going:
            del self._entries[entry.key]
        stack = TeardownStack(self.runtime)
        for entry in going:
            stack.push(entry.key, entry.cls, entry.cm, entry.teardown_timeout)
        stack.__exit__(None, None, None)
        run.teardown_errors.extend(stack.teardown_errors)
        return stack.teardown_errors

    def close(
        self, emit: Callable[[Event], None], hook: Any = None
    ) -> list[ResourceTeardownError]:
        """Tear down every session resource up here, in reverse order of bring-up; once.

        Args:
            emit: where the events of the teardowns go (their ``run_id`` is the session's).
            hook: the hook relay the phases see (default: the last run's).

        Returns:
            The teardown failures, in the order they happened.
        """
        with self.lock:
            if self.closed:
                return []
            self.closed = True
            view = self.runtime
            view.run_id = self.session_id
            view.emit = emit
            view.run_deadline = None
            view.teardown_errors = []
            if hook is not None:
                view.hook = hook
            stack = TeardownStack(view)
            for entry in self._entries.values():
                stack.push(entry.key, entry.cls, entry.cm, entry.teardown_timeout)
            self._entries.clear()
            try:
                stack.__exit__(None, None, None)
            finally:
                try:
                    self.loop.shutdown()
                finally:
                    view.close()
            return stack.teardown_errors


def _drop(event: Event) -> None:
    """Where a store's events go before a run uses it (none are emitted then)."""


_STORES: dict[str, SessionResources] = {}
_STORES_LOCK = threading.Lock()


def session_resources(session_id: str) -> SessionResources:
    """This process's store of session ``session_id``, made on first use."""
    with _STORES_LOCK:
        store = _STORES.get(session_id)
        if store is None or store.closed:
            store = _STORES[session_id] = SessionResources(session_id)
        return store


def close_session_resources(
    session_id: str, emit: Callable[[Event], None], hook: Any = None
) -> list[ResourceTeardownError]:
    """Tear down session ``session_id``'s resources in this process (see
    :meth:`SessionResources.close`); nothing if none came up here."""
    with _STORES_LOCK:
        store = _STORES.pop(session_id, None)
    if store is None:
        return []
    return store.close(emit, hook)
