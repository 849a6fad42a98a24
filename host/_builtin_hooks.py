"""The host's own behaviour for each hook, registered as the plugin ``host.builtin``.

It is an ordinary plugin: its implementations are ``trylast``, so a plugin's implementation of a
``firstresult`` hook that returns a value replaces it, and a wrapper wraps it.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from types import CoroutineType
from typing import Any

from host._context import AssetExecutionContext, InitResourceContext, Runtime
from host._hookspecs import hookimpl
from host._resource import ConfigurableResource

__all__ = ["BUILTIN_PLUGIN_NAME", "BuiltinPlugin", "call_asset"]

#: The name the built-in plugin is registered under.
BUILTIN_PLUGIN_NAME = "host.builtin"


@contextlib.contextmanager
def _drive_async(
    cm: contextlib.AbstractAsyncContextManager[Any], runtime: Runtime
) -> Iterator[Any]:
    """Drive an async context manager from synchronous code, on the run's event loop."""
    value = runtime.run_async(cm.__aenter__())
    try:
        yield value
    except BaseException as exc:
        if not runtime.run_async(cm.__aexit__(type(exc), exc, exc.__traceback__)):
            raise
    else:
        runtime.run_async(cm.__aexit__(None, None, None))


def _as_context_manager(
    result: Any, runtime: Runtime
) -> contextlib.AbstractContextManager[Any]:
    """A synchronous context manager for whatever ``yield_for_execution`` returned."""
    if inspect.isgenerator(result):  # an undecorated generator method
        return contextlib.contextmanager(lambda: result)()
    if inspect.isasyncgen(result):
        return _drive_async(contextlib.asynccontextmanager(lambda: result)(), runtime)
    if hasattr(result, "__enter__"):
        return result  # type: ignore[no-any-return]
    if hasattr(result, "__aenter__"):
        return _drive_async(result, runtime)
    raise TypeError(
        f"yield_for_execution returned {type(result).__name__}, not a context manager; decorate "
        f"it with @contextlib.contextmanager (or @contextlib.asynccontextmanager)."
    )


@contextlib.contextmanager
def _default_yield(resource: ConfigurableResource, context: InitResourceContext) -> Iterator[Any]:
    """Setup, yield the resource, teardown in a ``finally``: each phase through its hook.

    An interrupt (KeyboardInterrupt, SystemExit, a timeout) that arrives after the setup hook
    returned but before its phase ended still finds the resource up: it is torn down then.
    The rest of the teardown policy (order, timeouts, signals, failures) is in
    :mod:`host._teardown`.
    """
    runtime = _runtime_of(context)
    key = context.resource_key
    done: list[object] = []  # filled the moment the setup hook returns

    def teardown() -> None:
        runtime.phase(
            "teardown",
            key,
            lambda: runtime.hook.host_resource_teardown(resource=resource, context=context),
        )

    try:
        runtime.phase(
            "setup",
            key,
            lambda: done.append(
                runtime.hook.host_resource_setup(resource=resource, context=context)
            ),
        )
    except BaseException:
        if done:
            teardown()
        raise
    try:
        yield resource
    finally:
        teardown()


def _runtime_of(context: InitResourceContext | AssetExecutionContext) -> Runtime:
    """The run ``context`` belongs to (a context made outside a run has none)."""
    runtime = context._runtime
    if runtime is None:
        raise RuntimeError(
            f"this {type(context).__name__} was not made by a run (it has no runtime): the "
            f"host's hooks are called by a run or by host.testing.open_resource"
        )
    return runtime


def call_asset(fn: Callable[..., Any], kwargs: dict[str, Any], runtime: Runtime) -> Any:
    """Call an asset's function; a coroutine it returns runs on the run's event loop."""
    result = fn(**kwargs)
    if isinstance(result, CoroutineType):
        return runtime.run_async(result)
    return result


class BuiltinPlugin:
    """Calls the resource's own lifecycle methods and the asset's function."""

    @hookimpl(trylast=True)
    def host_resource_setup(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> None:
        _runtime_of(context).resolve(resource.setup_for_execution(context))

    @hookimpl(trylast=True)
    def host_resource_yield(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> contextlib.AbstractContextManager[Any]:
        if type(resource).overrides_yield():
            return _as_context_manager(
                resource.yield_for_execution(context), _runtime_of(context)
            )
        return _default_yield(resource, context)

    @hookimpl(trylast=True)
    def host_resource_teardown(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> None:
        _runtime_of(context).resolve(resource.teardown_after_execution(context))

    @hookimpl(trylast=True)
    def host_asset_execute(
        self, context: AssetExecutionContext, fn: Callable[..., Any], kwargs: dict[str, Any]
    ) -> Any:
        return call_asset(fn, kwargs, _runtime_of(context))
