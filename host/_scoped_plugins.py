"""Hook plugins registered for a block of code (a test) rather than for one call.

``register_plugin(obj)`` adds ``obj`` to a context variable for the duration of a ``with`` block;
whatever builds a plugin manager for resources inside that block adds it, as if it had been
passed in ``plugins=``. A context variable, not a global: a plugin registered in one thread or
asyncio task is not seen by the others, and nothing outlives the block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["register_plugin", "with_scoped_plugins"]

P = TypeVar("P")

_PLUGINS: ContextVar[tuple[object, ...]] = ContextVar("host_scoped_plugins", default=())


def with_scoped_plugins(plugins: Iterable[object] = ()) -> tuple[object, ...]:
    """The registered plugins followed by ``plugins``, each object once (by identity).

    Idempotent, so a caller that already added the registered plugins can be passed through it
    again without registering anything twice (pluggy refuses the same object twice).
    """
    unique: dict[int, object] = {}
    for plugin in (*_PLUGINS.get(), *plugins):
        unique.setdefault(id(plugin), plugin)
    return tuple(unique.values())


@contextlib.contextmanager
def register_plugin(plugin: P) -> Iterator[P]:
    """Register a hook plugin for the body of a ``with`` block, then unregister it.

    Inside the block, :func:`host.run_assets`, :func:`host.testing.open_resource`,
    :func:`host.testing.open_resources` and the pytest plugin's ``host_run`` fixture register
    ``plugin`` with the plugin manager they build, as if it were passed in their ``plugins``
    argument (an object given both ways is registered once). The block is local to the thread
    or asyncio task that enters it; blocks nest, and leaving one removes only its own plugin.

    Args:
        plugin: a module, class or instance with ``@host.hookimpl`` functions.

    Yields:
        ``plugin`` itself.
    """
    _PLUGINS.set((*_PLUGINS.get(), plugin))
    try:
        yield plugin
    finally:
        _PLUGINS.set(tuple(p for p in _PLUGINS.get() if p is not plugin))
