"""Shared fixtures: the executors every behaviour-contract test runs on, and record files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings

from tests.processes import assert_no_child_left, children

#: The discovery listing cache (``host._discovery_cache``) of the tests, and of every process
#: they start (which inherit the environment), goes to a directory of this run and is removed
#: with it: a test run never writes into the real ``~/.cache/host``. A test run started by a
#: test (pytester, a subprocess) uses the outer run's directory.
_CACHE_PREFIX = "host-tests-cache-"
_cache_homes: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Point ``XDG_CACHE_HOME`` at a directory of this run (or of the run that started it)."""
    current = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.basename(current).startswith(_CACHE_PREFIX) and os.path.isdir(current):
        return
    _cache_homes.append(tempfile.mkdtemp(prefix=_CACHE_PREFIX))
    os.environ["XDG_CACHE_HOME"] = _cache_homes[-1]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the cache directory this run made."""
    while _cache_homes:
        shutil.rmtree(_cache_homes.pop(), ignore_errors=True)


@dataclass(frozen=True)
class FromFixture:
    """An executor_config value that is the value of a fixture (resolved only when used)."""

    name: str


#: (executor name, executor_config) pairs the behaviour contract runs on. Each executor joins
#: the contract by adding itself here. A config value may be a ``FromFixture``: the dask entry
#: takes the address of the session-wide LocalCluster of ``host_plugin_dask.testing``, so the
#: cluster starts once, and only when a dask test runs.
EXECUTORS: list[Any] = [
    pytest.param(("in_process", {}), id="in_process"),
    pytest.param(("multiprocess", {"max_workers": 2}), id="multiprocess"),
    pytest.param(("dask", {"address": FromFixture("host_dask_address")}), id="dask"),
]


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """An (executor name, executor_config) pair; tests run once per executor."""
    name, config = request.param
    return name, {
        key: request.getfixturevalue(value.name) if isinstance(value, FromFixture) else value
        for key, value in config.items()
    }


@pytest.fixture
def record(tmp_path: Path) -> str:
    """A fresh record file for resources of tests.recording to write to."""
    return str(tmp_path / "records.jsonl")


@pytest.fixture
def no_child_left() -> Iterator[None]:
    """Fail if the test leaves a child process behind (other than multiprocessing's helpers)."""
    before = set(children())
    yield
    assert_no_child_left(before)


# Hypothesis profiles: ``--hypothesis-profile=first-failure`` reports the first failing schedule
# as it was drawn, without shrinking it (shrinking re-runs schedules that kill processes).
settings.register_profile(
    "first-failure", phases=[Phase.explicit, Phase.reuse, Phase.generate], print_blob=True
)
