"""The listing cache: a complete listing, kept between processes while nothing it read changed.

Reading every distribution's metadata through ``importlib_metadata`` (its e-mail parser, and
``packaging`` for the requirements on ``host``) costs about 0.1 ms per distribution, which
hundreds of installed distributions notice at every ``host plugins``. So when a listing has
described every entry point, the scan's result is kept in a small JSON file, and a later
process whose :func:`fingerprint` is the same uses it instead of reading any metadata.

* **Where**: ``$XDG_CACHE_HOME/host/discovery/`` (else ``~/.cache/host/discovery/``), one file
  per interpreter and ``sys.path``; at most :data:`FILES_KEPT` files are kept.
* **Off**: ``HOST_DISCOVERY_CACHE=0`` (or ``false``, ``no``, ``off``): nothing is read or written.
* **The fingerprint** is a digest of the Python version, the host's version, and for each
  ``sys.path`` entry (made absolute): whether it exists, a file's state (a zip), a directory's
  ``*.dist-info`` / ``*.egg-info`` names and the state (inode, size, modification and change
  times) of the files the scan reads in each: ``METADATA`` and ``entry_points.txt``;
  ``PKG-INFO``, ``entry_points.txt`` and ``requires.txt`` of an egg-info. Installing,
  removing, upgrading or editing a distribution changes it.
* **Never a wrong answer**: a listing is not kept when any of those files changed in the last
  :data:`SETTLE_SECONDS` (a file system's clock is coarse, so a change within one tick of the
  listing could go unseen); a process with a distribution finder other than the path finders
  neither reads nor writes the cache; a file that is not the current user's, is writable by
  others, or does not parse as a listing is ignored (and rewritten by the next listing).
* **Never an error**: a cache directory that cannot be made, read or written is not used,
  silently.

Switches are applied after the cache, as after a scan: they are not part of what is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from host._discovery_records import STATUSES, Described, Entry, Scan, Source, indexed
from host._plugin_api import host_version

__all__ = [
    "CACHE_ENV",
    "FILES_KEPT",
    "SETTLE_SECONDS",
    "Fingerprint",
    "cache_directory",
    "fingerprint",
    "load",
    "save",
]

CACHE_ENV = "HOST_DISCOVERY_CACHE"
#: How many listings (interpreters and ``sys.path`` values) are kept.
FILES_KEPT = 32
#: A listing is kept only if no file it depends on changed in this many seconds.
SETTLE_SECONDS = 2.0
_FORMAT = 2
_DIST_INFO_FILES = ("METADATA", "entry_points.txt")
_EGG_INFO_FILES = ("PKG-INFO", "entry_points.txt", "requires.txt")
_OFF = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Fingerprint:
    """What the scan's result depends on, as a digest.

    Attributes:
        digest: the digest (equal digests: the same distributions and metadata files).
        settled: whether no file it covers changed in the last :data:`SETTLE_SECONDS`
            (only a settled fingerprint's listing is kept).
    """

    digest: str
    settled: bool


def cache_directory() -> str | None:
    """Where listings are kept, or ``None`` when ``HOST_DISCOVERY_CACHE`` switches it off."""
    if os.environ.get(CACHE_ENV, "").strip().lower() in _OFF:
        return None
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "host", "discovery")


def _only_path_finders() -> bool:
    """Whether distributions come from the standard path finders only (what is fingerprinted)."""
    from importlib.machinery import PathFinder

    backport = sys.modules.get("importlib_metadata")  # it adds its own path finder when imported
    ours = getattr(backport, "MetadataPathFinder", PathFinder)
    return all(
        finder is PathFinder
        or isinstance(finder, ours)
        or getattr(finder, "find_distributions", None) is None
        for finder in sys.meta_path
    )


def _state(path: str) -> tuple[int, int, int, int] | None:
    """Inode, size, modification and change time of ``path``; ``None``: it does not exist."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def fingerprint() -> Fingerprint | None:
    """The fingerprint of what ``sys.path`` holds now (see the module's docstring).

    ``None``: another distribution finder is installed, and the cache is not used.
    """
    if not _only_path_finders():
        return None
    parts: list[object] = [_FORMAT, sys.version, host_version()]
    newest = 0
    for entry in sys.path:
        where = os.path.abspath(entry or ".")
        found = _state(where)
        if found is None or not os.path.isdir(where):
            parts.append((where, found))
            newest = max(newest, found[2], found[3]) if found else newest
            continue
        try:
            children = sorted(os.listdir(where))
        except OSError:
            parts.append((where, "unlisted"))
            continue
        parts.append(where)
        for child in children:
            low = child.lower()
            if low.endswith(".dist-info"):
                names: tuple[str, ...] = _DIST_INFO_FILES
            elif low.endswith(".egg-info") or low == "egg-info":  # a directory, or a file
                names = ("", *_EGG_INFO_FILES)
            else:
                continue
            path = os.path.join(where, child)
            states = [_state(os.path.join(path, name) if name else path) for name in names]
            parts.append((child, states))
            for state in states:
                if state is not None:
                    newest = max(newest, state[2], state[3])
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()
    settled = newest < time.time_ns() - int(SETTLE_SECONDS * 1e9)
    return Fingerprint(digest, settled)


def _cache_file(directory: str) -> str:
    key = repr((sys.executable, [os.path.abspath(entry or ".") for entry in sys.path]))
    name = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    return os.path.join(directory, name + ".json")


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError("not a string")


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError("not a string")


def load(found: Fingerprint) -> Scan | None:
    """The listing kept for this interpreter and ``sys.path``, if its fingerprint is ``found``.

    ``None``: none is kept, it is another fingerprint's, or it cannot be used (not the current
    user's file, writable by others, not a listing).
    """
    directory = cache_directory()
    if directory is None:
        return None
    try:
        return _read(_cache_file(directory), found)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _read(path: str, found: Fingerprint) -> Scan | None:
    """The listing in ``path`` if it is ``found``'s; raises whatever a bad file makes it raise."""
    with open(path, "rb") as file:
        owner = os.fstat(file.fileno())
        if owner.st_uid != os.getuid() or owner.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ValueError("not the current user's own file")
        data = json.loads(file.read())
    if data["format"] != _FORMAT or data["fingerprint"] != found.digest:
        return None
    sources = []
    for name, version, requires, status, problem in data["sources"]:
        if status not in STATUSES:
            raise ValueError(f"not a status: {status!r}")
        about = Described(
            _optional_str(name), _optional_str(version), _optional_str(requires), status,
            _optional_str(problem),
        )
        sources.append(Source(None, about))
    entries = []
    for group, name, value, index in data["entries"]:
        if not isinstance(index, int) or index < 0:
            raise ValueError(f"not a source: {index!r}")
        entries.append(Entry(_str(group), _str(name), _str(value), sources[index]))
    return indexed(entries)


def save(scan: Scan, found: Fingerprint) -> None:
    """Keep ``scan`` for later processes, if every entry point of it is described.

    Not kept when ``found`` is not settled (see :data:`SETTLE_SECONDS`). Nothing is raised or
    logged when the cache directory cannot be made or written.
    """
    directory = cache_directory()
    if directory is None or not found.settled:
        return
    indexes: dict[int, int] = {}
    sources: list[list[object]] = []
    entries: list[list[object]] = []
    for entry in scan.entries:
        if not entry.source.is_described:
            return  # not all read: nothing is kept
        about = entry.source.described()
        index = indexes.setdefault(id(entry.source), len(sources))
        if index == len(sources):
            sources.append(
                [about.name, about.version, about.requires_host, about.status, about.problem]
            )
        entries.append([entry.group, entry.name, entry.value, index])
    text = json.dumps(
        {"format": _FORMAT, "fingerprint": found.digest, "sources": sources, "entries": entries}
    )
    temporary = None
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, _cache_file(directory))
        temporary = None
        _prune(directory)
    except OSError:
        pass
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.remove(temporary)


def _prune(directory: str) -> None:
    """Keep only the :data:`FILES_KEPT` most recently written listings."""
    files = [os.path.join(directory, name) for name in os.listdir(directory)]
    if len(files) <= FILES_KEPT:
        return
    for path in sorted(files, key=lambda p: (_state(p) or (0, 0, 0, 0))[2])[:-FILES_KEPT]:
        with contextlib.suppress(OSError):
            os.remove(path)
