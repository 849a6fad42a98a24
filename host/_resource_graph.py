"""The resources of a run as a graph: keys, dependency edges, and which keys a set of keys needs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from host._errors import DefinitionError
from host._resource import ConfigurableResource

__all__ = ["ResourceGraph", "ResourceNode"]


@dataclass(frozen=True)
class ResourceNode:
    """One resource of a run.

    Attributes:
        key: its key (a top-level key, or ``"parent.field"`` for a nested dependency).
        resource: the object the user configured (only its configuration is used).
        deps: field name -> key of the dependency held in that field.
    """

    key: str
    resource: Any
    deps: Mapping[str, str]


@dataclass(frozen=True)
class ResourceGraph:
    """The resources of a run by key; picklable (configuration only crosses processes)."""

    nodes: Mapping[str, ResourceNode]

    @classmethod
    def build(cls, resources: Mapping[str, Any]) -> ResourceGraph:
        """Index ``resources`` and their nested dependencies.

        One object reachable from several places (two keys, or a dependency of two resources) is
        one node, so it is brought up once. Objects that are not ``ConfigurableResource`` are
        given to assets as they are, with no lifecycle.
        """
        key_of: dict[int, str] = {}
        nodes: dict[str, ResourceNode] = {}
        for key, value in resources.items():
            if not isinstance(key, str) or not key.isidentifier():
                raise DefinitionError(
                    f"resource key {key!r} is not a valid Python identifier; assets refer to "
                    f"resources by parameter name."
                )
            key_of.setdefault(id(value), key)

        def visit(key: str, value: Any) -> str:
            known = key_of.get(id(value))
            if known is not None and known in nodes:
                return known
            key_of[id(value)] = key
            deps: dict[str, str] = {}
            nodes[key] = ResourceNode(key, value, deps)
            if isinstance(value, ConfigurableResource):
                for field, dep in value.dependencies().items():
                    deps[field] = visit(key_of.get(id(dep), f"{key}.{field}"), dep)
            return key

        for key, value in resources.items():
            canonical = visit(key_of[id(value)], value)
            if canonical != key:
                # The same object under a second key: an alias of the first node.
                nodes[key] = nodes[canonical]
        return cls(nodes)

    def closure(self, keys: Iterable[str]) -> list[str]:
        """``keys`` and everything they depend on, dependencies first."""
        seen: dict[str, None] = {}

        def walk(key: str) -> None:
            node = self.nodes[key]
            if node.key in seen:
                return
            for dep in node.deps.values():
                walk(dep)
            seen[node.key] = None

        for key in keys:
            walk(key)
        return list(seen)

    def check_environment(self, keys: Iterable[str], advice: str = "before the run") -> None:
        """Every value that bringing up ``keys`` (with dependencies) reads from the environment
        is there and validates: each ``EnvVar``, wherever it is in a field's value.

        Called before anything comes up, where the run shares this process's environment, so
        that a missing variable or a value that does not validate stops the run before any
        resource (another one included) is brought up.

        Raises:
            ConfigError: naming the resource key, field and variable and the problem (never
                the value), and saying to set a missing variable ``advice``; nothing was
                brought up.
        """
        for key in self.closure(keys):
            resource = self.nodes[key].resource
            if isinstance(resource, ConfigurableResource):
                resource.check_environment(key, advice=advice)

    def types(self) -> dict[str, type]:
        """Top-level key -> class of the configured object."""
        return {key: type(node.resource) for key, node in self.nodes.items() if "." not in key}
