"""TokenClientResource against the real test server on 127.0.0.1."""

from __future__ import annotations

import os
import pickle
import socket
import traceback
from importlib.metadata import entry_points
from typing import Any

import pydantic
import pytest
from host_plugin_http import APIError, TokenClientResource, TokenRequestError
from host_plugin_http.testserver import DEFAULT_USERS, TokenServer, serve

from host import (
    EnvVar,
    ResourceEvent,
    ResourceSetupError,
    RunFailure,
    asset,
    run_assets,
)

WRONG_PASSWORD = "wrong-password-7c1e9a"


@asset
def users(api: TokenClientResource) -> list[dict[str, Any]]:
    return api.get_all_users()


@asset
def second_user(api: TokenClientResource) -> Any:
    return api.get_json("/users/2")


@asset
def created(api: TokenClientResource, users: list[dict[str, Any]]) -> Any:
    return api.post_json("/users", {"name": "Dee", "email": "dee@example.org"})


@asset
def offline() -> str:
    return "no API needed"


def test_the_package_registers_the_http_resource_type() -> None:
    (entry_point,) = entry_points(group="host.resources", name="http")
    assert entry_point.value == "host_plugin_http:TokenClientResource"
    assert entry_point.dist is not None and entry_point.dist.name == "host-plugin-http"
    assert entry_point.load() is TokenClientResource


def test_one_token_per_run_for_every_asset(
    server: TokenServer, client: TokenClientResource
) -> None:
    result = run_assets([users, second_user, created], {"api": client})

    assert result.outputs["users"] == list(DEFAULT_USERS)
    assert result.outputs["second_user"] == DEFAULT_USERS[1]
    assert result.outputs["created"] == {"id": 4, "name": "Dee", "email": "dee@example.org"}
    assert server.token_requests == 1
    assert server.api_requests == 3

    run_assets([users, second_user], {"api": client})
    assert server.token_requests == 2  # each run fetches its own
    assert server.api_requests == 5


def test_a_run_that_does_not_need_the_client_fetches_no_token(
    server: TokenServer, client: TokenClientResource
) -> None:
    result = run_assets([offline], {"api": client})

    assert result.outputs == {"offline": "no API needed"}
    assert server.token_requests == 0


def test_teardown_forgets_the_token_and_revokes_it_when_configured(server: TokenServer) -> None:
    @asset
    def keep(api: TokenClientResource) -> TokenClientResource:
        return api

    kept = TokenClientResource(
        base_url=server.url, username=server.username, password=server.password
    )
    brought_up = run_assets([keep], {"api": kept}).outputs["keep"]
    assert server.revocations == 0
    assert server.active_tokens == 1
    with pytest.raises(RuntimeError, match="has no token"):
        brought_up.get_all_users()

    revoking = kept.model_copy(update={"revoke_path": "/revoke"})
    run_assets([users], {"api": revoking})
    assert server.revocations == 1
    assert server.active_tokens == 1  # only the first run's token is left


def test_a_wrong_password_fails_bring_up_and_the_password_appears_nowhere(
    server: TokenServer,
) -> None:
    client = TokenClientResource(
        base_url=server.url, username=server.username, password=WRONG_PASSWORD
    )

    result = run_assets([users, second_user, offline], {"api": client}, raise_on_error=False)

    assert result.outputs == {"offline": "no API needed"}
    assert sorted(result.failures) == ["second_user", "users"]
    assert server.token_requests == 1  # not tried again for the second asset
    failure = result.failures["users"]
    assert failure.type == "host._errors.ResourceSetupError"
    assert failure.resource_key == "api"
    assert f"POST {server.url}/token failed: HTTP 401 Unauthorized" in failure.message
    setup = [e for e in result.events_of(ResourceEvent) if e.phase == "setup"]
    assert len(setup) == 1 and setup[0].error is not None

    with pytest.raises(RunFailure) as caught:
        run_assets([users], {"api": client})
    error = caught.value.__cause__
    assert isinstance(error, ResourceSetupError)
    assert (error.resource_key, error.phase) == ("api", "setup")
    assert error.resource_class == "host_plugin_http._client.TokenClientResource"
    assert error.distribution == "host-plugin-http 0.1.0"
    cause = error.__cause__
    assert isinstance(cause, TokenRequestError)
    assert (cause.method, cause.url, cause.status) == ("POST", f"{server.url}/token", 401)
    assert "could not fetch a token for user 'ann'" in str(cause)

    everything = "\n".join(
        [
            repr(client),
            str(client.model_dump()),
            client.model_dump_json(),
            repr(result),
            repr(caught.value),
            repr(error),
            "".join(traceback.format_exception(caught.value)),
        ]
    )
    assert WRONG_PASSWORD not in everything
    assert "**********" in repr(client)


def test_the_password_can_come_from_the_environment(
    server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_PASSWORD", server.password)
    client = TokenClientResource(
        base_url=server.url, username=server.username, password=EnvVar("API_PASSWORD")
    )

    result = run_assets([users], {"api": client})

    assert len(result.outputs["users"]) == len(DEFAULT_USERS)
    assert server.password not in repr(client)


def test_api_errors_name_the_url_and_status_never_the_token(
    server: TokenServer, client: TokenClientResource
) -> None:
    @asset
    def missing(api: TokenClientResource) -> dict[str, Any]:
        with pytest.raises(APIError) as caught:
            api.get_json("/users/99", params={"verbose": 1})
        tokens = server.issued_token_values()
        return {
            "message": str(caught.value),
            "status": caught.value.status,
            "url": caught.value.url,
            "token_in_message": any(token in str(caught.value) for token in tokens),
        }

    outcome = run_assets([missing], {"api": client}).outputs["missing"]

    assert outcome == {
        "message": (
            f"GET {server.url}/users/99?verbose=1 failed: HTTP 404 Not Found: "
            '{"error": "not_found", "id": "99"}'
        ),
        "status": 404,
        "url": f"{server.url}/users/99?verbose=1",
        "token_in_message": False,
    }


def test_the_token_is_not_forwarded_on_redirect(
    server: TokenServer, client: TokenClientResource
) -> None:
    @asset
    def redirected(api: TokenClientResource) -> dict[str, Any]:
        # Same server, but the token must not follow a redirect anywhere.
        with pytest.raises(APIError) as caught:
            api.get_json("/redirect", params={"to": f"{server.url}/users"})
        return {"status": caught.value.status, "url": caught.value.url}

    outcome = run_assets([redirected], {"api": client}).outputs["redirected"]

    assert outcome["status"] == 401
    assert server.api_requests == 0


def test_paths_must_be_relative_to_base_url(
    server: TokenServer, client: TokenClientResource
) -> None:
    @asset
    def elsewhere(api: TokenClientResource) -> str:
        with pytest.raises(ValueError, match="is an absolute URL") as caught:
            api.get_json("http://example.org/steal")
        return str(caught.value)

    assert (
        "pass a path relative to" in run_assets([elsewhere], {"api": client}).outputs["elsewhere"]
    )


def test_an_unreachable_api_fails_bring_up_naming_the_url() -> None:
    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = TokenClientResource(
        base_url=f"http://127.0.0.1:{port}/api/", username="ann", password=WRONG_PASSWORD
    )

    with pytest.raises(RunFailure) as caught:
        run_assets([users], {"api": client})

    error = caught.value.__cause__
    assert isinstance(error, ResourceSetupError)
    assert f"POST http://127.0.0.1:{port}/api/token failed:" in str(error)
    assert WRONG_PASSWORD not in "".join(traceback.format_exception(caught.value))


def test_configuration_is_validated() -> None:
    client = TokenClientResource(base_url="https://api.example.org/v1/", username="a", password="p")
    assert client.base_url == "https://api.example.org/v1"
    with pytest.raises(pydantic.ValidationError, match="absolute http:// or https:// URL"):
        TokenClientResource(base_url="ftp://api.example.org", username="a", password="p")
    with pytest.raises(pydantic.ValidationError, match="must not have a query"):
        TokenClientResource(base_url="https://api.example.org/?x=1", username="a", password="p")
    with pytest.raises(pydantic.ValidationError, match="greater than 0"):
        TokenClientResource(base_url="https://a.example", username="a", password="p", timeout=0)
    assert "password" in TokenClientResource.model_json_schema()["required"]


def test_errors_pickle_with_their_attributes() -> None:
    error = TokenRequestError("boom", method="POST", url="http://x/token", status=401)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.method, copy.url, copy.status) == (
        "boom",
        "POST",
        "http://x/token",
        401,
    )


def test_two_servers_each_get_one_token_per_run(server: TokenServer) -> None:
    with serve(username="bob", password="other secret") as other:
        resources = {
            "api": TokenClientResource(
                base_url=server.url, username=server.username, password=server.password
            ),
            "other": TokenClientResource(
                base_url=other.url, username="bob", password="other secret"
            ),
        }

        @asset
        def both(api: TokenClientResource, other: TokenClientResource) -> int:
            return len(api.get_all_users()) + len(other.get_all_users())

        assert run_assets([both], resources).outputs["both"] == 2 * len(DEFAULT_USERS)
        assert (server.token_requests, other.token_requests) == (1, 1)


@asset
def worker_a(api: TokenClientResource) -> tuple[int, int]:
    return os.getpid(), len(api.get_all_users())


@asset
def worker_b(api: TokenClientResource) -> tuple[int, int]:
    return os.getpid(), len(api.get_all_users())


@asset
def worker_c(api: TokenClientResource) -> tuple[int, int]:
    return os.getpid(), len(api.get_all_users())


@asset
def worker_d(api: TokenClientResource) -> tuple[int, int]:
    return os.getpid(), len(api.get_all_users())


def test_one_token_per_worker_process_on_the_multiprocess_executor(
    server: TokenServer, client: TokenClientResource
) -> None:
    result = run_assets(
        [worker_a, worker_b, worker_c, worker_d],
        {"api": client},
        executor="multiprocess",
        executor_config={"max_workers": 2},
    )

    pids = {pid for pid, _ in result.outputs.values()}
    assert os.getpid() not in pids
    assert {count for _, count in result.outputs.values()} == {len(DEFAULT_USERS)}
    assert server.token_requests == len(pids)
    setups = [e.pid for e in result.events_of(ResourceEvent) if e.phase == "setup"]
    assert sorted(setups) == sorted(pids)
