"""``ConfigurableResourceFactory`` / ``create_resource(context)``, ``ResourceDependency[T]``,
``get_resource_context()`` and ``with_replaced_resource_context``, as Dagster's docs use them,
through real runs on in-process and worker processes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import PrivateAttr

from host import (
    ConfigError,
    ConfigurableResource,
    ConfigurableResourceFactory,
    DefinitionError,
    InitResourceContext,
    ResourceDependency,
    asset,
    resource,
    run_assets,
)
from host.testing import build_init_resource_context, open_resource
from tests.recording import read, write


class Client:
    """A third-party client: not a resource, not configuration."""

    def __init__(self, token: str, made_in: int) -> None:
        self.token = token
        self.made_in = made_in


class ClientFactory(ConfigurableResourceFactory[Client]):
    record: str
    token: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label="factory")

    def create_resource(self, context: InitResourceContext) -> Client:
        write(self.record, event="create", key=context.resource_key, label="factory")
        return Client(self.token, context.pid)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label="factory")


@resource(config_schema={"prefix": str})
def prefixer(context: InitResourceContext) -> Any:
    prefix = context.resource_config["prefix"]
    yield lambda text: prefix + text


class Writer(ConfigurableResource):
    """A resource whose fields may hold any resource."""

    client: ResourceDependency[Client]
    prefix: ResourceDependency[Any]
    plain: ResourceDependency[int] = 0

    def describe(self) -> str:
        return f"{self.prefix(self.client.token)}:{self.plain}"


class Logged(ConfigurableResource):
    """Uses its context from its own methods."""

    label: str
    _calls: list[str] = PrivateAttr(default_factory=list)

    def whoami(self) -> str:
        context = self.get_resource_context()
        return f"{context.resource_key}@{context.run_id}"


@asset
def from_factory(client: Client) -> tuple[str, int]:
    return client.token, client.made_in


@asset
def from_writer(writer: Writer) -> str:
    return writer.describe()


@asset
def whoami(logged: Logged) -> str:
    return logged.whoami()


@pytest.mark.parametrize("executor_name", ["in_process", "multiprocess"])
def test_assets_receive_what_the_factory_creates_once_per_process(
    executor_name: str, record: str
) -> None:
    result = run_assets(
        [from_factory, from_writer],
        resources={
            "client": ClientFactory(record=record, token="t0k"),
            "writer": Writer(
                client=ClientFactory(record=record, token="dep"),
                prefix=prefixer.configured({"prefix": ">"}),
                plain=7,
            ),
        },
        executor=executor_name,
        executor_config={"max_workers": 2} if executor_name == "multiprocess" else None,
    )
    token, made_in = result.outputs["from_factory"]
    assert token == "t0k" and made_in > 0
    assert result.outputs["from_writer"] == ">dep:7"
    records = read(record)
    per_process = Counter((r["event"], r["key"], r["pid"]) for r in records)
    assert all(count == 1 for count in per_process.values())
    for _event, key, pid in per_process:
        assert per_process[("setup", key, pid)] == per_process[("teardown", key, pid)] == 1
        order = [r["event"] for r in records if r["key"] == key and r["pid"] == pid]
        assert order == ["setup", "create", "teardown"]


def test_a_factory_without_create_resource_fails_its_setup_saying_what_to_define() -> None:
    class Bare(ConfigurableResourceFactory[int]):
        pass

    @asset
    def takes(bare: Bare) -> int:
        return bare

    result = run_assets([takes], resources={"bare": Bare()}, raise_on_error=False)
    assert "create_resource" in result.failures["takes"].message


def test_factory_launch_config_validates_like_construction(record: str) -> None:
    factory = ClientFactory(record=record, token="a")
    assert factory.host_with_launch_config({"token": "b"}).token == "b"
    with pytest.raises(ConfigError):
        factory.host_with_launch_config({"token": 3})


def test_get_resource_context_in_a_run_and_replaced() -> None:
    result = run_assets([whoami], resources={"logged": Logged(label="x")}, run_id="run-42")
    assert result.outputs["whoami"] == "logged@run-42"
    with pytest.raises(DefinitionError, match="with_replaced_resource_context"):
        Logged(label="x").whoami()
    replaced = Logged(label="x").with_replaced_resource_context(
        build_init_resource_context(resource_key="mine", run_id="r1")
    )
    assert replaced.whoami() == "mine@r1"
    with open_resource(Logged(label="y"), key="opened") as up:
        assert up.whoami().startswith("opened@")


class WriterConfig(ConfigurableResource):
    """Dagster's docs: a ``ConfigurableResource`` that only models configuration and vends a
    pre-existing class from ``create_resource``."""

    record: str
    prefix: str

    def create_resource(self, context: InitResourceContext) -> Client:
        write(self.record, event="create", key=context.resource_key, label="writer")
        return Client(self.prefix, context.pid)


@asset
def vended(writer: Any) -> str:
    return type(writer).__name__ + ":" + writer.token


@pytest.mark.parametrize("executor_name", ["in_process", "multiprocess"])
def test_a_configurable_resource_with_create_resource_vends_that_object(
    executor_name: str, record: str
) -> None:
    result = run_assets(
        [vended],
        resources={"writer": WriterConfig(record=record, prefix="a_prefix")},
        executor=executor_name,
    )
    assert result.outputs == {"vended": "Client:a_prefix"}
    assert [r["event"] for r in read(record)] == ["create"]
    with open_resource(WriterConfig(record=record, prefix="p"), key="writer") as given:
        assert isinstance(given, Client)
