"""Fixtures: a trace file per test, and no other hook plugin loaded into the runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from host_plugin_trace import ENV_VAR


@pytest.fixture(autouse=True)
def _only_explicit_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs load only the plugins a test passes: no installed hook plugin is autoloaded."""
    monkeypatch.setenv("HOST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def trace_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``HOST_TRACE_FILE`` set to a fresh file in the test's temporary directory."""
    path = tmp_path / "trace.jsonl"
    monkeypatch.setenv(ENV_VAR, str(path))
    return path
