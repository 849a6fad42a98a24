"""``context.resources`` and ``@asset(required_resource_keys=...)``, as Dagster's docs use them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import AssetExecutionContext, DefinitionError, asset, run_assets
from tests import recording
from tests.dagster_compat.asset_side import from_context
from tests.recording import Recorded


def test_required_resource_keys_give_context_resources_up(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    name, config = executor
    result = run_assets(
        [from_context],
        {"db": Recorded(record=record, label="db"), "unused": Recorded(record=record, label="u")},
        executor=name,
        executor_config=config,
    )
    assert result.outputs == {"from_context": "db"}
    records = recording.read(record)
    # up before the asset used it, down once; the key no asset needs never came up
    assert [r["event"] for r in records if r["label"] == "db"] == [
        "setup", "up", "use", "teardown"
    ]
    assert not [r for r in records if r["label"] == "u"]


def test_context_resources_also_holds_typed_parameters_and_names_unknown_keys(
    record: str,
) -> None:
    seen: dict[str, Any] = {}

    @asset(required_resource_keys={"extra"})
    def both(context: AssetExecutionContext, db: Recorded) -> str:
        seen["same"] = context.resources.db is db and context.resources["db"] is db
        seen["keys"] = sorted(context.resources)
        with pytest.raises(AttributeError, match=r"no resource 'nope'.*required_resource_keys"):
            context.resources.nope  # noqa: B018
        return str(context.resources.extra.use())

    result = run_assets(
        [both],
        {"db": Recorded(record=record, label="db"), "extra": Recorded(record=record, label="x")},
    )
    assert result.outputs == {"both": "x"}
    assert seen == {"same": True, "keys": ["db", "extra"]}


def test_a_required_key_no_resource_has_is_a_definition_error_before_anything_comes_up(
    record: str,
) -> None:
    @asset(required_resource_keys={"warehouse"})
    def needs(context: AssetExecutionContext) -> None: ...

    @asset
    def other(db: Recorded) -> str:
        return str(db.use())

    with pytest.raises(DefinitionError, match=r"asset 'needs'.*'warehouse'.*no resource"):
        run_assets([other, needs], {"db": Recorded(record=record, label="db")})
    assert recording.read(record) == []


def test_required_resource_keys_must_be_a_set_of_keys() -> None:
    def uses_db() -> None: ...

    with pytest.raises(DefinitionError, match=r"asset 'uses_db'.*is a string.*\{'db'\}"):
        asset(required_resource_keys="db")(uses_db)


@settings(max_examples=25, deadline=None)
@given(
    placements=st.lists(st.sampled_from(["param", "required", "both", "unused"]), min_size=1,
                        max_size=4)
)
def test_each_needed_resource_comes_up_once_whatever_its_placement(
    tmp_path_factory: pytest.TempPathFactory, placements: list[str]
) -> None:
    """Over placements of each resource (a parameter, a required key, both, none): exactly the
    needed ones come up, once, and are in context.resources."""
    record = str(tmp_path_factory.mktemp("placements") / "r.jsonl")
    keys = [f"r{i}" for i in range(len(placements))]
    required = {k for k, p in zip(keys, placements, strict=True) if p in ("required", "both")}
    params = [k for k, p in zip(keys, placements, strict=True) if p in ("param", "both")]
    seen: dict[str, Any] = {}

    def body(context: AssetExecutionContext) -> None:
        seen["keys"] = set(context.resources)

    namespace: dict[str, Any] = {"body": body}
    exec(f"def placed({', '.join(['context', *params])}):\n    body(context)\n", namespace)
    placed = asset(required_resource_keys=required)(namespace["placed"])
    resources = {k: Recorded(record=record, label=k) for k in keys}
    assert run_assets([placed], resources).success
    needed = required | set(params)
    ups = recording.counts(recording.read(record), "up")
    assert {label for label, _ in ups} == needed
    assert all(count == 1 for count in ups.values())
    assert seen["keys"] == needed
