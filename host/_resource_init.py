"""A resource's own methods around its context, in Dagster's names: ``get_resource_context``,
``with_replaced_resource_context``, and bringing one resource up outside a run
(``from_resource_context`` / ``_cm``, ``process_config_and_initialize`` / ``_cm``,
``to_config_schema``).

Bringing one up this way calls the resource's own lifecycle methods directly, as Dagster does:
no hooks, no events, no timeouts, no dependencies brought up (a field holding a resource is
given as it is). For the host's full lifecycle outside a run, use
``host.testing.open_resource``.
"""

from __future__ import annotations

import contextlib
import inspect
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError

from host._context import InitResourceContext
from host._errors import ConfigError, DefinitionError
from host._resource_errors import config_error_from_validation

if TYPE_CHECKING:
    from host._resource import ConfigurableResource

__all__ = ["ResourceContextMethods", "initialized", "own_context"]


def own_context(resource: ConfigurableResource, key: str) -> InitResourceContext:
    """A context for ``resource`` (already instantiated) brought up on its own."""
    return InitResourceContext(
        resource_key=key,
        resource_config=resource.masked_config(),
        run_id=uuid.uuid4().hex,
        resources=resource.dependencies(),
        executor="none",
    )


class _Loop:
    """Runs what the lifecycle methods return when it is awaitable, on one private loop."""

    def __init__(self) -> None:
        self._loop: Any = None  # an asyncio loop, made (and asyncio imported) when needed

    def resolve(self, value: Any) -> Any:
        if not inspect.isawaitable(value):
            return value
        import asyncio
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if inspect.iscoroutine(value):
                value.close()
            raise RuntimeError(
                "an async resource cannot be initialized this way inside a running event loop; "
                "use `async with host.testing.open_resource(resource)` instead"
            )
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(value)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()


@contextlib.contextmanager
def initialized(
    resource: ConfigurableResource, context: InitResourceContext, *, teardown: bool
) -> Iterator[Any]:
    """``resource`` up for the block (what an asset would receive), by its own methods.

    Args:
        resource: the copy to bring up (private state fresh, ``EnvVar`` values read).
        context: what its lifecycle methods receive (and ``get_resource_context`` gives).
        teardown: tear it down when the block ends (``False``: Dagster's non-``_cm`` forms,
            which never tear down).
    """
    loop = _Loop()
    resource.host_bind_context(context)
    try:
        if type(resource).overrides_yield():
            cm: Any = resource.yield_for_execution(context)
            if hasattr(cm, "__aenter__"):
                value = loop.resolve(cm.__aenter__())
                exit_ = cm.__aexit__
            else:
                value = cm.__enter__()
                exit_ = cm.__exit__
        else:
            loop.resolve(resource.setup_for_execution(context))
            value, exit_ = resource, None
        if type(resource).creates_resource():
            value = loop.resolve(value.create_resource(context))
        try:
            yield value
        except BaseException as exc:
            if teardown and exit_ is not None:
                if not loop.resolve(exit_(type(exc), exc, exc.__traceback__)):
                    raise
            elif teardown:
                loop.resolve(resource.teardown_after_execution(context))
                raise
            else:
                raise
        else:
            if teardown and exit_ is not None:
                loop.resolve(exit_(None, None, None))
            elif teardown:
                loop.resolve(resource.teardown_after_execution(context))
    finally:
        loop.close()


class ResourceContextMethods:
    """Dagster's per-resource methods of ``ConfigurableResource`` (a base of it)."""

    __slots__ = ()

    def get_resource_context(self) -> InitResourceContext:
        """The context this resource was brought up with in this run (Dagster's
        ``get_resource_context``), for its own methods to use (``log``, ``run_id``...).

        Raises:
            DefinitionError: it was not brought up by a run or ``host.testing`` (nor given a
                context with :meth:`with_replaced_resource_context`).
        """
        private = getattr(self, "__pydantic_private__", None) or {}
        context = private.get("_host_context")
        if context is None:
            raise DefinitionError(
                f"{type(self).__name__}.get_resource_context(): this copy was not brought up "
                f"by a run (a run gives assets a fresh copy with its context). Call it from a "
                f"method an asset calls, open the resource with host.testing.open_resource, or "
                f"give it one with with_replaced_resource_context(build_init_resource_context())."
            )
        return cast(InitResourceContext, context)

    def with_replaced_resource_context(self, context: InitResourceContext) -> Any:
        """A copy of this resource whose :meth:`get_resource_context` gives ``context``."""
        fresh = cast(Any, self).model_copy()
        fresh.host_bind_context(context)
        return fresh

    def with_resource_context(self, context: InitResourceContext) -> Any:
        """:meth:`with_replaced_resource_context` under the name Dagster's testing docs use
        (deprecated there)."""
        return self.with_replaced_resource_context(context)

    def host_bind_context(self, context: InitResourceContext) -> None:
        """Record the context this copy is brought up with (the host calls it)."""
        private = getattr(self, "__pydantic_private__", None)
        if private is None:  # pragma: no cover - a copy made without its private state
            private = {}
            object.__setattr__(self, "__pydantic_private__", private)
        private["_host_context"] = context


    @classmethod
    def to_config_schema(cls) -> type[Any]:
        """The class itself, as a function resource's ``config_schema`` (Dagster's
        ``to_config_schema``): ``@resource(config_schema=MyResource.to_config_schema())``."""
        return cls

    @classmethod
    def from_resource_context(cls, context: InitResourceContext) -> Any:
        """A resource made from ``context.resource_config`` and set up (never torn down), for
        a function resource that wraps this class; gives what assets would receive.

        Raises:
            ConfigError: the config does not validate (naming field, never the value).
            DefinitionError: the class has a teardown (``teardown_after_execution`` or
                ``yield_for_execution``), which this form would never run: use
                :meth:`from_resource_context_cm`, as Dagster requires.
        """
        if cast(Any, cls).overrides_teardown() or cast(Any, cls).overrides_yield():
            raise DefinitionError(
                f"{cls.__name__}.from_resource_context(context) would set it up and never tear "
                f"it down, and {cls.__name__} has a teardown; in a generator function resource "
                f"use `with {cls.__name__}.from_resource_context_cm(context) as resource: "
                f"yield resource`."
            )
        resource = cls._from_config(context)
        with initialized(resource, context, teardown=False) as value:
            return value

    @classmethod
    @contextlib.contextmanager
    def from_resource_context_cm(cls, context: InitResourceContext) -> Iterator[Any]:
        """:meth:`from_resource_context` as a context manager that also tears it down (for a
        generator function resource: ``with MyResource.from_resource_context_cm(context) as r:
        yield r``)."""
        with initialized(cls._from_config(context), context, teardown=True) as value:
            yield value

    @classmethod
    def _from_config(cls, context: InitResourceContext) -> Any:
        config = dict(context.resource_config or {})
        problem: ConfigError | None = None
        try:
            resource = cast(Any, cls)(**config)
        except ValidationError as exc:
            problem = config_error_from_validation(
                context.resource_key, cast(Any, cls), exc, values=config
            )
        if problem is not None:
            raise problem
        return resource.instantiate(context.resource_key, {})

    def process_config_and_initialize(self) -> Any:
        """A fresh copy with its ``EnvVar`` values read and set up (never torn down), by its
        own methods, outside a run, its nested resources first (each once); gives what assets
        would receive. Dagster's name; for the
        host's lifecycle outside a run (hooks, dependencies, teardown) use
        ``host.testing.open_resource``.

        Raises:
            ConfigError: an ``EnvVar`` is not set or its value does not validate.
        """
        with _initialized_tree(self, "resource", teardown=False) as value:
            return value

    @contextlib.contextmanager
    def process_config_and_initialize_cm(self) -> Iterator[Any]:
        """:meth:`process_config_and_initialize` as a context manager that tears it down (its
        nested resources after it, in reverse order)."""
        with _initialized_tree(self, "resource", teardown=True) as value:
            yield value


@contextlib.contextmanager
def _initialized_tree(
    resource: Any, key: str, *, teardown: bool, up: dict[int, Any] | None = None
) -> Iterator[Any]:
    """A fresh copy of ``resource`` (``EnvVar`` values read) up by its own methods, its nested
    resources first (each object once, ``parent.field`` its key, the copy holding what they
    give), torn down in reverse order if ``teardown``; gives what assets would receive."""
    up = {} if up is None else up
    with contextlib.ExitStack() as stack:
        given: dict[str, Any] = {}
        for name, dependency in resource.dependencies().items():
            if not callable(getattr(dependency, "instantiate", None)):
                continue  # a plain value or a function resource: held as it is
            if id(dependency) not in up:
                up[id(dependency)] = stack.enter_context(
                    _initialized_tree(dependency, f"{key}.{name}", teardown=teardown, up=up)
                )
            given[name] = up[id(dependency)]
        fresh = resource.instantiate(key, given)
        with initialized(fresh, own_context(fresh, key), teardown=teardown) as value:
            yield value
