"""host-plugin-trace: record every resource phase of every run as one JSON line.

This module is the plugin: its module-level functions are ``@host.hookimpl(wrapper=True)``
implementations of the three resource hooks, and the package registers the module itself under
the entry-point group ``host.plugins`` as ``trace``. Each wrapper times the phase it wraps and
lets everything through unchanged: the value, and any exception.

Where the lines go: the file named by the environment variable ``HOST_TRACE_FILE``, read each
time a phase starts, in the process where the phase runs. When it is unset or empty, nothing is
recorded, so installing the package changes nothing until a user asks for a trace. A relative
path is relative to that process's working directory; use an absolute one for runs whose
workers may start elsewhere. Lines are appended with ``O_APPEND``, one ``write`` each, so the
processes of a run (and several runs) can share one file. A file that cannot be written is
reported on the ``host_plugin_trace`` logger and does not fail the run.

One line per phase, in the order the phases end (``setup`` ends inside ``yield_enter``)::

    {"run_id": "3f0c...", "executor": "in_process", "resource_key": "db",
     "resource_class": "host_plugin_sqlite._resource.SQLiteResource", "phase": "yield_enter",
     "pid": 4242, "start": 1767225600.123456, "duration": 0.000812, "ok": true, "error": null,
     "exited_by": null}

``phase`` is ``setup``, ``yield_enter``, ``teardown`` or ``yield_exit`` (a resource that
overrides ``yield_for_execution`` has only the two ``yield_`` phases); ``start`` is wall-clock
time in seconds since the epoch, ``duration`` is in seconds (a monotonic clock); ``ok`` is false
when an exception left the phase, and ``error`` is that exception's qualified class name.
``exited_by`` is set on ``yield_exit`` lines only: the exception ending the run that the
resource's context manager received (``builtins.KeyboardInterrupt``), or ``null`` when the run
ended normally; a context manager that lets it pass on has still exited ``ok``. A line never
holds configuration values or error messages, so no secret can end up in a trace.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from host import ConfigurableResource, InitResourceContext, hookimpl

__all__ = [
    "ENV_VAR",
    "host_resource_setup",
    "host_resource_teardown",
    "host_resource_yield",
    "read_trace",
    "trace_file",
]

#: The environment variable naming the trace file.
ENV_VAR = "HOST_TRACE_FILE"

_LOG = logging.getLogger("host_plugin_trace")
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)


def trace_file() -> Path | None:
    """The file this process appends to now (``HOST_TRACE_FILE``), or ``None``: no tracing."""
    value = os.environ.get(ENV_VAR, "")
    return Path(value) if value else None


def read_trace(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line of a trace file, decoded, in the order written; ``[]`` if there is no file."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# -- the hooks -------------------------------------------------------------------------------


@hookimpl(wrapper=True)
def host_resource_setup(
    resource: ConfigurableResource, context: InitResourceContext
) -> Generator[None, object | None, object | None]:
    """Time the setup phase (``setup_for_execution``, under the default yield)."""
    with _traced("setup", resource, context):
        return (yield)


@hookimpl(wrapper=True)
def host_resource_teardown(
    resource: ConfigurableResource, context: InitResourceContext
) -> Generator[None, object | None, object | None]:
    """Time the teardown phase (``teardown_after_execution``, under the default yield)."""
    with _traced("teardown", resource, context):
        return (yield)


@hookimpl(wrapper=True)
def host_resource_yield(
    resource: ConfigurableResource, context: InitResourceContext
) -> Generator[
    None,
    contextlib.AbstractContextManager[Any] | None,
    contextlib.AbstractContextManager[Any] | None,
]:
    """Wrap the context manager that holds the resource up, to time entering and leaving it."""
    inner = yield
    if inner is None:
        return None
    return _TracedYield(inner, resource, context)


# -- how -------------------------------------------------------------------------------------


class _TracedYield(contextlib.AbstractContextManager[Any]):
    """Delegates to the resource's context manager, recording ``yield_enter``/``yield_exit``."""

    def __init__(
        self,
        inner: contextlib.AbstractContextManager[Any],
        resource: ConfigurableResource,
        context: InitResourceContext,
    ) -> None:
        self._inner = inner
        self._resource = resource
        self._context = context

    def __enter__(self) -> Any:
        with _traced("yield_enter", self._resource, self._context):
            return self._inner.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        # The inner context manager receives the exception ending the run, as without tracing.
        with _traced("yield_exit", self._resource, self._context, exited_by=exc):
            return self._inner.__exit__(exc_type, exc, tb)


@contextlib.contextmanager
def _traced(
    phase: str,
    resource: ConfigurableResource,
    context: InitResourceContext,
    exited_by: BaseException | None = None,
) -> Iterator[None]:
    """Time the block and append its line; exceptions pass through unchanged."""
    path = trace_file()
    if path is None:
        yield
        return
    start = time.time()
    began = time.perf_counter()
    error: str | None = None
    try:
        yield
    except BaseException as exc:
        error = _qualname(exc)
        raise
    finally:
        kind = type(resource)
        _append(
            path,
            {
                "run_id": context.run_id,
                "executor": context.executor,
                "resource_key": context.resource_key,
                "resource_class": f"{kind.__module__}.{kind.__qualname__}",
                "phase": phase,
                "pid": os.getpid(),
                "start": start,
                "duration": time.perf_counter() - began,
                "ok": error is None,
                "error": error,
                "exited_by": None if exited_by is None else _qualname(exited_by),
            },
        )


def _qualname(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def _append(path: Path, record: dict[str, Any]) -> None:
    """Append one line with a single ``write`` on an ``O_APPEND`` descriptor."""
    line = (json.dumps(record, default=str) + "\n").encode("utf-8")
    try:
        fd = os.open(path, _FLAGS, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        _LOG.warning("cannot append to trace file %s: %s", path, exc)
