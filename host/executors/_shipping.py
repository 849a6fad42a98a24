"""Crossing a process boundary: definitions, outputs and errors, pickled with cloudpickle.

Asset functions travel by value (cloudpickle, as Dask does), so closures made by factories and
functions defined in a ``__main__`` script reach worker processes; modules and classes that can
be imported travel by reference. An executor whose workers share the caller's modules
(``multiprocess``) ships an asset function by reference too when its module can be imported
(:func:`dumps` with ``assets_by_reference``): the worker imports the module (its module-level
set-up runs there, tracebacks show its real file and lines); the function's value travels with
it, used only if the import fails in the worker. Resources travel as configuration only (see
``ConfigurableResource.__getstate__``). Whatever cannot be pickled is found before any worker
starts (:func:`check_shippable`), and named.

Exceptions come back with their chain of causes: each link is pickled on its own, so a cause
that cannot be pickled ends the chain there, replaced by a :class:`~host.executors.ShippingError`
carrying the text of the traceback from the worker.
"""

from __future__ import annotations

import importlib
import io
import itertools
import pickle
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from host._errors import DefinitionError, PluginError, ShippingError
from host._events import ErrorInfo, describe_exception
from host._graph import Plan
from host._resource_graph import ResourceGraph, ResourceNode

__all__ = [
    "ShippedError",
    "asset_by_reference",
    "check_shippable",
    "dumps",
    "loads",
    "needed_resources",
    "shippable_plugins",
]

#: How many links of an exception's chain of causes are sent back.
_MAX_CHAIN = 16


def dumps(obj: Any, *, assets_by_reference: bool = False) -> bytes:
    """Pickle ``obj`` with cloudpickle (functions without an importable name by value).

    Args:
        obj: what to pickle.
        assets_by_reference: ship each asset function (the ``fn`` of an asset definition
            bound to a module-level name) whose module can be imported by reference: module
            and name, with its value as the fallback (:func:`asset_by_reference`). Functions
            of ``__main__``, closures and functions whose module cannot be imported go by value.
    """
    if not assets_by_reference:
        return bytes(cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    buffer = io.BytesIO()
    _ReferencePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def asset_by_reference(fn: object) -> tuple[str, str] | None:
    """``(module, name)`` under which ``fn``'s asset definition can be imported, or ``None``.

    ``fn`` is shipped by reference when it is a function of a module other than
    ``__main__``, not defined inside a function, and the module's attribute of its name is an
    asset definition whose ``fn`` is ``fn`` (what ``@asset`` at module level makes).
    """
    if not isinstance(fn, types.FunctionType):
        return None
    module_name = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", "")
    if not module_name or module_name == "__main__" or "<locals>" in qualname or "." in qualname:
        return None
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__spec__", None) is None:
        return None  # not imported by name (exec'd from a file, made on the fly)
    definition = getattr(module, qualname, None)
    if definition is None or getattr(definition, "fn", None) is not fn:
        return None
    return module_name, qualname


def _asset_fn(module: str, name: str, value: bytes) -> Any:
    """In a worker: the asset function ``module.name`` (its definition's ``fn``), imported;
    its pickled value if the module cannot be imported here."""
    try:
        return getattr(importlib.import_module(module), name).fn
    except Exception:
        return loads(value)


class _ReferencePickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle, with asset functions of importable modules by reference."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.FunctionType):
            where = asset_by_reference(obj)
            if where is not None:
                value = bytes(cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
                return _asset_fn, (*where, value)
        return super().reducer_override(obj)


def loads(blob: bytes) -> Any:
    """Unpickle what :func:`dumps` made."""
    return pickle.loads(blob)


def _describe(exc: BaseException) -> str:
    return describe_exception(exc)  # never raises, whatever the exception's __str__ does


def needed_resources(plan: Plan, graph: ResourceGraph) -> ResourceGraph:
    """The part of ``graph`` the plan's assets need (with dependencies and aliases).

    Workers receive only this: a resource no selected asset needs never leaves the caller.
    """
    needed = set(graph.closure(plan.resource_keys()))
    nodes: dict[str, ResourceNode] = {
        key: node for key, node in graph.nodes.items() if node.key in needed
    }
    return ResourceGraph(nodes)


def check_shippable(plan: Plan, graph: ResourceGraph) -> None:
    """Pickle every asset and needed resource, to fail before any worker starts: all of them
    in one pickle (one memo: a function or module-level object shared by many assets is
    pickled once), and only when that fails each on its own, to name the first that cannot
    be sent.

    Raises:
        DefinitionError: naming the first asset (or resource) that cannot be pickled, with
            the reason.
    """
    nodes = {
        key: node for key, node in needed_resources(plan, graph).flat().items() if node.key == key
    }  # an alias is checked under its node's own key
    try:
        dumps((tuple(plan.steps.values()), [node.resource for node in nodes.values()]))
    except Exception:
        pass  # one of them cannot be pickled: found and named below
    else:
        return
    for key, step in plan.steps.items():
        try:
            dumps(step)
        except Exception as exc:
            fn = step.asset.fn
            where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
            raise DefinitionError(
                f"asset {key!r} ({where}) cannot be sent to a worker process: {_describe(exc)}. "
                f"Assets are pickled with cloudpickle, closures and defaults included; keep live "
                f"handles (connections, locks, open files, threads) out of the function, its "
                f"closure, its defaults and the globals it uses: hold them in a resource."
            ) from exc
    for key, node in nodes.items():
        try:
            dumps(node.resource)
        except Exception as exc:
            raise DefinitionError(
                f"resource {key!r} ({type(node.resource).__name__}) cannot be sent to a worker "
                f"process: {_describe(exc)}. Only its configuration travels: give it "
                f"configuration fields that pickle, and create live handles in "
                f"setup_for_execution (private attributes)."
            ) from exc


def shippable_plugins(plugins: Iterable[object]) -> tuple[object, ...]:
    """``plugins``, checked to pickle (they are registered in every worker too).

    Raises:
        PluginError: naming the plugin that cannot be pickled.
    """
    plugins = tuple(plugins)
    for plugin in plugins:
        try:
            dumps(plugin)
        except Exception as exc:
            raise PluginError(
                f"hook plugin {plugin!r}, passed with run_assets(plugins=...), cannot be sent to "
                f"worker processes: {_describe(exc)}. Plugins of a run on a process executor "
                f"are pickled (cloudpickle) and registered in each worker: pass a module, a "
                f"class, or an instance whose attributes pickle."
            ) from exc
    return plugins


@dataclass(frozen=True)
class ShippedError:
    """An exception on its way from a worker: its description and its pickled chain.

    Attributes:
        info: what the exception was (type, message, traceback text from the worker).
        chain: the exception and its causes, each pickled on its own; stops at the first one
            that does not pickle.
        complete: whether every link of the chain pickled.
        pid: the process where it was raised.
    """

    info: ErrorInfo
    chain: tuple[bytes, ...]
    complete: bool
    pid: int

    @classmethod
    def pack(cls, exc: BaseException, info: ErrorInfo, pid: int) -> ShippedError:
        """Describe ``exc`` for the trip to the parent (``info`` made where it was raised)."""
        chain: list[bytes] = []
        link: BaseException | None = exc
        complete = True
        seen: set[int] = set()
        while link is not None and id(link) not in seen and len(chain) < _MAX_CHAIN:
            seen.add(id(link))
            try:
                blob = dumps(link)
                loads(blob)  # an exception class may pickle but not unpickle (__init__ args)
            except Exception:
                complete = False
                break
            chain.append(blob)
            link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
        return cls(info, tuple(chain), complete and link is None, pid)

    def unpack(self) -> BaseException:
        """The exception with its causes, or a :class:`~host.executors.ShippingError` carrying
        the worker's traceback (for the first link that could not be unpickled)."""
        remote = ShippingError(
            f"{self.info.type}: {self.info.message}\n\nTraceback in process {self.pid}:\n"
            f"{self.info.traceback}"
        )
        links: list[BaseException] = []
        for blob in self.chain:
            try:
                links.append(loads(blob))
            except Exception:
                break
        if not links:
            return remote
        for outer, inner in itertools.pairwise(links):
            outer.__cause__ = inner
        if len(links) < len(self.chain) or not self.complete:
            links[-1].__cause__ = remote
        return links[0]
