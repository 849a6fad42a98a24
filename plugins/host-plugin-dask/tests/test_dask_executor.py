"""The dask executor on real LocalClusters of 2 worker processes.

Most tests share the session's cluster (fixture ``host_dask_address`` of
``host_plugin_dask.testing``) through ``executor_config={"address": ...}``; one test lets the run
start and close its own. Resources write their lifecycle with the pid (``dask_tracked``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_tracked import Tracked, count, read, write
from distributed import Client

from host import (
    AssetDefinition,
    AssetStarted,
    AssetSucceeded,
    ConfigError,
    DefinitionError,
    EnvVar,
    Event,
    ResourceEvent,
    RunFailure,
    RunFinished,
    RunStarted,
    WorkerDiedError,
    asset,
    hookimpl,
    run_assets,
)

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def client(host_dask_address: str) -> Iterator[Client]:
    """A client of the session's cluster, to look at its workers."""
    with Client(host_dask_address, set_as_default=False) as client:
        yield client


@pytest.fixture
def dask(host_dask_address: str) -> dict[str, Any]:
    """run_assets keyword arguments for the session's cluster."""
    return {"executor": "dask", "executor_config": {"address": host_dask_address}}


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "records.jsonl")


def make_user(i: int) -> AssetDefinition:
    @asset(name=f"user_{i}")
    def user(r: Tracked) -> int:
        return r.use()

    return user


@asset
def first(r: Tracked) -> int:
    return r.use()


@asset
def killer(r: Tracked) -> None:
    r.use()
    # Die only once `first` has brought the resource up in the other worker.
    deadline = time.monotonic() + 30
    while not any(x["event"] == "use" and x["pid"] != os.getpid() for x in read(r.path)):
        if time.monotonic() > deadline:
            raise AssertionError("the other worker never used the resource")
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)


@asset
def after_killer(killer: None) -> None:
    raise AssertionError("downstream of a dead worker must not run")


def test_one_setup_and_teardown_per_worker_process(
    path: str, dask: dict[str, Any], client: Client
) -> None:
    resources = {"r": Tracked(path=path, label="r"), "unused": Tracked(path=path, label="unused")}
    result = run_assets([make_user(i) for i in range(16)], resources, **dask)

    assert result.success
    records = read(path)
    uses = {(r["label"], r["pid"]) for r in records if r["event"] == "use"}
    assert count(records, "setup") == count(records, "teardown") == Counter(dict.fromkeys(uses, 1))
    workers = set(client.run(os.getpid).values())
    assert {pid for _, pid in uses} <= workers and os.getpid() not in workers
    assert set(result.outputs.values()) == {pid for _, pid in uses}
    assert "unused" not in {label for label, _ in uses}


class EventLog:
    """Collects the run's events through ``host_event`` (called in the caller only)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def host_event(self, event: Event) -> None:
        self.events.append(event)


def test_events_come_back_in_order_with_the_worker_pids(
    path: str, dask: dict[str, Any], client: Client
) -> None:
    log = EventLog()
    result = run_assets(
        [make_user(i) for i in range(6)], {"r": Tracked(path=path, label="r")}, plugins=[log],
        **dask,
    )
    assert list(result.events) == log.events
    assert isinstance(log.events[0], RunStarted) and isinstance(log.events[-1], RunFinished)
    workers = {e.pid for e in log.events[1:-1]}
    assert os.getpid() not in workers
    assert workers <= set(client.run(os.getpid).values())
    for pid in workers:
        mine = [e for e in log.events if e.pid == pid]
        phases = [e.phase for e in mine if isinstance(e, ResourceEvent)]
        assert phases == ["setup", "yield_enter", "teardown", "yield_exit"]
        assert isinstance(mine[0], AssetStarted)  # the first asset there brings r up
        assert isinstance(mine[3], AssetSucceeded)
        assert all(isinstance(e, ResourceEvent) for e in mine[-2:])  # teardown comes last


class PidHooks:
    """Writes a record from a resource hook and an asset hook (so, with the pid)."""

    def __init__(self, path: str) -> None:
        self.path = path

    @hookimpl
    def host_asset_start(self, context: Any) -> None:
        write(self.path, "hook", context.asset_key)

    @hookimpl(wrapper=True)
    def host_resource_setup(self, resource: Any, context: Any) -> Any:
        write(self.path, "hook", "resource_setup")
        return (yield)


def test_run_plugins_are_active_in_the_workers(
    path: str, tmp_path: Path, dask: dict[str, Any]
) -> None:
    hooks = str(tmp_path / "hooks.jsonl")
    run_assets(
        [make_user(i) for i in range(4)], {"r": Tracked(path=path, label="r")},
        plugins=[PidHooks(hooks)], **dask,
    )
    seen = read(hooks)
    assert sorted(r["label"] for r in seen if r["label"] != "resource_setup") == [
        f"user_{i}" for i in range(4)
    ]
    setups = {r["pid"] for r in seen if r["label"] == "resource_setup"}
    assert setups == {pid for _, pid in count(read(path), "setup")}
    assert os.getpid() not in {r["pid"] for r in seen}


def test_a_lost_worker_fails_its_asset_and_the_others_tear_down(
    path: str, dask: dict[str, Any], client: Client
) -> None:
    resources = {"r": Tracked(path=path, label="r")}
    try:
        with pytest.raises(RunFailure) as info:
            run_assets([first, killer, after_killer], resources, **dask)
    finally:
        client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead one

    result = info.value.result
    error = result.failures["killer"]
    assert error.type == "host._errors.WorkerDiedError"
    assert "died while running asset 'killer'" in error.message
    assert isinstance(info.value.__cause__, WorkerDiedError)
    assert result.outputs.keys() == {"first"}
    assert "after_killer" in result.skipped
    records = read(path)
    setups, teardowns = count(records, "setup"), count(records, "teardown")
    survivor = result.outputs["first"]
    (dead,) = {pid for _, pid in setups} - {survivor}
    assert teardowns == Counter({("r", survivor): 1})  # the dead one could not
    assert not Path(f"/proc/{dead}").exists()
    # The scheduler's log told the caller that `r` was up in the dead process.
    assert [e.resource_key for e in result.resource_errors] == ["r"]
    assert f"process {dead}" in result.resource_errors[0].message


def test_env_vars_are_read_in_the_workers_of_a_given_cluster(
    path: str, dask: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOST_DASK_TEST_TOKEN", raising=False)
    resources = {"r": Tracked(path=path, label="r", token=EnvVar("HOST_DASK_TEST_TOKEN"))}
    # The cluster's workers do not share this environment: no check before the run; the
    # worker that brings the resource up reports the missing variable.
    result = run_assets([first], resources, raise_on_error=False, **dask)
    error = result.failures["first"]
    assert error.resource_key == "r" and "HOST_DASK_TEST_TOKEN" in error.message


def test_the_run_starts_and_closes_its_own_local_cluster(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"n_workers": 2, "threads_per_worker": 2}
    resources = {"r": Tracked(path=path, label="r", token=EnvVar("HOST_DASK_TEST_TOKEN"))}
    assets = [make_user(i) for i in range(8)]
    monkeypatch.delenv("HOST_DASK_TEST_TOKEN", raising=False)
    # Its workers inherit this environment, so a missing variable stops the run up front.
    with pytest.raises(ConfigError, match="HOST_DASK_TEST_TOKEN"):
        run_assets(assets, resources, executor="dask", executor_config=config)
    assert read(path) == []

    monkeypatch.setenv("HOST_DASK_TEST_TOKEN", "s3cret")
    result = run_assets(assets, resources, executor="dask", executor_config=config)
    assert result.success
    records = read(path)
    setups = count(records, "setup")
    # Two threads per worker: still one setup per process.
    assert setups == count(records, "teardown") and set(setups.values()) == {1}
    pids = {pid for _, pid in setups}
    assert os.getpid() not in pids
    for pid in pids:  # the run closed its cluster: its workers are gone
        assert not Path(f"/proc/{pid}").exists()


@asset
def big() -> bytes:
    return b"x" * (3 << 20)


@asset
def left(big: bytes) -> int:
    return len(big)


@asset
def right(big: bytes) -> int:
    return len(big) + 1


def test_large_outputs_reach_every_downstream_asset(dask: dict[str, Any]) -> None:
    result = run_assets([big, left, right], **dask)
    assert (result.outputs["left"], result.outputs["right"]) == (3 << 20, (3 << 20) + 1)


def test_an_unpicklable_asset_is_a_definition_error(dask: dict[str, Any]) -> None:
    lock = threading.Lock()

    @asset
    def holds_a_lock() -> bool:
        return lock.locked()

    with pytest.raises(DefinitionError, match=r"asset 'holds_a_lock'.*cannot be sent"):
        run_assets([holds_a_lock], **dask)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"address": "tcp://127.0.0.1:1", "n_workers": 2}, "leave out n_workers"),
        ({"n_workers": 0}, "n_workers"),
        ({"workers": 2}, "workers"),
    ],
)
def test_invalid_executor_config(config: dict[str, Any], problem: str) -> None:
    @asset
    def nothing() -> None:
        return None

    with pytest.raises(ConfigError, match=problem):
        run_assets([nothing], executor="dask", executor_config=config)


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from host import asset, run_assets
    from dask_tracked import Tracked, write

    path, address = sys.argv[1], sys.argv[2]

    @asset
    def slow(r: Tracked):
        r.use()
        write(path, "running", "slow")
        time.sleep(2)

    @asset
    def quick(r: Tracked):
        r.use()

    if __name__ == "__main__":
        run_assets([slow, quick], {"r": Tracked(path=path, label="r")},
                   executor="dask", executor_config={"address": address})
    """
)


def test_sigterm_to_the_caller_tears_down_on_every_worker(
    path: str, tmp_path: Path, host_dask_address: str
) -> None:
    script = tmp_path / "run.py"
    script.write_text(SIGTERM_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, str(script), path, host_dask_address], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # `slow` runs and `quick` brought the resource up in the other worker
            records = read(path)
            if len(count(records, "setup")) == 2 and any(r["event"] == "running" for r in records):
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    records = read(path)
    assert count(records, "teardown") == count(records, "setup")
