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
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from host._asset import AssetDefinition
from host._config_assets import as_text, check_parameters, hint, import_assets, select
from host._config_schema import (
    EnvRef,
    ResourceRef,
    ResourceSection,
    RunConfig,
    RunConfigFile,
    env_refs_in,
    launch_config,
)
from host._discovery import (
    PluginInfo,
    discover_plugins,
    load_entry_point,
    lookup,
    names_in,
)
from host._envvar import EnvVar
from host._errors import (
    ConfigError,
    DefinitionError,
    HostError,
    PluginError,
    location_text,
    validation_problems,
    with_prefix,
)
from host._graph import Plan
from host._launch import prepare_run
from host._plugin_api import EXECUTORS_GROUP, PLUGINS_GROUP, RESOURCES_GROUP
from host._resource import ConfigurableResource
from host._resource_errors import config_error_from_validation
from host._switches import current_switches, use_switches
from host._timeouts import PhaseTimeouts
from host._values import env_references
from host.executors.base import Executor

__all__ = ["Builder"]


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
            launch = self._launch_config([a.key for a in assets])
            if parameters_ok and all_built:
                try:
                    graph, full = prepare_run(assets, resources, None, launch)
                except HostError as exc:
                    self.problems.append(exc)
            selection = self._selection([a.key for a in assets], full)
            if not self.problems and executor is not None and full is not None:
                try:
                    graph, plan = prepare_run(assets, resources, selection, launch)
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
            asset_config={key: section.config for key, section in self.file.assets.items()},
            resource_scopes=self._scopes(),
        )

    # -- [assets.NAME], [resources.KEY] scope ------------------------------------------------

    def _scopes(self) -> dict[str, Literal["run", "session"]]:
        """``[resources.KEY] scope`` by key, for the sections that give one."""
        return {
            key: section.scope
            for key, section in self.file.resources.items()
            if section.scope is not None
        }

    def _launch_config(self, keys: Sequence[str]) -> dict[str, Any] | None:
        """The ``run_config`` the run is checked with: asset config and resource scopes."""
        assets = self._asset_config(keys)
        given = {} if assets is None else assets["assets"]
        return launch_config(
            {key: entry["config"] for key, entry in given.items()}, self._scopes()
        )

    def _asset_config(self, keys: Sequence[str]) -> dict[str, Any] | None:
        """``[assets.NAME.config]`` as a ``run_config`` (a problem for each unknown NAME)."""
        given = {key: section.config for key, section in self.file.assets.items()}
        for key in given:
            if key not in keys:
                close = difflib.get_close_matches(key, keys, n=1)
                hint = f"did you mean [assets.{close[0]}]? " if close else ""
                self.problems.append(
                    ConfigError(
                        f"[assets.{key}]: no asset of this run is called {key!r}; {hint}"
                        f"the assets are: {', '.join(keys) or 'none'}"
                    )
                )
        known = {key: {"config": config} for key, config in given.items() if key in keys}
        return {"assets": known} if known else None

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
        """Whether every asset parameter is bound; see :func:`check_parameters`."""
        keys = sorted(self.file.resources)
        return check_parameters(assets, resources, keys, all_built, self.problems)

    def _selection(self, asset_keys: Sequence[str], plan: Plan | None) -> tuple[str, ...] | None:
        """The asset keys ``[run] selection`` (or ``--select``) names; see :func:`select`."""
        terms = self.file.run.selection
        return select(terms, self.selection_label, asset_keys, plan, self.problems)

    # -- assets -----------------------------------------------------------------------------

    def _assets(self) -> list[AssetDefinition]:
        found: dict[int, AssetDefinition] = {}
        for index, entry in enumerate(self.file.run.assets):
            try:
                for definition in import_assets(entry, self.path.resolve().parent):
                    found.setdefault(id(definition), definition)
            except HostError as exc:
                self.problems.append(with_prefix(exc, f"run.assets[{index}] {entry!r}: "))
        return list(found.values())


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
