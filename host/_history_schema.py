"""The run history's sqlite database: where it is, how it is opened, its schema and migrations.

One file, WAL mode (readers never wait for the one writer; two processes writing wait for each
other up to :data:`BUSY_TIMEOUT` seconds). The schema's version is ``PRAGMA user_version``; a
database at an older version is migrated forward, one step at a time, each step in its own
transaction; a database from a newer host is refused (:class:`HistoryError`) and never written.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from host._errors import HostError
from host._history_rows import STATUS_CODES, pack_floats, pack_ints

__all__ = [
    "BUSY_TIMEOUT",
    "DEFAULT_NAME",
    "HOME_ENV",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "HistoryError",
    "default_path",
    "describe_database_error",
    "open_database",
    "transaction",
]

#: Where the history goes when neither ``--history`` nor ``HOST_HOME`` says otherwise: this
#: path beside the run config (or under the current directory for the history commands).
DEFAULT_NAME = Path(".host") / "history.db"
#: The environment variable naming a folder for the history (``$HOST_HOME/history.db``).
HOME_ENV = "HOST_HOME"
#: Seconds a writer waits for another process's write to finish before giving up.
BUSY_TIMEOUT = 10.0


def _assets_as_columns(conn: sqlite3.Connection) -> None:
    """Step 4: the assets of a run as packed columns and rows of details only for the assets
    with a text, instead of a row per asset (writing a run of 1000 assets is one row, not
    1000); every run recorded before is carried over, and the old table dropped."""
    for statement in _ASSET_COLUMNS_TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)
    code_of = {word: code for code, word in STATUS_CODES.items()}
    nan = float("nan")
    for run_id, planned_text in conn.execute("SELECT run_id, planned FROM runs").fetchall():
        planned = json.loads(planned_text)
        rows = conn.execute(
            "SELECT position, status, pid, started, finished, duration, upstream, error_type, "
            "error_message, error_traceback, output FROM assets WHERE run_id = ?",
            (run_id,),
        ).fetchall()
        if not rows:  # its process ended before the run did: nothing stored yet
            continue
        n = len(planned)
        status, pids = ["n"] * n, [0] * n
        starts, ends, durations = [nan] * n, [nan] * n, [nan] * n
        details = []
        for position, word, pid, started, finished, duration, *texts in rows:
            if not 0 <= position < n:
                continue
            status[position] = code_of.get(word, "n")
            pids[position] = pid or 0
            starts[position] = nan if started is None else started
            ends[position] = nan if finished is None else finished
            durations[position] = nan if duration is None else duration
            if any(text is not None for text in texts):
                details.append((run_id, position, *texts))
        conn.execute(
            "INSERT INTO asset_columns (run_id, status, pid, started, finished, duration) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                run_id,
                "".join(status),
                pack_ints(pids),
                pack_floats(starts),
                pack_floats(ends),
                pack_floats(durations),
            ),
        )
        conn.executemany(
            "INSERT INTO asset_details (run_id, position, upstream, error_type, error_message, "
            "error_traceback, output) VALUES (?, ?, ?, ?, ?, ?, ?)",
            details,
        )
    conn.execute("DROP TABLE assets")


_ASSET_COLUMNS_TABLES = """
    CREATE TABLE asset_columns (
        run_id TEXT PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
        status TEXT NOT NULL,
        pid BLOB NOT NULL,
        started BLOB NOT NULL,
        finished BLOB NOT NULL,
        duration BLOB NOT NULL
    );
    CREATE TABLE asset_details (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        upstream TEXT,
        error_type TEXT,
        error_message TEXT,
        error_traceback TEXT,
        output TEXT,
        PRIMARY KEY (run_id, position)
    );
"""

#: Step ``n`` (0-based) takes a database from version ``n`` to version ``n + 1``: a script of
#: SQL statements, or a function given the connection (inside the step's transaction).
MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # 1: runs, their assets and every resource lifecycle event.
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        config TEXT,
        selection TEXT,
        executor TEXT NOT NULL,
        planned TEXT NOT NULL,
        started REAL NOT NULL,
        finished REAL,
        duration REAL,
        outcome TEXT NOT NULL,
        reason TEXT,
        pid INTEGER NOT NULL,
        hostname TEXT NOT NULL,
        process_start TEXT,
        host_version TEXT NOT NULL,
        plugins TEXT NOT NULL
    );
    CREATE INDEX runs_by_start ON runs (started);
    CREATE TABLE assets (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        asset_key TEXT NOT NULL,
        status TEXT NOT NULL,
        pid INTEGER,
        started REAL,
        finished REAL,
        duration REAL,
        upstream TEXT,
        error_type TEXT,
        error_message TEXT,
        error_traceback TEXT,
        PRIMARY KEY (run_id, asset_key)
    );
    CREATE TABLE resource_events (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        resource_key TEXT NOT NULL,
        resource_type TEXT,
        distribution TEXT,
        pid INTEGER NOT NULL,
        phase TEXT NOT NULL,
        started REAL NOT NULL,
        duration REAL NOT NULL,
        error_type TEXT,
        error_message TEXT,
        error_traceback TEXT,
        PRIMARY KEY (run_id, seq)
    );
    """,
    # 2: the shortened output of each asset (as `host run` shows it), and a table for the run's
    # log records, which runs do not carry yet.
    """
    ALTER TABLE assets ADD COLUMN output TEXT;
    CREATE TABLE logs (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        timestamp REAL NOT NULL,
        pid INTEGER,
        logger TEXT NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    """,
    # 3: the step each log record came from (an asset, or a resource's phase).
    """
    ALTER TABLE logs ADD COLUMN asset_key TEXT;
    ALTER TABLE logs ADD COLUMN resource_key TEXT;
    ALTER TABLE logs ADD COLUMN phase TEXT;
    """,
    # 4: the assets of a run as packed columns (see _assets_as_columns).
    _assets_as_columns,
    # 5: a resource's scope (run or session), and what a session resource's reuse or
    # recycling says (phases reused, recycled).
    """
    ALTER TABLE resource_events ADD COLUMN scope TEXT;
    ALTER TABLE resource_events ADD COLUMN note TEXT;
    """,
)
#: The schema version this host writes and reads.
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryError(HostError):
    """The run history cannot be read or written (corrupt, locked, from a newer host, missing)."""


def default_path(config: Path | None = None) -> Path:
    """The history database: ``$HOST_HOME/history.db`` if set, else ``.host/history.db`` beside
    ``config`` (a run config file), or under the current directory."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / DEFAULT_NAME.name
    base = config.resolve().parent if config is not None else Path.cwd()
    return base / DEFAULT_NAME


def open_database(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (and, with ``create``, make and migrate) the history at ``path``.

    Args:
        path: the database file.
        create: make the file (and its folder) when absent, and migrate an older schema;
            without it a missing file is an error and nothing is written (for readers).

    Returns:
        A connection in WAL mode with foreign keys on, at :data:`SCHEMA_VERSION`.

    Raises:
        HistoryError: the file is missing (``create`` false), not a database, locked past
            :data:`BUSY_TIMEOUT`, or from a newer host (left untouched); the message names the
            file and what to do.
    """
    if not create and not path.is_file():
        raise HistoryError(
            f"no run history at {path}: no run has been recorded there (host run records into "
            f".host/history.db beside the run config; choose another with --history or "
            f"{HOME_ENV})"
        )
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise HistoryError(f"the run history {path} cannot be opened: {exc}") from exc
    try:
        _prepare(conn, path, create)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path, create: bool) -> None:
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"the run history {path} has schema version {version}, newer than this host's "
                f"({SCHEMA_VERSION}): it was written by a newer host. Upgrade host, or use "
                f"another file (--history or {HOME_ENV}); the file was not changed."
            )
        if version == 0:
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master LIMIT 3")]
            if tables:
                raise HistoryError(
                    f"{path} is a sqlite database of something else, not a run history (it "
                    f"has no schema version and holds {', '.join(tables)}); choose another "
                    f"file with --history or {HOME_ENV}; the file was not changed"
                )
        if create and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if version < SCHEMA_VERSION:
            if not create:
                raise HistoryError(
                    f"the run history {path} has schema version {version}, older than this "
                    f"host's ({SCHEMA_VERSION}); the next run recorded there migrates it"
                )
            migrate(conn, version)
    except sqlite3.DatabaseError as exc:
        raise HistoryError(describe_database_error(path, exc)) from exc


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Apply the migrations after ``version``, each with its new ``user_version`` in one
    transaction (a process that loses the race to migrate finds the work done)."""
    for step in range(version, SCHEMA_VERSION):
        with transaction(conn):
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current == step:
                change = MIGRATIONS[step]
                if callable(change):
                    change(conn)
                else:
                    for statement in change.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA user_version={step + 1}")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if the body raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def describe_database_error(path: Path, exc: sqlite3.Error) -> str:
    """One line naming the history file and what is wrong with it (locked, corrupt, ...)."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return (
            f"the run history {path} is locked by another process (waited {BUSY_TIMEOUT:g} s): "
            f"{text}"
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            f"the run history {path} is not a readable sqlite database ({text}): move it aside "
            f"to start a new history, or choose another with --history or {HOME_ENV}"
        )
    return f"the run history {path} cannot be used: {text}"
