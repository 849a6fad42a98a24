"""Running one asset in this process: fill its parameters, call it through the hooks."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from host._builtin_hooks import call_asset
from host._context import AssetExecutionContext
from host._errors import HostError, is_interrupt
from host._events import (
    STEP,
    AssetFailed,
    AssetStarted,
    AssetSucceeded,
    ErrorInfo,
    current_pid,
    safe_repr,
)
from host._graph import Step
from host._lifecycle import ResourceStack
from host._runtime import ProcessRuntime

__all__ = ["StepOutcome", "execute_step"]

_log = logging.getLogger("host.plugins")


class StepOutcome(NamedTuple):
    """What running one asset gave.

    Attributes:
        key: the asset key.
        ok: it returned an output.
        output: the output (when ``ok``).
        error: the error (when not ``ok``).
        exception: the exception itself, where it is available (same process, or picklable).
    """

    key: str
    ok: bool
    output: Any = None
    error: ErrorInfo | None = None
    exception: BaseException | None = None


def execute_step(
    step: Step, inputs: Mapping[str, Any], stack: ResourceStack, runtime: ProcessRuntime
) -> StepOutcome:
    """Run ``step``, bringing its resources up on demand.

    ``inputs`` maps asset keys to outputs and holds at least the step's upstream assets (the
    in-process executor passes every output of the run so far; only the upstream ones are read).

    An ``Exception`` from a resource, the asset, or a ``host_asset_start`` /
    ``host_asset_success`` observer fails the asset (returned, not raised); one from a
    ``host_asset_failure`` observer is logged. So does any other ``BaseException`` raised by
    that code (``sys.exit()`` in an asset: the asset fails saying it called
    ``sys.exit(CODE)``; ``GeneratorExit``, ``asyncio.CancelledError``, one of its own), and the
    run goes on. Only an interrupt of the run (:func:`host._errors.is_interrupt`:
    ``KeyboardInterrupt``, the host's own ``SignalExit`` for SIGTERM/SIGHUP, the run's
    deadline) propagates: it ends the run. Hooks no plugin implements are not called, the
    execution context is made only when the asset or a hook takes it, and a
    ``host_asset_execute`` with only the built-in implementation is a direct call (see
    :class:`host._runtime.AssetHooks`).
    """
    hooks = runtime.asset_hooks
    emit = runtime.emit
    run_id = runtime.run_id
    key = step.key
    context = None
    resources: dict[str, Any] = {}  # context.resources, filled as they come up
    if step.takes_context or hooks.need_context:
        context = AssetExecutionContext(
            run_id, key, runtime.executor, pid=current_pid(), _runtime=runtime,
            _resources=resources,
        )
    start = time.perf_counter()
    emit(AssetStarted(run_id, asset_key=key))
    token = STEP.set(runtime.step(key))  # what the asset logs or warns is its own
    try:
        for ref in step.resources:  # every one is up before the asset runs
            resources[ref] = stack.get(ref)
        kwargs: dict[str, Any] = {}
        for name, kind, ref in step.params:
            if kind == "resource":
                kwargs[name] = resources[ref]
            elif kind == "asset":
                kwargs[name] = inputs[ref]
            elif kind == "config":
                kwargs[name] = step.config
            else:
                kwargs[name] = context
        if hooks.start:
            runtime.hook.host_asset_start(context=context)
        if hooks.execute_is_builtin:
            output = call_asset(step.asset.fn, kwargs, runtime)
        else:
            output = runtime.hook.host_asset_execute(
                context=context, fn=step.asset.fn, kwargs=kwargs
            )
        if hooks.success:
            runtime.hook.host_asset_success(context=context, output=output)
    except BaseException as exc:
        if is_interrupt(exc):
            raise  # Ctrl-C, the host's signal exit, the run's deadline: they end the run
        error = _error_info(key, exc)
        emit(AssetFailed(run_id, asset_key=key, duration=time.perf_counter() - start, error=error))
        if hooks.failure:
            try:
                runtime.hook.host_asset_failure(context=context, error=error)
            except BaseException as hook_error:
                if is_interrupt(hook_error):
                    raise
                _log.exception("a host_asset_failure hook failed for asset %r", key)
        return StepOutcome(key, False, None, error, exc)
    finally:
        STEP.reset(token)
    emit(AssetSucceeded(run_id, asset_key=key, duration=time.perf_counter() - start))
    return StepOutcome(key, True, output)


def _error_info(key: str, exc: BaseException) -> ErrorInfo:
    """How asset ``key`` failed with ``exc``: the error's own description, and for a
    ``SystemExit`` a message that says the asset called ``sys.exit``."""
    resource_key = getattr(exc, "resource_key", None) if isinstance(exc, HostError) else None
    error = ErrorInfo.from_exception(
        exc, resource_key=resource_key if isinstance(resource_key, str) else None
    )
    if isinstance(exc, SystemExit):
        message = (
            f"sys.exit({safe_repr(exc.code)}) was called while asset {key!r} ran; a "
            f"SystemExit from asset code fails the asset (the run goes on): raise an exception "
            f"instead"
        )
        error = ErrorInfo(error.type, message, error.traceback, error.resource_key)
    return error
