"""Peak memory of one fan run, in a fresh process: ``python -m tests.benchmarks._memory``.

Prints one JSON line, in MB (10^6 bytes). ``--mode rss``: the process's peak resident set before
and after the run, the whole process (interpreter and imports included): ``VmHWM`` from
``/proc/self/status``. ``ru_maxrss`` is not used: Linux carries the parent's peak over ``exec``,
so a child of a large parent reports the parent's figure. ``--mode tracemalloc``: the peak of
Python allocations made during the run alone (``tracemalloc``, which slows the run down; its time
is not reported).
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from pathlib import Path

from host import asset
from tests.benchmarks import _workloads as w


def peak_rss_mb() -> float:
    """This process's peak resident set so far (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--contender", choices=("host", "bare"), default="host")
    parser.add_argument("--mode", choices=("rss", "tracemalloc"), default="rss")
    args = parser.parse_args()
    functions = w.fan_functions(args.n)
    if args.contender == "host":
        run = w.host_fan([asset(fn) for fn in functions])
    else:
        run = w.bare_fan(functions)
    gc.collect()
    figures: dict[str, float] = {}
    if args.mode == "rss":
        figures["rss_before_mb"] = peak_rss_mb()
        run()
        figures["rss_peak_mb"] = peak_rss_mb()
    else:
        tracemalloc.start()
        run()
        figures["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
