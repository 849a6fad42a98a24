"""``ConfigurableResourceFactory``: configuration as pydantic fields, the resource made from it.

Dagster's pattern for giving assets an object that is not itself the configuration (a client of
a third-party library): the factory's fields are validated, frozen and read from the environment
like any ``ConfigurableResource``'s; :meth:`ConfigurableResourceFactory.create_resource` makes
the object assets receive, once per run per process, after ``setup_for_execution``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from host._resource import ConfigurableResource

if TYPE_CHECKING:
    from host._context import InitResourceContext

__all__ = ["ConfigurableResourceFactory"]

T = TypeVar("T")


class ConfigurableResourceFactory(ConfigurableResource, Generic[T]):
    """A resource whose assets receive what :meth:`create_resource` returns, not the factory.

    Example::

        class GitHubResource(ConfigurableResourceFactory[GitHubClient]):
            token: str

            def create_resource(self, context: InitResourceContext) -> GitHubClient:
                return GitHubClient(self.token)

        @asset
        def repos(github: ResourceParam[GitHubClient]): ...   # or a parameter named github

    The lifecycle is a ``ConfigurableResource``'s (setup and teardown hooks, timeouts, once
    per run per process, reverse teardown); ``create_resource`` runs after setup (on what
    ``yield_for_execution`` yields, if the class overrides it) and may be ``async``. A field
    holding a factory receives the created object.
    """

    def create_resource(self, context: InitResourceContext) -> T:
        """Make the object assets receive. Required.

        Raises:
            NotImplementedError: the subclass does not define it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} is a ConfigurableResourceFactory: define "
            f"create_resource(self, context) returning the object assets receive."
        )

    def host_with_launch_config(self, values: Mapping[str, Any]) -> ConfigurableResourceFactory[T]:
        """This factory with the fields a run gives at launch (``run_config``'s
        ``resources.KEY.config``) replacing its own, validated as on construction.

        Raises:
            ConfigError: a value does not validate (naming key and field, never the value).
        """
        from pydantic import ValidationError

        from host._resource_errors import config_error_from_validation

        given = {name: getattr(self, name) for name in self.model_fields_set}
        given.update(values)
        problem = None
        try:
            return type(self)(**given)
        except ValidationError as exc:
            problem = config_error_from_validation(
                "(launch config)", type(self), exc, values=given
            )
        raise problem
