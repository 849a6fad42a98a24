"""The scan: every entry point in the host's groups, through ``importlib_metadata``'s public API.

``importlib_metadata.entry_points()`` decides which distributions count (the first of each name
on ``sys.path``, one with metadata before one without) and parses their ``entry_points.txt``;
the scan keeps the host groups' entry points (:data:`GROUPS`) and reads no ``METADATA`` (each
distribution's is read on need, see ``host._discovery_records``). One distribution's file that
the library refuses (a line that is not an entry point, bytes that are not UTF-8) hides nothing
else: the distributions are then read one by one, and the refused file without what the library
cannot read.

The ``importlib_metadata`` backport, not the standard library's ``importlib.metadata``: it is a
dependency already, and it gives the same answer on every supported Python (a distribution
without metadata does not hide a later one of the same name; Python 3.10 and 3.11's standard
library let it).
"""

from __future__ import annotations

from typing import Any

from host._discovery_records import Entry, Scan, Source, indexed
from host._plugin_api import GROUPS, normalize_distribution

__all__ = ["scan_now"]


def scan_now() -> Scan:
    """Every entry point in the host's groups; reads no ``METADATA`` (see :class:`Source`)."""
    sources: dict[int, Source] = {}
    entries: list[Entry] = []
    for dist, group, name, value in _host_entry_points():
        source = sources.get(id(dist))
        if source is None:
            source = sources[id(dist)] = Source(dist)
        entries.append(Entry(group, name, value, source))
    return indexed(entries)


def _host_entry_points() -> list[tuple[Any, str, str, str]]:
    """(distribution, group, name, value) of every entry point in the host's groups."""
    import importlib_metadata

    try:
        found = importlib_metadata.entry_points()
    except Exception:
        return _host_entry_points_one_by_one()
    return [(ep.dist, ep.group, ep.name, ep.value) for ep in found if ep.group in GROUPS]


def _host_entry_points_one_by_one() -> list[tuple[Any, str, str, str]]:
    """What :func:`_host_entry_points` gives when some ``entry_points.txt`` is refused.

    Each distribution's metadata names it (the slow path: every ``METADATA`` is read); one
    with metadata comes before one without, the first of each name counts.
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


def _entry_points_text(dist: Any) -> str:
    """``entry_points.txt`` of ``dist``, bytes that are not UTF-8 as replacement characters."""
    try:
        return dist.read_text("entry_points.txt") or ""
    except UnicodeDecodeError as exc:  # it carries the bytes it decoded
        data = exc.object
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
    except Exception:
        return ""


def _entry_points_of(dist: Any) -> Any:
    """``dist.entry_points``; a file it refuses, parsed by the library without what it refused.

    Lines that are not ``name = value``, comments or ``[group]`` headers are left out, and
    bytes that are not UTF-8 are replacement characters (as the host always read them).
    """
    import importlib_metadata

    try:
        return dist.entry_points
    except Exception:
        text = _entry_points_text(dist)

    def usable(line: str) -> bool:
        line = line.strip()
        return not line or line.startswith(("#", "[")) or "=" in line

    class _Lines(importlib_metadata.Distribution):  # the library's parser, over these lines
        def read_text(self, filename: Any) -> str | None:
            return "\n".join(filter(usable, text.splitlines()))

        def locate_file(self, path: Any) -> Any:  # abstract in the library; never called here
            raise NotImplementedError

    try:
        return _Lines().entry_points
    except Exception:  # still refused: this distribution registers nothing we can read
        return ()
