"""Dagster's lifecycle-method tests (``pythonic_resources/test_lifecycle_methods.py``), run on
host: ops become assets, a chain of ops a chain of assets.

Where host documents a difference (a failing teardown fails the run; a failed run raises
``host.RunFailure`` whose ``__cause__`` is the first error) the test checks host's behaviour.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import PrivateAttr

from host import (
    ConfigurableResource,
    EnvVar,
    InitResourceContext,
    ResourceSetupError,
    ResourceTeardownError,
    RunFailure,
    asset,
    build_init_resource_context,
    run_assets,
)


def _setup_teardown(log: list[str], fail_setup: bool = False, fail_teardown: bool = False) -> Any:
    class Tracked(ConfigurableResource):
        def setup_for_execution(self, context: InitResourceContext) -> None:
            log.append("setup")
            if fail_setup:
                raise RuntimeError("setup broke")

        def teardown_after_execution(self, context: InitResourceContext) -> None:
            log.append("teardown")
            if fail_teardown:
                raise RuntimeError("teardown broke")

    return Tracked


def _yielding(log: list[str], before: bool = False, after: bool = False) -> Any:
    class Yielding(ConfigurableResource):
        @contextlib.contextmanager
        def yield_for_execution(self, context: InitResourceContext) -> Iterator[Yielding]:
            log.append("setup")
            if before:
                raise RuntimeError("yield broke before")
            yield self
            log.append("teardown")
            if after:
                raise RuntimeError("yield broke after")

    return Yielding


def _one_asset(log: list[str]) -> Any:
    @asset
    def hello(res: ConfigurableResource) -> None:
        log.append("hello")

    return hello


def _two_assets(log: list[str]) -> list[Any]:
    @asset
    def first(res: ConfigurableResource) -> int:
        log.append("first")
        return 1

    @asset
    def second(res: ConfigurableResource, first: int) -> None:
        log.append("second")

    return [first, second]


@pytest.mark.parametrize("kind", ["setup_teardown", "yield"])
def test_the_lifecycle_wraps_one_asset(kind: str) -> None:
    log: list[str] = []
    cls = _setup_teardown(log) if kind == "setup_teardown" else _yielding(log)
    assert run_assets([_one_asset(log)], {"res": cls()}).success
    assert log == ["setup", "hello", "teardown"]


@pytest.mark.parametrize("kind", ["setup_teardown", "yield"])
def test_the_lifecycle_wraps_a_chain_of_assets_once(kind: str) -> None:
    log: list[str] = []
    cls = _setup_teardown(log) if kind == "setup_teardown" else _yielding(log)
    assert run_assets(_two_assets(log), {"res": cls()}).success
    assert log == ["setup", "first", "second", "teardown"]


def test_a_failing_asset_still_tears_down_and_stops_its_dependents() -> None:
    log: list[str] = []

    @asset
    def breaks(res: ConfigurableResource) -> int:
        log.append("breaks")
        raise ValueError("foo")

    @asset
    def never(res: ConfigurableResource, breaks: int) -> None:
        log.append("never")

    with pytest.raises(RunFailure) as caught:
        run_assets([breaks, never], {"res": _setup_teardown(log)()})
    assert "foo" in str(caught.value.__cause__)
    assert log == ["setup", "breaks", "teardown"]


@pytest.mark.parametrize("kind", ["setup_teardown", "yield"])
def test_a_failing_setup_fails_the_run_naming_the_key_and_skips_teardown(kind: str) -> None:
    log: list[str] = []
    cls = (_setup_teardown(log, fail_setup=True) if kind == "setup_teardown"
           else _yielding(log, before=True))
    with pytest.raises(RunFailure) as caught:
        run_assets([_one_asset(log)], {"res": cls()})
    assert isinstance(caught.value.__cause__, ResourceSetupError)
    assert "'res'" in str(caught.value.__cause__)
    assert log == ["setup"]


@pytest.mark.parametrize("kind", ["setup_teardown", "yield"])
def test_a_failing_teardown_is_reported_and_fails_the_run(kind: str) -> None:
    """Dagster logs it and succeeds; host fails the run (documented, dagster-io/dagster#10259)."""
    log: list[str] = []
    cls = (_setup_teardown(log, fail_teardown=True) if kind == "setup_teardown"
           else _yielding(log, after=True))
    result = run_assets([_one_asset(log)], {"res": cls()}, raise_on_error=False)
    assert not result.success
    assert [(e.type.rsplit(".", 1)[-1], e.resource_key) for e in result.resource_errors] == [
        (ResourceTeardownError.__name__, "res")
    ]
    assert log == ["setup", "hello", "teardown"]


def test_a_second_resource_failing_setup_tears_down_the_first() -> None:
    log: list[str] = []
    count = [0]

    def step(name: str) -> None:
        log.append(f"setup {name}")
        count[0] += 1
        if count[0] == 2:
            log.append("raising")
            raise RuntimeError("second setup broke")

    class First(ConfigurableResource):
        def setup_for_execution(self, context: InitResourceContext) -> None:
            step("first")

        def teardown_after_execution(self, context: InitResourceContext) -> None:
            log.append("teardown first")

    class Second(ConfigurableResource):
        def setup_for_execution(self, context: InitResourceContext) -> None:
            step("second")

        def teardown_after_execution(self, context: InitResourceContext) -> None:
            log.append("teardown second")

    @asset
    def never(first: First, second: Second) -> None:
        log.append("never")

    with pytest.raises(RunFailure) as caught:
        run_assets([never], {"first": First(), "second": Second()})
    assert isinstance(caught.value.__cause__, ResourceSetupError)
    assert log in (
        ["setup first", "setup second", "raising", "teardown first"],
        ["setup second", "setup first", "raising", "teardown second"],
    )


def test_two_yielding_resources_exit_in_reverse_order() -> None:
    log: list[str] = []

    def yielding(name: str) -> Any:
        class Named(ConfigurableResource):
            @contextlib.contextmanager
            def yield_for_execution(self, context: InitResourceContext) -> Iterator[Named]:
                log.append(f"enter {name}")
                yield self
                log.append(f"exit {name}")

        return Named

    first_cls, second_cls = yielding("first"), yielding("second")

    @asset
    def both(first: first_cls, second: second_cls) -> None:  # type: ignore[valid-type]
        log.append("asset")

    assert run_assets([both], {"first": first_cls(), "second": second_cls()}).success
    assert log in (
        ["enter first", "enter second", "asset", "exit second", "exit first"],
        ["enter second", "enter first", "asset", "exit first", "exit second"],
    )


def test_private_state_set_in_setup_is_seen_by_the_asset() -> None:
    log: list[str] = []

    class Connection:
        def __init__(self, username: str, password: str) -> None:
            self.username, self.password = username, password

    class Db(ConfigurableResource):
        username: str
        password: str
        _conn: Connection = PrivateAttr()

        def setup_for_execution(self, context: InitResourceContext) -> None:
            log.append(f"setup {self.username} {self.password}")
            self._conn = Connection(self.username, self.password)

        def query(self, sql: str) -> dict[str, str]:
            log.append(f"query {sql} {self._conn.username} {self._conn.password}")
            return {"foo": "bar"}

    @asset
    def rows(db: Db) -> dict[str, str]:
        return db.query("select")

    result = run_assets([rows], {"db": Db(username="foo", password="bar")})
    assert result.outputs["rows"] == {"foo": "bar"}
    assert log == ["setup foo bar", "query select foo bar"]


def _credentials_and_s3(log: list[str]) -> tuple[Any, Any]:
    class Credentials(ConfigurableResource):
        access_key: str
        secret_key: str
        _jwt: str = PrivateAttr()

        def setup_for_execution(self, context: InitResourceContext) -> None:
            log.append(f"fetch {self.access_key} {self.secret_key}")
            self._jwt = "my_jwt"

        @property
        def jwt(self) -> str:
            return self._jwt

    class S3(ConfigurableResource):
        credentials: Credentials
        _client: Any = PrivateAttr()

        def setup_for_execution(self, context: InitResourceContext) -> None:
            log.append(f"setup s3 {self.credentials.jwt}")
            self._client = object()

        def get(self, key: str) -> dict[str, str]:
            log.append(f"get {key} {self.credentials.jwt}")
            return {"foo": "bar"}

    return Credentials, S3


def _load(log: list[str], s3_cls: Any) -> Any:
    @asset
    def loaded(s3: s3_cls) -> dict[str, str]:  # type: ignore[valid-type]
        log.append("asset")
        return s3.get("k")  # type: ignore[no-any-return]

    return loaded


def test_a_nested_resource_private_state_is_ready_for_its_parent_setup() -> None:
    log: list[str] = []
    credentials_cls, s3_cls = _credentials_and_s3(log)
    s3 = s3_cls(credentials=credentials_cls(access_key="key", secret_key="secret"))
    assert run_assets([_load(log, s3_cls)], {"s3": s3}).success
    assert log == ["fetch key secret", "setup s3 my_jwt", "asset", "get k my_jwt"]


def test_a_nested_resource_given_at_launch_as_a_resource_object() -> None:
    """Dagster's ``RunConfig(resources={KEY: Resource(...)})``: a resource object at launch."""
    log: list[str] = []
    credentials_cls, s3_cls = _credentials_and_s3(log)
    credentials = credentials_cls.configure_at_launch()
    result = run_assets(
        [_load(log, s3_cls)],
        {"credentials": credentials, "s3": s3_cls(credentials=credentials)},
        run_config={"resources": {
            "credentials": credentials_cls(access_key="key", secret_key="secret")}},
    )
    assert result.success
    assert log == ["fetch key secret", "setup s3 my_jwt", "asset", "get k my_jwt"]


def _jwt_resource(log: list[str], with_teardown: bool) -> Any:
    class Jwt(ConfigurableResource):
        access_key: str
        secret_key: str
        _jwt: str = PrivateAttr()

        def setup_for_execution(self, context: InitResourceContext) -> None:
            self._jwt = "my_jwt"
            log.append("setup")

        @property
        def jwt(self) -> str:
            return self._jwt

    if not with_teardown:
        return Jwt

    class JwtWithTeardown(Jwt):
        def teardown_after_execution(self, context: InitResourceContext) -> None:
            del self._jwt
            log.append("teardown")

    return JwtWithTeardown


CONFIG = {"access_key": "my_key", "secret_key": "my_secret"}


def test_from_resource_context_sets_up_a_resource_without_teardown() -> None:
    log: list[str] = []
    cls = _jwt_resource(log, with_teardown=False)
    assert cls.from_resource_context(build_init_resource_context(config=CONFIG)).jwt == "my_jwt"
    assert log == ["setup"]
    log.clear()
    with cls.from_resource_context_cm(build_init_resource_context(config=CONFIG)) as res:
        assert res.jwt == "my_jwt"
        assert log == ["setup"]


def test_from_resource_context_cm_tears_down_on_exit() -> None:
    log: list[str] = []
    cls = _jwt_resource(log, with_teardown=True)
    with cls.from_resource_context_cm(build_init_resource_context(config=CONFIG)) as res:
        assert res.jwt == "my_jwt"
        assert log == ["setup"]
    assert log == ["setup", "teardown"]


def test_from_resource_context_refuses_a_resource_with_a_teardown() -> None:
    log: list[str] = []
    cls = _jwt_resource(log, with_teardown=True)
    with pytest.raises(Exception):  # noqa: B017 - Dagster raises its CheckError
        cls.from_resource_context(build_init_resource_context(config=CONFIG))


def test_process_config_and_initialize_cm_reads_env_vars_and_tears_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    cls = _jwt_resource(log, with_teardown=True)
    monkeypatch.setenv("HOST_T_ACCESS_KEY", "my_key")
    with cls(access_key=EnvVar("HOST_T_ACCESS_KEY"),
             secret_key="my_secret").process_config_and_initialize_cm() as res:
        assert res.access_key == "my_key"
        assert res.jwt == "my_jwt"
        assert log == ["setup"]
    assert log == ["setup", "teardown"]


def test_process_config_and_initialize_cm_brings_nested_resources_up_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    inner_cls = _jwt_resource(log, with_teardown=True)

    class S3(ConfigurableResource):
        credentials: inner_cls  # type: ignore[valid-type]
        label: str

        def setup_for_execution(self, context: InitResourceContext) -> None:
            log.append(f"outer setup {self.credentials.jwt}")

    monkeypatch.setenv("HOST_T_ACCESS_KEY", "my_key")
    monkeypatch.setenv("HOST_T_LABEL", "foo")
    declared = S3(label=EnvVar("HOST_T_LABEL"),
                  credentials=inner_cls(access_key=EnvVar("HOST_T_ACCESS_KEY"),
                                        secret_key="my_secret"))
    with declared.process_config_and_initialize_cm() as res:
        assert res.label == "foo"
        assert res.credentials.access_key == "my_key"
        assert res.credentials.jwt == "my_jwt"
        assert log == ["setup", "outer setup my_jwt"]
    assert log == ["setup", "outer setup my_jwt", "teardown"]
