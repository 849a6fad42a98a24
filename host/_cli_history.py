"""``host runs``, ``host show``, ``host report``, and what ``host run`` does with the run history.

The history is a sqlite database (``specs/history.md``): ``host run`` records each run into it
unless ``--no-history`` is given, ``--report`` writes the run's picture, ``--rerun-failed``
selects what an earlier run did not finish.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from host._cli_base import EXIT_OK
from host._config_schema import RunConfig
from host._errors import ConfigError
from host._events import RunResult
from host._output import Output, seconds, table

__all__ = [
    "add_commands",
    "add_run_arguments",
    "finish_recording",
    "history_target",
    "rerun_terms",
    "run_recorded",
]


def rerun_terms(args: argparse.Namespace) -> list[str] | None:
    """With ``--rerun-failed RUN_ID``: that run's failed and skipped assets (each run with its
    upstream); otherwise ``None``."""
    rerun = getattr(args, "rerun_failed", None)
    if rerun is None:
        return None
    if getattr(args, "select", None) is not None:
        raise ConfigError("--rerun-failed and --select both choose the assets: give one of them")
    from host._history_query import get_run, rerun_selection
    from host._history_schema import HistoryError

    target = history_target(args, Path(args.file)) or history_target(
        argparse.Namespace(), Path(args.file)
    )
    assert target is not None
    record = get_run(target, rerun)
    recorded = record.run.get("config")
    if recorded and os.path.abspath(recorded) != os.path.abspath(args.file):
        raise HistoryError(
            f"run {record.run['run_id']} ran the run config {recorded}, not {args.file}: run it "
            f"again with `host run {recorded} --rerun-failed {record.run['run_id']}`"
        )
    wanted = rerun_selection(record)
    if not wanted:
        raise HistoryError(
            f"run {record.run['run_id']} has no failed or skipped assets: nothing to run again"
        )
    return list(wanted)


def run_recorded(
    config: RunConfig, history: Path | None, plugins: list[object], recordings: list[Any]
) -> RunResult:
    """Run ``config`` (recorded into ``history`` unless it is ``None``); its recording goes
    into ``recordings``, also when the run is interrupted."""
    from host._history import capture
    from host._run import run_assets
    from host._switches import use_switches

    kwargs = config.run_kwargs()
    if history is not None:
        kwargs["history"] = history
    with capture(config.path) as captured, use_switches(config.switches):
        try:
            return run_assets(**kwargs, raise_on_error=False, plugins=plugins)
        finally:
            recordings.extend(captured.recordings)


def history_target(args: argparse.Namespace, config: Path | None) -> Path | None:
    """Where ``host run`` records (``None``: ``--no-history``), or the history commands read."""
    from host._history_schema import default_path

    if getattr(args, "no_history", False):
        return None
    given = getattr(args, "history", None)
    return Path(given) if given else default_path(config)


def finish_recording(
    args: argparse.Namespace,
    out: Output,
    result: RunResult,
    recording: Any,
    planned: Sequence[str],
    outcome: str | None = None,
) -> None:
    """Store the outputs as shown, wait for the record, write ``--report`` (of a run that
    ended with ``outcome``, by default what ``result`` says)."""
    from host._summary import output_repr

    if recording is not None:
        shown = result.outputs
        recording.outputs(
            {key: output_repr(shown[key], out.mask) for key in planned if key in shown}
        )
        recording.wait()
    report = getattr(args, "report", None)
    if report is None:
        return
    from host._history import record_of
    from host._picture import write_picture

    if recording is not None and not recording.failed:
        from host._history_query import get_run

        record = get_run(recording.path, result.run_id)
    else:
        record = record_of(
            {
                "run_id": result.run_id,
                "executor": getattr(result.events[0], "executor", "?") if result.events else "?",
                "planned": list(planned),
                "config": str(args.file),
                "pid": os.getpid(),
                "outcome": outcome or ("succeeded" if result.success else "failed"),
                "host_version": _host_version(),
                "started": result.events[0].timestamp if result.events else 0.0,
            },
            result.events,
            {},
            out.secrets,
        )
    from host._history_schema import HistoryError

    try:
        path = write_picture(record, report, out.mask)
    except HistoryError as exc:
        out.write(f"host: {exc}", err=True)
        return
    # With --json, standard output holds the JSON document alone.
    out.write(f"The picture of the run: {path}", err=bool(getattr(args, "json", False)))


def _host_version() -> str:
    from host._version import __version__

    return __version__


def _cmd_runs(args: argparse.Namespace, out: Output) -> int:
    from host._history_query import list_runs, prune

    path = history_target(args, None)
    assert path is not None
    from host._history_schema import HistoryError

    if args.action == "prune":
        if args.keep is None or args.keep < 0:
            raise HistoryError("host runs prune needs --keep N (N >= 0): the newest runs to keep")
        gone = prune(path, args.keep)
        out.write(f"{path}: deleted {gone} run(s), kept the newest {args.keep}")
        return EXIT_OK
    if args.keep is not None:
        raise HistoryError(
            f"--keep {args.keep} is for `host runs prune`; `host runs` only lists (use --limit)"
        )
    if args.limit < 1:
        raise HistoryError(f"--limit {args.limit}: give how many runs to list, 1 or more")
    runs = list_runs(path, limit=args.limit, failed=args.failed)
    if args.json:
        out.write(json.dumps(runs, indent=2))
        return EXIT_OK
    rows = [
        [
            run["run_id"],
            _clock(run["started"]),
            run["outcome"],
            run["executor"],
            f"{run['counts'].get('ok', 0)} ok, {run['counts'].get('failed', 0)} failed, "
            f"{run['counts'].get('skipped', 0)} skipped",
            seconds(run["duration"]),
            run["config"] or "-",
        ]
        for run in runs
    ]
    headers = ["RUN", "STARTED", "OUTCOME", "EXECUTOR", "ASSETS", "TIME", "CONFIG"]
    none = f"no failed or interrupted run recorded in {path}" if args.failed else (
        f"no runs recorded in {path}"
    )
    out.write(table(headers, rows, indent="") if rows else none)
    return EXIT_OK


def _clock(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")


def _cmd_show(args: argparse.Namespace, out: Output) -> int:
    from host._history_query import get_run, show_text

    path = history_target(args, None)
    assert path is not None
    record = get_run(path, args.run_id)
    if args.json:
        out.write(json.dumps(dataclasses.asdict(record), indent=2))
    else:
        out.write(show_text(record, out.mask))
    return EXIT_OK


def _cmd_report(args: argparse.Namespace, out: Output) -> int:
    from host._history_query import get_run
    from host._picture import write_picture

    path = history_target(args, None)
    assert path is not None
    record = get_run(path, args.run_id)
    written = write_picture(record, args.output, out.mask)
    out.write(f"The picture of run {record.run['run_id']}: {written}")
    return EXIT_OK


def _add_history_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        metavar="PATH",
        help="the run history database (default: $HOST_HOME/history.db, else "
        ".host/history.db beside the run config, or in the current folder)",
    )


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    _add_history_option(run)
    run.add_argument("--no-history", action="store_true", help="do not record the run")
    run.add_argument("--report", metavar="HTML", help="write the picture of the run to HTML")
    run.add_argument(
        "--rerun-failed",
        metavar="RUN_ID",
        help="run only the assets that failed or were skipped in RUN_ID, with their upstream",
    )


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    runs = commands.add_parser("runs", parents=[common], help="list the recorded runs")
    runs.add_argument("action", nargs="?", choices=["prune"], help="prune: delete old runs")
    runs.add_argument("--limit", type=int, default=20, help="at most N runs (default 20)")
    runs.add_argument("--failed", action="store_true", help="only runs that did not succeed")
    runs.add_argument("--keep", type=int, help="with prune: the newest runs to keep")
    runs.add_argument("--json", action="store_true", help="print JSON")
    _add_history_option(runs)
    runs.set_defaults(handler=_cmd_runs)

    show = commands.add_parser("show", parents=[common], help="the summary of a recorded run")
    show.add_argument("run_id", help="a run id (or the start of one)")
    show.add_argument("--json", action="store_true", help="print JSON")
    _add_history_option(show)
    show.set_defaults(handler=_cmd_show)

    report = commands.add_parser(
        "report", parents=[common], help="write the picture of a recorded run (one HTML file)"
    )
    report.add_argument("run_id", help="a run id (or the start of one)")
    report.add_argument("-o", "--output", required=True, metavar="HTML", help="the file to write")
    _add_history_option(report)
    report.set_defaults(handler=_cmd_report)
