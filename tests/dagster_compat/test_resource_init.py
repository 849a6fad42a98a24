"""Dagster's ways of bringing one resource up outside a run: ``from_resource_context`` /
``from_resource_context_cm`` (a function resource wrapping a resource class) and
``process_config_and_initialize`` / ``_cm``, proven by the records the resource writes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from host import (
    ConfigError,
    ConfigurableResource,
    DefinitionError,
    EnvVar,
    InitResourceContext,
    asset,
    resource,
    run_assets,
)
from host.testing import build_init_resource_context
from tests.recording import Recorded, read, write


class Held(ConfigurableResource):
    """Holds something open with an async yield_for_execution."""

    record: str

    @contextlib.asynccontextmanager
    async def yield_for_execution(self, context: InitResourceContext) -> AsyncIterator[Any]:
        write(self.record, event="setup", key=context.resource_key, label="held")
        yield "held-value"
        write(self.record, event="teardown", key=context.resource_key, label="held")


@resource(config_schema=Recorded.to_config_schema())
def wrapped(context: InitResourceContext) -> Any:
    with Recorded.from_resource_context_cm(context) as up:
        yield up


@asset
def label_of(wrapped: Recorded) -> str:
    return wrapped.label


def test_a_function_resource_wrapping_a_resource_class(record: str) -> None:
    result = run_assets(
        [label_of], resources={"wrapped": wrapped.configured({"record": record, "label": "w"})}
    )
    assert result.outputs["label_of"] == "w"
    assert [r["event"] for r in read(record)] == ["setup", "up", "teardown"]


class SetupOnly(ConfigurableResource):
    """A resource with a setup and no teardown: what ``from_resource_context`` is for."""

    record: str
    label: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.label)


def test_from_resource_context_sets_up_and_never_tears_down(record: str) -> None:
    context = build_init_resource_context(config={"record": record, "label": "ctx"})
    up = SetupOnly.from_resource_context(context)
    assert isinstance(up, SetupOnly) and up.label == "ctx"
    assert up.get_resource_context() is context
    assert [r["event"] for r in read(record)] == ["setup"]
    with pytest.raises(ConfigError) as caught:
        SetupOnly.from_resource_context(build_init_resource_context(config={"label": "x"}))
    assert caught.value.field == "record"


@pytest.mark.parametrize("cls", [Recorded, Held])
def test_from_resource_context_refuses_a_class_with_a_teardown(
    cls: type[ConfigurableResource], record: str
) -> None:
    """As Dagster does: its teardown would never run; the error says to use the _cm form."""
    context = build_init_resource_context(config={"record": record, "label": "ctx"})
    with pytest.raises(DefinitionError) as caught:
        cls.from_resource_context(context)
    assert "from_resource_context_cm" in str(caught.value)
    assert read(record) == []  # nothing was brought up


@pytest.mark.parametrize("cls", [Recorded, Held])
def test_process_config_and_initialize_reads_env_and_brings_up(
    cls: type[ConfigurableResource], record: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_INIT_RECORD", record)
    given: dict[str, Any] = {"record": EnvVar("HOST_INIT_RECORD")}
    if cls is Recorded:
        given["label"] = "p"
    resource_ = cls(**given)
    with resource_.process_config_and_initialize_cm() as value:
        assert [r["event"] for r in read(record)][-1] in {"up", "setup"}
        if cls is Held:
            assert value == "held-value"
    assert read(record)[-1]["event"] == "teardown"
    before = len(read(record))
    resource_.process_config_and_initialize()
    assert len(read(record)) > before and read(record)[-1]["event"] != "teardown"
