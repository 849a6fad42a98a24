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

import contextlib
import difflib
import hashlib
import importlib
import json
import os
import stat
import sys
import tempfile
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
    return _indexed(entries)


def _indexed(entries: list[_Entry]) -> _Scan:
    by_name: dict[tuple[str, str], list[_Entry]] = {}
    for entry in entries:
        by_name.setdefault((entry.group, entry.name), []).append(entry)
    return _Scan(tuple(entries), {key: tuple(value) for key, value in by_name.items()})


# -- the listing cache: what a listing found, kept between processes ---------------------------
#
# Reading every distribution's metadata (``importlib_metadata``'s e-mail parser, and ``packaging``
# for the requirements on ``host``) costs about 150 us per distribution, which hundreds of
# installed distributions notice. A complete listing (every entry point described) is therefore
# kept in a small file in the user's cache directory, keyed on the interpreter and ``sys.path``,
# and reused while its fingerprint still matches: every ``sys.path`` entry (whether it exists,
# its modification time), the metadata directories in it (their names) and the files the scan
# reads in each (``METADATA`` and ``entry_points.txt`` of a ``.dist-info``; ``PKG-INFO``,
# ``entry_points.txt`` and ``requires.txt`` of an ``.egg-info``: modification time and size),
# the host's version and the Python version. A process with a distribution finder other than
# the standard path finder neither reads nor writes it. ``HOST_DISCOVERY_CACHE=0``
# switches it off; a cache that cannot be read or written is simply not used.

CACHE_ENV = "HOST_DISCOVERY_CACHE"
_CACHE_FORMAT = 1
_CACHE_FILES_KEPT = 32
_EPS = "/entry_points.txt"
_EGG_FILES = ("entry_points.txt", "PKG-INFO", "requires.txt")


def _cache_dir() -> str | None:
    if os.environ.get(CACHE_ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        return None
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "host", "discovery")


def _only_path_finders() -> bool:
    """Whether distributions come from the standard path finder only (what we can fingerprint)."""
    from importlib.machinery import PathFinder

    backport = sys.modules.get("importlib_metadata")  # it adds its own path finder when imported
    ours = getattr(backport, "MetadataPathFinder", PathFinder)
    return all(
        finder is PathFinder
        or isinstance(finder, ours)
        or getattr(finder, "find_distributions", None) is None
        for finder in sys.meta_path
    )


def _file_state(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_mtime_ns, found.st_size)


def _fingerprint() -> str | None:
    """A digest of everything on ``sys.path`` the scan's result depends on (see above)."""
    if not _only_path_finders():
        return None
    parts: list[object] = [_CACHE_FORMAT, sys.version, host_version()]
    for entry in sys.path:
        where = entry or "."
        try:
            found = os.stat(where)
        except OSError:
            parts.append((entry, None))
            continue
        parts.append((entry, found.st_mtime_ns, found.st_size))
        if not stat.S_ISDIR(found.st_mode):
            continue
        try:
            children = sorted(os.listdir(where))
        except OSError:
            parts.append(None)
            continue
        for child in children:
            low = child.lower()
            if low.endswith(".dist-info"):
                path = os.path.join(where, child)
                parts.append((child, _file_state(path + "/METADATA"), _file_state(path + _EPS)))
            elif low.endswith(".egg-info") or low == "egg-info":  # a directory or a file
                path = os.path.join(where, child)
                parts.append((child, _file_state(path)))
                parts.extend(_file_state(os.path.join(path, name)) for name in _EGG_FILES)
    return hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()


def _cache_file(directory: str) -> str:
    key = repr((sys.executable, sys.path)).encode()
    return os.path.join(directory, hashlib.blake2b(key, digest_size=12).hexdigest() + ".json")


def _load_cached(fingerprint: str) -> _Scan | None:
    directory = _cache_dir()
    if directory is None:
        return None
    try:
        with open(_cache_file(directory), encoding="utf-8") as file:
            data = json.load(file)
        if data["fingerprint"] != fingerprint:
            return None
        sources = []
        for name, version, requires, status, problem in data["sources"]:
            source = _Source(None)
            source._described = _Described(name, version, requires, status, problem)
            sources.append(source)
        entries = [
            _Entry(group, name, value, sources[index])
            for group, name, value, index in data["entries"]
        ]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return _indexed(entries)


def _save(scan: _Scan, fingerprint: str) -> None:
    """Keep ``scan`` for later processes, if every entry point of it is described."""
    directory = _cache_dir()
    if directory is None:
        return
    indexes: dict[int, int] = {}
    sources: list[list[object]] = []
    entries: list[list[object]] = []
    for entry in scan.entries:
        about = entry.source._described
        if about is None:
            return  # not all read: nothing is kept
        index = indexes.setdefault(id(entry.source), len(sources))
        if index == len(sources):
            sources.append(
                [about.name, about.version, about.requires_host, about.status, about.problem]
            )
        entries.append([entry.group, entry.name, entry.value, index])
    text = json.dumps({"fingerprint": fingerprint, "sources": sources, "entries": entries})
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, _cache_file(directory))
        _prune(directory)
    except OSError:
        pass


def _prune(directory: str) -> None:
    """Keep only the most recent cache files (one per interpreter and ``sys.path``)."""
    files = [os.path.join(directory, name) for name in os.listdir(directory)]
    if len(files) <= _CACHE_FILES_KEPT:
        return
    for path in sorted(files, key=lambda p: _file_state(p) or (0, 0))[:-_CACHE_FILES_KEPT]:
        with contextlib.suppress(OSError):
            os.remove(path)


@dataclass
class _Cache:
    """What this process has found and loaded; see :func:`reset_discovery`."""

    scan: _Scan | None = None
    #: The fingerprint of a scan read from ``sys.path`` (not from the cache) and not yet kept.
    unsaved: str | None = None
    #: (group, name, distribution) -> the loaded object, or why it failed.
    loaded: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)


_lock = threading.RLock()
_cache = _Cache()


def _scan() -> _Scan:
    with _lock:
        if _cache.scan is None:
            fingerprint = _fingerprint() if _cache_dir() is not None else None
            cached = _load_cached(fingerprint) if fingerprint is not None else None
            _cache.scan = cached or _scan_now()
            _cache.unsaved = fingerprint if cached is None else None
        return _cache.scan


def _keep_listing(scan: _Scan) -> None:
    """After a listing: keep the scan for later processes (once), if it was read afresh."""
    with _lock:
        if _cache.unsaved is not None and _cache.scan is scan:
            fingerprint, _cache.unsaved = _cache.unsaved, None
            _save(scan, fingerprint)


def reset_discovery() -> None:
    """Forget the scan and every loaded entry point; the next use scans again.

    For tests and for long-lived processes after packages were installed or removed. Modules
    already imported stay in ``sys.modules``.
    """
    with _lock:
        _cache.scan = None
        _cache.unsaved = None
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
    scan = _scan()
    for (entry_group, _), entries in scan.by_name.items():
        if group is None or entry_group == group:
            listed.extend(_with_switches([e.info for e in entries], switches))
    _keep_listing(scan)
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
