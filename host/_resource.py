"""Configurable resources: pydantic configuration plus a run lifecycle.

A resource's fields are its configuration: validated when it is constructed, frozen, unknown
fields rejected. Live state (clients, connections) lives in pydantic ``PrivateAttr`` attributes,
which are never part of the configuration, the JSON schema, ``repr``, or what is pickled to
another process. The lifecycle methods follow Dagster's Pythonic resources.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, ValidationError, create_model
from pydantic_core import PydanticUndefined

from host._errors import ConfigError, FrozenResourceError

if TYPE_CHECKING:
    from host._context import InitResourceContext

__all__ = ["MASK", "ConfigurableResource", "EnvVar"]

#: What a secret value is shown as, everywhere.
MASK = "**********"

#: Private attributes of the host's own that travel with the configuration: EnvVars still to be
#: read, and which fields hold values read from the environment (so they stay masked).
_HOST_PRIVATE = ("_host_env", "_host_env_fields")


class EnvVar(str):
    """A configuration value read from an environment variable when the resource comes up.

    The variable is read in the process that brings the resource up (a worker, for the process
    executors), never when the resource is constructed. Its value is treated as a secret: it is
    masked in ``repr``, events, logs and error messages. ``EnvVar`` works for a field of any type;
    the value is validated against the field when it is read.

    Example::

        CredentialsResource(username="ann", password=EnvVar("ACME_PASSWORD"))
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        """The name of the environment variable."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"EnvVar({self.name!r})"

    def get_value(self, default: str | None = None) -> str | None:
        """Return the variable's current value in this process, or ``default``."""
        return os.environ.get(self.name, default)


@functools.cache
def _deferred_model(cls: type[BaseModel], names: frozenset[str]) -> type[BaseModel]:
    """A subclass of ``cls`` where the ``names`` fields accept anything, to validate the rest."""
    overrides: dict[str, Any] = {name: (Any, None) for name in names}
    return create_model(cls.__name__, __base__=cls, **overrides)


class ConfigurableResource(BaseModel):
    """Base class for resources: configuration as pydantic fields, state in ``PrivateAttr``.

    Lifecycle, all optional, each called at most once per run per process:

    * :meth:`setup_for_execution` brings the resource up before the first asset that needs it;
    * :meth:`teardown_after_execution` tears it down when the run ends in that process;
    * :meth:`yield_for_execution` is the context manager around both; overriding it replaces
      the default (which calls setup, yields the resource, and calls teardown in a ``finally``).

    Any of the three may be ``async`` (``yield_for_execution`` then as an async context manager).
    A field whose value is another ``ConfigurableResource`` is a dependency: it is brought up
    first, and one dependency object shared by several resources is brought up once.

    Two class settings (not configuration fields) bound the lifecycle, in seconds; a run can
    replace them per resource key (``run_assets(resource_timeouts=...)``, or ``setup_timeout``
    and ``teardown_timeout`` in a run config's ``[resources.KEY]``)::

        class Warehouse(ConfigurableResource):
            host_setup_timeout = 30.0     # coming up: entering yield_for_execution
            host_teardown_timeout = 10.0  # going down: leaving it
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    #: Seconds the resource may take to come up in a run (``None``: no limit).
    host_setup_timeout: ClassVar[float | None] = None
    #: Seconds the resource may take to go down at the end of a run (``None``: no limit).
    host_teardown_timeout: ClassVar[float | None] = None

    #: Fields whose value was read from an environment variable (masked like secrets).
    _host_env_fields: frozenset[str] = PrivateAttr(default=frozenset())
    #: EnvVar values waiting to be read, by field name (set only on unresolved resources).
    _host_env: dict[str, EnvVar] = PrivateAttr(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        env = {name: value for name, value in data.items() if isinstance(value, EnvVar)}
        if not env:
            super().__init__(**data)
            return
        # Validate every other field now; the EnvVar fields are validated when they are read.
        checked = _deferred_model(type(self), frozenset(env)).model_validate(
            {name: value for name, value in data.items() if name not in env}
        )
        values = {name: getattr(checked, name) for name in type(self).model_fields}
        values.update(env)
        object.__setattr__(self, "__dict__", values)
        object.__setattr__(self, "__pydantic_fields_set__", set(data))
        object.__setattr__(self, "__pydantic_extra__", None)
        object.__setattr__(self, "__pydantic_private__", None)
        _reset_private(self)
        self.__pydantic_private__["_host_env"] = env  # type: ignore[index]

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            raise FrozenResourceError(
                f"{type(self).__name__}.{name} is configuration and resources are frozen. "
                f"Keep state that changes during a run in a private attribute: declare "
                f"`_{name}: ... = PrivateAttr()` and assign `self._{name}` instead."
            )
        super().__setattr__(name, value)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        masked = self._host_env_fields
        for name, value in super().__repr_args__():
            if name in masked or isinstance(value, SecretStr):
                yield name, MASK
            else:
                yield name, value

    def __getstate__(self) -> dict[Any, Any]:
        # Only the configuration crosses a process boundary; private state stays behind.
        state = super().__getstate__()
        private = self.__pydantic_private__ or {}
        kept = {name: private[name] for name in _HOST_PRIVATE if private.get(name)}
        state["__pydantic_private__"] = kept or None
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        kept = state.get("__pydantic_private__") or {}
        super().__setstate__({**state, "__pydantic_private__": None})
        _reset_private(self)
        self.__pydantic_private__.update(kept)  # type: ignore[union-attr]

    # -- lifecycle -------------------------------------------------------------------------

    def setup_for_execution(self, context: InitResourceContext) -> Any:
        """Bring the resource up for a run; called once per run per process. Default: nothing.

        May be ``async``. State set here goes in ``PrivateAttr`` attributes.
        """

    def teardown_after_execution(self, context: InitResourceContext) -> Any:
        """Tear the resource down when the run ends in this process. Default: nothing.

        Called only if :meth:`setup_for_execution` succeeded. May be ``async``.
        """

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[Any]:
        """Hold the resource up for the run: setup, yield the resource, teardown in ``finally``.

        Override it (as a ``@contextmanager`` generator, or an ``@asynccontextmanager`` async
        generator) to hold something open for the whole run; the yielded value is what assets
        receive, normally ``self``. The default is never called by the host directly: the host's
        built-in plugin runs setup and teardown through their hooks instead, so plugins see them.
        """
        self.setup_for_execution(context)
        try:
            yield self
        finally:
            self.teardown_after_execution(context)

    # -- introspection used by the host -----------------------------------------------------

    @classmethod
    def overrides_yield(cls) -> bool:
        """Whether the class replaces the default :meth:`yield_for_execution`."""
        return cls.yield_for_execution is not ConfigurableResource.yield_for_execution

    def dependencies(self) -> dict[str, ConfigurableResource]:
        """The resources this one depends on, by field name (fields holding a resource)."""
        return {
            name: value
            for name, value in self.__dict__.items()
            if isinstance(value, ConfigurableResource)
        }

    def masked_config(self) -> dict[str, Any]:
        """The configuration with secrets masked: ``SecretStr`` fields and EnvVar values."""
        env = self.__pydantic_private__.get("_host_env", {}) if self.__pydantic_private__ else {}
        masked: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if name in env:
                masked[name] = f"<env {env[name].name}>"
            elif name in self._host_env_fields or isinstance(value, SecretStr):
                masked[name] = MASK
            elif isinstance(value, ConfigurableResource):
                masked[name] = value.masked_config()
            else:
                masked[name] = value
        return masked

    def env_vars(self) -> dict[str, EnvVar]:
        """EnvVar values still to be read, by field name."""
        private = self.__pydantic_private__ or {}
        return dict(private.get("_host_env", {}))

    def instantiate(
        self,
        key: str,
        dependencies: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
    ) -> ConfigurableResource:
        """A fresh copy for one run: private state at defaults, EnvVars read, deps replaced.

        Args:
            key: the resource key, for error messages.
            dependencies: field name -> the dependency object that is already up.
            environ: where EnvVars are read from (default: ``os.environ`` of this process).

        Raises:
            ConfigError: an environment variable is missing or its value does not validate;
                the message names the key, field and variable, never the value.
        """
        env = self.env_vars()
        if not env:
            fresh = self.model_copy(update=dict(dependencies))
            object.__setattr__(fresh, "__pydantic_private__", None)
            _reset_private(fresh)
            return fresh
        environ = os.environ if environ is None else environ
        values = {name: value for name, value in self.__dict__.items() if name not in env}
        values.update(dependencies)
        for name, var in env.items():
            if var.name not in environ:
                raise ConfigError(
                    f"resource {key!r} ({type(self).__name__}): field {name!r} reads environment "
                    f"variable {var.name!r}, which is not set in process {os.getpid()}. "
                    f"Set {var.name} where the resource comes up.",
                    resource_key=key,
                    field=name,
                )
            values[name] = environ[var.name]
        try:
            fresh = type(self).model_validate(values)
        except ValidationError as exc:
            raise config_error_from_validation(key, type(self), exc, secret_fields=env) from None
        object.__setattr__(fresh, "__pydantic_private__", None)
        _reset_private(fresh)
        fresh.__pydantic_private__["_host_env_fields"] = frozenset(env)  # type: ignore[index]
        return fresh


def _reset_private(obj: BaseModel) -> None:
    """Set every private attribute of ``obj`` to its declared default (fresh run state)."""
    private: dict[str, Any] = {}
    for name, attr in type(obj).__private_attributes__.items():
        if attr.default_factory is not None:
            private[name] = attr.default_factory()  # type: ignore[call-arg]
        elif attr.default is not PydanticUndefined:
            private[name] = copy.deepcopy(attr.default)
    object.__setattr__(obj, "__pydantic_private__", private)


def config_error_from_validation(
    key: str,
    cls: type[BaseModel],
    exc: ValidationError,
    *,
    secret_fields: Mapping[str, EnvVar] | None = None,
) -> ConfigError:
    """Turn a pydantic ValidationError into a ConfigError that shows no input values."""
    secret_fields = secret_fields or {}
    lines = []
    first_field: str | None = None
    for error in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in error["loc"]) or "(model)"
        first_field = first_field or loc
        source = ""
        if error["loc"] and error["loc"][0] in secret_fields:
            source = f" (read from environment variable {secret_fields[str(error['loc'][0])].name})"
        lines.append(f"  {loc}{source}: {error['msg']}")
    return ConfigError(
        f"resource {key!r} ({cls.__name__}) has invalid configuration:\n" + "\n".join(lines),
        resource_key=key,
        field=first_field,
    )
