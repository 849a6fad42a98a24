"""Loading: import one entry point, check it is what its group needs, keep it for the process.

:func:`load_entry_point` imports exactly one entry point (``EntryPoint.load()``: its module and
what that imports) and checks the object it gives against its group: a resource type must be a
``ConfigurableResource`` subclass, a hook plugin must implement host hooks that match the
specifications, an executor must be an ``Executor`` subclass. The executor check belongs to the
executor kit, above this layer: ``host.executors.base`` registers it (:func:`register_check`)
when ``Executor`` is defined, so it is registered whenever an ``Executor`` subclass exists. A
failed load is kept too: the same entry point is not imported twice in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from host._discovery_listing import loaded_lock, loaded_objects, scan, switch_name
from host._discovery_records import PluginInfo
from host._errors import PluginError, is_interrupt
from host._events import describe_exception
from host._plugin_api import PLUGINS_GROUP, RESOURCES_GROUP
from host._switches import DISABLE_ENV

__all__ = ["check_entry_point", "describe_object", "load_entry_point", "register_check"]


def _check_resource(obj: Any) -> str | None:
    from host._resource import ConfigurableResource

    if isinstance(obj, type) and issubclass(obj, ConfigurableResource):
        return None
    return f"it is {describe_object(obj)}, not a host.ConfigurableResource subclass"


def _check_hook_plugin(obj: Any) -> str | None:
    import pluggy

    from host._hookspecs import PROJECT_NAME, ResourceSpec, RunSpec

    scratch = pluggy.PluginManager(PROJECT_NAME)
    scratch.add_hookspecs(ResourceSpec)
    scratch.add_hookspecs(RunSpec)
    try:
        if scratch.register(obj) is None or not scratch.get_hookcallers(obj):
            return f"it is {describe_object(obj)} with no @host.hookimpl function"
        scratch.check_pending()
    except (pluggy.PluginValidationError, ValueError, TypeError) as exc:
        return f"its hooks do not match the host's hook specifications: {exc}"
    return None


#: How each group's loaded objects are checked: ``None`` if usable, else what is wrong. The
#: executor check is registered by ``host.executors.base`` (see the module's docstring).
_CHECKS: dict[str, Callable[[Any], str | None]] = {
    RESOURCES_GROUP: _check_resource,
    PLUGINS_GROUP: _check_hook_plugin,
}


def _not_an_executor(obj: Any) -> str | None:
    """The executors' check before ``host.executors.base`` is imported.

    Until then no ``Executor`` subclass exists in this process, so nothing loaded can be one.
    """
    return f"it is {describe_object(obj)}, not a host.Executor subclass"


def register_check(group: str, check: Callable[[Any], str | None]) -> None:
    """Check what ``group``'s entry points load with ``check`` (``None``: usable, else why not).

    For the layers above discovery that own a group's base class (``host.executors.base``).
    """
    _CHECKS[group] = check


def describe_object(obj: Any) -> str:
    """``class module.Name``, or the type and a short repr: what a check says an object is."""
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    return f"{type(obj).__name__} {obj!r:.60}"


@dataclass(frozen=True)
class _Failure:
    message: str
    cause: BaseException | None


def load_entry_point(info: PluginInfo) -> Any:
    """Import one entry point and check it is what its group needs; cached per process.

    Only that entry point's module (and what it imports) is imported. ``info`` comes from
    :func:`lookup` (which refuses disabled, conflicting and incompatible entry points).

    Raises:
        PluginError: it failed to import (the cause is chained) or gives the wrong kind of
            object; the message names the entry point, its distribution and version.
    """
    key = (info.group, info.name, info.distribution)
    with loaded_lock():
        loaded = loaded_objects()
        if key not in loaded:
            loaded[key] = _load_now(info)
        result = loaded[key]
    if isinstance(result, _Failure):
        raise PluginError(result.message) from result.cause
    return result


def _load_now(info: PluginInfo) -> Any:
    found = [
        e for e in scan().by_name.get((info.group, info.name), ())
        if e.info.distribution == info.distribution
    ]
    if not found:
        return _Failure(f"{info.describe()} is no longer installed.", None)
    fix = (
        f"Reinstall or fix {info.distribution or 'the distribution'}, or switch it off with "
        f"{DISABLE_ENV}={switch_name(info)}."
    )
    try:
        obj = found[0].load()
    except BaseException as exc:  # SystemExit at import too: the plugin is broken, not the run
        if is_interrupt(exc):  # Ctrl-C, the host's signal exit, a deadline: not the plugin's
            raise
        return _Failure(
            f"{info.describe()} failed to import: {describe_exception(exc)}. {fix}", exc
        )
    problem = _CHECKS.get(info.group, _not_an_executor)(obj)
    if problem is not None:
        return _Failure(f"{info.describe()} cannot be used: {problem}. {fix}", None)
    return obj


def check_entry_point(info: PluginInfo) -> PluginInfo:
    """``info`` with the status a load gives: ``ok``, or ``broken`` and the problem.

    Disabled, incompatible and already broken (unreadable metadata) entry points are not
    imported; the others are (each once per process), conflicting ones each from its own
    distribution.
    """
    if info.status in ("disabled", "incompatible", "broken"):
        return info
    try:
        load_entry_point(info)
    except PluginError as exc:
        return replace(info, status="broken", problem=str(exc))
    return info
