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
from host._errors import DefinitionError
from host._function_resource import ResourceDefinition, describe_function_resource
from host._hookspecs import hookimpl
from host._resource import ConfigurableResource

#: What the resource hooks receive: a resource class's fresh copy, or a function resource's.
AnyResource = ConfigurableResource | ResourceDefinition

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


def _entered(result: Any) -> bool:
    """Whether a resource function or ``create_resource`` gave something to enter for the
    resource's life rather than the resource itself: a generator (sync or async), or a
    context manager made by ``@contextlib.contextmanager`` / ``@asynccontextmanager`` (any
    ``ContextDecorator``, as Dagster enters; not any object that happens to be a context
    manager, such as a file or a lock handed over as the resource)."""
    return (
        inspect.isgenerator(result)
        or inspect.isasyncgen(result)
        or isinstance(result, contextlib.ContextDecorator | contextlib.AsyncContextDecorator)
    )


@contextlib.contextmanager
def _given(resource: AnyResource, value: Any, context: InitResourceContext) -> Iterator[Any]:
    """What assets receive of a resource that is up: the resource itself, what a function
    resource gave, or what a factory's ``create_resource`` makes of ``value``, entered for as
    long as the resource is up when it yields (:func:`_entered`)."""
    if isinstance(resource, ResourceDefinition):
        yield resource.value
    elif isinstance(resource, ConfigurableResource) and type(resource).creates_resource():
        runtime = _runtime_of(context)
        made = value.create_resource(context)
        if _entered(made):
            with _as_context_manager(made, runtime) as given:
                yield given
        else:
            yield runtime.resolve(made)
    else:
        yield value


@contextlib.contextmanager
def _default_yield(resource: AnyResource, context: InitResourceContext) -> Iterator[Any]:
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
    with contextlib.ExitStack() as stack:
        stack.callback(teardown)  # last: after what create_resource yielded is left
        yield stack.enter_context(_given(resource, resource, context))


@contextlib.contextmanager
def _factory_yield(
    resource: ConfigurableResource, cm: contextlib.AbstractContextManager[Any],
    context: InitResourceContext,
) -> Iterator[Any]:
    """A factory's own ``yield_for_execution``, then ``create_resource`` on what it yields."""
    with cm as value, _given(resource, value, context) as given:
        yield given


async def _next_of(agen: Any) -> Any:
    return await agen.__anext__()


def _no_yield(resource: ResourceDefinition, context: InitResourceContext) -> DefinitionError:
    return DefinitionError(
        f"resource {context.resource_key!r} ({describe_function_resource(resource.resource_fn)})"
        f": its generator finished without yielding. A generator resource yields the resource "
        f"exactly once (setup before the yield, teardown after it); make every path reach the "
        f"yield, or raise an error saying why the resource cannot come up."
    )


def _start_function(resource: ResourceDefinition, context: InitResourceContext) -> None:
    """Run a function resource up to its ``yield`` (or its return): its setup."""
    runtime = _runtime_of(context)
    result = resource.start(context)
    if inspect.isgenerator(result):
        try:
            value = next(result)
        except StopIteration:
            raise _no_yield(resource, context) from None
    elif inspect.isasyncgen(result):
        try:
            value = runtime.run_async(_next_of(result))
        except StopAsyncIteration:
            raise _no_yield(resource, context) from None
    elif isinstance(result, contextlib.ContextDecorator):  # @contextmanager on the function
        value = result.__enter__()  # type: ignore[attr-defined]
    elif isinstance(result, contextlib.AsyncContextDecorator):  # @asynccontextmanager
        value = runtime.run_async(result.__aenter__())  # type: ignore[attr-defined]
    else:
        value = runtime.resolve(result)
    resource.set_value(value)


def _finish_function(resource: ResourceDefinition, context: InitResourceContext) -> None:
    """Run the rest of a function resource's generator: its teardown."""
    run = resource.started
    more = (
        f"resource {context.resource_key!r} ({describe_function_resource(resource.resource_fn)})"
        f": its generator yielded more than once; a generator resource yields exactly once "
        f"(what follows the yield is its teardown)."
    )
    if inspect.isgenerator(run):
        try:
            next(run)
        except StopIteration:
            return
        run.close()
        raise DefinitionError(more)
    if inspect.isasyncgen(run):
        runtime = _runtime_of(context)
        try:
            runtime.run_async(_next_of(run))
        except StopAsyncIteration:
            return
        runtime.run_async(run.aclose())
        raise DefinitionError(more)
    if isinstance(run, contextlib.ContextDecorator):
        run.__exit__(None, None, None)  # type: ignore[attr-defined]
    elif isinstance(run, contextlib.AsyncContextDecorator):
        _runtime_of(context).run_async(run.__aexit__(None, None, None))  # type: ignore[attr-defined]


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
    def host_resource_setup(self, resource: AnyResource, context: InitResourceContext) -> None:
        if isinstance(resource, ResourceDefinition):
            _start_function(resource, context)
            return
        _runtime_of(context).resolve(resource.setup_for_execution(context))

    @hookimpl(trylast=True)
    def host_resource_yield(
        self, resource: AnyResource, context: InitResourceContext
    ) -> contextlib.AbstractContextManager[Any]:
        if isinstance(resource, ConfigurableResource) and type(resource).overrides_yield():
            cm = _as_context_manager(resource.yield_for_execution(context), _runtime_of(context))
            if type(resource).creates_resource():
                return _factory_yield(resource, cm, context)
            return cm
        return _default_yield(resource, context)

    @hookimpl(trylast=True)
    def host_resource_teardown(
        self, resource: AnyResource, context: InitResourceContext
    ) -> None:
        if isinstance(resource, ResourceDefinition):
            _finish_function(resource, context)
            return
        _runtime_of(context).resolve(resource.teardown_after_execution(context))

    @hookimpl(trylast=True)
    def host_asset_execute(
        self, context: AssetExecutionContext, fn: Callable[..., Any], kwargs: dict[str, Any]
    ) -> Any:
        return call_asset(fn, kwargs, _runtime_of(context))
