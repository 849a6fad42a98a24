"""The run history: what a run records (from its own events, masked), concurrent runs, killed
runs, schema versions, a database that cannot be used, and the ``host runs`` / ``show`` /
``report`` / ``run --rerun-failed`` commands, run as a user runs them."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from host import (
    AssetFailed,
    AssetStarted,
    ConfigurableResource,
    InitResourceContext,
    ResourceEvent,
    asset,
    run_assets,
)
from host._history import flush, record_of
from host._history_query import get_run, list_runs
from host._history_schema import MIGRATIONS, SCHEMA_VERSION, HistoryError, open_database
from tests.dists import HOST, environ, run

SECRET = "s3cr3t-hist-0xBEEF"


def _db_bytes(path: Path) -> bytes:
    """Every byte the database keeps on disk (the file, its WAL, its shared memory)."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


# -- module-level definitions (they pickle to multiprocess workers) ----------------------------


class Hist(ConfigurableResource):
    """Fails the assets named in ``fail`` (quoting its secret, as careless code does), and its
    own setup or teardown when told."""

    secret: SecretStr
    fail: tuple[str, ...] = ()
    fail_setup: bool = False
    fail_teardown: bool = False

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.fail_setup:
            raise RuntimeError(f"setup failed with {self.secret.get_secret_value()}")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self.fail_teardown:
            raise RuntimeError(f"teardown failed with {self.secret.get_secret_value()}")

    def step(self, key: str) -> str:
        if key in self.fail:
            raise ValueError(f"{key} failed on purpose with {self.secret.get_secret_value()}")
        return key


# A tree: a_i needs a_((i - 1) // 2).
@asset
def a0(res: Hist) -> str:
    return res.step("a0")


@asset
def a1(res: Hist, a0: str) -> str:
    return res.step("a1")


@asset
def a2(res: Hist, a0: str) -> str:
    return res.step("a2")


@asset
def a3(res: Hist, a1: str) -> str:
    return res.step("a3")


@asset
def a4(res: Hist, a1: str) -> str:
    return res.step("a4")


@asset
def a5(res: Hist, a2: str) -> str:
    return res.step("a5")


TREE = [a0, a1, a2, a3, a4, a5]


def _hist(**fields: Any) -> Hist:
    return Hist(secret=SecretStr(SECRET), **fields)


def _check_record(db: Path, result: Any, planned: list[str]) -> None:
    """The stored run equals the run's own events and result."""
    record = get_run(db, result.run_id)
    assert record.run["outcome"] == ("succeeded" if result.success else "failed")
    assert [a["asset_key"] for a in record.assets] == planned
    status = {a["asset_key"]: a["status"] for a in record.assets}
    for key in planned:
        expected = (
            "ok" if key in result.outputs else "failed" if key in result.failures else "skipped"
        )
        assert status[key] == expected, key
    pids = {e.asset_key: e.pid for e in result.events_of(AssetStarted)}
    for row in record.assets:
        if row["asset_key"] in pids:
            assert row["pid"] == pids[row["asset_key"]]
    for failed in result.events_of(AssetFailed):
        row = next(a for a in record.assets if a["asset_key"] == failed.asset_key)
        assert row["error_type"] == failed.error.type
    events = result.events_of(ResourceEvent)
    assert [(r["resource_key"], r["pid"], r["phase"]) for r in record.resources] == [
        (e.resource_key, e.pid, e.phase) for e in events
    ]
    assert all(r["resource_type"] == "tests.test_history.Hist" for r in record.resources)
    # To the last bit, what the events say (the same as a picture drawn without a history).
    expected = record_of(record.run, result.events, {"res": Hist}, (SECRET,))
    assert _without_run_id(record.assets) == expected.assets
    assert _without_run_id(record.resources) == expected.resources
    assert SECRET.encode() not in _db_bytes(db)


def _without_run_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "run_id"} for row in rows]


@settings(max_examples=12, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=6),
    failing=st.frozensets(st.integers(min_value=0, max_value=5), max_size=3),
)
def test_an_in_process_run_is_recorded_as_its_events_say(
    tmp_path_factory: pytest.TempPathFactory, size: int, failing: frozenset[int]
) -> None:
    tmp = tmp_path_factory.mktemp("hist")
    db = tmp / "history.db"
    fail = tuple(f"a{i}" for i in failing)
    result = run_assets(TREE[:size], {"res": _hist(fail=fail)}, history=db, raise_on_error=False)
    flush()
    _check_record(db, result, [f"a{i}" for i in range(size)])


@pytest.mark.parametrize("place", ["asset", "setup", "teardown"])
def test_a_multiprocess_run_is_recorded_whole_and_masked(tmp_path: Path, place: str) -> None:
    db = tmp_path / "history.db"
    resource = _hist(
        fail=("a2",) if place == "asset" else (),
        fail_setup=place == "setup",
        fail_teardown=place == "teardown",
    )
    result = run_assets(
        TREE[:5],
        {"res": resource},
        executor="multiprocess",
        executor_config={"max_workers": 2},
        history=db,
        raise_on_error=False,
    )
    flush()
    assert not result.success
    _check_record(db, result, [f"a{i}" for i in range(5)])


def test_two_threads_running_at_once_are_both_recorded_whole(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def one(label: str) -> None:
        barrier.wait(timeout=30)
        result = run_assets(TREE, {"res": _hist(fail=("a3",))}, history=db, raise_on_error=False)
        results.append(result)

    threads = [threading.Thread(target=one, args=(f"t{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    flush()
    assert len(results) == 2
    for result in results:
        _check_record(db, result, [f"a{i}" for i in range(6)])
    assert len(list_runs(db)) == 2


# -- the command -------------------------------------------------------------------------------

ASSETS = """
import os, time
from host import asset

@asset
def base(db):
    db.execute("create table if not exists t (x)")
    return 1

@asset
def shaky(base, db):
    if os.environ.get("HIST_FAIL"):
        raise RuntimeError("shaky failed on purpose")
    return 2

@asset
def after(shaky):
    return 3

@asset
def other(db):
    marker = os.environ.get("HIST_MARKER")
    if marker:
        open(marker, "w").close()
        time.sleep(120)
    return 4
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hist_assets.py").write_text(ASSETS)
    (tmp_path / "run.toml").write_text(
        textwrap.dedent(
            f"""
            [run]
            assets = ["hist_assets"]

            [resources.db]
            type = "sqlite"
            [resources.db.config]
            path = "{tmp_path / "data.db"}"
            """
        )
    )
    return tmp_path


def _host(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run([HOST, *args], cwd=project, env=env)


def _runs(project: Path, *args: str) -> list[dict[str, Any]]:
    done = _host(project, "runs", "--json", *args)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_host_run_records_beside_the_config_and_show_prints_its_summary(project: Path) -> None:
    done = _host(project, "run", "run.toml", "--plain", HIST_FAIL="1")
    assert done.returncode == 1, done.stderr
    assert (project / ".host" / "history.db").is_file()
    [recorded] = _runs(project)
    assert recorded["outcome"] == "failed"
    assert recorded["config"] == str(project / "run.toml")
    assert recorded["counts"] == {"ok": 2, "failed": 1, "skipped": 1}
    shown = _host(project, "show", recorded["run_id"][:8])
    assert shown.returncode == 0, shown.stderr
    assert "shaky" in shown.stdout and "RuntimeError: shaky failed on purpose" in shown.stdout
    assert "1" in shown.stdout.split("base", 1)[1].splitlines()[0]  # the output, as shown
    assert f"Run {recorded['run_id']} FAILED" in shown.stdout
    assert [r["run_id"] for r in _runs(project, "--failed")] == [recorded["run_id"]]


def test_rerun_failed_runs_the_failed_and_skipped_assets_with_their_upstream(
    project: Path,
) -> None:
    assert _host(project, "run", "run.toml", HIST_FAIL="1").returncode == 1
    [first] = _runs(project)
    again = _host(project, "run", "run.toml", "--rerun-failed", first["run_id"])
    assert again.returncode == 0, again.stderr
    newest = _runs(project)[0]
    assert newest["run_id"] != first["run_id"]
    assert newest["planned"] == ["base", "shaky", "after"]
    assert newest["selection"] == ["shaky", "after"]
    assert newest["outcome"] == "succeeded"


def test_no_history_and_history_path(project: Path, tmp_path: Path) -> None:
    assert _host(project, "run", "run.toml", "--no-history").returncode == 0
    assert not (project / ".host").exists()
    elsewhere = tmp_path / "elsewhere" / "h.db"
    assert _host(project, "run", "run.toml", "--history", str(elsewhere)).returncode == 0
    assert len(_runs(project, "--history", str(elsewhere))) == 1
    home = tmp_path / "home"
    assert _host(project, "run", "run.toml", HOST_HOME=str(home)).returncode == 0
    assert (home / "history.db").is_file()


def test_two_host_run_processes_at_once_are_both_recorded(project: Path) -> None:
    env = environ()
    procs = [
        subprocess.Popen(
            [HOST, "run", "run.toml"],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    runs = _runs(project)
    assert len(runs) == 2
    for recorded in runs:
        assert recorded["outcome"] == "succeeded"
        assert recorded["counts"] == {"ok": 4}


def test_a_run_killed_with_sigkill_shows_as_interrupted(project: Path) -> None:
    marker = project / "marker"
    proc = subprocess.Popen(
        [HOST, "run", "run.toml"],
        cwd=project,
        env=environ(HIST_MARKER=str(marker)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the run never reached its asset"
            time.sleep(0.05)
        assert _runs(project)[0]["outcome"] == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    [recorded] = _runs(project)
    assert recorded["outcome"] == "interrupted"
    assert recorded["counts"] == {"unknown": 4}  # its end was never written
    shown = _host(project, "show", recorded["run_id"])
    assert "INTERRUPTED" in shown.stdout and f"pid {recorded['pid']}" in shown.stdout
    assert "4 unknown (the run's end was not recorded)" in shown.stdout
    for key in ("base", "shaky", "after", "other"):
        assert re.search(rf"^\s*{key}\s+unknown\b", shown.stdout, re.MULTILINE), shown.stdout
    # What it did is not known, so running its failures again runs every asset of it.
    again = _host(project, "run", "run.toml", "--rerun-failed", recorded["run_id"])
    assert again.returncode == 0, again.stderr
    newest = _runs(project)[0]
    assert newest["selection"] == ["base", "shaky", "after", "other"]
    assert newest["counts"] == {"ok": 4}


def test_a_run_stopped_by_sigterm_still_writes_its_report(project: Path) -> None:
    marker = project / "marker"
    proc = subprocess.Popen(
        [HOST, "run", "run.toml", "--plain", "--report", "stopped.html"],
        cwd=project,
        env=environ(HIST_MARKER=str(marker)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the run never reached its asset"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    [recorded] = _runs(project)
    assert recorded["outcome"] == "interrupted"
    # The asset running when the signal came reads back as `host run` showed it.
    assert recorded["counts"] == {"ok": 3, "interrupted": 1}
    assert re.search(r"^\s*other\s+interrupted\b", out, re.MULTILINE), out
    shown = _host(project, "show", recorded["run_id"])
    assert re.search(r"^\s*other\s+interrupted\b", shown.stdout, re.MULTILINE), shown.stdout
    text = (project / "stopped.html").read_text()
    assert recorded["run_id"] in text and "interrupted" in text
    assert "The picture of the run: stopped.html" in out


def _could_not_record(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "could not record" in line]


@pytest.mark.parametrize("damage", ["corrupt", "newer", "foreign"])
def test_a_database_that_cannot_be_used_costs_the_run_one_line(project: Path, damage: str) -> None:
    db = project / ".host" / "history.db"
    db.parent.mkdir()
    if damage == "corrupt":
        db.write_bytes(b"this is not a database, " * 200)
    else:  # "foreign": another program's database, with no schema version
        conn = sqlite3.connect(db)
        conn.execute("create table mine (x)")
        if damage == "newer":
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        conn.commit()
        conn.close()
    before = _db_bytes(db)
    done = _host(project, "run", "run.toml")
    assert done.returncode == 0, done.stderr
    [line] = _could_not_record(done.stderr)
    assert str(db) in line
    if damage == "newer":
        assert "newer host" in line
    if damage == "foreign":
        assert "not a run history" in line and "mine" in line
    for command in (["runs"], ["show", "abc"], ["report", "abc", "-o", "x.html"]):
        read = _host(project, *command)
        assert read.returncode == 2, (command, read.stderr)
        assert len(read.stderr.strip().splitlines()) == 1
        assert str(db) in read.stderr
    assert _db_bytes(db) == before  # never touched


def test_a_locked_database_is_reported_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import host._history_schema as schema

    db = tmp_path / "history.db"
    open_database(db).close()
    monkeypatch.setattr(schema, "BUSY_TIMEOUT", 0.2)
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="host.history"):
            result = run_assets(TREE[:2], {"res": _hist()}, history=db)
            flush()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert result.success
    [message] = [r.getMessage() for r in caplog.records if "could not record" in r.getMessage()]
    assert "locked" in message and result.run_id in message


def test_an_unknown_run_id_suggests_the_nearest(project: Path) -> None:
    assert _host(project, "run", "run.toml").returncode == 0
    [recorded] = _runs(project)
    wrong = recorded["run_id"][:10] + ("0" if recorded["run_id"][10] != "0" else "1")
    done = _host(project, "show", wrong)
    assert done.returncode == 2
    assert f"did you mean {recorded['run_id']}?" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = _host(project, "show", "")
    assert done.returncode == 2 and "no run id given" in done.stderr, done.stderr


def test_a_report_into_a_missing_folder_is_one_line(project: Path) -> None:
    assert _host(project, "run", "run.toml").returncode == 0
    [recorded] = _runs(project)
    done = _host(project, "report", recorded["run_id"], "-o", "nowhere/run.html")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "does not exist" in done.stderr
    done = _host(project, "report", recorded["run_id"], "-o", "run.html")
    assert done.returncode == 0, done.stderr
    text = (project / "run.html").read_text()
    assert "<svg" in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_host_run_checks_its_report_path_before_anything_comes_up(project: Path) -> None:
    for path in ("nowhere/run.html", "."):
        done = _host(project, "run", "run.toml", "--report", path)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("host: error: cannot write the report to")
        assert not (project / "data.db").exists()  # the sqlite resource never came up
        assert not (project / ".host").exists()  # and no run was recorded


def test_run_json_with_a_report_keeps_standard_output_one_json_document(project: Path) -> None:
    done = _host(project, "run", "run.toml", "--json", "--report", "run.html")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "succeeded"
    assert "The picture of the run: run.html" in done.stderr
    assert (project / "run.html").is_file()


def test_runs_refuses_what_it_cannot_list(project: Path) -> None:
    assert _host(project, "run", "run.toml").returncode == 0
    for args, says in (
        (["--limit", "0"], "--limit 0: give how many runs to list, 1 or more"),
        (["--limit", "-1"], "--limit -1"),
        (["--keep", "3"], "--keep 3 is for `host runs prune`"),
    ):
        done = _host(project, "runs", *args)
        assert done.returncode == 2 and says in done.stderr, done.stderr
    done = _host(project, "runs", "--failed")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"no failed or interrupted run recorded in {project / '.host' / 'history.db'}"
    )


def test_rerun_failed_of_another_config_names_the_config_to_use(project: Path) -> None:
    assert _host(project, "run", "run.toml", HIST_FAIL="1").returncode == 1
    [first] = _runs(project)
    (project / "other.toml").write_text((project / "run.toml").read_text())
    done = _host(
        project, "run", "other.toml", "--rerun-failed", first["run_id"],
        "--history", str(project / ".host" / "history.db"),
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert f"ran the run config {project / 'run.toml'}, not other.toml" in line
    assert f"host run {project / 'run.toml'} --rerun-failed {first['run_id']}" in line


def test_prune_keeps_the_newest(project: Path) -> None:
    for _ in range(3):
        assert _host(project, "run", "run.toml").returncode == 0
    newest = _runs(project)[0]["run_id"]
    done = _host(project, "runs", "prune", "--keep", "1")
    assert done.returncode == 0, done.stderr
    assert [r["run_id"] for r in _runs(project)] == [newest]
    assert _host(project, "runs", "prune").returncode == 2


# -- the schema ----------------------------------------------------------------------------------


def test_an_older_database_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version=1")
    conn.execute(
        "INSERT INTO runs (run_id, executor, planned, started, outcome, pid, hostname, "
        "host_version, plugins) VALUES ('old', 'in_process', '[]', 1.0, 'succeeded', 1, 'h', "
        "'0.0', '{}')"
    )
    conn.close()
    with pytest.raises(HistoryError, match="older than this host"):
        open_database(db, create=False)
    open_database(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT run_id FROM runs").fetchall() == [("old",)]
    conn.close()
    assert get_run(db, "old").run["outcome"] == "succeeded"


def test_a_newer_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(HistoryError, match="newer host"):
        open_database(db)
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()
    assert os.path.getsize(db) == len(before)
