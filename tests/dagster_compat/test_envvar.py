"""``EnvVar`` as Dagster's docs use it: ``EnvVar.int``, ``get_value``, and an ``EnvVar`` that
refuses to be used as a plain string before it is read (Dagster's ``str(EnvVar)`` raises), while
everything the host itself does with one (masking, pickling, JSON, errors) keeps working."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import (
    ConfigError,
    ConfigurableResource,
    EnvVar,
    EnvVarNotReadError,
    InitResourceContext,
    asset,
    run_assets,
)
from host.testing import build_init_resource_context
from tests.recording import write

#: Every way Python turns an object into its text.
AS_TEXT: dict[str, Callable[[Any], str]] = {
    "str": str,
    "f-string": lambda var: f"{var}",
    "format": format,
    "str.format": "{}".format,
    "percent": lambda var: "%s" % var,  # noqa: UP031 - the %-form is what is being tested
}

NAMES = st.text(alphabet=st.characters(categories=("Lu", "Nd"), include_characters="_"),
                min_size=1, max_size=12)


class Database(ConfigurableResource):
    record: str
    host_name: str
    port: int
    password: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label="db", port=self.port)


class Warehouse(ConfigurableResource):
    """Dagster's style: the environment variables as the fields' defaults."""

    url: str = EnvVar("HOST_EV_URL")
    port: int = EnvVar.int("HOST_EV_PORT")


@asset
def port_of(db: Database) -> int:
    return db.port


@asset
def warehouse_address(warehouse: Warehouse) -> str:
    return f"{warehouse.url}:{warehouse.port}"


@settings(max_examples=40, deadline=None)
@given(name=NAMES, as_int=st.booleans(), how=st.sampled_from(sorted(AS_TEXT)))
def test_an_env_var_is_not_a_string_before_it_is_read(name: str, as_int: bool, how: str) -> None:
    var = EnvVar.int(name) if as_int else EnvVar(name)
    with pytest.raises(EnvVarNotReadError) as caught:
        AS_TEXT[how](var)
    assert isinstance(caught.value, RuntimeError)  # what Dagster raises
    assert name in str(caught.value) and "get_value" in str(caught.value)
    # what the host does with it still works, and keeps the kind
    assert var.name == name == var.env_var_name
    assert repr(var) == f"{type(var).__name__}({name!r})"
    assert pickle.loads(pickle.dumps(var)) == var and type(pickle.loads(pickle.dumps(var))) is type(
        var
    )
    assert copy.deepcopy(var) is var
    assert json.loads(json.dumps({"v": var})) == {"v": name}


def test_get_value_and_int(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_EV_PORT", "5432")
    monkeypatch.setenv("HOST_EV_WORD", "five")
    assert EnvVar.int("HOST_EV_PORT").get_value() == 5432
    assert EnvVar("HOST_EV_PORT").get_value() == "5432"
    assert EnvVar.int("HOST_EV_UNSET_9").get_value(default=3) == 3
    with pytest.raises(ValueError, match="HOST_EV_WORD") as caught:
        EnvVar.int("HOST_EV_WORD").get_value()
    assert "five" not in str(caught.value)


@pytest.mark.parametrize("executor_name", ["in_process", "multiprocess"])
def test_env_var_int_is_read_where_the_resource_comes_up(
    executor_name: str, record: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_EV_PORT", "6543")
    monkeypatch.setenv("HOST_EV_PASSWORD", "pw-from-env-Kx72")
    db = Database(
        record=record,
        host_name="db.local",
        port=EnvVar.int("HOST_EV_PORT"),
        password=EnvVar("HOST_EV_PASSWORD"),
    )
    # the host's own views of it: no value, no error
    assert "HOST_EV_PASSWORD" in repr(db) and "pw-from-env" not in repr(db)
    assert db.masked_config()["port"] == "<env HOST_EV_PORT>"
    assert json.loads(db.model_dump_json())["port"] == {"env": "HOST_EV_PORT"}
    assert pickle.loads(pickle.dumps(db)).env_vars() == db.env_vars()
    result = run_assets([port_of], resources={"db": db}, executor=executor_name)
    assert result.outputs["port_of"] == 6543
    assert "pw-from-env-Kx72" not in repr(result.events)


def test_an_env_var_int_that_is_no_integer_is_named_without_its_value(
    record: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_EV_PORT", "not-a-port-Qv3")
    db = Database(record=record, host_name="h", port=EnvVar.int("HOST_EV_PORT"), password="p")
    with pytest.raises(ConfigError) as caught:
        run_assets([port_of], resources={"db": db})
    message = str(caught.value)
    assert caught.value.resource_key == "db" and caught.value.field == "port"
    assert "HOST_EV_PORT" in message and "not-a-port-Qv3" not in message


def test_the_init_context_shows_an_env_var_by_name() -> None:
    context = build_init_resource_context(config={"password": EnvVar("HOST_EV_PASSWORD")})
    assert context.resource_config == {"password": "<env HOST_EV_PASSWORD>"}


@pytest.mark.parametrize("executor_name", ["in_process", "multiprocess"])
def test_env_vars_as_field_defaults_are_read_where_the_resource_comes_up(
    executor_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_EV_URL", "wh.example")
    monkeypatch.setenv("HOST_EV_PORT", "7000")
    assert Warehouse().masked_config() == {"url": "<env HOST_EV_URL>", "port": "<env HOST_EV_PORT>"}
    result = run_assets(
        [warehouse_address], resources={"warehouse": Warehouse()}, executor=executor_name
    )
    assert result.outputs["warehouse_address"] == "wh.example:7000"
    assert Warehouse(port=1).env_vars() == {"url": EnvVar("HOST_EV_URL")}
    monkeypatch.delenv("HOST_EV_URL")
    with pytest.raises(ConfigError) as caught:
        run_assets([warehouse_address], resources={"warehouse": Warehouse()})
    assert (caught.value.resource_key, caught.value.field) == ("warehouse", "url")
