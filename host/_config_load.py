"""Reading a run config file: TOML, checked whole, every problem reported in one error.

:func:`load_run_config` reads the file (at most :data:`MAX_RUN_CONFIG_BYTES`; UTF-8, with or
without a byte order mark; nesting too deep is an error, not a crash), checks its shape against
:class:`~host._config_schema.RunConfigFile`, and has ``host._config_build`` resolve the rest.
Every problem found is reported in one error, a :class:`host.ConfigError`,
:class:`host.DefinitionError` or :class:`host.PluginError`, whose message starts with the file's
path and never contains the value of a secret or of an environment variable.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from host._config_build import Builder
from host._config_schema import RunConfig, RunConfigFile, allowed_keys
from host._errors import ConfigError, HostError, ValidationProblem, validation_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

__all__ = [
    "MAX_RUN_CONFIG_BYTES",
    "apply_overrides",
    "load_run_config",
    "parse_override",
    "problems_of",
]


def problems_of(error: BaseException) -> list[str]:
    """The problems an error of :func:`load_run_config` lists, one text each (without the
    file's path); an error naming one problem gives its message."""
    listed = error.__dict__.get("host_problems")
    if isinstance(listed, list):
        return [str(item) for item in listed]
    return [str(error)]


def _listing(error: HostError, problems: list[str]) -> HostError:
    error.__dict__["host_problems"] = problems
    return error

#: The largest run config read (1 MiB): a larger file is refused before it is parsed.
MAX_RUN_CONFIG_BYTES = 1 << 20


def load_run_config(
    path: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    executor: str | None = None,
    selection: Sequence[str] | None = None,
) -> RunConfig:
    """Read and check a TOML run config; nothing is brought up.

    ``overrides``, ``executor`` and ``selection`` (``host run``'s ``--set``, ``--executor`` and
    ``--select``) change the file's values after it is parsed and before anything is checked,
    so a wrong key or value is reported like one written in the file, by its dotted key.

    Checked, all before returning: TOML syntax (with the line; UTF-8, with or without a byte
    order mark), unknown or missing keys, each resource's type (an installed, switched-on,
    compatible ``host.resources`` entry point; close names are suggested), its configuration
    (field by field, by the resource class), the environment variables it reads (when the
    executor runs in this environment), its ``{ resource = ... }`` dependencies (existing keys,
    no cycle), the executor and its settings, the assets (importable, resolvable, decorated:
    an asset module that raises anything at import, ``SystemExit`` and ``KeyboardInterrupt``
    included, is a ``DefinitionError`` naming it) and the plan (every asset's inputs resolve,
    the selection exists). The config file's directory is put first on ``sys.path``. With
    several problems, the error lists them all; its class is that of the first problem, or
    ``ConfigError`` if they differ.

    Args:
        path: the TOML file.
        overrides: ``"DOTTED.KEY=VALUE"`` items (:func:`parse_override`), applied in order.
        executor: replaces ``[run] executor``; when it names another executor than the file's,
            the file's ``executor_config`` and ``executor_distribution`` are dropped (they were
            written for the file's executor; ``overrides`` can set new ones).
        selection: replaces ``[run] selection`` (terms as in the file: ``name``, ``+name``,
            ``name+``).

    Raises:
        ConfigError: the file or a configuration value is invalid (resource key and field set
            when one resource is at fault), or an override is not ``DOTTED.KEY=VALUE``.
        DefinitionError: assets cannot be imported or planned, or resources form a cycle.
        PluginError: a resource type or executor is disabled, incompatible, registered by
            several distributions, or broken.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_RUN_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read run config {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_RUN_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_RUN_CONFIG_BYTES // 1024} KiB, the most a run config may "
            f"be; is it the right file? Keep data out of run configs: pass a path to it."
        )
    # A UTF-8 byte order mark (Windows editors write one) is not part of the TOML document.
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        data = tomllib.loads(raw[bom:].decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start + bom})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f":{match.group(1)}" if match else ""
        raise ConfigError(f"{path}{where}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    try:
        changed = _override(data, overrides, executor, selection)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        file = RunConfigFile.model_validate(data)
    except RecursionError:
        raise ConfigError(f"{path}: invalid run config: values nested too deeply") from None
    except ValidationError as exc:
        problems = [_shape_problem(problem, changed) for problem in validation_problems(exc)]
        if len(problems) == 1:
            raise _listing(
                ConfigError(f"{path}: invalid run config: {problems[0]}"), problems
            ) from None
        raise _listing(
            ConfigError(
                f"{path}: invalid run config:\n" + "\n".join(f"  - {p}" for p in problems)
            ),
            problems,
        ) from None
    builder = Builder(path, file, "--select" if selection is not None else "run.selection")
    config = builder.build()
    if config is None:
        raise _combined(path, builder.problems)
    return config


def _shape_problem(problem: ValidationProblem, changed: Sequence[tuple[str, ...]] = ()) -> str:
    """One line of what is wrong with the file's shape (a key unknown, missing, misspelt);
    a key that ``changed`` (set on the command line) says so."""
    loc = tuple(part for part in problem.loc if not str(part).startswith("function-"))
    where = ".".join(str(part) for part in loc) or "(file)"
    if any(tuple(str(part) for part in loc[: len(key)]) == key for key in changed):
        where += " (set on the command line)"
    if problem.type == "extra_forbidden":
        allowed = allowed_keys(loc)
        if allowed is not None:
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return f"{where}: unknown key; {hint}allowed keys: {', '.join(allowed)}"
        return f"{where}: unknown key"
    if problem.type == "missing":
        return f"{where}: required key is missing"
    if problem.type == "string_pattern_mismatch" and loc[:1] == ("resources",):
        return f"{where}: a resource key must be a Python identifier (assets name it by parameter)"
    return f"{where}: {problem.message}"


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def _combined(path: Path, problems: list[HostError]) -> HostError:
    """One error for every problem found: its message lists them all; its class is that of the
    first problem, or ``ConfigError`` if they differ; it chains the first."""
    first = problems[0]
    if len(problems) == 1:
        message = f"{path}: {first}"
    else:
        message = f"{path}: {len(problems)} problems:\n" + "\n".join(
            f"  - {_indent(str(problem))}" for problem in problems
        )
    kinds = {type(problem) for problem in problems}
    kind = type(first) if len(kinds) == 1 else ConfigError
    error: HostError
    if issubclass(kind, ConfigError):
        key = first.resource_key if isinstance(first, ConfigError) else None
        field = first.field if isinstance(first, ConfigError) else None
        error = kind(message, resource_key=key, field=field)
    else:
        error = kind(message)
    error.__cause__ = first
    return _listing(error, [str(problem) for problem in problems])


# -- command-line overrides ---------------------------------------------------------------------

#: What starts a TOML array, table or quoted string: a value starting so must be valid TOML.
_STRUCTURED = ("[", "{", '"', "'")


def parse_override(item: str) -> tuple[tuple[str, ...], Any]:
    """``"DOTTED.KEY=VALUE"`` as (key path, value): ``host run --set``'s syntax.

    The key is a TOML dotted key (``resources.db.config.path``; quote a part with a dot in it:
    ``resources.db.config."a.b"``). The value is a TOML value (``4``, ``true``, ``"text"``,
    ``[1, 2]``, ``{ env = "NAME" }``); a bare word that is not one (``x.db``) is that string.

    Raises:
        ConfigError: no ``=``, an invalid key, or a value that starts like an array, table or
            quoted string and is not valid TOML.
    """
    key, equals, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if not equals or not key:
        raise ConfigError(
            f"--set {item!r}: expected DOTTED.KEY=VALUE, e.g. "
            f"--set run.executor_config.max_workers=4"
        )
    try:
        node: Any = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        raise ConfigError(
            f"--set {item!r}: {key!r} is not a TOML dotted key (e.g. resources.db.config.path)"
        ) from None
    path: list[str] = []
    while isinstance(node, dict):
        name = next(iter(node))
        path.append(name)
        node = node[name]
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        if value.startswith(_STRUCTURED) or value == "":
            raise ConfigError(
                f"--set {key}: the value is not a TOML value (write strings in quotes, arrays "
                f"as [1, 2], tables as {{ a = 1 }})"
            ) from None
        parsed = value  # a bare word: the string it spells
    return tuple(path), parsed


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> list[tuple[str, ...]]:
    """Apply ``"DOTTED.KEY=VALUE"`` items to a parsed run config, in order; return their keys.

    Each sets one value, creating the tables on its way; a table given as the value replaces
    the whole table.

    Raises:
        ConfigError: an item is malformed (:func:`parse_override`), or its key goes through a
            value that is not a table.
    """
    keys = []
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise ConfigError(
                    f"--set {'.'.join(path)}: {where} is not a table in the run config, so it "
                    f"has no key {path[depth + 1]!r}"
                )
            node = child
        node[path[-1]] = value
        keys.append(path)
    return keys


def _override(
    data: dict[str, Any],
    overrides: Sequence[str],
    executor: str | None,
    selection: Sequence[str] | None,
) -> list[tuple[str, ...]]:
    """Apply ``--executor``, ``--select`` and ``--set`` to ``data``; the keys they changed."""
    changed: list[tuple[str, ...]] = []
    run = data.get("run")
    if (executor is not None or selection is not None) and not isinstance(run, dict):
        run = data["run"] = {} if run is None else run
    if executor is not None and isinstance(run, dict):
        if run.get("executor", "in_process") != executor:
            run.pop("executor_config", None)
            run.pop("executor_distribution", None)
        run["executor"] = executor
        changed.append(("run", "executor"))
    if selection is not None and isinstance(run, dict):
        run["selection"] = list(selection)
        changed.append(("run", "selection"))
    return changed + apply_overrides(data, overrides)
