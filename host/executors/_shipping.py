"""Crossing a process boundary: definitions, outputs and errors, pickled with cloudpickle.

Asset functions travel by value (cloudpickle, as Dask does), so closures made by factories and
functions defined in a ``__main__`` script reach worker processes; modules and classes that can
be imported travel by reference. Resources travel as configuration only (see
``ConfigurableResource.__getstate__``). Whatever cannot be pickled is found before any worker
starts (:func:`check_shippable`), and named.

Exceptions come back with their chain of causes: each link is pickled on its own, so a cause
that cannot be pickled ends the chain there, replaced by a :class:`~host.executors.ShippingError`
carrying the text of the traceback from the worker.
"""

from __future__ import annotations

import itertools
import pickle
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
    "check_shippable",
    "dumps",
    "loads",
    "needed_resources",
    "shippable_plugins",
]

#: How many links of an exception's chain of causes are sent back.
_MAX_CHAIN = 16


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` with cloudpickle (functions without an importable name by value)."""
    return bytes(cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


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
    """Pickle every asset and needed resource once, to fail before any worker starts.

    Raises:
        DefinitionError: naming the first asset (or resource) that cannot be pickled, with
            the reason.
    """
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
    for key, node in needed_resources(plan, graph).flat().items():
        if node.key != key:
            continue  # an alias of a node checked under its own key
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
