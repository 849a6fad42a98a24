"""Building a run from a checked run config file: entry points, executor, plugins, assets.

:class:`Builder` turns a :class:`~host._config_schema.RunConfigFile` into a
:class:`~host._config_schema.RunConfig`, collecting every problem rather than stopping at the
first: each resource's type (an installed, switched-on, compatible ``host.resources`` entry
point) and configuration, its ``{ resource = ... }`` dependencies, the executor and its
settings, the hook plugins ``[plugins] enable`` names, the assets and the plan.

Asset modules are imported with the config file's directory first on ``sys.path`` (then the
``[run] pythonpath`` entries, relative to that directory), like pytest's ``rootdir``: a run
config next to its ``assets.py`` says ``assets = ["assets"]``.
"""

from __future__ import annotations

import difflib
import graphlib
import importlib
import inspect
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from host._asset import AssetDefinition
from host._asset_config import is_config_class
from host._config_schema import (
    EnvRef,
    ResourceRef,
    ResourceSection,
    RunConfig,
    RunConfigFile,
    env_refs_in,
)
from host._discovery import PluginInfo, discover_plugins, load_entry_point, lookup, names_in
from host._errors import (
    ConfigError,
    DefinitionError,
    HostError,
    PluginError,
    validation_problems,
    with_prefix,
)
from host._events import describe_exception, safe_repr
from host._graph import Plan
from host._interrupts import SignalExit
from host._launch import prepare_run
from host._plugin_api import EXECUTORS_GROUP, PLUGINS_GROUP, RESOURCES_GROUP
from host._resource import (
    ConfigurableResource,
    EnvVar,
    config_error_from_validation,
    env_references,
    location_text,
)
from host._switches import current_switches, use_switches
from host._timeouts import PhaseTimeouts
from host.executors.base import Executor

__all__ = ["Builder", "as_text", "hint"]


def as_text(items: Iterable[object], empty: str = "none") -> str:
    """A list for a message, as text: ``a, b, c`` (``empty`` when there is none)."""
    return ", ".join(str(item) for item in items) or empty


def hint(name: str, known: Sequence[str], what: str) -> str:
    """``did you mean 'x'? `` for the close names of ``known``, then what is known, as text."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    mean = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return f"{mean}{what}: {as_text(known)}"


class Builder:
    """Turns a validated file into a :class:`RunConfig`, collecting every problem."""

    def __init__(
        self, path: Path, file: RunConfigFile, selection_label: str = "run.selection"
    ) -> None:
        self.path = path
        self.file = file
        #: How messages name the selection (``--select`` when it came from the command line).
        self.selection_label = selection_label
        self.problems: list[HostError] = []
        self.switches = current_switches().merged(file.plugins.disable, file.plugins.enable)

    def build(self) -> RunConfig | None:
        """The run config, or ``None`` when :attr:`problems` lists what is wrong.

        Every part is checked even when another part is wrong (an unknown executor does not
        hide a bad resource, selection or asset parameter); only what depends on a part that
        failed is left out (the plan needs every resource built and the assets imported).
        """
        self._extend_sys_path()
        with use_switches(self.switches):
            executor, shares_environment = self._executor()
            resources, types = self._resources(shares_environment)
            self._enabled_plugins()
        before = len(self.problems)
        assets = self._assets()
        selection: tuple[str, ...] | None = None
        planned: tuple[str, ...] = ()
        if len(self.problems) == before:  # the assets imported: check what names them
            all_built = set(resources) == set(self.file.resources)
            parameters_ok = self._parameters(assets, resources, all_built)
            full: Plan | None = None
            if parameters_ok and all_built:
                try:
                    graph, full = prepare_run(assets, resources, None, None)
                except HostError as exc:
                    self.problems.append(exc)
            selection = self._selection([a.key for a in assets], full)
            if not self.problems and executor is not None and full is not None:
                try:
                    graph, plan = prepare_run(assets, resources, selection, None)
                    executor(self.file.run.executor_config).check(plan, graph)
                    planned = plan.order
                except HostError as exc:
                    self.problems.append(exc)
        if self.problems or executor is None:
            return None
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
            info = lookup(EXECUTORS_GROUP, run.executor, distribution=run.executor_distribution)
            if info is None:
                raise DefinitionError(
                    f"no executor is called {run.executor!r}; "
                    f"{hint(run.executor, names_in(EXECUTORS_GROUP), 'installed')} "
                    f"(`host executors` lists them)."
                )
            cls: type[Executor] = load_entry_point(info)
        except HostError as exc:
            self.problems.append(with_prefix(exc, "run.executor: "))
            return None, True
        try:
            cls.Config.model_validate(run.executor_config)
        except ValidationError as exc:
            settings = list(cls.Config.model_fields)
            for problem in validation_problems(exc, whole="(table)"):
                where = f"run.executor_config.{problem.where}"
                if problem.type == "extra_forbidden":
                    name = str(problem.loc[-1])
                    text = (
                        f"{where}: executor {run.executor!r} has no setting {name!r}; "
                        f"{hint(name, settings, 'its settings')} (`host executors "
                        f"{run.executor}`)"
                    )
                elif problem.type == "missing":
                    text = f"{where}: required setting of executor {run.executor!r} is missing"
                else:
                    text = f"{where}: invalid for executor {run.executor!r}: {problem.message}"
                self.problems.append(ConfigError(text))
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
                        f"{hint(name, names_in(PLUGINS_GROUP), 'installed')}."
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
                self.problems.append(with_prefix(exc, f"plugins.enable[{index}] {name!r}: "))

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
                    self.problems.append(
                        ConfigError(
                            f"resource {key!r}: field {field!r} refers to resource "
                            f"{value.resource!r}, which has no [resources.{value.resource}] "
                            f"table; {hint(value.resource, sorted(sections), 'defined')}.",
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
            return [key for key, section in sections.items() if not section.references()]

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
                f"{', '.join(hints)}; its fields are {as_text(sorted(cls.model_fields))}. See "
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
                values[name] = env_refs_in(key, cls, name, value)
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

    # -- asset parameters and selection, in the file's words ---------------------------------

    def _parameters(
        self,
        assets: Sequence[AssetDefinition],
        resources: Mapping[str, ConfigurableResource],
        all_built: bool,
    ) -> bool:
        """Every asset parameter names an asset, a ``[resources.KEY]`` table or ``context``
        (or has a default); a problem for each that does not. Whether all did."""
        asset_keys = [a.key for a in assets]
        resource_keys = sorted(self.file.resources)
        built = [type(resource) for resource in resources.values()]
        ok = True
        for definition in assets:
            try:
                hints = definition.type_hints
            except Exception:  # the plan reports hints that cannot be read
                continue
            for parameter in definition.parameters:
                name = parameter.name
                where = f"asset {definition.key!r}, parameter {name!r}"
                annotation = hints.get(name)
                if isinstance(annotation, type) and issubclass(annotation, ConfigurableResource):
                    if name in self.file.resources or not all_built:
                        continue
                    if any(issubclass(kind, annotation) for kind in built):
                        continue
                    ok = False
                    self.problems.append(
                        DefinitionError(
                            f"{where}: needs a {annotation.__name__} resource, and no "
                            f"[resources.KEY] table gives one. Add a [resources.{name}] table "
                            f"with type = {_type_names(annotation)}."
                        )
                    )
                    continue
                if name in asset_keys or name in self.file.resources or name == "context":
                    continue
                if name in definition.resource_defs or is_config_class(annotation):
                    continue  # bound by the asset itself, or its config (defaults, for now)
                if parameter.default is not inspect.Parameter.empty:
                    continue
                ok = False
                close = difflib.get_close_matches(name, [*asset_keys, *resource_keys], n=1)
                mean = f"did you mean {close[0]!r}? " if close else ""
                self.problems.append(
                    DefinitionError(
                        f"{where}: no asset, [resources.{name}] table or 'context' is called "
                        f"{name!r}; {mean}assets: {as_text(asset_keys)}; resources: "
                        f"{as_text(resource_keys)}. Add a [resources.{name}] table with its "
                        f"type, add the asset to [run] assets, or give the parameter a default."
                    )
                )
        return ok

    def _selection(self, asset_keys: Sequence[str], plan: Plan | None) -> tuple[str, ...] | None:
        """The asset keys ``selection`` names: ``name`` (with its upstream assets, which always
        run), ``+name`` (the same, said explicitly) and ``name+`` (with its downstream assets
        too). A problem for each term naming no asset; ``None`` when there is no selection."""
        terms = self.file.run.selection
        if terms is None:
            return None
        label = self.selection_label
        if not terms:
            example = f" (e.g. {asset_keys[0]!r})" if asset_keys else ""
            self.problems.append(
                ConfigError(
                    f"{label} selects no asset; name one or more{example}, or leave it out to "
                    f"run every asset."
                )
            )
            return None
        downstream = _descendants(plan) if plan is not None else {}
        keys: dict[str, None] = {}
        for index, term in enumerate(terms):
            name = term.removeprefix("+").removesuffix("+")
            where = f"{label}[{index}] {term!r}"
            if name not in asset_keys:
                what = "names no asset" if not name else f"no asset is called {name!r}"
                self.problems.append(
                    DefinitionError(f"{where}: {what}; {hint(name, asset_keys, 'assets')}.")
                )
                continue
            keys[name] = None
            if term.endswith("+"):
                keys.update(dict.fromkeys(downstream.get(name, ())))
        return tuple(keys)

    # -- assets -----------------------------------------------------------------------------

    def _assets(self) -> list[AssetDefinition]:
        found: dict[int, AssetDefinition] = {}
        for index, entry in enumerate(self.file.run.assets):
            try:
                for definition in self._asset_entry(entry):
                    found.setdefault(id(definition), definition)
            except HostError as exc:
                self.problems.append(with_prefix(exc, f"run.assets[{index}] {entry!r}: "))
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
                    f"module {module_name!r} has no attribute {attribute!r}; its assets: "
                    f"{as_text(known)}."
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


def _resource_type(
    key: str, section: ResourceSection
) -> tuple[type[ConfigurableResource], PluginInfo]:
    """The class of ``[resources.KEY]``'s ``type``, imported from its entry point."""
    try:
        info = lookup(RESOURCES_GROUP, section.type, distribution=section.distribution)
    except PluginError as exc:
        raise with_prefix(exc, f"resource {key!r}: type {section.type!r}: ") from exc.__cause__
    if info is None:
        raise ConfigError(
            f"resource {key!r}: unknown type {section.type!r}; "
            f"{hint(section.type, names_in(RESOURCES_GROUP), 'installed')}. Install the package "
            f"that provides it (`host resources` lists the installed types).",
            resource_key=key,
            field="type",
        )
    try:
        cls: type[ConfigurableResource] = load_entry_point(info)
    except PluginError as exc:
        raise with_prefix(exc, f"resource {key!r}: type {section.type!r}: ") from exc.__cause__
    return cls, info



def _descendants(plan: Plan) -> dict[str, list[str]]:
    """Asset key -> every asset downstream of it, in the plan's order."""
    direct = plan.downstream()
    result: dict[str, list[str]] = {}
    for key in reversed(plan.order):
        below: dict[str, None] = {}
        for child in direct[key]:
            below[child] = None
            below.update(dict.fromkeys(result[child]))
        result[key] = [k for k in plan.order if k in below]
    return result


def _type_names(cls: type) -> str:
    """The ``type = ...`` values that give ``cls`` (installed entry points naming it), as text."""
    value = f"{cls.__module__}:{cls.__qualname__}"
    names = sorted({i.name for i in discover_plugins(RESOURCES_GROUP) if i.value == value})
    if names:
        return " or ".join(f'"{name}"' for name in names)
    return "the resource type that provides it (`host resources` lists the installed types)"
