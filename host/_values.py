"""Walking configuration values: find, replace and mask the parts of a field's value.

Values nest to any depth (mappings, lists, tuples, sets, pydantic models, dataclasses); every
walk here is iterative. What a resource's configuration may be shown as (secrets masked, each
``EnvVar`` by name) is :func:`masked_value`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from host._envvar import EnvVar

__all__ = [
    "KEEP",
    "MASK",
    "Location",
    "OwnConfiguration",
    "env_as_json",
    "env_references",
    "masked_value",
    "replace_values",
    "show_env",
    "walk_values",
]

#: What a secret value is shown as, everywhere.
MASK = "**********"


class OwnConfiguration:
    """Marks a model with configuration of its own (a resource): a value holding one does not
    descend into it, since it is a dependency, shown and read on its own."""

    __slots__ = ()


#: A location inside a field's value: the field name, then keys and indexes (pydantic's ``loc``).
Location = tuple[str | int, ...]


def _children(value: Any) -> list[tuple[str | int, Any]] | None:
    """The parts of a container value, by key or index; ``None`` for a leaf.

    Containers are mappings, lists, tuples, sets, pydantic models (other than resources, which
    are :class:`OwnConfiguration`: a resource held in a field is a dependency, with configuration
    of its own) and dataclass instances. Strings and bytes are leaves.
    """
    parts: list[tuple[str | int, Any]] | None = None
    if isinstance(value, str | bytes | bytearray | SecretStr | SecretBytes):
        pass
    elif isinstance(value, Mapping):
        parts = [(key if isinstance(key, int) else str(key), item) for key, item in value.items()]
    elif isinstance(value, list | tuple | set | frozenset):
        parts = list(enumerate(value))
    elif isinstance(value, BaseModel):
        if not isinstance(value, OwnConfiguration):
            parts = [*value.__dict__.items(), *(value.__pydantic_extra__ or {}).items()]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = [(f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value)]
    return parts


def walk_values(value: Any, location: Location = ()) -> Iterator[tuple[Location, Any]]:
    """Every value inside ``value`` (itself included), with its location; iterative.

    Descends into mappings (their values), lists, tuples, sets, pydantic models and dataclass
    instances, to any depth, each object once (a value that holds itself is not a loop).
    """
    seen: set[int] = set()
    stack: list[tuple[Location, Any]] = [(location, value)]
    while stack:
        loc, item = stack.pop()
        yield loc, item
        parts = _children(item)
        if parts is None or id(item) in seen:
            continue
        seen.add(id(item))
        stack.extend(((*loc, key), part) for key, part in reversed(parts))


def env_references(value: Any, location: Location = ()) -> list[tuple[Location, EnvVar]]:
    """Each ``EnvVar`` inside ``value``, with its location, in order."""
    return [(loc, item) for loc, item in walk_values(value, location) if isinstance(item, EnvVar)]


def _rebuild(original: Any, parts: list[tuple[str | int, Any]], values: list[Any]) -> Any:
    """``original`` with its parts replaced by ``values`` (a model or dataclass: a dict)."""
    if all(new is old for new, (_, old) in zip(values, parts, strict=True)):
        return original
    if isinstance(original, list):
        return list(values)
    if isinstance(original, tuple):
        return tuple(values)
    if isinstance(original, frozenset):
        return frozenset(values)
    if isinstance(original, set):
        return set(values)
    # A mapping, a pydantic model or a dataclass: its fields as a dict, which the field
    # being validated turns back into the model.
    return {key: new for (key, _), new in zip(parts, values, strict=True)}


def replace_values(
    value: Any, replace: Callable[[Any, Location], Any], location: Location = ()
) -> Any:
    """``value`` with each part for which ``replace(part, location)`` gives something else
    than :data:`KEEP` replaced by that; containers holding a replaced part are rebuilt (a
    pydantic model or dataclass as a dict of its fields, which validating the field turns back
    into the model), the others are kept as they are.

    ``replace`` sees every value, containers before their parts. Iterative, so values nested
    deeper than Python's recursion limit work too; a container holding itself is kept.
    """
    top = replace(value, location)
    if top is not KEEP:
        return top
    parts = _children(value)
    if parts is None:
        return value
    # Each frame: [container, location, its parts, index of the next part, new part values].
    stack: list[list[Any]] = [[value, location, parts, 0, []]]
    active = {id(value)}
    while True:
        frame = stack[-1]
        node, loc, node_parts, index, built = frame
        if index < len(node_parts):
            frame[3] = index + 1
            key, child = node_parts[index]
            child_loc = (*loc, key)
            new = replace(child, child_loc)
            if new is not KEEP:
                built.append(new)
                continue
            child_parts = _children(child)
            if child_parts is None or id(child) in active:
                built.append(child)
                continue
            active.add(id(child))
            stack.append([child, child_loc, child_parts, 0, []])
            continue
        stack.pop()
        active.discard(id(node))
        result = _rebuild(node, node_parts, built)
        if not stack:
            return result
        stack[-1][4].append(result)


class _Keep:
    def __repr__(self) -> str:
        return "<keep>"


#: What a ``replace`` function of :func:`replace_values` returns to leave a value alone (and
#: look inside it).
KEEP: Any = _Keep()


def show_env(item: Any, location: Location) -> Any:
    return f"<env {item.name}>" if isinstance(item, EnvVar) else KEEP


def _show_masked(item: Any, location: Location) -> Any:
    if isinstance(item, EnvVar):
        return f"<env {item.name}>"
    if isinstance(item, SecretStr | SecretBytes):
        return MASK
    if isinstance(item, Enum):
        return item.value
    return KEEP


def env_as_json(item: Any, location: Location) -> Any:
    return {"env": item.name} if isinstance(item, EnvVar) else KEEP


def masked_value(value: Any) -> Any:
    """``value`` as configuration may be shown: ``SecretStr``/``SecretBytes`` anywhere inside
    it are the mask, each ``EnvVar`` is ``"<env NAME>"``, and each ``Enum`` member is its
    value (as Dagster's ``context.resource_config`` shows it)."""
    return replace_values(value, _show_masked)
