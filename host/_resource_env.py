"""Reading a resource's ``EnvVar`` values where it comes up (or before a run, to check them).

Every ``EnvVar`` in a field's value (at any depth) is read, converted (``EnvVar.int``) and the
field validated with the values read, as if they had been given; errors name the resource key,
field and variable, never the value, and the values read stay known as secrets of the copy.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from host._envvar import EnvVar
from host._errors import ConfigError, location_text
from host._resource_errors import config_error_from_validation
from host._values import KEEP, Location, replace_values

__all__ = ["empty_env_name", "read_environment", "reset_private"]

R = TypeVar("R", bound=BaseModel)


def empty_env_name(owner: str, location: Location, key: str | None = None) -> ConfigError:
    """The error for an ``EnvVar`` with an empty name at ``location`` of ``owner``."""
    where = location_text(location)
    return ConfigError(
        f"{owner}: field {where!r} reads an environment variable with an empty name "
        f"(EnvVar(''), or {{ env = \"\" }} in a run config); give the variable's name, "
        f"e.g. EnvVar(\"API_TOKEN\") or {{ env = \"API_TOKEN\" }}.",
        resource_key=key,
        field=where,
    )


def reset_private(obj: BaseModel) -> None:
    """Set every private attribute of ``obj`` to its declared default (fresh run state)."""
    private: dict[str, Any] = {}
    for name, attr in type(obj).__private_attributes__.items():
        if attr.default_factory is not None:
            private[name] = attr.default_factory()  # type: ignore[call-arg]
        elif attr.default is not PydanticUndefined:
            private[name] = copy.deepcopy(attr.default)
    object.__setattr__(obj, "__pydantic_private__", private)


def read_environment(
    resource: R,
    key: str,
    environ: Mapping[str, str] | None,
    advice: str | None,
    dependencies: Mapping[str, Any],
) -> R:
    """A fresh copy of ``resource`` with every ``EnvVar`` read and validated, deps replaced.

    Args:
        resource: the resource (its ``EnvVar`` values still to be read).
        key: the resource key, for error messages.
        environ: where the variables are read (default: ``os.environ``).
        advice: where to set a missing variable when checking before a run (``None``: the
            resource is coming up in this process).
        dependencies: field name -> the dependency object that is already up.

    Raises:
        ConfigError: a variable is missing, has an empty name, or its value does not
            validate; naming key, field and variable, never the value.
    """
    private = resource.__pydantic_private__ or {}
    env: dict[str, Any] = private.get("_host_env", {})
    environ = os.environ if environ is None else environ
    owner = f"resource {key!r} ({type(resource).__name__})"
    values = {name: value for name, value in resource.__dict__.items() if name not in env}
    values.update(dependencies)
    read: list[str] = []
    sources: dict[str, EnvVar] = {}

    def read_one(item: Any, location: Location) -> Any:
        if not isinstance(item, EnvVar):
            return KEEP
        if not item.name:
            raise empty_env_name(owner, location, key)
        if item.name not in environ:
            where = location_text(location)
            if advice is None:
                tail = (
                    f"which is not set in process {os.getpid()}. Set {item.name} where "
                    f"the resource comes up."
                )
            else:
                tail = f"which is not set. Set {item.name} {advice}; nothing was brought up."
            raise ConfigError(
                f"{owner}: field {where!r} reads environment variable {item.name!r}, {tail}",
                resource_key=key,
                field=where,
            )
        sources[location_text(location)] = item
        read.append(environ[item.name])
        try:
            return item.convert(environ[item.name])
        except ValueError as exc:
            where = location_text(location)
            raise ConfigError(
                f"{owner}: field {where!r}: {exc}; set {item.name} to a whole number"
                + (f" {advice}; nothing was brought up" if advice else "") + ".",
                resource_key=key,
                field=where,
            ) from None

    for name, template in env.items():
        values[name] = replace_values(template, read_one, (name,))
    problem: ConfigError | None = None
    try:
        fresh = type(resource).model_validate(values)
    except ValidationError as exc:
        # Built outside this block so that the ValidationError (whose text repeats the
        # values read) is neither chained nor the context of what is raised.
        problem = config_error_from_validation(
            key, type(resource), exc, secret_fields=sources, secrets=read
        )
    if problem is not None:
        if advice is not None:
            problem = ConfigError(
                f"{problem}\n  (nothing was brought up)",
                resource_key=problem.resource_key,
                field=problem.field,
            )
        raise problem
    object.__setattr__(fresh, "__pydantic_private__", None)
    reset_private(fresh)
    fresh.__pydantic_private__["_host_env_fields"] = frozenset(env)  # type: ignore[index]
    fresh.__pydantic_private__["_host_env_read"] = tuple(read)  # type: ignore[index]
    return fresh
