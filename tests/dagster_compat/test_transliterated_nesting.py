"""Dagster's nested-resource tests (``pythonic_resources/test_nesting.py``), run on host.

Resources typed with other resources, shared nested resources, nested resources configured at
launch, function resources and plain values as ``ResourceDependency`` fields, optional nested
resources and the lifecycle of an inner resource.
"""

from __future__ import annotations

import contextlib
import enum
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, Optional

import pytest

from host import (
    ConfigurableResource,
    ConfigurableResourceFactory,
    DefinitionError,
    InitResourceContext,
    ResourceDependency,
    ResourceParam,
    asset,
    resource,
    run_assets,
)


def _launch(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"resources": {key: {"config": config} for key, config in resources.items()}}


def test_a_resource_field_typed_with_an_abstract_resource_takes_any_subclass() -> None:
    written: list[str] = []

    class Sink(ConfigurableResource, ABC):
        @abstractmethod
        def put(self, text: str) -> None: ...

    class PlainSink(Sink):
        def put(self, text: str) -> None:
            written.append(text)

    class TaggedSink(Sink):
        tag: str

        def put(self, text: str) -> None:
            written.append(f"{self.tag}{text}")

    class JsonSink(Sink):
        inner: Sink
        indent: int

        def put(self, text: Any) -> None:
            self.inner.put(json.dumps(text, indent=self.indent))

    @asset
    def dumped(sink: JsonSink) -> None:
        sink.put({"a": "b"})

    assert run_assets([dumped], {"sink": JsonSink(indent=2, inner=PlainSink())}).success
    assert written == ['{\n  "a": "b"\n}']
    written.clear()
    assert run_assets([dumped], {"sink": JsonSink(indent=2, inner=TaggedSink(tag="t: "))}).success
    assert written == ['t: {\n  "a": "b"\n}']


class Credentials(ConfigurableResource):
    username: str
    password: str


class Bucket(ConfigurableResource):
    credentials: Credentials
    bucket_name: str


class Machines(ConfigurableResource):
    credentials: Credentials


@asset
def both(s3: Bucket, ec2: Machines) -> tuple[str, ...]:
    return (s3.credentials.username, s3.credentials.password, s3.bucket_name,
            ec2.credentials.username, ec2.credentials.password)


def test_one_nested_resource_used_by_two_resources() -> None:
    credentials = Credentials(username="foo", password="bar")
    result = run_assets([both], {"s3": Bucket(bucket_name="b", credentials=credentials),
                                 "ec2": Machines(credentials=credentials)})
    assert result.outputs["both"] == ("foo", "bar", "b", "foo", "bar")


@pytest.mark.parametrize("key", ["aws_credentials", "random_key"])
def test_a_nested_resource_configured_at_launch_under_any_key(key: str) -> None:
    credentials = Credentials.configure_at_launch()
    result = run_assets(
        [both],
        {key: credentials, "s3": Bucket(bucket_name="b", credentials=credentials),
         "ec2": Machines(credentials=credentials)},
        run_config=_launch(**{key: {"username": "foo", "password": "bar"}}),
    )
    assert result.outputs["both"] == ("foo", "bar", "b", "foo", "bar")


class DbSettings(ConfigurableResource):
    creds: Credentials
    host: str
    database: str


class Db(ConfigurableResource):
    settings: DbSettings


@asset
def db_seen(db: Db) -> tuple[str, ...]:
    return (db.settings.creds.username, db.settings.creds.password, db.settings.host,
            db.settings.database)


def test_two_levels_of_nested_resources_configured_at_launch() -> None:
    credentials = Credentials.configure_at_launch()
    settings = DbSettings.configure_at_launch(creds=credentials)
    result = run_assets(
        [db_seen],
        {"credentials": credentials, "db_settings": settings, "db": Db(settings=settings)},
        run_config=_launch(credentials={"username": "foo", "password": "bar"},
                           db_settings={"host": "localhost", "database": "my_db"}),
    )
    assert result.outputs["db_seen"] == ("foo", "bar", "localhost", "my_db")


def test_an_inner_launch_resource_under_a_configured_middle_one() -> None:
    credentials = Credentials.configure_at_launch()
    settings = DbSettings(creds=credentials, host="localhost", database="my_db")
    result = run_assets(
        [db_seen],
        {"credentials": credentials, "db": Db(settings=settings)},
        run_config=_launch(credentials={"username": "foo", "password": "bar"}),
    )
    assert result.outputs["db_seen"] == ("foo", "bar", "localhost", "my_db")


def _postfix_factory() -> type[ConfigurableResourceFactory[Callable[[str], None]]]:
    class PostfixWriter(ConfigurableResourceFactory[Callable[[str], None]]):
        writer: ResourceDependency[Callable[[str], None]]
        postfix: str

        def create_resource(self, context: InitResourceContext) -> Callable[[str], None]:
            def write(text: str) -> None:
                self.writer(f"{text}{self.postfix}")

            return write

    return PostfixWriter


@asset
def writes(writer: ResourceParam[Callable[[str], None]]) -> None:
    writer("foo")
    writer("bar")


def test_a_function_resource_as_a_factory_dependency() -> None:
    written: list[str] = []

    @resource
    def base(context: InitResourceContext) -> Callable[[str], None]:
        return written.append

    assert run_assets([writes], {"writer": _postfix_factory()(writer=base, postfix="!")}).success
    assert written == ["foo!", "bar!"]


def test_a_configured_function_resource_as_a_factory_dependency() -> None:
    written: list[str] = []

    @resource(config_schema={"prefix": (str, "")})
    def base(context: InitResourceContext) -> Callable[[str], None]:
        prefix = context.resource_config["prefix"]
        return lambda text: written.append(f"{prefix}{text}")

    factory = _postfix_factory()
    assert run_assets([writes], {"writer": factory(writer=base, postfix="!")}).success
    assert written == ["foo!", "bar!"]
    written.clear()
    assert run_assets(
        [writes], {"writer": factory(writer=base.configured({"prefix": "msg: "}), postfix="!")}
    ).success
    assert written == ["msg: foo!", "msg: bar!"]


def _needs_prefix(written: list[str]) -> Any:
    @resource(config_schema={"prefix": str})
    def base(context: InitResourceContext) -> Callable[[str], None]:
        prefix = context.resource_config["prefix"]
        return lambda text: written.append(f"{prefix}{text}")

    return base


def test_a_nested_function_resource_needing_launch_config_but_bound_to_no_key() -> None:
    written: list[str] = []
    with pytest.raises(DefinitionError, match=r"top.level"):
        run_assets([writes], {"writer": _postfix_factory()(writer=_needs_prefix(written),
                                                              postfix="!")})
    assert written == []


def test_a_nested_function_resource_bound_to_a_key_gets_its_launch_config() -> None:
    written: list[str] = []
    base = _needs_prefix(written)
    result = run_assets(
        [writes], {"base_writer": base, "writer": _postfix_factory()(writer=base, postfix="!")},
        run_config=_launch(base_writer={"prefix": "msg: "}),
    )
    assert result.success
    assert written == ["msg: foo!", "msg: bar!"]


def test_a_resource_dependency_takes_a_function_resource_or_a_plain_value() -> None:
    class Holder(ConfigurableResource):
        a_string: ResourceDependency[str]

    @resource
    def foo_string(context: InitResourceContext) -> str:
        return "foo"

    @asset
    def held(holder: Holder) -> str:
        return holder.a_string

    assert run_assets([held], {"holder": Holder(a_string=foo_string)}).outputs["held"] == "foo"
    assert run_assets([held], {"holder": Holder(a_string="foo")}).outputs["held"] == "foo"


class Letter(enum.Enum):
    A = "a_value"
    B = "b_value"


class WithLetter(ConfigurableResource):
    letter: Letter


class AroundLetter(ConfigurableResource):
    inner: WithLetter


@asset
def letter_value(outer: AroundLetter) -> str:
    return outer.inner.letter.value


def test_an_enum_in_a_nested_resource() -> None:
    result = run_assets([letter_value], {"outer": AroundLetter(inner=WithLetter(letter=Letter.A))})
    assert result.outputs["letter_value"] == "a_value"


def test_an_enum_in_a_nested_resource_given_at_launch_by_name() -> None:
    inner = WithLetter.configure_at_launch()
    result = run_assets([letter_value], {"inner": inner, "outer": AroundLetter(inner=inner)},
                        run_config=_launch(inner={"letter": "B"}))
    assert result.outputs["letter_value"] == "b_value"


class Innermost(ConfigurableResource):
    a_string: str = "foo"


class Inner(ConfigurableResource):
    innermost: Optional[Innermost]  # noqa: UP045 - Dagster's spelling, kept on purpose


class Outer(ConfigurableResource):
    inner: Optional[Inner]  # noqa: UP045


class Main(ConfigurableResource):
    outer: Optional[Outer]  # noqa: UP045


@asset
def deepest(main: Main) -> str | None:
    if main.outer and main.outer.inner and main.outer.inner.innermost:
        return main.outer.inner.innermost.a_string
    return None


@pytest.mark.parametrize(
    "main",
    [Main(outer=None), Main(outer=Outer(inner=None)),
     Main(outer=Outer(inner=Inner(innermost=None)))],
    ids=["outer-none", "inner-none", "innermost-none"],
)
def test_optional_nested_resources_may_be_none_at_any_depth(main: Main) -> None:
    assert run_assets([deepest], {"main": main}).outputs["deepest"] is None


def test_optional_nested_resources_given_all_the_way_down() -> None:
    main = Main(outer=Outer(inner=Inner(innermost=Innermost(a_string="bar"))))
    assert run_assets([deepest], {"main": main}).outputs["deepest"] == "bar"


def test_an_inner_resource_is_set_up_before_and_torn_down_after_the_asset() -> None:
    log: list[str] = []

    class Lifecycle(ConfigurableResource):
        def setup_for_execution(self, context: InitResourceContext) -> None:
            log.append("setup")

        def teardown_after_execution(self, context: InitResourceContext) -> None:
            log.append("teardown")

    class Boring(ConfigurableResource):
        inner: ResourceDependency[Lifecycle]

    @asset
    def uses(outer: Boring) -> str:
        log.append("asset")
        return "foo"

    assert run_assets([uses], {"outer": Boring(inner=Lifecycle())}).success
    assert log == ["setup", "asset", "teardown"]


def test_an_inner_resource_with_yield_for_execution_wraps_the_asset() -> None:
    log: list[str] = []

    class Yielding(ConfigurableResource):
        @contextlib.contextmanager
        def yield_for_execution(self, context: InitResourceContext) -> Iterator[Yielding]:
            log.append("enter")
            yield self
            log.append("exit")

    class Boring(ConfigurableResource):
        inner: ResourceDependency[Yielding]

    @asset
    def uses(outer: Boring) -> str:
        log.append("asset")
        return "foo"

    assert run_assets([uses], {"outer": Boring(inner=Yielding())}).success
    assert log == ["enter", "asset", "exit"]


def test_nested_launch_resources_whose_fields_all_have_defaults_are_overridden_at_launch() -> None:
    class DefaultCreds(ConfigurableResource):
        username: str = "default_username"
        password: str = "default_password"

    class DefaultSettings(ConfigurableResource):
        creds: DefaultCreds
        host: str = "default_host"
        database: str = "default_database"

    class Top(ConfigurableResource):
        settings: DefaultSettings

    @asset
    def top_seen(db: Top) -> tuple[str, ...]:
        return (db.settings.creds.username, db.settings.creds.password, db.settings.host,
                db.settings.database)

    credentials = DefaultCreds.configure_at_launch()
    settings = DefaultSettings.configure_at_launch(creds=credentials)
    result = run_assets(
        [top_seen],
        {"credentials": credentials, "db_settings": settings, "db": Top(settings=settings)},
        run_config=_launch(credentials={"username": "foo", "password": "bar"},
                           db_settings={"host": "localhost", "database": "my_db"}),
    )
    assert result.outputs["top_seen"] == ("foo", "bar", "localhost", "my_db")
