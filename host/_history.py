"""Recording runs into the run history (``run_assets(history=PATH)``, ``host run``).

The run pays two hand-overs to a writer thread (one per database file and process), never a
write: when it starts (the run's row, marked running, with the pid and the start time of its
process, so a run whose process was killed shows as interrupted) and when it ends (every asset
and resource lifecycle event, from the run's own events, masked, in one transaction). The
writer masks every text with the run's secrets before it is stored. A database that cannot be
written (corrupt, locked, from a newer host) costs the run nothing but one warning line on the
``host.history`` logger. :func:`flush` waits for what was handed over; it runs at interpreter
exit, and ``host run`` and the history commands call it.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import json
import logging
import os
import queue
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host._events import (
    AssetFailed,
    AssetSkipped,
    AssetStarted,
    AssetSucceeded,
    ErrorInfo,
    Event,
    LogRecorded,
    ResourceEvent,
    RunFinished,
    RunResult,
    RunStarted,
    describe_exception,
)
from host._history_schema import (
    HistoryError,
    describe_database_error,
    open_database,
    transaction,
)
from host._secrets import mask, mask_error

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


def process_start(pid: int) -> str | None:
    """A token for when process ``pid`` started (``/proc/PID/stat`` field 22, clock ticks
    since boot), or ``None`` when it cannot be read (no such process, no ``/proc``).

    A pid and this token together name one process: a later process given the same pid has
    another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


@dataclass
class RunRecord:
    """One run as the history holds it: what ``host show`` and the picture are made from.

    Attributes:
        run: the run's row (column -> value): ``run_id``, ``executor``, ``planned`` (list),
            ``selection``, ``config``, ``started``, ``finished``, ``duration``, ``outcome``,
            ``reason``, ``pid``, ``host_version``, ``plugins`` (distribution -> version).
        assets: one row per planned asset, in plan order: ``asset_key``, ``status`` (``ok``,
            ``failed``, ``skipped``, ``not run``), ``pid``, ``started``, ``finished``,
            ``duration``, ``upstream``, ``error_type``, ``error_message``,
            ``error_traceback``, ``output``.
        resources: one row per resource lifecycle event, in order: ``resource_key``,
            ``resource_type``, ``distribution``, ``pid``, ``phase``, ``started``,
            ``duration``, ``error_type``, ``error_message``, ``error_traceback``.
    """

    run: dict[str, Any]
    assets: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)


def _error_columns(error: ErrorInfo | None, secrets: Collection[str]) -> dict[str, Any]:
    if error is None:
        return {"error_type": None, "error_message": None, "error_traceback": None}
    error = mask_error(error, secrets)
    return {
        "error_type": error.type,
        "error_message": error.message,
        "error_traceback": error.traceback,
    }


def asset_rows(
    events: Iterable[Event], planned: Sequence[str], secrets: Collection[str] = ()
) -> list[dict[str, Any]]:
    """One row per planned asset from a run's events (see :class:`RunRecord`), texts masked."""
    rows: dict[str, dict[str, Any]] = {
        key: {
            "position": position,
            "asset_key": key,
            "status": "not run",
            "pid": None,
            "started": None,
            "finished": None,
            "duration": None,
            "upstream": None,
            "output": None,
            **_error_columns(None, ()),
        }
        for position, key in enumerate(planned)
    }
    for event in events:
        kind = type(event)
        if kind is AssetStarted:
            assert isinstance(event, AssetStarted)
            row = rows.get(event.asset_key)
            if row is not None:
                row["started"] = event.timestamp
                row["pid"] = event.pid
        elif kind is AssetSucceeded or kind is AssetFailed:
            assert isinstance(event, AssetSucceeded | AssetFailed)
            row = rows.get(event.asset_key)
            if row is None:
                continue
            row["finished"] = event.timestamp
            row["duration"] = event.duration
            if row["started"] is None:
                row["started"] = event.timestamp - event.duration
            if row["pid"] is None:
                row["pid"] = event.pid
            if isinstance(event, AssetFailed):
                row["status"] = "failed"
                row.update(_error_columns(event.error, secrets))
            else:
                row["status"] = "ok"
        elif kind is AssetSkipped:
            assert isinstance(event, AssetSkipped)
            row = rows.get(event.asset_key)
            if row is not None:
                row["status"] = "skipped"
                row["upstream"] = event.upstream
    return list(rows.values())


def resource_rows(
    events: Iterable[Event],
    types: Mapping[str, type],
    secrets: Collection[str] = (),
    distribution: Callable[[type], str | None] = lambda cls: None,
) -> list[dict[str, Any]]:
    """One row per resource lifecycle event (see :class:`RunRecord`), texts masked; ``types``
    gives each key's class (its type and distribution are stored with each event)."""
    described: dict[str, tuple[str | None, str | None]] = {}
    rows: list[dict[str, Any]] = []
    for event in events:
        if type(event) is not ResourceEvent:
            continue
        assert isinstance(event, ResourceEvent)
        key = event.resource_key
        if key not in described:
            cls = types.get(key)
            described[key] = (
                (None, None)
                if cls is None
                else (f"{cls.__module__}.{cls.__qualname__}", distribution(cls))
            )
        kind, dist = described[key]
        rows.append(
            {
                "seq": len(rows),
                "resource_key": key,
                "resource_type": kind,
                "distribution": dist,
                "pid": event.pid,
                "phase": event.phase,
                "started": event.timestamp - event.duration,
                "duration": event.duration,
                **_error_columns(event.error, secrets),
            }
        )
    return rows


def log_rows(events: Iterable[Event], secrets: Collection[str] = ()) -> list[dict[str, Any]]:
    """One row per log record of the run (:class:`LogRecorded`), in order, its text masked."""
    rows: list[dict[str, Any]] = []
    for event in events:
        if type(event) is not LogRecorded:
            continue
        assert isinstance(event, LogRecorded)
        rows.append(
            {
                "seq": len(rows),
                "timestamp": event.timestamp,
                "pid": event.pid,
                "logger": event.logger,
                "level": event.level_name,
                "message": mask(event.message, secrets),
                "asset_key": event.asset_key,
                "resource_key": event.resource_key,
                "phase": event.phase,
            }
        )
    return rows


def record_of(
    run: Mapping[str, Any],
    events: Sequence[Event],
    types: Mapping[str, type],
    secrets: Collection[str] = (),
) -> RunRecord:
    """The :class:`RunRecord` of a run from its row and events (what the writer stores)."""
    from host._runtime import distribution_of

    row = dict(run)
    for event in events:
        if isinstance(event, RunStarted):
            row["started"] = event.timestamp
        elif isinstance(event, RunFinished):
            row["finished"] = event.timestamp
            row["duration"] = event.duration
    return RunRecord(
        row,
        asset_rows(events, row["planned"], secrets),
        resource_rows(events, types, secrets, distribution_of),
    )


# -- the writer ---------------------------------------------------------------------------------


class _Writer:
    """One database file's writer thread in this process: takes jobs in order, one at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.jobs: queue.Queue[Callable[[_Writer], None] | None] = queue.Queue()
        self.conn: sqlite3.Connection | None = None
        self.thread = threading.Thread(
            target=self._loop, name=f"host history writer ({path})", daemon=True
        )
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is not None:
                    job(self)
            except Exception as exc:  # the job reports its own failure; the writer goes on
                _log.debug("history job failed: %s", describe_exception(exc))
                self._reset()
            finally:
                self.jobs.task_done()

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
    written, or has failed and been reported."""
    with _writers_lock:
        writers = [w for p, w in _writers.items() if path is None or p == path]
    for writer in writers:
        writer.jobs.join()


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
        self._writer.jobs.put(self._guarded(self._start))

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
        row["planned"] = json.dumps(row["planned"])
        row["selection"] = None if row["selection"] is None else json.dumps(row["selection"])
        row["plugins"] = _plugin_versions()
        columns = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        with transaction(conn):
            conn.execute("DELETE FROM runs WHERE run_id = ?", (self.run_id,))
            conn.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", row)

    def _end(self, events: Sequence[Event], outcome: str, reason: str | None) -> None:
        def job(conn: sqlite3.Connection) -> None:
            record = record_of(self.run, events, self.types, self.secrets)
            run = record.run
            finished = run.get("finished") or time.time()
            duration = run.get("duration")
            if duration is None:
                duration = finished - run["started"]
            with transaction(conn):
                conn.executemany(
                    f"INSERT OR REPLACE INTO assets (run_id, {', '.join(_ASSET_COLUMNS)}) "
                    f"VALUES (?, {', '.join('?' * len(_ASSET_COLUMNS))})",
                    [(self.run_id, *[row[c] for c in _ASSET_COLUMNS]) for row in record.assets],
                )
                conn.executemany(
                    f"INSERT OR REPLACE INTO resource_events (run_id, "
                    f"{', '.join(_RESOURCE_COLUMNS)}) "
                    f"VALUES (?, {', '.join('?' * len(_RESOURCE_COLUMNS))})",
                    [
                        (self.run_id, *[row[c] for c in _RESOURCE_COLUMNS])
                        for row in record.resources
                    ],
                )
                conn.executemany(
                    f"INSERT OR REPLACE INTO logs (run_id, {', '.join(_LOG_COLUMNS)}) "
                    f"VALUES (?, {', '.join('?' * len(_LOG_COLUMNS))})",
                    [
                        (self.run_id, *[row[c] for c in _LOG_COLUMNS])
                        for row in log_rows(events, self.secrets)
                    ],
                )
                conn.execute(
                    "UPDATE runs SET finished = ?, duration = ?, outcome = ?, reason = ? "
                    "WHERE run_id = ?",
                    (
                        finished,
                        duration,
                        outcome,
                        None if reason is None else mask(reason, self.secrets),
                        self.run_id,
                    ),
                )

        self._writer.jobs.put(self._guarded(job))

    def finish(self, result: RunResult) -> None:
        """The run returned ``result``: store its events and outcome."""
        self._end(result.events, "succeeded" if result.success else "failed", None)

    def interrupted(self, events: Sequence[Event], exc: BaseException) -> None:
        """The run ended by ``exc`` (an interrupt, a signal, an error of the host) after
        ``events``: store those and the outcome ``interrupted``."""
        self._end(tuple(events), "interrupted", describe_exception(exc))

    def outputs(self, shown: Mapping[str, str]) -> None:
        """Store the outputs as ``host run`` showed them (asset key -> masked short text)."""

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE assets SET output = ? WHERE run_id = ? AND asset_key = ?",
                [(mask(text, self.secrets), self.run_id, key) for key, text in shown.items()],
            )

        self._writer.jobs.put(self._guarded(job))

    def wait(self) -> None:
        """Wait until this run's record is written (or its failure reported)."""
        flush(self.path)


_ASSET_COLUMNS = (
    "position",
    "asset_key",
    "status",
    "pid",
    "started",
    "finished",
    "duration",
    "upstream",
    "error_type",
    "error_message",
    "error_traceback",
)
_LOG_COLUMNS = (
    "seq",
    "timestamp",
    "pid",
    "logger",
    "level",
    "message",
    "asset_key",
    "resource_key",
    "phase",
)
_RESOURCE_COLUMNS = (
    "seq",
    "resource_key",
    "resource_type",
    "distribution",
    "pid",
    "phase",
    "started",
    "duration",
    "error_type",
    "error_message",
    "error_traceback",
)


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
