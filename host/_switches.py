"""Switching plugins off (and hook plugins on) without uninstalling them.

The environment (``HOST_DISABLE_PLUGINS``, ``HOST_DISABLE_PLUGIN_AUTOLOAD``,
``HOST_ENABLE_PLUGINS``) gives the default :class:`PluginSwitches`; a run config's ``[plugins]``
table adds to them for its run through :func:`use_switches`, a context variable (so parallel runs
in threads do not see each other's). Discovery applies the switches before importing anything;
the switches see an entry point as plain values (group, name, distribution), so this module knows
nothing of discovery.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace

from host._plugin_api import PLUGINS_GROUP, normalize_distribution

__all__ = [
    "AUTOLOAD_ENV",
    "DISABLE_ENV",
    "ENABLE_ENV",
    "PluginSwitches",
    "current_switches",
    "matches",
    "qualified",
    "use_switches",
]

#: Comma-separated entry-point names, distribution names or ``DIST:NAME`` never imported.
DISABLE_ENV = "HOST_DISABLE_PLUGINS"
#: ``1`` (or ``true``/``yes``): no third-party hook plugin (``host.plugins``) loads by itself.
AUTOLOAD_ENV = "HOST_DISABLE_PLUGIN_AUTOLOAD"
#: Comma-separated hook plugins that load even when autoload is off (like ``PYTEST_PLUGINS``).
ENABLE_ENV = "HOST_ENABLE_PLUGINS"


def qualified(name: str, distribution: str | None) -> str:
    """The switch that names only entry point ``name`` of ``distribution``: ``DIST:NAME``."""
    if distribution is None:
        return name
    return f"{normalize_distribution(distribution)}:{name}"


def matches(switch: str, name: str, distribution: str | None) -> bool:
    """Whether ``switch`` names entry point ``name`` of ``distribution``.

    A switch is an entry-point name (in every group and distribution), a distribution name
    (every entry point it registers), or ``DIST:NAME`` (entry point ``NAME`` of distribution
    ``DIST`` only: the way to switch off one of two distributions' entry points of one name).
    """
    dist = normalize_distribution(distribution) if distribution else None
    wanted_dist, colon, wanted_name = switch.partition(":")
    if colon:
        return wanted_name.strip() == name and normalize_distribution(wanted_dist.strip()) == dist
    return switch == name or (dist is not None and normalize_distribution(switch) == dist)


def _split(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class PluginSwitches:
    """Which entry points may load: the environment plus the run config's ``[plugins]``.

    A name in ``disable`` matches an entry-point name (in any group), a distribution name
    (every entry point it registers), or ``DIST:NAME`` (one distribution's entry point ``NAME``;
    see :func:`matches`). Disabling wins over enabling. ``enable`` names hook plugins
    that load even when autoload is off (like ``pytest -p NAME``).

    Attributes:
        disable: entry-point or distribution names never imported.
        enable: hook plugins loaded even when ``autoload`` is false.
        autoload: whether installed hook plugins load by themselves.
    """

    disable: frozenset[str] = frozenset()
    enable: frozenset[str] = frozenset()
    autoload: bool = True

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> PluginSwitches:
        """The switches ``HOST_DISABLE_PLUGINS``, ``HOST_DISABLE_PLUGIN_AUTOLOAD`` and
        ``HOST_ENABLE_PLUGINS`` set."""
        environ = os.environ if environ is None else environ
        autoload_off = environ.get(AUTOLOAD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
        return cls(
            disable=_split(environ.get(DISABLE_ENV, "")),
            enable=_split(environ.get(ENABLE_ENV, "")),
            autoload=not autoload_off,
        )

    def environ(self) -> dict[str, str]:
        """The environment variables that give these switches to another process."""
        return {
            DISABLE_ENV: ",".join(sorted(self.disable)),
            ENABLE_ENV: ",".join(sorted(self.enable)),
            AUTOLOAD_ENV: "" if self.autoload else "1",
        }

    def merged(self, disable: Collection[str] = (), enable: Collection[str] = ()) -> PluginSwitches:
        """These switches with more names disabled and enabled."""
        return replace(
            self, disable=self.disable | frozenset(disable), enable=self.enable | frozenset(enable)
        )

    def disabled_reason(self, group: str, name: str, distribution: str | None) -> str | None:
        """Why entry point ``name`` of ``group`` from ``distribution`` must not be imported
        under these switches, or ``None``."""
        for switch in sorted(self.disable):
            if matches(switch, name, distribution):
                return (
                    f"disabled by name {switch!r} (in {DISABLE_ENV} or the run config's "
                    f"[plugins] disable)"
                )
        if group == PLUGINS_GROUP and not self.autoload and name not in self.enable:
            return (
                f"hook plugin autoload is off ({AUTOLOAD_ENV}=1); name it in {ENABLE_ENV} or "
                f"the run config's [plugins] enable to load it"
            )
        return None


_switches: ContextVar[PluginSwitches | None] = ContextVar("host_plugin_switches", default=None)


def current_switches() -> PluginSwitches:
    """The switches in effect: those set by :func:`use_switches`, else the environment's."""
    return _switches.get() or PluginSwitches.from_environ()


@contextlib.contextmanager
def use_switches(switches: PluginSwitches) -> Iterator[PluginSwitches]:
    """Make ``switches`` the ones in effect in this context (thread / task) for the block."""
    token = _switches.set(switches)
    try:
        yield switches
    finally:
        _switches.reset(token)
