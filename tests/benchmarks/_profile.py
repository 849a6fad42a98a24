"""Where a host run's per-asset time goes: the fan workload under pyinstrument.

pyinstrument is a statistical profiler (it samples the stack every ``INTERVAL`` seconds), so it
barely slows the run down. It is installed on demand into the interpreter running the suite
(``.venv``), with ``pip install pyinstrument``. The report has the top functions by self time
(time spent in the function's own lines, not in what it calls) and the inclusive time of the
stages of a run.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from host import asset
from tests.benchmarks import _workloads as w

__all__ = ["ensure_pyinstrument", "run_profile"]

INTERVAL = 0.0001
#: Stages of a run, by (function name, end of file path): their inclusive time.
STAGES = (
    ("run_assets", "host/_run.py", "the whole run_assets call"),
    ("build_plan", "host/_graph.py", "planning (build_plan)"),
    ("execute", "host/executors/in_process.py", "executing (InProcessExecutor.execute)"),
    ("execute_step", "host/_step.py", "execute_step (all assets)"),
    ("_hookexec", "pluggy/_manager.py", "pluggy hook calls (through pluggy's machinery)"),
    ("_bring_up", "host/_lifecycle.py", "bringing resources up"),
)


def ensure_pyinstrument() -> str:
    """pyinstrument's version, installing it into this interpreter's environment if missing."""
    if importlib.util.find_spec("pyinstrument") is None:
        print("pip install pyinstrument (into this environment) ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "pyinstrument"],
            check=True,
        )
        importlib.invalidate_caches()
    return importlib.metadata.version("pyinstrument")


def _frames(frame: Any) -> Iterator[Any]:
    stack = [frame]
    while stack:
        current = stack.pop()
        if not current.is_synthetic:
            yield current
        stack.extend(current.children)


def _inclusive(root: Any, function: str, path_end: str) -> float:
    """Time in frames of ``function`` (outermost occurrences only, so recursion counts once)."""
    total = 0.0
    stack = [root]
    while stack:
        frame = stack.pop()
        if (
            not frame.is_synthetic
            and frame.function == function
            and (frame.file_path or "").endswith(path_end)
        ):
            total += frame.time
            continue
        stack.extend(frame.children)
    return total


def profile_fan(n: int, runs: int) -> dict[str, Any]:
    """Profile ``runs`` host runs of the ``n``-asset fan."""
    from pyinstrument import Profiler

    run = w.host_fan([asset(fn) for fn in w.fan_functions(n)])
    run()  # warm up
    profiler = Profiler(interval=INTERVAL)
    profiler.start()
    for _ in range(runs):
        run()
    session = profiler.stop()
    root = session.root_frame()
    assert root is not None
    total = root.time
    per_asset = 1e6 / (n * runs)
    by_function: dict[str, float] = {}
    for frame in _frames(root):
        name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
        where = f"{name} ({frame.file_path_short}:{frame.line_no})"
        by_function[where] = by_function.get(where, 0.0) + frame.total_self_time
    ranked = sorted(by_function.items(), key=lambda item: item[1], reverse=True)
    return {
        "n": n,
        "runs": runs,
        "profiled_s": total,
        "us_per_asset": total * per_asset,
        "top_self": [
            {"function": where, "share": seconds / total, "us_per_asset": seconds * per_asset}
            for where, seconds in ranked[:10]
        ],
        "stages": [
            {
                "stage": label,
                "share": (seconds := _inclusive(root, function, path_end)) / total,
                "us_per_asset": seconds * per_asset,
            }
            for function, path_end, label in STAGES
        ],
    }


def _where(prefix: str) -> str:
    """``prefix`` relative to the repository when it is inside it (``.venv``)."""
    root = Path(__file__).resolve().parents[2]
    path = Path(prefix).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def run_profile(quick: bool) -> dict[str, Any]:
    """Profile the fan at N=1000 and N=10000."""
    version = ensure_pyinstrument()
    return {
        "profiler": f"pyinstrument {version} (installed into {_where(sys.prefix)})",
        "interval_s": INTERVAL,
        "runs": [
            profile_fan(1000, 5 if quick else 20),
            profile_fan(10000, 1 if quick else 3),
        ],
    }
