"""``host plugins``, ``host resources`` and ``host executors``: what is installed, and a
resource type's configuration or an executor's settings."""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import re
from collections.abc import Sequence
from typing import Any

from host._discovery import (
    PluginInfo,
    check_entry_point,
    discover_plugins,
    load_entry_point,
    lookup,
    names_in,
    suggest,
)
from host._errors import PluginError
from host._events import describe_exception, format_exception
from host._output import Output, first_line, table
from host._plugin_api import EXECUTORS_GROUP, GROUPS, PLUGIN_API_VERSION, RESOURCES_GROUP
from host._resource import ConfigurableResource
from host.executors.base import Executor

__all__ = ["add_commands"]


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``plugins`` and ``resources`` to the ``host`` command's subparsers ``commands``."""
    plugins = commands.add_parser(
        "plugins", parents=[common], help="list every entry point of the host's groups"
    )
    plugins.add_argument(
        "--check", action="store_true", help="import each one and report its status and error"
    )
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=_cmd_plugins)

    # `host resources [TYPE]` and `host executors [NAME]`: a listing, or one entry's schema.
    for command, noun, title, one, handler in (
        ("resources", "type", "resource types", "a resource type: show its configuration",
         _cmd_resources),
        ("executors", "name", "executors", "an executor: show its settings", _cmd_executors),
    ):
        parser = commands.add_parser(
            command, parents=[common], help=f"list {title}, or show one's schema"
        )
        parser.add_argument(noun, nargs="?", help=one)
        parser.add_argument(
            "--distribution",
            help=f"the distribution to take {noun.upper()} from, when several register it",
        )
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(handler=handler)


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


def _list_group(
    group: str, title: str, none: str, args: argparse.Namespace, out: Output
) -> int:
    """``host resources`` / ``host executors`` without a name: the group's entry points, as a
    table (``title`` heads the name column) or, with ``--json``, as JSON."""
    infos = discover_plugins(group)
    if args.json:
        out.write(json.dumps([info.as_dict() for info in infos], indent=2))
        return 0
    rows = [row[1:] for row in _plugin_rows(infos)]
    headers = [title, "DISTRIBUTION", "VERSION", "VALUE", "STATUS"]
    out.write(table(headers, rows, indent="") if rows else none)
    return 0


def _cmd_resources(args: argparse.Namespace, out: Output) -> int:
    if args.type is None:
        return _list_group(RESOURCES_GROUP, "TYPE", "no resource types installed", args, out)
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
    _show_schema(out, info, schema, "FIELD", "no fields")
    out.write(f"The JSON schema: host resources {info.name} --json")
    return 0


def _attribute_docs(doc: str | None) -> dict[str, str]:
    """The first line of each entry of a Google-style ``Attributes:`` section of ``doc``."""
    found: dict[str, str] = {}
    inside = False
    for line in inspect.cleandoc(doc or "").splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break
        match = re.match(r"^    (\w+)(?: \([^)]*\))?: (.*)$", line) if inside else None
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _show_schema(
    out: Output,
    info: PluginInfo,
    schema: dict[str, Any],
    column: str,
    none: str,
    docs: dict[str, str] | None = None,
) -> None:
    """An entry point and the fields of its JSON schema, as a table (a field without a
    description takes its line of ``docs``)."""
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
        text = prop.get("description") or (docs or {}).get(name, "")
        rows.append([name, _schema_type(prop), default, first_line(text)])
    out.write(table([column, "TYPE", "DEFAULT", "DESCRIPTION"], rows) if rows else f"  {none}")


def _cmd_executors(args: argparse.Namespace, out: Output) -> int:
    if args.name is None:
        return _list_group(EXECUTORS_GROUP, "EXECUTOR", "no executors installed", args, out)
    info = lookup(EXECUTORS_GROUP, args.name, distribution=args.distribution)
    if info is None:
        known = names_in(EXECUTORS_GROUP)
        close = difflib.get_close_matches(args.name, known, n=3, cutoff=0.6)
        mean = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise PluginError(
            f"no executor is called {args.name!r}; {mean}installed: {', '.join(known) or 'none'}."
        )
    cls: type[Executor] = load_entry_point(info)
    try:
        schema = cls.Config.model_json_schema()
    except Exception as exc:
        raise PluginError(
            f"executor {args.name!r} ({info.describe()}): no JSON schema can be made for its "
            f"settings: {describe_exception(exc)}"
        ) from exc
    if args.json:
        out.write(json.dumps(schema, indent=2))
        return 0
    _show_schema(out, info, schema, "SETTING", "no settings", _attribute_docs(cls.Config.__doc__))
    out.write(
        f"Set them in [run] executor_config (or --set run.executor_config.NAME=VALUE); "
        f"the JSON schema: host executors {info.name} --json"
    )
    return 0
