"""Configurable resources: pydantic configuration plus a run lifecycle.

A resource's fields are its configuration: validated when it is constructed, frozen, unknown
fields rejected. Live state (clients, connections) lives in pydantic ``PrivateAttr`` attributes,
which are never part of the configuration, the JSON schema, ``repr``, or what is pickled to
another process. The lifecycle methods follow Dagster's Pythonic resources.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, ForwardRef, Literal, TypeVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SecretStr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    SkipValidation,
    create_model,
    model_serializer,
)
from pydantic_core import PydanticUndefined

from host._envvar import EnvVar
from host._errors import DefinitionError, FrozenResourceError, location_text
from host._resource_env import empty_env_name, read_environment, reset_private
from host._resource_init import ResourceContextMethods
from host._values import (
    MASK,
    OwnConfiguration,
    env_as_json,
    env_references,
    masked_value,
    replace_values,
    show_env,
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from host._context import InitResourceContext

__all__ = ["ConfigurableResource", "ResourceDependency"]

T = TypeVar("T")


class _DependencyField:
    """Marks a field typed ``ResourceDependency[T]``."""

    def __repr__(self) -> str:
        return "ResourceDependency"


_DEPENDENCY = _DependencyField()

if TYPE_CHECKING:
    #: See the runtime class below.
    ResourceDependency = Annotated[T, SkipValidation, _DEPENDENCY]
else:

    class ResourceDependency:
        """A resource field that may hold any resource: a ``ConfigurableResource``, a function
        resource (``@resource``), a factory, or a plain object (Dagster's
        ``ResourceDependency[T]``). It is brought up before the resource holding it, which
        receives what assets would (the object a function resource or factory gives, a plain
        object as it is). Its value is not validated against ``T``, and ``T`` may be a name
        not defined yet (``ResourceDependency["Inner"]``, with ``Inner`` defined after, in a
        function too): the field is then typed ``Any``."""

        def __class_getitem__(cls, item: Any) -> Any:
            if isinstance(item, str | ForwardRef):
                item = Any
            return Annotated[item, SkipValidation, _DEPENDENCY]


@functools.cache
def _dependency_fields(cls: type[BaseModel]) -> frozenset[str]:
    """The fields of ``cls`` typed ``ResourceDependency[...]``."""
    return frozenset(
        name for name, info in cls.model_fields.items() if _DEPENDENCY in info.metadata
    )

#: Private attributes of the host's own that travel with the configuration: EnvVars still to be
#: read, which fields hold values read from the environment, and the values read (so that they
#: stay masked).
_HOST_PRIVATE = ("_host_env", "_host_env_fields", "_host_env_read")


@functools.cache
def _env_defaults(cls: type[BaseModel]) -> dict[str, Any]:
    """Fields of ``cls`` whose default holds an ``EnvVar`` (Dagster's ``url: str =
    EnvVar("URL")``): read where the resource comes up, like a value given."""
    return {
        name: info.default
        for name, info in cls.model_fields.items()
        if info.default is not PydanticUndefined and env_references(info.default)
    }


@functools.cache
def _deferred_model(cls: type[BaseModel], names: frozenset[str]) -> type[BaseModel]:
    """A subclass of ``cls`` where the ``names`` fields accept anything, to validate the rest."""
    overrides: dict[str, Any] = {name: (Any, None) for name in names}
    return create_model(cls.__name__, __base__=cls, **overrides)


class ConfigurableResource(BaseModel, OwnConfiguration, ResourceContextMethods):
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

    def __class_getitem__(cls, params: Any) -> Any:
        """``ConfigurableResource[T]``, as Dagster writes a resource that is its own value:
        ``T`` says what it is for type readers; the class is ``ConfigurableResource`` itself.
        A generic subclass (``ConfigurableResourceFactory[T]``) is parametrized as pydantic
        does."""
        if cls is ConfigurableResource:
            return cls
        return super().__class_getitem__(params)

    # populate_by_name: a field with an alias is given by either (the run config and the
    # host's own copies give field names).
    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, populate_by_name=True
    )

    #: Seconds the resource may take to come up in a run (``None``: no limit).
    host_setup_timeout: ClassVar[float | None] = None
    #: Seconds the resource may take to go down at the end of a run (``None``: no limit).
    host_teardown_timeout: ClassVar[float | None] = None
    #: ``"run"`` (the default): up at most once per run per process, torn down when the run
    #: ends there. ``"session"``: in a :class:`host.Session`, up once per session per
    #: process and reused by its later runs there, torn down when the session closes (outside
    #: a session, or on an executor without sessions, it is run-scoped). A run config can set
    #: it per key (``scope = "session"``).
    host_scope: ClassVar[Literal["run", "session"]] = "run"
    #: Seconds a session-scoped resource may stay up; past them it is torn down and brought up
    #: again before the next run that needs it reuses it (``None``: no limit).
    host_max_lifetime: ClassVar[float | None] = None

    #: Fields whose value was read from an environment variable (masked like secrets).
    _host_env_fields: frozenset[str] = PrivateAttr(default=frozenset())
    #: The values read from the environment for this copy (secrets, masked in reports).
    _host_env_read: tuple[str, ...] = PrivateAttr(default=())
    #: Field name -> its value with the EnvVars still to be read in it (an EnvVar itself, or a
    #: list, dict, model... holding some), set only on unresolved resources.
    _host_env: dict[str, Any] = PrivateAttr(default_factory=dict)

    #: The context this copy was brought up with (``get_resource_context``); never pickled.
    _host_context: Any = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        env = {name: value for name, value in data.items() if env_references(value)}
        defaults = _env_defaults(type(self))
        env.update((name, value) for name, value in defaults.items() if name not in data)
        if not env:
            super().__init__(**data)
            return
        for name, value in env.items():
            for location, var in env_references(value, (name,)):
                if not var.name:
                    raise empty_env_name(type(self).__name__, location)
        # Validate every other field now; the fields holding EnvVars are validated when they
        # are read (in the process that brings the resource up).
        checked = _deferred_model(type(self), frozenset(env)).model_validate(
            {name: value for name, value in data.items() if name not in env}
        )
        values = {name: getattr(checked, name) for name in type(self).model_fields}
        values.update(env)
        object.__setattr__(self, "__dict__", values)
        object.__setattr__(self, "__pydantic_fields_set__", set(data))
        object.__setattr__(self, "__pydantic_extra__", None)
        object.__setattr__(self, "__pydantic_private__", None)
        reset_private(self)
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

    @model_serializer(mode="wrap")
    def _host_serialize(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        """Fields still holding ``EnvVar`` values serialize as the run config writes them.

        ``{"env": "NAME"}`` in JSON mode (``model_dump_json``, ``model_dump(mode="json")``),
        the ``EnvVar`` itself in Python mode; the value of the variable is never read here. The
        other fields serialize as pydantic does.
        """
        env = self.__pydantic_private__.get("_host_env") if self.__pydantic_private__ else None
        if not env:
            return handler(self)
        rest = type(self).__new__(type(self))
        object.__setattr__(
            rest, "__dict__", {k: v for k, v in self.__dict__.items() if k not in env}
        )
        object.__setattr__(rest, "__pydantic_fields_set__", self.__pydantic_fields_set__ - set(env))
        object.__setattr__(rest, "__pydantic_extra__", None)
        object.__setattr__(rest, "__pydantic_private__", None)
        dumped = handler(rest)
        if not isinstance(dumped, dict):  # pragma: no cover - a subclass's own serializer
            return dumped
        include, exclude = info.include, info.exclude
        ordered: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            key = field.alias if info.by_alias and field.alias else name
            if name in env:
                if include is not None and name not in include:
                    continue
                if exclude is not None and name in exclude:
                    whole = cast(Any, exclude)[name] if isinstance(exclude, Mapping) else True
                    if whole is True:
                        continue
                template = env[name]
                ordered[key] = (
                    replace_values(template, env_as_json) if info.mode_is_json() else template
                )
            elif key in dumped:
                ordered[key] = dumped.pop(key)
        ordered.update(dumped)
        return ordered

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
        reset_private(self)
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

    @classmethod
    def overrides_teardown(cls) -> bool:
        """Whether the class replaces the default :meth:`teardown_after_execution`."""
        return cls.teardown_after_execution is not ConfigurableResource.teardown_after_execution

    @classmethod
    def creates_resource(cls) -> bool:
        """Whether assets receive what ``create_resource(context)`` makes, not the resource
        itself: a :class:`host.ConfigurableResourceFactory`, or any class that defines
        ``create_resource`` (Dagster lets a ``ConfigurableResource`` vend another object so)."""
        return callable(getattr(cls, "create_resource", None))

    def dependencies(self) -> dict[str, Any]:
        """The resources this one depends on, by field name: fields holding a resource, and
        fields typed ``ResourceDependency[...]`` (whatever they hold, ``None`` aside)."""
        marked = _dependency_fields(type(self))
        return {
            name: value
            for name, value in self.__dict__.items()
            if isinstance(value, ConfigurableResource) or (name in marked and value is not None)
        }

    def masked_config(self, dependencies: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The configuration as it may be shown: secrets masked, EnvVars by name.

        ``SecretStr``/``SecretBytes`` values anywhere in a field (nested models, mappings,
        sequences) are the mask; a field read from the environment is the mask; an ``EnvVar``
        still to be read is ``"<env NAME>"``; a dependency is its own masked configuration.

        Args:
            dependencies: field -> the masked configuration of the dependency in that field,
                where it is known already (the resource stack passes those it made when the
                dependencies came up, so a chain of resources costs one pass per resource).
        """
        known = dependencies or {}
        env = self.__pydantic_private__.get("_host_env", {}) if self.__pydantic_private__ else {}
        masked: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if name in env:
                masked[name] = replace_values(env[name], show_env)
            elif name in self._host_env_fields:
                masked[name] = MASK
            elif name in known:
                masked[name] = known[name]
            elif isinstance(value, ConfigurableResource):
                masked[name] = value.masked_config()
            else:
                masked[name] = masked_value(value)
        return masked

    def env_vars(self) -> dict[str, EnvVar]:
        """EnvVar values still to be read, by location (``"password"``, ``"items.0"``, ...).

        A field that is an ``EnvVar`` is listed by its name; one inside a field's value (a
        list, a dict, a nested model) by its location in the field, as pydantic names it.
        """
        private = self.__pydantic_private__ or {}
        found: dict[str, EnvVar] = {}
        for name, value in private.get("_host_env", {}).items():
            for location, var in env_references(value, (name,)):
                found[location_text(location)] = var
        return found

    def check_environment(
        self, key: str, environ: Mapping[str, str] | None = None, *, advice: str = ""
    ) -> None:
        """Read and validate every EnvVar of this resource (not its dependencies) now.

        Nothing is brought up and nothing is kept: this is what :meth:`instantiate` would
        raise, found before a run starts where the run shares this environment.

        Args:
            key: the resource key, for error messages.
            environ: where the variables are read (default: ``os.environ``).
            advice: where to set a missing variable (e.g. ``"before the run"``).

        Raises:
            ConfigError: a variable is missing, has an empty name, or its value does not
                validate; naming key, field and variable, never the value.
        """
        if self.env_vars():
            read_environment(
                self, key, environ, advice or "before the run", self.dependencies()
            )

    def instantiate(
        self,
        key: str,
        dependencies: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
    ) -> ConfigurableResource:
        """A fresh copy for one run: private state at defaults, EnvVars read, deps replaced.

        Every ``EnvVar`` is read, wherever it is in a field's value (a list, a dict, a nested
        model): the field is then validated with the values read, as if they had been given.

        Args:
            key: the resource key, for error messages.
            dependencies: field name -> the dependency object that is already up.
            environ: where EnvVars are read from (default: ``os.environ`` of this process).

        Raises:
            ConfigError: an environment variable is missing or its value does not validate;
                the message names the key, field and variable, never the value.
        """
        if not self.env_vars():
            fresh = self.model_copy(update=dict(dependencies))
            object.__setattr__(fresh, "__pydantic_private__", None)
            reset_private(fresh)
            return fresh
        return read_environment(self, key, environ, None, dependencies)

    # -- configured at launch (host._partial) ------------------------------------------------

    @classmethod
    def configure_at_launch(cls, **values: Any) -> Self:
        """This resource, to be configured when a run is launched (Dagster's name).

        Bind the result to a key (and use it as a dependency as usual); the run gives the rest
        of its configuration: ``run_assets(..., run_config={"resources": {KEY: {"config":
        {...}}}})``. ``values`` may give its resource dependencies now (``creds=...``), as in
        Dagster; configuration values given now are :meth:`partial`'s. A required field given
        neither now nor at launch is a :class:`host.ConfigError` before anything comes up.

        Raises:
            DefinitionError: ``values`` holds configuration (not a resource), pointing to
                :meth:`partial`, as Dagster does.
        """
        from host._partial import is_partial, make_partial

        plain = sorted(
            name
            for name, value in values.items()
            if not (isinstance(value, ConfigurableResource) or is_partial(value))
            and not hasattr(value, "host_with_launch_config")
        )
        if plain:
            given = ", ".join(f"{name}=..." for name in plain)
            raise DefinitionError(
                f"{cls.__name__}.configure_at_launch() takes resource dependencies only, and "
                f"was given configuration ({', '.join(map(repr, plain))}); to give part of the "
                f"configuration now and the rest at launch, use {cls.__name__}.partial({given})."
            )
        return make_partial(cls, values)

    @classmethod
    def partial(cls, **values: Any) -> Self:
        """This resource with part of its configuration; the rest is given at launch.

        ``values`` (configuration or resource dependencies) are given now; the launch config
        gives the rest and may override them.
        """
        from host._partial import make_partial

        return make_partial(cls, values)
