"""What discovery knows about an entry point: :class:`PluginInfo`, and the metadata behind it.

A :class:`PluginInfo` is one entry point in one of the host's groups, as data. The scan
(``host._discovery_scan``) makes an :class:`Entry` per entry point, sharing one :class:`Source`
per distribution; a source reads its distribution's metadata (``Distribution.metadata``: name,
version, ``Requires-Dist``; ``Distribution.requires`` for an egg-info's ``requires.txt``) the
first time one of its entry points is needed as a :class:`PluginInfo`, and keeps it
(:func:`describe_distribution`). The requirement on ``host`` is checked with ``packaging``
(``host._plugin_api``).

Metadata that is not UTF-8 (the core metadata specification says it is): bytes that are not
UTF-8 in the body of ``METADATA`` (its description, after the first empty line) are read as
replacement characters and the entry points are usable, as before; in its headers, the
distribution's entry points are ``broken``, with a problem saying so and what to do.
"""

from __future__ import annotations

import email
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from host._events import describe_exception
from host._plugin_api import (
    HOST_DISTRIBUTION,
    host_requirements,
    host_version,
    incompatibility,
    normalize_distribution,
)

__all__ = [
    "STATUSES",
    "Described",
    "Entry",
    "PluginInfo",
    "Scan",
    "Source",
    "Status",
    "describe_distribution",
    "indexed",
]

Status = Literal["ok", "disabled", "conflict", "incompatible", "broken"]
#: Every :data:`Status`, for checking what a kept listing says.
STATUSES: frozenset[str] = frozenset(("ok", "disabled", "conflict", "incompatible", "broken"))


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


# -- one distribution's metadata --------------------------------------------------------------


@dataclass(frozen=True)
class Described:
    """What a listing needs to know about one distribution (from its metadata)."""

    name: str | None = None
    version: str | None = None
    requires_host: str | None = None
    status: Status = "ok"
    problem: str | None = None


class _NotUtf8(Exception):
    """The headers of a distribution's ``METADATA`` are not UTF-8."""

    def __init__(self, name: str | None, version: str | None, offset: int, byte: int) -> None:
        super().__init__(
            f"its METADATA is not UTF-8 (byte 0x{byte:02x} at offset {offset}, in its headers); "
            f"reinstall the distribution, or ask its authors for metadata written as UTF-8"
        )
        self.name, self.version = name, version


#: Where the headers of a metadata file end: the first empty line.
_HEADERS_END = re.compile(rb"\r?\n\r?\n|\r\r")


def _metadata(dist: Any) -> Any:
    """``dist.metadata``; one whose body only is not UTF-8 is read with replacement characters.

    ``Distribution.read_text`` decodes the whole file as UTF-8 and the error carries the bytes
    it decoded (``UnicodeDecodeError.object``); they are parsed again with the standard
    library's e-mail parser, as ``Distribution.metadata`` parses them.

    Raises:
        _NotUtf8: the first byte that is not UTF-8 is in the headers.
    """
    try:
        return dist.metadata
    except UnicodeDecodeError as exc:
        data = exc.object
        if not isinstance(data, bytes):
            raise
        message = email.message_from_string(data.decode("utf-8", "replace"))
        end = _HEADERS_END.search(data)
        if end is None or exc.start < end.start():
            raise _NotUtf8(
                message.get("Name"), message.get("Version"), exc.start, data[exc.start]
            ) from None
        return message


def describe_distribution(dist: Any) -> Described:
    """Name, version and compatibility of ``dist``; unreadable metadata makes it ``broken``.

    Never raises for a distribution's own fault: whatever its metadata does wrong is the
    ``problem`` of its entry points, and the others are not affected.
    """
    name = version = None
    try:
        metadata = _metadata(dist)
        name, version = metadata.get("Name"), metadata.get("Version")
        # ``Requires-Dist`` from the metadata just read; ``dist.requires`` (which reads it
        # again) only for a distribution without any, such as an egg-info's ``requires.txt``.
        lines = metadata.get_all("Requires-Dist") or dist.requires or []
        on_host = host_requirements(lines)
        requires = ", ".join(r.split(";")[0].strip() for r in on_host) or None
        problem = None
        if on_host and normalize_distribution(name or "") != HOST_DISTRIBUTION:
            problem = incompatibility(tuple(on_host), host_version())
    except _NotUtf8 as exc:
        return Described(exc.name, exc.version, None, "broken", str(exc))
    except Exception as exc:  # one distribution's bad metadata never stops the scan
        problem = f"its metadata cannot be read: {describe_exception(exc)}"
        return Described(name, version, None, "broken", problem)
    return Described(name, version, requires, "incompatible" if problem else "ok", problem)


# -- what the scan holds ------------------------------------------------------------------------


class Source:
    """A distribution that registers something in a host group; its metadata is read on need.

    Its metadata is read the first time one of its entry points is listed or looked up, then
    kept with the scan. A source from a kept listing (``host._discovery_cache``) has no
    distribution (``dist`` is ``None``) and is described already.
    """

    __slots__ = ("_described", "dist")

    def __init__(self, dist: Any, described: Described | None = None) -> None:
        self.dist = dist
        self._described = described

    @property
    def is_described(self) -> bool:
        """Whether its metadata has been read (a kept listing needs every source described)."""
        return self._described is not None

    def described(self) -> Described:
        """What its metadata says, read now if not yet."""
        # Reading twice from two threads gives equal results: no lock needed.
        if self._described is None:
            self._described = describe_distribution(self.dist)
        return self._described


class Entry:
    """One scanned entry point: group, name and value, and the distribution it comes from.

    :attr:`info` (which needs the distribution's metadata) is made on first use.
    """

    __slots__ = ("_info", "group", "name", "source", "value")

    def __init__(self, group: str, name: str, value: str, source: Source) -> None:
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
        """Import the entry point and return the object it names (``EntryPoint.load()``)."""
        import importlib_metadata

        return importlib_metadata.EntryPoint(self.name, self.value, self.group).load()


@dataclass(frozen=True)
class Scan:
    """Every entry point in the host's groups, in ``sys.path`` order, and by (group, name)."""

    entries: tuple[Entry, ...]
    by_name: Mapping[tuple[str, str], tuple[Entry, ...]]


def indexed(entries: list[Entry]) -> Scan:
    """A :class:`Scan` of ``entries``."""
    by_name: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        by_name.setdefault((entry.group, entry.name), []).append(entry)
    return Scan(tuple(entries), {key: tuple(value) for key, value in by_name.items()})
