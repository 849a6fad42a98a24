"""The cost of recording a run into the run history, as a ratio measured in one session.

The in-process fan (3 resources per asset) at N=1000 runs interleaved in rounds: without
history; with ``history=PATH`` as the caller sees it (the record is written by the writer
thread, waited for after the sample, untimed); and with the wait for the write inside the
sample (the whole cost of writing the run: the thread that waits writes what the writer
thread has not started). The target (``specs/history.md``): the run with the write at most
1.05 times the run without history.

A fourth contender, the run without history followed by the one pass over its events that
any record of its assets needs (:func:`host._history_rows.run_columns`, as the writer makes
it), measures what that pass alone adds: the floor of the write, before any sqlite.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from host import asset, run_assets
from host._history import flush
from host._history_rows import run_columns
from tests.benchmarks import _workloads as w
from tests.benchmarks._harness import interleave, timed

__all__ = ["run_history"]


def _recorded(assets: list[Any], db: Path, wait: bool) -> Callable[[], Any]:
    resources = w.fan_resources()

    def run() -> Any:
        result = run_assets(assets, resources, history=db)
        if wait:
            flush(db)
        return result

    return run


def _then_read(run: Callable[[], Any]) -> Callable[[], Any]:
    def read() -> Any:
        result = run()
        run_columns(result.events, result.events[0].assets, {})
        return result

    return read


def _then_flush(sample: Callable[[], float], db: Path) -> Callable[[], float]:
    def run() -> float:
        seconds = sample()
        flush(db)  # the writer's work does not spill into the next sample
        return seconds

    return run


def run_history(repetitions: int, n: int = 1000) -> dict[str, Any]:
    """Median seconds of the fan without and with history, and their ratios."""
    assets = [asset(fn) for fn in w.fan_functions(n)]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "history.db"
        contenders = {
            "no history": _then_flush(timed(w.host_fan(assets)), db),
            "history (caller)": _then_flush(timed(_recorded(assets, db, wait=False)), db),
            "history (with the write)": timed(_recorded(assets, db, wait=True)),
            "no history, then one pass over its events": timed(_then_read(w.host_fan(assets))),
        }
        samples = interleave(
            contenders, dict.fromkeys(contenders, repetitions), warmup=tuple(contenders)
        )
    base = samples["no history"].median
    return {
        "n": n,
        "target": "the run with the write <= 1.05",
        "contenders": {
            name: {**s.as_json(), "over_no_history": s.median / base}
            for name, s in samples.items()
        },
    }
