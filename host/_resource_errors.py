"""A resource's pydantic ``ValidationError`` as a ``ConfigError`` that shows no input values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from host._envvar import EnvVar
from host._errors import ConfigError, validation_problems
from host._values import walk_values

__all__ = ["config_error_from_validation"]


def _secret_inputs(cls: type[BaseModel], values: Mapping[str, Any]) -> list[str]:
    """The strings given for the fields of ``cls`` typed with ``SecretStr``/``SecretBytes``."""
    found: list[str] = []
    for name, field in cls.model_fields.items():
        text = repr(field.annotation)
        if "Secret" not in text or name not in values:
            continue
        for _, item in walk_values(values[name]):
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, SecretStr):
                found.append(item.get_secret_value())
    return found


def config_error_from_validation(
    key: str,
    cls: type[BaseModel],
    exc: ValidationError,
    *,
    secret_fields: Mapping[str, EnvVar] | None = None,
    secrets: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
) -> ConfigError:
    """Turn a pydantic ValidationError into a ConfigError that shows no input values.

    Each error is one line: its location, the environment variable the value was read from
    (when it was), and pydantic's message. The input values are left out, and the messages
    (which a ``field_validator`` of the resource may have written quoting its input) are masked
    with ``secrets``, the values given for secret-typed fields in ``values``, and the secrets
    inside them. The ValidationError is not chained (its text repeats the inputs): raise the
    result ``from None``, or outside the ``except`` block.

    Args:
        key: the resource key.
        cls: the resource (or model) class that was validated.
        exc: what validating raised.
        secret_fields: location (``"field"`` or ``"field.0.sub"``) -> the EnvVar its value was
            read from.
        secrets: values read from the environment, masked in the messages.
        values: the values that were validated, to mask those given for secret fields.
    """
    from host._secrets import mask, secrets_in

    secret_fields = secret_fields or {}
    hidden = [*secrets]
    if values is not None:
        hidden += _secret_inputs(cls, values)
        for value in values.values():
            hidden += secrets_in(value)
    lines = []
    first_field: str | None = None
    for problem in validation_problems(exc, whole="(model)"):
        loc = problem.where
        first_field = first_field or loc
        source = ""
        var = _source(secret_fields, loc)
        if var is not None:
            source = f" (read from environment variable {var.name})"
        lines.append(f"  {loc}{source}: {mask(problem.message, hidden)}")
    return ConfigError(
        f"resource {key!r} ({cls.__name__}) has invalid configuration:\n" + "\n".join(lines),
        resource_key=key,
        field=first_field,
    )


def _source(secret_fields: Mapping[str, EnvVar], loc: str) -> EnvVar | None:
    """The EnvVar read for location ``loc``, or for the part of a field that holds it."""
    if loc in secret_fields:
        return secret_fields[loc]
    inside = [var for where, var in secret_fields.items() if where.startswith(loc + ".")]
    if len(inside) == 1:
        return inside[0]
    for where, var in secret_fields.items():
        if loc.startswith(where + "."):
            return var
    return None
