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

__all__ = [
    "AssetExecutionContext",
    "IAttachDifferentObjectToOpContext",
    "InitResourceContext",
    "Resources",
    "ResourcesView",
    "Runtime",
]

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


def _adapter(name: str, **extra: Any) -> logging.LoggerAdapter[logging.Logger]:
    """``context.log``: a logger adapter on logger ``name`` (``logging`` is imported when a log
    is used) whose records, in a step of a run, are that step's at every level."""
    import logging

    return _step_log()(logging.getLogger(name), extra)


@functools.cache
def _step_log() -> type[logging.LoggerAdapter[logging.Logger]]:
    """The class of ``context.log`` (made once, when a log is first used)."""
    import logging

    class StepLog(logging.LoggerAdapter[logging.Logger]):
        """In a step of a run, every record is captured as the step's ``LogRecorded`` event,
        whatever the logger's level; it is handled by ``logging`` as well if the logger is
        enabled for its level. Outside a run, a plain logger adapter."""

        def isEnabledFor(self, level: int) -> bool:
            from host._events import current_step

            return current_step() is not None or self.logger.isEnabledFor(level)

        def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
            from host._events import current_step

            step = current_step()
            if step is None:
                super().log(level, msg, *args, **kwargs)
                return
            logger = self.logger
            if not isinstance(logger, logging.Logger):
                super().log(level, msg, *args, **kwargs)
                return
            msg, processed = self.process(msg, kwargs)
            options = dict(processed)
            options["stacklevel"] = int(options.get("stacklevel", 1)) + 1  # the caller's line
            record = _make_record(logger, level, msg, args, options)
            step.record(record)
            if logger.isEnabledFor(level):
                record.host_captured = True  # the capture handler has it already
                logger.handle(record)

    return StepLog


def _make_record(
    logger: logging.Logger, level: int, msg: object, args: tuple[object, ...], kwargs: Any
) -> logging.LogRecord:
    """The record ``logger.log(level, msg, *args, **kwargs)`` would make."""
    import sys

    exc_info = kwargs.get("exc_info")
    if exc_info:
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        elif not isinstance(exc_info, tuple):
            exc_info = sys.exc_info()
    stacklevel = int(kwargs.get("stacklevel", 1))
    try:
        fn, lno, func, sinfo = logger.findCaller(bool(kwargs.get("stack_info")), stacklevel + 1)
    except ValueError:
        fn, lno, func, sinfo = "(unknown file)", 0, "(unknown function)", None
    return logger.makeRecord(
        logger.name, level, fn, lno, msg, args, exc_info or None, func,
        kwargs.get("extra"), sinfo,
    )


@dataclass(frozen=True, eq=False)
class InitResourceContext:
    """What a resource's lifecycle methods receive.

    Attributes:
        resource_key: the key the resource is bound to in this run (``"parent.field"`` for a
            nested dependency that has no key of its own).
        resource_config: the resource's configuration, secrets masked; for a function
            resource (``@resource``), its validated config with values read from the
            environment (it has no other way to see them). Enum members show as their values.
        run_id: the run's id.
        resources: the resource's dependencies, already up: by field name, or for a function
            resource by key (its ``required_resource_keys``); also as attributes
            (``context.resources.db``).
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

    def __post_init__(self) -> None:
        if not isinstance(self.resources, ResourcesView):
            owner = f"resource {self.resource_key!r}"
            object.__setattr__(self, "resources", ResourcesView(self.resources, owner))

    @functools.cached_property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger adapter on logger ``host.resource``, tagged with ``run_id`` and
        ``resource_key``; in a resource phase of a run, each record is also the resource's
        ``LogRecorded`` event, at every level (``specs/logs.md``)."""
        return _adapter("host.resource", run_id=self.run_id, resource_key=self.resource_key)


class IAttachDifferentObjectToOpContext:
    """Dagster's interface for a resource whose assets see another object in
    ``context.resources`` than in a parameter: a parameter typed with the resource receives
    the resource, ``context.resources.KEY`` what :meth:`get_object_to_set_on_execution_context`
    returns (a migration aid: code written for the object keeps working beside code written
    for the resource)."""

    def get_object_to_set_on_execution_context(self) -> Any:
        """The object ``context.resources`` gives for this resource. Required.

        Raises:
            NotImplementedError: the subclass does not define it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} is an IAttachDifferentObjectToOpContext: define "
            f"get_object_to_set_on_execution_context(self) returning what context.resources "
            f"gives for it."
        )


def attached(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as an asset's ``context.resources`` shows them: each
    :class:`IAttachDifferentObjectToOpContext` as the object it attaches."""
    return {
        key: value.get_object_to_set_on_execution_context()
        if isinstance(value, IAttachDifferentObjectToOpContext)
        else value
        for key, value in values.items()
    }


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


class ResourcesView(Resources, Mapping[str, Any]):
    """An :class:`InitResourceContext`'s ``resources``: :class:`Resources` that is also a
    mapping (a resource class's dependencies by field name; a function resource's
    ``required_resource_keys`` by key)."""

    __slots__ = ()

    def _missing(self, key: str) -> str:
        known = sorted(self._values) or "none"
        return (
            f"{self._owner or 'this resource'} has no resource {key!r} in context.resources "
            f"(it has: {known}). A function resource names the keys it uses in "
            f"required_resource_keys; a resource class receives the resources its fields hold."
        )

    def __reduce__(self) -> tuple[type[ResourcesView], tuple[dict[str, Any], str]]:
        return (ResourcesView, (dict(self._values), self._owner))


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
        """The resources the asset takes (parameters and ``required_resource_keys``), up; an
        :class:`IAttachDifferentObjectToOpContext` as the object it attaches."""
        return Resources(attached(self._resources), f"asset {self.asset_key!r}")

    @functools.cached_property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger adapter on logger ``host.asset``, tagged with ``run_id`` and ``asset_key``;
        while the asset runs, each record is also the asset's ``LogRecorded`` event, at every
        level (``specs/logs.md``)."""
        return _adapter("host.asset", run_id=self.run_id, asset_key=self.asset_key)
