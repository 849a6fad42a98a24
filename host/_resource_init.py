"""Bringing one resource up outside a run: Dagster's ``from_resource_context`` and
``process_config_and_initialize`` (and their ``_cm`` forms).

These call the resource's own lifecycle methods directly, as Dagster does: no hooks, no events,
no timeouts, no dependencies brought up (a field holding a resource is given as it is). For the
host's full lifecycle outside a run, use ``host.testing.open_resource``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from host._context import InitResourceContext

if TYPE_CHECKING:
    from host._resource import ConfigurableResource

__all__ = ["initialized", "own_context"]


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
        self._loop: asyncio.AbstractEventLoop | None = None

    def resolve(self, value: Any) -> Any:
        if not inspect.isawaitable(value):
            return value
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
    from host._resource_factory import ConfigurableResourceFactory

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
        if isinstance(resource, ConfigurableResourceFactory):
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
