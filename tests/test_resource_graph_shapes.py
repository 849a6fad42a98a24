"""Resource graphs of any depth and shape: deep chains run, cycles are definition errors.

A chain of dependencies much deeper than Python's recursion limit must plan, bring up (each
link once, dependencies first) and tear down (reverse order) like a short one; a resource that
holds itself, directly or through others, is a ``DefinitionError`` naming the path, before
anything comes up. Proven with resources that write their own records.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import ConfigurableResource, DefinitionError, InitResourceContext, asset, run_assets
from host._resource_graph import ResourceGraph
from tests import recording


class Link(ConfigurableResource):
    """One link of a chain; records its own bring-up and teardown."""

    record: str
    n: int
    child: Optional[Link] = None  # noqa: UP045 (pydantic resolves the forward reference)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        recording.write(self.record, event="up", key=context.resource_key, label=str(self.n))

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        recording.write(self.record, event="teardown", key=context.resource_key, label=str(self.n))


Link.model_rebuild()


def chain(record: str, depth: int) -> Link:
    node = Link(record=record, n=0)
    for n in range(1, depth):
        node = Link(record=record, n=n, child=node)
    return node


@asset
def top(root: Link) -> int:
    return root.n


def test_a_chain_deeper_than_the_recursion_limit_runs_in_order(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    name, config = executor
    depth = 3 * sys.getrecursionlimit()
    result = run_assets(
        [top], {"root": chain(record, depth)}, executor=name, executor_config=config
    )
    assert result.success and result.outputs["top"] == depth - 1
    records = recording.read(record)
    assert len({r["pid"] for r in records}) == 1  # one process brought the chain up
    ups = [int(r["label"]) for r in records if r["event"] == "up"]
    downs = [int(r["label"]) for r in records if r["event"] == "teardown"]
    assert ups == list(range(depth))  # the innermost dependency first
    assert downs == ups[::-1]


def test_the_graph_of_a_deep_chain_has_every_link_once() -> None:
    depth = 3 * sys.getrecursionlimit()
    graph = ResourceGraph.build({"root": chain("unused", depth)})
    order = graph.closure(["root"])
    assert len(order) == depth
    assert order[-1] == "root" and order[0] == "root" + ".child" * (depth - 1)


def _cyclic(record: str, length: int, entry: int) -> dict[str, Link]:
    """A ring of ``length`` links (mutated into place, as only careless code can), entered at
    link ``entry``; the keys name the ring's first link."""
    links = [Link(record=record, n=n) for n in range(length)]
    for n, link in enumerate(links):
        object.__setattr__(link, "child", links[(n + 1) % length])
    head = Link(record=record, n=99, child=links[entry % length]) if entry else links[0]
    return {"root": head}


@settings(max_examples=30, deadline=None)
@given(length=st.integers(1, 6), entry=st.integers(0, 1))
def test_a_resource_that_depends_on_itself_is_a_definition_error(
    tmp_path_factory: pytest.TempPathFactory, length: int, entry: int
) -> None:
    record = str(tmp_path_factory.mktemp("ring") / "records.jsonl")
    with pytest.raises(DefinitionError) as caught:
        run_assets([top], _cyclic(record, length, entry))
    message = str(caught.value)
    assert "depends on itself" in message and "'root'" in message
    assert message.count("->") == length  # the whole ring, back to where it started
    assert recording.read(record) == []  # nothing came up
