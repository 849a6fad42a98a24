"""The speed tricks of ``specs/layers.md``, each switched off in turn against all of them on.

Each trick lives behind one named function; here each is undone for the length of one sample
(the function's work done the plain way), interleaved in rounds with the unchanged code, on the
in-process fan (3 resources per asset) at N=10 and N=1000. A ratio above 1 is what the trick
buys; one within noise of 1 means the benchmarks do not defend it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from host import asset
from tests.benchmarks import _workloads as w
from tests.benchmarks._harness import interleave, timed

__all__ = ["TRICKS", "run_tricks"]


@contextlib.contextmanager
def _no_plan_memo(assets: list[Any]) -> Iterator[None]:
    """Every asset resolves its parameters afresh (``host._graph``'s memo emptied first)."""
    for definition in assets:
        definition.plans.clear()
    yield


@contextlib.contextmanager
def _no_manager_reuse(assets: list[Any]) -> Iterator[None]:
    """The run builds its plugin manager (``host._plugins.run_plugin_manager``'s cache emptied)."""
    import host._plugins

    host._plugins._reused.clear()
    yield


@contextlib.contextmanager
def _no_direct_execute(assets: list[Any]) -> Iterator[None]:
    """``host_asset_execute`` is called through pluggy (``host._runtime.AssetHooks``)."""
    import dataclasses

    import host._runtime

    original = host._runtime.AssetHooks.of

    def through_pluggy(hook: Any) -> Any:
        return dataclasses.replace(original(hook), execute_is_builtin=False, need_context=True)

    host._runtime.AssetHooks.of = through_pluggy  # type: ignore[method-assign]
    try:
        yield
    finally:
        host._runtime.AssetHooks.of = original  # type: ignore[method-assign]


def _getpid_each_time() -> int:
    return os.getpid()


@contextlib.contextmanager
def _no_pid_cache(assets: list[Any]) -> Iterator[None]:
    """Every event asks the kernel for the pid (``host._events.current_pid``)."""
    import host._events

    code = host._events.current_pid.__code__
    host._events.current_pid.__code__ = _getpid_each_time.__code__
    try:
        yield
    finally:
        host._events.current_pid.__code__ = code


@contextlib.contextmanager
def _mask_each_event(assets: list[Any]) -> Iterator[None]:
    """Events are masked as they are emitted, not once at the end (``host._run._event_sink``)."""
    import host._run
    from host._secrets import mask_event

    original = host._run._event_sink

    def masking_sink(events: list[Any], host_event: Any, secrets: Any = ()) -> Any:
        if host_event.get_hookimpls():
            return original(events, host_event, secrets)

        def emit(event: Any) -> None:
            events.append(mask_event(event, secrets))

        return emit

    host._run._event_sink = masking_sink
    try:
        yield
    finally:
        host._run._event_sink = original


#: Trick name (as in ``specs/layers.md``) -> a context manager undoing it for one sample.
TRICKS: dict[str, Callable[[list[Any]], contextlib.AbstractContextManager[None]]] = {
    "planning memo (host._graph)": _no_plan_memo,
    "plugin manager reuse (host._plugins.run_plugin_manager)": _no_manager_reuse,
    "direct host_asset_execute (host._runtime.AssetHooks)": _no_direct_execute,
    "cached pid (host._events.current_pid)": _no_pid_cache,
    "masking once at the end (host._run._event_sink)": _mask_each_event,
}


def _without(
    undo: Callable[[list[Any]], contextlib.AbstractContextManager[None]],
    assets: list[Any],
    run: Callable[[], Any],
) -> Callable[[], Any]:
    """``run`` with one trick undone for its length."""

    def sample() -> Any:
        with undo(assets):
            return run()

    return sample


def run_tricks(repetitions: int, sizes: tuple[int, ...] = (10, 1000)) -> dict[str, Any]:
    """Median seconds of the fan with every trick on, and with each one off; their ratios."""
    figures: dict[str, Any] = {}
    for n in sizes:
        assets = [asset(fn) for fn in w.fan_functions(n)]
        run = w.host_fan(assets)

        contenders = {"all on": timed(run)}
        contenders.update(
            {name: timed(_without(undo, assets, run)) for name, undo in TRICKS.items()}
        )
        samples = interleave(
            contenders, dict.fromkeys(contenders, repetitions), warmup=tuple(contenders)
        )
        base = samples["all on"].median
        figures[str(n)] = {
            name: {**s.as_json(), "off_over_on": s.median / base} for name, s in samples.items()
        }
    return figures
