"""The run config's two shapes: the TOML file as written, and the run it validates into.

:class:`RunConfigFile` (with its sections) is the file's shape, as pydantic models;
``specs/run-config.schema.json`` is its JSON Schema (:func:`run_config_schema`) and
``specs/run-config.md`` documents it; :func:`env_refs_in` says what a ``{ env = "NAME" }`` table
nested in a value stands for. :class:`RunConfig` is what
:func:`host.load_run_config` gives once the whole file is checked: assets imported, resources
constructed (configuration only: nothing is brought up), the executor class and its settings.
Reading the file is ``host._config_load``; turning the file into a ``RunConfig`` is
``host._config_build``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from host._envvar import EnvVar
from host._errors import ConfigError, location_text
from host._timeouts import Seconds
from host._values import KEEP, replace_values

if TYPE_CHECKING:
    from pathlib import Path

    from host._asset import AssetDefinition
    from host._discovery import PluginInfo
    from host._events import RunResult
    from host._resource import ConfigurableResource
    from host._switches import PluginSwitches
    from host._timeouts import PhaseTimeouts
    from host.executors.base import Executor

__all__ = [
    "EnvRef",
    "PluginsSection",
    "ResourceRef",
    "ResourceSection",
    "RunConfig",
    "RunConfigFile",
    "RunSection",
    "allowed_keys",
    "env_refs_in",
    "launch_config",
    "run_config_schema",
]

_Model = ConfigDict(frozen=True, extra="forbid")

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
        default=None,
        description="Asset keys to run, each with its upstream assets (which always run: no "
        'output is stored between runs); "+name" says so explicitly, "name+" adds every asset '
        "downstream of name. Default: all.",
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
    scope: Literal["run", "session"] | None = Field(
        default=None,
        description='"session": in a host.Session, up once per session per process, reused by '
        'its runs and torn down when the session closes (what it depends on must be "session" '
        'too); "run": up at most once per run per process, torn down when the run ends. '
        "Replaces the class's host_scope; default: the class's (\"run\" unless it says "
        "otherwise). Outside a session every resource is run-scoped.",
    )

    def references(self) -> list[str]:
        """The keys of the resources its configuration names (``{ resource = "KEY" }``)."""
        return [v.resource for v in self.config.values() if isinstance(v, ResourceRef)]


class AssetSection(BaseModel):
    """``[assets.NAME]``: what the run gives one asset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    config: dict[str, Any] = Field(
        default_factory=dict,
        description="The asset's configuration (plain TOML values), validated by the "
        "host.Config class its config parameter is annotated with.",
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
    assets: dict[str, AssetSection] = Field(
        default_factory=dict,
        description="Configuration of assets by key ([assets.NAME.config]).",
    )
    plugins: PluginsSection = Field(default_factory=PluginsSection)


def run_config_schema() -> dict[str, Any]:
    """The JSON Schema of the run config file (``specs/run-config.schema.json``)."""
    schema = RunConfigFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "run": RunSection,
    "plugins": PluginsSection,
}


def allowed_keys(loc: Sequence[int | str]) -> list[str] | None:
    """The keys the table holding ``loc`` allows, if it is one of the file's fixed tables."""
    model: type[BaseModel] | None = None
    if len(loc) == 1:
        model = RunConfigFile
    elif len(loc) == 2 and str(loc[0]) in _SECTION_MODELS:
        model = _SECTION_MODELS[str(loc[0])]
    elif len(loc) == 3 and loc[0] == "resources":
        model = ResourceSection
    elif len(loc) == 3 and loc[0] == "assets":
        model = AssetSection
    return list(model.model_fields) if model is not None else None


def env_refs_in(key: str, cls: type[ConfigurableResource], field: str, value: Any) -> Any:
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


def launch_config(
    asset_config: Mapping[str, Mapping[str, Any]],
    resource_scopes: Mapping[str, Literal["run", "session"]],
) -> dict[str, Any] | None:
    """The ``run_config`` of :func:`host.run_assets` giving assets their config and resources
    their scope (``None`` when there is neither)."""
    launch: dict[str, Any] = {}
    if asset_config:
        launch["assets"] = {key: {"config": dict(v)} for key, v in asset_config.items()}
    if resource_scopes:
        launch["resources"] = {key: {"scope": scope} for key, scope in resource_scopes.items()}
    return launch or None


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
        resource_scopes: resource key -> its ``scope``, for the keys whose section gives one.
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
    #: Asset key -> the values of its ``host.Config`` parameter (``[assets.NAME.config]``).
    asset_config: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    #: Resource key -> its ``scope`` (``[resources.KEY] scope``), for the keys that give one.
    resource_scopes: Mapping[str, Literal["run", "session"]] = dataclasses.field(
        default_factory=dict
    )

    def launch_config(self) -> dict[str, Any] | None:
        """The ``run_config`` of :func:`host.run_assets` for :attr:`asset_config` and
        :attr:`resource_scopes`, if any."""
        return launch_config(self.asset_config, self.resource_scopes)

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
            "run_config": self.launch_config(),
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
        from host._switches import use_switches

        with use_switches(self.switches):
            return run_assets(
                **self.run_kwargs(), run_id=run_id, raise_on_error=raise_on_error, plugins=plugins
            )
