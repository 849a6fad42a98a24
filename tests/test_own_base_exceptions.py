"""A ``BaseException`` that user code raises on its own is a failure, never an interrupt.

Only ``KeyboardInterrupt``, the host's own signal exit and a run's deadline end a run
(``host._errors.is_interrupt``; ``tests/test_signals.py``, ``tests/test_timeouts.py``). Anything
else that an asset or a resource's setup raises, ``Exception`` or not, is that asset's or that
resource's failure, the same on every executor:

An asset raising ``sys.exit()``, ``GeneratorExit``, ``asyncio.CancelledError`` (also from
awaiting a cancelled task), a ``BaseException`` of its own, or an exception whose ``__str__``
raises one of those: the asset fails with it, its downstream assets are skipped, every other
asset runs, every resource goes down.

A setup that raises a non-``Exception`` of its own is that resource's setup failure.

``sys.exit()``, ``SystemExit`` with any code, ``GeneratorExit`` or a ``BaseException`` of the
resource's own, raised by its setup code (``setup_for_execution``, the code before ``yield`` in
``yield_for_execution``, sync or async): the resource fails to come up with a
:class:`host.ResourceSetupError` naming it (not torn down, not tried again in that process),
the assets needing it fail, the others run, and neither the caller's process nor a worker goes
down with it. ``KeyboardInterrupt`` stays an interrupt of the run (``tests/test_signals.py``).
Checked from the records the resources write themselves, on every executor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host import ConfigurableResource, InitResourceContext, asset, run_assets
from tests.graphs import make_asset
from tests.recording import Recorded, counts, read, write


class OwnBaseException(BaseException):
    """A BaseException of a resource's own (not an Exception)."""


RAISES: dict[str, Any] = {
    "SystemExit(0)": lambda: SystemExit(0),
    "SystemExit(3)": lambda: SystemExit(3),
    "SystemExit('text')": lambda: SystemExit("setup exits with a message"),
    "GeneratorExit": GeneratorExit,
    "OwnBaseException": lambda: OwnBaseException("a BaseException of its own"),
}


class FailsUp(ConfigurableResource):
    """Writes a ``setup`` record, then raises ``raises`` from its setup code."""

    record: str
    label: str
    raises: str

    def _fail(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.label)
        raise RAISES[self.raises]()


class FailsInSetup(FailsUp):
    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._fail(context)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label=self.label)


class FailsBeforeYield(FailsUp):
    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[FailsBeforeYield]:
        self._fail(context)
        yield self  # never reached


class FailsInAsyncSetup(FailsUp):
    async def setup_for_execution(self, context: InitResourceContext) -> None:
        await asyncio.sleep(0)
        self._fail(context)


class FailsBeforeAsyncYield(FailsUp):
    @contextlib.asynccontextmanager
    async def yield_for_execution(
        self, context: InitResourceContext
    ) -> AsyncIterator[FailsBeforeAsyncYield]:
        await asyncio.sleep(0)
        self._fail(context)
        yield self  # never reached


PLACEMENTS: dict[str, type[FailsUp]] = {
    "setup_for_execution": FailsInSetup,
    "before yield": FailsBeforeYield,
    "async setup_for_execution": FailsInAsyncSetup,
    "before yield, async generator": FailsBeforeAsyncYield,
}


@asset
def uses_bad_1(bad: FailsUp) -> str:
    return "never"


@asset
def uses_bad_2(bad: FailsUp) -> str:
    return "never"


@asset
def uses_good(good: Recorded) -> str:
    return good.use()


def _check(result: Any, record: str, kind: str) -> None:
    assert not result.success
    assert set(result.failures) == {"uses_bad_1", "uses_bad_2"}
    for key in ("uses_bad_1", "uses_bad_2"):
        error = result.failures[key]
        assert error.type == "host._errors.ResourceSetupError", error
        assert "'bad'" in error.message and type(RAISES[kind]()).__name__ in error.message
    assert result.outputs == {"uses_good": "good"}
    records = read(record)
    # Tried once per process that needed it, never torn down; the good one went down.
    assert all(n == 1 for n in counts(records, "setup").values())
    assert not [r for r in records if r["label"] == "bad" and r["event"] == "teardown"]
    assert counts(records, "up") == counts(records, "teardown")


def _run(record: str, kind: str, placement: str, name: str, config: dict[str, Any]) -> Any:
    resources = {
        "bad": PLACEMENTS[placement](record=record, label="bad", raises=kind),
        "good": Recorded(record=record, label="good"),
    }
    return run_assets(
        [uses_bad_1, uses_bad_2, uses_good],
        resources,
        executor=name,
        executor_config=config,
        raise_on_error=False,
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(sorted(RAISES)), placement=st.sampled_from(sorted(PLACEMENTS)))
def test_a_setup_raising_a_base_exception_is_its_setup_failure_in_process(
    tmp_path_factory: pytest.TempPathFactory, kind: str, placement: str
) -> None:
    record = str(tmp_path_factory.mktemp("setup") / "records.jsonl")
    _check(_run(record, kind, placement, "in_process", {}), record, kind)


#: (kind, placement) pairs for worker processes: each kind once, every placement.
WORKER_SETUPS = list(zip(sorted(RAISES), [*sorted(PLACEMENTS), "setup_for_execution"], strict=True))


def test_setups_raising_each_base_exception_are_their_setup_failures_in_workers(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    """One run per worker executor: a resource failing to come up with each kind (at its own
    placement), each needed by two assets, beside a resource that comes up."""
    name, config = executor
    if name == "in_process":
        pytest.skip("covered by the property test above")
    resources: dict[str, Any] = {"good": Recorded(record=record, label="good")}
    assets = [uses_good]
    for n, (kind, placement) in enumerate(WORKER_SETUPS):
        key = f"bad_{n}"
        resources[key] = PLACEMENTS[placement](record=record, label=key, raises=kind)
        assets += [make_asset(f"uses_{key}_{i}", resources=[key]) for i in (1, 2)]
    result = run_assets(
        assets, resources, executor=name, executor_config=config, raise_on_error=False
    )
    assert not result.success
    failing = {f"uses_bad_{n}_{i}" for n in range(len(WORKER_SETUPS)) for i in (1, 2)}
    assert set(result.failures) == failing
    for n, (kind, _) in enumerate(WORKER_SETUPS):
        for i in (1, 2):
            error = result.failures[f"uses_bad_{n}_{i}"]
            assert error.type == "host._errors.ResourceSetupError", error
            assert f"'bad_{n}'" in error.message, error
            assert type(RAISES[kind]()).__name__ in error.message, error
    assert result.outputs == {"uses_good": "good"}
    records = read(record)
    # Each tried once per process that needed it, never torn down; the good one went down.
    assert all(n == 1 for n in counts(records, "setup").values())
    assert {r["label"] for r in records if r["event"] == "setup"} >= {
        f"bad_{n}" for n in range(len(WORKER_SETUPS))
    }
    assert not [r for r in records if r["label"] != "good" and r["event"] == "teardown"]
    assert counts(records, "up") == counts(records, "teardown")


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "placement"), WORKER_SETUPS)
def test_a_setup_raising_a_base_exception_is_its_setup_failure_in_workers(
    executor: tuple[str, dict[str, Any]], record: str, kind: str, placement: str
) -> None:
    name, config = executor
    if name == "in_process":
        pytest.skip("covered by the property test above")
    _check(_run(record, kind, placement, name, config), record, kind)


class StrRaises(Exception):
    """An exception whose ``__str__`` raises ``raises``."""

    def __init__(self, raises: str) -> None:
        super().__init__(raises)
        self.raises = raises

    def __str__(self) -> str:
        raise ASSET_RAISES[self.raises]()


#: What an asset raises, by name -> the exception (a picklable name travels to workers).
ASSET_RAISES: dict[str, Any] = {
    **RAISES,
    "CancelledError": asyncio.CancelledError,
    "str raises SystemExit": lambda: StrRaises("SystemExit(3)"),
    "str raises OwnBaseException": lambda: StrRaises("OwnBaseException"),
}


class Plan(ConfigurableResource):
    """Tells the asset ``bad`` what to raise (a resource, so the plan reaches workers)."""

    raises: str


@asset
def bad(plan: Plan) -> str:
    raise ASSET_RAISES[plan.raises]()


@asset
async def bad_awaits_a_cancelled_task(plan: Plan) -> str:
    task = asyncio.ensure_future(asyncio.sleep(3600))
    task.cancel()
    await task  # raises CancelledError here, in the asset's own code
    return "never"


@asset
def after_bad(bad: str) -> str:
    return bad


@asset
def fine(store: Recorded) -> str:
    return store.use()


@asset
def after_fine(fine: str) -> str:
    return fine + "!"


def _run_assets(
    record: str, raises: str, name: str, config: dict[str, Any], awaits: bool = False
) -> Any:
    failing = bad_awaits_a_cancelled_task if awaits else bad
    return run_assets(
        [failing, after_bad, fine, after_fine] if not awaits else [failing, fine, after_fine],
        {"plan": Plan(raises=raises), "store": Recorded(record=record, label="store")},
        executor=name,
        executor_config=config,
        raise_on_error=False,
    )


def _check_assets(result: Any, record: str, failing: str, kind: str) -> None:
    assert not result.success
    assert set(result.failures) == {failing}
    error = result.failures[failing]
    assert error.type.rpartition(".")[2] == kind, error
    assert result.outputs == {"fine": "store", "after_fine": "store!"}
    assert set(result.skipped) <= {"after_bad"}
    records = read(record)
    assert counts(records, "up") == counts(records, "teardown") and counts(records, "up")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raises=st.sampled_from(sorted(ASSET_RAISES)))
def test_an_asset_raising_a_base_exception_fails_alone_in_process(
    tmp_path_factory: pytest.TempPathFactory, raises: str
) -> None:
    record = str(tmp_path_factory.mktemp("asset") / "records.jsonl")
    kind = type(ASSET_RAISES[raises]()).__name__
    _check_assets(_run_assets(record, raises, "in_process", {}), record, "bad", kind)


def _raising(name: str, raises: str) -> Any:
    """An asset ``name`` raising ``ASSET_RAISES[raises]`` (a closure: shipped by value)."""

    def compute() -> str:
        raise ASSET_RAISES[raises]()

    compute.__name__ = compute.__qualname__ = name
    return asset(compute)


def test_assets_raising_each_base_exception_fail_alone_in_workers(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    """One run per worker executor: an asset raising each kind, each with an asset downstream,
    beside assets that succeed."""
    name, config = executor
    if name == "in_process":
        pytest.skip("covered by the property test above")
    kinds = sorted(ASSET_RAISES)
    assets = [fine, after_fine]
    for n, raises in enumerate(kinds):
        assets += [_raising(f"bad_{n}", raises), make_asset(f"after_bad_{n}", [f"bad_{n}"])]
    result = run_assets(
        assets,
        {"store": Recorded(record=record, label="store")},
        executor=name,
        executor_config=config,
        raise_on_error=False,
    )
    assert not result.success
    assert set(result.failures) == {f"bad_{n}" for n in range(len(kinds))}
    for n, raises in enumerate(kinds):
        error = result.failures[f"bad_{n}"]
        assert error.type.rpartition(".")[2] == type(ASSET_RAISES[raises]()).__name__, error
    assert result.outputs == {"fine": "store", "after_fine": "store!"}
    assert set(result.skipped) == {f"after_bad_{n}" for n in range(len(kinds))}
    records = read(record)
    assert counts(records, "up") == counts(records, "teardown") and counts(records, "up")


@pytest.mark.slow
@pytest.mark.parametrize("raises", sorted(ASSET_RAISES))
def test_an_asset_raising_a_base_exception_fails_alone_in_workers(
    executor: tuple[str, dict[str, Any]], record: str, raises: str
) -> None:
    name, config = executor
    if name == "in_process":
        pytest.skip("covered by the property test above")
    kind = type(ASSET_RAISES[raises]()).__name__
    _check_assets(_run_assets(record, raises, name, config), record, "bad", kind)


def test_an_asset_awaiting_a_cancelled_task_fails_alone_on_every_executor(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    name, config = executor
    result = _run_assets(record, "GeneratorExit", name, config, awaits=True)
    _check_assets(result, record, "bad_awaits_a_cancelled_task", "CancelledError")
