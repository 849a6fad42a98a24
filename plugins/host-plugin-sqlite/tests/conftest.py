"""Fixtures: real SQLite database files in the test's temporary directory."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file with an empty ``items (id INTEGER PRIMARY KEY, name TEXT)`` table."""
    path = tmp_path / "items.db"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        connection.commit()
    return path


def _committed_names(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return [row[0] for row in connection.execute("SELECT name FROM items ORDER BY id")]


@pytest.fixture
def committed_names() -> Callable[[Path], list[str]]:
    """Reads ``items.name`` of a database file with a fresh connection: what was committed."""
    return _committed_names
