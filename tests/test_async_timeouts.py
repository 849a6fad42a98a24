"""A coroutine stopped by a timeout is cancelled and run to its end before teardown goes on.

An ``async`` setup (``setup_for_execution``, or the code before ``yield`` in an async generator
``yield_for_execution``) that awaits past its ``host_setup_timeout``, and an ``async`` asset still
awaiting when the run's ``timeout`` passes, are cancelled on the run's event loop, and the loop
runs until they have ended (their ``except CancelledError`` and ``finally`` blocks, awaits
included) before anything else runs there: before another resource's async teardown, which
used to resume them. A setup that was stopped never came up and is never torn down; one that
carries on (swallows ``CancelledError``, shields its work, or, in synchronous code, catches the
deadline) comes up late and is torn down at once and reported, as a synchronous setup that could
not be stopped is. Checked from the records the resources write themselves, in order, on every
executor (a Dask task thread's loop is woken up so that its deadline is raised there too).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

import pytest

from host import ConfigurableResource, InitResourceContext, asset, run_assets
from tests.recording import read, write
from tests.test_contract import check_lifecycle

Executor = tuple[str, dict[str, Any]]

Behaviour = Literal["stops", "swallows", "shields"]

#: Hang guard: what a coroutine awaits when nothing stops it.
LONG = 30.0


class Neighbour(ConfigurableResource):
    """Up before the slow one; its async teardown awaits, giving a pending coroutine on the
    loop the chance to resume (which it must not have)."""

    record: str

    async def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key="neighbour", label="neighbour")
        await asyncio.sleep(0)
        write(self.record, event="up", key="neighbour", label="neighbour")

    async def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown-start", key="neighbour", label="neighbour")
        await asyncio.sleep(0.05)
        write(self.record, event="teardown", key="neighbour", label="neighbour")


class SlowSetup(ConfigurableResource):
    """Comes up slower than its ``host_setup_timeout``; stopped, it cleans up (awaiting) and
    lets the cancellation go on (``stops``), or carries on and comes up late (``swallows``: it
    catches ``CancelledError``; ``shields``: its work runs under ``asyncio.shield``, which it
    awaits to its end)."""

    record: str
    behaviour: Behaviour = "stops"
    host_setup_timeout: ClassVar[float | None] = 0.3

    def _write(self, event: str) -> None:
        write(self.record, event=event, key="slow", label="slow")

    async def _come_up(self) -> None:
        self._write("setup")
        try:
            if self.behaviour == "shields":
                work = asyncio.ensure_future(asyncio.sleep(1.0))
                try:
                    await asyncio.shield(work)
                except asyncio.CancelledError:
                    self._write("cancelled")
                    await work  # it comes up anyway, late
            else:
                await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            self._write("cancelled")
            await asyncio.sleep(0.1)  # its clean-up awaits: it must run to its end first
            self._write("stopped")
            if self.behaviour == "stops":
                raise
        self._write("up")

    def _go_down(self) -> None:
        self._write("teardown")


class SlowAsyncSetup(SlowSetup):
    async def setup_for_execution(self, context: InitResourceContext) -> None:
        await self._come_up()

    async def teardown_after_execution(self, context: InitResourceContext) -> None:
        await asyncio.sleep(0)
        self._go_down()


class SlowAsyncYield(SlowSetup):
    @contextlib.asynccontextmanager
    async def yield_for_execution(
        self, context: InitResourceContext
    ) -> AsyncIterator[SlowAsyncYield]:
        await self._come_up()
        try:
            yield self
        finally:
            await asyncio.sleep(0)
            self._go_down()


class SlowSyncSetup(SlowSetup):
    """The synchronous counterpart: ``swallows`` catches the deadline's interruption (every
    ``BaseException``) and carries on; ``stops`` cleans up in ``finally`` and lets it go on."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._write("setup")
        until = time.monotonic() + (1.0 if self.behaviour == "swallows" else LONG)
        while True:
            try:
                while time.monotonic() < until:
                    time.sleep(0.01)
                break
            except BaseException:  # the deadline, wherever it lands
                self._write("cancelled")
                if self.behaviour == "stops":
                    self._write("stopped")
                    raise
        self._write("up")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self._go_down()


PLACEMENTS: dict[str, type[SlowSetup]] = {
    "async setup_for_execution": SlowAsyncSetup,
    "async generator yield_for_execution": SlowAsyncYield,
    "sync setup_for_execution": SlowSyncSetup,
}

CASES = [
    (placement, behaviour)
    for placement in PLACEMENTS
    for behaviour in ("stops", "swallows", "shields")
    if not (placement.startswith("sync") and behaviour == "shields")
]


@asset
def both(neighbour: Neighbour, slow: Any) -> str:
    """Brings the neighbour up, then the slow one (in one process, on every executor)."""
    return "both"


def _check_setup_timeout(
    executor: Executor, record: str, placement: str, behaviour: Behaviour
) -> None:
    name, config = executor
    cls = PLACEMENTS[placement]
    resources = {
        "neighbour": Neighbour(record=record),
        "slow": cls(record=record, behaviour=behaviour),
    }
    result = run_assets(
        [both], resources, executor=name, executor_config=config, raise_on_error=False
    )

    assert result.outputs == {}
    assert set(result.failures) == {"both"}
    error = result.failures["both"]
    assert error.type == "host._errors.ResourceSetupError"
    assert error.resource_key == "slow"
    assert "did not come up within its setup_timeout of 0.3 s" in error.message
    assert f"tests.test_async_timeouts.{cls.__qualname__}" in error.message
    assert result.resource_errors == ()

    records = read(record)
    check_lifecycle(records)
    assert len({r["pid"] for r in records}) == 1  # both came up in one process
    events = [(r["label"], r["event"]) for r in records]
    neighbour_down = events.index(("neighbour", "teardown-start"))
    if behaviour == "stops":
        assert "and was stopped" in error.message
        # Its clean-up ran to its end before the neighbour's teardown started; never up, never
        # torn down.
        assert events.index(("slow", "stopped")) < neighbour_down
        assert ("slow", "up") not in events and ("slow", "teardown") not in events
    else:
        assert "came up late and was taken down again" in error.message
        # It came up (late), and was torn down once, at once: before the neighbour.
        assert events.index(("slow", "cancelled")) < events.index(("slow", "up"))
        assert events.count(("slow", "teardown")) == 1
        assert events.index(("slow", "teardown")) < neighbour_down
    assert events[-1] == ("neighbour", "teardown")
    assert events.count(("neighbour", "teardown")) == 1


@pytest.mark.parametrize(("placement", "behaviour"), CASES)
def test_a_setup_past_its_timeout_is_stopped_or_torn_down_in_process(
    record: str, placement: str, behaviour: Behaviour
) -> None:
    _check_setup_timeout(("in_process", {}), record, placement, behaviour)


#: One case per behaviour for the worker executors, placements rotating.
WORKER_CASES = [
    ("async setup_for_execution", "stops"),
    ("async generator yield_for_execution", "swallows"),
    ("async setup_for_execution", "shields"),
    ("sync setup_for_execution", "swallows"),
]


@pytest.mark.parametrize(("placement", "behaviour"), WORKER_CASES)
@pytest.mark.parametrize(
    "executor",
    [
        pytest.param(("multiprocess", {"max_workers": 1}), id="multiprocess"),
        pytest.param(("dask", None), id="dask"),
    ],
)
def test_a_setup_past_its_timeout_is_stopped_or_torn_down_in_a_worker(
    request: pytest.FixtureRequest,
    executor: tuple[str, dict[str, Any] | None],
    record: str,
    placement: str,
    behaviour: Behaviour,
) -> None:
    name, config = executor
    if config is None:
        config = {"address": request.getfixturevalue("host_dask_address")}
    _check_setup_timeout((name, config), record, placement, behaviour)


@pytest.mark.slow
@pytest.mark.parametrize(("placement", "behaviour"), CASES)
@pytest.mark.parametrize("executor_name", ["multiprocess", "dask"])
def test_a_setup_past_its_timeout_is_stopped_or_torn_down_in_a_worker_every_case(
    request: pytest.FixtureRequest,
    executor_name: str,
    record: str,
    placement: str,
    behaviour: Behaviour,
) -> None:
    config: dict[str, Any] = {"max_workers": 1}
    if executor_name == "dask":
        config = {"address": request.getfixturevalue("host_dask_address")}
    _check_setup_timeout((executor_name, config), record, placement, behaviour)


# -- an async asset past the run's timeout ---------------------------------------------------


@asset
async def waits(neighbour: Neighbour) -> str:
    """Awaits until stopped; its clean-up awaits too, and must end before any teardown."""
    write(neighbour.record, event="start", key="", label="waits")
    try:
        await asyncio.sleep(LONG)
    except asyncio.CancelledError:
        write(neighbour.record, event="cancelled", key="", label="waits")
        await asyncio.sleep(0.1)
        write(neighbour.record, event="stopped", key="", label="waits")
        raise
    return "too late"


#: The run's timeout per executor: long enough for a worker to start under load.
RUN_TIMEOUT = {"in_process": 0.5, "multiprocess": 4.0, "dask": 4.0}


def test_an_async_asset_past_the_runs_timeout_is_cancelled_before_teardown(
    executor: Executor, record: str
) -> None:
    name, config = executor
    result = run_assets(
        [waits],
        {"neighbour": Neighbour(record=record)},
        executor=name,
        executor_config=config,
        raise_on_error=False,
        timeout=RUN_TIMEOUT[name],
    )
    assert not result.success
    error = result.failures["waits"]
    assert error.type == "host._errors.RunTimeoutError"
    assert "was interrupted" in error.message
    records = read(record)
    check_lifecycle(records)
    events = [(r["label"], r["event"]) for r in records]
    assert events == [
        ("neighbour", "setup"),
        ("neighbour", "up"),
        ("waits", "start"),
        ("waits", "cancelled"),
        ("waits", "stopped"),
        ("neighbour", "teardown-start"),
        ("neighbour", "teardown"),
    ]
