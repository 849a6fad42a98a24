"""What a session does where one could expect otherwise (``specs/sessions.md``, "Choices"):
an ``EnvVar`` is read when its resource comes up, a plain value bound to a session-scoped key
is held like a config, a session resource's teardown sees the run that brought it up, and
``max_workers`` counts per run."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from host import (
    AssetDefinition,
    ConfigError,
    ConfigurableResource,
    EnvVar,
    InitResourceContext,
    RunResult,
    Session,
    asset,
)
from tests.processes import assert_no_child_left, children
from tests.recording import read, write


class Token(ConfigurableResource):
    """Session-scoped; records the token it came up with, and the run ids it saw."""

    host_scope: ClassVar[Literal["run", "session"]] = "session"

    record: str
    token: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", token=self.token, run=context.run_id)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", token=self.token, run=context.run_id)


@asset
def token_of(token: Token) -> str:
    return token.token


@asset
def plain_of(value: str) -> str:
    return value


def test_an_envvar_is_read_when_its_session_resource_comes_up_and_kept_for_the_session(
    record: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_TEST_SESSION_TOKEN", "first")
    resources = {"token": Token(record=record, token=EnvVar("HOST_TEST_SESSION_TOKEN"))}
    with Session() as session:
        before = session.run_assets([token_of], resources).outputs["token_of"]
        monkeypatch.setenv("HOST_TEST_SESSION_TOKEN", "second")
        after = session.run_assets([token_of], resources).outputs["token_of"]
    assert before == after == "first"  # the same resource, up since the first run
    records = read(record)
    assert [(r["event"], r["token"]) for r in records] == [
        ("setup", "first"),
        ("teardown", "first"),
    ]
    # Its teardown, at close, sees the run that brought it up.
    assert {r["run"] for r in records} == {session.runs[0]}


def test_a_plain_value_bound_to_a_session_scoped_key_cannot_change_within_the_session() -> None:
    scoped = {"resources": {"value": {"scope": "session"}}}
    with Session() as session:
        first = session.run_assets([plain_of], {"value": "a"}, run_config=scoped)
        again = session.run_assets([plain_of], {"value": "a"}, run_config=scoped)
        with pytest.raises(ConfigError, match="'value' is session-scoped"):
            session.run_assets([plain_of], {"value": "b"}, run_config=scoped)
        # Not session-scoped, the key takes a new value in each run.
        other = session.run_assets([plain_of], {"value": "b"})
    assert first.outputs == again.outputs == {"plain_of": "a"}
    assert other.outputs == {"plain_of": "b"}
    assert len(session.runs) == 3  # the refused run never started


def _meet(folder: str, count: int) -> int:
    """Write this process's pid into ``folder``; wait until ``count`` processes did."""
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 30
    while len(os.listdir(folder)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {sorted(os.listdir(folder))} of {count} processes came")
        time.sleep(0.01)
    return os.getpid()


def make_meeting(name: str, folder: str, count: int) -> AssetDefinition:
    @asset(name=name)
    def meeting() -> int:
        return _meet(folder, count)

    return meeting


def test_max_workers_counts_per_run_so_concurrent_runs_of_a_session_each_get_theirs(
    tmp_path: Path,
) -> None:
    before = set(children())
    folder = str(tmp_path / "pids")
    os.mkdir(folder)
    # Two runs at once, two assets each that wait until four processes met: with two workers
    # a run, four worker processes take part.
    assets = [make_meeting(f"meet_{i}", folder, 4) for i in range(2)]
    results: list[RunResult] = []
    with Session("multiprocess", {"max_workers": 2}) as session:
        threads = [
            threading.Thread(target=lambda: results.append(session.run_assets(assets)))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert len(results) == 2 and all(r.success for r in results), results
    pids = {pid for r in results for pid in r.outputs.values()}
    assert len(pids) == 4 and os.getpid() not in pids
    assert_no_child_left(before)
