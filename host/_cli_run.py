"""``host run`` and ``host check``: run or validate a TOML run config.

What ``run`` prints as the run goes is :mod:`host._progress`; the summary at the end is
:mod:`host._summary`; the ``--json`` documents are :mod:`host._cli_json`'s. Exit codes are
:mod:`host._cli_base`'s.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
from collections.abc import Iterator, Sequence
from typing import Any

from host._cli_base import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM
from host._cli_history import (
    add_run_arguments,
    finish_recording,
    history_target,
    rerun_terms,
    run_recorded,
)
from host._cli_json import Outcome, check_report, run_report
from host._config_load import load_run_config, problems_of
from host._config_schema import RunConfig
from host._errors import ConfigError, HostError
from host._events import AssetFailed, AssetSkipped, Event, RunResult, RunStarted, describe_exception
from host._interrupts import SignalExit
from host._output import Output
from host._progress import Progress, rich_summary
from host._secret_values import secret_values
from host._summary import error_text, plain_summary, run_view

__all__ = ["add_commands"]


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``run`` and ``check`` to the ``host`` command's subparsers ``commands``."""
    selecting = argparse.ArgumentParser(add_help=False)
    selecting.add_argument(
        "--select",
        metavar="NAMES",
        help="comma-separated asset keys to run, each with its upstream assets; +name says so "
        "explicitly, name+ adds everything downstream of name (replaces [run] selection)",
    )
    selecting.add_argument(
        "--executor", metavar="NAME", help="run on this executor (replaces [run] executor)"
    )
    selecting.add_argument(
        "--set",
        metavar="DOTTED.KEY=VALUE",
        action="append",
        default=[],
        help="override one value of the file, in TOML syntax (repeatable), e.g. "
        "--set run.executor_config.max_workers=4",
    )
    selecting.add_argument("--json", action="store_true", help="print one JSON document")

    run = commands.add_parser("run", parents=[common, selecting], help="run a TOML run config")
    run.add_argument("file", help="the run config (TOML)")
    run.add_argument(
        "--plain",
        action="store_true",
        help="plain progress lines even on a terminal (also when NO_COLOR is set)",
    )
    run.add_argument(
        "--log-level",
        metavar="LEVEL",
        type=_level,
        default=None,
        help="show the log records of assets and resources from LEVEL up: DEBUG, INFO, "
        "WARNING (the default), ERROR, CRITICAL; also what --json lists",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v shows log records from INFO up, -vv from DEBUG up (as --log-level)",
    )
    add_run_arguments(run)
    run.set_defaults(handler=_cmd_run)

    check = commands.add_parser(
        "check",
        parents=[common, selecting],
        help="validate a run config; nothing is brought up",
    )
    check.add_argument("file", help="the run config (TOML)")
    check.set_defaults(handler=_cmd_check)


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _level(text: str) -> int:
    """``--log-level``'s value: a level's name (any case) or number."""
    name = text.strip().upper()
    if name in _LEVELS:
        return int(getattr(logging, name))
    if name.isdigit():
        return int(name)
    raise argparse.ArgumentTypeError(
        f"unknown log level {text!r}; give one of {', '.join(_LEVELS)}"
    )


def log_level(args: argparse.Namespace) -> int:
    """The level ``host run`` shows log records from: ``--log-level``, else ``-v`` (INFO) or
    ``-vv`` (DEBUG), else WARNING."""
    if args.log_level is not None:
        return int(args.log_level)
    verbose = int(getattr(args, "verbose", 0) or 0)
    return logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING


@contextlib.contextmanager
def _root_level(level: int) -> Iterator[None]:
    """The root logger lets records from ``level`` through during the block (so the code's own
    loggers' records are captured, here and in worker processes, which take its levels)."""
    root = logging.getLogger()
    previous = root.level
    if level < previous:
        root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(previous)


class _Unclaimed(logging.Handler):
    """On the root logger during ``host run``: a record of no step (an assets module's logger
    at import time, a worker's own), from WARNING up, on stderr as ``LEVEL logger: message``;
    the steps' records are shown from their events, the host's own by ``host``'s handler."""

    def __init__(self, out: Output) -> None:
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        if getattr(record, "host_step", None) is not None or name == "host" or (
            name.startswith("host.")
        ):
            return
        self.out.write(f"{record.levelname} {name}: {record.getMessage()}", err=True)


@contextlib.contextmanager
def _logging(out: Output, level: int) -> Iterator[None]:
    """Logging during ``host run``: records from ``level`` through (see :func:`_root_level`),
    and :class:`_Unclaimed` on the root logger."""
    root = logging.getLogger()
    handler = _Unclaimed(out)
    root.addHandler(handler)
    try:
        with _root_level(level):
            yield
    finally:
        root.removeHandler(handler)


def _load(args: argparse.Namespace) -> RunConfig:
    rerun = rerun_terms(args)
    selection = rerun if rerun is not None else _terms(args.select)
    return load_run_config(
        args.file, overrides=args.set, executor=args.executor, selection=selection
    )


def _terms(select: str | None) -> list[str] | None:
    """``--select``'s comma-separated terms (empty ones dropped; none left is an error)."""
    if select is None:
        return None
    terms = [term.strip() for term in select.split(",") if term.strip()]
    if not terms:
        raise ConfigError(
            f"--select {select!r} names no asset; give comma-separated asset keys, e.g. "
            f"--select users,+orders,report+"
        )
    return terms


def _live(args: argparse.Namespace, out: Output) -> bool:
    return (
        not args.plain
        and not os.environ.get("NO_COLOR")
        and out.stdout is not None
        and out.stdout.isatty()
        and os.environ.get("TERM") != "dumb"
    )


def _stopped_by(exc: BaseException) -> tuple[str, int]:
    """The signal's name and the exit code for an interrupt."""
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT", EXIT_SIGINT
    code = exc.code if isinstance(exc, SignalExit) and isinstance(exc.code, int) else EXIT_SIGTERM
    try:
        return signal.Signals(code - 128).name, code
    except ValueError:
        return "a signal", code


def _partial_result(events: Sequence[Event]) -> RunResult:
    """A result made of the events seen before a run was stopped (outputs are not known)."""
    run_id = next((e.run_id for e in events if isinstance(e, RunStarted)), "-")
    return RunResult(
        run_id=run_id,
        success=False,
        outputs={},
        failures={e.asset_key: e.error for e in events if isinstance(e, AssetFailed)},
        skipped=tuple(e.asset_key for e in events if isinstance(e, AssetSkipped)),
        events=tuple(events),
    )


def _cmd_run(args: argparse.Namespace, out: Output) -> int:
    config = _load(args)
    out.secrets = secret_values(config.resources)
    # Worker processes started by the executor read the plugin switches from the environment.
    os.environ.update(config.switches.environ())
    level = log_level(args)
    progress = Progress(
        out, len(config.planned), _live(args, out), quiet=args.json, log_level=level
    )
    history = history_target(args, config.path)
    if getattr(args, "report", None) is not None:
        from host._picture import report_path

        report_path(args.report)  # before anything is brought up
    recordings: list[Any] = []
    try:
        with progress.showing(), _logging(out, level):
            result = run_recorded(config, history, [progress], recordings)
    except (KeyboardInterrupt, SignalExit) as exc:
        name, code = _stopped_by(exc)
        outcome: Outcome = "interrupted" if name == "SIGINT" else "terminated"
        partial = _partial_result(progress.events)
        _report(args, out, progress, config, partial, code, outcome, name)
        if partial.events:
            last = recordings[-1] if recordings else None
            finish_recording(args, out, partial, last, config.planned, "interrupted")
        raise
    recording = recordings[-1] if recordings else None
    if progress.failure is not None:
        out.write(
            f"host: warning: the progress display failed ({describe_exception(progress.failure)}); "
            f"the run was not affected",
            err=True,
        )
    code = EXIT_OK if result.success else EXIT_FAILED
    _report(args, out, progress, config, result, code, "succeeded" if result.success else "failed")
    finish_recording(args, out, result, recording, config.planned)
    return code


def _report(
    args: argparse.Namespace,
    out: Output,
    progress: Progress,
    config: RunConfig,
    result: RunResult,
    code: int,
    outcome: Outcome,
    stopped: str | None = None,
) -> None:
    """The end of ``host run``: the JSON document, or the summary and the tracebacks asked for."""
    if args.json:
        report = run_report(
            result.events,
            result.outputs,
            config.planned,
            config.resource_types,
            code,
            outcome,
            out.mask,
            log_level(args),
        )
        out.write(report.model_dump_json(indent=2))
        return
    view = run_view(result, config.resource_types, config.planned, out.mask, stopped)
    show_tb = bool(getattr(args, "traceback", False))
    if progress.console is not None:
        progress.print(rich_summary(view))
        if show_tb:
            for group in view.errors:
                out.write(f"error {group.number} ({', '.join(group.where)}):", err=True)
                out.write(group.traceback.rstrip(), err=True)
        return
    out.write(plain_summary(view))
    # Each distinct error once, on stderr; with --traceback, its traceback (the first seen).
    for group in view.errors:
        out.write(error_text(group), err=True)
        if show_tb:
            out.write(group.traceback.rstrip(), err=True)


def _cmd_check(args: argparse.Namespace, out: Output) -> int:
    if not args.json:
        config = _load(args)
        resources = ", ".join(
            f"{key} ({info.name} from {info.origin})" for key, info in config.resource_types.items()
        )
        out.write(
            f"{args.file}: ok. {len(config.planned)} assets ({', '.join(config.planned)}) on "
            f"{config.executor.name}; resources: {resources or 'none'}. Nothing was brought up."
        )
        return EXIT_OK
    try:
        config = _load(args)
    except HostError as exc:
        report = check_report(str(args.file), problems_of(exc))
        out.write(report.model_dump_json(indent=2))
        return EXIT_INVALID
    report = check_report(
        str(args.file), [], config.executor.name, config.planned, config.resource_types
    )
    out.write(report.model_dump_json(indent=2))
    return EXIT_OK
