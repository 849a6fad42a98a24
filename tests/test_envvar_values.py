"""Values read from the environment: an ``EnvVar`` anywhere in a field's value (a list, a dict,
a nested model, a tuple) is read where the resource comes up, validated and masked; bad ones
(an empty name, a value that does not validate) stop the run before anything comes up, with an
error naming resource key, field and variable, never the value; an ``EnvVar`` field serializes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, SecretStr

from host import (
    ConfigError,
    ConfigurableResource,
    EnvVar,
    InitResourceContext,
    RunFailure,
    asset,
    load_run_config,
    run_assets,
)
from host._discovery import RESOURCES_GROUP
from host.testing import check_resource_class
from tests.dists import Site
from tests.graphs import make_asset
from tests.recording import Recorded, read, write
from tests.test_secret_placements import leaks

ITEM, COUNT, TOKEN = "item-from-env-Qz7", "41", "tok\\'\"-from-env-J9"
VALUES = {"HOST_EV_ITEM": ITEM, "HOST_EV_COUNT": COUNT, "HOST_EV_TOKEN": TOKEN}


class Inner(BaseModel):
    token: SecretStr


class Wrapper(BaseModel):
    inner: Inner


class Containers(ConfigurableResource):
    """EnvVars inside a list, a dict, a tuple and a model two deep."""

    record: str
    items: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    pair: tuple[str, SecretStr] | None = None
    wrapper: Wrapper | None = None

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label="containers")

    def values(self) -> list[Any]:
        assert self.pair is not None and self.wrapper is not None
        return [
            self.items,
            self.counts,
            self.pair[1].get_secret_value(),
            self.wrapper.inner.token.get_secret_value(),
        ]


def containers(record: str) -> Containers:
    return Containers(
        record=record,
        items=["plain", EnvVar("HOST_EV_ITEM")],
        counts={"n": EnvVar("HOST_EV_COUNT")},
        pair=("label", EnvVar("HOST_EV_TOKEN")),
        wrapper={"inner": {"token": EnvVar("HOST_EV_TOKEN")}},  # type: ignore[arg-type]
    )


@asset
def read_values(containers: Containers) -> list[Any]:
    return containers.values()


@asset
def quotes_values(containers: Containers) -> None:
    raise ValueError(f"the values were {containers.values()!r}")


def _setenv(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def variables(
    executor: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The variables set here, and on the Dask workers (which do not share this environment)."""
    for name, value in VALUES.items():
        monkeypatch.setenv(name, value)
    name, config = executor
    if name != "dask":
        yield
        return
    from distributed import Client

    with Client(config["address"], set_as_default=False) as client:
        client.run(_setenv, dict(VALUES))
        try:
            yield
        finally:
            client.run(_setenv, dict.fromkeys(VALUES))


def test_env_vars_in_containers_are_read_where_the_resource_comes_up(
    executor: tuple[str, dict[str, Any]], variables: None, record: str
) -> None:
    name, config = executor
    resource = containers(record)
    assert set(resource.env_vars()) == {"items.1", "counts.n", "pair.1", "wrapper.inner.token"}
    assert "<env HOST_EV_TOKEN>" in repr(resource.masked_config())
    with pytest.raises(RunFailure) as info:
        run_assets(
            [read_values, quotes_values],
            {"containers": resource},
            executor=name,
            executor_config=config,
        )
    result = info.value.result
    assert result.outputs["read_values"] == [["plain", ITEM], {"n": 41}, TOKEN, TOKEN]
    assert set(result.failures) == {"quotes_values"}
    texts = [result.failures["quotes_values"].message, result.failures["quotes_values"].traceback]
    texts += [repr(result.events), str(info.value)]
    assert not leaks(texts, ITEM) and not leaks(texts, TOKEN), texts
    assert "**********" in texts[0]
    # read in the processes that brought it up: the caller only in process
    pids = {r["pid"] for r in read(record)}
    assert (os.getpid() in pids) == (name == "in_process")


# -- bad values: stopped before anything comes up ------------------------------------------


class Typed(ConfigurableResource):
    """Integers in every placement, to be given values that are not integers."""

    record: str
    port: int = 0
    ports: list[int] = Field(default_factory=list)
    limits: dict[str, int] = Field(default_factory=dict)
    wrapped: tuple[int, int] | None = None

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label="typed")


PLACED = {
    "port": EnvVar("HOST_EV_BAD"),
    "ports": [1, EnvVar("HOST_EV_BAD")],
    "limits": {"cpu": EnvVar("HOST_EV_BAD")},
    "wrapped": (1, EnvVar("HOST_EV_BAD")),
}
WHERE = {"port": "port", "ports": "ports.1", "limits": "limits.cpu", "wrapped": "wrapped.1"}
BAD = "not-an-int-Qx9\\'secret"


@pytest.mark.parametrize("executor_name", ["in_process", "multiprocess"])
@pytest.mark.parametrize("field", list(PLACED))
def test_an_env_value_that_does_not_validate_stops_the_run_before_anything_comes_up(
    monkeypatch: pytest.MonkeyPatch, record: str, field: str, executor_name: str
) -> None:
    monkeypatch.setenv("HOST_EV_BAD", BAD)
    resources = {
        "other": Recorded(record=record, label="other"),
        "typed": Typed(record=record, **{field: PLACED[field]}),
    }
    assets = [make_asset("first", resources=["other"]), make_asset("second", ["first"], ["typed"])]
    with pytest.raises(ConfigError) as info:
        run_assets(assets, resources, executor=executor_name)
    message = str(info.value)
    assert (info.value.resource_key, info.value.field) == ("typed", WHERE[field])
    assert "'typed'" in message and WHERE[field] in message and "HOST_EV_BAD" in message
    assert "nothing was brought up" in message
    assert not leaks([message], BAD) and info.value.__context__ is None
    assert read(record) == []


def test_an_empty_variable_name_is_named_as_such(record: str) -> None:
    with pytest.raises(ConfigError, match=r"field 'ports\.0' reads an environment variable with "
                       r"an empty name"):
        Typed(record=record, ports=[EnvVar("")])


HOLDER_RUN = """
[run]
assets = ["ev_assets"]
[resources.holder]
type = "ev.holder"
[resources.holder.config]
record = "RECORD"
where = "env_str"
leak = "setup"
VALUE
"""


@pytest.fixture
def ev_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", "HOST_ENABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    site = Site(tmp_path / "site")
    holder = {"ev.holder": "tests.test_secret_placements:Holder"}
    site.add("gen-ev", entry_points={RESOURCES_GROUP: holder})
    (tmp_path / "ev_assets.py").write_text(
        "from tests.graphs import make_asset\nuse = make_asset('use', resources=['holder'])\n"
    )
    yield tmp_path
    site.close(tmp_path)


@pytest.mark.parametrize(
    ("value", "field", "problem"),
    [
        ('env_str = { env = "" }', "env_str", "empty name"),
        ('env_list = ["a", { env = "" }]', "env_list.1", "empty name"),
        ("env_dict = { k = { env = 3 } }", "env_dict.k", "a int, not a name"),
    ],
)
def test_an_empty_env_table_in_a_run_config_is_named(
    ev_site: Path, value: str, field: str, problem: str
) -> None:
    record = ev_site / "records.jsonl"
    path = ev_site / "run.toml"
    path.write_text(HOLDER_RUN.replace("RECORD", str(record)).replace("VALUE", value))
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    assert (info.value.resource_key, info.value.field) == ("holder", field)
    assert "'holder'" in str(info.value) and problem in str(info.value)
    assert not record.exists()


def test_env_tables_nested_in_a_run_config_are_read(
    ev_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_EV_ITEM", ITEM)
    record = ev_site / "records.jsonl"
    path = ev_site / "run.toml"
    value = (
        'env_list = ["plain", { env = "HOST_EV_ITEM" }]\n'
        'env_dict = { k = { env = "HOST_EV_ITEM" } }'
    )
    path.write_text(
        HOLDER_RUN.replace("RECORD", str(record))
        .replace("VALUE", value)
        .replace('"env_str"', '"env_list"')
        .replace('"setup"', '"asset"')
    )
    config = load_run_config(path)
    assert set(config.resources["holder"].env_vars()) == {"env_list.1", "env_dict.k"}
    result = config.run(raise_on_error=False)
    message = result.failures["use"].message
    assert "**********" in message and not leaks([message, repr(result)], ITEM)


# -- serialization -------------------------------------------------------------------------


class Serialized(ConfigurableResource):
    name: str = "n"
    port: int = 0
    ratio: float = 0.0
    flag: bool = False
    password: SecretStr = SecretStr("")
    maybe: int | None = None
    items: list[int] = Field(default_factory=list)
    wrapper: Wrapper | None = None


@pytest.mark.parametrize(
    ("field", "value", "json_form"),
    [
        ("name", EnvVar("V"), {"env": "V"}),
        ("port", EnvVar("V"), {"env": "V"}),
        ("ratio", EnvVar("V"), {"env": "V"}),
        ("flag", EnvVar("V"), {"env": "V"}),
        ("password", EnvVar("V"), {"env": "V"}),
        ("maybe", EnvVar("V"), {"env": "V"}),
        ("items", [1, EnvVar("V")], [1, {"env": "V"}]),
        ("wrapper", {"inner": {"token": EnvVar("V")}}, {"inner": {"token": {"env": "V"}}}),
    ],
)
def test_an_env_var_field_serializes_as_the_run_config_writes_it(
    field: str, value: Any, json_form: Any
) -> None:
    resource = Serialized(**{field: value})
    dumped = json.loads(resource.model_dump_json())
    assert dumped[field] == json_form and resource.model_dump(mode="json")[field] == json_form
    assert list(dumped) == list(Serialized.model_fields)  # every field, in order
    assert resource.model_dump()[field] == value  # Python mode: the EnvVar itself
    assert Serialized(**resource.model_dump()).env_vars() == resource.env_vars()


class Login(ConfigurableResource):
    username: str
    password: SecretStr


def test_check_resource_class_with_an_env_var_on_a_secret_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOST_EV_PASSWORD", "pw-from-the-environment")
    check_resource_class(Login, config={"username": "ann", "password": EnvVar("HOST_EV_PASSWORD")})
