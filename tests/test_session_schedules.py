"""Random schedules of a ``host.Session``: runs, faults in them, in ``host_check``, at close.

A schedule is a sequence of runs in one session over three resources that stay the same (a
session resource ``s1``, a session-scoped pair ``s2`` over a session-scoped ``s2_inner``, and a
run resource ``r1``); each run draws its assets (which resources each uses, one may raise) and
its faults, switched on through the resources' control file (``tests.sessions``): setups that
raise, ``host_check``\\ s that return false or raise, a run resource's teardown that raises. At
close, some session resources' teardowns raise. Checked for every schedule, per process, from
the records the resources wrote:

* every session resource that came up is torn down exactly once, one that failed to come up
  never; the copies up at close go down at close, in reverse order of bring-up;
* a session resource goes down before close only when it is recycled: right after a failed
  ``host_check`` of it or of what it depends on (a ``ResourceRecycled`` event each);
* every run resource is torn down in its run;
* ``SessionTeardownError`` names exactly the teardowns that failed at close; the secret the
  resources quote in their failures appears in no event, result or error;
* on ``multiprocess``, no worker that wrote a record outlives the session.

The default run tries 8 schedules in process and 4 on ``multiprocess``; ``pytest -m slow``
tries 100 on each.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from host import ResourceRecycled, Session, SessionTeardownError
from tests.graphs import make_asset
from tests.observers import EventLog
from tests.processes import assert_no_child_left, children
from tests.recording import read
from tests.sessions import (
    SESSION_EXECUTORS,
    Controlled,
    SessionControlled,
    SessionPair,
    alive,
    check_run_resources,
    check_session_lifecycle,
    set_faults,
    worker_pids,
)

Executor = tuple[str, dict[str, Any]]

SECRET = "tok-5ched-5e55-41f0"
KEYS = ("s1", "s2", "r1")
SESSION_LABELS = ("s1", "s2", "s2_inner")
#: label -> the labels whose failed host_check tears it down too (itself and what it needs).
RECYCLED_BY = {"s1": {"s1"}, "s2": {"s2", "s2_inner"}, "s2_inner": {"s2_inner"}}


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    assets = draw(
        st.lists(st.lists(st.sampled_from(KEYS), min_size=1, unique=True), min_size=1, max_size=3)
    )
    checks = draw(st.lists(st.sampled_from(["ok", "false", "raise"]), min_size=3, max_size=3))
    return {
        "assets": assets,
        "fail": draw(st.sampled_from([None, *range(len(assets))])),
        "setup": draw(st.lists(st.sampled_from(("s1", "s2_inner", "s2", "r1")), unique=True)),
        "check": {
            label: how for label, how in zip(SESSION_LABELS, checks, strict=True) if how != "ok"
        },
        "teardown": draw(st.lists(st.just("r1"), max_size=1)),
    }


schedules = st.fixed_dictionaries(
    {
        "runs": st.lists(runs(), min_size=2, max_size=4),
        "close": st.lists(st.sampled_from(SESSION_LABELS), unique=True),
    }
)


def check_schedule(schedule: dict[str, Any], executor: Executor, record: str, control: str) -> None:
    name, config = executor
    set_faults(control)
    token = SecretStr(SECRET)

    def controlled(cls: type[Controlled], label: str, **more: Any) -> Any:
        return cls(record=record, label=label, control=control, secret=token, **more)

    resources = {
        "s1": controlled(SessionControlled, "s1"),
        "s2": controlled(SessionPair, "s2", inner=controlled(SessionControlled, "s2_inner")),
        "r1": controlled(Controlled, "r1"),
    }
    log = EventLog()
    before = set(children())
    session = Session(name, config, plugins=[log])
    results = []
    raised: SessionTeardownError | None = None
    try:
        for run in schedule["runs"]:
            assets = [
                make_asset(f"a{i}", (), used, fail=run["fail"] == i)
                for i, used in enumerate(run["assets"])
            ]
            set_faults(control, setup=run["setup"], check=run["check"], teardown=run["teardown"])
            result = session.run_assets(assets, resources, raise_on_error=False)
            results.append(result)
            check_run_resources(read(record), ["r1"], result.run_id)
            assert set(result.outputs) | set(result.failures) == {a.key for a in assets}
        set_faults(control, teardown=schedule["close"])
        at = len(read(record))
    finally:
        try:
            session.close()
        except SessionTeardownError as error:
            raised = error
    records = read(record)
    check_session_lifecycle(records, SESSION_LABELS, at)

    # Down before close only when recycled, right after a failed host_check.
    recycled = [e for r in results for e in r.events_of(ResourceRecycled)]
    failed_checks = [r for r in records if r["event"] == "check" and r["how"] != "ok"]
    assert len(recycled) == len(failed_checks)
    for i, r in enumerate(records[:at]):
        if r["event"] != "teardown" or r["label"] not in SESSION_LABELS:
            continue
        earlier = [x for x in records[:i] if x["pid"] == r["pid"]]
        last_check = next((x for x in reversed(earlier) if x["event"] == "check"), None)
        assert last_check is not None and last_check["how"] != "ok", (
            f"{r['label']} went down before close without a failed host_check: {r}"
        )
        assert last_check["label"] in RECYCLED_BY[r["label"]]

    # The close's failures are exactly the failing teardowns of what was up at close.
    failed_at_close = [
        r["label"]
        for r in records[at:]
        if r["event"] == "teardown" and r["label"] in schedule["close"]
    ]
    errors = [] if raised is None else [e.resource_key for e in raised.errors]
    keys = {"s1": "s1", "s2": "s2", "s2_inner": "s2.inner"}
    assert sorted(errors) == sorted(keys[label] for label in failed_at_close)
    assert [e.resource_key for e in session.teardown_errors] == errors

    everything = repr((results, log.events, session.events, session.teardown_errors, raised))
    assert SECRET not in everything
    assert not alive(worker_pids(records))
    assert_no_child_left(before)


_EXAMPLES = itertools.count()


def _run(schedule: dict[str, Any], executor: Executor, tmp_path: Any) -> None:
    n = next(_EXAMPLES)
    record = str(tmp_path / f"records-{n}.jsonl")
    control = str(tmp_path / f"control-{n}.json")
    check_schedule(schedule, executor, record, control)


@pytest.mark.parametrize("executor", SESSION_EXECUTORS)
def test_session_schedules(executor: Executor, tmp_path: Any) -> None:
    # 8 schedules in process, 4 on multiprocess (each starts its workers); 100 under slow.
    examples = 4 if executor[0] == "multiprocess" else 8

    @settings(max_examples=examples, deadline=None)
    @given(schedule=schedules)
    def check(schedule: dict[str, Any]) -> None:
        _run(schedule, executor, tmp_path)

    check()


@pytest.mark.slow
@pytest.mark.parametrize("executor", SESSION_EXECUTORS)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(schedule=schedules)
def test_session_schedules_many(
    schedule: dict[str, Any], executor: Executor, tmp_path: Any
) -> None:
    _run(schedule, executor, tmp_path)
