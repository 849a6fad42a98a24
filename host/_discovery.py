"""Entry-point discovery: one scan per process, listing as data, import only on use.

The host reads three entry-point groups (:data:`GROUPS`) from the installed distributions'
metadata through ``importlib_metadata``'s public API, once per process
(:func:`reset_discovery` forgets the scan, for tests and long-lived processes that install
packages). Listing (:func:`discover_plugins`) reads distribution metadata only and never imports
plugin code. :func:`load_entry_point` imports exactly one entry point, checks what it gives, and
keeps the result for the process.

This module is what the rest of the host imports; each part lives in its own module:

* ``host._discovery_records``: :class:`PluginInfo`, and reading one distribution's metadata
  (name, version, the requirement on ``host``) on need;
* ``host._discovery_scan``: the scan, ``importlib_metadata.entry_points()`` kept to the host's
  groups (no ``METADATA`` read);
* ``host._discovery_cache``: the listing cache, a complete listing kept between processes while
  ``sys.path`` and the metadata files read are unchanged (``HOST_DISCOVERY_CACHE=0``: off);
* ``host._discovery_listing``: the process's scan, listing, lookup, switch names;
* ``host._discovery_load``: importing one entry point and checking it against its group.

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
of both.
"""

from __future__ import annotations

from host._discovery_cache import CACHE_ENV
from host._discovery_listing import (
    discover_plugins,
    lookup,
    names_in,
    reset_discovery,
    suggest,
    switch_name,
)
from host._discovery_load import (
    check_entry_point,
    describe_object,
    load_entry_point,
    register_check,
)
from host._discovery_records import PluginInfo, Status
from host._plugin_api import (
    EXECUTORS_GROUP,
    GROUPS,
    PLUGIN_API_VERSION,
    PLUGINS_GROUP,
    RESOURCES_GROUP,
)
from host._switches import (
    AUTOLOAD_ENV,
    DISABLE_ENV,
    ENABLE_ENV,
    PluginSwitches,
    current_switches,
    use_switches,
)

__all__ = [
    "AUTOLOAD_ENV",
    "CACHE_ENV",
    "DISABLE_ENV",
    "ENABLE_ENV",
    "EXECUTORS_GROUP",
    "GROUPS",
    "PLUGINS_GROUP",
    "PLUGIN_API_VERSION",
    "RESOURCES_GROUP",
    "PluginInfo",
    "PluginSwitches",
    "Status",
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
