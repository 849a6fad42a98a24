"""The behaviour contract every executor keeps, proven by records the resources write.

Each test runs once per executor in ``tests.conftest.EXECUTORS``. Records are counted per
process: a resource comes up at most once per run per process, only where an asset needs it, and
everything that came up is torn down exactly once, in reverse order, whatever failed.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from host import (
    ResourceSetupError,
    RunFailure,
    run_assets,
)
from tests.graphs import make_asset
from tests.recording import Recorded, RecordedPair, RecordedYield, counts, read

Executor = tuple[str, dict[str, Any]]


def check_lifecycle(records: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Assert the lifecycle invariants per process; return the bring-up order per pid.

    Per process: each label set up at most once; torn down exactly once if its setup
    succeeded (a "use" proves it was up) and never if it was never set up; teardown in reverse
    order of setup.
    """
    by_pid: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_pid[r["pid"]].append(r)
    order: dict[int, list[str]] = {}
    for pid, rows in by_pid.items():
        setups = [r["label"] for r in rows if r["event"] == "setup"]
        teardowns = [r["label"] for r in rows if r["event"] == "teardown"]
        assert len(setups) == len(set(setups)), f"pid {pid}: a resource came up twice: {setups}"
        assert len(teardowns) == len(set(teardowns)), f"pid {pid}: torn down twice: {teardowns}"
        assert set(teardowns) <= set(setups), f"pid {pid}: torn down but never set up"
        # Teardown order is the reverse of bring-up order, for those torn down.
        up_order = [label for label in setups if label in teardowns]
        assert teardowns == list(reversed(up_order)), (
            f"pid {pid}: teardown {teardowns} is not the reverse of bring-up {up_order}"
        )
        order[pid] = setups
    return order


def test_each_resource_up_once_per_process_and_torn_down(executor: Executor, record: str) -> None:
    name, config = executor
    resources = {
        "plain": Recorded(record=record, label="plain"),
        "held": RecordedYield(record=record, label="held"),
        "unused": Recorded(record=record, label="unused"),
    }
    assets = [
        make_asset(f"a{i}", resources=["plain", "held"] if i % 2 else ["plain"]) for i in range(8)
    ]
    result = run_assets(assets, resources, executor=name, executor_config=config)

    assert result.success
    assert set(result.outputs) == {f"a{i}" for i in range(8)}
    records = read(record)
    check_lifecycle(records)
    setups = counts(records, "setup")
    teardowns = counts(records, "teardown")
    assert setups == teardowns
    assert all(n == 1 for n in setups.values())
    assert "unused" not in {label for label, _ in setups}
    # Every process that used a resource brought it up; none brought up what it did not use.
    used = {(r["label"], r["pid"]) for r in records if r["event"] == "use"}
    assert set(setups) == used
    if name == "in_process":
        assert {pid for _, pid in setups} == {os.getpid()}


def test_dependencies_come_up_first_and_a_shared_one_once(executor: Executor, record: str) -> None:
    name, config = executor
    shared = Recorded(record=record, label="shared")
    resources = {
        "first": RecordedPair(record=record, label="first", inner=shared),
        "second": RecordedPair(record=record, label="second", inner=shared),
    }
    assets = [make_asset("uses_both", resources=["first", "second"])]
    result = run_assets(assets, resources, executor=name, executor_config=config)

    assert result.success
    order = check_lifecycle(read(record))
    (setups,) = order.values()
    assert setups == ["shared", "first", "second"]
    keys = {r["label"]: r["key"] for r in read(record) if r["event"] == "setup"}
    assert keys["shared"] == "first.inner"  # a nested dependency's context shows its own key


def test_asset_failure_still_tears_down_and_independent_assets_run(
    executor: Executor, record: str
) -> None:
    name, config = executor
    resources = {"r": Recorded(record=record, label="r")}
    assets = [
        make_asset("bad", resources=["r"], fail=True),
        make_asset("after_bad", upstream=["bad"], resources=["r"]),
        make_asset("good", resources=["r"]),
    ]
    with pytest.raises(RunFailure) as info:
        run_assets(assets, resources, executor=name, executor_config=config)

    result = info.value.result
    assert set(result.failures) == {"bad"}
    assert "asset bad failed on purpose" in result.failures["bad"].message
    assert result.skipped == ("after_bad",)
    assert result.outputs == {"good": ["good"]}
    assert isinstance(info.value.__cause__, ValueError)
    records = read(record)
    check_lifecycle(records)
    assert counts(records, "setup") == counts(records, "teardown")


def test_setup_failure_is_not_torn_down_but_the_others_are(executor: Executor, record: str) -> None:
    name, config = executor
    resources = {
        "ok": Recorded(record=record, label="ok"),
        "broken": Recorded(record=record, label="broken", fail_setup=True),
    }
    assets = [
        make_asset("first", resources=["ok"]),
        make_asset("second", upstream=["first"], resources=["ok", "broken"]),
    ]
    with pytest.raises(RunFailure) as info:
        run_assets(assets, resources, executor=name, executor_config=config)

    failure = info.value.result.failures["second"]
    assert failure.resource_key == "broken"
    assert "'broken'" in failure.message and "tests.recording.Recorded" in failure.message
    cause = info.value.__cause__
    assert isinstance(cause, ResourceSetupError)
    assert (cause.resource_key, cause.phase) == ("broken", "setup")
    assert isinstance(cause.__cause__, RuntimeError)
    records = read(record)
    check_lifecycle(records)
    assert [r["label"] for r in records if r["event"] == "teardown"] == ["ok"]


def test_teardown_failure_is_reported_and_the_rest_torn_down(
    executor: Executor, record: str
) -> None:
    name, config = executor
    resources = {
        "a": Recorded(record=record, label="a"),
        "b": Recorded(record=record, label="b", fail_teardown=True),
        "c": Recorded(record=record, label="c"),
    }
    assets = [make_asset("x", resources=["a", "b", "c"])]
    result = run_assets(
        assets, resources, executor=name, executor_config=config, raise_on_error=False
    )

    assert not result.success
    assert result.outputs == {"x": ["x"]}
    assert [e.resource_key for e in result.resource_errors] == ["b"]
    assert "failed to tear down" in result.resource_errors[0].message
    records = read(record)
    check_lifecycle(records)
    assert [r["label"] for r in records if r["event"] == "teardown"] == ["c", "b", "a"]


def test_selection_brings_up_only_what_selected_assets_need(
    executor: Executor, record: str
) -> None:
    name, config = executor
    resources = {
        "up": Recorded(record=record, label="up"),
        "down": Recorded(record=record, label="down"),
    }
    assets = [
        make_asset("base", resources=["up"]),
        make_asset("top", upstream=["base"]),
        make_asset("elsewhere", resources=["down"]),
    ]
    result = run_assets(assets, resources, executor=name, executor_config=config, selection=["top"])

    assert set(result.outputs) == {"base", "top"}  # upstream of a selected asset runs too
    assert {label for label, _ in counts(read(record), "setup")} == {"up"}


def test_outputs_flow_downstream(executor: Executor, record: str) -> None:
    name, config = executor
    assets = [
        make_asset("a"),
        make_asset("b", upstream=["a"]),
        make_asset("c", upstream=["a"]),
        make_asset("d", upstream=["b", "c"]),
    ]
    result = run_assets(assets, executor=name, executor_config=config)
    assert result.outputs["d"] == ["a", "b", "c", "d"]
    assert result.events[0].pid == os.getpid()  # RunStarted is the parent's


# -- property-based schedules ----------------------------------------------------------------


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    """A random asset graph, random resources with dependencies, random failure points."""
    n_resources = draw(st.integers(0, 4))
    resources = []
    for i in range(n_resources):
        resources.append(
            {
                "label": f"r{i}",
                "kind": draw(st.sampled_from(["plain", "yield", "pair"])),
                "fail_setup": draw(st.booleans()) and draw(st.booleans()),
                "fail_teardown": draw(st.booleans()) and draw(st.booleans()),
            }
        )
    n_assets = draw(st.integers(1, 6))
    assets = []
    for i in range(n_assets):
        assets.append(
            {
                "name": f"s{i}",
                "upstream": sorted(
                    draw(st.sets(st.sampled_from([f"s{j}" for j in range(i)]), max_size=2))
                    if i
                    else set()
                ),
                "resources": sorted(
                    draw(st.sets(st.sampled_from([r["label"] for r in resources]), max_size=3))
                    if resources
                    else set()
                ),
                "fail": draw(st.booleans()) and draw(st.booleans()),
            }
        )
    return {"resources": resources, "assets": assets}


def build(
    schedule: dict[str, Any], record: str, secret: str | None = None
) -> tuple[dict[str, Any], list[Any]]:
    """The resources and assets of ``schedule`` (each resource holding ``secret``, if given)."""
    token = SecretStr(secret) if secret is not None else None
    resources: dict[str, Any] = {}
    for spec in schedule["resources"]:
        label = spec["label"]
        if spec["kind"] == "plain":
            resources[label] = Recorded(
                record=record,
                label=label,
                fail_setup=spec["fail_setup"],
                fail_teardown=spec["fail_teardown"],
                secret=token,
            )
        elif spec["kind"] == "yield":
            resources[label] = RecordedYield(
                record=record, label=label, fail_enter=spec["fail_setup"], secret=token
            )
        else:
            inner = Recorded(
                record=record, label=f"{label}_inner", fail_setup=spec["fail_setup"], secret=token
            )
            resources[label] = RecordedPair(record=record, label=label, inner=inner, secret=token)
    assets = [
        make_asset(a["name"], a["upstream"], a["resources"], fail=a["fail"])
        for a in schedule["assets"]
    ]
    return resources, assets


def check_schedule(schedule: dict[str, Any], executor: Executor, record: str) -> None:
    name, config = executor
    if os.path.exists(record):
        os.unlink(record)
    resources, assets = build(schedule, record)
    result = run_assets(
        assets, resources, executor=name, executor_config=config, raise_on_error=False
    )
    records = read(record)
    check_lifecycle(records)

    # Every asset is accounted for exactly once.
    keys = {a["name"] for a in schedule["assets"]}
    assert set(result.outputs) | set(result.failures) | set(result.skipped) == keys
    assert not (set(result.outputs) & set(result.failures))
    # Only resources some asset needs came up.
    needed = {r for a in schedule["assets"] for r in a["resources"]}
    needed |= {f"{r}_inner" for r in needed}
    assert {r["label"] for r in records if r["event"] == "setup"} <= needed
    # Failures are attributed: an asset failed by its own raise or a resource's setup.
    for key, error in result.failures.items():
        spec = next(a for a in schedule["assets"] if a["name"] == key)
        if error.resource_key is None:
            assert spec["fail"], f"{key} failed without a reason: {error.message}"
        else:
            assert error.resource_key in spec["resources"]
    # Succeeded assets saw their whole upstream.
    for key, output in result.outputs.items():
        spec = next(a for a in schedule["assets"] if a["name"] == key)
        assert set(spec["upstream"]) <= set(output)
    assert result.success == (not result.failures and not result.resource_errors)


#: Schedules per executor in the default run: 40, but a ``multiprocess`` run starts its worker
#: processes afresh, so it draws 10 (``tests/test_fault_schedules.py`` draws schedules there
#: too, with faults); ``-m slow`` draws 1000 on every executor.
SCHEDULES = 40
FEWER_SCHEDULES = {"multiprocess": 10}


def test_random_schedules_keep_the_lifecycle(executor: Executor, record: str) -> None:
    @settings(
        max_examples=FEWER_SCHEDULES.get(str(executor[0]), SCHEDULES),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(schedule=schedules())
    def check(schedule: dict[str, Any]) -> None:
        check_schedule(schedule, executor, record)

    check()


@pytest.mark.slow
@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(schedule=schedules())
def test_random_schedules_keep_the_lifecycle_long(
    schedule: dict[str, Any], executor: Executor, record: str
) -> None:
    check_schedule(schedule, executor, record)
