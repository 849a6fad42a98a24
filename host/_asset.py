"""``@asset``: a plain function whose parameters name the resources and upstream assets it needs."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Hashable
from typing import Any, overload

from host._errors import DefinitionError

__all__ = ["AssetDefinition", "asset"]


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

    __slots__ = ("__dict__", "fn", "is_async", "key", "parameter_names", "parameters", "plans")

    @functools.cached_property
    def type_hints(self) -> dict[str, Any]:
        """The function's resolved annotations (raw ones where a forward reference fails).

        Resolved on first use, once per definition, not once per run.
        """
        try:
            return typing.get_type_hints(self.fn)
        except Exception:  # unresolvable forward references: fall back to raw annotations
            return {p.name: p.annotation for p in self.parameters}

    def __init__(self, fn: Callable[..., Any], key: str | None = None) -> None:
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
        return self.fn(*args, **kwargs)

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


_PICKLED_SLOTS = ("fn", "is_async", "key", "parameter_names", "parameters")


@overload
def asset(fn: Callable[..., Any], /) -> AssetDefinition: ...


@overload
def asset(*, name: str | None = None) -> Callable[[Callable[..., Any]], AssetDefinition]: ...


def asset(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> AssetDefinition | Callable[[Callable[..., Any]], AssetDefinition]:
    """Declare a function as an asset, bare (``@asset``) or with a name (``@asset(name=...)``).

    Each parameter is an input, resolved by name when the run is planned:

    * a parameter named like another asset receives that asset's output;
    * a parameter annotated with a ``ConfigurableResource`` subclass, or named like a resource
      key, receives that resource, brought up for the run;
    * a parameter named ``context`` receives the asset's :class:`host.AssetExecutionContext`;
    * a parameter with a default that matches nothing keeps its default.

    Anything else is a :class:`host.DefinitionError` before the run starts.
    ``async def`` functions are run on the run's event loop.
    """
    if fn is not None:
        return AssetDefinition(fn)

    def decorate(function: Callable[..., Any]) -> AssetDefinition:
        return AssetDefinition(function, name)

    return decorate
