"""``SQLiteResource``: one sqlite3 connection open for a run, committed or rolled back at its end.

The connection is opened when the first asset that needs the resource starts (in each process
that runs one) and closed when the run ends there. Writes made during the run form one
transaction per process: committed when the run ends normally, rolled back when an exception is
ending the run (KeyboardInterrupt, SIGTERM). Assets that fail do not end the run, so what they
wrote is committed unless they wrote it inside :meth:`SQLiteResource.transaction`.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from host import ConfigurableResource, InitResourceContext

__all__ = ["MEMORY", "Parameters", "SQLiteReadOnlyError", "SQLiteResource"]

#: The ``path`` of a private in-memory database (one per process and run).
MEMORY = ":memory:"

#: Query parameters: a sequence for ``?`` placeholders, a mapping for ``:name`` placeholders.
Parameters = Sequence[Any] | Mapping[str, Any]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class SQLiteReadOnlyError(sqlite3.OperationalError):
    """A statement tried to write to a database the resource opened with ``read_only = true``.

    A subclass of ``sqlite3.OperationalError`` (what sqlite3 itself raises), so existing
    ``except sqlite3.OperationalError`` clauses still catch it; the cause is chained.
    """


@functools.lru_cache(maxsize=1)
def known_pragmas() -> frozenset[str]:
    """The pragma names the linked SQLite library knows (empty if it cannot list them)."""
    with contextlib.closing(sqlite3.connect(MEMORY)) as connection:
        try:
            rows = connection.execute("PRAGMA pragma_list").fetchall()
        except sqlite3.Error:  # built without introspection pragmas
            return frozenset()
    return frozenset(str(row[0]).lower() for row in rows)


def pragma_sql(name: str, value: str | int) -> str:
    """The statement that sets pragma ``name`` (already validated as an identifier).

    Integers are written as numbers, identifier-like strings (``WAL``, ``NORMAL``, ``ON``) as
    keywords, and any other string as a quoted SQL literal, so a value cannot inject SQL.
    """
    if isinstance(value, int):
        rendered = str(int(value))
    elif _IDENTIFIER.match(value):
        rendered = value
    else:
        rendered = "'" + value.replace("'", "''") + "'"
    return f"PRAGMA {name} = {rendered}"


@dataclass
class _Open:
    """What exists while the resource is up: the connection and the lock serialising its use."""

    connection: sqlite3.Connection
    lock: threading.RLock = field(default_factory=threading.RLock)
    savepoints: int = 0


class SQLiteResource(ConfigurableResource):
    """A SQLite database, one connection per run per process, open for the whole run.

    Configuration (fields):

    * ``path``: the database file (created if missing, unless ``read_only``), relative to the
      working directory of the process that brings the resource up; or ``":memory:"`` for a
      private in-memory database (a fresh one in each process and run).
    * ``read_only``: open the file with ``mode=ro``; every write raises
      :class:`SQLiteReadOnlyError`. The file must exist.
    * ``pragmas``: ``PRAGMA name = value`` statements run right after opening, in order (for
      example ``{"journal_mode": "WAL", "foreign_keys": 1}``). Names must be pragma names the
      SQLite library knows; values are integers or strings, never spliced into SQL unquoted.
    * ``timeout``: seconds a statement waits for a lock held by another connection before it
      raises ``sqlite3.OperationalError: database is locked``.

    Lifecycle: :meth:`yield_for_execution` opens the connection and applies the pragmas; when
    the run ends in that process it commits if the run ended normally, rolls back if an
    exception is ending it, and closes the connection in every case. Statements run in Python's
    default transaction mode: ``INSERT``/``UPDATE``/``DELETE``/``REPLACE`` open a transaction that
    lasts until the end of the run (or :meth:`commit`), other statements such as ``CREATE TABLE``
    take effect at once unless a transaction is open; :meth:`transaction` opens one.

    The methods may be called from any thread of the process (the connection is opened with
    ``check_same_thread=False``); each call holds a lock, so calls from several threads do not
    interleave. While the resource is not up (outside a run) they raise ``RuntimeError``.
    """

    path: str = Field(description="Database file, or ':memory:' for an in-memory database.")
    read_only: bool = Field(default=False, description="Open the file read-only (mode=ro).")
    pragmas: dict[str, str | int] = Field(
        default_factory=dict, description="PRAGMA name -> value, applied in order at open."
    )
    timeout: float = Field(
        default=5.0, ge=0, description="Seconds to wait for another connection's lock."
    )

    _open: _Open | None = PrivateAttr(default=None)

    # -- validation -----------------------------------------------------------------------

    @field_validator("path", mode="before")
    @classmethod
    def _path_from_pathlike(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must name a database file, or ':memory:' for an in-memory one")
        return value

    @field_validator("pragmas")
    @classmethod
    def _pragma_names(cls, value: dict[str, str | int]) -> dict[str, str | int]:
        known = known_pragmas()
        for name in value:
            if not _IDENTIFIER.match(name):
                raise ValueError(
                    f"pragma name {name!r} is not an identifier (letters, digits, underscores)"
                )
            if known and name.lower() not in known:
                close = difflib.get_close_matches(name.lower(), sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown pragma {name!r}{hint}")
        return value

    @model_validator(mode="after")
    def _read_only_needs_a_file(self) -> SQLiteResource:
        if self.read_only and self.path == MEMORY:
            raise ValueError("read_only needs a database file; ':memory:' starts empty")
        return self

    # -- lifecycle ------------------------------------------------------------------------

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[SQLiteResource]:
        """Open the connection for the run; commit or roll back, then close, when it ends.

        Yields:
            The resource itself, with its connection open.

        Raises:
            sqlite3.Error: the database cannot be opened (the message names the path) or a
                pragma fails; at the end, the commit fails (the connection is closed anyway).
        """
        connection = self._connect()
        self._open = _Open(connection)
        context.log.debug("opened SQLite database %r (read_only=%s)", self.path, self.read_only)
        try:
            yield self
        except BaseException:
            connection.rollback()
            raise
        else:
            connection.commit()
        finally:
            self._open = None
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            target, uri = Path(self.path).absolute().as_uri() + "?mode=ro", True
        else:
            target, uri = self.path, False
        mode = " read-only" if self.read_only else ""
        try:
            connection = sqlite3.connect(
                target, timeout=self.timeout, uri=uri, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise type(exc)(f"cannot open SQLite database {self.path!r}{mode}: {exc}") from exc
        try:
            for name, value in self.pragmas.items():
                statement = pragma_sql(name, value)
                try:
                    connection.execute(statement).fetchall()
                except sqlite3.Error as exc:
                    raise type(exc)(
                        f"{statement} failed on SQLite database {self.path!r}{mode}: {exc}"
                    ) from exc
        except BaseException:
            connection.close()
            raise
        return connection

    # -- for assets -----------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """The open ``sqlite3.Connection`` (for what the methods below do not cover).

        Statements run on it directly bypass the lock and the read-only error translation.
        Do not close it: the resource closes it when the run ends.
        """
        return self._state().connection

    def execute(self, sql: str, parameters: Parameters = ()) -> sqlite3.Cursor:
        """Run one statement with ``?`` or ``:name`` parameters; return its cursor.

        Use the cursor's ``rowcount`` and ``lastrowid``; read rows with :meth:`query`, which
        returns plain values that can cross process boundaries.

        Raises:
            SQLiteReadOnlyError: the statement writes and the resource is read-only.
        """
        with self._locked() as connection:
            return connection.execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Parameters]) -> sqlite3.Cursor:
        """Run one statement once per parameter set; return its cursor.

        Raises:
            SQLiteReadOnlyError: the statement writes and the resource is read-only.
        """
        with self._locked() as connection:
            return connection.executemany(sql, seq_of_parameters)

    def query(self, sql: str, parameters: Parameters = ()) -> list[dict[str, Any]]:
        """Run a query; return every row as a dict of column name to value.

        Plain dicts, so a query's result can be an asset's output on any executor.
        """
        with self._locked() as connection:
            cursor = connection.execute(sql, parameters)
            try:
                names = [column[0] for column in cursor.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            finally:
                cursor.close()

    def query_value(self, sql: str, parameters: Parameters = ()) -> Any:
        """Run a query; return the first column of its first row, or ``None`` if no row."""
        with self._locked() as connection:
            cursor = connection.execute(sql, parameters)
            try:
                row = cursor.fetchone()
            finally:
                cursor.close()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SQLiteResource]:
        """Make a block atomic: if it raises, everything it wrote is rolled back.

        Opens the run's transaction if none is open and marks a savepoint; leaving the block
        normally keeps its writes in the run's transaction (committed when the run ends, or by
        :meth:`commit`), leaving it with an exception rolls back to the savepoint and re-raises.
        Blocks nest. Other threads wait until the block ends.

        Example::

            @asset
            def orders(db: SQLiteResource) -> int:
                with db.transaction():
                    db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")
                    db.executemany("INSERT INTO orders VALUES (?)", [(1,), (2,)])
                return db.query_value("SELECT count(*) FROM orders")
        """
        state = self._state()
        with state.lock:
            connection = state.connection
            if not connection.in_transaction:
                connection.execute("BEGIN")
            state.savepoints += 1
            name = f"host_sqlite_{state.savepoints}"
            connection.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                connection.execute(f"ROLLBACK TO {name}")
                connection.execute(f"RELEASE {name}")
                raise
            else:
                connection.execute(f"RELEASE {name}")
            finally:
                state.savepoints -= 1

    def commit(self) -> None:
        """Commit what the run wrote so far in this process (it is committed at the end anyway).

        Useful in multi-process runs: SQLite has one writer at a time, and a process that
        holds its write transaction to the end of the run makes the others wait.
        """
        with self._locked() as connection:
            connection.commit()

    def rollback(self) -> None:
        """Roll back what the run wrote since the last commit in this process."""
        with self._locked() as connection:
            connection.rollback()

    # -- internals ------------------------------------------------------------------------

    def _state(self) -> _Open:
        if self._open is None:
            raise RuntimeError(
                f"SQLiteResource({self.path!r}) is not open: its connection exists only during "
                f"a run, in the assets that take the resource as a parameter."
            )
        return self._open

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        state = self._state()
        with state.lock:
            try:
                yield state.connection
            except sqlite3.OperationalError as exc:
                if self.read_only and "readonly" in str(exc):
                    raise SQLiteReadOnlyError(
                        f"SQLite database {self.path!r} is open read-only (read_only = true) "
                        f"and refuses writes: {exc}. Use a resource with read_only = false to "
                        f"write to it."
                    ) from exc
                raise
