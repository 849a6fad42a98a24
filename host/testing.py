"""Test helpers for resource and plugin authors: the run's lifecycle, without a run.

The helpers bring resources up through the same machinery as ``run_assets`` in one process
(the hooks, dependencies first, fresh copies, EnvVar reading, reverse-order teardown), so a
plugin's tests exercise what production does:

* :func:`open_resource` / :func:`open_resources`: ``with`` (or ``async with``) blocks in which
  resources are up, giving what assets would receive; setup errors are
  :class:`host.ResourceSetupError`, as in a run.
* :func:`build_init_resource_context`: a context for calling one lifecycle method directly.
* :func:`build_asset_context`: a context for calling an asset directly (as ``host`` exports it).
* :func:`register_plugin`: a temporary hook plugin for a block of a test.
* :func:`check_resource_class`: the conformance check a plugin's test suite calls; it raises
  :class:`ResourceCheckError` (an ``AssertionError``) naming each failed check.

The ``host`` pytest plugin (loaded automatically once ``host`` is installed) wraps these as
fixtures: ``host_resource``, ``host_resources``, ``host_plugin``, ``host_executor`` and
``host_run``, and the marker ``@pytest.mark.host_executors(...)``. See
``specs/authors-guide.md``.
"""

from __future__ import annotations

from host._conformance import ResourceCheckError, check_resource_class
from host._invocation import build_asset_context
from host._resource_scope import (
    ResourceScope,
    build_init_resource_context,
    open_resource,
    open_resources,
)
from host._scoped_plugins import register_plugin

__all__ = [
    "ResourceCheckError",
    "ResourceScope",
    "build_asset_context",
    "build_init_resource_context",
    "check_resource_class",
    "open_resource",
    "open_resources",
    "register_plugin",
]
