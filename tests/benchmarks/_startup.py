"""Workload 5: ``import host`` against ``import dagster``, and peak memory of the 10000-asset run.

Import time is measured inside a fresh interpreter (``time.perf_counter`` around the import
statement, so interpreter start-up is left out), median of several fresh processes, host and
Dagster interleaved. ``python -X importtime`` then says which modules the time goes to.

Both contenders import with a warm bytecode cache, as installed packages do (pip compiles
``.pyc`` files at install; host is installed editable here, and ``PYTHONDONTWRITEBYTECODE``
may be set): every probe runs with ``PYTHONPYCACHEPREFIX`` pointing at one directory under
``results/``, filled by an untimed import of each contender first.

``import host`` loads what defining resources and assets needs; the run machinery is imported
on first use (``host/__init__.py``). ``import host, run_assets`` times both, for the whole
cost of a process that runs assets, and ``pydantic`` times pydantic with its first model
class, the floor under ``import host``.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["import_breakdown", "run_memory", "run_startup"]

ROOT = Path(__file__).resolve().parents[2]
#: Where the probes keep their bytecode (one cache for every contender).
PYCACHE = ROOT / "tests" / "benchmarks" / "results" / "pycache"  # as __main__.PYCACHE
_PROBE = (
    "import time; start = time.perf_counter(); {statement}; "
    "print(time.perf_counter() - start)"
)
#: What each probe imports.
STATEMENTS = {
    "host": "import host",
    "host_run": "import host; from host import run_assets",
    # The floor under host's import: pydantic and its first model class (ConfigurableResource
    # is one); the first model pays pydantic's plugin scan and lazy imports.
    "pydantic": "import pydantic; pydantic.create_model('M', x=(int, 0))",
    "dagster": "import dagster",
}


def _environ() -> dict[str, str]:
    environ = dict(os.environ, PYTHONPYCACHEPREFIX=str(PYCACHE))
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return environ


def _import_seconds(python: str, name: str) -> float:
    done = subprocess.run(
        [python, "-c", _PROBE.format(statement=STATEMENTS[name])],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(ROOT) if name != "dagster" else None,
        env=_environ(),
    )
    return float(done.stdout.strip().splitlines()[-1])


def import_breakdown(python: str, module: str, top: int = 8) -> list[dict[str, Any]]:
    """The packages ``import module`` pulls in, by cumulative import time, largest first.

    Read from ``python -X importtime``: only the subtree of the ``import module`` statement
    (not the interpreter's own start-up imports), and for each other package only its outermost
    import, so the shares do not overlap.
    """
    done = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(ROOT),
        env=_environ(),
    )
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)")
    lines: list[tuple[int, str, int]] = []  # (depth, name, cumulative us), children first
    for line in done.stderr.splitlines():
        match = pattern.match(line)
        if match is not None:
            depth = (len(match.group(3)) - 1) // 2
            lines.append((depth, match.group(4), int(match.group(2))))
    end = max(i for i, (depth, name, _) in enumerate(lines) if depth == 0 and name == module)
    total = lines[end][2]
    begin = end
    while begin > 0 and lines[begin - 1][0] > 0:
        begin -= 1
    packages: dict[str, int] = {}
    ancestors: list[tuple[int, str]] = []
    for depth, name, cumulative in reversed(lines[begin : end + 1]):  # parents first
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        package = name.partition(".")[0]
        own = all(a.partition(".")[0] == module for _, a in ancestors)
        if package != module and own:
            packages[package] = packages.get(package, 0) + cumulative
        ancestors.append((depth, name))
    ranked = sorted(((us, name) for name, us in packages.items()), reverse=True)
    return [
        {"module": name, "cumulative_ms": us / 1e3, "share_of_import": us / total}
        for us, name in ranked[:top]
    ] + [{"module": f"{module} (total)", "cumulative_ms": total / 1e3, "share_of_import": 1.0}]


def run_startup(repetitions: int, dagster_python: str | None) -> dict[str, Any]:
    """Median ``import host`` (alone and with ``run_assets``), and ``import dagster`` in its
    environment, in fresh processes with warm bytecode caches."""
    pythons = {"host": sys.executable, "host_run": sys.executable, "pydantic": sys.executable}
    if dagster_python is not None:
        pythons["dagster"] = dagster_python
    for name, python in pythons.items():  # untimed: fills the bytecode cache
        _import_seconds(python, name)
    samples: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    names = list(pythons)
    for round_ in range(repetitions):
        for name in names if round_ % 2 == 0 else names[::-1]:
            samples[name].append(_import_seconds(pythons[name], name))
    figures: dict[str, Any] = {}
    for name, values in samples.items():
        if values:
            figures[f"import_{name}"] = {
                "median_s": statistics.median(values),
                "samples_s": values,
            }
    figures["import_host_breakdown"] = import_breakdown(sys.executable, "host")
    if dagster_python is None:
        figures["import_dagster"] = {"skipped": "Dagster not installed (pass --with-dagster)"}
    return figures


def _memory(contender: str, mode: str, n: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks._memory", "--n", str(n),
         "--contender", contender, "--mode", mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(ROOT),
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run_memory(n: int = 10000) -> dict[str, Any]:
    """Peak memory of the ``n``-asset fan run: host and the bare loop, each in a fresh process."""
    figures: dict[str, Any] = {"n": n}
    for contender in ("host", "bare"):
        figures[contender] = {
            **_memory(contender, "rss", n),
            **_memory(contender, "tracemalloc", n),
        }
    return figures
