"""Planning: the order of a plan, and what is worked out once and reused between runs."""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle  # type: ignore[import-untyped]
import pytest

from host import AssetStarted, ConfigurableResource, DefinitionError, asset, run_assets
from host._graph import build_plan
from host._plugins import run_plugin_manager
from host._resource_graph import ResourceGraph
from host._switches import PluginSwitches
from tests.graphs import make_asset


class Token(ConfigurableResource):
    value: str = "from the resource"


class OtherToken(ConfigurableResource):
    value: str = "from the other resource"


def _order(assets: list[Any], resources: dict[str, Any] | None = None) -> tuple[str, ...]:
    return build_plan(assets, ResourceGraph.build(resources or {})).order


def test_a_valid_given_order_is_kept() -> None:
    a, b, c = make_asset("a"), make_asset("b", ["a"]), make_asset("c")
    assert _order([a, b, c]) == ("a", "b", "c")
    assert _order([c, a, b]) == ("c", "a", "b")


def test_an_order_with_downstream_first_is_sorted_topologically() -> None:
    a, b, c = make_asset("a"), make_asset("b", ["a"]), make_asset("c", ["b"])
    order = _order([c, b, a])
    assert order.index("a") < order.index("b") < order.index("c")
    result = run_assets([c, b, a])
    assert [e.asset_key for e in result.events_of(AssetStarted)] == list(order)
    assert result.outputs["c"] == ["a", "b", "c"]


def test_a_cycle_is_found_whatever_the_order() -> None:
    a, b = make_asset("a", ["b"]), make_asset("b", ["a"])
    for assets in ([a, b], [b, a]):
        with pytest.raises(DefinitionError, match="cycle"):
            _order(assets)


def test_one_definition_resolves_afresh_when_the_run_around_it_changes() -> None:
    @asset
    def token(value: Any) -> Any:
        return value.value if isinstance(value, ConfigurableResource) else value

    @asset
    def value() -> str:
        return "from the asset"

    @asset
    def typed(res: Token) -> str:
        return res.value

    # The same definitions, planned again with other resources and other assets.
    assert run_assets([token], {"value": Token()}).outputs["token"] == "from the resource"
    assert run_assets([token, value]).outputs["token"] == "from the asset"
    assert run_assets([token], {"value": Token()}).outputs["token"] == "from the resource"
    assert run_assets([typed], {"res": Token()}).outputs["typed"] == "from the resource"
    assert run_assets([typed], {"other": Token()}).outputs["typed"] == "from the resource"
    with pytest.raises(DefinitionError, match="needs a Token resource"):
        run_assets([typed], {"other": OtherToken()})
    with pytest.raises(DefinitionError, match="no asset, resource or 'context'"):
        run_assets([token])
    # The errors were not remembered: the same definitions still plan where they resolve.
    assert run_assets([token, value]).outputs["token"] == "from the asset"


def test_a_definition_plans_the_same_step_again_and_ships_without_its_memo() -> None:
    a = make_asset("a", resources=["token"])
    graph = ResourceGraph.build({"token": Token()})
    first = build_plan([a], graph).steps["a"]
    assert build_plan([a], ResourceGraph.build({"token": Token()})).steps["a"] is first
    assert a.plans, "the step is remembered by its definition"
    # What process executors do with a plan's steps (the asset is a closure: cloudpickle).
    copy = pickle.loads(cloudpickle.dumps(a))
    assert copy.plans == {}
    assert (copy.key, copy.parameter_names, copy.is_async) == (a.key, a.parameter_names, False)
    assert copy.__name__ == a.__name__
    assert build_plan([copy], graph).steps["a"].resources == ("token",)


def test_runs_without_extra_plugins_share_one_plugin_manager() -> None:
    switches = PluginSwitches(autoload=False)
    first = run_plugin_manager(switches=switches)
    assert run_plugin_manager(switches=switches) is first
    other = run_plugin_manager(switches=switches.merged(disable=["some.plugin"]))
    assert other is not first

    class Extra:
        pass

    assert run_plugin_manager([Extra()], switches=switches) is not run_plugin_manager(
        [Extra()], switches=switches
    )


def test_a_remembered_step_never_holds_one_runs_config_and_ships_required_keys() -> None:
    from tests.dagster_compat.asset_side import GreetingConfig, from_context, greeting

    for name in ("Ann", "Bo"):
        result = run_assets([greeting], run_config={"ops": {"greeting": {"config": {
            "person_name": name}}}})
        assert result.outputs == {"greeting": f"hello, {name}"}
    assert all(step.config is None for step in greeting.plans.values())
    plan = build_plan([greeting], ResourceGraph.build({}))
    assert plan.steps["greeting"].config_class is GreetingConfig
    assert [p.kind for p in plan.steps["greeting"].params] == ["config"]
    copy = pickle.loads(cloudpickle.dumps(from_context))
    assert copy.required_resource_keys == {"db"} and copy.resource_defs == {}
    steps = build_plan([copy], ResourceGraph.build({"db": Token()})).steps
    assert steps["from_context"].resources == ("db",)
