"""Planning: resolve each asset's parameters, order the assets, apply a selection."""

from __future__ import annotations

import functools
import graphlib
import inspect
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from host._asset import AssetDefinition
from host._asset_config import is_config_class
from host._errors import DefinitionError
from host._resource import ConfigurableResource
from host._resource_graph import ResourceGraph

__all__ = ["Param", "Plan", "Step", "build_plan"]

Kind = Literal["asset", "resource", "context", "config"]


class Param(NamedTuple):
    """How one parameter of an asset is filled: an upstream output, a resource, the context,
    or the asset's config (``ref`` is then the parameter's name).

    A named tuple: running an asset unpacks each one (``name, kind, ref``).
    """

    name: str
    kind: Kind
    ref: str


@dataclass(frozen=True)
class Step:
    """One asset of a plan.

    Attributes:
        key: the asset key.
        asset: the definition (function and metadata).
        params: how each parameter is filled (parameters keeping their default are left out).
        upstream: the asset keys whose outputs it takes.
        resources: the resource keys it takes directly (parameters, then
            ``required_resource_keys``); all are up before it runs and in
            ``context.resources``.
        takes_context: one of its parameters is the execution context.
        config: the asset's validated :class:`host.Config` for this run (its config parameter
            receives it), set by :func:`host._launch.with_asset_config`.
    """

    key: str
    asset: AssetDefinition
    params: tuple[Param, ...]
    upstream: tuple[str, ...]
    resources: tuple[str, ...]
    takes_context: bool = False
    config: Any = None

    @functools.cached_property
    def config_class(self) -> type | None:
        """The :class:`host.Config` subclass its config parameter is annotated with, if any."""
        for name, kind, _ in self.params:
            if kind == "config":
                cls = self.asset.type_hints[name]
                return cls if isinstance(cls, type) else None
        return None


@dataclass(frozen=True)
class Plan:
    """The assets of a run, in an order where every asset comes after its upstream assets."""

    steps: Mapping[str, Step]

    @functools.cached_property
    def order(self) -> tuple[str, ...]:
        """The asset keys in a valid execution order."""
        return tuple(self.steps)

    def downstream(self) -> dict[str, list[str]]:
        """Asset key -> the keys of assets that take its output."""
        result: dict[str, list[str]] = {key: [] for key in self.steps}
        for step in self.steps.values():
            for up in step.upstream:
                result[up].append(step.key)
        return result

    def resource_keys(self) -> set[str]:
        """Every resource key some asset of the plan takes directly."""
        return set(self._resource_keys)

    @functools.cached_property
    def _resource_keys(self) -> frozenset[str]:
        return frozenset(key for step in self.steps.values() for key in step.resources)


def _resource_by_type(
    asset: AssetDefinition, name: str, annotation: Any, types: Mapping[str, type]
) -> str | None:
    if not (isinstance(annotation, type) and issubclass(annotation, ConfigurableResource)):
        return None
    if name in types:
        bound = types[name]
        if _given_as_is(bound) and not issubclass(bound, annotation):
            raise DefinitionError(
                f"asset {asset.key!r}, parameter {name!r}: annotated {_type_name(annotation)}, "
                f"but resource {name!r} is of type {_type_name(bound)}. Bind a "
                f"{_type_name(annotation)} to {name!r}, or change the annotation."
            )
        return name
    matches = [key for key, cls in types.items() if issubclass(cls, annotation)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DefinitionError(
            f"asset {asset.key!r}, parameter {name!r}: needs a {annotation.__name__} resource "
            f"but none is configured. Add one to resources= (e.g. resources={{{name!r}: "
            f"{annotation.__name__}(...)}})."
        )
    raise DefinitionError(
        f"asset {asset.key!r}, parameter {name!r}: {len(matches)} resources are "
        f"{annotation.__name__} ({', '.join(sorted(matches))}); name the parameter like the "
        f"resource key you mean."
    )


def _resolve(
    asset: AssetDefinition, asset_keys: Mapping[str, object], types: Mapping[str, type]
) -> tuple[Param, ...]:
    hints = asset.type_hints
    resource_params = asset.resource_params
    params: list[Param] = []
    for parameter in asset.parameters:
        name = parameter.name
        if is_config_class(hints.get(name)):
            params.append(Param(name, "config", name))
            continue
        if name in resource_params:
            key = _resource_param(asset, name, resource_params[name], types)
            params.append(Param(name, "resource", key))
            continue
        by_type = _resource_by_type(asset, name, hints.get(name), types)
        if by_type is not None:
            params.append(Param(name, "resource", by_type))
        elif name in asset_keys and name in types:
            raise DefinitionError(
                f"asset {asset.key!r}, parameter {name!r}: both an asset and a resource are "
                f"called {name!r}. Rename one, or annotate the parameter with the resource class."
            )
        elif name in asset_keys:
            if name == asset.key:
                raise DefinitionError(
                    f"asset {asset.key!r}, parameter {name!r}: an asset cannot take its own output."
                )
            params.append(Param(name, "asset", name))
        elif name in types:
            params.append(Param(name, "resource", name))
        elif name == "context":
            params.append(Param(name, "context", name))
        elif parameter.default is inspect.Parameter.empty:
            raise DefinitionError(
                f"asset {asset.key!r}, parameter {name!r}: no asset, resource or 'context' is "
                f"called {name!r}. Known assets: {sorted(asset_keys) or 'none'}; resources: "
                f"{sorted(types) or 'none'}. Add the missing asset or resource, or give the "
                f"parameter a default."
            )
    for key in sorted(asset.required_resource_keys):
        if key not in types:
            raise DefinitionError(
                f"asset {asset.key!r}: required_resource_keys names {key!r}, but no resource is "
                f"bound to {key!r} (resources: {sorted(types) or 'none'}). Bind one "
                f"(run_assets(resources={{{key!r}: ...}}) or @asset(resource_defs=...)), or "
                f"remove {key!r} from required_resource_keys."
            )
    return tuple(params)


def _resource_param(
    asset: AssetDefinition, name: str, expected: Any, types: Mapping[str, type]
) -> str:
    """The key a ``ResourceParam[T]`` parameter takes: its own name, bound to a ``T``.

    The type is checked where what the asset receives is the bound object itself: a plain
    object, or a ``ConfigurableResource`` that neither replaces ``yield_for_execution`` nor
    creates another object (``create_resource``).

    Raises:
        DefinitionError: no resource is bound to the key, or the one bound is not a ``T``.
    """
    if name not in types:
        raise DefinitionError(
            f"asset {asset.key!r}, parameter {name!r}: ResourceParam[{_type_name(expected)}] "
            f"takes the resource bound to key {name!r}, and none is (resources: "
            f"{sorted(types) or 'none'}). Bind one: resources={{{name!r}: ...}}."
        )
    bound = types[name]
    if isinstance(expected, type) and _given_as_is(bound) and not issubclass(bound, expected):
        raise DefinitionError(
            f"asset {asset.key!r}, parameter {name!r}: ResourceParam[{_type_name(expected)}] "
            f"takes a {_type_name(expected)}, but resource {name!r} is of type "
            f"{_type_name(bound)}. Bind a {_type_name(expected)} to {name!r}, or change the "
            f"annotation."
        )
    return name


def _given_as_is(bound: type) -> bool:
    """Whether assets receive an object of class ``bound`` itself (so its type can be checked
    before the run): a plain object, or a ``ConfigurableResource`` that neither replaces
    ``yield_for_execution`` nor creates another object (``create_resource``)."""
    if hasattr(bound, "host_with_launch_config"):  # a function resource, a factory
        return False
    if not issubclass(bound, ConfigurableResource):
        return True
    return not (bound.overrides_yield() or hasattr(bound, "create_resource"))


def _type_name(cls: Any) -> str:
    return getattr(cls, "__qualname__", None) or repr(cls)


#: How many resolutions each definition remembers (different resource sets, asset sets).
_MEMO_SIZE = 8


def _step(
    definition: AssetDefinition,
    asset_keys: Mapping[str, object],
    types: Mapping[str, type],
    types_token: Hashable,
) -> Step:
    """The step of ``definition`` in a plan with these assets and resource types.

    Resolving parameters depends only on the resource types and on which parameter names are
    asset keys, so a definition remembers its step for that combination: planning the same
    assets again (a job run many times in one process) costs a dictionary lookup per asset.
    """
    memo_key = (types_token, tuple([name in asset_keys for name in definition.parameter_names]))
    memo = definition.plans
    step: Step | None = memo.get(memo_key)
    if step is None:
        params = _resolve(definition, asset_keys, types)
        step = Step(
            key=definition.key,
            asset=definition,
            params=params,
            upstream=tuple(p.ref for p in params if p.kind == "asset"),
            resources=tuple(
                dict.fromkeys(
                    [
                        *(p.ref for p in params if p.kind == "resource"),
                        *sorted(definition.required_resource_keys),
                    ]
                )
            ),
            takes_context=any(p.kind == "context" for p in params),
        )
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[memo_key] = step
    return step


def _order(steps: Mapping[str, Step]) -> list[str]:
    """The asset keys in a valid execution order: as given if every asset already comes after
    its upstream assets there, else a topological order (``graphlib``).

    Raises:
        DefinitionError: the assets form a cycle.
    """
    seen: set[str] = set()
    for key, step in steps.items():
        for up in step.upstream:
            if up not in seen:
                return _sorted(steps)
        seen.add(key)
    return list(steps)


def _sorted(steps: Mapping[str, Step]) -> list[str]:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for key, step in steps.items():
        sorter.add(key, *step.upstream)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise DefinitionError(
            f"assets form a cycle: {cycle}. An asset cannot depend on itself through others."
        ) from None


def build_plan(
    assets: Sequence[Any], resources: ResourceGraph, selection: Iterable[str] | None = None
) -> Plan:
    """Check the definitions and order them; nothing runs.

    The order is the order of ``assets`` when every asset comes after its upstream assets
    there, else a topological order.

    Args:
        assets: ``@asset`` definitions (plain functions are not accepted: decorate them).
        resources: the run's resource graph.
        selection: asset keys to run; their upstream assets run too (there is no stored
            output to read them from). ``None`` runs every asset.

    Raises:
        DefinitionError: a duplicate key, an unresolved parameter, a missing resource, a cycle,
            or an unknown key in ``selection``; the message names the asset and parameter.
    """
    by_key: dict[str, AssetDefinition] = {}
    for item in assets:
        if not isinstance(item, AssetDefinition):
            raise DefinitionError(
                f"{item!r} is not an asset; decorate the function with @host.asset."
            )
        if item.key in by_key:
            raise DefinitionError(
                f"two assets are called {item.key!r} ({_where(by_key[item.key])} and "
                f"{_where(item)}); give one another name with @asset(name=...)."
            )
        by_key[item.key] = item
    types = resources.types()
    token = frozenset(types.items())
    resolved = {key: _step(definition, by_key, types, token) for key, definition in by_key.items()}
    order = _order(resolved)
    if selection is None:
        return Plan({key: resolved[key] for key in order})
    selection = list(selection)
    unknown = [key for key in selection if key not in by_key]
    if unknown:
        raise DefinitionError(
            f"selection names unknown assets {unknown}; known assets: {sorted(by_key)}."
        )
    wanted: set[str] = set()
    stack = list(selection)
    while stack:
        key = stack.pop()
        if key not in wanted:
            wanted.add(key)
            stack.extend(resolved[key].upstream)
    return Plan({key: resolved[key] for key in order if key in wanted})


def _where(definition: AssetDefinition) -> str:
    fn = definition.fn
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
