"""The plugin manager: built per run by a factory, never a module global.

Each manager gets the host's hookspecs, the built-in plugin, every installed hook plugin (the
``host.plugins`` entry points that are switched on), and the run's extra plugins. Installed hook
plugins are imported once per process (see ``host._discovery``). A run with no extra plugins
reuses the manager of the previous such run while the switches and the installed hook plugins
are the same (:func:`run_plugin_manager`): registering the hookspecs and plugins is most of
what a small run costs. A hook plugin that cannot load is skipped with one warning per process
on the ``host.plugins`` logger; it never stops the others or the run.
"""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from host._builtin_hooks import BUILTIN_PLUGIN_NAME, BuiltinPlugin
from host._errors import PluginError, is_interrupt
from host._hookspecs import PROJECT_NAME, ResourceSpec, RunSpec
from host._plugin_api import PLUGINS_GROUP
from host._switches import PluginSwitches, current_switches

if TYPE_CHECKING:
    from host._discovery import PluginInfo

__all__ = ["hook_plugin_problems", "make_plugin_manager", "observer", "run_plugin_manager"]

_log = logging.getLogger("host.plugins")
_warned: set[str] = set()


def _installed_hook_plugins(
    switches: PluginSwitches, problems: list[str] | None = None
) -> list[tuple[str, object]]:
    """(name, plugin object) for every installed hook plugin that is switched on and loads."""
    from host._discovery import load_entry_point, lookup

    loaded: list[tuple[str, object]] = []
    infos = _hook_plugin_infos(switches)
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


def _hook_plugin_infos(switches: PluginSwitches) -> tuple[PluginInfo, ...]:
    """The installed hook plugins as discovered (``PluginInfo``); none are looked for when the
    switches let none load (autoload off, none enabled by name)."""
    if not switches.autoload and not switches.enable:
        return ()
    from host._discovery import discover_plugins

    return discover_plugins(PLUGINS_GROUP, switches=switches)


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


_reused_lock = threading.Lock()
#: (switches, installed hook plugins as discovered, outermost plugin's id, manager) of the
#: last runs with no extras, one per outermost plugin.
_reused: list[tuple[PluginSwitches, tuple[PluginInfo, ...], int, pluggy.PluginManager]] = []


def run_plugin_manager(
    extra: Iterable[object] = (),
    *,
    switches: PluginSwitches | None = None,
    outermost: tuple[str, object] | None = None,
) -> pluggy.PluginManager:
    """The plugin manager for one run: :func:`make_plugin_manager`, reused when it can be.

    With no ``extra`` plugins, the manager built for the previous such run is returned again
    if the switches, the installed hook plugins (as discovered) and ``outermost`` have not
    changed since; it is never modified after it is built, so runs in several threads can
    share it. With extra plugins, a new manager is built for the run. Callers that register
    more plugins on the manager must use :func:`make_plugin_manager`.

    Args:
        extra: the run's own plugins.
        switches: which installed hook plugins may load (default: :func:`current_switches`).
        outermost: (name, plugin): a plugin registered after all the others (its
            ``tryfirst`` wrappers then wrap theirs), as a worker registers the one that ships
            each asset's output; a manager is reused only with the same plugin object.
    """
    extra = tuple(extra)
    switches = switches or current_switches()
    if extra:
        return _with_outermost(make_plugin_manager(extra, switches=switches), outermost)
    installed = _hook_plugin_infos(switches)
    last = id(outermost[1]) if outermost is not None else 0
    with _reused_lock:
        for known_switches, known_installed, known_outermost, manager in _reused:
            if (
                known_switches == switches
                and known_installed == installed
                and known_outermost == last
            ):
                return manager
        manager = _with_outermost(make_plugin_manager(switches=switches), outermost)
        kept = [entry for entry in _reused if entry[2] != last]
        _reused[:] = [*kept[-3:], (switches, installed, last, manager)]
        return manager


def _with_outermost(
    manager: pluggy.PluginManager, outermost: tuple[str, object] | None
) -> pluggy.PluginManager:
    if outermost is not None:
        name, plugin = outermost
        manager.register(plugin, name=name)
    return manager


def observer(caller: pluggy.HookCaller) -> Callable[..., None]:
    """Call every implementation of the observer hook ``caller`` on its own, isolated.

    An observer (``host_event``, ``host_run_success``, ``host_run_failure``) never changes
    the run: an ``Exception`` one implementation raises (a
    closed stdout's ``BrokenPipeError``, a bug) is logged on the ``host.plugins`` logger naming
    that plugin (with its traceback the first time in each run, without it after), and the
    other implementations and the run go on; so does any other ``BaseException`` of its own.
    Only an interrupt of the run (:func:`host._errors.is_interrupt`: ``KeyboardInterrupt``, the
    host's signal exit, a deadline) propagates.

    The implementations are called in pluggy's order with the arguments each one asks for, as
    pluggy calls them, but without its machinery (``host_event`` runs for every event). When a
    plugin wraps the hook (``wrapper=True``), the hook is called through pluggy as a whole and
    a failure is reported for all of its plugins together.

    Returns:
        A function taking the hook's arguments by keyword; it returns nothing.
    """
    impls = caller.get_hookimpls()
    calls: list[tuple[str, Callable[[dict[str, Any]], object]]]
    if any(impl.wrapper or impl.hookwrapper for impl in impls):
        names = ", ".join(sorted(_label(impl) for impl in impls))
        calls = [(f"plugins {names}", lambda kwargs: caller(**kwargs))]
    else:
        calls = [(f"plugin {_label(impl)}", _call_impl(impl)) for impl in reversed(impls)]
    failed: set[int] = set()

    def notify(**kwargs: Any) -> None:
        for index, (who, call) in enumerate(calls):
            try:
                call(kwargs)
            except BaseException as exc:
                if is_interrupt(exc):
                    raise
                first = index not in failed
                failed.add(index)
                _log.error(
                    "hook %s failed in %s; the run goes on without it there",
                    who,
                    caller.name,
                    exc_info=first,
                )

    return notify


def _label(impl: pluggy.HookImpl) -> str:
    """``'name' (module.Class)`` of a hook implementation's plugin; the name alone when pluggy
    made it up (an object registered without one, e.g. ``run_assets(plugins=[...])``)."""
    plugin = impl.plugin
    if isinstance(plugin, types.ModuleType):
        kind = plugin.__name__
    else:
        cls = plugin if isinstance(plugin, type) else type(plugin)
        kind = f"{cls.__module__}.{cls.__qualname__}"
    if impl.plugin_name == str(id(plugin)):
        return kind
    return f"{impl.plugin_name!r} ({kind})"


def _call_impl(impl: pluggy.HookImpl) -> Callable[[dict[str, Any]], object]:
    function, argnames = impl.function, impl.argnames

    def call(kwargs: dict[str, Any]) -> object:
        return function(*[kwargs[name] for name in argnames])

    return call
