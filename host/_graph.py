"""Planning: resolve each asset's parameters, order the assets, apply a selection."""

from __future__ import annotations

import graphlib
import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from host._asset import AssetDefinition
from host._errors import DefinitionError
from host._resource import ConfigurableResource
from host._resource_graph import ResourceGraph

__all__ = ["Param", "Plan", "Step", "build_plan"]

Kind = Literal["asset", "resource", "context"]


@dataclass(frozen=True, slots=True)
class Param:
    """How one parameter of an asset is filled: an upstream output, a resource, or the context."""

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
        resources: the resource keys it takes directly.
    """

    key: str
    asset: AssetDefinition
    params: tuple[Param, ...]
    upstream: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The assets of a run, in an order where every asset comes after its upstream assets."""

    steps: Mapping[str, Step]

    @property
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
        return {key for step in self.steps.values() for key in step.resources}


def _resource_by_type(
    asset: AssetDefinition, name: str, annotation: Any, types: Mapping[str, type]
) -> str | None:
    if not (isinstance(annotation, type) and issubclass(annotation, ConfigurableResource)):
        return None
    if name in types:
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
    params: list[Param] = []
    for parameter in asset.parameters:
        name = parameter.name
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
    return tuple(params)


def build_plan(
    assets: Sequence[Any], resources: ResourceGraph, selection: Iterable[str] | None = None
) -> Plan:
    """Check the definitions and order them; nothing runs.

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
    resolved = {key: _resolve(definition, by_key, types) for key, definition in by_key.items()}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for key, params in resolved.items():
        sorter.add(key, *(p.ref for p in params if p.kind == "asset"))
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise DefinitionError(
            f"assets form a cycle: {cycle}. An asset cannot depend on itself through others."
        ) from None
    wanted = set(order)
    if selection is not None:
        selection = list(selection)
        unknown = [key for key in selection if key not in by_key]
        if unknown:
            raise DefinitionError(
                f"selection names unknown assets {unknown}; known assets: {sorted(by_key)}."
            )
        wanted = set()
        stack = list(selection)
        while stack:
            key = stack.pop()
            if key not in wanted:
                wanted.add(key)
                stack.extend(p.ref for p in resolved[key] if p.kind == "asset")
    steps = {}
    for key in order:
        if key in wanted:
            params = resolved[key]
            steps[key] = Step(
                key=key,
                asset=by_key[key],
                params=params,
                upstream=tuple(p.ref for p in params if p.kind == "asset"),
                resources=tuple(dict.fromkeys(p.ref for p in params if p.kind == "resource")),
            )
    return Plan(steps)


def _where(definition: AssetDefinition) -> str:
    fn = definition.fn
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
