"""Configurable resources: pydantic configuration plus a run lifecycle.

A resource's fields are its configuration: validated when it is constructed, frozen, unknown
fields rejected. Live state (clients, connections) lives in pydantic ``PrivateAttr`` attributes,
which are never part of the configuration, the JSON schema, ``repr``, or what is pickled to
another process. The lifecycle methods follow Dagster's Pythonic resources.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SecretBytes,
    SecretStr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    create_model,
    model_serializer,
)
from pydantic_core import PydanticUndefined

from host._errors import ConfigError, FrozenResourceError, location_text, validation_problems

if TYPE_CHECKING:
    from typing_extensions import Self

    from host._context import InitResourceContext

__all__ = [
    "KEEP",
    "MASK",
    "ConfigurableResource",
    "EnvVar",
    "env_references",
    "location_text",
    "masked_value",
    "replace_values",
    "walk_values",
]

#: What a secret value is shown as, everywhere.
MASK = "**********"

#: Private attributes of the host's own that travel with the configuration: EnvVars still to be
#: read, which fields hold values read from the environment, and the values read (so that they
#: stay masked).
_HOST_PRIVATE = ("_host_env", "_host_env_fields", "_host_env_read")


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


# -- walking configuration values --------------------------------------------------------------

#: A location inside a field's value: the field name, then keys and indexes (pydantic's ``loc``).
Location = tuple[str | int, ...]


def _children(value: Any) -> list[tuple[str | int, Any]] | None:
    """The parts of a container value, by key or index; ``None`` for a leaf.

    Containers are mappings, lists, tuples, sets, pydantic models (other than resources: a
    resource held in a field is a dependency, with configuration of its own) and dataclass
    instances. Strings and bytes are leaves.
    """
    parts: list[tuple[str | int, Any]] | None = None
    if isinstance(value, str | bytes | bytearray | SecretStr | SecretBytes):
        pass
    elif isinstance(value, Mapping):
        parts = [(key if isinstance(key, int) else str(key), item) for key, item in value.items()]
    elif isinstance(value, list | tuple | set | frozenset):
        parts = list(enumerate(value))
    elif isinstance(value, BaseModel):
        if not isinstance(value, ConfigurableResource):
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


def _show_env(item: Any, location: Location) -> Any:
    return f"<env {item.name}>" if isinstance(item, EnvVar) else KEEP


def _show_masked(item: Any, location: Location) -> Any:
    if isinstance(item, EnvVar):
        return f"<env {item.name}>"
    if isinstance(item, SecretStr | SecretBytes):
        return MASK
    return KEEP


def _env_as_json(item: Any, location: Location) -> Any:
    return {"env": item.name} if isinstance(item, EnvVar) else KEEP


def masked_value(value: Any) -> Any:
    """``value`` as configuration may be shown: ``SecretStr``/``SecretBytes`` anywhere inside
    it are the mask, and each ``EnvVar`` is ``"<env NAME>"``."""
    return replace_values(value, _show_masked)


def _empty_env_name(owner: str, location: Location, key: str | None = None) -> ConfigError:
    where = location_text(location)
    return ConfigError(
        f"{owner}: field {where!r} reads an environment variable with an empty name "
        f"(EnvVar(''), or {{ env = \"\" }} in a run config); give the variable's name, "
        f"e.g. EnvVar(\"API_TOKEN\") or {{ env = \"API_TOKEN\" }}.",
        resource_key=key,
        field=where,
    )


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
    #: The values read from the environment for this copy (secrets, masked in reports).
    _host_env_read: tuple[str, ...] = PrivateAttr(default=())
    #: Field name -> its value with the EnvVars still to be read in it (an EnvVar itself, or a
    #: list, dict, model... holding some), set only on unresolved resources.
    _host_env: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        env = {name: value for name, value in data.items() if env_references(value)}
        if not env:
            super().__init__(**data)
            return
        for name, value in env.items():
            for location, var in env_references(value, (name,)):
                if not var.name:
                    raise _empty_env_name(type(self).__name__, location)
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
                    replace_values(template, _env_as_json) if info.mode_is_json() else template
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
                masked[name] = replace_values(env[name], _show_env)
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
            self._read_environment(key, environ, advice or "before the run", self.dependencies())

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
            _reset_private(fresh)
            return fresh
        return self._read_environment(key, environ, None, dependencies)

    def _read_environment(
        self,
        key: str,
        environ: Mapping[str, str] | None,
        advice: str | None,
        dependencies: Mapping[str, Any],
    ) -> ConfigurableResource:
        private = self.__pydantic_private__ or {}
        env: dict[str, Any] = private.get("_host_env", {})
        environ = os.environ if environ is None else environ
        owner = f"resource {key!r} ({type(self).__name__})"
        values = {name: value for name, value in self.__dict__.items() if name not in env}
        values.update(dependencies)
        read: list[str] = []
        sources: dict[str, EnvVar] = {}

        def read_one(item: Any, location: Location) -> Any:
            if not isinstance(item, EnvVar):
                return KEEP
            if not item.name:
                raise _empty_env_name(owner, location, key)
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
            return environ[item.name]

        for name, template in env.items():
            values[name] = replace_values(template, read_one, (name,))
        problem: ConfigError | None = None
        try:
            fresh = type(self).model_validate(values)
        except ValidationError as exc:
            # Built outside this block so that the ValidationError (whose text repeats the
            # values read) is neither chained nor the context of what is raised.
            problem = config_error_from_validation(
                key, type(self), exc, secret_fields=sources, secrets=read
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
        _reset_private(fresh)
        fresh.__pydantic_private__["_host_env_fields"] = frozenset(env)  # type: ignore[index]
        fresh.__pydantic_private__["_host_env_read"] = tuple(read)  # type: ignore[index]
        return fresh

    # -- configured at launch (host._partial) ------------------------------------------------

    @classmethod
    def configure_at_launch(cls, **values: Any) -> Self:
        """This resource, to be configured when a run is launched (Dagster's name).

        Bind the result to a key (and use it as a dependency as usual); the run gives the rest
        of its configuration: ``run_assets(..., run_config={"resources": {KEY: {"config":
        {...}}}})``. ``values`` are configuration given now (the launch config overrides
        them). A required field given neither now nor at launch is a :class:`host.ConfigError`
        before anything comes up.
        """
        from host._partial import make_partial

        return make_partial(cls, values)

    @classmethod
    def partial(cls, **values: Any) -> Self:
        """This resource with part of its configuration; the rest is given at launch.

        The same as :meth:`configure_at_launch` with ``values`` (Dagster's two names).
        """
        from host._partial import make_partial

        return make_partial(cls, values)


def _reset_private(obj: BaseModel) -> None:
    """Set every private attribute of ``obj`` to its declared default (fresh run state)."""
    private: dict[str, Any] = {}
    for name, attr in type(obj).__private_attributes__.items():
        if attr.default_factory is not None:
            private[name] = attr.default_factory()  # type: ignore[call-arg]
        elif attr.default is not PydanticUndefined:
            private[name] = copy.deepcopy(attr.default)
    object.__setattr__(obj, "__pydantic_private__", private)


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
