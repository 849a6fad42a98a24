"""Secret values of a run's resources, and masking them in what the host reports.

A secret is the value of a ``pydantic.SecretStr`` field or a value read from the environment
through ``EnvVar``. The host never formats configuration values into its own messages; this
module is the second line: error reports (:class:`host.ErrorInfo` in events, failures and
``RunFailure``) have every known secret value replaced by ``**********``, so that a resource or
an asset whose own exception message happens to contain one does not leak it either.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import SecretStr

from host._events import ErrorInfo
from host._resource import MASK, ConfigurableResource, EnvVar

__all__ = ["MIN_SECRET_LENGTH", "mask", "mask_error", "mask_event", "secret_values", "secrets_of"]

#: Secret values shorter than this are not masked (they would mask ordinary text).
MIN_SECRET_LENGTH = 4

E = TypeVar("E")


def secrets_of(resource: ConfigurableResource) -> set[str]:
    """The secret values ``resource`` holds itself (not those of its dependencies).

    ``SecretStr`` fields, fields read from the environment (once the resource was
    instantiated for a run), and the current value of each ``EnvVar`` still to be read.
    """
    found: set[str] = set()
    env_fields = resource._host_env_fields
    for name, value in resource.__dict__.items():
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif isinstance(value, EnvVar):
            found.add(os.environ.get(value.name, ""))
        elif name in env_fields and isinstance(value, str):
            found.add(value)
    return {value for value in found if len(value) >= MIN_SECRET_LENGTH}


def secret_values(resources: Mapping[str, Any]) -> list[str]:
    """The secret values of ``resources`` and their dependencies, longest first.

    ``EnvVar`` values are read from this process's environment; values shorter than
    :data:`MIN_SECRET_LENGTH` are left out.
    """
    found: set[str] = set()
    seen: set[int] = set()

    def visit(resource: ConfigurableResource) -> None:
        if id(resource) in seen:
            return
        seen.add(id(resource))
        found.update(secrets_of(resource))
        for dependency in resource.dependencies().values():
            visit(dependency)

    for resource in resources.values():
        if isinstance(resource, ConfigurableResource):
            visit(resource)
    return sorted(found, key=len, reverse=True)


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret value replaced by the mask (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_error(info: ErrorInfo, secrets: Collection[str]) -> ErrorInfo:
    """``info`` with the secret values masked in its message and traceback."""
    if not secrets:
        return info
    message, text = mask(info.message, secrets), mask(info.traceback, secrets)
    if message == info.message and text == info.traceback:
        return info
    return dataclasses.replace(info, message=message, traceback=text)


def mask_event(event: E, secrets: Collection[str]) -> E:
    """``event`` with the secret values masked in its error, if it has one."""
    error = getattr(event, "error", None)
    if error is None or not secrets:
        return event
    masked = mask_error(error, secrets)
    if masked is error:
        return event
    return dataclasses.replace(event, error=masked)  # type: ignore[type-var]
