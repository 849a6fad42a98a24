"""The plugin manager: built per run by a factory, never a module global.

Each manager gets the host's hookspecs, the built-in plugin, every installed hook plugin (the
``host.plugins`` entry points that are switched on), and the run's extra plugins. Installed hook
plugins are imported once per process (see ``host._discovery``), so building a manager per run
is cheap. A hook plugin that cannot load is skipped with one warning per process on the
``host.plugins`` logger; it never stops the others or the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pluggy

from host._builtin_hooks import BUILTIN_PLUGIN_NAME, BuiltinPlugin
from host._discovery import discover_plugins, load_entry_point, lookup
from host._errors import PluginError
from host._hookspecs import PROJECT_NAME, ResourceSpec, RunSpec
from host._plugin_api import PLUGINS_GROUP
from host._switches import PluginSwitches, current_switches

__all__ = ["hook_plugin_problems", "make_plugin_manager"]

_log = logging.getLogger("host.plugins")
_warned: set[str] = set()


def _installed_hook_plugins(
    switches: PluginSwitches, problems: list[str] | None = None
) -> list[tuple[str, object]]:
    """(name, plugin object) for every installed hook plugin that is switched on and loads."""
    loaded: list[tuple[str, object]] = []
    infos = discover_plugins(PLUGINS_GROUP, switches=switches)
    for name in dict.fromkeys(info.name for info in infos if info.status != "disabled"):
        try:
            info = lookup(PLUGINS_GROUP, name, switches=switches)
            if info is None:
                continue
            loaded.append((name, load_entry_point(info)))
        except PluginError as exc:
            message = f"hook plugin {name!r} is not loaded: {exc}"
            if problems is not None:
                problems.append(message)
            elif message not in _warned:
                _warned.add(message)
                _log.warning("%s", message)
    return loaded


def hook_plugin_problems(switches: PluginSwitches | None = None) -> list[str]:
    """Why installed hook plugins that are switched on would not load (empty: none)."""
    problems: list[str] = []
    _installed_hook_plugins(switches or current_switches(), problems)
    return problems


def make_plugin_manager(
    extra: Iterable[object] = (), *, switches: PluginSwitches | None = None
) -> pluggy.PluginManager:
    """A plugin manager with the host's hookspecs, the built-in plugin, and the hook plugins.

    Args:
        extra: plugin objects (modules, classes or instances with ``@host.hookimpl`` methods)
            registered for this manager only, after the installed ones; one that is already
            registered (an installed hook plugin passed again) is registered once.
        switches: which installed hook plugins may load (default: :func:`current_switches`,
            i.e. the environment and the run config being run). A process that runs part of a
            run for another process (a worker) passes the switches of the run.

    Installed hook plugins are registered under their entry-point names, in name order.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(ResourceSpec)
    manager.add_hookspecs(RunSpec)
    manager.register(BuiltinPlugin(), name=BUILTIN_PLUGIN_NAME)
    for name, plugin in _installed_hook_plugins(switches or current_switches()):
        if manager.is_registered(plugin):
            _log.warning("hook plugin %r is the same object as another one; skipped", name)
            continue
        manager.register(plugin, name=name)
    for plugin in extra:
        # A plugin that is installed (and so already loaded) and also passed for the run is
        # registered once, not refused.
        if not manager.is_registered(plugin):
            manager.register(plugin)
    return manager
