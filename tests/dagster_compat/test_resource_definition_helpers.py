"""``ResourceDefinition.string_resource`` and ``mock_resource``, written as Dagster's docs use
them, and ``build_init_resource_context`` imported from ``host`` as from ``dagster``."""

from __future__ import annotations

import pytest

from host import (
    ConfigError,
    ConfigurableResource,
    ResourceDefinition,
    asset,
    build_init_resource_context,
    run_assets,
)


@asset
def greeting(name: str) -> str:
    return f"hello {name}"


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_a_string_resource_takes_its_string_configured_or_at_launch(executor: str) -> None:
    configured = {"name": ResourceDefinition.string_resource().configured("ann")}
    assert run_assets([greeting], configured, executor=executor).outputs == {
        "greeting": "hello ann"
    }
    launch = {"resources": {"name": {"config": "bob"}}}
    result = run_assets(
        [greeting],
        {"name": ResourceDefinition.string_resource()},
        executor=executor,
        run_config=launch,
    )
    assert result.outputs == {"greeting": "hello bob"}


@pytest.mark.parametrize("config", [3, None, ["x"], {"a": 1}])
def test_a_string_resource_given_no_string_names_its_key(config: object) -> None:
    with pytest.raises(ConfigError) as info:
        run_assets(
            [greeting],
            {"name": ResourceDefinition.string_resource()},
            run_config={"resources": {"name": {"config": config}}},
        )
    assert "'name'" in str(info.value)
    assert info.value.resource_key == "name"


def test_a_mock_resource_records_what_the_asset_did() -> None:
    mock = ResourceDefinition.mock_resource()

    @asset
    def pings(client: object) -> int:
        client.ping(1)  # type: ignore[attr-defined]
        client.ping(2)  # type: ignore[attr-defined]
        return 2

    assert run_assets([pings], {"client": mock}).success
    given = mock.resource_fn(None)  # the hard-coded value: the same mock every time
    assert [c.args for c in given.ping.call_args_list] == [(1,), (2,)]


class Named(ConfigurableResource):
    prefix: str

    def label(self) -> str:
        return f"{self.prefix}:{self.get_resource_context().resource_key}"


def test_build_init_resource_context_from_host_calls_a_method_directly() -> None:
    context = build_init_resource_context(resource_key="db")
    named = Named(prefix="p").with_replaced_resource_context(context)
    assert named.label() == "p:db"
