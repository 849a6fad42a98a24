"""SQLiteResource on real database files: commit, roll back, read-only, pragmas, closing."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pydantic
import pytest
from host_plugin_sqlite import MEMORY, SQLiteReadOnlyError, SQLiteResource

from host import (
    FrozenResourceError,
    ResourceEvent,
    ResourceSetupError,
    RunFailure,
    asset,
    run_assets,
)

Names = Callable[[Path], list[str]]


def test_the_package_registers_the_sqlite_resource_type() -> None:
    (entry_point,) = entry_points(group="host.resources", name="sqlite")
    assert entry_point.value == "host_plugin_sqlite:SQLiteResource"
    assert entry_point.dist is not None and entry_point.dist.name == "host-plugin-sqlite"
    assert entry_point.load() is SQLiteResource


def test_rows_written_by_assets_are_committed_at_the_end_of_the_run(
    db_path: Path, committed_names: Names
) -> None:
    @asset
    def first(db: SQLiteResource) -> int:
        return db.execute("INSERT INTO items (name) VALUES (?)", ("ann",)).rowcount

    @asset
    def second(db: SQLiteResource, first: int) -> int:
        db.executemany("INSERT INTO items (name) VALUES (:name)", [{"name": "bob"}, {"name": "cy"}])
        return first + 2

    @asset
    def count(db: SQLiteResource, second: int) -> Any:
        # The same connection: the run's uncommitted writes are visible.
        return db.query_value("SELECT count(*) FROM items")

    result = run_assets([first, second, count], {"db": SQLiteResource(path=str(db_path))})

    assert result.outputs == {"first": 1, "second": 3, "count": 3}
    assert committed_names(db_path) == ["ann", "bob", "cy"]
    enters = [e for e in result.events_of(ResourceEvent) if e.phase == "yield_enter"]
    assert [(e.resource_key, e.error) for e in enters] == [("db", None)]


def test_query_returns_plain_dicts(db_path: Path) -> None:
    @asset
    def rows(db: SQLiteResource) -> list[dict[str, Any]]:
        db.execute("INSERT INTO items (name) VALUES ('ann'), ('bob')")
        return db.query("SELECT id, name FROM items WHERE name = ?", ["bob"])

    result = run_assets([rows], {"db": SQLiteResource(path=db_path)})

    assert result.outputs["rows"] == [{"id": 2, "name": "bob"}]


def test_the_connection_is_closed_after_the_run(db_path: Path) -> None:
    @asset
    def grab(db: SQLiteResource) -> sqlite3.Connection:
        return db.connection

    configured = SQLiteResource(path=str(db_path))
    result = run_assets([grab], {"db": configured})

    connection = result.outputs["grab"]
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("SELECT 1")
    # The object the user passed is never brought up itself (each run uses a fresh copy).
    with pytest.raises(RuntimeError, match="is not open"):
        configured.query("SELECT 1")


def test_each_run_opens_its_own_connection(committed_names: Names, db_path: Path) -> None:
    @asset
    def write(db: SQLiteResource) -> int:
        db.execute("INSERT INTO items (name) VALUES ('x')")
        return db.query_value("SELECT count(*) FROM items")

    db = SQLiteResource(path=str(db_path))
    assert run_assets([write], {"db": db}).outputs["write"] == 1
    assert run_assets([write], {"db": db}).outputs["write"] == 2
    assert committed_names(db_path) == ["x", "x"]


def test_a_memory_database_is_fresh_in_each_run() -> None:
    @asset
    def tables(db: SQLiteResource) -> list[dict[str, Any]]:
        found = db.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        db.execute("CREATE TABLE t (x)")
        return found

    db = SQLiteResource(path=MEMORY)
    assert run_assets([tables], {"db": db}).outputs["tables"] == []
    assert run_assets([tables], {"db": db}).outputs["tables"] == []


def _raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # the run's handler raises SystemExit(143) here


@pytest.mark.parametrize(
    ("ending", "interrupt"),
    [(KeyboardInterrupt, _raise_keyboard_interrupt), (SystemExit, _sigterm)],
    ids=["KeyboardInterrupt", "SIGTERM"],
)
def test_an_exception_ending_the_run_rolls_back(
    db_path: Path,
    committed_names: Names,
    ending: type[BaseException],
    interrupt: Callable[[], None],
) -> None:
    # What ends a run: Ctrl-C, or SIGTERM to it (a sys.exit() in an asset only fails the asset).
    @asset
    def write(db: SQLiteResource) -> None:
        db.execute("INSERT INTO items (name) VALUES ('lost')")

    @asset
    def interrupted(write: None) -> None:
        interrupt()

    with pytest.raises(ending):
        run_assets([write, interrupted], {"db": SQLiteResource(path=str(db_path))})

    assert committed_names(db_path) == []


def test_a_failed_asset_keeps_its_writes_unless_it_used_a_transaction(
    db_path: Path, committed_names: Names
) -> None:
    @asset
    def plain(db: SQLiteResource) -> None:
        db.execute("INSERT INTO items (name) VALUES ('plain')")
        raise ValueError("plain failed")

    @asset
    def atomic(db: SQLiteResource) -> None:
        with db.transaction():
            db.execute("INSERT INTO items (name) VALUES ('atomic')")
            raise ValueError("atomic failed")

    @asset
    def fine(db: SQLiteResource) -> None:
        with db.transaction():
            db.execute("INSERT INTO items (name) VALUES ('fine')")

    result = run_assets(
        [plain, atomic, fine], {"db": SQLiteResource(path=str(db_path))}, raise_on_error=False
    )

    assert not result.success
    assert sorted(result.failures) == ["atomic", "plain"]
    assert committed_names(db_path) == ["plain", "fine"]


def test_transactions_nest(db_path: Path, committed_names: Names) -> None:
    @asset
    def nested(db: SQLiteResource) -> list[dict[str, Any]]:
        with db.transaction():
            db.execute("INSERT INTO items (name) VALUES ('outer')")
            with contextlib.suppress(LookupError), db.transaction():
                db.execute("INSERT INTO items (name) VALUES ('inner')")
                raise LookupError
        return db.query("SELECT name FROM items")

    result = run_assets([nested], {"db": SQLiteResource(path=str(db_path))})

    assert result.outputs["nested"] == [{"name": "outer"}]
    assert committed_names(db_path) == ["outer"]


def test_ddl_in_a_transaction_block_is_rolled_back_with_the_run(db_path: Path) -> None:
    @asset
    def ddl(db: SQLiteResource) -> None:
        with db.transaction():
            db.execute("CREATE TABLE extra (x)")

    @asset
    def interrupted(ddl: None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_assets([ddl, interrupted], {"db": SQLiteResource(path=str(db_path))})

    with contextlib.closing(sqlite3.connect(db_path)) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert tables.fetchall() == [("items",)]


def test_read_only_reads_and_refuses_writes_with_a_clear_error(
    db_path: Path, committed_names: Names
) -> None:
    with contextlib.closing(sqlite3.connect(db_path)) as connection:
        connection.execute("INSERT INTO items (name) VALUES ('ann')")
        connection.commit()

    @asset
    def reader(db: SQLiteResource) -> list[dict[str, Any]]:
        return db.query("SELECT name FROM items")

    @asset
    def writer(db: SQLiteResource) -> None:
        db.execute("INSERT INTO items (name) VALUES ('bob')")

    @asset
    def catches_operational_error(db: SQLiteResource) -> str:
        try:
            db.execute("DELETE FROM items")
        except sqlite3.OperationalError as exc:
            return type(exc).__name__
        return "no error"

    result = run_assets(
        [reader, writer, catches_operational_error],
        {"db": SQLiteResource(path=str(db_path), read_only=True)},
        raise_on_error=False,
    )

    assert result.outputs == {
        "reader": [{"name": "ann"}],
        "catches_operational_error": (SQLiteReadOnlyError.__name__),
    }
    error = result.failures["writer"]
    assert error.type == "host_plugin_sqlite._resource.SQLiteReadOnlyError"
    assert "read-only (read_only = true)" in error.message
    assert str(db_path) in error.message
    assert committed_names(db_path) == ["ann"]


def test_read_only_on_a_missing_file_fails_bring_up_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"

    @asset
    def reader(db: SQLiteResource) -> Any:
        return db.query_value("SELECT 1")

    with pytest.raises(RunFailure) as caught:
        run_assets([reader], {"db": SQLiteResource(path=str(missing), read_only=True)})

    error = caught.value.__cause__
    assert isinstance(error, ResourceSetupError)
    assert error.resource_key == "db"
    assert error.resource_class.endswith("SQLiteResource")
    assert error.distribution == "host-plugin-sqlite 0.1.0"
    assert f"cannot open SQLite database {str(missing)!r} read-only" in str(error)
    assert isinstance(error.__cause__, sqlite3.OperationalError)
    assert not missing.exists()


def test_read_only_memory_database_is_a_validation_error() -> None:
    with pytest.raises(pydantic.ValidationError, match="read_only needs a database file"):
        SQLiteResource(path=MEMORY, read_only=True)


def test_pragmas_are_applied_when_the_connection_opens(tmp_path: Path) -> None:
    path = tmp_path / "pragmas.db"

    @asset
    def settings(db: SQLiteResource) -> dict[str, Any]:
        return {
            name: db.query_value(f"PRAGMA {name}")
            for name in ("journal_mode", "foreign_keys", "user_version", "encoding")
        }

    db = SQLiteResource(
        path=str(path),
        pragmas={"journal_mode": "WAL", "foreign_keys": 1, "user_version": 7, "encoding": "UTF-8"},
    )
    result = run_assets([settings], {"db": db})

    assert result.outputs["settings"] == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "user_version": 7,
        "encoding": "UTF-8",
    }
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (7,)


def test_a_pragma_value_cannot_inject_sql(db_path: Path) -> None:
    @asset
    def tables(db: SQLiteResource) -> list[dict[str, Any]]:
        return db.query("SELECT name FROM sqlite_master WHERE type = 'table'")

    db = SQLiteResource(path=str(db_path), pragmas={"journal_mode": "WAL'; DROP TABLE items; --"})
    result = run_assets([tables], {"db": db})

    assert result.outputs["tables"] == [{"name": "items"}]


@pytest.mark.parametrize(
    "name", ["journal_mode; DROP TABLE items", "journal mode", "1journal", "main.journal_mode", ""]
)
def test_a_pragma_name_that_is_not_an_identifier_is_a_validation_error(name: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="is not an identifier") as caught:
        SQLiteResource(path=MEMORY, pragmas={name: "WAL"})
    assert caught.value.errors()[0]["loc"] == ("pragmas",)


def test_an_unknown_pragma_name_is_a_validation_error_with_a_suggestion() -> None:
    with pytest.raises(pydantic.ValidationError, match="unknown pragma 'jurnal_mode'; did you"):
        SQLiteResource(path=MEMORY, pragmas={"jurnal_mode": "WAL"})


def test_configuration_is_validated_and_frozen(db_path: Path) -> None:
    db = SQLiteResource(path=db_path, timeout=1)
    assert db.path == str(db_path)
    assert repr(db) == (
        f"SQLiteResource(path={str(db_path)!r}, read_only=False, pragmas={{}}, timeout=1.0)"
    )
    with pytest.raises(FrozenResourceError):
        db.path = "other.db"
    with pytest.raises(pydantic.ValidationError, match="must name a database file"):
        SQLiteResource(path="")
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 0"):
        SQLiteResource(path=MEMORY, timeout=-1)
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        SQLiteResource(path=MEMORY, isolation="none")


def test_threads_of_one_asset_share_the_connection(db_path: Path, committed_names: Names) -> None:
    @asset
    def fan_out(db: SQLiteResource) -> Any:
        def insert(n: int) -> None:
            with db.transaction():
                for i in range(20):
                    db.execute("INSERT INTO items (name) VALUES (?)", (f"{n}-{i}",))

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(insert, range(4)))
        return db.query_value("SELECT count(*) FROM items")

    result = run_assets([fan_out], {"db": SQLiteResource(path=str(db_path))})

    assert result.outputs["fan_out"] == 80
    assert len(committed_names(db_path)) == 80


@asset
def insert_a(db: SQLiteResource) -> int:
    db.execute("INSERT INTO items (name) VALUES ('a')")
    db.commit()  # SQLite has one writer at a time: let the other workers write
    return os.getpid()


@asset
def insert_b(db: SQLiteResource) -> int:
    db.execute("INSERT INTO items (name) VALUES ('b')")
    db.commit()
    return os.getpid()


@asset
def insert_c(db: SQLiteResource) -> int:
    db.execute("INSERT INTO items (name) VALUES ('c')")
    db.commit()
    return os.getpid()


def test_each_worker_process_opens_its_own_connection(
    db_path: Path, committed_names: Names
) -> None:
    result = run_assets(
        [insert_a, insert_b, insert_c],
        {"db": SQLiteResource(path=str(db_path), pragmas={"journal_mode": "WAL"})},
        executor="multiprocess",
        executor_config={"max_workers": 2},
    )

    pids = set(result.outputs.values())
    assert os.getpid() not in pids
    opened = [e.pid for e in result.events_of(ResourceEvent) if e.phase == "yield_enter"]
    assert sorted(opened) == sorted(pids)
    assert sorted(committed_names(db_path)) == ["a", "b", "c"]
