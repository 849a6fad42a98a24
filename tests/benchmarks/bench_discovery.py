"""Benchmark (not a test): ``host plugins`` start-up with 0 vs 300 installed plugin distributions.

Usage::

    .venv/bin/python tests/benchmarks/bench_discovery.py [--plugins 300] [--runs 15]

Two directories go on ``PYTHONPATH`` in turn: an empty one (the baseline) and one holding
``--plugins`` generated distributions, each a ``NAME-VERSION.dist-info`` directory (``METADATA``
with a ``Requires-Dist: host`` line, ``entry_points.txt`` registering one resource type) and
its module. Both environments have the same ``sys.path`` length. The script runs, interleaved:

* ``host plugins`` (the console script, whole process, wall time measured by this script);
* the same with ``PYDANTIC_DISABLE_PLUGINS=1`` (here only, to measure pydantic's part: the host
  never sets it for users);
* in a fresh interpreter, timed there with ``perf_counter``: ``import host``, then the command's
  own work (``host._cli.main(["plugins"])``: the discovery scan, the listing and its printing).

The split shows where added time comes from: ``import host`` includes pydantic's own scan of
every distribution's entry points for pydantic plugins (done when the first model class is
created; ``PYDANTIC_DISABLE_PLUGINS`` switches it off), the command's work is the host's
discovery. It prints the median of each, the difference and the ratio. The target of issue 3:
the 300 plugins add at most 30 ms to listing them (the first row).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = str(Path(sys.executable).with_name("host"))
#: Bytecode for every probe, as the suite runner keeps it (``tests/benchmarks/__main__.py``): an
#: installed package has its ``.pyc`` files, while host is installed editable here and
#: ``PYTHONDONTWRITEBYTECODE`` may be set.
PYCACHE = Path(__file__).resolve().parent / "results" / "pycache"

MODULE = '''from host import ConfigurableResource


class Resource{i}(ConfigurableResource):
    """A generated resource type."""

    url: str = "bench://{i}"
'''

IN_PROCESS = """
import contextlib, io, json, time
start = time.perf_counter()
import host
imported = time.perf_counter()
from host._cli import main
from host._discovery import discover_plugins
with contextlib.redirect_stdout(io.StringIO()):
    main(["plugins"])
done = time.perf_counter()
print(json.dumps({"import": imported - start, "command": done - imported,
                  "count": len(discover_plugins())}))
"""


def make_distributions(target: Path, count: int) -> None:
    """Write ``count`` installed plugin distributions into ``target``."""
    for i in range(count):
        name = f"bench_discovery_plugin_{i}"
        info = target / f"{name}-1.0.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\n"
            f"Name: bench-discovery-plugin-{i}\n"
            "Version: 1.0.0\n"
            "Summary: A generated plugin for the discovery benchmark.\n"
            "Requires-Dist: host>=0.1\n"
            "Requires-Dist: pydantic>=2\n"
            "\n"
            "A generated plugin.\n"
        )
        (info / "entry_points.txt").write_text(
            f"[host.resources]\nbench.r{i} = {name}:Resource{i}\n"
        )
        (info / "RECORD").write_text("")
        (target / f"{name}.py").write_text(MODULE.format(i=i))


def _env(path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HOST_", "PYTHONPATH", "PYDANTIC_DISABLE_PLUGINS"))
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPATH"] = str(path)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


def _command(path: Path, **extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([HOST, "plugins"], env=_env(path, **extra), check=True, capture_output=True)
    return time.perf_counter() - start


def _in_process(path: Path) -> tuple[float, float, int]:
    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS], env=_env(path), check=True, capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout)
    return float(result["import"]), float(result["command"]), int(result["count"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=300)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp, "empty"), Path(tmp, "plugins")
        empty.mkdir()
        make_distributions(full, args.plugins)
        for path in (empty, full):  # warm the file-system cache and the .pyc files
            _command(path)
            _in_process(path)
        command: dict[str, list[float]] = {"empty": [], "plugins": []}
        no_pydantic_scan: dict[str, list[float]] = {"empty": [], "plugins": []}
        imports: dict[str, list[float]] = {"empty": [], "plugins": []}
        work: dict[str, list[float]] = {"empty": [], "plugins": []}
        counts: dict[str, int] = {}
        for round_ in range(args.runs):
            order = [("empty", empty), ("plugins", full)]
            for label, path in order if round_ % 2 == 0 else order[::-1]:
                command[label].append(_command(path))
                no_pydantic_scan[label].append(_command(path, PYDANTIC_DISABLE_PLUGINS="1"))
                seconds_import, seconds_work, counts[label] = _in_process(path)
                imports[label].append(seconds_import)
                work[label].append(seconds_work)
    medians = {
        "host_plugins_command": command,
        "host_plugins_command_without_pydantic_plugin_scan": no_pydantic_scan,
        "import_host": imports,
        "host_plugins_in_process": work,
    }
    figures: dict[str, object] = {"plugins": args.plugins, "runs": args.runs}
    figures["entry_points"] = counts
    for key, samples in medians.items():
        empty_ms = statistics.median(samples["empty"]) * 1000
        full_ms = statistics.median(samples["plugins"]) * 1000
        figures[key] = {"empty_ms": empty_ms, "plugins_ms": full_ms, "added_ms": full_ms - empty_ms}
    if args.json:
        print(json.dumps(figures))
        return 0
    print(
        f"{args.plugins} generated plugin distributions ({counts['empty']} -> "
        f"{counts['plugins']} entry points listed), median of {args.runs} runs each"
    )
    labels = {
        "host_plugins_command": "host plugins, whole process",
        "host_plugins_command_without_pydantic_plugin_scan": "  same, PYDANTIC_DISABLE_PLUGINS=1",
        "import_host": "  of which: import host",
        "host_plugins_in_process": "  of which: discovery + listing",
    }
    for key, label in labels.items():
        row = figures[key]
        assert isinstance(row, dict)
        print(
            f"  {label:34} {row['empty_ms']:6.1f} ms -> {row['plugins_ms']:6.1f} ms: "
            f"{row['added_ms']:+6.1f} ms (x{row['plugins_ms'] / row['empty_ms']:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
