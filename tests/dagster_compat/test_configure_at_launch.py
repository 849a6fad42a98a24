"""``configure_at_launch()`` and ``.partial()``: resource config given when a run is launched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import ConfigError, ConfigurableResource, asset, run_assets
from tests import recording
from tests.dagster_compat.asset_side import Bucket, Store, Tier, bucket_region, described
from tests.recording import Recorded

MULTI = [
    pytest.param(("in_process", {}), id="in_process"),
    pytest.param(("multiprocess", {"max_workers": 2}), id="multiprocess"),
]


@asset
def used(db: Recorded) -> str:
    return str(db.use())


def test_configure_at_launch_takes_its_config_from_the_run(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    name, config = executor
    result = run_assets(
        [used],
        {"db": Recorded.configure_at_launch()},
        run_config={"resources": {"db": {"config": {"record": record, "label": "launched"}}}},
        executor=name,
        executor_config=config,
    )
    assert result.outputs == {"used": "launched"}
    events = [r["event"] for r in recording.read(record)]
    assert events == ["setup", "up", "use", "teardown"]


@pytest.mark.parametrize("executor", MULTI)
def test_partial_config_is_completed_at_launch_and_launch_values_win(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    name, config = executor
    result = run_assets(
        [described],
        {"store": Store.partial(record=record, label="declared")},
        run_config={"resources": {"store": {"config": {"label": "launched", "tier": "gold"}}}},
        executor=name,
        executor_config=config,
    )
    # the enum field is given by value at launch
    assert result.outputs == {"described": "launched/gold/eu1"}


def test_nested_resource_configured_at_launch_comes_up_once_before_its_dependent(
    record: str,
) -> None:
    credentials = Recorded.configure_at_launch()
    result = run_assets(
        [bucket_region, used],
        {"db": credentials, "bucket": Bucket(record=record, credentials=credentials)},
        run_config={"resources": {"db": {"config": {"record": record, "label": "creds"}}}},
    )
    assert result.outputs == {"bucket_region": "creds@us-east-1", "used": "creds"}
    records = recording.read(record)
    setups = [(r["label"], r["key"]) for r in records if r["event"] == "setup"]
    assert setups == [("creds", "db"), ("bucket", "bucket")]
    assert [r["label"] for r in records if r["event"] == "teardown"] == ["bucket", "creds"]


def test_launch_config_overrides_a_configured_resource(record: str) -> None:
    result = run_assets(
        [described],
        {"store": Store(record=record, label="a", tier=Tier.GOLD)},
        run_config={"resources": {"store": {"config": {"label": "b"}}}},
    )
    assert result.outputs == {"described": "b/gold/eu1"}


def test_missing_launch_config_names_key_field_and_asset_before_anything_comes_up(
    record: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        run_assets(
            [used, described],
            {"db": Recorded.partial(label="x"), "store": Store(record=record,
                                                                          label="s")},
        )
    message = str(caught.value)
    assert "resource 'db' (Recorded) is configured at launch" in message
    assert "field 'record'" in message and "needed by asset 'used'" in message
    assert "run_config={'resources': {'db': {'config': {'record': ...}}}}" in message
    assert (caught.value.resource_key, caught.value.field) == ("db", "record")
    assert recording.read(record) == []


@pytest.mark.parametrize(
    ("launch", "match"),
    [
        ({"tier": "bronze"}, r"resource 'store' \(Store\) has invalid configuration:\n  tier:"),
        ({"colour": 1}, r"gives \['colour'\], not a field of Store"),
        ({"region": {"zone": "x"}}, r"region.zone: Input should be a valid integer"),
    ],
)
def test_invalid_launch_config_is_a_config_error_naming_the_field(
    record: str, launch: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        run_assets([described], {"store": Store.partial(record=record, label="s")},
                   run_config={"resources": {"store": {"config": launch}}})
    assert recording.read(record) == []


def test_an_unknown_field_in_configure_at_launch_is_refused_at_once() -> None:
    with pytest.raises(ConfigError, match=r"got \['lable'\], which is not a field of Recorded"):
        Recorded.partial(lable="x")


class Hardcoded:
    """A resource definition of its own kind that takes launch config (the protocol)."""

    def __init__(self, value: str = "") -> None:
        self.value = value

    def host_with_launch_config(self, values: Mapping[str, Any]) -> object:
        if "value" not in values:
            raise ConfigError("needs 'value'", field="value")
        return Hardcoded(str(values["value"]))


def test_an_object_with_host_with_launch_config_is_replaced_by_what_it_returns() -> None:
    @asset
    def reads(thing: Hardcoded) -> str:
        return thing.value

    result = run_assets([reads], {"thing": Hardcoded()},
                        run_config={"resources": {"thing": {"config": {"value": 7}}}})
    assert result.outputs == {"reads": "7"}
    with pytest.raises(ConfigError, match="needs 'value'") as caught:
        run_assets([reads], {"thing": Hardcoded()},
                   run_config={"resources": {"thing": {"config": {}}}})
    assert (caught.value.resource_key, caught.value.field) == ("thing", "value")


def test_launch_config_for_an_object_that_takes_none_is_a_config_error() -> None:
    @asset
    def reads(thing: object) -> None: ...

    with pytest.raises(ConfigError, match=r"resource 'thing'.*takes none"):
        run_assets([reads], {"thing": 3}, run_config={"resources": {"thing": {"config": {}}}})


class Three(ConfigurableResource):
    """Three required fields, for the property below."""

    a: str
    b: str
    c: str


@settings(max_examples=40, deadline=None)
@given(
    placements=st.fixed_dictionaries(
        {f: st.sampled_from(["declared", "launch", "both", "neither"]) for f in "abc"}
    )
)
def test_each_field_is_taken_from_launch_then_declaration_or_named_missing(
    placements: dict[str, str],
) -> None:
    """Over where each required field is given (at declaration, at launch, both, neither): the
    resource has the launch value, else the declared one; a field given nowhere is named."""
    declared = {f: f"d{f}" for f, p in placements.items() if p in ("declared", "both")}
    launched = {f: f"l{f}" for f, p in placements.items() if p in ("launch", "both")}

    @asset
    def fields(three: Three) -> tuple[str, str, str]:
        return (three.a, three.b, three.c)

    run_config = {"resources": {"three": {"config": launched}}}
    missing = [f for f, p in placements.items() if p == "neither"]
    if missing:
        with pytest.raises(ConfigError) as caught:
            run_assets([fields], {"three": Three.partial(**declared)}, run_config=run_config)
        assert caught.value.field in missing
        assert all(repr(f) in str(caught.value) for f in missing)
        return
    result = run_assets([fields], {"three": Three.partial(**declared)}, run_config=run_config)
    assert result.outputs["fields"] == tuple(launched.get(f, declared.get(f)) for f in "abc")
