"""@asset and planning: parameters resolve by name or annotation; mistakes fail before running."""

from __future__ import annotations

from typing import Any

import pytest

from host import (
    AssetExecutionContext,
    ConfigurableResource,
    DefinitionError,
    InitResourceContext,
    asset,
    run_assets,
)


class Counter(ConfigurableResource):
    start: int = 0

    def setup_for_execution(self, context: InitResourceContext) -> None:
        BROUGHT_UP.append(context.resource_key)


BROUGHT_UP: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    BROUGHT_UP.clear()


def test_bare_and_named_assets_and_direct_calls() -> None:
    @asset
    def plain() -> int:
        return 1

    @asset(name="renamed")
    def original(plain: int) -> int:
        return plain + 1

    assert (plain.key, original.key) == ("plain", "renamed")
    assert original(plain=41) == 42  # still a plain function
    assert run_assets([plain, original]).outputs == {"plain": 1, "renamed": 2}


def test_parameters_resolve_by_name_annotation_and_context() -> None:
    @asset
    def by_annotation(c: Counter, context: AssetExecutionContext) -> str:
        return f"{c.start}:{context.asset_key}:{context.run_id}"

    @asset
    def by_name(counter: Any, by_annotation: str, extra: int = 7) -> str:
        return f"{counter.start}/{by_annotation}/{extra}"

    result = run_assets([by_annotation, by_name], {"counter": Counter(start=5)}, run_id="r9")
    assert result.outputs["by_name"] == "5/5:by_annotation:r9/7"
    assert BROUGHT_UP == ["counter"]  # one resource key, brought up once


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (
            lambda: [asset(lambda nothing: 1)],
            r"asset name '<lambda>' is not a valid Python identifier",
        ),
        (
            lambda: [_asset("a", "missing")],
            r"asset 'a', parameter 'missing': no asset, resource or 'context' is called",
        ),
        (lambda: [_asset("a", "b"), _asset("b", "a")], r"cycle: (a -> b -> a|b -> a -> b)"),
        (lambda: [_asset("a"), _asset("a")], r"two assets are called 'a'"),
        (lambda: [_asset("a", "a")], r"cannot take its own output"),
        (lambda: [lambda: 1], r"is not an asset; decorate the function with @host.asset"),
    ],
    ids=["lambda-name", "unresolved", "cycle", "duplicate", "self", "undecorated"],
)
def test_definition_errors_name_asset_and_parameter(build: Any, pattern: str) -> None:
    with pytest.raises(DefinitionError, match=pattern):
        run_assets(build(), {"counter": Counter()})
    assert BROUGHT_UP == []


def test_missing_or_ambiguous_resource_by_annotation() -> None:
    @asset
    def needs(c: Counter) -> None:
        return None

    with pytest.raises(DefinitionError, match=r"'needs', parameter 'c': needs a Counter"):
        run_assets([needs])
    with pytest.raises(DefinitionError, match=r"2 resources are Counter \(a, b\)"):
        run_assets([needs], {"a": Counter(), "b": Counter()})
    assert BROUGHT_UP == []


def test_name_clash_between_asset_and_resource() -> None:
    @asset
    def counter() -> int:
        return 1

    @asset
    def user(counter: int) -> int:
        return counter

    with pytest.raises(DefinitionError, match="both an asset and a resource are called 'counter'"):
        run_assets([counter, user], {"counter": Counter()})


def test_variadic_and_positional_only_parameters_are_rejected() -> None:
    with pytest.raises(DefinitionError, match=r"\*args/\*\*kwargs"):

        @asset
        def star(*args: int) -> None:
            return None

    with pytest.raises(DefinitionError, match="positional-only"):

        @asset
        def positional(a: int, /) -> None:
            return None


def test_selection_unknown_asset() -> None:
    with pytest.raises(DefinitionError, match=r"selection names unknown assets \['nope'\]"):
        run_assets([_asset("a")], selection=["nope"])


def test_invalid_resource_key_and_executor() -> None:
    with pytest.raises(DefinitionError, match="resource key 'not valid'"):
        run_assets([_asset("a")], {"not valid": Counter()})
    with pytest.raises(DefinitionError, match="no executor is called 'nowhere'"):
        run_assets([_asset("a")], executor="nowhere")


def _asset(name: str, *inputs: str) -> Any:
    from tests.graphs import make_asset

    return make_asset(name, upstream=inputs)
