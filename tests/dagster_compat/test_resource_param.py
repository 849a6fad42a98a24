"""``ResourceParam[T]``: a plain object, not a ConfigurableResource, as a resource parameter."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import DefinitionError, ResourceParam, asset, run_assets
from tests import recording
from tests.dagster_compat.asset_side import Client
from tests.recording import Recorded

MULTI = [
    pytest.param(("in_process", {}), id="in_process"),
    pytest.param(("multiprocess", {"max_workers": 2}), id="multiprocess"),
]


@asset
def client_name(client: ResourceParam[Client]) -> str:
    return client.name


@pytest.mark.parametrize("executor", MULTI)
def test_a_plain_object_is_given_as_a_resource_param(
    executor: tuple[str, dict[str, Any]],
) -> None:
    name, config = executor
    result = run_assets([client_name], {"client": Client("acme")}, executor=name,
                        executor_config=config)
    assert result.outputs == {"client_name": "acme"}


def test_a_resource_param_with_no_resource_names_asset_parameter_and_key() -> None:
    with pytest.raises(DefinitionError, match=r"asset 'client_name', parameter 'client': "
                       r"ResourceParam\[Client\] takes the resource bound to key 'client'"):
        run_assets([client_name], {})


class NotAClient:
    """Some other class."""


@settings(max_examples=20, deadline=None)
@given(
    wrong=st.one_of(
        st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2),
        st.builds(NotAClient), st.builds(lambda: Recorded(record="/dev/null", label="r")),
    )
)
def test_a_resource_param_given_a_wrong_type_fails_before_anything_comes_up(
    tmp_path_factory: pytest.TempPathFactory, wrong: Any
) -> None:
    """Over objects of other types (plain values, another class, a ConfigurableResource): a
    DefinitionError naming asset, parameter, key and both types; nothing came up."""
    record = str(tmp_path_factory.mktemp("wrong") / "r.jsonl")

    @asset
    def other(db: Recorded) -> str:
        return str(db.use())

    with pytest.raises(DefinitionError) as caught:
        run_assets([other, client_name], {"db": Recorded(record=record, label="db"),
                                          "client": wrong})
    message = str(caught.value)
    assert "asset 'client_name', parameter 'client'" in message
    assert f"takes a Client, but resource 'client' is of type {type(wrong).__qualname__}" in (
        message
    )
    assert recording.read(record) == []
