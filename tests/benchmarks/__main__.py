"""``python -m tests.benchmarks``: run the benchmark suite, print the table, write the figures.

The figures go to ``tests/benchmarks/results/latest.json`` (git-ignored) and the summary to
``tests/benchmarks/RESULTS.md``. With ``--only``, the sections run now replace those of the same
name in ``latest.json`` and the others are kept, each section stamped with when it was measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.benchmarks import _report
from tests.benchmarks._dagster import VENV, DagsterWorker, ensure_dagster

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"
LATEST = RESULTS / "latest.json"
PYCACHE = RESULTS / "pycache"
SUMMARY = HERE / "RESULTS.md"
#: Set to 1: no installed third-party hook plugin loads into the timed runs.
AUTOLOAD_ENV = "HOST_DISABLE_PLUGIN_AUTOLOAD"
WORKLOADS = (
    "fan", "chain", "multiprocess", "discovery", "import", "memory", "profile", "tricks",
    "history", "sessions",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="host side by side with a bare hand-written loop and Dagster.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions (a few minutes); the figures are noisier")
    parser.add_argument("--with-dagster", action="store_true",
                        help=f"also run Dagster, installed with pip into {VENV.relative_to(ROOT)}")
    parser.add_argument("--dagster-spec", default="dagster",
                        help="what to pip install for Dagster (default: %(default)s)")
    parser.add_argument("--dagster-max-n", type=int, default=1000,
                        help="largest in-process N to run on Dagster (default: %(default)s; "
                        "N=10000 takes minutes per run there)")
    parser.add_argument("--only", action="append", choices=WORKLOADS, metavar="WORKLOAD",
                        help=f"run only this workload (repeatable): {', '.join(WORKLOADS)}")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: print and rewrite RESULTS.md from latest.json")
    return parser


def _in_process_plan(quick: bool, dagster_max_n: int) -> tuple[dict[int, int], dict[int, int]]:
    """Size -> repetitions, for host/bare and for Dagster."""
    if quick:
        reps = {10: 10, 100: 7, 1000: 5, 10000: 3}
        dagster = {10: 3, 100: 1, 1000: 1, 10000: 1}
    else:
        reps = {10: 40, 100: 25, 1000: 15, 10000: 7}
        dagster = {10: 5, 100: 5, 1000: 3, 10000: 1}
    return reps, {n: r for n, r in dagster.items() if n <= dagster_max_n}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    selected = tuple(args.only or WORKLOADS)
    if args.report_only:
        return _write_report(json.loads(LATEST.read_text()), selected)
    mode = "quick" if args.quick else "full"
    RESULTS.mkdir(exist_ok=True)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    # host's own cost: third-party hook plugins installed in this environment stay out of the
    # timed runs (the built-in plugin, every hook call and every event stay on).
    os.environ[AUTOLOAD_ENV] = "1"
    # Every process of the suite (workers, probes, Dagster's) reads and writes bytecode in one
    # cache, as an installed package does: host and the plugins are installed editable here,
    # so without it they would be compiled from source in every fresh process while pip had
    # compiled Dagster's and pydantic's at install.
    os.environ["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    results: dict[str, Any] = {}
    if LATEST.exists():
        results = json.loads(LATEST.read_text())
    extra_versions: dict[str, str] = {}
    dagster_python: Path | None = None
    if args.with_dagster:
        dagster_python, version = ensure_dagster(args.dagster_spec)
        extra_versions["dagster"] = version
    else:  # keep the version that measured the sections kept from an earlier run
        extra_versions["dagster"] = results.get("meta", {}).get("versions", {}).get(
            "dagster", "not run (pass --with-dagster)"
        )
    results["meta"] = {
        "machine": _report.machine(),
        "versions": _report.versions(extra_versions),
        "third_party_hook_plugins": f"not loaded in timed runs ({AUTOLOAD_ENV}=1)",
        "command": " ".join([Path(sys.executable).name, "-m", "tests.benchmarks",
                             *(argv if argv is not None else sys.argv[1:])]),
    }
    reps, dagster_reps = _in_process_plan(args.quick, args.dagster_max_n)
    worker = DagsterWorker(dagster_python) if dagster_python is not None else None

    def record(name: str, run: Callable[[], dict[str, Any]]) -> None:
        if name not in selected:
            return
        print(f"[{datetime.datetime.now():%H:%M:%S}] {name} ...", file=sys.stderr, flush=True)
        try:
            section = run()
        except Exception:  # one broken workload must not lose the others' figures
            section = {"error": traceback.format_exc()}
            print(section["error"], file=sys.stderr)
        section["measured_at"] = datetime.datetime.now().isoformat(timespec="seconds")
        section["mode"] = mode + (", with Dagster" if worker is not None else "")
        results[name] = section
        LATEST.write_text(json.dumps(results, indent=1) + "\n")  # kept if a later one dies

    try:
        from tests.benchmarks._discovery import run_discovery
        from tests.benchmarks._history import run_history
        from tests.benchmarks._inprocess import SIZES, run_in_process
        from tests.benchmarks._multiprocess import run_multiprocess
        from tests.benchmarks._profile import run_profile
        from tests.benchmarks._sessions import run_sessions
        from tests.benchmarks._startup import run_memory, run_startup
        from tests.benchmarks._tricks import run_tricks

        for kind in ("fan", "chain"):
            record(kind, lambda kind=kind: {  # type: ignore[misc]
                "sizes": run_in_process(kind, SIZES, reps, worker, dagster_reps)})
        record("multiprocess", lambda: {"contenders": run_multiprocess(
            2 if args.quick else 5, worker, 1 if args.quick else 3)})
        record("discovery", lambda: run_discovery(7 if args.quick else 31))
        record("import", lambda: run_startup(
            5 if args.quick else 15, str(dagster_python) if dagster_python else None))
        record("memory", run_memory)
        record("profile", lambda: run_profile(args.quick))
        record("tricks", lambda: {"sizes": run_tricks(5 if args.quick else 15)})
        record("history", lambda: run_history(15 if args.quick else 61))
        record("sessions", lambda: run_sessions(1 if args.quick else 3))
    finally:
        if worker is not None:
            worker.close()
    return _write_report(results, selected)


def _write_report(results: dict[str, Any], selected: tuple[str, ...]) -> int:
    """Targets into ``results``; latest.json and RESULTS.md written; tables printed."""
    results["targets"] = _report.evaluate_targets(results)
    LATEST.write_text(json.dumps(results, indent=1) + "\n")
    previous = SUMMARY.read_text() if SUMMARY.exists() else None
    SUMMARY.write_text(_report.markdown(results, previous))
    print("\n".join(_report.tables({k: v for k, v in results.items() if k in selected})))
    print("\n".join(_report.target_lines(results["targets"])))
    print(f"\nfigures: {LATEST.relative_to(ROOT)}; summary: {SUMMARY.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
