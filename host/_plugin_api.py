"""The plugin contract's identity: its version, its entry-point groups, and compatibility.

A plugin distribution states which hosts it supports with an ordinary requirement on ``host`` in
its metadata (``dependencies = ["host>=0.1,<0.2"]`` in its ``pyproject.toml``): pip enforces it at
install time, and :func:`incompatibility` checks it again at discovery, from metadata alone, since
an environment can still break it (``--no-deps``, editable installs, upgrading the host later).
Requirements, markers and version ranges are read by ``packaging`` (PEP 508 and PEP 440), imported
only when a distribution states a requirement on ``host``. ``specs/plugins.md`` says which host
releases implement which :data:`PLUGIN_API_VERSION`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

__all__ = [
    "EXECUTORS_GROUP",
    "GROUPS",
    "HOST_DISTRIBUTION",
    "PLUGINS_GROUP",
    "PLUGIN_API_VERSION",
    "RESOURCES_GROUP",
    "host_requirements",
    "host_version",
    "incompatibility",
    "normalize_distribution",
    "specifier_contains",
]

#: The version of the plugin contract (entry-point groups, ``ConfigurableResource``,
#: ``Executor``, the hook specifications) this host implements. Major: a plugin built for another
#: major may break; minor: the contract grew compatibly. ``specs/plugins.md`` says which host
#: releases implement which plugin API version.
PLUGIN_API_VERSION = "1.0"

#: Resource types: name -> a ``host.ConfigurableResource`` subclass.
RESOURCES_GROUP = "host.resources"
#: Executors: name -> a ``host.Executor`` subclass.
EXECUTORS_GROUP = "host.executors"
#: Hook plugins: name -> a module or object with ``@host.hookimpl`` functions.
PLUGINS_GROUP = "host.plugins"
#: Every group the host reads, in the order listings show them.
GROUPS = (RESOURCES_GROUP, EXECUTORS_GROUP, PLUGINS_GROUP)

#: The distribution of the host itself (its entry points are not version-checked).
HOST_DISTRIBUTION = "host"


_SEPARATORS = re.compile(r"[-_.]+")
_LEADING_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@functools.lru_cache(maxsize=4096)
def normalize_distribution(name: str) -> str:
    """A distribution name as PEP 503 compares it (``Host_Plugin.SQL`` is ``host-plugin-sql``).

    The same as ``packaging.utils.canonicalize_name``, without importing ``packaging`` for the
    names that every listing and switch compares.
    """
    return _SEPARATORS.sub("-", name).lower()


def specifier_contains(specifier: str, version: str) -> bool:
    """Whether ``version`` satisfies the PEP 440 ``specifier`` (pre-releases allowed)."""
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(specifier).contains(version, prereleases=True)


def host_requirements(requires: Iterable[str]) -> list[str]:
    """The unconditional requirements on ``host`` among ``Requires-Dist`` lines, as written.

    A requirement with an ``extra`` marker (an optional dependency) says nothing about this
    install; another marker is evaluated here. A line that does not parse is an error only if
    it names ``host``.

    Raises:
        packaging.requirements.InvalidRequirement: a requirement on ``host`` does not parse.
    """
    found: list[str] = []
    for line in requires:
        if line.lstrip()[:4].lower() != "host":  # cheap: most lines are about other projects
            continue
        leading = _LEADING_NAME.match(line)
        if leading is None or normalize_distribution(leading.group(1)) != HOST_DISTRIBUTION:
            continue
        from packaging.requirements import Requirement

        marker = Requirement(line).marker
        if marker is not None and ("extra" in str(marker) or not marker.evaluate()):
            continue
        found.append(line.strip())
    return found


@functools.lru_cache(maxsize=256)
def incompatibility(requirements: tuple[str, ...], host_version: str) -> str | None:
    """Why a distribution with these requirements on ``host`` cannot load here, or ``None``."""
    from packaging.requirements import Requirement

    for requirement in requirements:
        if not Requirement(requirement).specifier.contains(host_version, prereleases=True):
            return (
                f"it requires {requirement.split(';')[0].strip()} but host {host_version} "
                f"(plugin API {PLUGIN_API_VERSION}) is installed; install a version of the "
                f"plugin built for this host, or a host it supports"
            )
    return None


def host_version() -> str:
    """The installed host's version (``host.__version__``)."""
    from host._version import __version__

    return __version__
