"""Dagster's ``EnvVar`` resource tests (``pythonic_resources/test_env_vars.py``), run on host.

``EnvVar`` in a field, inside lists and mappings, in nested resources and nested ``Config``,
beside an enum, in launch config, and an unset variable.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import pytest

from host import (
    Config,
    ConfigurableResource,
    EnvVar,
    EnvVarNotReadError,
    HostError,
    asset,
    run_assets,
)

UNSET = "HOST_TRANSLITERATED_UNSET_VARIABLE"


class WithString(ConfigurableResource):
    a_str: str


@asset
def the_string(a_resource: WithString) -> str:
    return a_resource.a_str


def test_an_env_var_field_is_read_in_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_T_ENV_FOR_TEST", "SOME_VALUE")
    declared = WithString(a_str=EnvVar("HOST_T_ENV_FOR_TEST"))
    result = run_assets([the_string], {"a_resource": declared})
    assert result.outputs["the_string"] == "SOME_VALUE"


def test_env_vars_inside_a_list_and_a_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_T_FOO", "hello")
    monkeypatch.setenv("HOST_T_BAR", "world")

    class WithCollections(ConfigurableResource):
        my_list: list[str]
        my_dict: Mapping[str, str]

    @asset
    def collected(a_resource: WithCollections) -> tuple[list[str], dict[str, str]]:
        return list(a_resource.my_list), dict(a_resource.my_dict)

    resource = WithCollections(
        my_list=[EnvVar("HOST_T_FOO"), EnvVar("HOST_T_BAR")],  # type: ignore[list-item]
        my_dict={"foo": EnvVar("HOST_T_FOO"), "bar": EnvVar("HOST_T_BAR")},  # type: ignore[dict-item]
    )
    result = run_assets([collected], {"a_resource": resource})
    assert result.outputs["collected"] == (["hello", "world"], {"foo": "hello", "bar": "world"})


class Prefixer(ConfigurableResource):
    prefix: str


@asset
def prefixed(writer: Prefixer) -> str:
    return f"{writer.prefix}hello"


def test_an_env_var_at_launch_in_the_run_config_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster's unstructured run config ``{"env": NAME}``, host's ``{ env = NAME }``."""
    monkeypatch.setenv("HOST_T_PREFIX", "greeting: ")
    result = run_assets(
        [prefixed], {"writer": Prefixer.configure_at_launch()},
        run_config={"resources": {"writer": {"config": {"prefix": {"env": "HOST_T_PREFIX"}}}}},
    )
    assert result.outputs["prefixed"] == "greeting: hello"


def test_an_env_var_object_in_launch_config_is_read_like_the_env_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A documented difference: Dagster's run config takes only ``{"env": NAME}``; host also
    reads an ``EnvVar`` there (specs/coming-from-dagster.md)."""
    monkeypatch.setenv("HOST_T_PREFIX", "greeting: ")
    result = run_assets(
        [prefixed], {"writer": Prefixer.configure_at_launch()},
        run_config={"resources": {"writer": {"config": {"prefix": EnvVar("HOST_T_PREFIX")}}}},
    )
    assert result.outputs["prefixed"] == "greeting: hello"


def test_an_unset_env_var_fails_at_the_run_not_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    declared = WithString(a_str=EnvVar(UNSET))  # no error here
    with pytest.raises(HostError) as caught:
        run_assets([the_string], {"a_resource": declared})
    assert UNSET in str(caught.value)


def test_an_unset_env_var_given_at_launch_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    with pytest.raises(HostError) as caught:
        run_assets([the_string], {"a_resource": WithString.configure_at_launch()},
                   run_config={"resources": {"a_resource": {"config": {"a_str": {"env": UNSET}}}}})
    assert UNSET in str(caught.value)


def test_an_env_var_in_a_nested_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    class Around(ConfigurableResource):
        inner: WithString

    @asset
    def inner_string(a_resource: Around) -> str:
        return a_resource.inner.a_str

    declared = Around(inner=WithString(a_str=EnvVar("HOST_T_ENV_FOR_TEST")))
    monkeypatch.setenv("HOST_T_ENV_FOR_TEST", "SOME_VALUE")
    assert run_assets([inner_string], {"a_resource": declared}).outputs["inner_string"] == (
        "SOME_VALUE"
    )


def test_an_env_var_in_a_nested_config(monkeypatch: pytest.MonkeyPatch) -> None:
    class Nested(Config):
        a_str: str

    class Around(ConfigurableResource):
        inner: Nested

    @asset
    def inner_string(a_resource: Around) -> str:
        return a_resource.inner.a_str

    declared = Around(inner=Nested(a_str=EnvVar("HOST_T_ENV_FOR_TEST")))
    monkeypatch.setenv("HOST_T_ENV_FOR_TEST", "SOME_VALUE")
    assert run_assets([inner_string], {"a_resource": declared}).outputs["inner_string"] == (
        "SOME_VALUE"
    )


class Colour(enum.Enum):
    FOO = "foofoo"
    BAR = "barbar"


class StringAndEnum(ConfigurableResource):
    a_str: str
    my_enum: Colour


@asset
def pair(a_resource: StringAndEnum) -> tuple[str, str]:
    return a_resource.my_enum.name, a_resource.a_str


def test_an_env_var_beside_an_enum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_T_ENV_FOR_TEST", "SOME_VALUE")
    declared = StringAndEnum(a_str=EnvVar("HOST_T_ENV_FOR_TEST"), my_enum=Colour.FOO)
    assert run_assets([pair], {"a_resource": declared}).outputs["pair"] == ("FOO", "SOME_VALUE")


def test_launch_config_replaces_an_env_var_and_an_enum_by_value() -> None:
    """Host's form of Dagster's case: the enum given at launch by value."""
    declared = StringAndEnum(a_str=EnvVar(UNSET), my_enum=Colour.FOO)
    result = run_assets([pair], {"a_resource": declared}, run_config={
        "resources": {"a_resource": {"config": {"a_str": "foo", "my_enum": "barbar"}}}})
    assert result.outputs["pair"] == ("BAR", "foo")


def test_launch_config_replaces_an_env_var_and_an_enum_by_name() -> None:
    declared = StringAndEnum(a_str=EnvVar(UNSET), my_enum=Colour.FOO)
    result = run_assets([pair], {"a_resource": declared}, run_config={
        "resources": {"a_resource": {"config": {"a_str": "foo", "my_enum": "BAR"}}}})
    assert result.outputs["pair"] == ("BAR", "foo")


def test_an_unset_env_var_fails_process_config_and_initialize(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    with pytest.raises(HostError) as caught:
        WithString(a_str=EnvVar(UNSET)).process_config_and_initialize()
    assert UNSET in str(caught.value)


def test_reading_an_env_var_as_a_string_raises() -> None:
    with pytest.raises(EnvVarNotReadError):
        str(EnvVar(UNSET))

