"""Finding an executor by name (entry points) or taking an executor given directly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host._errors import DefinitionError, PluginError
from host._executors.base import Executor

__all__ = ["resolve_executor"]

GROUP = "host.executors"


def _load(name: str) -> type[Executor]:
    import importlib_metadata

    found = importlib_metadata.entry_points(group=GROUP, name=name)
    if not found:
        known = sorted(ep.name for ep in importlib_metadata.entry_points(group=GROUP))
        raise DefinitionError(
            f"no executor is called {name!r}; installed executors: {known or 'none'}. Install "
            f"the plugin that provides it, or pick one of those."
        )
    entry_point = next(iter(found))
    try:
        loaded = entry_point.load()
    except Exception as exc:
        dist = entry_point.dist
        where = f"{dist.name} {dist.version}" if dist else "an unknown distribution"
        raise PluginError(
            f"executor {name!r} ({entry_point.value}, from {where}) failed to import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Executor)):
        raise PluginError(
            f"executor {name!r} ({entry_point.value}) is not a host.Executor subclass."
        )
    return loaded


def resolve_executor(
    executor: str | Executor | type[Executor], config: Mapping[str, Any] | None
) -> Executor:
    """An executor instance from a name, a class, or an instance (``config`` then not allowed)."""
    if isinstance(executor, Executor):
        if config:
            raise DefinitionError(
                "executor_config is given together with an executor instance; configure the "
                "instance instead."
            )
        return executor
    if isinstance(executor, type) and issubclass(executor, Executor):
        return executor(config)
    if isinstance(executor, str):
        return _load(executor)(config)
    raise DefinitionError(
        f"executor must be a name, an Executor subclass or instance; got {executor!r}."
    )
