"""ConfigurableResource: configuration, private state, EnvVar, secrets, dependencies, async."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import PrivateAttr, SecretStr, ValidationError

from host import (
    ConfigError,
    ConfigurableResource,
    EnvVar,
    FrozenResourceError,
    HostError,
    InitResourceContext,
    ResourceEvent,
    asset,
    run_assets,
)

SECRET = "s3cr3t-value-do-not-show"


class Client(ConfigurableResource):
    username: str
    password: SecretStr
    port: int = 80
    _token: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._token = f"{self.username}:{self.password.get_secret_value()}:{self.port}"


def test_configuration_is_validated_frozen_and_closed() -> None:
    client = Client(username="ann", password="pw", port="8080")  # type: ignore[arg-type]
    assert client.port == 8080
    with pytest.raises(ValidationError, match="port"):
        Client(username="ann", password="pw", port="not a port")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Client(username="ann", password="pw", colour="red")  # type: ignore[call-arg]
    with pytest.raises(FrozenResourceError, match=r"PrivateAttr\(\)") as info:
        client.username = "bob"  # type: ignore[misc]
    assert isinstance(info.value, AttributeError) and isinstance(info.value, HostError)
    client._token = "private state may change"  # private attributes are assignable


def test_private_state_is_outside_config_schema_repr_and_pickle() -> None:
    client = Client(username="ann", password=SECRET)
    client._token = "live-token"
    assert "_token" not in Client.model_json_schema()["properties"]
    assert "_token" not in client.model_dump()
    assert "live-token" not in repr(client)
    assert SECRET not in repr(client) and SECRET not in str(client)
    copy = pickle.loads(pickle.dumps(client))
    assert copy._token is None  # only the configuration crosses a process boundary
    assert copy.password.get_secret_value() == SECRET


def test_each_run_gets_a_fresh_copy_with_default_private_state() -> None:
    seen: list[Any] = []

    @asset
    def a(client: Client) -> str | None:
        seen.append(client)
        return client._token

    client = Client(username="ann", password="pw")
    first = run_assets([a], {"client": client})
    second = run_assets([a], {"client": client})
    assert first.outputs["a"] == second.outputs["a"] == "ann:pw:80"
    assert client._token is None  # the user's object is never brought up itself
    assert seen[0] is not seen[1] and seen[0] is not client


def test_env_var_is_read_when_the_resource_comes_up(monkeypatch: pytest.MonkeyPatch) -> None:
    @asset
    def a(client: Client) -> str | None:
        return client._token

    client = Client(username="ann", password=EnvVar("HOST_TEST_PW"), port=EnvVar("HOST_TEST_PORT"))
    assert client.env_vars() == {"password": "HOST_TEST_PW", "port": "HOST_TEST_PORT"}
    monkeypatch.setenv("HOST_TEST_PW", SECRET)
    monkeypatch.setenv("HOST_TEST_PORT", "9000")
    result = run_assets([a], {"client": client})
    assert result.outputs["a"] == f"ann:{SECRET}:9000"
    monkeypatch.setenv("HOST_TEST_PW", "changed")
    assert run_assets([a], {"client": client}).outputs["a"] == "ann:changed:9000"


def test_missing_env_var_stops_the_run_before_anything_comes_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    brought_up: list[str] = []

    class Other(ConfigurableResource):
        def setup_for_execution(self, context: InitResourceContext) -> None:
            brought_up.append(context.resource_key)

    @asset
    def first(other: Other) -> int:
        return 1

    @asset
    def second(first: int, client: Client) -> int:
        return 2

    monkeypatch.delenv("HOST_TEST_MISSING", raising=False)
    client = Client(username="ann", password=EnvVar("HOST_TEST_MISSING"))
    with pytest.raises(ConfigError) as info:
        run_assets([first, second], {"client": client, "other": Other()})
    message = str(info.value)
    assert "'client'" in message and "'password'" in message and "HOST_TEST_MISSING" in message
    assert (info.value.resource_key, info.value.field) == ("client", "password")
    assert brought_up == []


def test_env_value_that_does_not_validate_names_field_not_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    brought_up: list[str] = []

    class Other(ConfigurableResource):
        def setup_for_execution(self, context: InitResourceContext) -> None:
            brought_up.append(context.resource_key)

    @asset
    def first(other: Other) -> None:
        return None

    @asset
    def a(first: None, client: Client) -> None:
        return None

    monkeypatch.setenv("HOST_TEST_PORT", SECRET)
    client = Client(username="ann", password="pw", port=EnvVar("HOST_TEST_PORT"))
    with pytest.raises(ConfigError) as info:  # before anything comes up
        run_assets([first, a], {"client": client, "other": Other()})
    message = str(info.value)
    assert "'client'" in message and "port" in message and "HOST_TEST_PORT" in message
    assert (info.value.resource_key, info.value.field) == ("client", "port")
    assert SECRET not in message and info.value.__context__ is None
    assert brought_up == []


def test_secrets_never_appear_in_events_errors_or_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(ConfigurableResource):
        token: SecretStr
        from_env: str

        def setup_for_execution(self, context: InitResourceContext) -> None:
            context.log.warning("config: %s / %r", context.resource_config, self)
            raise RuntimeError(f"cannot log in with config {context.resource_config}")

    @asset
    def a(failing: Failing) -> None:
        return None

    monkeypatch.setenv("HOST_TEST_FROM_ENV", SECRET + "-env")
    resource = Failing(token=SECRET, from_env=EnvVar("HOST_TEST_FROM_ENV"))
    with caplog.at_level("WARNING", logger="host"):
        result = run_assets([a], {"failing": resource}, raise_on_error=False)
    text = repr(result) + caplog.text + repr(resource)
    assert "cannot log in" in text and "**********" in text
    assert SECRET not in text


def test_resource_context_carries_key_config_run_and_dependencies() -> None:
    contexts: dict[str, InitResourceContext] = {}

    class Inner(ConfigurableResource):
        value: int

        def setup_for_execution(self, context: InitResourceContext) -> None:
            contexts[context.resource_key] = context

    class Outer(ConfigurableResource):
        inner: Inner
        secret: SecretStr

        def setup_for_execution(self, context: InitResourceContext) -> None:
            contexts[context.resource_key] = context

    @asset
    def a(outer: Outer) -> int:
        return outer.inner.value

    result = run_assets([a], {"outer": Outer(inner=Inner(value=3), secret="x")}, run_id="r-1")
    assert result.outputs["a"] == 3
    outer, inner = contexts["outer"], contexts["outer.inner"]
    assert outer.run_id == inner.run_id == "r-1"
    assert outer.resource_config["secret"] == "**********"
    assert outer.resources["inner"] is not None and outer.resources["inner"].value == 3
    assert inner.resource_config == {"value": 3}
    assert outer.executor == "in_process"


class AsyncResource(ConfigurableResource):
    name: str
    _log: list[str] = PrivateAttr(default_factory=list)
    _loop: Any = PrivateAttr(default=None)

    async def setup_for_execution(self, context: InitResourceContext) -> None:
        await asyncio.sleep(0)
        self._loop = asyncio.get_running_loop()
        self._log.append("setup")

    async def teardown_after_execution(self, context: InitResourceContext) -> None:
        await asyncio.sleep(0)
        self._log.append("teardown")


class AsyncHeld(ConfigurableResource):
    _events: list[str] = PrivateAttr(default_factory=list)

    @contextlib.asynccontextmanager
    async def yield_for_execution(self, context: InitResourceContext) -> AsyncIterator[AsyncHeld]:
        self._events.append("enter")
        try:
            yield self
        finally:
            self._events.append("exit")


def test_async_resources_and_async_assets_share_one_loop() -> None:
    holder: dict[str, Any] = {}

    @asset
    async def a(res: AsyncResource, held: AsyncHeld) -> bool:
        await asyncio.sleep(0)
        holder["res"], holder["held"] = res, held
        return asyncio.get_running_loop() is res._loop

    result = run_assets([a], {"res": AsyncResource(name="x"), "held": AsyncHeld()})
    assert result.outputs["a"] is True
    assert holder["res"]._log == ["setup", "teardown"]
    assert holder["held"]._events == ["enter", "exit"]
    phases = [(e.resource_key, e.phase) for e in result.events if isinstance(e, ResourceEvent)]
    assert ("res", "setup") in phases and ("res", "teardown") in phases
    assert ("held", "yield_enter") in phases and ("held", "yield_exit") in phases


def test_plain_objects_are_given_as_they_are() -> None:
    sentinel = object()

    @asset
    def a(thing: object) -> bool:
        return thing is sentinel

    assert run_assets([a], {"thing": sentinel}).outputs["a"] is True


def test_values_read_from_the_environment_stay_masked_across_pickling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOST_TEST_PW", SECRET)
    resolved = Client(username=EnvVar("HOST_TEST_PW"), password="pw").instantiate("client", {})
    assert resolved.username == SECRET
    for obj in (resolved, pickle.loads(pickle.dumps(resolved))):
        assert SECRET not in repr(obj) and obj.username == SECRET
