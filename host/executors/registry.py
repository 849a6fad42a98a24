"""Finding an executor by name (``host.executors`` entry points) or taking one given directly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host._discovery import load_entry_point, lookup, suggest
from host._errors import DefinitionError
from host._plugin_api import EXECUTORS_GROUP
from host.executors.base import Executor

__all__ = ["executor_class", "resolve_executor"]


def executor_class(name: str, distribution: str | None = None) -> type[Executor]:
    """The executor class registered as ``name``; imports only that entry point.

    Args:
        name: the entry-point name in ``host.executors``.
        distribution: pick this distribution's ``name`` when several register it.

    Raises:
        DefinitionError: no installed distribution registers ``name``.
        PluginError: it is disabled, incompatible, registered twice, fails to import, or is
            not an ``Executor`` subclass.
    """
    info = lookup(EXECUTORS_GROUP, name, distribution=distribution)
    if info is None:
        raise DefinitionError(
            f"no executor is called {name!r}; {suggest(EXECUTORS_GROUP, name)}. Install the "
            f"plugin that provides it, or pick an installed one."
        )
    loaded: type[Executor] = load_entry_point(info)
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
        return executor_class(executor)(config)
    raise DefinitionError(
        f"executor must be a name, an Executor subclass or instance; got {executor!r}."
    )
