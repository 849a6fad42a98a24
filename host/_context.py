"""The contexts handed to resources (InitResourceContext) and to assets (AssetExecutionContext)."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

__all__ = ["AssetExecutionContext", "InitResourceContext"]


def _adapter(**extra: Any) -> logging.LoggerAdapter[logging.Logger]:
    """A logger adapter on the ``host`` logger (``logging`` is imported when a log is used)."""
    import logging

    return logging.LoggerAdapter(logging.getLogger("host"), extra)


@dataclass(frozen=True, eq=False)
class InitResourceContext:
    """What a resource's lifecycle methods receive.

    Attributes:
        resource_key: the key the resource is bound to in this run (``"parent.field"`` for a
            nested dependency that has no key of its own).
        resource_config: the resource's configuration, secrets masked.
        run_id: the run's id.
        resources: the resource's dependencies, already up, by field name.
        executor: the name of the executor running the run.
        pid: the process bringing the resource up.
    """

    resource_key: str
    resource_config: Mapping[str, Any]
    run_id: str
    resources: Mapping[str, Any] = field(default_factory=dict)
    executor: str = "in_process"
    pid: int = field(default_factory=os.getpid)
    #: The run's per-process runtime (event loop, hooks); for the host's built-in plugin.
    _runtime: Any = field(default=None, repr=False)

    @functools.cached_property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger adapter tagged with ``run_id`` and ``resource_key``."""
        return _adapter(run_id=self.run_id, resource_key=self.resource_key)


@dataclass(frozen=True, eq=False)
class AssetExecutionContext:
    """What an asset receives as its ``context`` parameter.

    Attributes:
        run_id: the run's id.
        asset_key: the asset being computed.
        executor: the name of the executor running the run.
        pid: the process running the asset.
    """

    run_id: str
    asset_key: str
    executor: str = "in_process"
    pid: int = field(default_factory=os.getpid)
    #: The run's per-process runtime (event loop, hooks); for the host's built-in plugin.
    _runtime: Any = field(default=None, repr=False)

    @functools.cached_property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger adapter tagged with ``run_id`` and ``asset_key``."""
        return _adapter(run_id=self.run_id, asset_key=self.asset_key)
