"""Function resources: Dagster's ``@resource`` and ``ResourceDefinition``.

A function resource is a function of an :class:`~host.InitResourceContext` that returns the
object assets receive, or a generator that yields it once: the code before the ``yield`` is its
setup, the code after it its teardown. It goes through the same hooks, events, timeouts and
teardown policy as a ``ConfigurableResource``: ``host_resource_setup`` runs the function up to
its ``yield`` (or to its return), ``host_resource_teardown`` runs the rest. Its configuration is
declared with ``config_schema`` (a mapping of field name to type, a type, or a pydantic model)
and given with :meth:`ResourceDefinition.configured` (or at launch time); an ``EnvVar`` in it is
read in the process that brings the resource up, as for a ``ConfigurableResource``.
"""

from __future__ import annotations

import dis
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any, ClassVar, cast, overload

from host._envvar import EnvVar
from host._errors import DefinitionError
from host._function_config import FunctionConfig, read_config
from host._values import KEEP, Location, env_references, masked_value, replace_values

__all__ = [
    "ResourceDefinition",
    "configured",
    "describe_function_resource",
    "plain_value",
    "resource",
    "resource_origin",
]

class _Unset:
    """No value (yet); one object in every process (it pickles by name)."""

    def __repr__(self) -> str:
        return "<unset>"

    def __reduce__(self) -> str:
        return "_UNSET"


_UNSET: Any = _Unset()


def plain_value(item: Any, location: Location) -> Any:
    """For :func:`~host._values.replace_values`: an ``Enum`` member as its value (what
    ``context.resource_config`` shows, as in Dagster)."""
    return item.value if isinstance(item, Enum) else KEEP


def _never_yields(fn: Callable[..., Any]) -> bool:
    """``fn`` is a generator function whose code has no reachable ``yield``."""
    code = getattr(fn, "__code__", None)
    if code is None or not (inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)):
        return False
    return not any(ins.opname == "YIELD_VALUE" for ins in dis.get_instructions(code))


def _takes_context(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return bool(positional) or any(p.kind is p.VAR_POSITIONAL for p in params)


def describe_function_resource(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a resource function, as errors name it."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class _Hardcoded:
    """The function of :meth:`ResourceDefinition.hardcoded_resource`: gives one value."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.__module__ = type(value).__module__
        self.__qualname__ = f"hardcoded_resource({type(value).__qualname__})"

    def __call__(self, context: Any) -> Any:
        return self.value


class ResourceDefinition:
    """A function resource: what ``@resource`` makes, or a value given by
    :meth:`hardcoded_resource`.

    Brought up at most once per run per process, like a ``ConfigurableResource``, and torn
    down in reverse order whatever happens; a generator's code after its ``yield`` is its
    teardown, run by the ``host_resource_teardown`` hook. Definitions are immutable:
    :meth:`configured` gives a new one.

    Args:
        resource_fn: ``fn(context)`` (or ``fn()``) returning the resource, or a generator (or
            async generator) yielding it once; ``async def`` works too. Define it at module
            level for the process executors (it is pickled by name).
        config_schema: the config it takes: a mapping of field name to type (or to ``(type,
            default)``), one type (then ``context.resource_config`` is that value), or a pydantic
            model; ``None`` takes any config as it is.
        description: what it is, for listings.
        required_resource_keys: keys of other resources of the run it uses, brought up first
            and given as ``context.resources.KEY``.
        version: Dagster's code version; kept, unused.

    Raises:
        DefinitionError: ``resource_fn`` is not callable, or is a generator function with no
            ``yield`` it can reach.
    """

    #: Seconds the resource may take to come up / go down in a run (as on
    #: ``ConfigurableResource``); a run replaces them per key with ``resource_timeouts``.
    host_setup_timeout: ClassVar[float | None] = None
    host_teardown_timeout: ClassVar[float | None] = None

    def __init__(
        self,
        resource_fn: Callable[..., Any],
        config_schema: Any = None,
        description: str | None = None,
        required_resource_keys: Iterable[str] | None = None,
        version: str | None = None,
    ) -> None:
        if not callable(resource_fn):
            raise DefinitionError(
                f"ResourceDefinition(resource_fn=...) needs a function of the init context; got "
                f"{type(resource_fn).__name__}. For a fixed value use "
                f"ResourceDefinition.hardcoded_resource(value)."
            )
        if _never_yields(resource_fn):
            raise DefinitionError(
                f"resource function {describe_function_resource(resource_fn)} is a generator "
                f"that never yields: a generator resource yields the resource once (setup "
                f"before the yield, teardown after it). Add the yield, or return the resource."
            )
        if isinstance(required_resource_keys, str):
            required_resource_keys = [required_resource_keys]
        self.resource_fn = resource_fn
        self.config_schema = config_schema
        self.description = description
        self.required_resource_keys: frozenset[str] = frozenset(required_resource_keys or ())
        self.version = version
        self._schema = FunctionConfig(getattr(resource_fn, "__name__", "config"), config_schema)
        self._config: Any = _UNSET  # as given: may hold EnvVars, still to be read
        self._checked: Any = _UNSET  # the same validated, its EnvVar parts as they are
        self._read: tuple[str, ...] = ()  # values read from the environment for this copy
        self._resolved: Any = _UNSET  # the validated config of this run's copy
        self._run: Any = None  # this run's copy: the generator, or the value
        self._value: Any = _UNSET

    # -- Dagster's constructors -------------------------------------------------------------

    @staticmethod
    def hardcoded_resource(value: Any, description: str | None = None) -> ResourceDefinition:
        """A resource that gives ``value`` as it is (no setup, no teardown)."""
        return ResourceDefinition(_Hardcoded(value), description=description)

    @staticmethod
    def none_resource(description: str | None = None) -> ResourceDefinition:
        """A resource that gives ``None``."""
        return ResourceDefinition.hardcoded_resource(None, description)

    @staticmethod
    def mock_resource(description: str | None = None) -> ResourceDefinition:
        """A resource that gives a ``unittest.mock.MagicMock`` (a mock does not pickle: for
        tests on ``in_process``)."""
        from unittest import mock

        return ResourceDefinition.hardcoded_resource(mock.MagicMock(), description)

    @staticmethod
    def string_resource(description: str | None = None) -> ResourceDefinition:
        """A resource whose configuration is one string, given to assets as it is."""
        return ResourceDefinition(_config_itself, config_schema=str, description=description)

    @property
    def is_hardcoded(self) -> bool:
        """Whether it gives a fixed value (:meth:`hardcoded_resource`)."""
        return isinstance(self.resource_fn, _Hardcoded)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the resource function directly (a unit test with
        ``build_init_resource_context``); no lifecycle."""
        return self.resource_fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"ResourceDefinition({describe_function_resource(self.resource_fn)})"

    # -- configuration ----------------------------------------------------------------------

    def configured(self, config: Any, description: str | None = None) -> ResourceDefinition:
        """A copy of this definition with its config given.

        Validated now against ``config_schema``, except the parts holding an ``EnvVar``
        (read and validated where the resource comes up).

        Raises:
            ConfigError: the config does not validate (naming the field, never the value).
        """
        fresh = self._copy()
        fresh._config = config
        if description is not None:
            fresh.description = description
        # Kept validated (its EnvVar parts aside): a value given for a SecretStr field is a
        # secret wherever the definition goes, and shown masked.
        fresh._checked = fresh._schema.validate(self._owner(None), "", config, deferred=True)
        return fresh

    def host_with_launch_config(self, values: Any) -> ResourceDefinition:
        """This definition with the config a run gives at launch (``run_config``'s
        ``resources.KEY.config``: a table, or one value for a one-type ``config_schema``); see
        :meth:`configured`."""
        return self.configured(dict(values) if isinstance(values, Mapping) else values)

    @property
    def config(self) -> Any:
        """The config given (``None`` if none was); ``EnvVar`` values not read."""
        return None if self._config is _UNSET else self._config

    def _owner(self, key: str | None) -> str:
        name = describe_function_resource(self.resource_fn)
        return f"resource {key!r} ({name})" if key else f"resource {name}"

    def check_config(self, key: str) -> None:
        """The config is complete and valid (``EnvVar`` parts aside), before anything comes up.

        Raises:
            ConfigError: naming the key, field and problem; nothing was brought up.
        """
        config = self._schema.complete(None if self._config is _UNSET else self._config)
        self._schema.validate(self._owner(key), key, config, deferred=True)

    def env_vars(self) -> dict[Location, EnvVar]:
        """The ``EnvVar`` values still to be read in the config, by location."""
        config = None if self._config is _UNSET else self._config
        return dict(env_references(config))

    def instantiate(
        self, key: str, environ: Mapping[str, str] | None = None
    ) -> ResourceDefinition:
        """A fresh copy for one run, its config's ``EnvVar`` values read and validated.

        Raises:
            ConfigError: a variable is not set or the config does not validate; naming key,
                field and variable, never the value.
        """
        owner = self._owner(key)
        config = self._schema.complete(None if self._config is _UNSET else self._config)
        resolved, read = read_config(owner, key, config, environ)
        fresh = self._copy()
        fresh._read = tuple(read)
        fresh._resolved = self._schema.validate(owner, key, resolved, secrets=read)
        fresh._run = None
        fresh._value = _UNSET
        return fresh

    @property
    def resource_config(self) -> Any:
        """What ``context.resource_config`` gives in a run: the validated config, ``EnvVar``
        values read, enum members as their values (as Dagster shows them)."""
        resolved = None if self._resolved is _UNSET else self._resolved
        return replace_values(resolved, plain_value)

    def masked_config(self) -> Any:
        """The config as it may be shown: secrets (values of ``SecretStr`` fields too) masked,
        ``EnvVar`` values by name."""
        config = None if self._config is _UNSET else self._config
        return masked_value(config if self._checked is _UNSET else self._checked)

    def secret_values(self) -> set[str]:
        """The secrets of its config: values of ``SecretStr`` fields (as given and as
        validated), the current values of its ``EnvVar`` values, and those read for this
        copy."""
        from host._secrets import secrets_in

        config = None if self._config is _UNSET else self._config
        return {
            *self._read,
            *secrets_in(config),
            *secrets_in(self._checked),
            *secrets_in(self._resolved),
        }

    # -- the lifecycle, run by the built-in plugin ------------------------------------------

    @property
    def value(self) -> Any:
        """What assets receive: what the function returned or yielded in this run's copy."""
        if self._value is _UNSET:
            raise RuntimeError(f"{self!r} is not up in this process")
        return self._value

    def start(self, context: Any) -> Any:
        """Call the function; give its return value, a generator, an async generator or an
        awaitable, kept as this copy's run (:meth:`finish_start`)."""
        fn = self.resource_fn
        result = fn(context) if _takes_context(fn) else fn()
        self._run = result
        return result

    @property
    def started(self) -> Any:
        """What :meth:`start` gave in this run's copy (a generator, a value), else ``None``."""
        return self._run

    def set_value(self, value: Any) -> None:
        """Record what the function gave (what assets receive)."""
        self._value = value

    # -- copying and pickling (by name for a module-level @resource) ------------------------

    def _copy(self) -> ResourceDefinition:
        fresh = object.__new__(type(self))
        fresh.__dict__.update(self.__dict__)
        return fresh

    def __copy__(self) -> ResourceDefinition:
        return self._copy()

    def __reduce__(self) -> tuple[Any, ...]:
        ref = _module_reference(self.resource_fn)
        state = {k: v for k, v in self.__dict__.items() if k not in ("_run", "_value", "_schema")}
        if ref is not None:
            state.pop("resource_fn")
            return (_by_name, ref, state)
        return (_rebuild, (self.resource_fn, self.config_schema), state)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._run = None
        self._value = _UNSET


def resource_origin(resource: Any) -> type:
    """What errors name a resource by (its class and distribution): its class, or for a
    function resource its function (which has a module and a qualified name like a class)."""
    if isinstance(resource, ResourceDefinition):
        return cast(type, resource.resource_fn)
    return type(resource)


def _module_reference(fn: Any) -> tuple[str, str] | None:
    """(module, qualname) where a module-level ``@resource`` definition of ``fn`` lives."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if isinstance(target, ResourceDefinition) and target.resource_fn is fn:
        return module, qualname
    return None


def _by_name(module: str, qualname: str) -> ResourceDefinition:
    import importlib

    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target._copy()  # type: ignore[no-any-return]


def _rebuild(fn: Callable[..., Any], config_schema: Any) -> ResourceDefinition:
    return ResourceDefinition(fn, config_schema)


@overload
def resource(fn: Callable[..., Any], /) -> ResourceDefinition: ...


@overload
def resource(
    *,
    config_schema: Any = None,
    description: str | None = None,
    required_resource_keys: Iterable[str] | None = None,
    version: str | None = None,
) -> Callable[[Callable[..., Any]], ResourceDefinition]: ...


def resource(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    config_schema: Any = None,
    description: str | None = None,
    required_resource_keys: Iterable[str] | None = None,
    version: str | None = None,
) -> ResourceDefinition | Callable[[Callable[..., Any]], ResourceDefinition]:
    """Make a function resource (Dagster's ``@resource``), bare or with arguments.

    Example::

        @resource(config_schema={"path": str}, required_resource_keys={"creds"})
        def db(context):
            conn = connect(context.resource_config["path"], context.resources.creds)
            yield conn          # what assets receive; setup above, teardown below
            conn.close()

        run_assets([...], resources={"db": db.configured({"path": "x.db"}), "creds": ...})

    See :class:`ResourceDefinition` for the arguments.
    """

    def wrap(f: Callable[..., Any]) -> ResourceDefinition:
        return ResourceDefinition(
            f,
            config_schema=config_schema,
            description=description or inspect.getdoc(f),
            required_resource_keys=required_resource_keys,
            version=version,
        )

    return wrap(fn) if fn is not None else wrap


def _config_itself(context: Any) -> Any:
    """:meth:`ResourceDefinition.string_resource`'s function: its configuration."""
    return context.resource_config


def configured(
    target: Any, config_schema: Any = None
) -> Callable[[Callable[[Any], Any]], Any]:
    """Dagster's ``@configured(target)``: the decorated function gives ``target``'s config,
    and the decorator makes ``target`` configured with it.

    Example::

        @configured(MyResource)
        def my_resource(_):
            return {"resource_param": "foo"}     # my_resource is MyResource(resource_param="foo")

    ``target`` is a ``ConfigurableResource`` class (the result is an instance of it) or a
    ``ResourceDefinition`` (the result is ``target.configured(...)``). The function is called
    once, when it is decorated, with an empty config: host validates configuration before a
    run, so a config mapped at launch (Dagster's ``config_schema=`` argument here) is not
    taken; give launch values with ``partial()`` / ``configure_at_launch()`` and
    ``run_config`` instead.

    Raises:
        DefinitionError: ``config_schema`` is given, or ``target`` is neither.
        ConfigError: the config the function gives does not validate.
    """
    from host._resource import ConfigurableResource

    if config_schema is not None:
        raise DefinitionError(
            f"configured({_name(target)}, config_schema=...): host does not map config given "
            f"at launch; give the launch values with {_name(target)}.partial(...) (or "
            f"configure_at_launch()) and run_config={{'resources': {{KEY: {{'config': "
            f"{{...}}}}}}}}, or drop config_schema and return the whole config."
        )
    if not (
        isinstance(target, ResourceDefinition)
        or (isinstance(target, type) and issubclass(target, ConfigurableResource))
    ):
        raise DefinitionError(
            f"configured() takes a ConfigurableResource class or a @resource definition, not "
            f"{_name(target)}"
        )

    def decorate(fn: Callable[[Any], Any]) -> Any:
        config = fn({})
        if isinstance(target, ResourceDefinition):
            return target.configured(config)
        from pydantic import ValidationError

        from host._resource_errors import config_error_from_validation

        problem = None
        try:
            return target(**config)
        except ValidationError as exc:
            problem = config_error_from_validation(
                f"(configured {_name(target)})", target, exc, values=config
            )
        raise problem

    return decorate


def _name(target: Any) -> str:
    return str(getattr(target, "__qualname__", None) or type(target).__qualname__)
