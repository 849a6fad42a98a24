"""``@asset``: a plain function whose parameters name the resources and upstream assets it needs."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Annotated, Any, TypeVar, overload

from host._errors import DefinitionError

__all__ = ["AssetDefinition", "ResourceParam", "asset", "with_resources"]

T = TypeVar("T")


class _ResourceParamMarker:
    """The mark :data:`ResourceParam` puts on an annotation."""

    def __repr__(self) -> str:
        return "resource_param"


_RESOURCE_PARAM = _ResourceParamMarker()

#: ``ResourceParam[T]``: an asset parameter that receives the resource bound to the key named
#: like the parameter, an object of type ``T`` that need not be a ``ConfigurableResource``
#: (Dagster's name). A resource bound to that key that is given to assets as it is, but is not
#: a ``T``, is a :class:`host.DefinitionError` before anything comes up.
ResourceParam = Annotated[T, _RESOURCE_PARAM]


class AssetDefinition:
    """A function decorated with ``@asset``.

    Calling the definition calls the function, so assets stay testable as plain functions.

    Attributes:
        key: the asset's key (the function's name unless ``@asset(name=...)`` says otherwise).
        fn: the decorated function.
        is_async: whether ``fn`` is a coroutine function.
        parameters: the function's parameters, in order.
        parameter_names: their names, in order.
    """

    __slots__ = (
        "__dict__",
        "fn",
        "is_async",
        "key",
        "parameter_names",
        "parameters",
        "plans",
        "required_resource_keys",
        "resource_defs",
    )

    @functools.cached_property
    def type_hints(self) -> dict[str, Any]:
        """The function's resolved annotations (raw ones where a forward reference fails).

        Resolved on first use, once per definition, not once per run.
        """
        try:
            return typing.get_type_hints(self.fn)
        except Exception:  # unresolvable forward references: fall back to raw annotations
            return {p.name: p.annotation for p in self.parameters}

    @functools.cached_property
    def resource_params(self) -> dict[str, Any]:
        """Parameter name -> ``T``, for each parameter annotated ``ResourceParam[T]``."""
        try:
            hints = typing.get_type_hints(self.fn, include_extras=True)
        except Exception:  # unresolvable forward references: fall back to raw annotations
            hints = {p.name: p.annotation for p in self.parameters}
        found: dict[str, Any] = {}
        for name, hint in hints.items():
            if typing.get_origin(hint) is Annotated and any(
                meta is _RESOURCE_PARAM for meta in hint.__metadata__
            ):
                found[name] = typing.get_args(hint)[0]
        return found

    def __init__(
        self,
        fn: Callable[..., Any],
        key: str | None = None,
        *,
        required_resource_keys: Iterable[str] = (),
        resource_defs: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise DefinitionError(f"@asset decorates a function, got {fn!r}")
        self.fn = fn
        self.key: str = key or str(getattr(fn, "__name__", ""))
        if not self.key.isidentifier():
            raise DefinitionError(
                f"asset name {self.key!r} is not a valid Python identifier; downstream assets "
                f"refer to it by parameter name. Pass @asset(name=...) with an identifier."
            )
        if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            kind = "an async generator" if inspect.isasyncgenfunction(fn) else "a generator"
            raise DefinitionError(
                f"asset {self.key!r} is {kind} function (it uses `yield`); an asset computes "
                f"one output: `return` it (from a `def`, or an `async def` the run awaits)."
            )
        self.is_async = inspect.iscoroutinefunction(fn)
        self.parameters = tuple(inspect.signature(fn).parameters.values())
        self.parameter_names = tuple(param.name for param in self.parameters)
        if isinstance(required_resource_keys, str):
            raise DefinitionError(
                f"asset {self.key!r}: required_resource_keys={required_resource_keys!r} is a "
                f"string; give a set of resource keys, e.g. {{{required_resource_keys!r}}}."
            )
        #: Resource keys the asset needs without a parameter (``context.resources.KEY``).
        self.required_resource_keys: frozenset[str] = frozenset(required_resource_keys)
        #: Resources bound by the asset itself (``@asset(resource_defs=...)``).
        self.resource_defs: dict[str, Any] = dict(resource_defs or {})
        for name in (*self.required_resource_keys, *self.resource_defs):
            if not isinstance(name, str) or not name.isidentifier():
                raise DefinitionError(
                    f"asset {self.key!r}: resource key {name!r} (in required_resource_keys or "
                    f"resource_defs) is not a valid Python identifier."
                )
        #: Planning's memo: how this asset's parameters resolved, by what they depend on (the
        #: run's resource types and which parameter names are assets). See ``host._graph``.
        self.plans: dict[Hashable, Any] = {}
        for param in self.parameters:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise DefinitionError(
                    f"asset {self.key!r}: parameter {param.name!r} is *args/**kwargs; assets "
                    f"name each input as a parameter."
                )
            if param.kind is param.POSITIONAL_ONLY:
                raise DefinitionError(
                    f"asset {self.key!r}: parameter {param.name!r} is positional-only; inputs "
                    f"are passed by name, remove the '/'."
                )
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the asset directly (a unit test), as Dagster's direct invocation does.

        A plain call when nothing needs bringing up. With a context from
        :func:`host.build_asset_context`, or a ``ConfigurableResource`` given for a resource
        parameter, or a config parameter left out, the resources the asset takes are brought
        up for the call and torn down when it ends (an ``async def`` asset: when the awaited
        call ends), see :mod:`host._invocation`.
        """
        if not _needs_invocation(self, args, kwargs):
            return self.fn(*args, **kwargs)
        from host._invocation import invoke

        return invoke(self, args, kwargs)

    def with_resource_defs(self, resource_defs: Mapping[str, Any]) -> AssetDefinition:
        """A copy of this asset that also binds ``resource_defs`` (its own bindings win)."""
        copy = AssetDefinition(
            self.fn,
            self.key,
            required_resource_keys=self.required_resource_keys,
            resource_defs={**resource_defs, **self.resource_defs},
        )
        return copy

    def __getstate__(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Pickled without the planning memo (it is rebuilt where a plan is made)."""
        slots = {name: getattr(self, name) for name in _PICKLED_SLOTS}
        return self.__dict__, slots

    def __setstate__(self, state: tuple[dict[str, Any], dict[str, Any]]) -> None:
        attributes, slots = state
        self.__dict__.update(attributes)
        for name, value in slots.items():
            setattr(self, name, value)
        self.plans = {}

    def __repr__(self) -> str:
        return f"<asset {self.key}>"


_PICKLED_SLOTS = (
    "fn",
    "is_async",
    "key",
    "parameter_names",
    "parameters",
    "required_resource_keys",
    "resource_defs",
)


def _needs_invocation(
    definition: AssetDefinition, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> bool:
    """Whether a direct call must bring something up or fill in parameters first."""
    from host._context import AssetExecutionContext
    from host._resource import ConfigurableResource

    for value in (*args, *kwargs.values()):
        if isinstance(value, ConfigurableResource) or (
            isinstance(value, AssetExecutionContext) and value._host_direct
        ):
            return True
    hints = definition.type_hints
    from host._asset_config import is_config_class

    given = set(definition.parameter_names[: len(args)]) | set(kwargs)
    return any(
        is_config_class(hints.get(param.name)) and param.name not in given
        for param in definition.parameters
    )


@overload
def asset(fn: Callable[..., Any], /) -> AssetDefinition: ...


@overload
def asset(
    *,
    name: str | None = None,
    required_resource_keys: Iterable[str] = (),
    resource_defs: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], AssetDefinition]: ...


def asset(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    required_resource_keys: Iterable[str] = (),
    resource_defs: Mapping[str, Any] | None = None,
) -> AssetDefinition | Callable[[Callable[..., Any]], AssetDefinition]:
    """Declare a function as an asset, bare (``@asset``) or with a name (``@asset(name=...)``).

    Each parameter is an input, resolved by name when the run is planned:

    * a parameter named like another asset receives that asset's output;
    * a parameter annotated with a ``ConfigurableResource`` subclass, or named like a resource
      key, receives that resource, brought up for the run;
    * a parameter annotated ``ResourceParam[T]`` receives the resource bound to its name, any
      object of type ``T``;
    * a parameter annotated with a :class:`host.Config` subclass receives the asset's
      configuration for the run (``run_config``), validated before anything comes up;
    * a parameter named ``context`` receives the asset's :class:`host.AssetExecutionContext`;
    * a parameter with a default that matches nothing keeps its default.

    Anything else is a :class:`host.DefinitionError` before the run starts.
    ``async def`` functions are run on the run's event loop.

    Args:
        fn: the function (bare ``@asset``).
        name: the asset key; default: the function's name.
        required_resource_keys: resource keys the asset uses through ``context.resources``
            without a parameter; each is brought up before the asset runs, and a key no
            resource is bound to is a :class:`host.DefinitionError`.
        resource_defs: resources the asset binds itself (key -> resource), added to the run's;
            the same key bound to another object by the run or another asset is a
            :class:`host.DefinitionError`.
    """
    if fn is not None:
        return AssetDefinition(fn)

    def decorate(function: Callable[..., Any]) -> AssetDefinition:
        return AssetDefinition(
            function,
            name,
            required_resource_keys=required_resource_keys,
            resource_defs=resource_defs,
        )

    return decorate


def with_resources(
    definitions: Iterable[AssetDefinition], resource_defs: Mapping[str, Any]
) -> Sequence[AssetDefinition]:
    """Copies of ``definitions`` that bind ``resource_defs`` (Dagster's ``with_resources``).

    A key an asset already binds through ``@asset(resource_defs=...)`` keeps the asset's own
    resource. The definitions passed in are not changed.

    Raises:
        DefinitionError: an item is not an ``@asset`` definition.
    """
    copies: list[AssetDefinition] = []
    for item in definitions:
        if not isinstance(item, AssetDefinition):
            raise DefinitionError(
                f"with_resources: {item!r} is not an asset; decorate the function with @asset."
            )
        copies.append(item.with_resource_defs(resource_defs))
    return copies
