"""Entry-point discovery: one scan per process, listing as data, import only on use.

The host reads three entry-point groups (:data:`GROUPS`) from the installed distributions'
metadata, once per process (:func:`reset_discovery` forgets the scan, for tests and long-lived
processes that install packages). Listing (:func:`discover_plugins`) reads distribution metadata
only and never imports plugin code. :func:`load_entry_point` imports exactly one entry point,
checks what it gives, and caches the result for the process.

What is read, and when (it stays cheap with hundreds of distributions installed), all through
``importlib_metadata``'s public API:

* the scan takes ``importlib_metadata.entry_points()`` (which distributions count, and their
  ``entry_points.txt``) and keeps the host groups' entry points. It reads no ``METADATA``;
* a distribution's metadata (``Distribution.metadata``: ``Name``, ``Version``,
  ``Requires-Dist``; ``Distribution.requires`` for an egg-info's ``requires.txt``) is read the
  first time one of its entry points is needed as a :class:`PluginInfo`: by a listing (all of
  them), or by :func:`lookup` and :func:`load_entry_point` (that name's distributions only);
  once per scan. The requirement on ``host`` is checked with ``packaging`` (``host._plugin_api``).
  :func:`names_in` and :func:`suggest` read none. ``EntryPoint.load()`` imports one entry point.

The ``importlib_metadata`` backport, not the standard library's ``importlib.metadata``: it is a
dependency already, and it gives the same answer on every supported Python (a distribution
without metadata does not hide a later one of the same name; Python 3.10 and 3.11's standard
library let it).

What a listing reports for each entry point (its :attr:`PluginInfo.status`):

* ``ok``: usable;
* ``disabled``: switched off by ``HOST_DISABLE_PLUGINS``, the run config's ``[plugins] disable``,
  or (hook plugins only) ``HOST_DISABLE_PLUGIN_AUTOLOAD=1``; it is never imported;
* ``conflict``: another distribution registers the same name in the same group; using the name
  is an error naming both, unless the caller picks one distribution;
* ``incompatible``: the distribution's requirement on ``host`` excludes this host; never imported;
* ``broken``: its distribution's metadata cannot be read, or (after a load or a check)
  importing it failed or it gave the wrong kind of object.

A broken, conflicting or incompatible entry point never affects the others. The groups, the
plugin API version and the compatibility check are in ``host._plugin_api``, the switches in
``host._switches`` (which know nothing of discovery); this module re-exports what its callers need
of both. What each group's objects must be is checked here, except for executors: the executor
registry, above discovery, registers that check (:func:`register_check`).
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from host._errors import PluginError
from host._events import describe_exception
from host._plugin_api import (
    EXECUTORS_GROUP,
    GROUPS,
    HOST_DISTRIBUTION,
    PLUGIN_API_VERSION,
    PLUGINS_GROUP,
    RESOURCES_GROUP,
    host_requirements,
    host_version,
    incompatibility,
    normalize_distribution,
)
from host._switches import (
    AUTOLOAD_ENV,
    DISABLE_ENV,
    ENABLE_ENV,
    PluginSwitches,
    current_switches,
    qualified,
    use_switches,
)

__all__ = [
    "AUTOLOAD_ENV",
    "DISABLE_ENV",
    "ENABLE_ENV",
    "EXECUTORS_GROUP",
    "GROUPS",
    "PLUGINS_GROUP",
    "PLUGIN_API_VERSION",
    "RESOURCES_GROUP",
    "PluginInfo",
    "PluginSwitches",
    "check_entry_point",
    "current_switches",
    "describe_object",
    "discover_plugins",
    "load_entry_point",
    "lookup",
    "names_in",
    "register_check",
    "reset_discovery",
    "suggest",
    "switch_name",
    "use_switches",
]

Status = Literal["ok", "disabled", "conflict", "incompatible", "broken"]


@dataclass(frozen=True)
class PluginInfo:
    """One entry point in one of the host's groups, as data; reading it imports nothing.

    Attributes:
        group: the entry-point group (one of :data:`GROUPS`).
        name: the entry point's name (a resource type, an executor, a hook plugin).
        value: what it points to, ``module`` or ``module:attribute``.
        distribution: the name of the distribution that registers it (``None`` if unknown).
        version: that distribution's version.
        status: ``ok``, ``disabled``, ``conflict``, ``incompatible`` or ``broken``.
        problem: why the status is not ``ok`` (one line, no traceback), else ``None``.
        requires_host: the distribution's requirement on ``host`` (e.g. ``host>=0.1,<0.2``).
    """

    group: str
    name: str
    value: str
    distribution: str | None
    version: str | None
    status: Status = "ok"
    problem: str | None = None
    requires_host: str | None = None

    @property
    def origin(self) -> str:
        """``"distribution version"``, for messages."""
        if self.distribution is None:
            return "an unknown distribution"
        return f"{self.distribution} {self.version}" if self.version else self.distribution

    def describe(self) -> str:
        """The entry point as messages name it: name, group, value and distribution."""
        return f"{self.name} = {self.value} (group {self.group}, from {self.origin})"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every attribute."""
        return {
            "group": self.group,
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "value": self.value,
            "status": self.status,
            "problem": self.problem,
            "requires_host": self.requires_host,
        }


# -- the scan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Described:
    """What the scan needs to know about one distribution."""

    name: str | None = None
    version: str | None = None
    requires_host: str | None = None
    status: Status = "ok"
    problem: str | None = None


def _describe(dist: Any) -> _Described:
    """Name, version and compatibility of ``dist``; unreadable metadata makes it ``broken``."""
    name = version = None
    try:
        metadata = dist.metadata
        name, version = metadata.get("Name"), metadata.get("Version")
        # ``Requires-Dist`` from the metadata just read; ``dist.requires`` (which reads it
        # again) only for a distribution without any, such as an egg-info's ``requires.txt``.
        lines = metadata.get_all("Requires-Dist") or dist.requires or []
        on_host = host_requirements(lines)
        requires = ", ".join(r.split(";")[0].strip() for r in on_host) or None
        problem = None
        if on_host and normalize_distribution(name or "") != HOST_DISTRIBUTION:
            problem = incompatibility(tuple(on_host), host_version())
    except Exception as exc:  # one distribution's bad metadata never stops the scan
        problem = f"its metadata cannot be read: {describe_exception(exc)}"
        return _Described(name, version, None, "broken", problem)
    return _Described(name, version, requires, "incompatible" if problem else "ok", problem)


class _Source:
    """A distribution that registers something in a host group; its metadata is read on need.

    Its metadata (name, version, ``Requires-Dist``) is read the first time one of its entry
    points is listed or looked up, then kept with the scan.
    """

    __slots__ = ("_described", "dist")

    def __init__(self, dist: Any) -> None:
        self.dist = dist
        self._described: _Described | None = None

    def described(self) -> _Described:
        # Reading twice from two threads gives equal results: no lock needed.
        if self._described is None:
            self._described = _describe(self.dist)
        return self._described


class _Entry:
    """One scanned entry point: group, name and value, and the distribution it comes from.

    :attr:`info` (which needs the distribution's metadata) is made on first use.
    """

    __slots__ = ("_info", "group", "name", "source", "value")

    def __init__(self, group: str, name: str, value: str, source: _Source) -> None:
        self.group, self.name, self.value, self.source = group, name, value, source
        self._info: PluginInfo | None = None

    @property
    def info(self) -> PluginInfo:
        """The entry point as data, before switches (reads its distribution's metadata once)."""
        if self._info is None:
            about = self.source.described()
            self._info = PluginInfo(
                group=self.group,
                name=self.name,
                value=self.value,
                distribution=about.name,
                version=about.version,
                status=about.status,
                problem=about.problem,
                requires_host=about.requires_host,
            )
        return self._info

    def load(self) -> Any:
        """Import the entry point and return the object it names."""
        import importlib_metadata

        return importlib_metadata.EntryPoint(self.name, self.value, self.group).load()


@dataclass(frozen=True)
class _Scan:
    entries: tuple[_Entry, ...]
    by_name: Mapping[tuple[str, str], tuple[_Entry, ...]]


def _host_entry_points() -> list[tuple[Any, str, str, str]]:
    """(distribution, group, name, value) of every entry point in the host's groups.

    ``importlib_metadata.entry_points()`` decides which distributions count (the first of each
    name on ``sys.path``, one with metadata before one without) and parses their
    ``entry_points.txt``; it reads no ``METADATA``. If it refuses one distribution's file, the
    distributions are read one by one instead, so that one bad file never hides the others.
    """
    import importlib_metadata

    try:
        found = importlib_metadata.entry_points()
    except Exception:
        return _host_entry_points_one_by_one()
    return [(ep.dist, ep.group, ep.name, ep.value) for ep in found if ep.group in GROUPS]


def _host_entry_points_one_by_one() -> list[tuple[Any, str, str, str]]:
    """What :func:`_host_entry_points` gives when some ``entry_points.txt`` does not parse.

    Each distribution's metadata names it (the slow path: every ``METADATA`` is read); one
    with metadata comes before one without, the first of each name counts. A file the library
    refuses is read without its lines that are not ``name = value``, comments or headers.
    """
    import importlib_metadata

    ranked: list[tuple[str | None, Any]] = []
    for dist in importlib_metadata.distributions():
        try:
            name = dist.metadata.get("Name")
        except Exception:
            name = None
        ranked.append((normalize_distribution(name) if name else None, dist))
    ranked.sort(key=lambda pair: pair[0] is None)  # stable: sys.path order otherwise
    seen: set[str] = set()
    found: list[tuple[Any, str, str, str]] = []
    for key, dist in ranked:
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        found.extend(
            (dist, ep.group, ep.name, ep.value)
            for ep in _entry_points_of(dist)
            if ep.group in GROUPS
        )
    return found


def _entry_points_of(dist: Any) -> Any:
    """``dist.entry_points``; a file it refuses, parsed by the library without its bad lines."""
    import importlib_metadata

    try:
        return dist.entry_points
    except Exception:
        text = dist.read_text("entry_points.txt") or ""

    def usable(line: str) -> bool:
        line = line.strip()
        return not line or line.startswith(("#", "[")) or "=" in line

    class _Lines(importlib_metadata.Distribution):  # the library's parser, over these lines
        def read_text(self, filename: Any) -> str | None:
            return "\n".join(filter(usable, text.splitlines()))

        def locate_file(self, path: Any) -> Any:
            raise NotImplementedError

    try:
        return _Lines().entry_points
    except Exception:  # still refused: this distribution registers nothing we can read
        return ()


def _scan_now() -> _Scan:
    """Every entry point in the host's groups; reads no ``METADATA`` (see :class:`_Source`)."""
    sources: dict[int, _Source] = {}
    entries: list[_Entry] = []
    for dist, group, name, value in _host_entry_points():
        source = sources.get(id(dist))
        if source is None:
            source = sources[id(dist)] = _Source(dist)
        entries.append(_Entry(group, name, value, source))
    by_name: dict[tuple[str, str], list[_Entry]] = {}
    for entry in entries:
        by_name.setdefault((entry.group, entry.name), []).append(entry)
    return _Scan(tuple(entries), {key: tuple(value) for key, value in by_name.items()})


@dataclass
class _Cache:
    """What this process has found and loaded; see :func:`reset_discovery`."""

    scan: _Scan | None = None
    #: (group, name, distribution) -> the loaded object, or why it failed.
    loaded: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)


_lock = threading.RLock()
_cache = _Cache()


def _scan() -> _Scan:
    with _lock:
        if _cache.scan is None:
            _cache.scan = _scan_now()
        return _cache.scan


def reset_discovery() -> None:
    """Forget the scan and every loaded entry point; the next use scans again.

    For tests and for long-lived processes after packages were installed or removed. Modules
    already imported stay in ``sys.modules``.
    """
    with _lock:
        _cache.scan = None
        _cache.loaded.clear()
    importlib.invalidate_caches()


# -- listing and lookup -----------------------------------------------------------------------


def _with_switches(infos: list[PluginInfo], switches: PluginSwitches) -> list[PluginInfo]:
    """``infos`` (one group and name) with ``disabled`` applied, then ``conflict``.

    Only entry points that could load compete for a name: disabling all distributions but one
    is a way to pick that one.
    """
    result = []
    for info in infos:
        reason = switches.disabled_reason(info.group, info.name, info.distribution)
        result.append(info if reason is None else replace(info, status="disabled", problem=reason))
    usable = [info for info in result if info.status == "ok"]
    if len(usable) > 1:
        for index, info in enumerate(result):
            if info.status == "ok":
                others = ", ".join(other.origin for other in usable if other is not info)
                result[index] = replace(
                    info,
                    status="conflict",
                    problem=f"{others} also registers {info.name!r} in {info.group}",
                )
    return result


def discover_plugins(
    group: str | None = None, *, switches: PluginSwitches | None = None
) -> tuple[PluginInfo, ...]:
    """Every entry point in the host's groups (or in ``group``), as data; imports nothing.

    Args:
        group: only this group (one of :data:`GROUPS`).
        switches: the switches to apply (default: :func:`current_switches`).

    Returns:
        The entry points, by group (in :data:`GROUPS` order), name, then distribution.
    """
    switches = switches or current_switches()
    listed: list[PluginInfo] = []
    for (entry_group, _), entries in _scan().by_name.items():
        if group is None or entry_group == group:
            listed.extend(_with_switches([e.info for e in entries], switches))
    listed.sort(key=lambda i: (GROUPS.index(i.group), i.name, i.distribution or ""))
    return tuple(listed)


def names_in(group: str) -> list[str]:
    """The sorted, distinct entry-point names of ``group`` (disabled ones included)."""
    return sorted({e.name for e in _scan().entries if e.group == group})


def suggest(group: str, name: str) -> str:
    """A hint for an unknown ``name``: close names, else what is installed."""
    known = names_in(group)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}? Installed: {known}"
    return f"installed: {known or 'none'}"


def lookup(
    group: str,
    name: str,
    *,
    distribution: str | None = None,
    switches: PluginSwitches | None = None,
) -> PluginInfo | None:
    """The usable entry point ``name`` of ``group``, or ``None`` if no distribution has it.

    Args:
        group: one of :data:`GROUPS`.
        name: the entry point's name.
        distribution: pick this distribution's entry point when several register ``name``.
        switches: the switches to apply (default: :func:`current_switches`).

    Raises:
        PluginError: the entry point is disabled or incompatible; several distributions register
            it and ``distribution`` does not pick one; or ``distribution`` does not register it.
    """
    switches = switches or current_switches()
    found = _scan().by_name.get((group, name), ())
    if not found:
        return None
    if distribution is not None:
        wanted = normalize_distribution(distribution)
        picked = [e for e in found if normalize_distribution(e.info.distribution or "") == wanted]
        if not picked:
            raise PluginError(
                f"{name!r} in {group} is not registered by distribution {distribution!r}; it is "
                f"registered by {', '.join(e.info.origin for e in found)}. Install "
                f"{distribution}, or name one of those."
            )
        found = tuple(picked)
    infos = _with_switches([e.info for e in found], switches)
    conflicting = [info for info in infos if info.status == "conflict"]
    if conflicting:
        raise PluginError(
            f"{name!r} in {group} is registered by several distributions: "
            f"{', '.join(i.origin + ' (' + i.value + ')' for i in conflicting)}. Pick one in the "
            f"run config (distribution = \"NAME\" next to the name), or uninstall or switch off "
            f"all but one ({DISABLE_ENV}="
            f"{' or '.join(switch_name(info) for info in conflicting)})."
        )
    usable = [info for info in infos if info.status == "ok"]
    if usable:
        return usable[0]
    problems = "; ".join(f"{info.describe()} is {_said(info)}" for info in infos)
    raise PluginError(f"{name!r} in {group} cannot be used: {problems}.")


def switch_name(info: PluginInfo) -> str:
    """What to put in ``HOST_DISABLE_PLUGINS`` to switch off ``info`` and nothing else.

    Its entry-point name, or ``DIST:NAME`` when another distribution registers the same name
    (in any group): a bare name would switch that one off too.
    """
    dist = normalize_distribution(info.distribution or "")
    shared = any(
        normalize_distribution(entry.info.distribution or "") != dist
        for (_, name), entries in _scan().by_name.items()
        if name == info.name
        for entry in entries
    )
    return qualified(info.name, info.distribution) if shared else info.name


def _said(info: PluginInfo) -> str:
    if info.status == "disabled":
        return f"{info.problem}; remove it from there to use it"
    return f"not loaded: {info.problem}"


# -- loading ------------------------------------------------------------------------------------


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
#: executor check belongs to the executor registry (``host._executors.registry``), which sits
#: above discovery and registers it with :func:`register_check` when it is imported.
_CHECKS: dict[str, Callable[[Any], str | None]] = {
    RESOURCES_GROUP: _check_resource,
    PLUGINS_GROUP: _check_hook_plugin,
}


def _unchecked(obj: Any) -> str | None:
    """A group whose check is not registered: nothing this process has imported can be used.

    Only the executors' check is registered from above; every caller that loads an executor
    entry point (the run config, the command line, the registry itself) imports the registry.
    """
    return f"it is {describe_object(obj)}, not a host.Executor subclass"


def register_check(group: str, check: Callable[[Any], str | None]) -> None:
    """Check what ``group``'s entry points load with ``check`` (``None``: usable, else why not).

    For the layers above discovery that own a group's base class (the executor registry).
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
    with _lock:
        if key not in _cache.loaded:
            _cache.loaded[key] = _load_now(info)
        result = _cache.loaded[key]
    if isinstance(result, _Failure):
        raise PluginError(result.message) from result.cause
    return result


def _load_now(info: PluginInfo) -> Any:
    found = [
        e for e in _scan().by_name.get((info.group, info.name), ())
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
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit at import too: the plugin is broken, not the run
        return _Failure(
            f"{info.describe()} failed to import: {describe_exception(exc)}. {fix}", exc
        )
    problem = _CHECKS.get(info.group, _unchecked)(obj)
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
