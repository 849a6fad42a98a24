"""Running one asset in this process: fill its parameters, call it through the hooks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from host._context import AssetExecutionContext
from host._events import AssetFailed, AssetStarted, AssetSucceeded, ErrorInfo, current_pid
from host._graph import Step
from host._lifecycle import ProcessRuntime, ResourceStack

__all__ = ["StepOutcome", "execute_step"]


@dataclass(frozen=True)
class StepOutcome:
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


def _notify(caller: Any, **kwargs: Any) -> None:
    """Call an observer hook, unless no plugin implements it (the call would do nothing)."""
    if caller.get_hookimpls():
        caller(**kwargs)


def _first_result(caller: Any, **kwargs: Any) -> Any:
    """Call a ``firstresult`` hook as pluggy would, without its machinery for a lone plain impl.

    With exactly one implementation and no wrapper (a run with no plugin but the built-in one),
    pluggy's ``_multicall`` calls it with the arguments it names and returns its result: done
    here directly. Anything else goes through pluggy.
    """
    impls = caller.get_hookimpls()
    if len(impls) == 1:
        impl = impls[0]
        if not (impl.wrapper or impl.hookwrapper):
            return impl.function(*[kwargs[name] for name in impl.argnames])
    return caller(**kwargs)


def execute_step(
    step: Step, inputs: Mapping[str, Any], stack: ResourceStack, runtime: ProcessRuntime
) -> StepOutcome:
    """Run ``step`` with its upstream outputs ``inputs``, bringing its resources up on demand.

    An ``Exception`` from a resource or the asset fails the asset (returned, not raised); a
    ``BaseException`` (KeyboardInterrupt, SystemExit) propagates. Observer hooks that no plugin
    implements are not called.
    """
    hook = runtime.hook
    emit = runtime.emit
    run_id = runtime.run_id
    key = step.key
    context = AssetExecutionContext(
        run_id, key, runtime.executor, pid=current_pid(), _runtime=runtime
    )
    start = time.perf_counter()
    emit(AssetStarted(run_id, asset_key=key))
    try:
        kwargs: dict[str, Any] = {}
        for param in step.params:
            kind = param.kind
            if kind == "asset":
                kwargs[param.name] = inputs[param.ref]
            elif kind == "resource":
                kwargs[param.name] = stack.get(param.ref)
            else:
                kwargs[param.name] = context
        _notify(hook.host_asset_start, context=context)
        output = _first_result(
            hook.host_asset_execute, context=context, fn=step.asset.fn, kwargs=kwargs
        )
    except Exception as exc:
        error = ErrorInfo.from_exception(exc, resource_key=getattr(exc, "resource_key", None))
        emit(AssetFailed(run_id, asset_key=key, duration=time.perf_counter() - start, error=error))
        _notify(hook.host_asset_failure, context=context, error=error)
        return StepOutcome(key, False, error=error, exception=exc)
    emit(AssetSucceeded(run_id, asset_key=key, duration=time.perf_counter() - start))
    _notify(hook.host_asset_success, context=context, output=output)
    return StepOutcome(key, True, output=output)
