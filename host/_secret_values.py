"""The secret values a run's resources hold (their own and their dependencies'), for masking.

What counts as a secret is :mod:`host._secrets`'s rule (:func:`host._secrets.secrets_in`); this
module walks resources and function resources to collect them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host._function_resource import ResourceDefinition
from host._resource import ConfigurableResource
from host._secrets import MIN_SECRET_LENGTH, secrets_in

__all__ = ["secret_values", "secrets_of"]


def secrets_of(resource: ConfigurableResource | ResourceDefinition) -> set[str]:
    """The secret values ``resource`` holds itself (not those of its dependencies).

    Every ``SecretStr``/``SecretBytes`` in its fields, at any depth; every value read from the
    environment for it (once it was instantiated for a run: a field that was an ``EnvVar`` is
    kept as validated too); and the current value of each ``EnvVar`` still to be read.
    """
    found: set[str] = set()
    if isinstance(resource, ResourceDefinition):
        return {value for value in resource.secret_values() if len(value) >= MIN_SECRET_LENGTH}
    private = resource.__pydantic_private__ or {}
    found.update(private.get("_host_env_read", ()))
    env_fields = private.get("_host_env_fields", frozenset())
    for name, value in resource.__dict__.items():
        if isinstance(value, ConfigurableResource):
            continue
        if name in env_fields and isinstance(value, str):
            found.add(value)
        found.update(secrets_in(value))
    for value in private.get("_host_env", {}).values():
        found.update(secrets_in(value))
    return {value for value in found if len(value) >= MIN_SECRET_LENGTH}


def secret_values(resources: Mapping[str, Any]) -> list[str]:
    """The secret values of ``resources`` and their dependencies, longest first.

    ``EnvVar`` values are read from this process's environment; values shorter than
    :data:`MIN_SECRET_LENGTH` are left out. The walk is iterative (any depth of dependencies).
    """
    found: set[str] = set()
    seen: set[int] = set()
    kinds = (ConfigurableResource, ResourceDefinition)
    stack = [value for value in resources.values() if isinstance(value, kinds)]
    while stack:
        resource = stack.pop()
        if id(resource) in seen:
            continue
        seen.add(id(resource))
        found.update(secrets_of(resource))
        if isinstance(resource, ConfigurableResource):
            stack.extend(v for v in resource.dependencies().values() if isinstance(v, kinds))
    return sorted(found, key=len, reverse=True)
