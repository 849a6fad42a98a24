"""Enum fields: ``context.resource_config`` shows an enum member as its value, as Dagster does,
wherever the member is in the configuration (a field, a list, a mapping, a nested model), for a
resource class and for a function resource, in the process that brings the resource up."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from host import ConfigurableResource, InitResourceContext, asset, resource, run_assets
from tests.recording import read, write


class Tier(enum.Enum):
    FREE = "free"
    PRO = "pro"
    TEAM = 3


class Plan(BaseModel):
    tier: Tier


class Account(ConfigurableResource):
    record: str
    tier: Tier = Tier.FREE
    tiers: list[Tier] = Field(default_factory=list)
    by_name: dict[str, Tier] = Field(default_factory=dict)
    plan: Plan | None = None

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # what a resource sees is JSON-able: the members' values
        write(self.record, event="setup", key="account", label="account",
              config=json.loads(json.dumps(dict(context.resource_config))))


@resource(config_schema={"tier": Tier, "tiers": list[Tier]})
def account_fn(context: InitResourceContext) -> Any:
    return dict(context.resource_config)


@asset
def tier_of(account: Account) -> Tier:
    return account.tier


@asset
def fn_config(account_fn: Any) -> Any:
    return account_fn


@settings(max_examples=20, deadline=None)
@given(
    tier=st.sampled_from(Tier),
    tiers=st.lists(st.sampled_from(Tier), max_size=3),
    place=st.sampled_from(["tier", "tiers", "by_name", "plan"]),
)
def test_enum_members_show_by_value_wherever_they_are(
    tier: Tier, tiers: list[Tier], place: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    record = str(tmp_path_factory.mktemp("enum") / "records.jsonl")
    given_value: Any = {
        "tier": tier,
        "tiers": tiers,
        "by_name": {"main": tier},
        "plan": Plan(tier=tier),
    }[place]
    account = Account(record=record, **{place: given_value})
    result = run_assets([tier_of], resources={"account": account})
    assert isinstance(result.outputs["tier_of"], Tier)  # the resource itself keeps the members
    (setup,) = read(record)
    shown = setup["config"][place]
    expected = {
        "tier": tier.value,
        "tiers": [t.value for t in tiers],
        "by_name": {"main": tier.value},
        "plan": {"tier": tier.value},
    }[place]
    assert shown == expected


@pytest.mark.parametrize("executor_name", ["in_process", "multiprocess"])
def test_a_function_resource_sees_enum_values(executor_name: str) -> None:
    configured = account_fn.configured({"tier": "pro", "tiers": [Tier.TEAM, "free"]})
    result = run_assets([fn_config], resources={"account_fn": configured}, executor=executor_name)
    assert result.outputs["fn_config"] == {"tier": "pro", "tiers": [3, "free"]}
