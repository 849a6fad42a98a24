"""The resources of a run as a graph: keys, dependency edges, and which keys a set of keys needs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from host._errors import ConfigError, DefinitionError
from host._function_resource import ResourceDefinition, describe_function_resource
from host._resource import ConfigurableResource

__all__ = ["ResourceGraph", "ResourceNode"]


@dataclass(frozen=True)
class ResourceNode:
    """One resource of a run.

    Attributes:
        key: its key (a top-level key, or ``"parent.field"`` for a nested dependency).
        resource: the object the user configured (only its configuration is used).
        deps: field name -> key of the dependency held in that field.
        scope: ``"session"`` if it is session-scoped (its class's ``host_scope``, or the run
            config's ``scope`` for its key), else ``"run"``.
    """

    key: str
    resource: Any
    deps: Mapping[str, str]
    scope: Literal["run", "session"] = "run"


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
        for key, value in resources.items():
            canonical = key_of[id(value)]
            if canonical not in nodes:
                _index(canonical, value, key_of, nodes)
            if canonical != key:
                # The same object under a second key: an alias of the first node.
                nodes[key] = nodes[canonical]
        _require_keys(nodes)
        return cls(nodes)

    def __reduce__(self) -> tuple[type[ResourceGraph], tuple[dict[str, ResourceNode]]]:
        """Pickle flat (:meth:`flat`): a chain of any depth pickles without deep recursion."""
        return (ResourceGraph, (self.flat(),))

    def flat(self) -> dict[str, ResourceNode]:
        """The nodes, each resource without the dependencies it holds (what is pickled).

        Every dependency is a node of its own, brought up first and given to its dependents
        when they are instantiated, so a copy sent to a worker process needs no nested
        objects. Aliases (one node under several keys) stay one node.
        """
        flat: dict[int, ResourceNode] = {}
        nodes: dict[str, ResourceNode] = {}
        for key, node in self.nodes.items():
            if id(node) not in flat:
                resource = node.resource
                if node.deps and isinstance(resource, ConfigurableResource):
                    resource = resource.model_copy(update=dict.fromkeys(node.deps))
                flat[id(node)] = ResourceNode(node.key, resource, dict(node.deps), node.scope)
            nodes[key] = flat[id(node)]
        return nodes

    def closure(self, keys: Iterable[str]) -> list[str]:
        """``keys`` and everything they depend on, dependencies first.

        Iterative (a chain of any depth is fine) and linear in the number of nodes and edges.
        """
        done: dict[str, None] = {}
        for root in keys:
            start = self.nodes[root].key
            if start in done:
                continue
            entered = {start}
            stack = [(start, iter(self.nodes[start].deps.values()))]
            while stack:
                key, pending = stack[-1]
                for dep in pending:
                    if dep not in done and dep not in entered:
                        entered.add(dep)
                        stack.append((dep, iter(self.nodes[dep].deps.values())))
                        break
                else:
                    stack.pop()
                    done[key] = None
        return list(done)

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
            elif isinstance(resource, ResourceDefinition) and resource.env_vars():
                resource.instantiate(key)

    def check_config(self, keys: Iterable[str]) -> None:
        """The config of every function resource that bringing up ``keys`` needs is complete
        and valid (the parts read from the environment aside), before anything comes up.

        Raises:
            ConfigError: naming the resource key, field and problem.
            DefinitionError: a nested function resource with no key of its own is not
                configured (launch config cannot reach it): bind it as a top-level resource.
        """
        for key in self.closure(keys):
            resource = self.nodes[key].resource
            if not isinstance(resource, ResourceDefinition):
                continue
            if "." not in key:
                resource.check_config(key)
                continue
            try:
                resource.check_config(key)
            except ConfigError as exc:
                # Nested, with no key of its own: launch config cannot reach it (as in Dagster).
                parent = key.rpartition(".")[0]
                problems = "; ".join(
                    line.strip()
                    for line in str(exc).splitlines()[1:]
                    if line.startswith("  ") and not line.strip().startswith("Give its config")
                )
                raise DefinitionError(
                    f"resource {key!r} (a function resource nested in {parent!r}, bound to no "
                    f"key of its own) is not configured ({problems or 'invalid config'}). Give "
                    f"it its config with .configured({{...}}), or bind it as a top-level "
                    f"resource (resources={{'KEY': ...}}, the same object in {parent!r}) and "
                    f"give its config at launch as resources.KEY.config; nothing was brought up."
                ) from None

    def with_scopes(self, scopes: Mapping[str, Literal["run", "session"]]) -> ResourceGraph:
        """The graph with the scope of each key of ``scopes`` set (the run config's ``scope``).

        Raises:
            ConfigError: a key is no resource of the run.
        """
        if not scopes:
            return self
        canonical: dict[str, Literal["run", "session"]] = {}
        for key, scope in scopes.items():
            if key not in self.nodes:
                raise ConfigError(
                    f"run_config['resources'] gives a scope for {key!r}, which is not a resource "
                    f"of the run (resources: {sorted(self.nodes) or 'none'}).",
                    resource_key=key,
                )
            canonical[self.nodes[key].key] = scope
        replaced: dict[int, ResourceNode] = {}
        nodes: dict[str, ResourceNode] = {}
        for key, node in self.nodes.items():
            if node.key in canonical and id(node) not in replaced:
                replaced[id(node)] = replace(node, scope=canonical[node.key])
            nodes[key] = replaced.get(id(node), node)
        return ResourceGraph(nodes)

    def session_keys(self, keys: Iterable[str]) -> list[str]:
        """The session-scoped resources among ``keys`` and what they depend on, dependencies
        first, each checked: what a session-scoped resource depends on outlives the run too.

        Raises:
            DefinitionError: a session-scoped resource depends on a run-scoped one (which is
                torn down at the end of each run, while its dependent stays up).
        """
        found: list[str] = []
        for key in self.closure(keys):
            node = self.nodes[key]
            if node.scope != "session":
                continue
            found.append(key)
            for field, dep in node.deps.items():
                target = self.nodes[dep]
                lifecycle = isinstance(target.resource, ConfigurableResource | ResourceDefinition)
                if target.scope != "session" and lifecycle:
                    raise DefinitionError(
                        f"resource {key!r} is session-scoped but depends on {dep!r} (field "
                        f"{field!r}), which is run-scoped: it would be torn down at the end of "
                        f"each run while {key!r} stays up. Make {dep!r} session-scoped too "
                        f"(host_scope = 'session' on its class, or scope = 'session' for its "
                        f"key in the run config), or {key!r} run-scoped."
                    )
        return found

    def types(self) -> dict[str, type]:
        """Top-level key -> class of the configured object."""
        return {key: type(node.resource) for key, node in self.nodes.items() if "." not in key}


def _index(
    key: str, value: Any, key_of: dict[int, str], nodes: dict[str, ResourceNode]
) -> None:
    """Add ``value`` under ``key`` and every resource it reaches to ``nodes``, depth first.

    Iterative, so a chain of dependencies of any depth is fine. A dependency already indexed
    (a shared object, or a top-level key) is referred to by its key; one that is on the path
    from ``key`` to itself is a cycle.

    Raises:
        DefinitionError: a resource depends on itself, directly or through others.
    """
    path: list[_Visit] = []
    on_path: set[int] = set()

    def enter(key: str, value: Any) -> None:
        key_of[id(value)] = key
        visit = _Visit(key, value)
        scope = value.host_scope if isinstance(value, ConfigurableResource) else "run"
        nodes[key] = ResourceNode(key, value, visit.deps, scope)
        path.append(visit)
        on_path.add(id(value))

    enter(key, value)
    while path:
        here = path[-1]
        for field, dep in here.fields:
            if id(dep) in on_path:
                raise _cycle(path, field, dep)
            dep_key = here.deps[field] = key_of.get(id(dep), f"{here.key}.{field}")
            if dep_key not in nodes:
                enter(dep_key, dep)
                break
        else:
            path.pop()
            on_path.discard(id(here.value))


class _Visit:
    """A resource on the path of :func:`_index`: its dependencies still to walk."""

    def __init__(self, key: str, value: Any) -> None:
        self.key = key
        self.value = value
        self.deps: dict[str, str] = {}
        self.fields: Iterator[tuple[str, Any]] = (
            iter(value.dependencies().items())
            if isinstance(value, ConfigurableResource)
            else iter(())
        )


def _require_keys(nodes: dict[str, ResourceNode]) -> None:
    """Add the edges of function resources' ``required_resource_keys`` (to top-level keys).

    Raises:
        DefinitionError: a required key is no resource of the run, or the keys form a cycle.
    """
    for key, node in list(nodes.items()):
        resource = node.resource
        if key != node.key or not isinstance(resource, ResourceDefinition):
            continue
        deps = cast(dict[str, str], node.deps)
        for required in sorted(resource.required_resource_keys):
            if required not in nodes or "." in required:
                known = sorted(k for k in nodes if "." not in k)
                raise DefinitionError(
                    f"resource {key!r} ({describe_function_resource(resource.resource_fn)}) "
                    f"requires resource key {required!r} (required_resource_keys), which no "
                    f"resource of the run has (resources: {known or 'none'}). Add "
                    f"resources={{{required!r}: ...}}, or remove it from required_resource_keys."
                )
            deps[required] = nodes[required].key
    if any(isinstance(node.resource, ResourceDefinition) for node in nodes.values()):
        _no_cycle(nodes)


def _no_cycle(nodes: Mapping[str, ResourceNode]) -> None:
    """No chain of dependencies leads from a resource back to itself (iterative DFS)."""
    done: set[str] = set()
    for start in nodes:
        if start in done:
            continue
        path = [nodes[start].key]
        on_path = set(path)
        stack = [iter(nodes[path[0]].deps.values())]
        while stack:
            for dep in stack[-1]:
                if dep in on_path:
                    chain = " -> ".join([*path[path.index(dep):], dep])
                    raise DefinitionError(
                        f"resource {dep!r} depends on itself through required_resource_keys "
                        f"({chain}); a resource cannot be its own dependency."
                    )
                if dep not in done:
                    path.append(dep)
                    on_path.add(dep)
                    stack.append(iter(nodes[dep].deps.values()))
                    break
            else:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())


def _cycle(path: list[_Visit], field: str, dep: Any) -> DefinitionError:
    keys = [visit.key for visit in path]
    back = next(visit.key for visit in path if visit.value is dep)
    chain = " -> ".join([*keys[keys.index(back):], back])
    top, parent = path[0], path[-1].key
    return DefinitionError(
        f"resource {top.key!r} ({type(top.value).__name__}) depends on itself: field {field!r} "
        f"of {parent!r} holds {back!r} ({type(dep).__name__}) again ({chain}). A resource "
        f"cannot be its own dependency; give {parent}.{field} another resource."
    )
