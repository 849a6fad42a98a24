"""Function resources as Dagster's docs write them: ``@resource`` with ``config_schema``, a
generator for setup and teardown, ``required_resource_keys``; ``ResourceDefinition.
hardcoded_resource``; plain objects as resources. They go through the host's lifecycle (hooks,
events, once per run per process, reverse teardown, failures reported) on every executor, proven
by the records they write themselves."""

from __future__ import annotations

import enum
import pickle
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host import (
    ConfigError,
    DefinitionError,
    EnvVar,
    InitResourceContext,
    ResourceDefinition,
    ResourceSetupError,
    ResourceTeardownError,
    RunFailure,
    asset,
    hookimpl,
    resource,
    run_assets,
)
from host.testing import open_resource
from tests.recording import Recorded, read, write


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@resource(config_schema={"record": str, "label": str, "fail": (str, "")})
def recorded_conn(context: InitResourceContext) -> Any:
    """A connection that records its own setup and teardown."""
    config = context.resource_config
    write(config["record"], event="setup", key=context.resource_key, label=config["label"])
    if config["fail"] == "setup":
        raise RuntimeError("connecting failed on purpose")
    yield {"label": config["label"], "run": context.run_id}
    write(config["record"], event="teardown", key=context.resource_key, label=config["label"])
    if config["fail"] == "teardown":
        raise RuntimeError("closing failed on purpose")


@resource(config_schema={"record": str}, required_resource_keys={"conn"})
def repository(context: InitResourceContext) -> Any:
    """A plain function resource (no teardown) that uses another one by key."""
    write(context.resource_config["record"], event="setup", key="repository", label="repository")
    return ("repository", context.resources.conn["label"], context.resources["conn"]["label"])


@resource
async def async_client(context: InitResourceContext) -> Any:
    """An async generator resource."""
    yield "async-client"


@resource(config_schema={"color": Color, "size": int})
def colored(context: InitResourceContext) -> Any:
    return dict(context.resource_config)


@resource(config_schema={"skip": bool})
def sometimes_yields(context: InitResourceContext) -> Any:
    if context.resource_config["skip"]:
        return
    yield "value"


@resource(config_schema={"record": str, "hang_in": str})
def hanging_conn(context: InitResourceContext) -> Any:
    """Hangs in its setup or its teardown (until a timeout stops it)."""
    config = context.resource_config
    write(config["record"], event="setup", key=context.resource_key, label="hanging")
    while config["hang_in"] == "setup":
        time.sleep(0.01)
    yield "hanging-conn"
    write(config["record"], event="teardown", key=context.resource_key, label="hanging")
    while config["hang_in"] == "teardown":
        time.sleep(0.01)


class OwnError(Exception):
    """An exception type of the resource's own."""


#: Exception types a function resource's setup or teardown may raise.
RAISED: dict[str, type[Exception]] = {
    "ValueError": ValueError,
    "KeyError": KeyError,
    "OSError": OSError,
    "RuntimeError": RuntimeError,
    "OwnError": OwnError,
    "StopIteration": StopIteration,
}


@resource(config_schema={"raise_in": str, "kind": str, "secret": str})
def raising(context: InitResourceContext) -> Any:
    config = context.resource_config
    error = RAISED[config["kind"]](f"failed on purpose with {config['secret']}")
    if config["raise_in"] == "setup":
        raise error
    yield "raising"
    if config["raise_in"] == "teardown":
        raise error


@asset
def uses_raising(raising: Any) -> Any:
    return raising


@asset
def uses_hanging(tracker: Recorded, hanging: Any) -> Any:
    return hanging


@asset
def uses_conn(conn: Any) -> str:
    return str(conn["label"])


@asset
def uses_repository(repository: Any, conn: Any) -> Any:
    return repository


@asset
def uses_client(client: Any) -> Any:
    return client


@asset
def uses_colored(colored: Any) -> Any:
    return colored


@asset
def uses_sometimes(sometimes: Any) -> Any:
    return sometimes


@asset
def uses_plain(plain: Any, hardcoded: Any) -> Any:
    return plain, hardcoded


@asset
def uses_recorded(tracker: Recorded) -> str:
    return tracker.label


def _conn(record: str, label: str = "conn", fail: str = "") -> ResourceDefinition:
    return recorded_conn.configured({"record": record, "label": label, "fail": fail})


def test_a_generator_resource_comes_up_once_per_process_and_goes_down_in_reverse(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    name, config = executor
    result = run_assets(
        [uses_conn, uses_repository],
        resources={"conn": _conn(record), "repository": repository.configured({"record": record})},
        executor=name,
        executor_config=config,
    )
    assert result.outputs["uses_repository"] == ("repository", "conn", "conn")
    records = read(record)
    ups = Counter((r["label"], r["pid"]) for r in records if r["event"] == "setup")
    downs = Counter((r["label"], r["pid"]) for r in records if r["event"] == "teardown")
    assert ups and all(count == 1 for count in ups.values())
    # every process that brought conn up tore it down once; repository has no teardown
    assert downs == Counter({key: 1 for key in ups if key[0] == "conn"})
    for pid in {pid for _, pid in ups}:
        order = [r["label"] for r in records if r["pid"] == pid and r["event"] == "setup"]
        assert order.index("conn") < order.index("repository") if "repository" in order else True
    phases = [(e.phase, e.resource_key) for e in result.events if hasattr(e, "phase")]
    assert ("setup", "conn") in phases and ("teardown", "conn") in phases


def test_function_resources_go_through_the_setup_and_teardown_hooks(record: str) -> None:
    seen: list[tuple[str, str]] = []

    class Tracing:
        @hookimpl(wrapper=True)
        def host_resource_setup(self, resource: Any, context: InitResourceContext) -> Any:
            seen.append(("setup", context.resource_key))
            return (yield)

        @hookimpl(wrapper=True)
        def host_resource_teardown(self, resource: Any, context: InitResourceContext) -> Any:
            seen.append(("teardown", context.resource_key))
            return (yield)

    run_assets([uses_conn], resources={"conn": _conn(record)}, plugins=[Tracing()])
    assert seen == [("setup", "conn"), ("teardown", "conn")]


@pytest.mark.parametrize("executor_name", ["in_process", "multiprocess"])
def test_a_failing_setup_is_reported_and_those_up_go_down(
    executor_name: str, record: str
) -> None:
    resources = {
        "tracker": Recorded(record=record, label="tracker"),
        "conn": _conn(record, fail="setup"),
    }
    with pytest.raises(RunFailure) as caught:
        run_assets(
            [uses_recorded, uses_conn],
            resources=resources,
            executor=executor_name,
            executor_config={"max_workers": 1} if executor_name == "multiprocess" else None,
        )
    failure = caught.value.result.failures["uses_conn"]
    assert "'conn'" in failure.message and "recorded_conn" in failure.message
    events = Counter(r["event"] for r in read(record) if r["label"] == "tracker")
    assert events["setup"] == events["teardown"] >= 1


def test_a_failing_teardown_fails_the_run_and_names_the_resource(record: str) -> None:
    with pytest.raises(RunFailure) as caught:
        run_assets([uses_conn], resources={"conn": _conn(record, fail="teardown")})
    assert isinstance(caught.value.__cause__, ResourceTeardownError)
    assert caught.value.__cause__.resource_key == "conn"
    assert "recorded_conn" in str(caught.value.__cause__)


@pytest.mark.parametrize("executor_name", ["in_process", "multiprocess"])
@pytest.mark.parametrize("phase", ["setup", "teardown"])
def test_a_function_resource_hanging_is_stopped_by_its_timeout(
    executor_name: str, phase: str, record: str
) -> None:
    result = run_assets(
        [uses_hanging],
        resources={
            "tracker": Recorded(record=record, label="tracker"),
            "hanging": hanging_conn.configured({"record": record, "hang_in": phase}),
        },
        executor=executor_name,
        resource_timeouts={"hanging": {phase: 0.3}},
        raise_on_error=False,
    )
    assert not result.success
    if phase == "setup":
        error = result.failures["uses_hanging"]
        assert "did not come up within its setup_timeout of 0.3 s" in error.message
    else:
        assert result.outputs == {"uses_hanging": "hanging-conn"}
        (error,) = result.resource_errors
        assert "did not go down within its teardown_timeout of 0.3 s" in error.message
    assert error.resource_key == "hanging" and "hanging_conn" in error.message
    tracker = Counter(r["event"] for r in read(record) if r["label"] == "tracker")
    assert tracker["setup"] == tracker["teardown"] == 1


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(phase=st.sampled_from(["setup", "teardown"]), kind=st.sampled_from(sorted(RAISED)))
def test_any_exception_of_a_function_resource_is_reported_and_chained(
    phase: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_FR_SECRET", "secret-from-env-Vb5")
    config = {"raise_in": phase, "kind": kind, "secret": EnvVar("HOST_FR_SECRET")}
    with pytest.raises(RunFailure) as caught:
        run_assets([uses_raising], resources={"raising": raising.configured(config)})
    error = caught.value.__cause__
    expected = ResourceSetupError if phase == "setup" else ResourceTeardownError
    assert isinstance(error, expected) and error.resource_key == "raising"
    assert error.phase == phase and "raising" in str(error)
    original = error.__cause__
    if kind == "StopIteration":
        # raised inside a generator, Python makes it a RuntimeError (PEP 479)
        assert isinstance(original, RuntimeError)
    else:
        assert type(original) is RAISED[kind]
    assert "secret-from-env-Vb5" not in str(error)
    assert "secret-from-env-Vb5" not in repr(caught.value.result.events)


def test_async_generator_resources_and_hardcoded_and_plain_objects() -> None:
    plain = object()
    result = run_assets(
        [uses_client, uses_plain],
        resources={
            "client": async_client,
            "plain": plain,
            "hardcoded": ResourceDefinition.hardcoded_resource({"a": 1}),
        },
    )
    assert result.outputs["uses_client"] == "async-client"
    assert result.outputs["uses_plain"] == (plain, {"a": 1})
    assert ResourceDefinition.none_resource()(None) is None


def test_a_generator_that_never_yields_is_a_definition_error_when_defined() -> None:
    def no_yield(context: Any) -> Any:
        return
        yield  # unreachable: the function never yields

    with pytest.raises(DefinitionError, match=r"no_yield.*never yields"):
        resource(no_yield)


def test_a_generator_that_returns_before_yielding_fails_its_setup_naming_it(record: str) -> None:
    with pytest.raises(RunFailure) as caught:
        run_assets(
            [uses_recorded, uses_sometimes],
            resources={
                "tracker": Recorded(record=record, label="tracker"),
                "sometimes": sometimes_yields.configured({"skip": True}),
            },
        )
    error = caught.value.__cause__
    assert isinstance(error, ResourceSetupError) and error.resource_key == "sometimes"
    assert isinstance(error.__cause__, DefinitionError)
    assert "finished without yielding" in str(error)
    records = Counter(r["event"] for r in read(record))
    assert records["setup"] == records["teardown"]


def test_a_required_key_no_resource_has_stops_the_run_before_anything_comes_up(
    record: str,
) -> None:
    with pytest.raises(DefinitionError) as caught:
        run_assets(
            [uses_recorded, uses_repository],
            resources={
                "tracker": Recorded(record=record, label="tracker"),
                "repository": repository.configured({"record": record}),
            },
        )
    message = str(caught.value)
    assert "'repository'" in message and "'conn'" in message and "required_resource_keys" in message
    assert read(record) == []


def test_missing_or_invalid_config_stops_the_run_before_anything_comes_up(record: str) -> None:
    tracker = Recorded(record=record, label="tracker")
    with pytest.raises(ConfigError) as missing:
        run_assets(
            [uses_recorded, uses_conn], resources={"tracker": tracker, "conn": recorded_conn}
        )
    assert missing.value.resource_key == "conn" and missing.value.field in {"record", "label"}
    with pytest.raises(ConfigError) as extra:
        recorded_conn.configured({"record": record, "label": "x", "colour": "red"})
    assert extra.value.field == "colour"
    assert read(record) == []


@settings(max_examples=25, deadline=None)
@given(
    color=st.sampled_from(Color),
    by_value=st.booleans(),
    size=st.one_of(st.integers(), st.text(max_size=5)),
)
def test_config_is_validated_and_enums_show_by_value(
    color: Color, by_value: bool, size: Any
) -> None:
    config = {"color": color.value if by_value else color, "size": size}
    valid = isinstance(size, int) or (size.strip().lstrip("-+").isdigit() and size.isascii())
    if not valid:
        with pytest.raises(ConfigError) as caught:
            colored.configured(config)
        assert caught.value.field == "size"
        return
    result = run_assets([uses_colored], resources={"colored": colored.configured(config)})
    assert result.outputs["uses_colored"] == {"color": color.value, "size": int(size)}


def test_env_vars_in_config_are_read_where_the_resource_comes_up(
    record: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_FR_LABEL", "label-from-env-Zq81")
    conn = recorded_conn.configured({"record": record, "label": EnvVar("HOST_FR_LABEL")})
    result = run_assets([uses_conn], resources={"conn": conn}, executor="multiprocess",
                        executor_config={"max_workers": 1})
    assert result.outputs["uses_conn"] == "label-from-env-Zq81"
    assert [r["event"] for r in read(record)] == ["setup", "teardown"]
    monkeypatch.delenv("HOST_FR_LABEL")
    with pytest.raises(ConfigError, match="HOST_FR_LABEL") as caught:
        run_assets([uses_conn], resources={"conn": conn})
    assert caught.value.resource_key == "conn"
    assert len(read(record)) == 2  # nothing came up


def test_host_with_launch_config_validates_against_the_schema(record: str) -> None:
    launched = recorded_conn.host_with_launch_config({"record": record, "label": "late"})
    assert isinstance(launched, ResourceDefinition) and launched.config["label"] == "late"
    assert recorded_conn.config is None  # definitions are immutable
    with pytest.raises(ConfigError) as caught:
        recorded_conn.host_with_launch_config({"record": record, "label": 3})
    assert caught.value.field == "label"
    assert run_assets([uses_conn], resources={"conn": launched}).outputs["uses_conn"] == "late"


def test_definitions_pickle_by_name_with_their_config(tmp_path: Path) -> None:
    configured = _conn(str(tmp_path / "r.jsonl"), label="pickled")
    copy = pickle.loads(pickle.dumps(configured))
    assert copy.resource_fn is recorded_conn.resource_fn
    assert copy.config == configured.config
    assert pickle.loads(pickle.dumps(recorded_conn)).config is None


def test_open_resource_brings_a_function_resource_up_and_down(record: str) -> None:
    with open_resource(_conn(record, label="opened"), key="conn") as conn:
        assert conn["label"] == "opened"
        assert [r["event"] for r in read(record)] == ["setup"]
    assert [r["event"] for r in read(record)] == ["setup", "teardown"]
    with pytest.raises(ConfigError) as caught, open_resource(recorded_conn, key="conn"):
        pass
    assert caught.value.resource_key == "conn"
    assert len(read(record)) == 2


@pytest.mark.parametrize("executor_name", ["in_process", "multiprocess"])
def test_a_function_resource_takes_its_config_at_launch(executor_name: str, record: str) -> None:
    result = run_assets(
        [uses_conn],
        resources={"conn": recorded_conn},
        run_config={"resources": {"conn": {"config": {"record": record, "label": "at-launch"}}}},
        executor=executor_name,
    )
    assert result.outputs["uses_conn"] == "at-launch"
    assert [r["event"] for r in read(record)] == ["setup", "teardown"]
    with pytest.raises(ConfigError) as caught:
        run_assets(
            [uses_recorded, uses_conn],
            resources={"tracker": Recorded(record=record, label="t"), "conn": recorded_conn},
            run_config={"resources": {"conn": {"config": {"record": record, "label": 5}}}},
        )
    assert (caught.value.resource_key, caught.value.field) == ("conn", "label")
    assert len(read(record)) == 2  # nothing came up
