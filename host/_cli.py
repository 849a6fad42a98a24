"""The ``host`` command: run and check run configs, list plugins and resource types.

Commands: ``run``, ``check``, ``plugins``, ``resources``, and ``new plugin`` (``host._scaffold``);
what ``run`` prints is in ``host._progress``.
Exit codes: 0 success; 1 the run failed (an asset or a resource phase failed, a worker died, the
run's timeout passed); 2 invalid input (run config, definitions, plugins, command line): nothing
was brought up; 130 interrupted by SIGINT, 143 terminated by SIGTERM and 129 by SIGHUP, after
every resource that came up was torn down. Errors are one message on stderr, with the traceback
only under ``--traceback``. Nothing printed contains the value of a
secret: ``SecretStr`` fields and the environment variables a run config reads are masked in all
output, including tracebacks and messages of failed assets.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from host import _scaffold
from host._config_load import load_run_config
from host._discovery import (
    PluginInfo,
    check_entry_point,
    discover_plugins,
    load_entry_point,
    lookup,
    suggest,
)
from host._errors import HostError, PluginError
from host._events import describe_exception, format_exception, safe_repr, safe_str
from host._interrupts import SignalExit
from host._output import Output, first_line, table
from host._plugin_api import GROUPS, PLUGIN_API_VERSION, RESOURCES_GROUP
from host._progress import Progress
from host._resource import ConfigurableResource
from host._secrets import secret_values
from host._summary import summary

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_SIGHUP",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "main",
]

#: The run succeeded (or the command did what was asked).
EXIT_OK = 0
#: The run failed: an asset or a resource phase failed, a worker died, the timeout passed.
EXIT_FAILED = 1
#: Invalid input (run config, definitions, plugins, command line); nothing was brought up.
EXIT_INVALID = 2
#: Interrupted by SIGINT (128 + 2), after every resource that came up was torn down.
EXIT_SIGINT = 130
#: Terminated by SIGTERM (128 + 15), after every resource that came up was torn down.
EXIT_SIGTERM = 143
#: Terminated by SIGHUP (128 + 1: the terminal went away), after every resource that came up
#: was torn down.
EXIT_SIGHUP = 129


# -- commands ---------------------------------------------------------------------------------


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


def _plugin_rows(infos: Sequence[PluginInfo]) -> list[list[str]]:
    return [
        [
            info.group,
            info.name,
            info.distribution or "?",
            info.version or "?",
            info.value,
            info.status,
        ]
        for info in infos
    ]


def _load_traceback(info: PluginInfo) -> str | None:
    """The traceback of what importing a broken entry point raised (cached, not re-imported)."""
    try:
        load_entry_point(info)
    except PluginError as exc:
        return format_exception(exc).rstrip()
    return None


def _cmd_plugins(args: argparse.Namespace, out: Output) -> int:
    infos = discover_plugins()
    if args.check:
        infos = tuple(check_entry_point(info) for info in infos)
    show_tb = bool(getattr(args, "traceback", False))
    tracebacks = {
        index: _load_traceback(info)
        for index, info in enumerate(infos)
        if args.check and show_tb and info.status == "broken"
    }
    if args.json:
        rows = [info.as_dict() for info in infos]
        if args.check:  # what importing it gave: the error of a broken one
            for index, row in enumerate(rows):
                row["error"] = row["problem"] if row["status"] == "broken" else None
                if index in tracebacks:
                    row["traceback"] = tracebacks[index]
        out.write(json.dumps(rows, indent=2))
    else:
        out.write(f"plugin API {PLUGIN_API_VERSION}; groups: {', '.join(GROUPS)}")
        headers = ["GROUP", "NAME", "DISTRIBUTION", "VERSION", "VALUE", "STATUS"]
        out.write(table(headers, _plugin_rows(infos), indent=""))
        for index, info in enumerate(infos):
            if info.problem:
                out.write(f"{info.group} {info.name} ({info.origin}): {info.problem}")
            if tracebacks.get(index):
                out.write(str(tracebacks[index]), err=True)
    bad = [i for i in infos if i.status in ("broken", "incompatible", "conflict")]
    return 2 if args.check and bad else 0


def _schema_type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rpartition("/")[2]
    if "anyOf" in prop:
        return " | ".join(_schema_type(p) for p in prop["anyOf"])
    kind = str(prop.get("type", "any"))
    if kind == "array" and isinstance(prop.get("items"), dict):
        return f"array of {_schema_type(prop['items'])}"
    if prop.get("format") == "password":
        return f"{kind} (secret)"
    return kind


def _cmd_resources(args: argparse.Namespace, out: Output) -> int:
    if args.type is None:
        infos = discover_plugins(RESOURCES_GROUP)
        if args.json:
            out.write(json.dumps([info.as_dict() for info in infos], indent=2))
            return 0
        headers = ["TYPE", "DISTRIBUTION", "VERSION", "VALUE", "STATUS"]
        rows = [row[1:] for row in _plugin_rows(infos)]
        out.write(table(headers, rows, indent="") if rows else "no resource types installed")
        return 0
    info = lookup(RESOURCES_GROUP, args.type, distribution=args.distribution)
    if info is None:
        raise PluginError(
            f"no resource type is called {args.type!r}; {suggest(RESOURCES_GROUP, args.type)}."
        )
    cls: type[ConfigurableResource] = load_entry_point(info)
    try:
        schema = cls.model_json_schema()
    except Exception as exc:
        raise PluginError(
            f"resource type {args.type!r} ({info.describe()}): no JSON schema can be made for its "
            f"configuration: {describe_exception(exc)}"
        ) from exc
    if args.json:
        out.write(json.dumps(schema, indent=2))
        return 0
    out.write(f"{info.name}: {info.value} ({info.origin})")
    if schema.get("description"):
        out.write(first_line(str(schema["description"])))
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        if name in required:
            default = "required"
        elif "default" in prop:
            default = "default " + json.dumps(prop["default"])
        else:
            default = "optional"
        rows.append([name, _schema_type(prop), default, first_line(prop.get("description", ""))])
    out.write(table(["FIELD", "TYPE", "DEFAULT", "DESCRIPTION"], rows) if rows else "  no fields")
    out.write(f"The JSON schema: host resources {info.name} --json")
    return 0


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

    plugins = commands.add_parser(
        "plugins", parents=[common], help="list every entry point of the host's groups"
    )
    plugins.add_argument(
        "--check", action="store_true", help="import each one and report its status and error"
    )
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=_cmd_plugins)

    resources = commands.add_parser(
        "resources", parents=[common], help="list resource types, or show one's config schema"
    )
    resources.add_argument("type", nargs="?", help="a resource type: show its configuration")
    resources.add_argument(
        "--distribution", help="the distribution to take TYPE from, when several register it"
    )
    resources.add_argument("--json", action="store_true", help="print JSON")
    resources.set_defaults(handler=_cmd_resources)

    new = commands.add_parser("new", parents=[common], help="create a new plugin package")
    kinds = new.add_subparsers(dest="kind", required=True, metavar="KIND")
    plugin = kinds.add_parser(
        "plugin", parents=[common], help="a resource plugin package, ready to install and test"
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
