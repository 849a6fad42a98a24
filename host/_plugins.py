"""The plugin manager: built per run by a factory, never a module global."""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from host._builtin_hooks import BUILTIN_PLUGIN_NAME, BuiltinPlugin
from host._hookspecs import PROJECT_NAME, ResourceSpec, RunSpec

__all__ = ["make_plugin_manager"]


def make_plugin_manager(extra: Iterable[object] = ()) -> pluggy.PluginManager:
    """A plugin manager with the host's hookspecs, the built-in plugin, and ``extra`` plugins.

    Args:
        extra: plugin objects (modules, classes or instances with ``@host.hookimpl`` methods)
            registered for this manager only, after the built-in plugin.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(ResourceSpec)
    manager.add_hookspecs(RunSpec)
    manager.register(BuiltinPlugin(), name=BUILTIN_PLUGIN_NAME)
    for plugin in extra:
        manager.register(plugin)
    return manager
