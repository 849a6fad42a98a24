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
from pathlib import Path

from pydantic import ValidationError

from host._config_build import Builder
from host._config_schema import RunConfig, RunConfigFile, allowed_keys
from host._errors import ConfigError, HostError, ValidationProblem, validation_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

__all__ = ["MAX_RUN_CONFIG_BYTES", "load_run_config"]

#: The largest run config read (1 MiB): a larger file is refused before it is parsed.
MAX_RUN_CONFIG_BYTES = 1 << 20


def load_run_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and check a TOML run config; nothing is brought up.

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

    Raises:
        ConfigError: the file or a configuration value is invalid (resource key and field set
            when one resource is at fault).
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
        file = RunConfigFile.model_validate(data)
    except RecursionError:
        raise ConfigError(f"{path}: invalid run config: values nested too deeply") from None
    except ValidationError as exc:
        problems = [_shape_problem(problem) for problem in validation_problems(exc)]
        raise ConfigError(
            f"{path}: invalid run config:\n" + "\n".join(f"  - {p}" for p in problems)
        ) from None
    builder = Builder(path, file)
    config = builder.build()
    if config is None:
        raise _combined(path, builder.problems)
    return config


def _shape_problem(problem: ValidationProblem) -> str:
    """One line of what is wrong with the file's shape (a key unknown, missing, misspelt)."""
    loc = tuple(part for part in problem.loc if not str(part).startswith("function-"))
    where = ".".join(str(part) for part in loc) or "(file)"
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
    return error
