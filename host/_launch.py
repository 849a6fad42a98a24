"""A run's launch-time config (``run_config``): parsing it, and applying it before planning.

Two spellings are accepted, with the same meaning:

* Dagster's: ``{"ops": {ASSET: {"config": {...}}}, "resources": {KEY: {"config": {...}}}}``;
* host's: ``{"assets": {ASSET: {"config": {...}}}, "resources": {KEY: {"config": {...}}}}``,
  the shape of a TOML run config's tables (``[resources.KEY] config = {...}``).

In a resource's config, ``{"env": "NAME"}`` anywhere is ``EnvVar("NAME")`` (as ``{ env =
"NAME" }`` is in a TOML file), read where the resource comes up. A resource's entry may also be a
resource itself (``{"db": Database(...)}``, what Dagster's ``RunConfig(resources={...})``
holds), which replaces the run's binding of that key.

An asset's entry may also be a :class:`host.Config` instance (what Dagster's
``RunConfig(ops={...})`` holds). :func:`prepare_run` turns the run's assets, resources and
launch config into the graph and plan a run uses: resources bound by assets
(``@asset(resource_defs=...)``) added, partial resources (``configure_at_launch()``,
``.partial()``) and resources given launch config rebuilt, each asset's config validated, all
before anything comes up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from host._asset import AssetDefinition
from host._asset_config import Config
from host._envvar import EnvVar
from host._errors import ConfigError, DefinitionError, validation_problems
from host._function_resource import ResourceDefinition
from host._graph import Plan, build_plan
from host._partial import is_partial, missing_fields, with_launch_config
from host._resource import ConfigurableResource
from host._resource_errors import config_error_from_validation
from host._resource_graph import ResourceGraph
from host._values import KEEP, replace_values

__all__ = [
    "LaunchConfig",
    "asset_config_value",
    "merged_resources",
    "parse_run_config",
    "prepare_run",
    "rebuild_resource",
    "with_asset_config",
]

_ASSET_SECTIONS = ("ops", "assets")


@dataclass(frozen=True)
class LaunchConfig:
    """A parsed ``run_config``.

    Attributes:
        assets: asset key -> its config (a mapping of values, or a ``Config`` instance).
        resources: resource key -> its launch-time config values.
        section: the word the asset section was spelled with (``"ops"`` or ``"assets"``).
    """

    assets: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, Any] = field(default_factory=dict)
    section: str = "ops"
    #: resource key -> a resource given whole in place of ``{"config": ...}`` (what Dagster's
    #: ``RunConfig(resources={KEY: Resource(...)})`` holds): it replaces the run's binding.
    replaced: Mapping[str, Any] = field(default_factory=dict)
    #: resource key -> its ``scope`` given at launch (``"run"`` or ``"session"``).
    scopes: Mapping[str, Literal["run", "session"]] = field(default_factory=dict)


def _env_refs(where: str, key: str | None, value: Any) -> Any:
    """``value`` with each ``{"env": NAME}`` inside it an ``EnvVar(NAME)``, as a TOML run
    config's ``{ env = "NAME" }`` is (read where the resource comes up)."""

    def replace(part: Any, location: tuple[str | int, ...]) -> Any:
        if not (isinstance(part, Mapping) and set(part) == {"env"}):
            return KEEP
        name = part["env"]
        if not isinstance(name, str) or not name:
            at = "".join(f"[{step!r}]" for step in location)
            raise ConfigError(
                f"run_config{where}['config']{at} is {{'env': {name!r}}}; the name of an "
                f"environment variable is a non-empty string.",
                resource_key=key,
            )
        return EnvVar(name)

    return replace_values(value, replace)


def _entry_config(where: str, key: str, entry: Any, *, asset: bool) -> Any:
    """The config of one entry ``{"config": ...}`` (an asset's may be a ``Config`` itself)."""
    if asset and isinstance(entry, Config):
        return entry
    if isinstance(entry, Mapping) and set(entry) == {"config"}:
        return entry["config"] if asset else _env_refs(where, key, entry["config"])
    extra = sorted(set(entry) - {"config"}) if isinstance(entry, Mapping) else None
    problem = (
        f"has {extra}; host reads only 'config' there" + ("" if asset else " (and 'scope')")
        if extra
        else f"is a {type(entry).__name__}"
    )
    raise ConfigError(
        f"run_config{where} {problem}. Write {{'config': {{...}}}}"
        + (" or a Config instance" if asset else "")
        + ".",
        resource_key=None if asset else key,
    )


def parse_run_config(run_config: Mapping[str, Any] | None) -> LaunchConfig:
    """Check ``run_config``'s shape (not its values, which depend on the classes).

    Raises:
        ConfigError: an unknown top-level key, both ``ops`` and ``assets``, or an entry that
            is not ``{"config": ...}``.
    """
    if run_config is None:
        return LaunchConfig()
    if not isinstance(run_config, Mapping):
        raise ConfigError(
            f"run_config must be a mapping like {{'ops': {{...}}, 'resources': {{...}}}}, got a "
            f"{type(run_config).__name__}."
        )
    unknown = sorted(set(run_config) - {*_ASSET_SECTIONS, "resources"})
    if unknown:
        raise ConfigError(
            f"run_config has {unknown}; host reads 'ops' (or 'assets') and 'resources'. "
            f"Executors and their settings are run_assets(executor=..., executor_config=...)."
        )
    if all(name in run_config for name in _ASSET_SECTIONS):
        raise ConfigError(
            "run_config has both 'ops' and 'assets' (two spellings of the same section); "
            "use one."
        )
    section = "assets" if "assets" in run_config else "ops"
    assets: dict[str, Any] = {}
    for key, entry in _section(run_config, section).items():
        assets[key] = _entry_config(f"[{section!r}][{key!r}]", key, entry, asset=True)
    resources: dict[str, Any] = {}
    replaced: dict[str, Any] = {}
    scopes: dict[str, Literal["run", "session"]] = {}
    for key, entry in _section(run_config, "resources").items():
        if isinstance(entry, ConfigurableResource | ResourceDefinition):
            replaced[key] = entry
            continue
        where = f"['resources'][{key!r}]"
        if isinstance(entry, Mapping) and "scope" in entry:
            scopes[key] = _scope(where, key, entry["scope"])
            rest = {name: value for name, value in entry.items() if name != "scope"}
            if not rest:
                continue
            entry = rest  # noqa: PLW2901 (the entry without its scope)
        resources[key] = _entry_config(where, key, entry, asset=False)
    return LaunchConfig(assets, resources, section, replaced, scopes)


def _scope(where: str, key: str, scope: Any) -> Literal["run", "session"]:
    """A resource's ``scope`` given at launch, checked."""
    if scope in ("run", "session"):
        return "run" if scope == "run" else "session"
    raise ConfigError(
        f"run_config{where}['scope'] is {scope!r}; a resource's scope is 'run' (up once per "
        f"run per process, the default) or 'session' (up once per host.Session per process).",
        resource_key=key,
    )


def _section(run_config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = run_config.get(name) or {}
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"run_config[{name!r}] must be a mapping of names to {{'config': {{...}}}}, got a "
            f"{type(section).__name__}."
        )
    return section


def merged_resources(
    assets: Iterable[Any], resources: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The run's resources with those the assets bind (``@asset(resource_defs=...)``).

    Raises:
        DefinitionError: one key bound to two different objects (by the run and an asset, or
            by two assets), naming the key and the assets.
    """
    merged = dict(resources or {})
    bound_by = dict.fromkeys(merged, "the run's resources=")
    for item in assets:
        if not isinstance(item, AssetDefinition):
            continue
        for key, value in item.resource_defs.items():
            if key in merged and not _same(merged[key], value):
                raise DefinitionError(
                    f"resource key {key!r} is bound twice, to different resources: by "
                    f"{bound_by[key]} and by asset {item.key!r} (resource_defs). Bind {key!r} "
                    f"once, or give one of them another key."
                )
            if key not in merged:
                merged[key] = value
                bound_by[key] = f"asset {item.key!r}"
    return merged


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, ConfigurableResource) and type(a) is type(b):
        return not is_partial(a) and not is_partial(b) and bool(a == b)
    return False


def _users(plan: Plan, graph: ResourceGraph, key: str) -> list[str]:
    return [
        step.key for step in plan.steps.values() if key in graph.closure(step.resources)
    ]


def _resolve(
    resources: Mapping[str, Any], graph: ResourceGraph, launch: LaunchConfig, plan: Plan
) -> ResourceGraph:
    """The graph with partial resources and resources given launch config rebuilt."""
    for key in [*launch.resources, *launch.replaced]:
        if key not in graph.nodes:
            raise ConfigError(
                f"run_config['resources'] names {key!r}, which is not a resource of the run "
                f"(resources: {sorted(graph.nodes) or 'none'}).",
                resource_key=key,
            )
    given = {graph.nodes[key].key: values for key, values in launch.resources.items()}
    replaced = {graph.nodes[key].key: value for key, value in launch.replaced.items()}
    needed = graph.closure([*plan.resource_keys(), *given, *replaced])
    if not (given or replaced) and not any(
        is_partial(graph.nodes[key].resource) for key in needed
    ):
        return graph
    resolved: dict[str, Any] = {}
    for key in needed:
        node = graph.nodes[key]
        if key in replaced:  # given whole at launch: what depends on it gets it too
            resolved[key] = replaced[key]
            continue
        try:
            resolved[key] = rebuild_resource(key, node.resource, given.get(key), {
                name: resolved[dep] for name, dep in node.deps.items() if dep in resolved
            })
        except ConfigError as exc:
            users = _users(plan, graph, key)
            if not users:
                raise
            raise ConfigError(
                f"{exc} (needed by asset{'s' if len(users) > 1 else ''} "
                f"{', '.join(map(repr, users))})",
                resource_key=exc.resource_key,
                field=exc.field,
            ) from None
    top = {key: resolved.get(graph.nodes[key].key, value) for key, value in resources.items()}
    return ResourceGraph.build(top)


def rebuild_resource(key: str, resource: Any, values: Any, deps: Mapping[str, Any]) -> Any:
    """``resource`` with its launch config ``values`` and its rebuilt dependencies."""
    if isinstance(resource, ConfigurableResource):
        changed = {
            name: dep for name, dep in deps.items() if resource.__dict__.get(name) is not dep
        }
        if values is None and not is_partial(resource):
            return resource.model_copy(update=changed) if changed else resource
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(
                f"run_config['resources'][{key!r}]['config'] must be a mapping of "
                f"{type(resource).__name__}'s fields, got a {type(values).__name__}.",
                resource_key=key,
            )
        return with_launch_config(key, resource, values, deps)
    if values is None:
        return resource
    launch = getattr(resource, "host_with_launch_config", None)
    if not callable(launch):
        raise ConfigError(
            f"run_config gives launch-time config for resource {key!r}, but a "
            f"{type(resource).__name__} takes none (it is neither a ConfigurableResource nor "
            f"has host_with_launch_config). Configure it where it is made, or remove "
            f"run_config['resources'][{key!r}].",
            resource_key=key,
        )
    problem: ConfigError | None = None
    try:
        return launch(values)
    except ConfigError as exc:
        if exc.resource_key is not None:
            raise
        problem = ConfigError(
            f"run_config['resources'][{key!r}]['config']: {exc}", resource_key=key, field=exc.field
        )
    except ValidationError as exc:
        problem = config_error_from_validation(key, type(resource), exc)
    raise problem


def asset_config_value(
    step_key: str, cls: type[Config], given: Any, section: str | None
) -> Config:
    """The validated config of asset ``step_key`` from ``given`` (``None``: defaults).

    ``section`` is the run_config section it came from, ``None`` for a direct call.
    """
    if isinstance(given, cls):
        return given
    if isinstance(given, Config):
        raise ConfigError(
            f"the config of asset {step_key!r} is a {type(given).__name__}, but asset "
            f"{step_key!r} takes a {cls.__name__}.",
            field=None,
        )
    values = {} if given is None else given
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"the config of asset {step_key!r} must be a mapping of {cls.__name__}'s fields "
            f"(or a {cls.__name__}), got a {type(values).__name__}."
        )
    problem: ConfigError | None = None
    try:
        return cls.model_validate(dict(values))
    except ValidationError as exc:
        problems = validation_problems(exc, whole="(config)")
        missing = missing_fields(cls, values)  # type: ignore[arg-type]
        hint = ""
        if missing:
            example = ", ".join(f"{name!r}: ..." for name in missing)
            hint = (
                f"\n  give it: {step_key}(config={cls.__name__}(...)), or "
                f"build_asset_context(asset_config={{{example}}})"
                if section is None
                else f"\n  give it: run_config={{{section!r}: {{{step_key!r}: {{'config': "
                f"{{{example}}}}}}}}}"
            )
        lines = "\n".join(f"  {p.where}: {p.message}" for p in problems)
        problem = ConfigError(
            f"asset {step_key!r} has invalid config ({cls.__name__}):\n{lines}{hint}\n"
            f"  (nothing was brought up)",
            field=problems[0].where if problems else None,
        )
    raise problem


def with_asset_config(plan: Plan, launch: LaunchConfig, asset_keys: Iterable[str]) -> Plan:
    """``plan`` with each config-taking step's validated config.

    Raises:
        ConfigError: config for an unknown asset or one that takes none, or config that does
            not validate (naming asset and field).
    """
    known = set(asset_keys)
    section = launch.section
    for key in launch.assets:
        if key not in known:
            raise ConfigError(
                f"run_config[{section!r}] names {key!r}, which is not an asset of the run "
                f"(assets: {sorted(known) or 'none'})."
            )
        step = plan.steps.get(key)
        if step is not None and step.config_class is None:
            raise ConfigError(
                f"run_config[{section!r}] gives config for asset {key!r}, which takes none: "
                f"give it a parameter annotated with a host.Config subclass, or remove the "
                f"entry."
            )
    if not any(step.config_class is not None for step in plan.steps.values()):
        return plan
    steps = {}
    for key, step in plan.steps.items():
        cls = step.config_class
        steps[key] = (
            step
            if cls is None
            else dataclasses.replace(
                step, config=asset_config_value(key, cls, launch.assets.get(key), section)
            )
        )
    return Plan(steps)


def prepare_run(
    assets: Sequence[Any],
    resources: Mapping[str, Any] | None,
    selection: Iterable[str] | None,
    run_config: Mapping[str, Any] | None,
) -> tuple[ResourceGraph, Plan]:
    """The graph and plan of a run, everything given at launch applied; nothing comes up.

    Raises:
        DefinitionError: the definitions are wrong (see :func:`host._graph.build_plan`).
        ConfigError: the run config is malformed, or a resource's or asset's config does not
            validate or is missing, naming asset, resource key and field.
    """
    launch = parse_run_config(run_config)
    merged = merged_resources(assets, resources)
    graph = ResourceGraph.build(merged)
    selection = None if selection is None else list(selection)
    plan = build_plan(assets, graph, selection)
    resolved = _resolve(merged, graph, launch, plan).with_scopes(launch.scopes)
    if resolved is not graph:
        plan = build_plan(assets, resolved, selection)
    resolved.session_keys(plan.resource_keys())  # what a session resource needs outlives runs
    keys = [item.key for item in assets if isinstance(item, AssetDefinition)]
    return resolved, with_asset_config(plan, launch, keys)

