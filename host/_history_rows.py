"""A run's record from its own events: the compact columns the history stores, and the rows
``host show``, ``host report`` and ``--rerun-failed`` read.

The assets of a run are stored as columns, not as a row each (``specs/history.md``): one
character of status per planned asset, and the pids, starts, ends and durations as packed
little-endian numbers (``int64``, ``float64``), in plan order; only the assets with a text (an
error, the upstream of a skipped asset, an output) have a row of details. :func:`run_columns`
makes them from the events in one pass; :func:`asset_rows_of` turns them back into one row per
planned asset. Every text is masked with the run's secrets before it is stored; numbers,
statuses and the names of assets, resources, classes and distributions (code, not data) are not
texts that can hold one.
"""

from __future__ import annotations

import functools
import sys
from array import array
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import isnan
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
    ResourceRecycled,
    ResourceReused,
    RunFinished,
    RunStarted,
)
from host._secrets import mask, mask_error

__all__ = [
    "ASSET_DETAIL_COLUMNS",
    "LOG_COLUMNS",
    "RESOURCE_COLUMNS",
    "STATUS_CODES",
    "RunColumns",
    "RunRecord",
    "asset_rows",
    "asset_rows_of",
    "cached_distribution",
    "log_rows",
    "pack_floats",
    "pack_ints",
    "record_of",
    "resource_rows",
    "run_columns",
    "status_counts",
    "unknown_columns",
    "unpack_floats",
    "unpack_ints",
]

#: An asset's status as stored (one character each, in plan order) -> as shown; ``unknown``
#: is never stored: it is what a run whose end was never written says of each of its assets.
STATUS_CODES: dict[str, str] = {
    "o": "ok",
    "f": "failed",
    "s": "skipped",
    "n": "not run",
    "u": "unknown",
}
_CODE_OF = {word: code for code, word in STATUS_CODES.items()}

#: The columns of a row of ``asset_details`` after ``run_id``.
ASSET_DETAIL_COLUMNS = (
    "position",
    "upstream",
    "error_type",
    "error_message",
    "error_traceback",
    "output",
)
#: The columns of a row of ``resource_events`` after ``run_id``.
RESOURCE_COLUMNS = (
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
    "scope",
    "note",
)
#: The columns of a row of ``logs`` after ``run_id``.
LOG_COLUMNS = (
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

_NAN = float("nan")
_SWAP = sys.byteorder != "little"


def pack_floats(values: Sequence[float]) -> bytes:
    """``values`` as little-endian ``float64`` (NaN for none)."""
    packed = array("d", values)
    if _SWAP:  # pragma: no cover - big-endian machines
        packed.byteswap()
    return packed.tobytes()


def pack_ints(values: Sequence[int]) -> bytes:
    """``values`` as little-endian ``int64`` (0 for none)."""
    packed = array("q", values)
    if _SWAP:  # pragma: no cover - big-endian machines
        packed.byteswap()
    return packed.tobytes()


def unpack_floats(data: bytes) -> list[float | None]:
    """The numbers :func:`pack_floats` packed, ``None`` where it held NaN."""
    values = array("d")
    values.frombytes(data)
    if _SWAP:  # pragma: no cover - big-endian machines
        values.byteswap()
    return [None if isnan(v) else v for v in values]


def unpack_ints(data: bytes) -> list[int | None]:
    """The numbers :func:`pack_ints` packed, ``None`` where it held 0."""
    values = array("q")
    values.frombytes(data)
    if _SWAP:  # pragma: no cover - big-endian machines
        values.byteswap()
    return [v or None for v in values]


@dataclass
class RunRecord:
    """One run as the history holds it: what ``host show`` and the picture are made from.

    Attributes:
        run: the run's row (column -> value): ``run_id``, ``executor``, ``planned`` (list),
            ``selection``, ``config``, ``started``, ``finished``, ``duration``, ``outcome``,
            ``reason``, ``pid``, ``host_version``, ``plugins`` (distribution -> version).
        assets: one row per planned asset, in plan order: ``position``, ``asset_key``,
            ``status`` (``ok``, ``failed``, ``skipped``, ``interrupted``, ``not run``,
            ``unknown``), ``pid``, ``started``, ``finished``, ``duration``, ``upstream``,
            ``error_type``, ``error_message``, ``error_traceback``, ``output``.
        resources: one row per resource lifecycle event, in order: ``seq``, ``resource_key``,
            ``resource_type``, ``distribution``, ``pid``, ``phase``, ``started``,
            ``duration``, ``error_type``, ``error_message``, ``error_traceback``.
    """

    run: dict[str, Any]
    assets: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunColumns:
    """What the history stores of a run's events, masked (see the module's docstring).

    Attributes:
        status: one character of :data:`STATUS_CODES` per planned asset, in plan order.
        pid: the pid of each planned asset's process (packed ``int64``, 0: none).
        started: each asset's start (packed ``float64``, NaN: none); likewise ``finished``
            and ``duration``.
        details: a tuple per asset with a text, as :data:`ASSET_DETAIL_COLUMNS`.
        resources: a tuple per resource lifecycle event, as :data:`RESOURCE_COLUMNS`.
        logs: a tuple per log record, as :data:`LOG_COLUMNS`.
        started_at: the run's start (its :class:`RunStarted`), if it has one; likewise
            ``finished_at`` and ``duration_of`` (its :class:`RunFinished`).
    """

    status: str
    pid: bytes
    started: bytes
    finished: bytes
    duration: bytes
    details: list[tuple[Any, ...]]
    resources: list[tuple[Any, ...]]
    logs: list[tuple[Any, ...]]
    started_at: float | None = None
    finished_at: float | None = None
    duration_of: float | None = None


@functools.lru_cache(maxsize=256)
def cached_distribution(cls: type) -> str | None:
    """``"name version"`` of the distribution that ships ``cls`` (read once per class per
    process: the installed distributions do not change under a running process)."""
    from host._runtime import distribution_of

    return distribution_of(cls)


def _error(error: ErrorInfo, secrets: Collection[str]) -> tuple[str, str, str]:
    error = mask_error(error, secrets)
    return error.type, error.message, error.traceback


def run_columns(
    events: Iterable[Event],
    planned: Sequence[str],
    types: Mapping[str, type],
    secrets: Collection[str] = (),
    distribution: Callable[[type], str | None] = cached_distribution,
) -> RunColumns:
    """The :class:`RunColumns` of a run from its events, texts masked.

    An asset's start and pid come from its :class:`AssetStarted` (else from its end: the
    start is its end less its duration); its end, duration and status from its
    :class:`AssetSucceeded` / :class:`AssetFailed` (error masked) or :class:`AssetSkipped`
    (the upstream asset); a planned asset with none of them is ``not run``; events of assets
    that were not planned are left out. ``types`` gives each resource key's class (stored with
    each of its events as ``module.qualname`` and ``distribution(cls)``).

    The columns of a run whose planned assets each started once and succeeded once, in plan
    order (most runs in one process), are the events' own numbers in the order they came;
    any other run's are put together asset by asset (:func:`_asset_columns`), which gives the
    same for such a run.
    """
    if not isinstance(events, Sequence):
        events = list(events)
    started_keys: list[str] = []
    starts: list[float] = []
    pids: list[int] = []
    ended_keys: list[str] = []
    ends: list[float] = []
    durations: list[float] = []
    rest: list[Event] = []
    started_key, start, pid = started_keys.append, starts.append, pids.append
    ended_key, end, took = ended_keys.append, ends.append, durations.append
    other = rest.append
    event: Any  # one of the events' classes, told by ``kind``
    for event in events:
        kind = type(event)
        if kind is AssetSucceeded:
            ended_key(event.asset_key)
            end(event.timestamp)
            took(event.duration)
        elif kind is AssetStarted:
            started_key(event.asset_key)
            start(event.timestamp)
            pid(event.pid)
        else:
            other(event)
    columns = RunColumns("", b"", b"", b"", b"", [], [], [])
    keys = list(planned)
    if (
        started_keys == keys
        and ended_keys == keys
        and not any(type(e) is AssetFailed or type(e) is AssetSkipped for e in rest)
    ):
        columns.status = "o" * len(keys)
        columns.pid = pack_ints(pids)
        columns.started = pack_floats(starts)
        columns.finished = pack_floats(ends)
        columns.duration = pack_floats(durations)
    else:
        _asset_columns(events, keys, secrets, columns)
    _other_events(rest, types, secrets, distribution, columns)
    return columns


def _asset_columns(
    events: Iterable[Event], planned: Sequence[str], secrets: Collection[str], into: RunColumns
) -> None:
    """The asset columns and details of :func:`run_columns` for any run, event by event."""
    n = len(planned)
    index = dict(zip(planned, range(n), strict=True))
    status = ["n"] * n
    pids = [0] * n
    starts = [_NAN] * n
    ends = [_NAN] * n
    durations = [_NAN] * n
    details: dict[int, list[Any]] = {}
    event: Any  # one of the events' classes, told by ``kind``
    for event in events:
        kind = type(event)
        if kind is AssetSucceeded or kind is AssetFailed:
            i = index.get(event.asset_key)
            if i is None:
                continue
            at, took = event.timestamp, event.duration
            ends[i] = at
            durations[i] = took
            if starts[i] != starts[i]:  # NaN: no AssetStarted seen
                starts[i] = at - took
            if not pids[i]:
                pids[i] = event.pid
            if kind is AssetSucceeded:
                status[i] = "o"
            else:
                status[i] = "f"
                row = details.setdefault(i, [i, None, None, None, None, None])
                row[2:5] = _error(event.error, secrets)
        elif kind is AssetStarted:
            i = index.get(event.asset_key)
            if i is not None:
                starts[i] = event.timestamp
                pids[i] = event.pid
        elif kind is AssetSkipped:
            i = index.get(event.asset_key)
            if i is not None:
                status[i] = "s"
                details.setdefault(i, [i, None, None, None, None, None])[1] = event.upstream
    into.status = "".join(status)
    into.pid = pack_ints(pids)
    into.started = pack_floats(starts)
    into.finished = pack_floats(ends)
    into.duration = pack_floats(durations)
    into.details = [tuple(details[i]) for i in sorted(details)]


def _other_events(
    events: Iterable[Event],
    types: Mapping[str, type],
    secrets: Collection[str],
    distribution: Callable[[type], str | None],
    into: RunColumns,
) -> None:
    """The resource events, log records and the run's start and end of :func:`run_columns`."""
    described: dict[str, tuple[str | None, str | None]] = {}
    resources, logs = into.resources, into.logs
    event: Any  # one of the events' classes, told by ``kind``
    for event in events:
        kind = type(event)
        if kind is ResourceEvent or kind is ResourceReused or kind is ResourceRecycled:
            key = event.resource_key
            if key not in described:
                cls = types.get(key)
                described[key] = (
                    (None, None)
                    if cls is None
                    else (f"{cls.__module__}.{cls.__qualname__}", distribution(cls))
                )
            if kind is ResourceEvent:
                error = (
                    (None, None, None) if event.error is None else _error(event.error, secrets)
                )
                phase, duration, scope, note = event.phase, event.duration, event.scope, None
            else:
                error, duration, scope = (None, None, None), 0.0, "session"
                phase, note = _session_row(event, secrets)
            resources.append(
                (
                    len(resources),
                    key,
                    *described[key],
                    event.pid,
                    phase,
                    event.timestamp - duration,
                    duration,
                    *error,
                    scope,
                    note,
                )
            )
        elif kind is LogRecorded:
            logs.append(
                (
                    len(logs),
                    event.timestamp,
                    event.pid,
                    event.logger,
                    event.level_name,
                    mask(event.message, secrets),
                    event.asset_key,
                    event.resource_key,
                    event.phase,
                )
            )
        elif kind is RunStarted:
            into.started_at = event.timestamp
        elif kind is RunFinished:
            into.finished_at = event.timestamp
            into.duration_of = event.duration


def unknown_columns(n: int) -> tuple[str, bytes, bytes, bytes, bytes]:
    """The columns (status, pid, started, finished, duration) of ``n`` planned assets of a
    run whose end was never written (its process was killed, or it is still running): each
    ``unknown``, with no pid or times."""
    nothing = pack_floats([_NAN] * n)
    return "u" * n, pack_ints([0] * n), nothing, nothing, nothing


def asset_rows_of(
    planned: Sequence[str],
    status: str,
    pid: bytes,
    started: bytes,
    finished: bytes,
    duration: bytes,
    details: Iterable[Sequence[Any]] = (),
) -> list[dict[str, Any]]:
    """One row per planned asset (see :class:`RunRecord`) from the stored columns and the
    rows of details (as :data:`ASSET_DETAIL_COLUMNS`); an asset stored ``not run`` that has a
    start reads back ``interrupted`` (it started and never ended: the run was stopped)."""
    texts = {int(row[0]): row for row in details}
    empty = (None,) * len(ASSET_DETAIL_COLUMNS)
    rows: list[dict[str, Any]] = []
    for i, (key, code, p, s, f, d) in enumerate(
        zip(
            planned,
            status,
            unpack_ints(pid),
            unpack_floats(started),
            unpack_floats(finished),
            unpack_floats(duration),
            strict=True,
        )
    ):
        text = texts.get(i, empty)
        rows.append(
            {
                "position": i,
                "asset_key": key,
                # Not run, yet started: it was running when the run was stopped.
                "status": "interrupted" if code == "n" and s is not None else STATUS_CODES[code],
                "pid": p,
                "started": s,
                "finished": f,
                "duration": d,
                "upstream": text[1],
                "error_type": text[2],
                "error_message": text[3],
                "error_traceback": text[4],
                "output": text[5],
            }
        )
    return rows


def status_counts(status: str, started: bytes = b"") -> dict[str, int]:
    """How many assets of each status (as shown) stored columns hold: ``status``, and
    ``started`` to tell the ``interrupted`` among the ``not run`` (see :func:`asset_rows_of`)."""
    counts = {STATUS_CODES[code]: status.count(code) for code in STATUS_CODES if code in status}
    if "n" in status and started:
        begun = sum(
            1 for code, at in zip(status, unpack_floats(started), strict=True)
            if code == "n" and at is not None
        )
        if begun:
            counts["interrupted"] = begun
            counts["not run"] -= begun
            if not counts["not run"]:
                del counts["not run"]
    return counts


def asset_rows(
    events: Iterable[Event], planned: Sequence[str], secrets: Collection[str] = ()
) -> list[dict[str, Any]]:
    """One row per planned asset from a run's events (see :class:`RunRecord`), texts masked."""
    columns = run_columns(events, planned, {}, secrets, lambda cls: None)
    return _assets(planned, columns)


def _assets(planned: Sequence[str], columns: RunColumns) -> list[dict[str, Any]]:
    return asset_rows_of(
        planned,
        columns.status,
        columns.pid,
        columns.started,
        columns.finished,
        columns.duration,
        columns.details,
    )


def _session_row(event: Any, secrets: Collection[str]) -> tuple[str, str]:
    """The phase and note of a session resource's ``ResourceReused`` / ``ResourceRecycled``."""
    if isinstance(event, ResourceReused):
        return "reused", (
            f"session {event.session_id}: up in this process since run {event.since_run}, "
            f"{event.age:.3g} s ago; use {event.uses} here"
        )
    return "recycled", mask(f"session {event.session_id}: {event.reason}", secrets)


def resource_rows(
    events: Iterable[Event],
    types: Mapping[str, type],
    secrets: Collection[str] = (),
    distribution: Callable[[type], str | None] = lambda cls: None,
) -> list[dict[str, Any]]:
    """One row per resource lifecycle event (see :class:`RunRecord`), texts masked; ``types``
    gives each key's class (its type and distribution are stored with each event)."""
    columns = run_columns(events, (), types, secrets, distribution)
    return [dict(zip(RESOURCE_COLUMNS, row, strict=True)) for row in columns.resources]


def log_rows(events: Iterable[Event], secrets: Collection[str] = ()) -> list[dict[str, Any]]:
    """One row per log record of the run (:class:`LogRecorded`), in order, its text masked."""
    columns = run_columns(events, (), {}, secrets, lambda cls: None)
    return [dict(zip(LOG_COLUMNS, row, strict=True)) for row in columns.logs]


def record_of(
    run: Mapping[str, Any],
    events: Sequence[Event],
    types: Mapping[str, type],
    secrets: Collection[str] = (),
) -> RunRecord:
    """The :class:`RunRecord` of a run from its row and events: what the history holds of it
    once it has ended (``host show`` and the picture read the same from the database)."""
    row = dict(run)
    columns = run_columns(events, row["planned"], types, secrets)
    if columns.started_at is not None:
        row["started"] = columns.started_at
    if columns.finished_at is not None:
        row["finished"] = columns.finished_at
        row["duration"] = columns.duration_of
    return RunRecord(
        row,
        _assets(row["planned"], columns),
        [dict(zip(RESOURCE_COLUMNS, r, strict=True)) for r in columns.resources],
    )
