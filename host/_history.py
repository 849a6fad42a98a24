"""Recording runs into the run history (``run_assets(history=PATH)``, ``host run``).

The run pays two hand-overs to a writer thread (one per database file and process), never a
write: when it starts (the run's row, marked running, with the pid and the start time of its
process, so a run whose process was killed shows as interrupted) and when it ends (every asset
and resource lifecycle event, from the run's own events, masked, in one transaction: the
assets as a few packed columns, :mod:`host._history_rows`). The writer masks every text with
the run's secrets before it is stored. A database that cannot be written (corrupt, locked,
from a newer host) costs the run nothing but one warning line on the ``host.history`` logger.
:func:`flush` waits for what was handed over (writing what the writer thread has not started
itself); it runs at interpreter exit, and ``host run`` and the history commands call it.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import contextvars
import functools
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host._events import Event, RunResult, describe_exception
from host._history_rows import (
    ASSET_DETAIL_COLUMNS,
    LOG_COLUMNS,
    RESOURCE_COLUMNS,
    RunRecord,
    asset_rows,
    log_rows,
    record_of,
    resource_rows,
    run_columns,
)
from host._history_schema import (
    HistoryError,
    describe_database_error,
    open_database,
    transaction,
)
from host._processes import process_start
from host._secrets import mask

__all__ = [
    "Captured",
    "Recording",
    "RunRecord",
    "asset_rows",
    "capture",
    "flush",
    "log_rows",
    "process_start",
    "record_of",
    "resource_rows",
    "start_recording",
]

_log = logging.getLogger("host.history")

#: How a run ended, as stored: ``running`` until it ends (or its process is found gone).
OUTCOMES = ("running", "succeeded", "failed", "interrupted")


# -- the writer ---------------------------------------------------------------------------------


class _Writer:
    """One database file's writer in this process: runs the jobs handed to it in order, one at
    a time, on its own thread, or on the thread that waits for them (:meth:`drain`): a thread
    that has to wait for the record anyway writes it itself rather than sleep while another
    thread is woken to do it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self._pending: collections.deque[Callable[[_Writer], None]] = collections.deque()
        self._handed = threading.Condition()  # guards _pending; notified when a job is put
        self._running = threading.Lock()  # held while jobs are taken and run
        self.thread = threading.Thread(
            target=self._loop, name=f"host history writer ({path})", daemon=True
        )
        self.thread.start()

    def put(self, job: Callable[[_Writer], None]) -> None:
        """Hand ``job`` over; it runs after every job handed over before it."""
        with self._handed:
            self._pending.append(job)
            self._handed.notify()

    def drain(self) -> None:
        """Run every job handed over and not yet run, in this thread, after the one running
        now (if any) has finished: on return, everything handed over before is done."""
        with self._running:
            while self._run_next():
                pass

    def _loop(self) -> None:
        while True:
            with self._handed:
                while not self._pending:
                    self._handed.wait()
            self.drain()

    def _run_next(self) -> bool:
        # Taken only while _running is held, so the jobs run in order, one at a time.
        with self._handed:
            if not self._pending:
                return False
            job = self._pending.popleft()
        try:
            job(self)
        except Exception as exc:  # the job reports its own failure; the writer goes on
            _log.debug("history job failed: %s", describe_exception(exc))
            self._reset()
        return True

    def connection(self) -> sqlite3.Connection:
        """The writer's connection, opened (and the schema migrated) on first use."""
        if self.conn is None:
            self.conn = open_database(self.path)
        return self.conn

    def _reset(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
        self.conn = None


_writers: dict[Path, _Writer] = {}
_writers_lock = threading.Lock()


def _writer(path: Path) -> _Writer:
    with _writers_lock:
        writer = _writers.get(path)
        if writer is None:
            writer = _writers[path] = _Writer(path)
        return writer


_process: list[tuple[int, str, str | None]] = []


def _this_process() -> tuple[int, str, str | None]:
    """(pid, host name, start token) of this process, read once (again after a fork)."""
    if not _process or _process[0][0] != os.getpid():
        pid = os.getpid()
        _process[:] = [(pid, socket.gethostname(), process_start(pid))]
    return _process[0]


def _forked() -> None:
    # A forked child has none of its parent's threads; it starts its own writers if it records.
    _writers.clear()
    if _writers_lock.locked():
        _writers_lock.release()


os.register_at_fork(after_in_child=_forked)


def flush(path: Path | None = None) -> None:
    """Wait until everything handed to the writer of ``path`` (default: every writer) is
    written, or has failed and been reported: what its thread has not yet started is written
    by the calling thread (see :meth:`_Writer.drain`)."""
    with _writers_lock:
        writers = [w for p, w in _writers.items() if path is None or p == path]
    for writer in writers:
        writer.drain()


atexit.register(flush)


@functools.lru_cache(maxsize=1)
def _plugin_versions() -> str:
    """The distributions of the host's entry points and their versions (JSON), read once per
    process: the installed distributions do not change under a running process."""
    from host._discovery import discover_plugins

    versions: dict[str, str] = {}
    for info in discover_plugins():
        if info.distribution:
            versions[info.distribution] = info.version or "?"
    return json.dumps(dict(sorted(versions.items())))


@functools.lru_cache(maxsize=16)
def _planned_json(planned: tuple[str, ...]) -> str:
    """``planned`` as stored (a JSON list), made once for the runs of one plan."""
    return json.dumps(list(planned))


class Recording:
    """One run being recorded: :meth:`finish` or :meth:`interrupted` ends it.

    Made by :func:`start_recording`; every method only hands a job to the writer thread.
    """

    def __init__(
        self,
        path: Path,
        run: dict[str, Any],
        types: Mapping[str, type],
        secrets: Collection[str],
    ) -> None:
        self.path = path
        self.run = run
        self.types = types
        self.secrets = tuple(secrets)
        self.failed = False
        self._writer = _writer(path)
        self._writer.put(self._guarded(self._start))

    @property
    def run_id(self) -> str:
        """The run's id."""
        return str(self.run["run_id"])

    def _report(self, exc: BaseException) -> None:
        if not self.failed:
            self.failed = True
            problem = str(exc) if isinstance(exc, HistoryError) else describe_exception(exc)
            _log.warning(
                "could not record run %s in the run history: %s; the run itself is not affected",
                self.run_id,
                mask(problem, self.secrets),
            )

    def _guarded(self, job: Callable[[sqlite3.Connection], None]) -> Callable[[_Writer], None]:
        def run(writer: _Writer) -> None:
            if self.failed:
                return
            try:
                job(writer.connection())
            except sqlite3.Error as exc:
                self._report(HistoryError(describe_database_error(self.path, exc)))
                raise
            except Exception as exc:
                self._report(exc)
                raise

        return run

    def _start(self, conn: sqlite3.Connection) -> None:
        row = dict(self.run)
        row["planned"] = _planned_json(tuple(row["planned"]))
        row["selection"] = None if row["selection"] is None else json.dumps(row["selection"])
        row["plugins"] = _plugin_versions()
        columns = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        # One statement, so its own transaction: REPLACE deletes a row of the same run id
        # (and, by the foreign keys' ON DELETE CASCADE, what was stored with it) first.
        conn.execute(f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({marks})", row)

    def _end(self, events: Sequence[Event], outcome: str, reason: str | None) -> None:
        def job(conn: sqlite3.Connection) -> None:
            run_id = self.run_id
            columns = run_columns(events, self.run["planned"], self.types, self.secrets)
            finished = columns.finished_at or time.time()
            duration = columns.duration_of
            if duration is None:
                duration = finished - (columns.started_at or self.run["started"])
            with transaction(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO asset_columns "
                    "(run_id, status, pid, started, finished, duration) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        columns.status,
                        columns.pid,
                        columns.started,
                        columns.finished,
                        columns.duration,
                    ),
                )
                for table, names, rows in (
                    ("asset_details", ASSET_DETAIL_COLUMNS, columns.details),
                    ("resource_events", RESOURCE_COLUMNS, columns.resources),
                    ("logs", LOG_COLUMNS, columns.logs),
                ):
                    if rows:
                        conn.executemany(
                            f"INSERT OR REPLACE INTO {table} (run_id, {', '.join(names)}) "
                            f"VALUES (?, {', '.join('?' * len(names))})",
                            [(run_id, *row) for row in rows],
                        )
                conn.execute(
                    "UPDATE runs SET finished = ?, duration = ?, outcome = ?, reason = ? "
                    "WHERE run_id = ?",
                    (
                        finished,
                        duration,
                        outcome,
                        None if reason is None else mask(reason, self.secrets),
                        run_id,
                    ),
                )

        self._writer.put(self._guarded(job))

    def finish(self, result: RunResult) -> None:
        """The run returned ``result``: store its events and outcome."""
        self._end(result.events, "succeeded" if result.success else "failed", None)

    def interrupted(self, events: Sequence[Event], exc: BaseException) -> None:
        """The run ended by ``exc`` (an interrupt, a signal, an error of the host) after
        ``events``: store those and the outcome ``interrupted``."""
        self._end(tuple(events), "interrupted", describe_exception(exc))

    def outputs(self, shown: Mapping[str, str]) -> None:
        """Store the outputs as ``host run`` showed them (asset key -> masked short text)."""

        position = {key: i for i, key in enumerate(self.run["planned"])}
        rows = [
            (self.run_id, position[key], mask(text, self.secrets))
            for key, text in shown.items()
            if key in position
        ]

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO asset_details (run_id, position, output) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, position) DO UPDATE SET output = excluded.output",
                rows,
            )

        self._writer.put(self._guarded(job))

    def wait(self) -> None:
        """Wait until this run's record is written (or its failure reported)."""
        flush(self.path)


@dataclass
class Captured:
    """What :func:`capture` saw: the recordings started in its context (in order)."""

    config: str | None = None
    recordings: list[Recording] = field(default_factory=list)


_capture: contextvars.ContextVar[Captured | None] = contextvars.ContextVar(
    "host_history_capture", default=None
)


@contextlib.contextmanager
def capture(config: str | os.PathLike[str] | None = None) -> Iterator[Captured]:
    """Within it, runs recorded in this context name ``config`` as their run config, and
    their :class:`Recording` is kept in what it yields (for ``host run``)."""
    captured = Captured(None if config is None else os.path.abspath(config))
    token = _capture.set(captured)
    try:
        yield captured
    finally:
        _capture.reset(token)


def start_recording(
    path: str | os.PathLike[str],
    run_id: str,
    *,
    executor: str,
    planned: Sequence[str],
    selection: Iterable[str] | None,
    types: Mapping[str, type],
    secrets: Collection[str],
    config: str | os.PathLike[str] | None = None,
) -> Recording:
    """Start recording run ``run_id`` into the history at ``path`` (made when absent).

    Never raises for the database's sake: a problem with it is one warning on the
    ``host.history`` logger, and the run goes on.
    """
    from host._version import __version__

    captured = _capture.get()
    if config is None and captured is not None:
        config = captured.config
    pid, hostname, started = _this_process()
    run = {
        "run_id": run_id,
        "config": None if config is None else str(config),
        "selection": None if selection is None else list(selection),
        "executor": executor,
        "planned": list(planned),
        "started": time.time(),
        "outcome": "running",
        "pid": pid,
        "hostname": hostname,
        "process_start": started,
        "host_version": __version__,
    }
    recording = Recording(Path(os.path.abspath(path)), run, types, secrets)
    if captured is not None:
        captured.recordings.append(recording)
    return recording
