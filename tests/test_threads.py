"""Runs in parallel threads of one process share no private state and each completes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import PrivateAttr

from host import ConfigurableResource, InitResourceContext, ResourceSetupError, asset, run_assets
from host._lifecycle import ResourceStack
from host._plugins import make_plugin_manager
from host._resource_graph import ResourceGraph
from host._runtime import ProcessRuntime


class Session(ConfigurableResource):
    name: str
    _owner: str | None = PrivateAttr(default=None)
    _closed: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        assert self._owner is None, "a fresh copy must start with default private state"
        self._owner = context.run_id

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self._closed = True


barrier = threading.Barrier(8)


@asset
def who(session: Session) -> str | None:
    owner = session._owner
    barrier.wait(timeout=30)  # every run holds its session up at the same time
    assert session._owner == owner
    return owner


def test_parallel_runs_on_the_same_resource_objects() -> None:
    shared = Session(name="shared")
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            pool.submit(run_assets, [who], {"session": shared}, run_id=f"run-{i}")
            for i in range(8)
        ]
        results = [f.result() for f in futures]
    assert [r.outputs["who"] for r in results] == [f"run-{i}" for i in range(8)]
    assert shared._owner is None


#: Gates of ``Gated``'s setup: set when it starts, awaited before it finishes.
ENTERED = threading.Event()
RELEASE = threading.Event()


class Gated(ConfigurableResource):
    """Writes ``up``/``down`` to ``log``; its setup waits for ``RELEASE``."""

    log: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        ENTERED.set()
        assert RELEASE.wait(10)
        with open(self.log, "a") as out:
            out.write("up\n")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        with open(self.log, "a") as out:
            out.write("down\n")


def test_a_resource_coming_up_while_its_worker_tears_down_is_torn_down_too(
    tmp_path: Path,
) -> None:
    """A worker running assets in threads (Dask) may be told to tear down mid bring-up."""
    log = tmp_path / "gated.log"
    graph = ResourceGraph.build({"gated": Gated(log=str(log))})
    runtime = ProcessRuntime("run", "dask", make_plugin_manager().hook, lambda event: None)
    stack = ResourceStack(graph, runtime, threads=True)
    failed: list[BaseException] = []

    def bring_up() -> None:
        try:
            stack.get("gated")
        except ResourceSetupError as exc:
            failed.append(exc)

    thread = threading.Thread(target=bring_up)
    thread.start()
    assert ENTERED.wait(10)
    stack.close()  # the run ends in this process while 'gated' is coming up
    RELEASE.set()
    thread.join(10)
    assert log.read_text().splitlines() == ["up", "down"]
    assert len(failed) == 1 and "has ended here" in str(failed[0])
    with pytest.raises(ResourceSetupError, match="has ended here"):
        stack.get("gated")
    assert log.read_text().splitlines() == ["up", "down"]
