"""Bringing resources up outside a run, for tests, with the run's own per-process machinery.

A :class:`ResourceScope` builds what an executor builds in one process for a run: the resource
graph, a plugin manager (``make_plugin_manager``, with the plugins of :func:`register_plugin`),
and a :class:`~host._lifecycle.ProcessRun` (the runtime and the resource stack). So the hooks,
dependency handling, EnvVar reading, fresh copies and reverse-order teardown are the ones a run
uses; only the assets are missing.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from host._context import InitResourceContext, Resources
from host._errors import ResourceTeardownError
from host._events import Event
from host._lifecycle import ProcessRun
from host._plugins import make_plugin_manager
from host._resource_graph import ResourceGraph
from host._run import _event_sink
from host._runtime import AwaitableRunner, CallerLoop, OwnLoop
from host._scoped_plugins import with_scoped_plugins
from host._values import masked_value

__all__ = [
    "ResourceScope",
    "build_init_resource_context",
    "build_resources",
    "open_resource",
    "open_resources",
]

T = TypeVar("T")

#: The key :func:`open_resource` binds its resource to unless told otherwise.
DEFAULT_KEY = "resource"


#: Why ``with open_resource(...)`` refuses an async lifecycle method inside a running loop.
_ASYNC_UNDER_WITH = (
    "an async lifecycle method cannot run under `with open_resource(...)` while an event "
    "loop is running in this thread (an async test?): use `async with open_resource(...)` "
    "so that it runs on that loop."
)


class ResourceScope(Generic[T]):
    """Resources brought up as a run brings them up in one process, until the block ends.

    Returned by :func:`open_resource` and :func:`open_resources`; use it once, with ``with`` in
    synchronous code or ``async with`` in a coroutine:

    * ``with``: everything runs in the calling thread; ``async`` lifecycle methods run on an
      event loop of the scope's own (as in a run), so they cannot run while a loop is running
      in this thread: the ``ResourceSetupError`` then says to use ``async with``.
    * ``async with``: ``async`` lifecycle methods run on the caller's event loop, so a client
      they open can be used by the test's coroutines. The synchronous ones run in a helper
      thread of the scope (the same one for bring-up and teardown): a resource whose handles
      are bound to the thread that made them (``sqlite3`` connections, by default) is best
      opened with ``with``, even in an async test.

    Entering brings every resource up (dependencies first, each shared object once) and gives
    what assets would receive; leaving tears down everything that came up, in reverse order,
    passing on the exception leaving the block (if any) to each resource's context manager.

    Attributes:
        run_id: the run id the resources' contexts carry.
        events: the :class:`host.ResourceEvent` of each phase so far, in order (errors included).
        teardown_errors: every :class:`host.ResourceTeardownError`, once the scope is left.
    """

    def __init__(
        self,
        resources: Mapping[str, Any],
        select: Callable[[dict[str, Any]], T],
        *,
        plugins: Iterable[object] = (),
        run_id: str | None = None,
        executor: str = "in_process",
    ) -> None:
        self.run_id = run_id or uuid.uuid4().hex
        self.events: list[Event] = []
        self.teardown_errors: list[ResourceTeardownError] = []
        self._graph = ResourceGraph.build(dict(resources))
        self._keys = list(resources)
        self._select = select
        self._plugins = tuple(plugins)
        self._executor = executor
        self._state: Literal["new", "open", "closed"] = "new"
        self._process: ProcessRun | None = None
        self._thread: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"<ResourceScope {', '.join(self._keys) or '(empty)'} ({self._state})>"

    # -- synchronous ------------------------------------------------------------------------

    def __enter__(self) -> T:
        return self._open(OwnLoop(refuse_inside=_ASYNC_UNDER_WITH))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close(exc_type, exc, tb)

    # -- asynchronous -----------------------------------------------------------------------

    async def __aenter__(self) -> T:
        loop = asyncio.get_running_loop()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="host-testing")
        runner = CallerLoop(loop)
        context = contextvars.copy_context()  # register_plugin() blocks of the caller apply
        try:
            return await loop.run_in_executor(self._thread, context.run, self._open, runner)
        except BaseException:
            self._thread.shutdown(wait=False)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._thread is not None, "__aexit__ without __aenter__"
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._close, exc_type, exc, tb)
        finally:
            self._thread.shutdown(wait=False)

    # -- the shared part --------------------------------------------------------------------

    def _open(self, loop: AwaitableRunner) -> T:
        if self._state != "new":
            raise RuntimeError(f"{self!r} was already used; call open_resource(s) again")
        self._state = "open"
        self._graph.check_config(self._keys)
        self._graph.check_environment(
            self._keys, "(e.g. with pytest's monkeypatch.setenv)"
        )
        manager = make_plugin_manager(with_scoped_plugins(self._plugins))
        emit = _event_sink(self.events, manager.hook.host_event)
        self._process = process = ProcessRun(
            self.run_id, self._executor, manager.hook, emit, self._graph, loop=loop
        )
        try:
            values = {key: process.stack.get(key) for key in self._keys}
        except BaseException as exc:
            # Like a run: what came up is torn down, then the setup error goes on.
            self._close(type(exc), exc, exc.__traceback__)
            raise
        return self._select(values)

    def _close(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state != "open":
            return
        self._state = "closed"
        assert self._process is not None
        self._process.close(exc_type, exc, tb)
        self.teardown_errors = list(self._process.teardown_errors)
        if exc is None and self.teardown_errors:
            raise self.teardown_errors[0]


def open_resource(
    resource: Any,
    *,
    key: str = DEFAULT_KEY,
    plugins: Iterable[object] = (),
    run_id: str | None = None,
) -> ResourceScope[Any]:
    """Bring one resource up as a run would, for the body of a ``with`` (or ``async with``).

    The resource's dependencies (fields holding resources) come up first, through the same
    hooks, fresh copies and EnvVar reading as in a run; leaving the block tears everything down
    in reverse order. The block receives what an asset would: the run's fresh copy of the
    resource, or what its ``yield_for_execution`` yields. The object passed in is never brought
    up itself and can be opened again.

    Example::

        with open_resource(SQLiteResource(path=str(tmp_path / "db.sqlite"))) as db:
            db.execute("select 1")

        async with open_resource(MyAsyncClient(url=url)) as client:  # in an async test
            await client.get("/")

    Args:
        resource: a ``ConfigurableResource`` (or any object, given back as it is).
        key: the resource key its context and errors carry.
        plugins: hook plugins for this scope only, after those of :func:`register_plugin`.
        run_id: the run id its context carries; default: a new one.

    Returns:
        A single-use :class:`ResourceScope`; see it for ``with`` versus ``async with``.

    Raises:
        ConfigError: on entering, an EnvVar to read is not set; nothing was brought up.
        ResourceSetupError: on entering, a resource failed to come up (key, class,
            distribution, phase; the original exception chained); those already up were torn
            down.
        ResourceTeardownError: on leaving without an exception, the first resource that failed
            to tear down (all were still torn down; see ``teardown_errors``).
    """
    return ResourceScope({key: resource}, _only(key), plugins=plugins, run_id=run_id)


def open_resources(
    resources: Mapping[str, Any],
    *,
    plugins: Iterable[object] = (),
    run_id: str | None = None,
) -> ResourceScope[dict[str, Any]]:
    """Bring several resources up together, as one run would in one process.

    Like :func:`open_resource` for a mapping of resource keys: they come up in the mapping's
    order (each dependency before the resources that use it, one object shared by several
    resources or keys once) and are torn down in reverse order. The block receives a dict of
    key -> what an asset would receive.

    Example::

        with open_resources({"db": db, "api": ApiResource(db=db)}) as up:
            assert up["api"].db is up["db"]

    Args:
        resources: resource key -> resource.
        plugins: hook plugins for this scope only, after those of :func:`register_plugin`.
        run_id: the run id the contexts carry; default: a new one.

    Returns:
        A single-use :class:`ResourceScope` giving a dict.

    Raises:
        DefinitionError: a key is not a Python identifier.
        ConfigError, ResourceSetupError, ResourceTeardownError: as for :func:`open_resource`.
    """
    return ResourceScope(resources, dict, plugins=plugins, run_id=run_id)


def build_resources(
    resources: Mapping[str, Any],
    resource_config: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    plugins: Iterable[object] = (),
    run_id: str | None = None,
) -> ResourceScope[Resources]:
    """Dagster's ``build_resources``: :func:`open_resources` with each key's launch config,
    the block receiving them by attribute (``resources.db``) as ``context.resources`` does.

    Example::

        with build_resources({"db": Database.configure_at_launch()},
                             resource_config={"db": {"config": {"path": ":memory:"}}}) as r:
            r.db.execute("select 1")

    Args:
        resources: resource key -> resource.
        resource_config: resource key -> ``{"config": {...}}``, as a run's
            ``run_config["resources"]``.
        plugins: hook plugins for this scope only, as for :func:`open_resources`.
        run_id: the run id the contexts carry; default: a new one.

    Raises:
        DefinitionError: ``resource_config`` names a key that is not one of ``resources``.
        ConfigError: launch config that does not validate; nothing was brought up.
    """
    from host._errors import DefinitionError
    from host._launch import rebuild_resource

    given = dict(resources)
    for key, entry in (resource_config or {}).items():
        if key not in given:
            raise DefinitionError(
                f"build_resources: resource_config names {key!r}, which is not one of its "
                f"resources ({sorted(given) or 'none'})."
            )
        values = entry.get("config") if isinstance(entry, Mapping) else None
        given[key] = rebuild_resource(key, given[key], values, {})
    return ResourceScope(
        given, lambda up: Resources(up, "build_resources"), plugins=plugins, run_id=run_id
    )


def _only(key: str) -> Callable[[dict[str, Any]], Any]:
    def select(values: dict[str, Any]) -> Any:
        return values[key]

    return select


def build_init_resource_context(
    config: Mapping[str, Any] | None = None,
    resources: Mapping[str, Any] | None = None,
    *,
    resource_key: str = DEFAULT_KEY,
    run_id: str | None = None,
    executor: str = "in_process",
) -> InitResourceContext:
    """An :class:`host.InitResourceContext` for calling lifecycle methods directly.

    Dagster's helper of the same name, for unit tests of one method::

        resource = MyClientResource(username="u", password="p")
        resource.setup_for_execution(build_init_resource_context())

    Nothing is brought up: ``resources`` are given to the context as they are, and calling a
    method yourself bypasses the hooks, fresh copies and EnvVar reading of a run. To test a
    resource the way a run uses it (dependencies, hooks, teardown), use :func:`open_resource`.

    Args:
        config: what ``context.resource_config`` shows (``SecretStr`` and ``EnvVar`` values are
            masked, as in a run); default: empty.
        resources: what ``context.resources`` gives (the dependencies, "already up").
        resource_key: ``context.resource_key``.
        run_id: ``context.run_id``; default: a new one.
        executor: ``context.executor``.

    Returns:
        The context (its ``log`` is the ``host`` logger tagged with run id and resource key).
    """
    return InitResourceContext(
        resource_key=resource_key,
        resource_config={name: masked_value(value) for name, value in (config or {}).items()},
        run_id=run_id or uuid.uuid4().hex,
        resources=dict(resources or {}),
        executor=executor,
    )
