"""``host run`` and ``host check``: run or validate a TOML run config.

What ``run`` prints as the run goes is :mod:`host._progress`; the summary at the end is
:mod:`host._summary`. Exit codes are :mod:`host._cli_base`'s.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from host._cli_base import EXIT_FAILED, EXIT_OK
from host._config_load import load_run_config
from host._events import describe_exception
from host._output import Output
from host._progress import Progress
from host._secrets import secret_values
from host._summary import summary

__all__ = ["add_commands"]


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``run`` and ``check`` to the ``host`` command's subparsers ``commands``."""
    run = commands.add_parser("run", parents=[common], help="run a TOML run config")
    run.add_argument("file", help="the run config (TOML)")
    run.add_argument(
        "--plain", action="store_true", help="plain progress lines even on a terminal"
    )
    run.set_defaults(handler=_cmd_run)

    check = commands.add_parser(
        "check", parents=[common], help="validate a run config; nothing is brought up"
    )
    check.add_argument("file", help="the run config (TOML)")
    check.set_defaults(handler=_cmd_check)


def _cmd_run(args: argparse.Namespace, out: Output) -> int:
    config = load_run_config(args.file)
    out.secrets = secret_values(config.resources)
    # Worker processes started by the executor read the plugin switches from the environment.
    os.environ.update(config.switches.environ())
    live = (
        not args.plain
        and out.stdout is not None
        and out.stdout.isatty()
        and os.environ.get("TERM") != "dumb"
    )
    progress = Progress(out, len(config.planned), live)
    with progress.showing():
        result = config.run(raise_on_error=False, plugins=[progress])
    if progress.failure is not None:
        out.write(
            f"host: warning: the progress display failed ({describe_exception(progress.failure)}); "
            f"the run was not affected",
            err=True,
        )
    out.write(summary(result, config.resource_types, config.planned, out.mask))
    show_tb = bool(getattr(args, "traceback", False))
    for key, error in result.failures.items():
        out.write(f"asset {key} failed: {error.type}: {error.message}", err=True)
        if show_tb:
            out.write(error.traceback.rstrip(), err=True)
    for error in result.resource_errors:
        out.write(f"resource {error.resource_key}: {error.message}", err=True)
        if show_tb:
            out.write(error.traceback.rstrip(), err=True)
    return EXIT_OK if result.success else EXIT_FAILED


def _cmd_check(args: argparse.Namespace, out: Output) -> int:
    config = load_run_config(args.file)
    resources = ", ".join(
        f"{key} ({info.name} from {info.origin})" for key, info in config.resource_types.items()
    )
    out.write(
        f"{args.file}: ok. {len(config.planned)} assets ({', '.join(config.planned)}) on "
        f"{config.executor.name}; resources: {resources or 'none'}. Nothing was brought up."
    )
    return 0

