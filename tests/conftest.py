"""Shared fixtures: the executors every behaviour-contract test runs on, and record files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: (executor name, executor_config) pairs the behaviour contract runs on. Each executor joins
#: the contract by adding itself here.
EXECUTORS: list[Any] = [
    pytest.param(("in_process", {}), id="in_process"),
]


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """An (executor name, executor_config) pair; tests run once per executor."""
    name, config = request.param
    return name, dict(config)


@pytest.fixture
def record(tmp_path: Path) -> str:
    """A fresh record file for resources of tests.recording to write to."""
    return str(tmp_path / "records.jsonl")
