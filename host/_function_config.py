"""A function resource's config: its ``config_schema`` as a pydantic model, validating the
config given (now, or with its ``EnvVar`` values read where the resource comes up).

``config_schema`` is a mapping of field name to type (or to ``(type, default)``), one type, or a
pydantic model; ``None`` takes any config as it is. Errors name the resource, key and field and
the problem, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from host._envvar import EnvVar
from host._errors import ConfigError, validation_problems
from host._values import KEEP, Location, env_references, replace_values

__all__ = ["FunctionConfig", "read_config"]


def _field(spec: Any) -> tuple[Any, Any]:
    """A ``config_schema`` entry as a pydantic field: a type, or ``(type, default)``."""
    if isinstance(spec, tuple) and len(spec) == 2:
        return spec[0], spec[1]
    return spec, ...


def _schema_model(name: str, config_schema: Any) -> type[BaseModel] | None:
    """The pydantic model that validates a function resource's config (``None``: anything)."""
    if config_schema is None:
        return None
    strict = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    if isinstance(config_schema, type) and issubclass(config_schema, BaseModel):
        return create_model(name, value=(config_schema, ...), __config__=strict)
    if isinstance(config_schema, Mapping):
        fields = {str(key): _field(spec) for key, spec in config_schema.items()}
        inner = create_model(name, __config__=strict, **fields)  # type: ignore[call-overload]
        return create_model(name, value=(inner, ...), __config__=strict)
    return create_model(name, value=(config_schema, ...), __config__=strict)


class FunctionConfig:
    """The validator of one function resource's config.

    Args:
        name: the function's name (the model's).
        config_schema: as :class:`~host.ResourceDefinition` takes it.
    """

    def __init__(self, name: str, config_schema: Any) -> None:
        self.model = _schema_model(name, config_schema)

    def complete(self, config: Any) -> Any:
        """``config`` with no config given as an empty mapping when there is a schema."""
        return {} if config is None and self.model is not None else config

    def validate(
        self,
        owner: str,
        key: str,
        config: Any,
        *,
        deferred: bool = False,
        secrets: list[str] | tuple[str, ...] = (),
    ) -> Any:
        """The validated config (a model's as a dict), enum members kept.

        Args:
            owner: how errors name the resource.
            key: its key ("" when not bound yet).
            config: the config to validate.
            deferred: leave the parts holding an ``EnvVar`` unvalidated (they are read later).
            secrets: values read from the environment, masked in messages.

        Raises:
            ConfigError: the config does not validate.
        """
        model = self.model
        if model is None:
            return config
        value = config
        if deferred and env_references(config):
            if not isinstance(config, Mapping):
                return config
            value = {k: v for k, v in config.items() if not env_references(v)}
            inner = model.model_fields["value"].annotation
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                names = {k for k in config if env_references(config[k])}
                deferred_fields: dict[str, Any] = {name: (Any, None) for name in names}
                model = create_model(
                    model.__name__,
                    value=(create_model(inner.__name__, __base__=inner, **deferred_fields), ...),
                )
        problem: ConfigError | None = None
        try:
            checked = model.model_validate({"value": value})
        except ValidationError as exc:
            problem = _invalid(owner, key, exc, value, secrets)
        if problem is not None:
            raise problem
        result = checked.__dict__["value"]
        if isinstance(result, BaseModel):
            return dict(result.__dict__)
        return result


def _invalid(
    owner: str, key: str, exc: ValidationError, value: Any, secrets: Any
) -> ConfigError:
    """The config problems of ``exc`` as one error: locations and messages, no values."""
    from host._secrets import mask, secrets_in


    hidden = [*secrets, *secrets_in(value)]
    lines, first = [], None
    for problem in validation_problems(exc, whole="(model)"):
        where = problem.where.removeprefix("value").removeprefix(".") or "(config)"
        first = first or where
        lines.append(f"  {where}: {mask(problem.message, hidden)}")
    return ConfigError(
        f"{owner} has invalid config:\n" + "\n".join(lines) + "\n  Give its config with "
        ".configured({...}) or the run's resources.KEY.config.",
        resource_key=key or None,
        field=first,
    )


def read_config(
    owner: str, key: str, config: Any, environ: Mapping[str, str] | None = None
) -> tuple[Any, list[str]]:
    """``config`` with each ``EnvVar`` read (and converted), and the values read.

    Raises:
        ConfigError: a variable is not set, or not of its kind (``EnvVar.int``).
    """
    environ = os.environ if environ is None else environ
    read: list[str] = []

    def read_one(item: Any, location: Location) -> Any:
        if not isinstance(item, EnvVar):
            return KEEP
        where = ".".join(str(part) for part in location) or "(config)"
        if not item.name or item.name not in environ:
            raise ConfigError(
                f"{owner}: config field {where!r} reads environment variable {item.name!r}, "
                f"which is not set in process {os.getpid()}. Set {item.name or 'it'} where the "
                f"resource comes up.",
                resource_key=key,
                field=where,
            )
        value = environ[item.name]
        read.append(value)
        try:
            return item.convert(value)
        except ValueError as exc:
            raise ConfigError(
                f"{owner}: config field {where!r}: {exc}; set {item.name} to a whole number "
                f"where the resource comes up.",
                resource_key=key,
                field=where,
            ) from None

    return replace_values(config, read_one), read
