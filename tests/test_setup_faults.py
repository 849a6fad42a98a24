"""A setup that raises a non-``Exception`` of its own is that resource's setup failure.

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


@pytest.mark.parametrize(
    ("kind", "placement"),
    list(zip(sorted(RAISES), [*sorted(PLACEMENTS), "setup_for_execution"], strict=True)),
)
def test_a_setup_raising_a_base_exception_is_its_setup_failure_in_workers(
    executor: tuple[str, dict[str, Any]], record: str, kind: str, placement: str
) -> None:
    name, config = executor
    if name == "in_process":
        pytest.skip("covered by the property test above")
    _check(_run(record, kind, placement, name, config), record, kind)
