"""``host.Config`` for assets and nested resource config, given per run by ``run_config``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import Config, ConfigError, asset, run_assets
from tests import recording
from tests.dagster_compat.asset_side import GreetingConfig, Region, Store, described, greeting
from tests.recording import Recorded

MULTI = [
    pytest.param(("in_process", {}), id="in_process"),
    pytest.param(("multiprocess", {"max_workers": 2}), id="multiprocess"),
]


@pytest.mark.parametrize(
    "run_config",
    [
        pytest.param({"ops": {"greeting": {"config": {"person_name": "Ann", "times": 2}}}},
                     id="dagster"),
        pytest.param({"assets": {"greeting": {"config": {"person_name": "Ann", "times": 2}}}},
                     id="host"),
        pytest.param({"ops": {"greeting": GreetingConfig(person_name="Ann", times=2)}},
                     id="config-instance"),
    ],
)
def test_asset_config_from_the_run(
    executor: tuple[str, dict[str, Any]], run_config: dict[str, Any]
) -> None:
    name, config = executor
    result = run_assets([greeting], run_config=run_config, executor=name, executor_config=config)
    assert result.outputs == {"greeting": "hello, Ann hello, Ann"}


class Defaults(Config):
    """Only defaults."""

    n: int = 3


def test_an_asset_with_only_defaults_needs_no_run_config() -> None:
    @asset
    def counted(config: Defaults) -> int:
        return config.n

    assert run_assets([counted]).outputs == {"counted": 3}


@pytest.mark.parametrize("executor", MULTI)
def test_nested_config_inside_a_resource_set_at_launch(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    name, config = executor
    result = run_assets(
        [described],
        {"store": Store(record=record, label="s", region=Region(name="us"))},
        run_config={"resources": {"store": {"config": {"region": {"name": "ap", "zone": 3}}}}},
        executor=name,
        executor_config=config,
    )
    assert result.outputs == {"described": "s/silver/ap3"}


@pytest.mark.parametrize(
    ("run_config", "match"),
    [
        ({}, r"asset 'greeting' has invalid config \(GreetingConfig\):\n  person_name: Field "
             r"required\n  give it: run_config=\{'ops': \{'greeting'"),
        ({"ops": {"greeting": {"config": {"person_name": "A", "times": "x"}}}},
         r"asset 'greeting'.*\n  times: Input should be a valid integer"),
        ({"ops": {"greeting": {"config": {"person_name": "A", "tones": 1}}}},
         r"asset 'greeting'.*\n  tones: Extra inputs are not permitted"),
        ({"ops": {"nobody": {"config": {}}}}, r"names 'nobody', which is not an asset"),
        ({"ops": {"uses": {"config": {}}}}, r"asset 'uses', which takes none"),
        ({"ops": {"greeting": {"person_name": "A"}}}, r"has \['person_name'\].*'config'"),
        ({"ops": {}, "assets": {}}, r"both 'ops' and 'assets'"),
        ({"execution": {}}, r"run_config has \['execution'\]"),
        ({"resources": {"ghost": {"config": {}}}}, r"names 'ghost', which is not a resource"),
    ],
)
def test_bad_run_config_is_a_config_error_before_anything_comes_up(
    record: str, run_config: dict[str, Any], match: str
) -> None:
    @asset
    def uses(db: Recorded) -> str:
        return str(db.use())

    with pytest.raises(ConfigError, match=match):
        run_assets([uses, greeting], {"db": Recorded(record=record, label="db")},
                   run_config=run_config)
    assert recording.read(record) == []


class Bounds(Config):
    """Fields of several types, for the property below."""

    count: int
    name: str
    flag: bool = False


VALUES = st.one_of(
    st.integers(-5, 5), st.text(max_size=3), st.booleans(), st.none(), st.lists(st.integers(),
                                                                                max_size=2)
)


@settings(max_examples=40, deadline=None)
@given(values=st.dictionaries(st.sampled_from(["count", "name", "flag", "other"]), VALUES))
def test_config_values_reach_the_asset_or_fail_naming_the_field(
    tmp_path_factory: pytest.TempPathFactory, values: dict[str, Any]
) -> None:
    """Over config values of every kind: what validates reaches the asset as validated; what
    does not is a ConfigError naming asset and a field at fault, with nothing brought up."""
    record = str(tmp_path_factory.mktemp("values") / "r.jsonl")

    @asset
    def bounded(config: Bounds, db: Recorded) -> Bounds:
        db.use()
        return config

    try:
        expected = Bounds.model_validate(values)
    except Exception:
        expected = None
    run_config = {"ops": {"bounded": {"config": values}}}
    resources = {"db": Recorded(record=record, label="db")}
    if expected is None:
        with pytest.raises(ConfigError, match=r"asset 'bounded' has invalid config") as caught:
            run_assets([bounded], resources, run_config=run_config)
        assert caught.value.field in {"count", "name", "flag", "other"}
        assert recording.read(record) == []
    else:
        assert run_assets([bounded], resources, run_config=run_config).outputs == {
            "bounded": expected
        }
