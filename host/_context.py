"""The contexts handed to resources (InitResourceContext) and to assets (AssetExecutionContext),
and the :class:`Runtime` they carry: what they and the built-in plugin see of the run."""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

if TYPE_CHECKING:
    import logging

    import pluggy

    from host._events import ResourcePhase

__all__ = ["AssetExecutionContext", "InitResourceContext", "Resources", "Runtime"]

T = TypeVar("T")


class Runtime(Protocol):
    """The run in this process, as the contexts and the built-in plugin use it.

    Implemented by :class:`host._runtime.ProcessRuntime` (one per run per process).
    """

    @property
    def run_id(self) -> str:
        """The run's id."""
        ...

    @property
    def hook(self) -> pluggy.HookRelay:
        """The run's hook relay in this process."""
        ...

    def run_async(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` to completion the way this run runs awaitables."""
        ...

    def resolve(self, value: Any) -> Any:
        """``value``, or its result if it is awaitable."""
        ...

    def phase(self, phase: ResourcePhase, key: str, call: Callable[[], T]) -> T:
        """Run one resource phase, timed, emitting its event."""
        ...


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
    _runtime: Runtime | None = field(default=None, repr=False)

    @functools.cached_property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger adapter tagged with ``run_id`` and ``resource_key``."""
        return _adapter(run_id=self.run_id, resource_key=self.resource_key)


class Resources:
    """``context.resources``: the resources an asset uses, up, by key (Dagster's namespace).

    Attribute access (``context.resources.db``) and item access (``context.resources["db"]``)
    both work; ``"db" in context.resources``, ``len`` and iteration over the keys too. An
    unknown key is an ``AttributeError``/``KeyError`` that says how to declare it.
    """

    __slots__ = ("_owner", "_values")

    def __init__(self, values: Mapping[str, Any], owner: str = "") -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_owner", owner)

    def _missing(self, key: str) -> str:
        known = sorted(self._values) or "none"
        return (
            f"{self._owner or 'this context'} has no resource {key!r} in context.resources "
            f"(it has: {known}). Declare it with @asset(required_resource_keys={{{key!r}}}) or "
            f"a parameter, and bind a resource to {key!r}."
        )

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(self._missing(key)) from None

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(self._missing(key)) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("context.resources is read-only")

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __dir__(self) -> list[str]:
        return sorted(self._values)

    def __repr__(self) -> str:
        return f"<Resources {', '.join(sorted(self._values)) or '(none)'}>"


@dataclass(frozen=True, eq=False)
class AssetExecutionContext:
    """What an asset receives as its ``context`` parameter.

    Attributes:
        run_id: the run's id.
        asset_key: the asset being computed.
        executor: the name of the executor running the run.
        pid: the process running the asset.
    """

    #: Made by :func:`host.build_asset_context`: calling an asset with it brings resources up.
    _host_direct: ClassVar[bool] = False

    run_id: str
    asset_key: str
    executor: str = "in_process"
    pid: int = field(default_factory=os.getpid)
    #: The run's per-process runtime (event loop, hooks); for the host's built-in plugin.
    _runtime: Runtime | None = field(default=None, repr=False)
    #: Resource key -> the resource up, for every resource the asset takes.
    _resources: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def resources(self) -> Resources:
        """The resources the asset takes (parameters and ``required_resource_keys``), up."""
        return Resources(self._resources, f"asset {self.asset_key!r}")

    @functools.cached_property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger adapter tagged with ``run_id`` and ``asset_key``."""
        return _adapter(run_id=self.run_id, asset_key=self.asset_key)
