"""The ``host`` command: run and check run configs, list plugins and resource types.

Commands: ``run`` and ``check`` (``host._cli_run``), ``plugins``, ``resources`` and ``executors``
(``host._cli_info``), the run history's ``runs``, ``show`` and ``report``
(``host._cli_history``, ``specs/history.md``), and ``new plugin`` (``host._scaffold``); what
``run`` prints is in ``host._progress``.
Exit codes (``host._cli_base``): 0 success; 1 the run failed (an asset or a resource phase
failed, a worker died, the run's timeout passed); 2 invalid input (run config, definitions,
plugins, command line): nothing was brought up; 130 interrupted by SIGINT, 143 terminated by
SIGTERM and 129 by SIGHUP, after every resource that came up was torn down. Errors are one
message on stderr, with the traceback only under ``--traceback``. Nothing printed contains the
value of a secret: ``SecretStr`` fields and the environment variables a run config reads are
masked in all output, including tracebacks and messages of failed assets.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from host import _cli_history, _cli_info, _cli_run, _scaffold
from host._cli_base import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_SIGHUP,
    EXIT_SIGINT,
    EXIT_SIGTERM,
)
from host._discovery import discover_plugins
from host._errors import HostError
from host._events import describe_exception, safe_repr, safe_str
from host._interrupts import SignalExit
from host._output import Output
from host._plugin_api import PLUGIN_API_VERSION

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_SIGHUP",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "main",
]

# -- commands ---------------------------------------------------------------------------------


def _cmd_new_plugin(args: argparse.Namespace, out: Output) -> int:
    return _scaffold.run(args, out.write)


def version_text() -> str:
    """What ``host --version`` prints: host's version, then each plugin distribution's.

    Like pytest's header: ``plugins: host-plugin-dask-0.1.0, host-plugin-http-0.1.0``, one entry
    per installed distribution (other than host) with an entry point in the host's groups,
    sorted by name, with its status when no entry point of it is usable (``disabled``,
    ``incompatible``...). It reads only distribution metadata: no plugin is imported.
    """
    import host

    statuses: dict[tuple[str, str], set[str]] = {}
    for info in discover_plugins():
        if info.distribution and info.distribution != "host":
            key = (info.distribution, info.version or "?")
            statuses.setdefault(key, set()).add(info.status)
    names = []
    for (dist, version), seen in sorted(statuses.items()):
        note = "" if "ok" in seen else f" ({', '.join(sorted(seen))})"
        names.append(f"{dist}-{version}{note}")
    return (
        f"host {host.__version__} (plugin API {PLUGIN_API_VERSION})\n"
        f"plugins: {', '.join(names) or 'none'}"
    )


class _VersionAction(argparse.Action):
    """``--version``: the text is made when asked for (it scans the installed distributions)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        sys.stdout.write(version_text() + "\n")
        parser.exit()


def _parser() -> argparse.ArgumentParser:

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--traceback",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of errors",
    )
    parser = argparse.ArgumentParser(
        prog="host",
        description="Run assets with pip-installed resources; list and check plugins.",
        parents=[common],
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="show host's version and every installed plugin distribution's, then exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _cli_run.add_commands(commands, common)
    _cli_info.add_commands(commands, common)
    _cli_history.add_commands(commands, common)

    new = commands.add_parser("new", parents=[common], help="create a new plugin package")
    kinds = new.add_subparsers(dest="kind", required=True, metavar="KIND")
    plugin = kinds.add_parser(
        "plugin",
        parents=[common],
        help="a plugin package (--kind resource, hook or executor), ready to install and test",
    )
    _scaffold.add_arguments(plugin)
    plugin.set_defaults(handler=_cmd_new_plugin)
    return parser


class _LogHandler(logging.Handler):
    """Warnings of the host's loggers (e.g. a hook plugin that cannot load), masked, on stderr."""

    def __init__(self, out: Output) -> None:
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "host_step", None) is not None:
            return  # an asset's or a resource's record: `host run` shows it as that step's
        self.out.write(f"host: {record.levelname.lower()}: {record.getMessage()}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``host`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args = _parser().parse_args(argv)
    out = Output(sys.stdout, sys.stderr)
    logger = logging.getLogger("host")
    handler = _LogHandler(out)
    logger.addHandler(handler)
    try:
        return _dispatch(args, out)
    finally:
        logger.removeHandler(handler)


def _dispatch(args: argparse.Namespace, out: Output) -> int:
    show_tb = bool(getattr(args, "traceback", False))
    try:
        code: int = args.handler(args, out)
    except HostError as exc:
        out.error(safe_str(exc), exc, show_tb)
        return EXIT_INVALID
    except KeyboardInterrupt as exc:
        out.error(
            "interrupted (SIGINT): the run was stopped and each resource that came up was torn "
            "down (a teardown that failed is shown above)",
            exc,
            show_tb,
        )
        return EXIT_SIGINT
    except SignalExit as exc:  # the host's own, for SIGTERM
        code = exc.code if isinstance(exc.code, int) else EXIT_SIGTERM
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = "a signal"
        out.error(
            f"terminated ({name}): the run was stopped and each resource that came up was torn "
            f"down (a teardown that failed is shown above)",
            exc,
            show_tb,
        )
        return code
    except SystemExit as exc:  # sys.exit() in code the command ran, outside any asset
        hint = "" if show_tb else " (run again with --traceback for details)"
        out.error(
            f"sys.exit({safe_repr(exc.code)}) was called by code the command ran (a resource, a "
            f"hook plugin); it was not allowed to end the command{hint}",
            exc,
            show_tb,
        )
        return EXIT_FAILED
    except Exception as exc:
        hint = "" if show_tb else " (run again with --traceback for details)"
        out.error(f"unexpected {describe_exception(exc)}{hint}", exc, show_tb)
        return EXIT_FAILED
    return code
