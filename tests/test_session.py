"""``host.Session``: session resources up once per session per process, down once at close.

Each test runs on every executor that keeps sessions (``tests.sessions.SESSION_EXECUTORS``); the
evidence is what the resources wrote themselves (``tests.sessions.Controlled``), counted per
process, and on ``multiprocess`` that the workers that wrote records are gone once the session
closed (``/proc``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import host
from host import (
    ConfigError,
    DefinitionError,
    ResourceEvent,
    ResourceRecycled,
    ResourceReused,
    RunFailure,
    Session,
    SessionError,
    SessionTeardownError,
)
from tests.graphs import make_asset
from tests.observers import EventLog
from tests.processes import assert_no_child_left, children
from tests.recording import read
from tests.sessions import (
    SESSION_EXECUTORS,
    AsyncChecked,
    Controlled,
    LongLived,
    SessionControlled,
    SessionPair,
    ShortLived,
    alive,
    check_run_resources,
    check_session_lifecycle,
    sampled,
    set_faults,
    worker_pids,
)

Executor = tuple[str, dict[str, Any]]

SECRET = "tok-5e55-10n-8c2d"


@pytest.fixture(params=SESSION_EXECUTORS)
def session_executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """An (executor, executor_config) pair that keeps sessions; no child process outlives the
    test."""
    before = set(children())
    yield request.param
    assert_no_child_left(before)


@pytest.fixture
def control(tmp_path: Path) -> str:
    """A fault control file (no fault on)."""
    return str(tmp_path / "control.json")


def ups(records: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    return [r for r in records if r["label"] == label and r["event"] == "up"]


def teardowns(records: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    return [r for r in records if r["label"] == label and r["event"] == "teardown"]


def per_pid(rows: list[dict[str, Any]]) -> dict[int, int]:
    found: dict[int, int] = {}
    for r in rows:
        found[r["pid"]] = found.get(r["pid"], 0) + 1
    return found


def fan(names: str, resources: list[str], *, fail: str = "") -> list[Any]:
    """Independent assets (one per letter of ``names``) each using ``resources``."""
    return [make_asset(f"{n}", (), resources, fail=n == fail) for n in names]


def closed(session: Session, record: str) -> int:
    """Close ``session``; give where its close's records start."""
    at = len(read(record))
    session.close()
    return at


# -- up once, reused, down once at close -----------------------------------------------------


def test_session_resource_is_up_once_per_process_and_reused_by_later_runs(
    session_executor: Executor, record: str
) -> None:
    name, config = session_executor
    log = EventLog()
    resources = {
        "db": SessionControlled(record=record, label="db"),
        "conn": Controlled(record=record, label="conn"),
    }
    runs = 4
    with Session(name, config, plugins=[log]) as session:
        results = []
        for _ in range(runs):
            results.append(session.run_assets(fan("abcd", ["db", "conn"]), resources))
            check_run_resources(read(record), ["conn"], results[-1].run_id)
        before_close = read(record)
        assert not teardowns(before_close, "db"), "a session resource went down before close"
        at = len(before_close)
    records = read(record)
    check_session_lifecycle(records, ["db"], at)
    # Up once per process across every run; the run resource once per run per process.
    assert all(n == 1 for n in per_pid(ups(records, "db")).values())
    assert per_pid(teardowns(records, "db")) == per_pid(ups(records, "db"))
    assert {r["run"] for r in ups(records, "conn")} == {r.run_id for r in results}
    assert session.runs == [r.run_id for r in results]
    # Private state persists: each process's one copy counted every use of every run.
    for pid, n in per_pid(
        [r for r in records if r["label"] == "db" and r["event"] == "use"]
    ).items():
        counts = [
            r["count"]
            for r in records
            if r["label"] == "db" and r["event"] == "use" and r["pid"] == pid
        ]
        assert counts == list(range(1, n + 1))
    # Every take of it in a run after its first is a ResourceReused event with its uses.
    reused = [e for r in results for e in r.events_of(ResourceReused)]
    assert all(e.resource_key == "db" and e.session_id == session.session_id for e in reused)
    first = {r["pid"]: r["run"] for r in ups(records, "db")}
    assert {e.since_run for e in reused} <= set(first.values())
    for since in {e.since_run for e in reused}:
        # Each process that brought it up in that run counts its own uses 2, 3, ...
        copies = sum(1 for run in first.values() if run == since)
        uses = [e.uses for e in reused if e.since_run == since]
        tally = [uses.count(n) for n in range(2, max(uses) + 1)]
        assert all(0 < n <= copies for n in tally), uses
        assert tally == sorted(tally, reverse=True), uses
    assert len(reused) + len(first) >= runs  # each run took it in some process
    if name == "in_process":
        assert [len(r.events_of(ResourceReused)) for r in results] == [0, 1, 1, 1]
        assert [e.uses for e in reused] == [2, 3, 4]
    # Its events say "session"; its teardown is an event of the close, with the session's id.
    setups = [e for r in results for e in r.events_of(ResourceEvent) if e.resource_key == "db"]
    assert setups and all(e.scope == "session" for e in setups)
    down = [e for e in session.events if isinstance(e, ResourceEvent)]
    assert down and all(e.run_id == session.session_id and e.scope == "session" for e in down)
    assert {e.resource_key for e in down} == {"db"}
    assert not alive(worker_pids(records))


def test_session_resources_go_down_in_reverse_order_of_bring_up(
    session_executor: Executor, record: str
) -> None:
    name, config = session_executor
    inner = SessionControlled(record=record, label="pair_inner")
    resources = {
        "pair": SessionPair(record=record, label="pair", inner=inner),
        "late": SessionControlled(record=record, label="late"),
    }
    with Session(name, config) as session:
        session.run_assets(fan("ab", ["pair"]), resources)
        session.run_assets(fan("ab", ["pair", "late"]), resources)
        at = len(read(record))
    records = read(record)
    order = check_session_lifecycle(records, ["pair", "pair_inner", "late"], at)
    for pid, labels in order.items():
        expected = [x for x in ["late", "pair", "pair_inner"] if x in labels]
        assert labels == expected, f"pid {pid}"
    assert any(labels[-2:] == ["pair", "pair_inner"] for labels in order.values())
    assert not alive(worker_pids(records))


ENDINGS = ["block_raises", "interrupt", "run_fails", "teardown_fails", "teardown_fails_raising"]


@sampled(ENDINGS, on_multiprocess=["interrupt", "teardown_fails"], name="ending")
def test_session_resources_go_down_once_whatever_ends_the_session(
    session_executor: Executor, record: str, control: str, ending: str
) -> None:
    name, config = session_executor
    inner = SessionControlled(record=record, label="pair_inner", control=control)
    resources = {
        "pair": SessionPair(record=record, label="pair", inner=inner, control=control),
        "other": SessionControlled(record=record, label="other", control=control),
        "conn": Controlled(record=record, label="conn", control=control),
    }
    expected: type[BaseException] = {
        "block_raises": ValueError,
        "interrupt": KeyboardInterrupt,
        "run_fails": RunFailure,
        "teardown_fails": SessionTeardownError,
        "teardown_fails_raising": ValueError,
    }[ending]
    at = 0
    with pytest.raises(expected) as raised, Session(name, config) as session:
        session.run_assets(fan("ab", ["pair", "conn"]), resources)
        session.run_assets(fan("ab", ["other", "pair"]), resources)
        if ending.startswith("teardown_fails"):
            set_faults(control, teardown=["other"])
        at = len(read(record))
        if ending in {"block_raises", "teardown_fails_raising"}:
            raise ValueError("the block failed")
        if ending == "interrupt":
            raise KeyboardInterrupt
        if ending == "run_fails":
            session.run_assets(fan("ab", ["other", "conn"], fail="b"), resources)
            pytest.fail("the run did not fail")
    records = read(record)
    labels = ["pair", "pair_inner", "other"]
    check_session_lifecycle(records, labels, at)
    for label in labels:
        assert per_pid(teardowns(records, label)) == per_pid(ups(records, label)) != {}
    if ending.startswith("teardown_fails"):
        assert [e.resource_key for e in session.teardown_errors] == ["other"] * len(
            per_pid(ups(records, "other"))
        )
    if ending == "teardown_fails":
        assert isinstance(raised.value, SessionTeardownError)
        assert [e.resource_key for e in raised.value.errors] == [
            e.resource_key for e in session.teardown_errors
        ]
        assert "'other'" in str(raised.value)
    if ending == "teardown_fails_raising":  # what left the block goes on, the failure noted
        assert str(raised.value) == "the block failed"
        notes = getattr(raised.value, "__notes__", [])
        assert any("'other'" in note for note in notes), notes
    assert not alive(worker_pids(records))
    with pytest.raises(SessionError, match="closed"):
        session.run_assets(fan("a", ["other"]), resources)


def test_a_run_that_fails_leaves_the_session_usable(
    session_executor: Executor, record: str, control: str
) -> None:
    name, config = session_executor
    resources = {
        "db": SessionControlled(record=record, label="db", control=control),
        "conn": Controlled(record=record, label="conn", control=control),
    }
    with Session(name, config) as session:
        failed = session.run_assets(
            fan("ab", ["db", "conn"], fail="a"), resources, raise_on_error=False
        )
        assert not failed.success and set(failed.failures) == {"a"}
        set_faults(control, setup=["conn"])
        broken = session.run_assets(fan("ab", ["db", "conn"]), resources, raise_on_error=False)
        assert set(broken.failures) == {"a", "b"}
        set_faults(control)
        fine = session.run_assets(fan("ab", ["db", "conn"]), resources)
        assert fine.success
        for result in (failed, broken, fine):
            check_run_resources(read(record), ["conn"], result.run_id)
        at = len(read(record))
    records = read(record)
    check_session_lifecycle(records, ["db"], at)
    assert all(n == 1 for n in per_pid(ups(records, "db")).values())


# -- what a session refuses ------------------------------------------------------------------


def test_a_changed_config_for_a_session_resource_is_a_config_error_before_anything_comes_up(
    session_executor: Executor, record: str
) -> None:
    name, config = session_executor
    with Session(name, config) as session:
        first = {
            "db": SessionControlled(record=record, label="db", secret=SecretStr(SECRET)),
            "conn": Controlled(record=record, label="conn"),
        }
        session.run_assets(fan("ab", ["db", "conn"]), first)
        before = read(record)
        changed = {
            **first,
            "db": SessionControlled(record=record, label="db", secret=SecretStr(SECRET + "x")),
        }
        with pytest.raises(ConfigError) as raised:
            session.run_assets(fan("ab", ["db", "conn"]), changed)
        assert raised.value.resource_key == "db"
        assert "'secret'" in str(raised.value) and "Nothing was brought up" in str(raised.value)
        assert SECRET not in str(raised.value)
        assert read(record) == before, "a run with a changed config brought something up"
        # The same config again is fine.
        session.run_assets(fan("ab", ["db", "conn"]), first)


@pytest.mark.parametrize(
    "refusal",
    [
        {"timeout": -1},
        {"resource_timeouts": {"db": {"setup": 0}}},
        {"resource_timeouts": {"x": {}}},
    ],
    ids=["run-timeout", "resource-timeout", "unknown-key"],
)
def test_a_run_refused_before_it_starts_leaves_the_session_as_it_was(
    record: str, refusal: dict[str, Any]
) -> None:
    # Refused after the session's checks could have passed: it pins no config, counts no run.
    with Session() as session:
        first = {"db": SessionControlled(record=record, label="db", secret=SecretStr(SECRET))}
        with pytest.raises(ConfigError):
            session.run_assets(fan("a", ["db"]), first, **refusal)
        assert session.runs == [] and read(record) == []
        other = {"db": SessionControlled(record=record, label="db2")}
        done = session.run_assets(fan("a", ["db"]), other)
    assert session.runs == [done.run_id]


def test_a_session_resource_depending_on_a_run_scoped_one_is_a_definition_error(
    session_executor: Executor, record: str
) -> None:
    name, config = session_executor
    resources = {
        "pair": SessionPair(
            record=record, label="pair", inner=Controlled(record=record, label="pair_inner")
        ),
    }
    with (
        Session(name, config) as session,
        pytest.raises(DefinitionError, match=r"'pair'.*'pair.inner'.*run-scoped"),
    ):
        session.run_assets(fan("a", ["pair"]), resources)
    assert read(record) == []


def test_a_run_after_close_is_a_session_error(session_executor: Executor, record: str) -> None:
    name, config = session_executor
    resources = {"db": SessionControlled(record=record, label="db")}
    session = Session(name, config)
    session.run_assets(fan("a", ["db"]), resources)
    session.close()
    session.close()  # once; later calls do nothing
    with pytest.raises(SessionError, match=session.session_id):
        session.run_assets(fan("a", ["db"]), resources)
    assert per_pid(teardowns(read(record), "db")) == per_pid(ups(read(record), "db")) != {}
    assert not alive(worker_pids(read(record)))


# -- run resources inside a session, run_config scope ---------------------------------------


def test_run_resources_keep_the_run_contract_inside_a_session(
    session_executor: Executor, record: str
) -> None:
    name, config = session_executor
    resources = {"conn": Controlled(record=record, label="conn")}
    with Session(name, config) as session:
        ids = [session.run_assets(fan("abc", ["conn"]), resources).run_id for _ in range(3)]
        for run_id in ids:
            check_run_resources(read(record), ["conn"], run_id)
        assert {r["run"] for r in ups(read(record), "conn")} == set(ids)
        at = len(read(record))
    assert len(read(record)) == at, "the close tore down a run resource"


def test_run_config_scope_session_makes_a_plain_resource_session_scoped(
    session_executor: Executor, record: str
) -> None:
    name, config = session_executor
    resources = {"db": Controlled(record=record, label="db")}
    scoped = {"resources": {"db": {"scope": "session"}}}
    with Session(name, config) as session:
        for _ in range(3):
            session.run_assets(fan("ab", ["db"]), resources, run_config=scoped)
        assert not teardowns(read(record), "db")
        at = len(read(record))
    records = read(record)
    check_session_lifecycle(records, ["db"], at)
    assert all(n == 1 for n in per_pid(ups(records, "db")).values())


# -- host_check and host_max_lifetime --------------------------------------------------------


CHECKS = ["sync-false", "sync-raise", "async-false", "async-raise"]


@sampled(CHECKS, on_multiprocess=["sync-raise", "async-false"], name="check")
def test_a_failed_host_check_recycles_the_resource(
    session_executor: Executor, record: str, control: str, check: str
) -> None:
    kind, how = check.split("-")
    cls: type[Controlled] = SessionControlled if kind == "sync" else AsyncChecked
    name, config = session_executor
    resources = {"db": cls(record=record, label="db", control=control, secret=SecretStr(SECRET))}
    with Session(name, config) as session:
        first = session.run_assets(fan("a", ["db"]), resources)
        healthy = session.run_assets(fan("a", ["db"]), resources)
        set_faults(control, check={"db": how})
        sick = session.run_assets(fan("a", ["db"]), resources)
        set_faults(control)
        at = len(read(record))
    records = read(record)
    check_session_lifecycle(records, ["db"], at)
    checks = [r for r in records if r["event"] == "check"]
    failed = [r for r in checks if r["how"] == how]
    assert failed, "host_check was not called"
    recycled = sick.events_of(ResourceRecycled)
    assert len(recycled) == len(failed)
    assert not first.events_of(ResourceRecycled) and not healthy.events_of(ResourceRecycled)
    for event in recycled:
        assert event.resource_key == "db" and event.session_id == session.session_id
        assert ("returned False" if how == "false" else "ConnectionError") in event.reason
        assert SECRET not in event.reason
    # Each failed check tore its copy down in that process and brought a new one up in the run.
    for r in failed:
        mine = [x for x in records if x["pid"] == r["pid"] and x["label"] == "db"]
        after = [x["event"] for x in mine[mine.index(r) + 1 :]]
        assert after[:3] == ["teardown", "setup", "up"], after
    assert {r["run"] for r in ups(records, "db")} - {first.run_id, healthy.run_id} == {sick.run_id}
    for result in (first, healthy, sick):
        assert SECRET not in repr(result)


def test_a_teardown_that_fails_while_recycling_is_one_error_of_that_run_per_copy(
    session_executor: Executor, record: str, control: str
) -> None:
    name, config = session_executor
    resources = {"db": SessionControlled(record=record, label="db", control=control)}
    with Session(name, config) as session:
        first = session.run_assets(fan("ab", ["db"]), resources)
        set_faults(control, check={"db": "false"}, teardown=["db"])
        sick = session.run_assets(fan("ab", ["db"]), resources, raise_on_error=False)
        set_faults(control)
    records = read(record)
    recycled = [r for r in teardowns(records, "db") if r["run"] == first.run_id]
    assert recycled and len(sick.events_of(ResourceRecycled)) == len(recycled)
    assert [e.resource_key for e in sick.resource_errors] == ["db"] * len(recycled)
    failed = [e for e in sick.events_of(ResourceEvent) if e.phase == "teardown" and e.error]
    assert len(failed) == len(recycled)
    assert not sick.success and sick.outputs.keys() == {"a", "b"}


def test_a_resource_past_its_max_lifetime_is_recycled_and_one_within_it_is_not(
    session_executor: Executor, record: str
) -> None:
    name, config = session_executor
    resources = {
        "short": ShortLived(record=record, label="short"),
        "long": LongLived(record=record, label="long"),
    }
    if name != "in_process":
        pytest.skip("which worker takes which run is not fixed: checked in process")
    with Session(name, config) as session:
        session.run_assets(fan("a", ["short", "long"]), resources)
        time.sleep(0.1)  # past the 50 ms lifetime of "short"
        second = session.run_assets(fan("a", ["short", "long"]), resources)
        at = len(read(record))
    records = read(record)
    check_session_lifecycle(records, ["short", "long"], at)
    [recycled] = second.events_of(ResourceRecycled)
    assert recycled.resource_key == "short" and "host_max_lifetime" in recycled.reason
    assert [e.resource_key for e in second.events_of(ResourceReused)] == ["long"]
    assert len(ups(records, "short")) == 2 and len(ups(records, "long")) == 1


def test_a_max_lifetime_recycles_in_each_worker(session_executor: Executor, record: str) -> None:
    name, config = session_executor
    resources = {"short": ShortLived(record=record, label="short")}
    with Session(name, config) as session:
        results = []
        for _ in range(3):
            results.append(session.run_assets(fan("abcd", ["short"]), resources))
            time.sleep(0.1)
        at = len(read(record))
    records = read(record)
    check_session_lifecycle(records, ["short"], at)
    # No copy outlived its lifetime into a later run: every later run took a fresh one.
    assert not [e for r in results for e in r.events_of(ResourceReused)]
    recycled = [e for r in results for e in r.events_of(ResourceRecycled)]
    assert len(recycled) == len(ups(records, "short")) - len(per_pid(ups(records, "short")))


# -- threads ---------------------------------------------------------------------------------


def test_runs_from_several_threads_are_isolated_and_share_the_session_resource(
    record: str,
) -> None:
    threads = 4
    barrier = threading.Barrier(threads)
    db = SessionControlled(record=record, label="db")
    results: dict[int, list[host.RunResult]] = {}
    errors: list[BaseException] = []

    def work(i: int, session: Session) -> None:
        try:
            resources = {"db": db, "conn": Controlled(record=record, label=f"conn{i}")}
            barrier.wait(timeout=30)
            results[i] = [
                session.run_assets(fan(f"{chr(97 + i)}", ["db", "conn"]), resources)
                for _ in range(3)
            ]
        except BaseException as exc:
            errors.append(exc)

    with Session("in_process") as session:
        workers = [threading.Thread(target=work, args=(i, session)) for i in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(timeout=120)
        assert not errors, errors
        at = len(read(record))
    records = read(record)
    check_session_lifecycle(records, ["db"], at)
    assert len(ups(records, "db")) == 1
    for i, mine in results.items():
        for result in mine:
            assert set(result.outputs) == {chr(97 + i)}, "a run saw another thread's assets"
            check_run_resources(records, [f"conn{i}"], result.run_id)
            conns = {
                r["label"] for r in records if r["event"] == "up" and r["run"] == result.run_id
            }
            assert conns <= {f"conn{i}", "db"}
    assert len(session.runs) == threads * 3 == len(set(session.runs))
    reused = [e for mine in results.values() for r in mine for e in r.events_of(ResourceReused)]
    assert sorted(e.uses for e in reused) == list(range(2, threads * 3 + 1))


@host.asset
def held(db: Any) -> str:
    """Says it started (a ``held`` file beside ``db``'s record), waits for a ``release`` file
    there, then uses ``db``: what the session's close must wait for."""
    here = Path(db.record).parent
    (here / "held").write_text("held")
    while not (here / "release").exists():
        time.sleep(0.01)
    return str(db.use())


@pytest.mark.parametrize("failing_teardown", [False, True])
def test_close_waits_for_a_run_going_on_in_another_thread(
    session_executor: Executor, record: str, control: str, failing_teardown: bool
) -> None:
    name, config = session_executor
    here = Path(record).parent
    resources = {"db": SessionControlled(record=record, label="db", control=control)}
    session = Session(name, config)
    session.run_assets(fan("a", ["db"]), resources)
    results: list[host.RunResult] = []
    closing_errors: list[BaseException] = []

    def close() -> None:
        try:
            session.close()
        except BaseException as exc:
            closing_errors.append(exc)

    run = threading.Thread(target=lambda: results.append(session.run_assets([held], resources)))
    closer = threading.Thread(target=close)
    run.start()
    try:
        deadline = time.monotonic() + 60
        while not (here / "held").exists():
            assert time.monotonic() < deadline and run.is_alive(), "the held run never started"
            time.sleep(0.01)
        if failing_teardown:
            set_faults(control, teardown=["db"])
        closer.start()
        closer.join(timeout=0.5)
        assert closer.is_alive(), "close() returned while a run of the session was going on"
        assert teardowns(read(record), "db") == []
        with pytest.raises(SessionError, match="closed"):
            session.run_assets(fan("b", ["db"]), resources)
    finally:
        (here / "release").write_text("go")  # a failed check must not leave the run waiting
        run.join(timeout=60)
        if closer.ident is not None:
            closer.join(timeout=60)
        session.close()
    assert not run.is_alive() and not closer.is_alive()
    assert [r.outputs for r in results] == [{"held": "db"}]
    records = read(record)
    last_use = max(i for i, r in enumerate(records) if r["event"] == "use")
    down = [i for i, r in enumerate(records) if r["event"] == "teardown"]
    assert down and min(down) > last_use, "a session resource went down while it was in use"
    assert per_pid(teardowns(records, "db")) == per_pid(ups(records, "db"))
    if failing_teardown:
        assert [type(e) for e in closing_errors] == [SessionTeardownError]
        assert len(session.teardown_errors) == len(per_pid(ups(records, "db")))
    else:
        assert closing_errors == [] and session.teardown_errors == []
    assert not alive(worker_pids(records))


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_are_masked_in_check_failures_and_close_failures(
    session_executor: Executor, record: str, control: str
) -> None:
    name, config = session_executor
    log = EventLog()
    resources = {
        "db": SessionControlled(
            record=record, label="db", control=control, secret=SecretStr(SECRET)
        )
    }
    with (
        pytest.raises(SessionTeardownError) as raised,
        Session(name, config, plugins=[log]) as session,
    ):
        session.run_assets(fan("ab", ["db"]), resources)
        set_faults(control, check={"db": "raise"})
        session.run_assets(fan("ab", ["db"]), resources)
        set_faults(control, teardown=["db"])
    assert SECRET not in str(raised.value)
    assert session.teardown_errors and all(SECRET not in repr(e) for e in session.teardown_errors)
    assert log.events and SECRET not in repr(log.events)
    assert SECRET not in repr(session.events)
    recycled = [e for e in log.events if isinstance(e, ResourceRecycled)]
    assert recycled and all("ConnectionError" in e.reason for e in recycled)
