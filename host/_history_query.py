"""Reading the run history: the runs, one run, pruning, what to run again, ``host show``'s text.

Every function opens the database for reading only what it needs; none of them migrates or
writes a database of another schema version (:class:`HistoryError` says what to do). A run
whose row still says ``running`` while its process is gone (killed with SIGKILL, the machine
restarted) is shown as ``interrupted``.
"""

from __future__ import annotations

import difflib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from host._history import flush
from host._history_rows import (
    ASSET_DETAIL_COLUMNS,
    RunRecord,
    asset_rows_of,
    status_counts,
    unknown_columns,
)
from host._history_schema import (
    HistoryError,
    describe_database_error,
    open_database,
    transaction,
)
from host._output import Mask, first_line, seconds, table, unmasked
from host._processes import process_start

__all__ = [
    "get_run",
    "list_runs",
    "outcome_of",
    "prune",
    "rerun_selection",
    "show_text",
]


@contextmanager
def _reading(path: Path, *, write: bool = False) -> Iterator[sqlite3.Connection]:
    flush(Path(os.path.abspath(path)))
    conn = open_database(path, create=write)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    except sqlite3.Error as exc:
        raise HistoryError(describe_database_error(path, exc)) from exc
    finally:
        conn.close()


def outcome_of(run: dict[str, Any]) -> str:
    """The run's outcome; ``interrupted`` for a run marked running whose process (same pid,
    same start time, on this machine) is gone."""
    outcome = str(run["outcome"])
    if outcome != "running" or run.get("hostname") != socket.gethostname():
        return outcome
    started = process_start(int(run["pid"]))
    if started is None or (run.get("process_start") and started != run["process_start"]):
        return "interrupted"
    return outcome


def _run_row(row: sqlite3.Row) -> dict[str, Any]:
    run = dict(row)
    run["planned"] = json.loads(run["planned"])
    run["selection"] = None if run["selection"] is None else json.loads(run["selection"])
    run["plugins"] = json.loads(run["plugins"])
    run["outcome"] = outcome_of(run)
    if run["outcome"] == "interrupted" and not run.get("reason") and row["outcome"] == "running":
        run["reason"] = f"the process of the run (pid {run['pid']}) ended before the run did"
    return run


def list_runs(path: Path, limit: int | None = 20, failed: bool = False) -> list[dict[str, Any]]:
    """The newest runs first, each with its counts of assets by status (``counts``).

    Args:
        path: the history database.
        limit: at most this many (``None``: all).
        failed: only runs that did not succeed (failed or interrupted).
    """
    with _reading(path) as conn:
        rows = conn.execute("SELECT * FROM runs ORDER BY started DESC").fetchall()
        runs = [_run_row(row) for row in rows]
        if failed:
            runs = [run for run in runs if run["outcome"] in ("failed", "interrupted")]
        if limit is not None:
            runs = runs[:limit]
        for run in runs:
            stored = conn.execute(
                "SELECT status, started FROM asset_columns WHERE run_id = ?", (run["run_id"],)
            ).fetchone()
            if stored is None:
                stored = unknown_columns(len(run["planned"]))[:1]
            run["counts"] = status_counts(*stored)
    return runs


def _resolve(conn: sqlite3.Connection, path: Path, run_id: str) -> str:
    if not run_id.strip():
        raise HistoryError(f"no run id given; `host runs --history {path}` lists them")
    ids = [row[0] for row in conn.execute("SELECT run_id FROM runs ORDER BY started DESC")]
    if run_id in ids:
        return str(run_id)
    prefixed = [i for i in ids if i.startswith(run_id)] if run_id else []
    if len(prefixed) == 1:
        return str(prefixed[0])
    if len(prefixed) > 1:
        raise HistoryError(
            f"run id {run_id!r} is the start of {len(prefixed)} runs in {path} "
            f"({', '.join(prefixed[:3])}{', ...' if len(prefixed) > 3 else ''}); give more of it"
        )
    near = difflib.get_close_matches(run_id, ids, n=1, cutoff=0.5)
    if not near:  # a mistyped prefix: compare with the starts of the ids
        starts = {i[: len(run_id)]: i for i in ids}
        close = difflib.get_close_matches(run_id, list(starts), n=1, cutoff=0.5)
        near = [starts[close[0]]] if close else []
    hint = (
        f"; did you mean {near[0]}?"
        if near
        else ("; `host runs` lists them" if ids else "; no run is recorded there")
    )
    raise HistoryError(f"no run {run_id!r} in the run history {path}{hint}")


def get_run(path: Path, run_id: str) -> RunRecord:
    """The run ``run_id`` (or the one run whose id starts with it).

    Raises:
        HistoryError: no such run (the nearest id is suggested), or the database cannot be read.
    """
    with _reading(path) as conn:
        found = _resolve(conn, path, run_id)
        run = _run_row(conn.execute("SELECT * FROM runs WHERE run_id = ?", (found,)).fetchone())
        columns = conn.execute(
            "SELECT status, pid, started, finished, duration FROM asset_columns "
            "WHERE run_id = ?",
            (found,),
        ).fetchone()
        if columns is None:  # not ended (still running, or its process was killed)
            columns = unknown_columns(len(run["planned"]))
        details = conn.execute(
            f"SELECT {', '.join(ASSET_DETAIL_COLUMNS)} FROM asset_details WHERE run_id = ?",
            (found,),
        ).fetchall()
        status, pid, started, finished, duration = columns
        assets = [
            {"run_id": found, **row}
            for row in asset_rows_of(
                run["planned"], status, pid, started, finished, duration, details
            )
        ]
        resources = [
            dict(row)
            for row in conn.execute(
                "SELECT * FROM resource_events WHERE run_id = ? ORDER BY seq", (found,)
            )
        ]
    return RunRecord(run, assets, resources)


def prune(path: Path, keep: int) -> int:
    """Delete all but the ``keep`` newest runs (a run still running is kept); how many went."""
    with _reading(path, write=True) as conn:
        rows = conn.execute("SELECT * FROM runs ORDER BY started DESC").fetchall()
        old = [row["run_id"] for row in rows[keep:] if outcome_of(dict(row)) != "running"]
        with transaction(conn):
            conn.executemany("DELETE FROM runs WHERE run_id = ?", [(i,) for i in old])
    return len(old)


def rerun_selection(record: RunRecord) -> list[str]:
    """The assets of ``record`` that failed or were skipped (or never ran, in an interrupted
    run; or every one, in a run whose process was killed before its end was written), in plan
    order: a selection for running them again with their upstream assets."""
    return [
        row["asset_key"]
        for row in record.assets
        if row["status"] in ("failed", "skipped", "interrupted", "not run", "unknown")
    ]


def show_text(record: RunRecord, mask: Mask = unmasked) -> str:
    """The summary ``host run`` printed for the run, from the history: its assets (status,
    time, process, the output as shown then, or the error), its resources per process, and
    the outcome."""
    run = record.run
    asset_rows = []
    for row in record.assets:
        detail = ""
        if row["error_type"]:
            message = first_line(row["error_message"] or "", mask)
            detail = f"{row['error_type'].rpartition('.')[2]}: {message}"
        elif row["status"] == "skipped" and row["upstream"]:
            detail = f"upstream {row['upstream']} did not succeed"
        elif row.get("output"):
            detail = row["output"]
        cells = (
            row["asset_key"],
            row["status"],
            seconds(row["duration"]),
            "-" if row["pid"] is None else str(row["pid"]),
            detail,
        )
        asset_rows.append([mask(str(cell)) for cell in cells])
    lines = [
        f"Run {run['run_id']} on {run['executor']}, host {run['host_version']}"
        + (f", from {run['config']}" if run["config"] else ""),
        "Assets",
        table(["ASSET", "STATUS", "TIME", "PID", "OUTPUT / ERROR"], asset_rows),
    ]
    phases: dict[tuple[str, int], dict[str, str]] = {}
    kinds: dict[str, str] = {}
    for event in record.resources:
        cell = phases.setdefault((event["resource_key"], event["pid"]), {})
        kind = event["resource_type"] or "-"
        if event["distribution"]:
            kind += f" ({event['distribution']})"
        kinds[event["resource_key"]] = kind
        if event["phase"] == "reused":
            cell.setdefault("yield_enter", "reused")
            continue
        if event["phase"] == "recycled":
            cell["yield_exit"] = "recycled"
            continue
        cell[event["phase"]] = seconds(event["duration"]) + (
            " FAILED" if event["error_type"] else ""
        )
    if phases:
        rows = [
            [
                mask(cell)
                for cell in (
                    key,
                    kinds[key],
                    str(pid),
                    row.get("yield_enter", "-"),
                    row.get("setup", "-"),
                    row.get("teardown", "-"),
                    row.get("yield_exit", "-"),
                )
            ]
            for (key, pid), row in phases.items()
        ]
        lines += [
            "Resources",
            table(["RESOURCE", "TYPE", "PID", "UP", "SETUP", "TEARDOWN", "DOWN"], rows),
        ]
    else:
        lines.append("Resources: none brought up")
    counts = {
        s: sum(1 for a in record.assets if a["status"] == s) for s in ("ok", "failed", "skipped")
    }
    state = {"succeeded": "succeeded", "failed": "FAILED"}.get(
        run["outcome"], run["outcome"].upper()
    )
    tail = f"Run {run['run_id']} {state} in {seconds(run['duration'])}: "
    tail += f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped"
    unknown = sum(1 for a in record.assets if a["status"] == "unknown")
    if unknown:
        tail += f", {unknown} unknown (the run's end was not recorded)"
    if run.get("reason"):
        tail += f" ({mask(run['reason'])})"
    lines.append(tail)
    return "\n".join(lines)
