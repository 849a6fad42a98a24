"""Listing and lookup: the scan kept for the process, with the switches applied on each use.

The scan is made once per process (read from the listing cache when its fingerprint matches,
see ``host._discovery_cache``), and kept until :func:`reset_discovery`. A listing
(:func:`discover_plugins`) describes every entry point (reading each distribution's metadata
once) and imports nothing; after a complete listing read afresh, the scan is kept in the cache
for later processes. :func:`lookup` reads only that name's distributions' metadata;
:func:`names_in` and :func:`suggest` read none. Switches (``host._switches``) are applied on
every use, after the scan or the cache: ``disabled`` first, then ``conflict``.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from host import _discovery_cache
from host._discovery_records import PluginInfo, Scan
from host._discovery_scan import scan_now
from host._errors import PluginError
from host._plugin_api import GROUPS, normalize_distribution
from host._switches import DISABLE_ENV, PluginSwitches, current_switches, qualified

__all__ = [
    "discover_plugins",
    "loaded_lock",
    "loaded_objects",
    "lookup",
    "names_in",
    "reset_discovery",
    "scan",
    "suggest",
    "switch_name",
]


@dataclass
class _State:
    """What this process has found and loaded; see :func:`reset_discovery`."""

    scan: Scan | None = None
    #: The fingerprint of a scan read from ``sys.path`` (not from the cache) and not yet kept.
    unsaved: _discovery_cache.Fingerprint | None = None
    #: (group, name, distribution) -> the loaded object, or why it failed.
    loaded: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)


_lock = threading.RLock()
_state = _State()


def scan() -> Scan:
    """The process's scan: made now (or read from the listing cache) if there is none yet."""
    with _lock:
        if _state.scan is None:
            found = None
            if _discovery_cache.cache_directory() is not None:
                found = _discovery_cache.fingerprint()
            cached = _discovery_cache.load(found) if found is not None else None
            _state.scan = cached or scan_now()
            _state.unsaved = found if cached is None else None
        return _state.scan


def _keep_listing(listed: Scan) -> None:
    """After a listing: keep the scan for later processes (once), if it was read afresh."""
    with _lock:
        if _state.unsaved is not None and _state.scan is listed:
            found, _state.unsaved = _state.unsaved, None
            _discovery_cache.save(listed, found)


def loaded_objects() -> dict[tuple[str, str, str | None], Any]:
    """The entry points this process has loaded (by ``host._discovery_load``).

    Read and written holding :func:`loaded_lock`.
    """
    return _state.loaded


def loaded_lock() -> threading.RLock:
    """The lock over the scan and :func:`loaded_objects`."""
    return _lock


def reset_discovery() -> None:
    """Forget the scan and every loaded entry point; the next use scans again.

    For tests and for long-lived processes after packages were installed or removed. Modules
    already imported stay in ``sys.modules``.
    """
    with _lock:
        _state.scan = None
        _state.unsaved = None
        _state.loaded.clear()
    importlib.invalidate_caches()


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
    current = scan()
    for (entry_group, _), entries in current.by_name.items():
        if group is None or entry_group == group:
            listed.extend(_with_switches([e.info for e in entries], switches))
    _keep_listing(current)
    listed.sort(key=lambda i: (GROUPS.index(i.group), i.name, i.distribution or ""))
    return tuple(listed)


def names_in(group: str) -> list[str]:
    """The sorted, distinct entry-point names of ``group`` (disabled ones included)."""
    return sorted({e.name for e in scan().entries if e.group == group})


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
    found = scan().by_name.get((group, name), ())
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
        for (_, name), entries in scan().by_name.items()
        if name == info.name
        for entry in entries
    )
    return qualified(info.name, info.distribution) if shared else info.name


def _said(info: PluginInfo) -> str:
    if info.status == "disabled":
        return f"{info.problem}; remove it from there to use it"
    return f"not loaded: {info.problem}"


