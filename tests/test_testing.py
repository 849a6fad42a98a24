"""host.testing: resources come up outside a run exactly as in a run; the conformance check.

Resource classes used by ``check_resource_class`` live at module level: its ``worker`` check
sends them to a spawned process, which imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, PrivateAttr, SecretStr

import host.testing
from host import (
    ConfigError,
    ConfigurableResource,
    EnvVar,
    HostError,
    InitResourceContext,
    ResourceEvent,
    ResourceSetupError,
    ResourceTeardownError,
    hookimpl,
    run_assets,
)
from host._hookspecs import ResourceSpec, RunSpec
from host._values import MASK
from host.testing import (
    ResourceCheckError,
    build_init_resource_context,
    check_resource_class,
    open_resource,
    open_resources,
    register_plugin,
)
from tests.graphs import make_asset
from tests.recording import Recorded, RecordedPair, RecordedYield, read, write

GUIDE = Path(__file__).resolve().parent.parent / "specs" / "authors-guide.md"

PUBLIC = {
    "ResourceCheckError",
    "ResourceScope",
    "build_asset_context",
    "build_init_resource_context",
    "check_resource_class",
    "open_resource",
    "open_resources",
    "register_plugin",
}


def events_of(record: str) -> list[tuple[str, str]]:
    """The records, without the ``up`` marks (written after each successful setup)."""
    return [(r["event"], r["label"]) for r in read(record) if r["event"] != "up"]


class PhaseLog:
    """A hook plugin that records the setup and teardown phases it sees."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def host_resource_setup(self, resource: Any, context: InitResourceContext) -> None:
        self.calls.append(("setup", context.resource_key))

    @hookimpl
    def host_resource_teardown(self, resource: Any, context: InitResourceContext) -> None:
        self.calls.append(("teardown", context.resource_key))


class Contexts:
    """A hook plugin that keeps the init context of every resource brought up."""

    def __init__(self) -> None:
        self.by_key: dict[str, InitResourceContext] = {}

    @hookimpl(wrapper=True)
    def host_resource_yield(self, resource: Any, context: InitResourceContext) -> Any:
        self.by_key[context.resource_key] = context
        return (yield)


# -- the public API and its documentation ---------------------------------------------------


def test_all_is_pinned_and_sorted() -> None:
    assert set(host.testing.__all__) == PUBLIC
    assert list(host.testing.__all__) == sorted(host.testing.__all__)
    for name in host.testing.__all__:
        assert getattr(host.testing, name).__doc__, name


def test_the_authors_guide_documents_every_public_name_fixture_and_hook() -> None:
    text = GUIDE.read_text()
    fixtures = ["host_resource", "host_resources", "host_plugin", "host_executor", "host_run"]
    others = ["@pytest.mark.host_executors", "pytest11", "host new plugin"]
    hooks = [name for spec in (ResourceSpec, RunSpec) for name in vars(spec) if name[:5] == "host_"]
    for name in [*host.testing.__all__, *fixtures, *others, *hooks]:
        assert f"`{name}" in text, f"specs/authors-guide.md does not document {name}"
    for link in re.findall(r"\]\(([^)#]+\.md)", text):
        assert (GUIDE.parent / link).exists(), f"specs/authors-guide.md links to missing {link}"
    assert "hooks.md" in text and "lifecycle.md" in text


# -- open_resource(s): the run's machinery ---------------------------------------------------


def test_open_resource_gives_a_fresh_copy_that_is_up_and_tears_it_down(record: str) -> None:
    configured = Recorded(record=record, label="r")
    with open_resource(configured, key="r") as up:
        assert up is not configured and isinstance(up, Recorded)
        assert up.use() == "r"  # use() fails unless the resource is up
        assert events_of(record) == [("setup", "r"), ("use", "r")]
    assert events_of(record) == [("setup", "r"), ("use", "r"), ("teardown", "r")]
    assert not configured._up  # the object passed in was never brought up itself
    with open_resource(configured, key="r") as again:
        assert again is not up
    assert [r["key"] for r in read(record) if r["event"] == "setup"] == ["r", "r"]


def test_the_phases_are_those_of_a_run(record: str) -> None:
    resources = {
        "r": Recorded(record=record, label="r"),
        "y": RecordedYield(record=record, label="y"),
    }
    result = run_assets([make_asset("a", resources=["r", "y"])], resources)
    scope = open_resources(resources)
    with scope:
        pass

    def phases(events: Any) -> list[tuple[str, str]]:
        return [(e.resource_key, e.phase) for e in events if isinstance(e, ResourceEvent)]

    assert phases(scope.events) == phases(result.events)
    assert phases(scope.events)[0] == ("r", "setup")


def test_dependencies_come_up_first_once_and_go_down_in_reverse(record: str) -> None:
    inner = Recorded(record=record, label="inner")
    pair = RecordedPair(record=record, label="pair", inner=inner)
    with open_resources({"pair": pair, "alias": inner}) as up:
        assert up["pair"].inner is up["alias"]  # one object shared by two places: up once
        assert up["pair"].use() == "pair"
    assert [e for e in events_of(record) if e[0] != "use"] == [
        ("setup", "inner"),
        ("setup", "pair"),
        ("teardown", "pair"),
        ("teardown", "inner"),
    ]


def test_a_nested_dependency_without_a_key_comes_up_under_parent_dot_field(record: str) -> None:
    contexts = Contexts()
    pair = RecordedPair(record=record, label="pair", inner=Recorded(record=record, label="in"))
    with open_resource(pair, key="pair", plugins=[contexts]) as up:
        assert up.inner._up
    assert list(contexts.by_key) == ["pair.inner", "pair"]
    assert contexts.by_key["pair"].resources["inner"] is up.inner


def test_a_setup_error_is_a_resource_setup_error_and_what_came_up_goes_down(record: str) -> None:
    resources = {
        "good": Recorded(record=record, label="good"),
        "bad": Recorded(record=record, label="bad", fail_setup=True),
    }
    with pytest.raises(ResourceSetupError) as info, open_resources(resources):
        pytest.fail("the block must not run when a resource failed to come up")
    error = info.value
    assert (error.resource_key, error.phase) == ("bad", "setup")
    assert error.resource_class == "tests.recording.Recorded"
    assert isinstance(error.__cause__, RuntimeError)
    assert "failed on purpose" in str(error)
    assert events_of(record) == [("setup", "good"), ("setup", "bad"), ("teardown", "good")]


def test_teardown_errors_are_raised_after_every_teardown(record: str) -> None:
    scope = open_resources(
        {
            "a": Recorded(record=record, label="a", fail_teardown=True),
            "b": Recorded(record=record, label="b", fail_teardown=True),
        }
    )
    with pytest.raises(ResourceTeardownError) as info, scope:
        pass
    assert events_of(record)[-2:] == [("teardown", "b"), ("teardown", "a")]
    assert info.value.resource_key == "b"
    assert [e.resource_key for e in scope.teardown_errors] == ["b", "a"]


def test_an_error_in_the_block_is_not_replaced_by_a_teardown_error(record: str) -> None:
    scope = open_resource(Recorded(record=record, label="r", fail_teardown=True))
    with pytest.raises(KeyError), scope:
        raise KeyError("the test's own failure")
    assert events_of(record) == [("setup", "r"), ("teardown", "r")]
    assert len(scope.teardown_errors) == 1


def test_the_block_receives_what_yield_for_execution_yields(record: str) -> None:
    class Custom(ConfigurableResource):
        @contextlib.contextmanager
        def yield_for_execution(self, context: InitResourceContext) -> Iterator[str]:
            yield f"value of {context.resource_key}"

    with open_resource(Custom(), key="custom") as value:
        assert value == "value of custom"
    with open_resource(RecordedYield(record=record, label="y")) as y:
        assert y.use() == "y"
    assert events_of(record) == [("setup", "y"), ("use", "y"), ("teardown", "y")]


class Credentials(ConfigurableResource):
    """A resource with a secret field and a field usually read from the environment."""

    username: str
    password: str
    token: SecretStr = SecretStr("default-token-value")
    _seen_password: str = PrivateAttr(default="")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._seen_password = self.password
        context.log.info("logged in as %s", self.username)


def test_env_vars_are_read_when_the_resource_comes_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_TESTING_PASSWORD", "hunter2-from-env")
    contexts = Contexts()
    configured = Credentials(username="ann", password=EnvVar("HOST_TESTING_PASSWORD"))
    with open_resource(configured, key="creds", plugins=[contexts]) as creds:
        assert creds._seen_password == "hunter2-from-env"
        assert "hunter2" not in repr(creds)
    assert contexts.by_key["creds"].resource_config == {
        "username": "ann",
        "password": MASK,
        "token": MASK,
    }


def test_a_missing_env_var_stops_before_anything_comes_up(
    record: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOST_TESTING_PASSWORD", raising=False)
    resources = {
        "first": Recorded(record=record, label="first"),
        "creds": Credentials(username="ann", password=EnvVar("HOST_TESTING_PASSWORD")),
    }
    with (
        pytest.raises(ConfigError, match="HOST_TESTING_PASSWORD") as info,
        open_resources(resources),
    ):
        pass
    assert (info.value.resource_key, info.value.field) == ("creds", "password")
    assert read(record) == []


def test_a_scope_is_used_once(record: str) -> None:
    scope = open_resource(Recorded(record=record, label="r"))
    with scope:
        pass
    with pytest.raises(RuntimeError, match="already used"), scope:
        pass


# -- async ---------------------------------------------------------------------------------


class AsyncClient(ConfigurableResource):
    """Async setup and teardown; its methods check they run on the loop that set it up."""

    record: str
    _loop: Any = PrivateAttr(default=None)

    async def setup_for_execution(self, context: InitResourceContext) -> None:
        await asyncio.sleep(0)
        self._loop = asyncio.get_running_loop()
        write(self.record, event="setup", key=context.resource_key, label="async")

    async def teardown_after_execution(self, context: InitResourceContext) -> None:
        assert asyncio.get_running_loop() is self._loop
        write(self.record, event="teardown", key=context.resource_key, label="async")

    async def fetch(self) -> str:
        assert asyncio.get_running_loop() is self._loop, "used on another event loop"
        return "data"


class AsyncSession(ConfigurableResource):
    """An async ``yield_for_execution``: holds a session open on the caller's loop."""

    record: str

    @contextlib.asynccontextmanager
    async def yield_for_execution(self, context: InitResourceContext) -> AsyncIterator[Any]:
        write(self.record, event="setup", key=context.resource_key, label="session")
        try:
            yield asyncio.get_running_loop()
        finally:
            write(self.record, event="teardown", key=context.resource_key, label="session")


def test_async_with_runs_async_lifecycle_methods_on_the_callers_loop(record: str) -> None:
    async def main() -> list[str]:
        async with open_resources(
            {"client": AsyncClient(record=record), "session": AsyncSession(record=record)}
        ) as up:
            assert up["client"]._loop is asyncio.get_running_loop()
            assert up["session"] is asyncio.get_running_loop()
            return [await up["client"].fetch()]

    assert asyncio.run(main()) == ["data"]
    assert events_of(record) == [
        ("setup", "async"),
        ("setup", "session"),
        ("teardown", "session"),
        ("teardown", "async"),
    ]


def test_async_with_tears_down_when_the_block_raises(record: str) -> None:
    async def main() -> None:
        async with open_resources(
            {"client": AsyncClient(record=record), "sync": Recorded(record=record, label="sync")}
        ) as up:
            assert up["sync"].use() == "sync"
            raise LookupError("the test failed")

    with pytest.raises(LookupError):
        asyncio.run(main())
    assert [e for e in events_of(record) if e[0] != "use"] == [
        ("setup", "async"),
        ("setup", "sync"),
        ("teardown", "sync"),
        ("teardown", "async"),
    ]


def test_with_under_a_running_loop_says_to_use_async_with(record: str) -> None:
    async def main() -> None:
        with pytest.raises(ResourceSetupError) as info, open_resource(AsyncClient(record=record)):
            pass
        assert "async with open_resource" in str(info.value)

    asyncio.run(main())
    assert read(record) == []


# -- register_plugin ------------------------------------------------------------------------


def test_register_plugin_applies_inside_its_block_only(record: str) -> None:
    log = PhaseLog()
    with register_plugin(log) as registered:
        assert registered is log
        with open_resource(Recorded(record=record, label="r"), key="inside"):
            pass
    with open_resource(Recorded(record=record, label="r"), key="after"):
        pass
    assert log.calls == [("setup", "inside"), ("teardown", "inside")]


def test_register_plugin_nests_and_stays_in_its_thread(record: str) -> None:
    outer, inner = PhaseLog(), PhaseLog()

    def in_another_thread() -> None:
        with open_resource(Recorded(record=record, label="t"), key="thread"):
            pass

    with register_plugin(outer):
        with register_plugin(inner):
            thread = threading.Thread(target=in_another_thread)
            thread.start()
            thread.join()
            with open_resource(Recorded(record=record, label="r"), key="both"):
                pass
        with open_resource(Recorded(record=record, label="r"), key="outer"):
            pass
    assert inner.calls == [("setup", "both"), ("teardown", "both")]
    assert outer.calls == [
        ("setup", "both"),
        ("teardown", "both"),
        ("setup", "outer"),
        ("teardown", "outer"),
    ]


def test_register_plugin_applies_under_async_with(record: str) -> None:
    log = PhaseLog()

    async def main() -> None:
        async with open_resource(AsyncClient(record=record), key="client"):
            pass

    with register_plugin(log):
        asyncio.run(main())
    assert log.calls == [("setup", "client"), ("teardown", "client")]


def test_a_plugin_registered_and_passed_is_registered_once(record: str) -> None:
    log = PhaseLog()
    with (
        register_plugin(log),
        open_resource(Recorded(record=record, label="r"), key="r", plugins=[log]),
    ):
        pass
    assert log.calls == [("setup", "r"), ("teardown", "r")]


def test_register_plugin_applies_to_run_assets(record: str) -> None:
    log = PhaseLog()
    with register_plugin(log):
        run_assets([make_asset("a", resources=["r"])], {"r": Recorded(record=record, label="r")})
    assert log.calls == [("setup", "r"), ("teardown", "r")]


# -- build_init_resource_context --------------------------------------------------------------


def test_build_init_resource_context_for_calling_methods_directly(
    record: str, caplog: pytest.LogCaptureFixture
) -> None:
    context = build_init_resource_context(
        {"url": "http://x", "token": SecretStr("s3cret-token"), "password": EnvVar("PW")},
        resources={"db": "a connection"},
        resource_key="api",
        run_id="run-1",
    )
    assert context.resource_config == {"url": "http://x", "token": MASK, "password": "<env PW>"}
    assert (context.resource_key, context.run_id, context.executor) == (
        "api",
        "run-1",
        "in_process",
    )
    assert context.resources == {"db": "a connection"}
    resource = Recorded(record=record, label="direct")
    resource.setup_for_execution(context)
    assert read(record)[0]["key"] == "api"
    with caplog.at_level(logging.INFO, logger="host"):
        context.log.info("hello")
    assert caplog.records[-1].run_id == "run-1"  # type: ignore[attr-defined]


def test_build_init_resource_context_defaults() -> None:
    first, second = build_init_resource_context(), build_init_resource_context()
    assert first.resource_config == {} and first.resources == {}
    assert first.run_id and first.run_id != second.run_id


# -- check_resource_class: well-formed resources pass -------------------------------------------


class Thorough(ConfigurableResource):
    """Secrets, an env var, a nested dependency and async lifecycle methods, all well formed."""

    record: str
    api_key: SecretStr
    password: str
    inner: Recorded
    _session: Any = PrivateAttr(default=None)

    async def setup_for_execution(self, context: InitResourceContext) -> None:
        assert self.inner._up, "dependency not up"
        self._session = threading.Lock()  # a live handle that cannot be pickled
        context.log.info("connected as %s", context.resource_config)

    async def teardown_after_execution(self, context: InitResourceContext) -> None:
        self._session = None


def test_check_resource_class_accepts_a_well_formed_resource(
    record: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_TESTING_PASSWORD", "password-from-env")
    check_resource_class(
        Thorough,
        config={
            "record": record,
            "api_key": "the-api-key",
            "password": EnvVar("HOST_TESTING_PASSWORD"),
            "inner": Recorded(record=record, label="inner"),
        },
    )
    setups = [r for r in read(record) if r["event"] == "setup"]
    assert len({r["pid"] for r in setups}) == 2  # brought up here and in a worker process


def test_check_resource_class_accepts_a_yield_for_execution_resource(record: str) -> None:
    check_resource_class(RecordedYield, config={"record": record, "label": "y"})


# -- check_resource_class: each defect is reported by its check ---------------------------------


def failed_checks(cls: Any, **config: Any) -> dict[str, str]:
    with pytest.raises(ResourceCheckError) as info:
        check_resource_class(cls, config=config)
    error = info.value
    assert isinstance(error, AssertionError) and isinstance(error, HostError)
    for check, message in error.failures.items():
        assert f"{check}: {message}" in str(error)
    return error.failures


class NotAResource(BaseModel):
    name: str = "x"


class AcceptsTypos(ConfigurableResource):
    model_config = {"extra": "allow"}  # noqa: RUF012 (pydantic merges it with the base's)
    url: str


class KeepsStateWhenPickled(ConfigurableResource):
    url: str
    _lock: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[Any, Any]:
        return BaseModel.__getstate__(self)  # private state included: a live handle


class Point:
    """An arbitrary type: picklable, comparable, but with no JSON schema."""

    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other.x == self.x

    __hash__ = None  # type: ignore[assignment]


class NoSchema(ConfigurableResource):
    origin: Point


class LogsItsSecret(ConfigurableResource):
    token: SecretStr

    def setup_for_execution(self, context: InitResourceContext) -> None:
        context.log.debug("using token %s", self.token.get_secret_value())


class ShowsItsSecret(ConfigurableResource):
    token: SecretStr

    def __repr__(self) -> str:
        return f"ShowsItsSecret(token={self.token.get_secret_value()!r})"


class ClassLevelState(ConfigurableResource):
    """Keeps its state on the class: the second run finds the first one's leftovers."""

    closed: ClassVar[set[str]] = set()
    name: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.name in ClassLevelState.closed:
            raise RuntimeError(f"pool {self.name} was closed by an earlier run")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        ClassLevelState.closed.add(self.name)


class BrokenRollback(ConfigurableResource):
    """Its error path (taken only when the run fails) is broken."""

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[BrokenRollback]:
        try:
            yield self
        except BaseException as exc:
            raise RuntimeError("rollback failed") from exc


def test_check_reports_a_class_that_is_not_a_resource() -> None:
    assert set(failed_checks(NotAResource)) == {"subclass"}


def test_check_reports_a_configuration_that_does_not_construct() -> None:
    failures = failed_checks(Recorded, label="missing record")
    assert set(failures) == {"construct"} and "ValidationError" in failures["construct"]


def test_check_reports_unknown_fields_accepted() -> None:
    failures = failed_checks(AcceptsTypos, url="http://x")
    assert set(failures) == {"frozen"} and "unknown field" in failures["frozen"]


def test_check_reports_private_state_that_is_pickled() -> None:
    failures = failed_checks(KeepsStateWhenPickled, url="http://x")
    assert set(failures) == {"pickle"} and "while it is up" in failures["pickle"]


def test_check_reports_a_schema_that_cannot_be_exported() -> None:
    failures = failed_checks(NoSchema, origin=Point(1))
    assert set(failures) == {"schema"} and "fields ['origin']" in failures["schema"]


def test_check_reports_a_secret_in_the_logs() -> None:
    failures = failed_checks(LogsItsSecret, token="do-not-log-me")
    assert set(failures) == {"secrets"} and "log record" in failures["secrets"]


def test_check_reports_a_secret_in_repr() -> None:
    failures = failed_checks(ShowsItsSecret, token="do-not-show-me")
    assert set(failures) == {"secrets"} and "repr()" in failures["secrets"]


def test_check_reports_state_that_leaks_from_one_run_to_the_next() -> None:
    failures = failed_checks(ClassLevelState, name="leaky")
    assert set(failures) == {"lifecycle"} and "second time" in failures["lifecycle"]


def test_check_reports_a_resource_that_fails_to_go_down_after_a_failure() -> None:
    failures = failed_checks(BrokenRollback)
    assert set(failures) == {"setup_failure"} and "rollback failed" in failures["setup_failure"]


def test_check_reports_a_class_a_worker_process_cannot_load() -> None:
    class DefinedInAFunction(ConfigurableResource):
        url: str

    failures = failed_checks(DefinedInAFunction, url="http://x")
    assert set(failures) == {"pickle", "worker"}
    assert "importable as tests.test_testing." in failures["worker"]


def test_check_reports_a_resource_that_does_not_come_up_and_skips_what_needs_it(
    record: str,
) -> None:
    with pytest.raises(ResourceCheckError) as info:
        check_resource_class(Recorded, config={"record": record, "label": "x", "fail_setup": True})
    assert set(info.value.failures) == {"lifecycle"}
    assert "not run, as it did not come up and go down cleanly: setup_failure, worker" in str(
        info.value
    )
