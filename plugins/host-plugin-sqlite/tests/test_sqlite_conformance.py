"""The sqlite resource passes the host's conformance check and opens like in a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from host_plugin_sqlite import SQLiteResource

from host.testing import check_resource_class, open_resource


def test_sqlite_resource_is_a_well_formed_host_resource(tmp_path: Path) -> None:
    check_resource_class(SQLiteResource, config={"path": str(tmp_path / "conformance.db")})


def test_open_resource_holds_one_connection_and_commits_at_the_end(db_path: Path) -> None:
    with open_resource(SQLiteResource(path=str(db_path))) as db:
        db.execute("INSERT INTO items (name) VALUES (?)", ("from open_resource",))
        assert db.query_value("SELECT count(*) FROM items") == 1
    with open_resource(SQLiteResource(path=str(db_path), read_only=True)) as db:
        assert [row["name"] for row in db.query("SELECT name FROM items")] == [
            "from open_resource"
        ]


def test_an_exception_leaving_the_block_rolls_back(db_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), open_resource(SQLiteResource(path=str(db_path))) as db:
        db.execute("INSERT INTO items (name) VALUES (?)", ("rolled back",))
        raise KeyboardInterrupt
    with open_resource(SQLiteResource(path=str(db_path))) as db:
        assert db.query_value("SELECT count(*) FROM items") == 0
