"""Calling an asset directly, for unit tests: ``build_asset_context`` and direct invocation.

``my_asset(build_asset_context(resources={...}))``, ``my_asset(db=MyDB(...))`` and
``my_asset()`` with a config parameter left out do what a run does for one asset in this
process: the resources come up through the run's machinery (the hooks, fresh copies, EnvVar
reading; a :class:`host.testing.ResourceScope`), the asset is called with them, and they are
torn down, in reverse order, when the call ends. An ``async def`` asset returns a coroutine:
the resources come up on the awaiting loop and go down when it finishes.

``with build_asset_context(resources={...}) as context:`` (or ``async with``) brings the
context's resources up once for the block instead; calls inside it use them, and
``context.resources`` gives them.
"""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

from host._asset import AssetDefinition
from host._asset_config import is_config_class
from host._context import AssetExecutionContext, Resources, attached
from host._errors import DefinitionError
from host._launch import asset_config_value, rebuild_resource
from host._resource import ConfigurableResource
from host._resource_scope import ResourceScope

__all__ = ["BuiltAssetContext", "build_asset_context", "invoke"]


class _Unopened(Mapping[str, Any]):
    """``context.resources`` of a context that is not open: plain objects only."""

    def __init__(self, given: Mapping[str, Any]) -> None:
        self._given = given

    def __getitem__(self, key: str) -> Any:
        value = self._given[key]
        if isinstance(value, ConfigurableResource):
            raise RuntimeError(
                f"context.resources.{key} is a {type(value).__name__}, which is brought up "
                f"only while the context is open: use `with build_asset_context(resources=...) "
                f"as context:` (or `async with`), or call the asset with the context, which "
                f"brings it up for the call."
            )
        return value

    def __iter__(self) -> Any:
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)


@dataclass(frozen=True, eq=False)
class BuiltAssetContext(AssetExecutionContext):
    """An :class:`host.AssetExecutionContext` made by :func:`build_asset_context`.

    Calling an asset with it brings its resources up for the call; ``with`` (or ``async
    with``) brings them up for the block. See :mod:`host._invocation`.
    """

    _host_direct: ClassVar[bool] = True

    #: The resources as given (configuration; brought up when used).
    _given: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: The config its asset's config parameter receives when the call leaves it out.
    _asset_config: Any = field(default=None, repr=False)
    #: ``[values up, scope]`` while open (a ``with`` block, or one call).
    _open: list[Any] = field(default_factory=list, repr=False)

    @property
    def resources(self) -> Resources:
        """The context's resources: up while it is open; plain objects at any time."""
        if self._open:
            return Resources(attached(self._open[0]), f"asset {self.asset_key!r}")
        return Resources(_Unopened(self._given), f"asset {self.asset_key!r}")

    def _scope(self) -> ResourceScope[dict[str, Any]]:
        if self._open:
            raise RuntimeError("this context is open already; open it once at a time")
        return ResourceScope(self._given, dict, run_id=self.run_id)

    def __enter__(self) -> BuiltAssetContext:
        scope = self._scope()
        self._open[:] = [scope.__enter__(), scope]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope = self._open[1]
        self._open.clear()
        scope.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> BuiltAssetContext:
        scope = self._scope()
        self._open[:] = [await scope.__aenter__(), scope]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope = self._open[1]
        self._open.clear()
        await scope.__aexit__(exc_type, exc, tb)


def build_asset_context(
    resources: Mapping[str, Any] | None = None,
    *,
    resources_config: Mapping[str, Mapping[str, Any]] | None = None,
    asset_config: Any = None,
    run_id: str | None = None,
) -> AssetExecutionContext:
    """A context for calling an asset directly in a unit test (Dagster's helper).

    Example::

        def test_my_asset():
            context = build_asset_context(resources={"db": MyDB(path=":memory:")})
            assert my_asset(context) == ...      # db comes up for the call, then goes down

            with build_asset_context(resources={"db": MyDB(path=":memory:")}) as context:
                context.resources.db.execute(...)  # up for the whole block
                my_asset(context)

    Args:
        resources: resource key -> resource (a ``ConfigurableResource``, possibly declared
            with ``configure_at_launch()``, or any object given as it is).
        resources_config: resource key -> launch-time config, as a run's
            ``run_config["resources"][KEY]["config"]``.
        asset_config: what the asset's config parameter receives when the call leaves it out
            (a ``host.Config`` instance or a mapping of its fields).
        run_id: the run id the contexts carry; default: a new one.

    Raises:
        ConfigError: launch config that does not validate, or a partial resource missing a
            required field; nothing was brought up.
    """
    given = dict(resources or {})
    for key in resources_config or {}:
        if key not in given:
            raise DefinitionError(
                f"build_asset_context: resources_config names {key!r}, which is not one of "
                f"its resources ({sorted(given) or 'none'})."
            )
    for key, value in list(given.items()):
        values = (resources_config or {}).get(key)
        if values is not None or _is_partial(value):
            given[key] = rebuild_resource(key, value, values, {})
    return BuiltAssetContext(
        run_id=run_id or uuid.uuid4().hex,
        asset_key="",
        _given=given,
        _asset_config=asset_config,
    )


def _is_partial(value: Any) -> bool:
    from host._partial import is_partial

    return is_partial(value)


def invoke(definition: AssetDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``definition`` directly, bringing up what it needs for the call.

    Resources given as arguments (seen in ``context.resources`` under their parameter's name,
    as in Dagster; one given both there and in the context is an error) and those of a
    :func:`build_asset_context` context that is not open come up before the call and go down
    when it ends (for an ``async def`` asset, a coroutine that does both on the awaiting
    loop). A parameter left out is filled from the
    context's resources (by name, or by ``ConfigurableResource`` annotation) or, for a config
    parameter, from ``build_asset_context(asset_config=...)`` or the class's defaults.

    Raises:
        DefinitionError: a parameter is given neither as an argument nor by the context.
        ConfigError: the asset's config does not validate.
    """
    context: BuiltAssetContext | None = None
    if args and isinstance(args[0], BuiltAssetContext) and not _takes_context(definition):
        context, args = args[0], args[1:]  # the context only carries the resources
    bound = inspect.signature(definition.fn).bind_partial(*args, **kwargs)
    arguments = dict(bound.arguments)
    if context is None:
        context = next(
            (v for v in arguments.values() if isinstance(v, BuiltAssetContext)), None
        )
    given: Mapping[str, Any] = {} if context is None else context._given
    hints = definition.type_hints
    to_open: dict[str, Any] = {}
    if context is not None and not context._open:
        to_open.update(given)
    fill: dict[str, str] = {}  # parameter -> resource key it receives
    for name, value in arguments.items():
        if isinstance(value, ConfigurableResource):
            _check_type(definition, name, hints.get(name), value)
            if name in given:
                raise DefinitionError(
                    f"asset {definition.key!r} called directly: resource {name!r} is given "
                    f"both in its context (build_asset_context(resources=...)) and as an "
                    f"argument; give it in one of them."
                )
            to_open[name] = value  # under the parameter's name, in context.resources too
            fill[name] = name
    for param in definition.parameters:
        name = param.name
        if name in arguments:
            continue
        annotation = hints.get(name)
        if is_config_class(annotation):
            source = context._asset_config if context is not None else None
            arguments[name] = asset_config_value(definition.key, annotation, source, None)
        elif name in given:
            _check_type(definition, name, annotation, given[name])
            fill[name] = name
        elif isinstance(annotation, type) and issubclass(annotation, ConfigurableResource):
            matches = [k for k, v in given.items() if isinstance(v, annotation)]
            if len(matches) == 1:
                fill[name] = matches[0]
            elif param.default is inspect.Parameter.empty:
                raise _not_given(definition, name, given)
        elif param.default is inspect.Parameter.empty:
            raise _not_given(definition, name, given)
    for key in sorted(definition.required_resource_keys):
        if key not in given:
            raise DefinitionError(
                f"asset {definition.key!r} called directly: it requires resource {key!r} "
                f"(required_resource_keys), which its context does not have. Pass "
                f"build_asset_context(resources={{{key!r}: ...}})."
            )
    live = context._open[0] if context is not None and context._open else {}

    def call(values: Mapping[str, Any]) -> Any:
        up = {**live, **values}
        for name, key in fill.items():
            arguments[name] = up[key]
        if context is not None:
            per_call = dataclasses.replace(context, asset_key=definition.key, _open=[up])
            for name, value in arguments.items():
                if value is context:
                    arguments[name] = per_call
        return definition.fn(**arguments)

    if not to_open:
        return call({})
    scope = ResourceScope(to_open, dict, run_id=context.run_id if context else None)
    if definition.is_async:
        return _call_async(scope, call)
    with scope as values:
        return call(values)


def _check_type(definition: AssetDefinition, name: str, annotation: Any, value: Any) -> None:
    """A parameter annotated with a ``ConfigurableResource`` class is given one of that class
    (or an object it does not describe: a factory, a function resource), as in a run."""
    if not (isinstance(annotation, type) and issubclass(annotation, ConfigurableResource)):
        return
    cls = type(value)
    vends = hasattr(value, "host_with_launch_config") or (
        isinstance(value, ConfigurableResource)
        and (cls.overrides_yield() or hasattr(cls, "create_resource"))
    )
    if not vends and not isinstance(value, annotation):
        raise DefinitionError(
            f"asset {definition.key!r} called directly: parameter {name!r} is annotated "
            f"{annotation.__qualname__}, but the resource given is a {cls.__qualname__}. Give a "
            f"{annotation.__qualname__}, or change the annotation."
        )


def _takes_context(definition: AssetDefinition) -> bool:
    hints = definition.type_hints
    return any(
        param.name == "context"
        or (isinstance(hints.get(param.name), type)
            and issubclass(hints[param.name], AssetExecutionContext))
        for param in definition.parameters
    )


async def _call_async(
    scope: ResourceScope[dict[str, Any]], call: Any
) -> Any:
    async with scope as values:
        coroutine: Coroutine[Any, Any, Any] = call(values)
        return await coroutine


def _not_given(definition: AssetDefinition, name: str, given: Mapping[str, Any]) -> DefinitionError:
    return DefinitionError(
        f"asset {definition.key!r} called directly: parameter {name!r} is not given, and no "
        f"resource of its context is {name!r} (context resources: {sorted(given) or 'none'}). "
        f"Pass it (my_asset(..., {name}=...)) or give it to build_asset_context(resources=...)."
    )
