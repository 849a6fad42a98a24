"""The run history of a session's runs: which run reused which session resource, and the picture.

Every run of a session recorded with ``history=`` holds, per process, the session resource's
bring-up (in the run that brought it up there, ``scope`` ``session``), a ``reused`` row in each
later run that took it (its note naming the session and the first run), a ``recycled`` row
when a failed ``host_check`` recycled it (its reason masked); ``host show`` says ``reused``, and
the picture draws the resource up for the session rather than "not torn down".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from host import ResourceReused, Session
from host._history import flush
from host._history_query import get_run, show_text
from host._picture import render
from tests.sessions import SESSION_EXECUTORS, SessionControlled, set_faults
from tests.test_history import _db_bytes
from tests.test_session import SECRET, fan


@pytest.mark.parametrize("session_executor", SESSION_EXECUTORS)
def test_the_history_says_which_runs_reused_a_session_resource(
    session_executor: Any, tmp_path: Path, record: str
) -> None:
    name, config = session_executor
    db = tmp_path / "history.db"
    control = str(tmp_path / "control.json")
    resources = {
        "db": SessionControlled(
            record=record, label="db", control=control, secret=SecretStr(SECRET)
        )
    }
    with Session(name, config) as session:
        results = [session.run_assets(fan("ab", ["db"]), resources, history=db) for _ in range(3)]
        set_faults(control, check={"db": "raise"})
        sick = session.run_assets(fan("ab", ["db"]), resources, history=db)
        set_faults(control)
    flush(db)
    first, *later = results
    brought_up = {
        (row["pid"], row["scope"])
        for row in get_run(db, first.run_id).resources
        if row["phase"] == "yield_enter"
    }
    assert brought_up and {scope for _, scope in brought_up} == {"session"}
    for result in later:
        record_ = get_run(db, result.run_id)
        reused = [row for row in record_.resources if row["phase"] == "reused"]
        # One row per process that took it, as the run's own events say.
        assert len(reused) == len(result.events_of(ResourceReused)) >= 1
        for row in reused:
            assert row["scope"] == "session" and row["resource_key"] == "db"
            assert session.session_id in row["note"]
            assert any(up_run in row["note"] for up_run in (first.run_id, *session.runs))
        assert not [row for row in record_.resources if row["phase"] == "yield_enter"]
        assert "reused" in show_text(record_)
        picture = render(record_)
        assert 'data-outcome="session"' in picture
        assert 'data-outcome="not-torn-down"' not in picture
    recycled = [row for row in get_run(db, sick.run_id).resources if row["phase"] == "recycled"]
    assert recycled and all("ConnectionError" in row["note"] for row in recycled)
    assert SECRET.encode() not in _db_bytes(db)
