"""A teardown that raises anything, or that overruns its time, is reported; the rest go down.

Whatever a resource's own teardown code raises (``teardown_after_execution``, or the code after
``yield`` in ``yield_for_execution``, sync or async), ``Exception`` or any other
``BaseException`` (``KeyboardInterrupt``, ``SystemExit`` with any code, ``GeneratorExit``, one
of its own), is that resource's :class:`host.ResourceTeardownError`: the run fails with it in
``RunResult.resource_errors``, every other resource that came up is still torn down in reverse
order, and neither the caller's process nor a worker process goes down with it. Checked from
the records the resources write themselves, on every executor. An interrupt sent from outside
the teardown (another thread's, a second Ctrl-C: ``tests/test_signals.py``) still ends it.

A teardown that catches the interruption of its ``teardown_timeout`` and carries on is
reported as having overrun it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import (
    ConfigurableResource,
    InitResourceContext,
    ResourceTeardownError,
    RunFailure,
    RunResult,
    asset,
    run_assets,
)
from host._timeouts import interrupt_thread
from host.testing import open_resource
from tests.recording import read, write
from tests.test_contract import check_lifecycle

Executor = tuple[str, dict[str, Any]]


class OwnBaseException(BaseException):
    """A BaseException of a resource's own (not an Exception)."""


#: What a teardown raises, by name (a picklable field value) -> the exception.
RAISES: dict[str, Any] = {
    "KeyboardInterrupt": lambda: KeyboardInterrupt("teardown interrupted itself"),
    "SystemExit(0)": lambda: SystemExit(0),
    "SystemExit(3)": lambda: SystemExit(3),
    "SystemExit('text')": lambda: SystemExit("teardown exits with a message"),
    "GeneratorExit": GeneratorExit,
    "OwnBaseException": lambda: OwnBaseException("a BaseException of its own"),
    "RuntimeError": lambda: RuntimeError("an ordinary teardown failure"),
}
KINDS = list(RAISES)


class Falls(ConfigurableResource):
    """Records setup, up and teardown (``tests.recording`` format); raises ``raises`` in its
    teardown, after writing the teardown record."""

    record: str
    label: str
    raises: str | None = None
    #: The phase its teardown failure is reported in.
    teardown_phase: ClassVar[str] = "teardown"

    def _up(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.label)
        write(self.record, event="up", key=context.resource_key, label=self.label)

    def _down(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label=self.label)
        if self.raises is not None:
            raise RAISES[self.raises]()


class FallsInTeardown(Falls):
    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._up(context)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self._down(context)


class FallsAfterYield(Falls):
    teardown_phase: ClassVar[str] = "yield_exit"

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[FallsAfterYield]:
        self._up(context)
        try:
            yield self
        finally:
            self._down(context)


class FallsInAsyncTeardown(Falls):
    async def setup_for_execution(self, context: InitResourceContext) -> None:
        await asyncio.sleep(0)
        self._up(context)

    async def teardown_after_execution(self, context: InitResourceContext) -> None:
        await asyncio.sleep(0)
        self._down(context)


class FallsAfterAsyncYield(Falls):
    teardown_phase: ClassVar[str] = "yield_exit"

    @contextlib.asynccontextmanager
    async def yield_for_execution(
        self, context: InitResourceContext
    ) -> AsyncIterator[FallsAfterAsyncYield]:
        await asyncio.sleep(0)
        self._up(context)
        try:
            yield self
        finally:
            await asyncio.sleep(0)
            self._down(context)


PLACEMENTS: dict[str, type[Falls]] = {
    "teardown_after_execution": FallsInTeardown,
    "after yield": FallsAfterYield,
    "async teardown_after_execution": FallsInAsyncTeardown,
    "after yield, async generator": FallsAfterAsyncYield,
}

KEYS = ["r0", "r1", "r2"]


@asset
def uses_all(r0: Any, r1: Any, r2: Any) -> str:
    """Brings r0, r1, r2 up in that order."""
    return "done"


@asset
def uses_two(r0: Any, r1: Any) -> str:
    return "done"


def _run_and_check(
    executor: Executor, record: str, placements: list[str], failing: int, kind: str
) -> None:
    """Run with resources placed as given, the one at ``failing`` raising ``kind`` in its
    teardown; check what the records and the result must show."""
    name, config = executor
    keys = KEYS[: len(placements)]
    resources = {
        key: PLACEMENTS[placement](
            record=record, label=key, raises=kind if i == failing else None
        )
        for i, (key, placement) in enumerate(zip(keys, placements, strict=True))
    }
    target = uses_all if len(keys) == 3 else uses_two
    with pytest.raises(RunFailure) as info:
        run_assets([target], resources, executor=name, executor_config=config)
    # The caller's process is here to tell: nothing the teardown raised reached it.
    result: RunResult = info.value.result

    assert result.success is False
    assert result.outputs == {target.key: "done"}
    assert result.failures == {}
    records = read(record)
    order = check_lifecycle(records)
    (pid,) = order  # one process brought everything up
    assert order[pid] == keys
    downs = [r["label"] for r in records if r["event"] == "teardown"]
    assert downs == list(reversed(keys))  # each exactly once, in reverse order

    bad = keys[failing]
    cls = PLACEMENTS[placements[failing]]
    (error,) = result.resource_errors
    assert error.type == "host._errors.ResourceTeardownError"
    assert error.resource_key == bad
    assert f"resource {bad!r} (tests.test_teardown_faults.{cls.__qualname__})" in error.message
    assert f"failed to tear down in phase {cls.teardown_phase!r}" in error.message
    raised = RAISES[kind]()
    described = f"phase {cls.teardown_phase!r} in process {pid}: {type(raised).__name__}"
    assert described in error.message
    if not isinstance(raised, Exception):
        assert f"{type(raised).__name__} is not an Exception" in error.message
    cause = info.value.__cause__
    assert isinstance(cause, ResourceTeardownError)
    assert (cause.resource_key, cause.phase) == (bad, cls.teardown_phase)
    assert cause.resource_class == f"tests.test_teardown_faults.{cls.__qualname__}"
    assert type(cause.__cause__) is type(raised)  # the original, chained
    if name == "dask":  # the worker that tore down is still alive
        os.kill(pid, 0)


# -- in_process: the whole class, with hypothesis -------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    placements=st.lists(st.sampled_from(list(PLACEMENTS)), min_size=2, max_size=3),
    data=st.data(),
)
def test_any_teardown_failure_is_reported_and_the_rest_go_down_in_process(
    tmp_path_factory: pytest.TempPathFactory,
    kind: str,
    placements: list[str],
    data: st.DataObject,
) -> None:
    failing = data.draw(st.integers(0, len(placements) - 1), label="failing")
    record = str(tmp_path_factory.mktemp("teardown") / "records.jsonl")
    _run_and_check(("in_process", {}), record, placements, failing, kind)


# -- process executors: each exception type once by default, the whole product when slow ----

#: Each exception type once, with placements and failing positions rotating through.
SAMPLED = [
    pytest.param(
        kind,
        [list(PLACEMENTS)[(i + j) % len(PLACEMENTS)] for j in range(3)],
        i % 3,
        id=f"{kind}-r{i % 3}",
    )
    for i, kind in enumerate(KINDS)
]

PRODUCT = [
    pytest.param(kind, [placement] * 3, failing, id=f"{kind}-{placement}-r{failing}")
    for kind, placement, failing in itertools.product(KINDS, PLACEMENTS, range(3))
]

PROCESS_EXECUTORS = [
    pytest.param(("multiprocess", {"max_workers": 2}), id="multiprocess"),
    pytest.param("dask", id="dask"),
]


@pytest.fixture(params=PROCESS_EXECUTORS)
def process_executor(request: pytest.FixtureRequest) -> Executor:
    if request.param == "dask":
        return "dask", {"address": request.getfixturevalue("host_dask_address")}
    name, config = request.param
    return name, dict(config)


@pytest.mark.parametrize(("kind", "placements", "failing"), SAMPLED)
def test_any_teardown_failure_is_reported_in_a_worker(
    process_executor: Executor, record: str, kind: str, placements: list[str], failing: int
) -> None:
    _run_and_check(process_executor, record, placements, failing, kind)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "placements", "failing"), PRODUCT)
def test_any_teardown_failure_is_reported_in_a_worker_whole_product(
    process_executor: Executor, record: str, kind: str, placements: list[str], failing: int
) -> None:
    _run_and_check(process_executor, record, placements, failing, kind)


# -- what leaves the run, and what comes from outside, still goes on -------------------------


@asset
def interrupted(r0: Any, r1: Any) -> None:
    raise KeyboardInterrupt("the user pressed Ctrl-C")


def test_an_interrupt_leaving_the_run_goes_on_past_a_teardown_that_exits(record: str) -> None:
    """The run's KeyboardInterrupt goes on, not the SystemExit a teardown raised on the way."""
    resources = {
        "r0": FallsInTeardown(record=record, label="r0"),
        "r1": FallsAfterYield(record=record, label="r1", raises="SystemExit(3)"),
    }
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C"):
        run_assets([interrupted], resources)
    downs = [r["label"] for r in read(record) if r["event"] == "teardown"]
    assert downs == ["r1", "r0"]


class WaitsInTeardown(ConfigurableResource):
    """Its teardown writes a record, then waits (in Python code) until it is interrupted."""

    record: str

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label="waits")
        until = time.monotonic() + 60  # a hang guard: the test interrupts it long before
        while time.monotonic() < until:
            time.sleep(0.01)


def test_an_interrupt_sent_from_another_thread_ends_a_teardown(record: str) -> None:
    """A KeyboardInterrupt raised into the tearing-down thread from outside (as a Dask worker
    interrupts its run) is not the resource's own failure: it goes on."""
    outcome: list[BaseException | None] = []

    def tear_down() -> None:
        try:
            with open_resource(WaitsInTeardown(record=record)):
                pass
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=tear_down)
    thread.start()
    until = time.monotonic() + 30
    while not read(record) and time.monotonic() < until:
        time.sleep(0.01)
    assert read(record), "the teardown never started"
    assert thread.ident is not None
    interrupt_thread(thread.ident, KeyboardInterrupt)
    thread.join(30)
    assert not thread.is_alive()
    (exc,) = outcome
    assert isinstance(exc, KeyboardInterrupt)


# -- a teardown that catches its timeout's interruption and carries on -----------------------


class SwallowsInTeardown(ConfigurableResource):
    """Its teardown catches every interruption and goes on for ``seconds`` in all."""

    record: str
    label: str
    seconds: float = 1.0
    how: Literal["sync", "async"] = "sync"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.label)

    def teardown_after_execution(self, context: InitResourceContext) -> Any:
        if self.how == "async":
            return self._async_teardown(context)
        until = time.monotonic() + self.seconds
        while True:  # swallowing the interruption wherever it lands, on purpose
            try:
                while time.monotonic() < until:
                    time.sleep(0.01)
                break
            except BaseException:
                continue
        write(self.record, event="teardown", key=context.resource_key, label=self.label)
        return None

    async def _async_teardown(self, context: InitResourceContext) -> None:
        until = time.monotonic() + self.seconds
        while True:  # swallowing the cancellation (or the deadline) wherever it lands
            try:
                while time.monotonic() < until:
                    await asyncio.sleep(0.01)
                break
            except BaseException:
                continue
        write(self.record, event="teardown", key=context.resource_key, label=self.label)


class Plain(ConfigurableResource):
    record: str
    label: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.label)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label=self.label)


@asset
def uses_three(first: Any, swallows: Any, last: Any) -> str:
    return "done"


@pytest.mark.parametrize("how", ["sync", "async"])
@pytest.mark.parametrize(
    "executor",
    [
        pytest.param(("in_process", {}), id="in_process"),
        pytest.param(("multiprocess", {"max_workers": 1}), id="multiprocess"),
    ],
)
def test_a_teardown_that_swallows_its_timeout_is_reported(
    executor: Executor, record: str, how: Literal["sync", "async"]
) -> None:
    name, config = executor
    resources = {
        "first": Plain(record=record, label="first"),
        "swallows": SwallowsInTeardown(record=record, label="swallows", how=how),
        "last": Plain(record=record, label="last"),
    }
    result = run_assets(
        [uses_three],
        resources,
        executor=name,
        executor_config=config,
        raise_on_error=False,
        resource_timeouts={"swallows": {"teardown": 0.2}},
    )
    assert result.outputs == {"uses_three": "done"}
    assert not result.success
    (error,) = result.resource_errors
    assert error.type == "host._errors.ResourceTeardownError"
    assert error.resource_key == "swallows"
    assert "overran its teardown_timeout of 0.2 s" in error.message
    assert "tests.test_teardown_faults.SwallowsInTeardown" in error.message
    records = read(record)
    check_lifecycle(records)
    downs = [r["label"] for r in records if r["event"] == "teardown"]
    assert downs == ["last", "swallows", "first"]
