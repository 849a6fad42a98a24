"""Direct invocation for unit tests: ``build_asset_context`` and calling an asset, as in Dagster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import PrivateAttr

from host import (
    AssetExecutionContext,
    ConfigError,
    ConfigurableResource,
    DefinitionError,
    InitResourceContext,
    ResourceSetupError,
    asset,
    build_asset_context,
)
from tests import recording
from tests.dagster_compat.asset_side import GreetingConfig, Store, from_context, greeting
from tests.recording import Recorded, write


class AsyncRecorded(ConfigurableResource):
    """Comes up and goes down in async code, on the loop that runs it."""

    record: str
    label: str
    _loop: Any = PrivateAttr(default=None)

    @contextlib.asynccontextmanager
    async def yield_for_execution(self, context: InitResourceContext) -> AsyncIterator[Any]:
        self._loop = asyncio.get_running_loop()
        write(self.record, event="setup", key=context.resource_key, label=self.label, run="")
        try:
            yield self
        finally:
            await asyncio.sleep(0)
            write(self.record, event="teardown", key=context.resource_key, label=self.label,
                  run="")


def events(record: str) -> list[str]:
    return [r["event"] for r in recording.read(record) if r["event"] != "up"]


@asset
def takes_db(db: Recorded) -> str:
    return str(db.use())


def test_a_call_with_a_built_context_brings_resources_up_for_the_call(record: str) -> None:
    context = build_asset_context(resources={"db": Recorded(record=record, label="db")})
    assert from_context(context) == "db"  # required_resource_keys, through context.resources
    assert takes_db(context) == "db"  # a resource parameter filled from the context
    assert events(record) == ["setup", "use", "teardown"] * 2


def test_resources_given_as_arguments_come_up_and_go_down(record: str) -> None:
    assert takes_db(db=Recorded(record=record, label="arg")) == "arg"
    assert events(record) == ["setup", "use", "teardown"]


def test_with_a_built_context_its_resources_are_up_for_the_block(record: str) -> None:
    with build_asset_context(resources={"db": Recorded(record=record, label="db")}) as context:
        assert context.resources.db.use() == "db"
        assert from_context(context) == "db"
        assert takes_db(context) == "db"
        assert events(record) == ["setup", "use", "use", "use"]
    assert events(record)[-1] == "teardown"
    assert events(record).count("setup") == 1


def test_outside_a_block_context_resources_gives_plain_objects_only(record: str) -> None:
    context = build_asset_context(
        resources={"db": Recorded(record=record, label="db"), "name": "plain"}
    )
    assert context.resources.name == "plain"
    with pytest.raises(RuntimeError, match=r"context.resources.db is a Recorded.*with "
                       r"build_asset_context"):
        context.resources.db  # noqa: B018
    assert recording.read(record) == []


def test_async_resources_come_up_on_the_awaiting_loop_for_an_async_asset(record: str) -> None:
    @asset
    async def reads(context: AssetExecutionContext, client: AsyncRecorded) -> bool:
        return client._loop is asyncio.get_running_loop() and context.resources.client is client

    async def main() -> bool:
        context = build_asset_context(resources={"client": AsyncRecorded(record=record,
                                                                         label="c")})
        result: bool = await reads(context)
        return result

    assert asyncio.run(main()) is True
    assert events(record) == ["setup", "teardown"]


def test_async_resources_for_a_sync_asset_and_async_with(record: str) -> None:
    @asset
    def reads(client: AsyncRecorded) -> str:
        return client.label

    assert reads(client=AsyncRecorded(record=record, label="c")) == "c"

    async def main() -> str:
        async with build_asset_context(
            resources={"client": AsyncRecorded(record=record, label="d")}
        ) as context:
            return str(context.resources.client.label)

    assert asyncio.run(main()) == "d"
    assert events(record) == ["setup", "teardown"] * 2


def test_config_parameters_of_a_direct_call() -> None:
    assert greeting(config=GreetingConfig(person_name="Ann")) == "hello, Ann"
    context = build_asset_context(asset_config={"person_name": "Bo", "times": 2})
    assert greeting(context) == "hello, Bo hello, Bo"
    missing = r"(?s)asset 'greeting'.*person_name: Field required.*greeting\(config="
    with pytest.raises(ConfigError, match=missing):
        greeting()


def test_partial_resources_and_resources_config_in_a_built_context(record: str) -> None:
    @asset
    def described(store: Store) -> str:
        return store.describe()

    context = build_asset_context(
        resources={"store": Store.partial(record=record)},
        resources_config={"store": {"label": "launched"}},
    )
    assert described(context) == "launched/silver/eu1"
    with pytest.raises(ConfigError, match=r"resource 'store'.*field 'label'"):
        build_asset_context(resources={"store": Store.partial(record=record)})


def test_a_parameter_given_nowhere_and_a_missing_required_key_are_definition_errors(
    record: str,
) -> None:
    context = build_asset_context(resources={"other": "plain"})
    with pytest.raises(DefinitionError, match=r"asset 'takes_db'.*parameter 'db' is not given"):
        takes_db(context)
    with pytest.raises(DefinitionError, match=r"requires resource 'db'"):
        from_context(context)
    # a resource of the parameter's class under another key is found by its annotation
    context = build_asset_context(resources={"other": Recorded(record=record, label="o")})
    assert takes_db(context) == "o"


def test_a_resource_that_fails_to_come_up_leaves_nothing_up(record: str) -> None:
    context = build_asset_context(
        resources={
            "first": Recorded(record=record, label="first"),
            "db": Recorded(record=record, label="db", fail_setup=True),
        }
    )
    with pytest.raises(ResourceSetupError, match="'db'"):
        takes_db(context)
    records = recording.read(record)
    assert [(r["label"], r["event"]) for r in records if r["event"] != "up"] == [
        ("first", "setup"), ("db", "setup"), ("first", "teardown")
    ]


class Own(BaseException):
    """A BaseException of the asset's own."""


@settings(max_examples=20, deadline=None)
@given(
    error=st.sampled_from(
        [ValueError, KeyError, RuntimeError, AssertionError, KeyboardInterrupt, SystemExit,
         GeneratorExit, Own]
    ),
    use_with=st.booleans(),
)
def test_whatever_the_asset_raises_its_resources_go_down_and_the_error_propagates(
    tmp_path_factory: pytest.TempPathFactory, error: type[BaseException], use_with: bool
) -> None:
    """Over exception types (Exceptions, interrupts, BaseExceptions of its own), raised by an
    asset called directly or inside a ``with`` block: the error reaches the caller, and every
    resource that came up went down once."""
    record = str(tmp_path_factory.mktemp("raises") / "r.jsonl")

    @asset
    def raising(db: Recorded, other: Recorded) -> None:
        db.use()
        raise error("from the asset")

    resources = {"db": Recorded(record=record, label="db"),
                 "other": Recorded(record=record, label="other")}
    with pytest.raises(error):
        if use_with:
            with build_asset_context(resources=resources) as context:
                raising(context)
        else:
            raising(build_asset_context(resources=resources))
    records = recording.read(record)
    assert recording.counts(records, "setup") == recording.counts(records, "teardown")
    assert sum(recording.counts(records, "teardown").values()) == 2
