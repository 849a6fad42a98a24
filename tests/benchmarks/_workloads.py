"""The workloads for host and for the bare hand-written loop, built once and timed many times.

Every workload has the same shape for every contender (``dagster_worker.py`` builds Dagster's
copy of each from the same definitions):

* fan: ``N`` independent assets, each taking three resources: one with setup/teardown, one with
  ``yield_for_execution``, one plain;
* chain: ``N`` assets, each taking the previous asset's output;
* multiprocess fan: 16 assets, each taking a resource whose setup sleeps 50 ms and leaves a file
  behind, so the setups of every process can be counted.

Each asset is its own function object (as in a real code base), all sharing one code object.
"""

from __future__ import annotations

import contextlib
import os
import time
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

from host import AssetDefinition, ConfigurableResource, InitResourceContext, asset, run_assets

__all__ = [
    "COUNTS",
    "MP_ASSETS",
    "PlainResource",
    "SetupTeardownResource",
    "SlowResource",
    "YieldResource",
    "bare_chain",
    "bare_fan",
    "chain_functions",
    "count_setups",
    "fan_functions",
    "fan_resources",
    "host_chain",
    "host_fan",
    "mp_assets",
]

#: How often each lifecycle method ran in this process (the in-process workloads check it).
COUNTS: dict[str, int] = {"setup": 0, "teardown": 0, "yield": 0}


class SetupTeardownResource(ConfigurableResource):
    """A resource with ``setup_for_execution`` and ``teardown_after_execution``."""

    label: str = "setup"
    _ready: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext | None) -> None:
        self._ready = True
        COUNTS["setup"] += 1

    def teardown_after_execution(self, context: InitResourceContext | None) -> None:
        self._ready = False
        COUNTS["teardown"] += 1


class YieldResource(ConfigurableResource):
    """A resource that overrides ``yield_for_execution``."""

    label: str = "yield"

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext | None) -> Iterator[Any]:
        COUNTS["yield"] += 1
        yield self


class PlainResource(ConfigurableResource):
    """A resource with no lifecycle methods."""

    label: str = "plain"


class SlowResource(ConfigurableResource):
    """Setup sleeps ``delay`` seconds and leaves one file in ``counter_dir`` per setup."""

    counter_dir: str
    delay: float = 0.05

    def setup_for_execution(self, context: InitResourceContext | None) -> None:
        time.sleep(self.delay)
        Path(self.counter_dir, f"setup-{os.getpid()}-{uuid.uuid4().hex}").touch()


def count_setups(counter_dir: str) -> int:
    """How many setups of :class:`SlowResource` left their file in ``counter_dir``."""
    return sum(1 for name in os.listdir(counter_dir) if name.startswith("setup-"))


def _fan(
    setup_res: SetupTeardownResource, yield_res: YieldResource, plain_res: PlainResource
) -> int:
    return 1


def _slow(slow: SlowResource) -> int:
    return os.getpid()


def _copies(fn: Callable[..., Any], prefix: str, n: int) -> list[Callable[..., Any]]:
    """``n`` distinct function objects with ``fn``'s code, named ``prefix_0`` ... ."""
    result: list[Callable[..., Any]] = []
    for i in range(n):
        name = f"{prefix}_{i}"
        copy = types.FunctionType(fn.__code__, fn.__globals__, name)
        # Evaluated annotations, as without ``from __future__ import annotations``.
        copy.__annotations__ = typing.get_type_hints(fn)
        copy.__qualname__ = name
        result.append(copy)
    return result


def fan_functions(n: int) -> list[Callable[..., Any]]:
    """The ``n`` functions of the fan workload, ``fan_0`` ... ."""
    return _copies(_fan, "fan", n)


def chain_source(n: int) -> str:
    """The Python source of the chain workload: ``chain_i(chain_{i-1}) -> chain_{i-1} + 1``."""
    lines = ["def chain_0() -> int:\n    return 0\n"]
    for i in range(1, n):
        lines.append(f"def chain_{i}(chain_{i - 1}: int) -> int:\n    return chain_{i - 1} + 1\n")
    return "\n".join(lines)


def chain_functions(n: int) -> list[Callable[..., Any]]:
    """The ``n`` functions of the chain workload, in order."""
    namespace: dict[str, Any] = {}
    exec(compile(chain_source(n), f"<chain {n}>", "exec"), namespace)
    return [namespace[f"chain_{i}"] for i in range(n)]


def fan_resources() -> dict[str, ConfigurableResource]:
    """The three resources of the fan workload, by key."""
    return {
        "setup_res": SetupTeardownResource(),
        "yield_res": YieldResource(),
        "plain_res": PlainResource(),
    }


def host_fan(assets: list[AssetDefinition]) -> Callable[[], Any]:
    """One host run of the fan ``assets`` (hooks and events on, as a user runs it)."""
    resources = fan_resources()

    def run() -> Any:
        result = run_assets(assets, resources)
        assert len(result.outputs) == len(assets)
        return result

    return run


def bare_fan(functions: list[Callable[..., Any]]) -> Callable[[], Any]:
    """The floor: set each resource up once, call every function, tear down in reverse."""
    keyed = [(fn.__name__, fn) for fn in functions]

    def run() -> dict[str, Any]:
        setup = SetupTeardownResource()
        held = YieldResource()
        plain = PlainResource()
        outputs: dict[str, Any] = {}
        setup.setup_for_execution(None)
        try:
            with held.yield_for_execution(None) as value:
                for key, fn in keyed:
                    outputs[key] = fn(setup_res=setup, yield_res=value, plain_res=plain)
        finally:
            setup.teardown_after_execution(None)
        return outputs

    return run


def host_chain(assets: list[AssetDefinition]) -> Callable[[], Any]:
    """One host run of the chain ``assets``."""

    def run() -> Any:
        result = run_assets(assets)
        assert result.outputs[assets[-1].key] == len(assets) - 1
        return result

    return run


def bare_chain(functions: list[Callable[..., Any]]) -> Callable[[], Any]:
    """The floor: call each function with the previous one's output."""
    keyed = [(fn.__name__, fn) for fn in functions]

    def run() -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        first_key, first = keyed[0]
        value = outputs[first_key] = first()
        for key, fn in keyed[1:]:
            value = outputs[key] = fn(value)
        return outputs

    return run


def mp_assets() -> list[AssetDefinition]:
    """The 16 assets of the multiprocess fan, each taking the ``slow`` resource."""
    return [asset(fn) for fn in _copies(_slow, "mp", MP_ASSETS)]


#: How many assets the multiprocess fan has.
MP_ASSETS = 16
