"""The TOML run config: a run declared without code, validated whole before anything comes up.

The file's shape is the pydantic model :class:`RunConfigFile` (``specs/run-config.schema.json``
is its JSON Schema, ``specs/run-config.md`` documents it). :func:`load_run_config` reads a file,
checks all of it, and gives a :class:`RunConfig`: the assets imported, the resources constructed
(configuration only: nothing is brought up), the executor class and its settings. Every problem
found is reported in one error, a :class:`host.ConfigError`, :class:`host.DefinitionError` or
:class:`host.PluginError`, whose message starts with the file's path and never contains the value
of a secret or of an environment variable.

Asset modules are imported with the config file's directory first on ``sys.path`` (then the
``[run] pythonpath`` entries, relative to that directory), like pytest's ``rootdir``: a run
config next to its ``assets.py`` says ``assets = ["assets"]``.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import graphlib
import importlib
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from host._asset import AssetDefinition
from host._discovery import PluginInfo, discover_plugins, load_entry_point, lookup, suggest
from host._errors import ConfigError, DefinitionError, HostError, PluginError
from host._events import describe_exception, safe_repr
from host._graph import build_plan
from host._interrupts import SignalExit
from host._plugin_api import PLUGINS_GROUP, RESOURCES_GROUP
from host._resource import (
    KEEP,
    ConfigurableResource,
    EnvVar,
    config_error_from_validation,
    env_references,
    location_text,
    replace_values,
)
from host._resource_graph import ResourceGraph
from host._switches import PluginSwitches, current_switches, use_switches
from host._timeouts import PhaseTimeouts, Seconds
from host.executors.base import Executor
from host.executors.registry import executor_class

if TYPE_CHECKING:
    from host._events import RunResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

__all__ = [
    "EnvRef",
    "PluginsSection",
    "ResourceRef",
    "ResourceSection",
    "RunConfig",
    "RunConfigFile",
    "RunSection",
    "load_run_config",
    "run_config_schema",
]

_Model = ConfigDict(frozen=True, extra="forbid")

#: The largest run config read (1 MiB): a larger file is refused before it is parsed.
MAX_RUN_CONFIG_BYTES = 1 << 20


class EnvRef(BaseModel):
    """{ env = "NAME" }: the value of environment variable NAME, read in the process that brings
    the resource up (a host.EnvVar); treated as a secret."""

    model_config = _Model

    env: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The environment variable to read when the resource comes up."
    )


class ResourceRef(BaseModel):
    """{ resource = "KEY" }: the resource [resources.KEY] of the same file, as a dependency
    (brought up first, once, shared by every resource that names it)."""

    model_config = _Model

    resource: str = Field(description="The key of another resource of this file.")


#: A configuration value: an environment variable, another resource, or a literal value.
ConfigValue = Annotated[EnvRef | ResourceRef | Any, Field(union_mode="left_to_right")]
#: A resource key: assets name resources by parameter, so it is a Python identifier.
ResourceKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class RunSection(BaseModel):
    """[run]: what to run and where."""

    model_config = _Model

    assets: list[str] = Field(
        min_length=1,
        description='Asset modules (every @asset in them) or "module:name" of single assets.',
    )
    executor: str = Field(
        default="in_process", description="An executor name from the host.executors group."
    )
    executor_distribution: str | None = Field(
        default=None,
        description="The distribution whose executor to use when several register its name.",
    )
    executor_config: dict[str, Any] = Field(
        default_factory=dict, description="The executor's settings, validated by the executor."
    )
    selection: list[str] | None = Field(
        default=None, description="Asset keys to run, with their upstream assets; default: all."
    )
    pythonpath: list[str] = Field(
        default_factory=list,
        description="Directories (relative to this file) put on sys.path before importing "
        "assets, after the file's own directory.",
    )
    timeout: Seconds | None = Field(
        default=None,
        description="Seconds the run may take to bring resources up and compute its assets; "
        "then running assets are interrupted, the others not run, and everything that came up "
        "is torn down. Default: no limit.",
    )


class ResourceSection(BaseModel):
    """[resources.KEY]: one resource, by entry-point type, with its configuration."""

    model_config = _Model

    type: str = Field(description="A resource type: a name in the host.resources group.")
    distribution: str | None = Field(
        default=None,
        description="The distribution whose resource type to use when several register it.",
    )
    config: dict[str, ConfigValue] = Field(
        default_factory=dict,
        description="The resource's configuration, validated by the resource class. A value "
        '{ env = "NAME" } reads an environment variable; { resource = "KEY" } is another '
        "resource of this file.",
    )
    setup_timeout: Seconds | None = Field(
        default=None,
        description="Seconds the resource may take to come up (replaces the class's "
        "host_setup_timeout); then it is stopped and the assets needing it fail.",
    )
    teardown_timeout: Seconds | None = Field(
        default=None,
        description="Seconds the resource may take to go down (replaces the class's "
        "host_teardown_timeout); then it is stopped, reported, and the others still go down.",
    )


class PluginsSection(BaseModel):
    """[plugins]: switch installed plugins off (and hook plugins on) for this run."""

    model_config = _Model

    disable: list[str] = Field(
        default_factory=list,
        description="Entry-point or distribution names (as `host plugins` prints them) that are "
        "not imported, added to HOST_DISABLE_PLUGINS.",
    )
    enable: list[str] = Field(
        default_factory=list,
        description="Hook plugins (host.plugins) to load even when "
        "HOST_DISABLE_PLUGIN_AUTOLOAD=1.",
    )


class RunConfigFile(BaseModel):
    """A host run config file (TOML)."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="host run config")

    run: RunSection
    resources: dict[ResourceKey, ResourceSection] = Field(
        default_factory=dict, description="Resources by key; assets name them by parameter."
    )
    plugins: PluginsSection = Field(default_factory=PluginsSection)


def run_config_schema() -> dict[str, Any]:
    """The JSON Schema of the run config file (``specs/run-config.schema.json``)."""
    schema = RunConfigFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


@dataclass(frozen=True)
class RunConfig:
    """A validated run config: everything a run needs, nothing brought up yet.

    Attributes:
        path: the file it was read from.
        assets: the asset definitions, in the order the file lists them.
        resources: resource key -> the configured resource (``EnvVar`` values not read yet).
        resource_types: resource key -> the ``host.resources`` entry point it was built from.
        executor: the executor class.
        executor_config: the executor's settings (already validated).
        selection: the asset keys to run, or ``None`` for all.
        planned: the asset keys the run will compute, in order.
        switches: the plugin switches of the run (environment plus ``[plugins]``).
        timeout: the run's ``timeout`` in seconds, or ``None``.
        resource_timeouts: resource key -> its ``setup_timeout`` / ``teardown_timeout``.
    """

    path: Path
    assets: tuple[AssetDefinition, ...]
    resources: Mapping[str, ConfigurableResource]
    resource_types: Mapping[str, PluginInfo]
    executor: type[Executor]
    executor_config: Mapping[str, Any]
    selection: tuple[str, ...] | None
    planned: tuple[str, ...]
    switches: PluginSwitches
    timeout: float | None = None
    resource_timeouts: Mapping[str, PhaseTimeouts] = dataclasses.field(default_factory=dict)

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`host.run_assets` (apply :attr:`switches` around it, as
        :meth:`run` does)."""
        return {
            "assets": list(self.assets),
            "resources": dict(self.resources),
            "executor": self.executor,
            "executor_config": dict(self.executor_config),
            "selection": list(self.selection) if self.selection is not None else None,
            "timeout": self.timeout,
            "resource_timeouts": dict(self.resource_timeouts),
        }

    def run(
        self,
        *,
        run_id: str | None = None,
        raise_on_error: bool = True,
        plugins: Iterable[object] = (),
    ) -> RunResult:
        """Run it with :func:`host.run_assets`, with the config's plugin switches in effect."""
        from host._run import run_assets

        with use_switches(self.switches):
            return run_assets(
                **self.run_kwargs(), run_id=run_id, raise_on_error=raise_on_error, plugins=plugins
            )


# -- reading and checking ---------------------------------------------------------------------


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
    the selection exists). The config file's directory is put first on ``sys.path``.

    Raises:
        ConfigError: the file or a configuration value is invalid (resource key and field set
            when one resource is at fault).
        DefinitionError: assets cannot be imported or planned, or resources form a cycle.
        PluginError: a resource type or executor is disabled, incompatible, registered by
            several distributions, or broken.

        With several problems, the error lists them all; its class is that of the first
        problem, or ``ConfigError`` if they differ.
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
        problems = [_shape_problem(error) for error in exc.errors(include_url=False)]
        raise ConfigError(
            f"{path}: invalid run config:\n" + "\n".join(f"  - {p}" for p in problems)
        ) from None
    return _Builder(path, file).build()


_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "run": RunSection,
    "plugins": PluginsSection,
}


def _allowed_keys(loc: Sequence[int | str]) -> list[str] | None:
    """The keys the table holding ``loc`` allows, if it is one of the file's fixed tables."""
    model: type[BaseModel] | None = None
    if len(loc) == 1:
        model = RunConfigFile
    elif len(loc) == 2 and str(loc[0]) in _SECTION_MODELS:
        model = _SECTION_MODELS[str(loc[0])]
    elif len(loc) == 3 and loc[0] == "resources":
        model = ResourceSection
    return list(model.model_fields) if model is not None else None


def _shape_problem(error: Any) -> str:
    loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
    where = ".".join(str(part) for part in loc) or "(file)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc)
        if allowed is not None:
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return f"{where}: unknown key; {hint}allowed keys: {', '.join(allowed)}"
        return f"{where}: unknown key"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    if error["type"] == "string_pattern_mismatch" and loc[:1] == ("resources",):
        return f"{where}: a resource key must be a Python identifier (assets name it by parameter)"
    return f"{where}: {error['msg']}"


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def _combined(path: Path, problems: list[HostError]) -> HostError:
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


class _Builder:
    """Turns a validated file into a :class:`RunConfig`, collecting every problem."""

    def __init__(self, path: Path, file: RunConfigFile) -> None:
        self.path = path
        self.file = file
        self.problems: list[HostError] = []
        self.switches = current_switches().merged(file.plugins.disable, file.plugins.enable)

    def build(self) -> RunConfig:
        self._extend_sys_path()
        with use_switches(self.switches):
            executor, shares_environment = self._executor()
            resources, types = self._resources(shares_environment)
            self._enabled_plugins()
        assets = self._assets()
        selection = tuple(self.file.run.selection) if self.file.run.selection is not None else None
        planned: tuple[str, ...] = ()
        if not self.problems and executor is not None:
            try:
                graph = ResourceGraph.build(resources)
                plan = build_plan(assets, graph, selection)
                executor(self.file.run.executor_config).check(plan, graph)
                planned = plan.order
            except HostError as exc:
                self.problems.append(exc)
        if self.problems:
            raise _combined(self.path, self.problems)
        assert executor is not None
        return RunConfig(
            path=self.path,
            assets=tuple(assets),
            resources=resources,
            resource_types=types,
            executor=executor,
            executor_config=dict(self.file.run.executor_config),
            selection=selection,
            planned=planned,
            switches=self.switches,
            timeout=self.file.run.timeout,
            resource_timeouts={
                key: PhaseTimeouts(setup=section.setup_timeout, teardown=section.teardown_timeout)
                for key, section in self.file.resources.items()
                if section.setup_timeout is not None or section.teardown_timeout is not None
            },
        )

    # -- sys.path ---------------------------------------------------------------------------

    def _extend_sys_path(self) -> None:
        base = self.path.resolve().parent
        entries = [base, *(base / entry for entry in self.file.run.pythonpath)]
        for entry in reversed(entries):
            text = str(entry)
            if text not in sys.path:
                sys.path.insert(0, text)
        importlib.invalidate_caches()

    # -- executor ---------------------------------------------------------------------------

    def _executor(self) -> tuple[type[Executor] | None, bool]:
        run = self.file.run
        try:
            cls = executor_class(run.executor, run.executor_distribution)
        except HostError as exc:
            self.problems.append(_with_prefix(exc, "run.executor: "))
            return None, True
        try:
            cls.Config.model_validate(run.executor_config)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(config)'}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            self.problems.append(
                ConfigError(
                    f"run.executor_config: invalid for executor {run.executor!r}: {details}"
                )
            )
            return cls, True
        # Whether assets run in this environment can depend on the settings (a Dask cluster the
        # run starts, or one at an address): ask a configured instance (it starts nothing).
        return cls, bool(cls(run.executor_config).shares_environment)

    # -- plugins ----------------------------------------------------------------------------

    def _enabled_plugins(self) -> None:
        """Each hook plugin ``[plugins] enable`` names is installed and loads.

        A hook plugin that loads by itself and breaks is skipped with a warning (it never stops
        a run); one the run config asks for by name is part of the run's input.
        """
        for index, name in enumerate(self.file.plugins.enable):
            infos = [
                info
                for info in discover_plugins(PLUGINS_GROUP, switches=self.switches)
                if info.name == name
            ]
            if not infos:
                self.problems.append(
                    ConfigError(
                        f"plugins.enable[{index}]: no hook plugin is called {name!r}; "
                        f"{suggest(PLUGINS_GROUP, name)}."
                    )
                )
                continue
            if all(info.status == "disabled" for info in infos):
                continue  # switched off too: disabling wins
            try:
                found = lookup(PLUGINS_GROUP, name, switches=self.switches)
                if found is not None:
                    load_entry_point(found)
            except PluginError as exc:
                self.problems.append(_with_prefix(exc, f"plugins.enable[{index}] {name!r}: "))

    # -- resources --------------------------------------------------------------------------

    def _order(self) -> list[str]:
        """Resource keys, dependencies first; missing references and cycles are problems."""
        sections = self.file.resources
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for key, section in sections.items():
            refs = []
            for field, value in section.config.items():
                if not isinstance(value, ResourceRef):
                    continue
                if value.resource not in sections:
                    close = difflib.get_close_matches(value.resource, list(sections), n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    self.problems.append(
                        ConfigError(
                            f"resource {key!r}: field {field!r} refers to resource "
                            f"{value.resource!r}, which is not in [resources] (defined: "
                            f"{sorted(sections)}).{hint}",
                            resource_key=key,
                            field=field,
                        )
                    )
                else:
                    refs.append(value.resource)
            sorter.add(key, *refs)
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            self.problems.append(
                DefinitionError(
                    f"resources form a dependency cycle: {cycle}. A resource cannot depend on "
                    f"itself through {{ resource = ... }} references; break the cycle."
                )
            )
            return [key for key, section in sections.items() if not _refs(section)]

    def _resources(
        self, shares_environment: bool
    ) -> tuple[dict[str, ConfigurableResource], dict[str, PluginInfo]]:
        built: dict[str, ConfigurableResource] = {}
        types: dict[str, PluginInfo] = {}
        for key in self._order():
            section = self.file.resources[key]
            try:
                cls, info = _resource_type(key, section)
                resource = self._construct(key, cls, section, built)
                if resource is None:
                    continue  # a dependency failed; its own problem is reported
                if shares_environment:
                    resource.check_environment(key, advice="where host runs")
            except HostError as exc:
                self.problems.append(exc)
                continue
            built[key] = resource
            types[key] = info
        return {key: built[key] for key in self.file.resources if key in built}, types

    def _construct(
        self,
        key: str,
        cls: type[ConfigurableResource],
        section: ResourceSection,
        built: Mapping[str, ConfigurableResource],
    ) -> ConfigurableResource | None:
        fields = set(cls.model_fields) | {
            f.alias for f in cls.model_fields.values() if f.alias is not None
        }
        unknown = [name for name in section.config if name not in fields]
        if unknown:
            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, sorted(fields), n=1)
                hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(
                f"resource {key!r} ({cls.__name__}): unknown config field "
                f"{', '.join(hints)}; its fields are {sorted(cls.model_fields)}. See "
                f"`host resources {section.type}`.",
                resource_key=key,
                field=unknown[0],
            )
        values: dict[str, Any] = {}
        for name, value in section.config.items():
            if isinstance(value, EnvRef):
                values[name] = EnvVar(value.env)
            elif isinstance(value, ResourceRef):
                if value.resource not in built:
                    return None
                values[name] = built[value.resource]
            else:
                values[name] = _env_refs(key, cls, name, value)
        env = {
            location_text(location): var
            for name, value in values.items()
            for location, var in env_references(value, (name,))
        }
        try:
            return cls(**values)
        except ValidationError as exc:
            problem = config_error_from_validation(
                key, cls, exc, secret_fields=env, values=values
            )
        except HostError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"resource {key!r} ({cls.__name__}): its configuration was rejected: "
                f"{type(exc).__name__}",
                resource_key=key,
            ) from exc
        # Raised here, not in the except block: the ValidationError's text repeats the
        # values, so it is neither chained nor kept as the context.
        raise problem

    # -- assets -----------------------------------------------------------------------------

    def _assets(self) -> list[AssetDefinition]:
        found: dict[int, AssetDefinition] = {}
        for index, entry in enumerate(self.file.run.assets):
            try:
                for definition in self._asset_entry(entry):
                    found.setdefault(id(definition), definition)
            except HostError as exc:
                self.problems.append(_with_prefix(exc, f"run.assets[{index}] {entry!r}: "))
        return list(found.values())

    def _asset_entry(self, entry: str) -> list[AssetDefinition]:
        module_name, _, attribute = entry.partition(":")
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module_name) or (
            attribute and not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", attribute)
        ):
            raise DefinitionError(
                'not a module or "module:name" reference (e.g. "mypkg.assets" or '
                '"mypkg.assets:users")'
            )
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise DefinitionError(
                    f"no module named {exc.name!r} (searched {self.path.resolve().parent} and "
                    f"sys.path). Check the name, or add its directory to [run] pythonpath."
                ) from None
            raise DefinitionError(
                f"importing {module_name!r} failed: {describe_exception(exc)}"
            ) from exc
        except SignalExit:
            raise  # the host's own SIGTERM: the command ends as terminated
        except SystemExit as exc:
            raise DefinitionError(
                f"importing {module_name!r} failed: it called sys.exit({safe_repr(exc.code)}) "
                f"while being imported. An asset module must not exit when it is imported: put "
                f'script code under `if __name__ == "__main__":`.'
            ) from exc
        except Exception as exc:
            raise DefinitionError(
                f"importing {module_name!r} failed: {describe_exception(exc)}"
            ) from exc
        except BaseException as exc:  # KeyboardInterrupt or another BaseException: bad input
            raise DefinitionError(
                f"importing {module_name!r} failed: it raised {describe_exception(exc)} while "
                f"being imported (a BaseException, not an Exception). An asset module must "
                f"import cleanly: fix or remove what raises at its top level."
            ) from exc
        if not attribute:
            definitions = [v for v in vars(module).values() if isinstance(v, AssetDefinition)]
            if not definitions:
                raise DefinitionError(
                    f"module {module_name!r} defines no @asset at module level; decorate the "
                    f"functions with @host.asset, or name them as \"module:name\"."
                )
            return definitions
        obj: Any = module
        for part in attribute.split("."):
            if not hasattr(obj, part):
                known = sorted(
                    name for name, v in vars(module).items() if isinstance(v, AssetDefinition)
                )
                raise DefinitionError(
                    f"module {module_name!r} has no attribute {attribute!r}; its assets are "
                    f"{known or 'none'}."
                )
            obj = getattr(obj, part)
        if isinstance(obj, AssetDefinition):
            return [obj]
        if isinstance(obj, list | tuple) and obj and all(
            isinstance(item, AssetDefinition) for item in obj
        ):
            return list(obj)
        raise DefinitionError(
            f"{entry} is {type(obj).__name__} {getattr(obj, '__name__', '')!s}, not an asset; "
            f"decorate it with @host.asset (or name a list of assets)."
        )


def _env_refs(key: str, cls: type[ConfigurableResource], field: str, value: Any) -> Any:
    """``value`` with each ``{ env = "NAME" }`` table inside it (in an array, a table, at any
    depth) made the ``EnvVar`` it stands for, as at the top of a field.

    Raises:
        ConfigError: a ``{ env = ... }`` table whose name is empty or not a string.
    """

    def convert(item: Any, location: tuple[str | int, ...]) -> Any:
        if not (isinstance(item, dict) and len(item) == 1 and "env" in item):
            return KEEP
        name = item["env"]
        where = location_text(location)
        if not isinstance(name, str) or not name:
            problem = "an empty name" if name == "" else f"a {type(name).__name__}, not a name"
            raise ConfigError(
                f"resource {key!r} ({cls.__name__}): field {where!r}: {{ env = ... }} gives "
                f"{problem}; write the environment variable's name, e.g. "
                f'{{ env = "API_TOKEN" }}.',
                resource_key=key,
                field=where,
            )
        return EnvVar(name)

    return replace_values(value, convert, (field,))


def _refs(section: ResourceSection) -> list[str]:
    return [v.resource for v in section.config.values() if isinstance(v, ResourceRef)]


def _resource_type(
    key: str, section: ResourceSection
) -> tuple[type[ConfigurableResource], PluginInfo]:
    """The class of ``[resources.KEY]``'s ``type``, imported from its entry point."""
    try:
        info = lookup(RESOURCES_GROUP, section.type, distribution=section.distribution)
    except PluginError as exc:
        raise _with_prefix(exc, f"resource {key!r}: type {section.type!r}: ") from exc.__cause__
    if info is None:
        raise ConfigError(
            f"resource {key!r}: unknown type {section.type!r}; "
            f"{suggest(RESOURCES_GROUP, section.type)}. Install the package that provides it "
            f"(`host resources` lists the installed types).",
            resource_key=key,
            field="type",
        )
    try:
        cls: type[ConfigurableResource] = load_entry_point(info)
    except PluginError as exc:
        raise _with_prefix(exc, f"resource {key!r}: type {section.type!r}: ") from exc.__cause__
    return cls, info


def _with_prefix(error: HostError, prefix: str) -> HostError:
    """The same kind of error with ``prefix`` before its message, chaining what it chained."""
    if isinstance(error, ConfigError):
        new: HostError = type(error)(
            prefix + str(error), resource_key=error.resource_key, field=error.field
        )
    else:
        new = type(error)(prefix + str(error))
    new.__cause__ = error.__cause__
    return new

