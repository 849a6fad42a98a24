"""Runs in parallel threads of one process share no private state and each completes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from pydantic import PrivateAttr

from host import ConfigurableResource, InitResourceContext, asset, run_assets


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
