"""``host.Config``: pydantic configuration classes for assets and for nested resource config.

Dagster's ``Config``: a frozen pydantic model with unknown fields rejected. An asset takes its
configuration as a parameter annotated with a ``Config`` subclass (``def my_asset(config:
MyAssetConfig)``); the values come from the run (``run_assets(..., run_config=...)``) and are
validated before anything comes up. A ``Config`` subclass used as the type of a resource field
is nested configuration of that resource.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from pydantic import BaseModel, ConfigDict, ValidatorFunctionWrapHandler, field_validator

from host._envvar import EnvVar
from host._values import env_references

__all__ = ["Config", "is_config_class"]


class Config(BaseModel):
    """Base class for configuration: fields validated on construction, frozen, no extras.

    Example::

        class MyAssetConfig(Config):
            person_name: str
            greeting: str = "hello"

        @asset
        def greeting(config: MyAssetConfig) -> str:
            return f"{config.greeting}, {config.person_name}"

        run_assets([greeting], run_config={"ops": {"greeting": {"config": {"person_name": "Ann"}}}})

    An asset whose run gives no values for its config gets the class's defaults; a required
    field left out is a :class:`host.ConfigError` naming the asset and field, before any
    resource comes up. In configuration nested in a resource (a field typed with a ``Config``
    subclass), an ``EnvVar`` is read where the resource comes up, as in the resource's own
    fields.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    @field_validator("*", mode="wrap")
    @classmethod
    def _keep_env_vars(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """A value holding an ``EnvVar`` is kept as it is, to be read (and then validated)
        where the resource it configures comes up, as a resource's own fields are."""
        if isinstance(value, EnvVar) or env_references(value):
            return value
        return handler(value)


def is_config_class(annotation: Any) -> TypeGuard[type[Config]]:
    """Whether ``annotation`` is a :class:`Config` subclass (an asset's config parameter)."""
    return isinstance(annotation, type) and issubclass(annotation, Config)
