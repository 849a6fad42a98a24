"""The assets of a run as the history stores them (packed columns, ``specs/history.md``):
what is read back is what the events say, for any events; every text that can hold a secret
is masked before it is written; a database of schema 3 (a row per asset) is carried over."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host._events import (
    AssetFailed,
    AssetSkipped,
    AssetStarted,
    AssetSucceeded,
    ErrorInfo,
    Event,
    LogRecorded,
    ResourceEvent,
)
from host._history import flush, start_recording
from host._history_query import get_run, list_runs, rerun_selection, show_text
from host._history_rows import asset_rows
from host._history_schema import MIGRATIONS, SCHEMA_VERSION, open_database
from tests.test_history import SECRET, _db_bytes

KEYS = [f"k{i}" for i in range(5)]
#: Keys that are never planned: their events are left out.
STRAY = ["stray"]


def reference_asset_rows(
    events: Sequence[Event], planned: Sequence[str]
) -> list[dict[str, Any]]:
    """What a run's events say of each planned asset: the history's rows before they were
    packed (schema 3 wrote exactly these), one dict per asset, event by event."""
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
            "error_type": None,
            "error_message": None,
            "error_traceback": None,
            "output": None,
        }
        for position, key in enumerate(planned)
    }
    for event in events:
        if isinstance(event, AssetStarted):
            row = rows.get(event.asset_key)
            if row is not None:
                row["started"], row["pid"] = event.timestamp, event.pid
        elif isinstance(event, AssetSucceeded | AssetFailed):
            row = rows.get(event.asset_key)
            if row is None:
                continue
            row["finished"], row["duration"] = event.timestamp, event.duration
            if row["started"] is None:
                row["started"] = event.timestamp - event.duration
            if row["pid"] is None:
                row["pid"] = event.pid
            if isinstance(event, AssetFailed):
                row["status"] = "failed"
                row["error_type"] = event.error.type
                row["error_message"] = event.error.message
                row["error_traceback"] = event.error.traceback
            else:
                row["status"] = "ok"
        elif isinstance(event, AssetSkipped):
            row = rows.get(event.asset_key)
            if row is not None:
                row["status"], row["upstream"] = "skipped", event.upstream
    for row in rows.values():  # started, never ended: running when the run was stopped
        if row["status"] == "not run" and row["started"] is not None:
            row["status"] = "interrupted"
    return list(rows.values())


_times = st.floats(min_value=0.0, max_value=4e9, allow_nan=False)
_durations = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
_pids = st.integers(min_value=1, max_value=2**31)
_keys = st.sampled_from(KEYS + STRAY)
_texts = st.text(max_size=12)


@st.composite
def _error(draw: st.DrawFn) -> ErrorInfo:
    return ErrorInfo(draw(st.sampled_from(["ValueError", "x.Boom"])), draw(_texts), draw(_texts))


_event = st.one_of(
    st.builds(AssetStarted, st.just("r"), _keys, pid=_pids, timestamp=_times),
    st.builds(
        AssetSucceeded, st.just("r"), _keys, _durations, pid=_pids, timestamp=_times
    ),
    st.builds(
        AssetFailed, st.just("r"), _keys, _durations, _error(), pid=_pids, timestamp=_times
    ),
    st.builds(AssetSkipped, st.just("r"), _keys, st.sampled_from(KEYS), timestamp=_times),
    st.builds(
        ResourceEvent,
        st.just("r"),
        st.sampled_from(["db", "api"]),
        st.sampled_from(["setup", "teardown", "yield_enter", "yield_exit"]),
        _durations,
        st.none() | _error(),
        pid=_pids,
        timestamp=_times,
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    planned=st.lists(st.sampled_from(KEYS), unique=True),
    events=st.lists(_event, max_size=25),
)
def test_the_packed_columns_say_what_the_events_say(
    planned: list[str], events: list[Event]
) -> None:
    """Any order, repeats, a missing start, stray keys, every status: the rows made from the
    packed columns equal the rows made event by event."""
    assert asset_rows(events, planned) == reference_asset_rows(events, planned)


_CHANGES = ("none", "swap", "no start", "twice", "stray", "fail", "skip", "not run")


@settings(max_examples=80, deadline=None)
@given(
    planned=st.lists(st.sampled_from(KEYS), unique=True, min_size=1),
    pids=st.lists(_pids, min_size=2, max_size=2),
    times=st.lists(_times, min_size=10, max_size=10),
    durations=st.lists(_durations, min_size=10, max_size=10),
    change=st.sampled_from(_CHANGES),
    where=st.integers(min_value=0, max_value=4),
)
def test_a_run_in_plan_order_and_every_way_off_it(
    planned: list[str],
    pids: list[int],
    times: list[float],
    durations: list[float],
    change: str,
    where: int,
) -> None:
    """A run whose assets each started and succeeded once in plan order (its columns are its
    events' numbers as they came), and the same run one step off that shape: the rows are
    the rows made event by event either way."""
    events: list[Event] = [ResourceEvent("r", "db", "setup", 0.5, pid=pids[0], timestamp=1.0)]
    for i, key in enumerate(planned):
        events.append(AssetStarted("r", key, pid=pids[0], timestamp=times[2 * i]))
        events.append(
            AssetSucceeded("r", key, durations[i], pid=pids[1], timestamp=times[2 * i + 1])
        )
    events.append(ResourceEvent("r", "db", "teardown", 0.25, pid=pids[0], timestamp=9.0))
    at = 1 + 2 * (where % len(planned))  # the AssetStarted of one planned asset
    key = planned[where % len(planned)]
    if change == "swap" and len(planned) > 1:
        events[1:3], events[3:5] = events[3:5], events[1:3]
    elif change == "no start":
        del events[at]
    elif change == "twice":
        events.insert(at + 2, AssetSucceeded("r", key, 7.0, pid=pids[1], timestamp=8.0))
    elif change == "stray":
        events.insert(at, AssetStarted("r", "stray", timestamp=3.0))
    elif change == "fail":
        events[at + 1] = AssetFailed("r", key, 1.0, ErrorInfo("E", "m", "t"), timestamp=4.0)
    elif change == "skip":
        events[at : at + 2] = [AssetSkipped("r", key, "up")]
    elif change == "not run":
        del events[at : at + 2]
    assert asset_rows(events, planned) == reference_asset_rows(events, planned)


@settings(max_examples=15, deadline=None)
@given(
    planned=st.lists(st.sampled_from(KEYS), unique=True),
    events=st.lists(_event, max_size=25),
)
def test_what_is_stored_is_read_back_as_the_events_say(
    tmp_path_factory: pytest.TempPathFactory, planned: list[str], events: list[Event]
) -> None:
    """Through the writer thread, sqlite and the reader: the same rows, to the last bit."""
    db = tmp_path_factory.mktemp("cols") / "history.db"
    recording = start_recording(
        db, "run-1", executor="in_process", planned=planned, selection=None, types={},
        secrets=(),
    )
    recording.interrupted(events, KeyboardInterrupt())
    flush(db)
    assert not recording.failed
    record = get_run(db, "run-1")
    assert [{k: v for k, v in row.items() if k != "run_id"} for row in record.assets] == (
        reference_asset_rows(events, planned)
    )
    resources = [e for e in events if isinstance(e, ResourceEvent)]
    assert [(r["resource_key"], r["phase"], r["duration"]) for r in record.resources] == [
        (e.resource_key, e.phase, e.duration) for e in resources
    ]
    [listed] = list_runs(db)
    counts: dict[str, int] = {}
    for row in record.assets:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    assert listed["counts"] == counts


# -- masking: every text that can hold a secret, wherever it comes from -------------------------

_FORMS = {
    "raw": SECRET,
    "repr": repr(SECRET),
    "json": json.dumps(SECRET),
    "cut": f"value={SECRET[:-3]}...",
}
PLACES = ("asset error", "asset traceback", "resource error", "log", "output", "reason")


@settings(max_examples=24, deadline=None)
@given(place=st.sampled_from(PLACES), form=st.sampled_from(sorted(_FORMS)))
def test_no_secret_reaches_the_database_file(
    tmp_path_factory: pytest.TempPathFactory, place: str, form: str
) -> None:
    """Each text the history stores (error messages and tracebacks of assets and resources,
    log records, outputs, the reason a run was interrupted) is masked in every form the
    secret takes; the file, its WAL and its shared memory never hold it."""
    db = tmp_path_factory.mktemp("mask") / "history.db"
    text = f"it was {_FORMS[form]} here"
    error = ErrorInfo("ValueError", text if place == "asset error" else "boom", "tb")
    if place == "asset traceback":
        error = ErrorInfo("ValueError", "boom", f"Traceback:\n  {text}")
    events: list[Event] = [
        AssetStarted("r", "k0"),
        AssetFailed("r", "k0", 0.1, error),
        AssetStarted("r", "k1"),
        AssetSucceeded("r", "k1", 0.1),
        ResourceEvent(
            "r", "db", "teardown", 0.1,
            ErrorInfo("RuntimeError", text if place == "resource error" else "down", "tb"),
        ),
        LogRecorded("r", 30, "WARNING", "host.asset", text if place == "log" else "fine", "k1"),
    ]
    recording = start_recording(
        db, "run-m", executor="in_process", planned=["k0", "k1"], selection=None, types={},
        secrets=(SECRET,),
    )
    recording.interrupted(events, RuntimeError(text if place == "reason" else "stopped"))
    recording.outputs({"k1": text if place == "output" else "1"})
    flush(db)
    assert not recording.failed
    assert SECRET.encode() not in _db_bytes(db)
    assert SECRET[:-3].encode() not in _db_bytes(db)
    assert b"**********" in _db_bytes(db)  # the text was stored, masked


# -- schema 3 -> 4 ---------------------------------------------------------------------------

_V3_ASSET_COLUMNS = (
    "position", "asset_key", "status", "pid", "started", "finished", "duration", "upstream",
    "error_type", "error_message", "error_traceback", "output",
)


def _v3_database(path: Path, runs: list[tuple[str, list[str], list[Event] | None]]) -> None:
    """A history of schema 3 as host wrote it then: a row per run, a row per planned asset
    (``reference_asset_rows``, plus the output ``host run`` stored), for a run that ended;
    nothing but the row of one whose process was killed (``None`` events)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for step in MIGRATIONS[:3]:
        assert isinstance(step, str)
        conn.executescript(step)
    conn.execute("PRAGMA user_version=3")
    for started, (run_id, planned, events) in enumerate(runs):
        conn.execute(
            "INSERT INTO runs (run_id, executor, planned, started, outcome, pid, hostname, "
            "host_version, plugins) VALUES (?, 'in_process', ?, ?, ?, 1, 'h', '0.1.0', '{}')",
            (
                run_id,
                json.dumps(planned),
                float(started),
                "running" if events is None else "failed",
            ),
        )
        if events is None:
            continue
        rows = reference_asset_rows(events, planned)
        for row in rows:
            if row["status"] == "ok":
                row["output"] = repr(row["asset_key"])
        conn.executemany(
            f"INSERT OR REPLACE INTO assets (run_id, {', '.join(_V3_ASSET_COLUMNS)}) "
            f"VALUES (?, {', '.join('?' * len(_V3_ASSET_COLUMNS))})",
            [(run_id, *[row[c] for c in _V3_ASSET_COLUMNS]) for row in rows],
        )
    conn.close()


def test_a_schema_3_database_is_carried_over_whole(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    planned = ["k0", "k1", "k2", "k3", "k4"]
    events: list[Event] = [
        AssetStarted("r", "k0", pid=11, timestamp=100.25),
        AssetSucceeded("r", "k0", 0.125, pid=11, timestamp=100.375),
        AssetStarted("r", "k1", pid=12, timestamp=100.5),
        AssetFailed("r", "k1", 0.5, ErrorInfo("ValueError", "bad k1", "Traceback ..."), pid=12,
                    timestamp=101.0),
        AssetSkipped("r", "k2", "k1"),
        AssetSucceeded("r", "k3", 2.0, pid=13, timestamp=110.0),  # no start seen
    ]
    _v3_database(db, [("old", planned, events), ("killed", ["k0"], None)])
    expected = reference_asset_rows(events, planned)
    for row in expected:
        if row["status"] == "ok":
            row["output"] = repr(row["asset_key"])

    open_database(db).close()  # a run recorded there migrates it

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "assets" not in tables and {"asset_columns", "asset_details"} <= tables
    conn.close()
    record = get_run(db, "old")
    assert [{k: v for k, v in row.items() if k != "run_id"} for row in record.assets] == expected
    assert rerun_selection(record) == ["k1", "k2", "k4"]
    killed = get_run(db, "killed")  # its end never written: what its assets did is unknown
    assert [(row["asset_key"], row["status"], row["pid"]) for row in killed.assets] == [
        ("k0", "unknown", None)
    ]
    assert rerun_selection(killed) == ["k0"]
    counts = {run["run_id"]: run["counts"] for run in list_runs(db)}
    assert counts == {
        "old": {"ok": 2, "failed": 1, "skipped": 1, "not run": 1},
        "killed": {"unknown": 1},
    }
    assert "bad k1" in show_text(record)


def test_the_tables_are_as_specs_history_md_documents(tmp_path: Path) -> None:
    """The table of "What is recorded" has a row per table of the schema, naming
    each of its columns."""
    text = (Path(__file__).parent.parent / "specs" / "history.md").read_text("utf-8")
    section = text.split("## What is recorded", 1)[1].split("\n\n", 2)[1]
    documented: dict[str, set[str]] = {}
    for line in section.splitlines()[2:]:
        table, _, columns = (cell.strip() for cell in line.strip("|").split("|"))
        documented[table.strip("`")] = set(re.findall(r"`([a-z_]+)`", columns))
    conn = open_database(tmp_path / "history.db")
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid"
        )
    ]
    assert sorted(documented) == sorted(tables)
    for table in tables:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if table != "runs":
            columns.discard("run_id")
        assert columns <= documented[table], (table, columns - documented[table])
    conn.close()
