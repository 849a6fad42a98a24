"""The plugin contract's identity: its version, its entry-point groups, and compatibility.

A plugin distribution states which hosts it supports with an ordinary requirement on ``host`` in
its metadata (``dependencies = ["host>=0.1,<0.2"]`` in its ``pyproject.toml``): pip enforces it at
install time, and :func:`incompatibility` checks it again at discovery, from metadata alone, since
an environment can still break it (``--no-deps``, editable installs, upgrading the host later).
``specs/plugins.md`` says which host releases implement which :data:`PLUGIN_API_VERSION`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

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


@functools.lru_cache(maxsize=4096)
def normalize_distribution(name: str) -> str:
    """A distribution name as PEP 503 compares it (``Host_Plugin.SQL`` is ``host-plugin-sql``)."""
    return _SEPARATORS.sub("-", name).lower()


_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*"
    r"(?P<url>@[^;]*)?\(?(?P<spec>[^;()]*)\)?\s*(?:;(?P<marker>.*))?$"
)
_CLAUSE = re.compile(r"^\s*(~=|===|==|!=|<=|>=|<|>)\s*(\S+?)\s*$")
_RELEASE = re.compile(r"^\d+(?:\.\d+)*$")


def _release(text: str, width: int) -> tuple[int, ...]:
    parts = tuple(int(part) for part in text.split("."))
    return parts + (0,) * (width - len(parts))


def _simple_clause(op: str, spec: str, version: str) -> bool | None:
    """PEP 440 for a plain release ``version`` and a plain clause; ``None``: not plain."""
    if op == "===":
        return version == spec
    wildcard = spec.endswith(".*") and op in {"==", "!="}
    target = spec[:-2] if wildcard else spec
    if not _RELEASE.match(target) or not _RELEASE.match(version):
        return None
    width = max(len(target.split(".")), len(version.split(".")))
    have, want = _release(version, width), _release(target, width)
    if wildcard:
        size = len(target.split("."))
        same = have[:size] == want[:size]
        return same if op == "==" else not same
    if op == "~=":
        size = len(target.split("."))
        if size < 2:
            return None
        return have >= want and have[: size - 1] == want[: size - 1]
    compare: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
    }
    return compare[op](have, want)


def specifier_contains(specifier: str, version: str) -> bool:
    """Whether ``version`` satisfies the PEP 440 ``specifier`` (pre-releases allowed).

    Plain releases and clauses (the usual ``>=0.1,<0.2``) are compared here, without importing
    anything; anything else (pre-releases, post-releases, local versions) goes to ``packaging``.
    """
    clauses = [part for part in specifier.split(",") if part.strip()]
    results: list[bool] = []
    for clause in clauses:
        match = _CLAUSE.match(clause)
        result = _simple_clause(match.group(1), match.group(2), version) if match else None
        if result is None:
            from packaging.specifiers import SpecifierSet

            return SpecifierSet(specifier).contains(version, prereleases=True)
        results.append(result)
    return all(results)


def host_requirements(requires: list[str]) -> list[str]:
    """The unconditional requirements on ``host`` among ``Requires-Dist`` lines."""
    found: list[str] = []
    for line in requires:
        if line.lstrip()[:4].lower() != "host":  # cheap: most lines are about other projects
            continue
        match = _REQUIREMENT.match(line)
        if not match or normalize_distribution(match.group("name")) != HOST_DISTRIBUTION:
            continue
        marker = (match.group("marker") or "").strip()
        if marker:
            if "extra" in marker:
                continue  # an optional dependency: says nothing about this install
            from packaging.markers import Marker

            if not Marker(marker).evaluate():
                continue
        found.append(line.strip())
    return found


@functools.lru_cache(maxsize=256)
def incompatibility(requirements: tuple[str, ...], host_version: str) -> str | None:
    """Why a distribution with these requirements on ``host`` cannot load here, or ``None``."""
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        assert match is not None
        spec = match.group("spec").strip()
        if spec and not specifier_contains(spec, host_version):
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
