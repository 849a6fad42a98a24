"""Dagster resource code that host got wrong, found by porting Dagster's own resource tests and
documentation snippets (changing only the imports): each form of the same fault is tried, not
only the one that was found, and the lifecycle is read from records the resources write."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from host import (
    AssetExecutionContext,
    ConfigError,
    ConfigurableResource,
    ConfigurableResourceFactory,
    DefinitionError,
    IAttachDifferentObjectToOpContext,
    InitResourceContext,
    ResourceDependency,
    asset,
    build_asset_context,
    build_init_resource_context,
    build_resources,
    configured,
    resource,
    run_assets,
)
from tests.recording import read, write

EXECUTORS = [
    pytest.param({}, id="in_process"),
    pytest.param(
        {"executor": "multiprocess", "executor_config": {"max_workers": 1}}, id="multiprocess"
    ),
]

# -- create_resource and @resource functions that yield, in each form ---------------------------


class Client:
    def __init__(self, record: str) -> None:
        self.record = record

    def use(self) -> str:
        write(self.record, event="use", key="", label="client")
        return "used"


def _gen(record: str) -> Iterator[Client]:
    write(record, event="setup", key="", label="client")
    yield Client(record)
    write(record, event="teardown", key="", label="client")


async def _agen(record: str) -> AsyncIterator[Client]:
    write(record, event="setup", key="", label="client")
    yield Client(record)
    write(record, event="teardown", key="", label="client")


#: The forms a resource's code may give its object in: what the function returns when called.
FORMS: dict[str, Callable[[str], Any]] = {
    "generator": _gen,
    "async generator": _agen,
    "contextmanager": contextlib.contextmanager(_gen),
    "asynccontextmanager": contextlib.asynccontextmanager(_agen),
}


class YieldingFactory(ConfigurableResourceFactory[Client]):
    record: str
    form: str

    def create_resource(self, context: InitResourceContext) -> Any:
        return FORMS[self.form](self.record)


@resource(config_schema={"record": str, "form": str})
def yielding_function(context: InitResourceContext) -> Any:
    return FORMS[context.resource_config["form"]](context.resource_config["record"])


@asset
def uses_client(client: Any) -> str:
    result: str = client.use()
    return result


def _events(record: Path) -> list[str]:
    return [r["event"] for r in read(record)]


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("run", EXECUTORS)
@pytest.mark.parametrize("kind", ["create_resource", "@resource"])
def test_what_yields_its_resource_is_entered_for_the_run_and_left_after(
    kind: str, form: str, run: dict[str, Any], tmp_path: Path
) -> None:
    record = tmp_path / "records.jsonl"
    client: Any = (
        YieldingFactory(record=str(record), form=form)
        if kind == "create_resource"
        else yielding_function.configured({"record": str(record), "form": form})
    )
    result = run_assets([uses_client], {"client": client}, **run)
    assert result.outputs == {"uses_client": "used"}
    assert _events(record) == ["setup", "use", "teardown"]
    assert len({r["pid"] for r in read(record)}) == 1  # all in the process that ran the asset


@resource
@contextlib.contextmanager
def cm_resource(context: InitResourceContext) -> Iterator[str]:
    write(context.resource_config["record"], event="setup", key="", label="cm")
    yield "from the cm"
    write(context.resource_config["record"], event="teardown", key="", label="cm")


class Outer(ConfigurableResource):
    inner: ResourceDependency[str]


def test_a_contextmanager_resource_as_a_dependency_gives_what_it_yields(tmp_path: Path) -> None:
    record = str(tmp_path / "records.jsonl")

    @resource(config_schema={"record": str})
    @contextlib.contextmanager
    def inner(context: InitResourceContext) -> Iterator[str]:
        write(context.resource_config["record"], event="setup", key="", label="inner")
        yield "from the cm"
        write(context.resource_config["record"], event="teardown", key="", label="inner")

    @asset
    def both(outer: Outer) -> str:
        return outer.inner

    result = run_assets([both], {"outer": Outer(inner=inner.configured({"record": record}))})
    assert result.outputs == {"both": "from the cm"}
    assert [r["event"] for r in read(record)] == ["setup", "teardown"]


def test_a_context_manager_given_as_the_resource_itself_is_not_entered() -> None:
    lock = __import__("threading").Lock()

    @resource
    def a_lock(_: InitResourceContext) -> Any:
        return lock  # a context manager, but the object assets are meant to receive

    @asset
    def takes(a_lock: Any) -> bool:
        return a_lock is lock and not lock.locked()

    assert run_assets([takes], {"a_lock": a_lock}).outputs == {"takes": True}


# -- typing, aliases, forward references --------------------------------------------------------


def test_configurable_resource_takes_a_type_parameter_and_stays_its_own_value() -> None:
    class Token(ConfigurableResource[str]):
        value: str = "t"

    @asset
    def shown(token: Token) -> str:
        return type(token).__name__ + ":" + token.value

    assert run_assets([shown], {"token": Token()}).outputs == {"shown": "Token:t"}
    assert ConfigurableResource[int] is ConfigurableResource


class Aliased(ConfigurableResource):
    prefix_: str = Field(alias="prefix")


@pytest.mark.parametrize("name", ["prefix", "prefix_"])
def test_a_field_alias_is_a_name_launch_config_may_use(name: str) -> None:
    @asset
    def greet(writer: Aliased) -> str:
        return writer.prefix_ + "hello"

    result = run_assets(
        [greet],
        {"writer": Aliased.configure_at_launch()},
        run_config={"resources": {"writer": {"config": {name: "> "}}}},
    )
    assert result.outputs == {"greet": "> hello"}
    assert run_assets([greet], {"writer": Aliased.partial(**{name: "- "})}).outputs == {
        "greet": "- hello"
    }
    with pytest.raises(ConfigError, match="'prefx'"):
        run_assets(
            [greet],
            {"writer": Aliased.configure_at_launch()},
            run_config={"resources": {"writer": {"config": {"prefx": "> "}}}},
        )


def test_a_forward_reference_to_a_resource_defined_later_in_a_function() -> None:
    class Holds(ConfigurableResource):
        inner: ResourceDependency["Defined"]  # noqa: UP037 - Dagster's form: defined below

    class Defined(ConfigurableResource):
        n: int = 3

    @asset
    def n(holds: Holds) -> int:
        return holds.inner.n

    assert run_assets([n], {"holds": Holds(inner=Defined())}).outputs == {"n": 3}


# -- direct invocation and the context's resources ----------------------------------------------


class Num(ConfigurableResource):
    num: int


def test_resources_given_as_arguments_are_in_context_resources() -> None:
    @asset
    def add(context: AssetExecutionContext, first: Num, second: Num) -> int:
        return context.resources.first.num + context.resources.second.num + first.num

    assert add(build_asset_context(), Num(num=1), Num(num=2)) == 4
    assert add(context=build_asset_context(), second=Num(num=2), first=Num(num=1)) == 4
    with pytest.raises(DefinitionError, match="'first' is given both"):
        add(context=build_asset_context(resources={"first": Num(num=1)}), first=Num(num=1),
            second=Num(num=2))


class Raw:
    def ping(self) -> str:
        return "pong"


class Attaching(ConfigurableResource, IAttachDifferentObjectToOpContext):
    def get_object_to_set_on_execution_context(self) -> Raw:
        return Raw()


def test_an_attached_object_is_what_context_resources_gives() -> None:
    @asset(required_resource_keys={"client"})
    def old_style(context: AssetExecutionContext) -> str:
        result: str = context.resources.client.ping()
        return result

    @asset
    def new_style(client: Attaching) -> str:
        return type(client).__name__

    result = run_assets([old_style, new_style], {"client": Attaching()})
    assert result.outputs == {"old_style": "pong", "new_style": "Attaching"}
    assert old_style(build_asset_context(resources={"client": Attaching()})) == "pong"


class Wanted(ConfigurableResource):
    a: str = "a"


class Other(ConfigurableResource):
    b: int = 1


class MakesWanted(ConfigurableResourceFactory[Wanted]):  # vends another object: not checked
    def create_resource(self, context: InitResourceContext) -> Wanted:
        return Wanted(a="made")


def test_a_resource_of_the_wrong_class_is_refused_before_the_asset_runs() -> None:
    ran: list[str] = []

    @asset
    def needs(wanted: Wanted) -> None:
        ran.append("ran")

    with pytest.raises(DefinitionError, match=r"annotated .*Wanted.* of type .*Other"):
        run_assets([needs], {"wanted": Other()})
    with pytest.raises(DefinitionError, match=r"annotated .*Wanted.*Other"):
        needs(wanted=Other())
    with pytest.raises(DefinitionError, match=r"annotated .*Wanted.*Other"):
        needs(build_asset_context(resources={"wanted": Other()}))
    assert ran == []

    @asset
    def made(wanted: Wanted) -> str:
        return wanted.a

    assert run_assets([made], {"wanted": MakesWanted()}).outputs == {"made": "made"}


# -- Dagster names ------------------------------------------------------------------------------


class Param(ConfigurableResource):
    resource_param: str


def test_configured_decorates_a_config_mapping() -> None:
    @configured(Param)
    def preset(_: Any) -> dict[str, Any]:
        return {"resource_param": "foo"}

    @resource(config_schema={"resource_param": str})
    def legacy(context: InitResourceContext) -> str:
        return str(context.resource_config["resource_param"])

    @configured(legacy)
    def legacy_preset(_: Any) -> dict[str, Any]:
        return {"resource_param": "bar"}

    @asset
    def both(preset: Param, legacy_preset: str) -> str:
        return preset.resource_param + legacy_preset

    assert isinstance(preset, Param)
    result = run_assets([both], {"preset": preset, "legacy_preset": legacy_preset})
    assert result.outputs == {"both": "foobar"}
    assert result.output_for_node("both") == "foobar"
    with pytest.raises(DefinitionError, match="partial"):
        configured(Param, {"x": str})
    with pytest.raises(ConfigError, match="resource_param") as info:
        configured(Param)(lambda _: {"resource_param": 12345})
    assert "12345" not in str(info.value)  # a value is never shown: it may be a secret
    with pytest.raises(KeyError, match="not an asset of this run"):
        result.output_for_node("nothing")


def test_build_resources_brings_them_up_for_the_block(tmp_path: Path) -> None:
    record = tmp_path / "records.jsonl"

    with build_resources(
        {"client": YieldingFactory.configure_at_launch(), "plain": "as it is"},
        resource_config={"client": {"config": {"record": str(record), "form": "generator"}}},
    ) as up:
        assert up.plain == "as it is"
        assert up.client.use() == "used"
        assert _events(record) == ["setup", "use"]
    assert _events(record) == ["setup", "use", "teardown"]
    with pytest.raises(DefinitionError, match="'nope'"):
        build_resources({}, resource_config={"nope": {"config": {}}})


def test_with_resource_context_is_with_replaced_resource_context() -> None:
    class Uses(ConfigurableResource):
        def key(self) -> str:
            return self.get_resource_context().resource_key

    context = build_init_resource_context(resource_key="mine")
    assert Uses().with_resource_context(context).key() == "mine"
