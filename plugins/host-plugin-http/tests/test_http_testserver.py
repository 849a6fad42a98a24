"""The shipped test server speaks the token protocol, counts requests and runs from a shell."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from host_plugin_http.testserver import DEFAULT_USERS, TokenServer


def call(
    method: str, url: str, *, form: dict[str, str] | None = None, token: str | None = None
) -> tuple[int, Any]:
    """One request with plain urllib: (status, decoded JSON body)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def test_it_listens_on_the_loopback_interface_only(server: TokenServer) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.port > 0


def test_token_users_and_revoke(server: TokenServer) -> None:
    credentials = {"grant_type": "password", "username": server.username}

    assert call("POST", f"{server.url}/token", form={**credentials, "password": "nope"}) == (
        401,
        {"error": "invalid_grant", "error_description": "wrong username or password"},
    )
    status, body = call(
        "POST", f"{server.url}/token", form={**credentials, "password": server.password}
    )
    assert status == 200 and body["token_type"] == "bearer"
    token = body["access_token"]
    assert (server.token_requests, server.tokens_issued) == (2, 1)

    assert call("GET", f"{server.url}/users")[0] == 401
    assert call("GET", f"{server.url}/users", token="forged")[0] == 401
    assert call("GET", f"{server.url}/users", token=token) == (200, list(DEFAULT_USERS))
    assert call("GET", f"{server.url}/users/3", token=token) == (200, DEFAULT_USERS[2])
    assert call("GET", f"{server.url}/users/9", token=token)[0] == 404
    assert server.api_requests == 3

    assert call("POST", f"{server.url}/revoke", form={"token": token}) == (200, {})
    assert call("GET", f"{server.url}/users", token=token)[0] == 401
    assert (server.revocations, server.active_tokens) == (1, 0)


def test_a_malformed_token_request_is_rejected(server: TokenServer) -> None:
    assert call("POST", f"{server.url}/token")[0] == 400
    assert call("POST", f"{server.url}/token", form={"grant_type": "client_credentials"})[0] == 400
    assert call("GET", f"{server.url}/elsewhere")[0] == 404


def test_it_runs_from_a_shell_until_interrupted() -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "host_plugin_http.testserver",
            "--port",
            "0",
            "--username",
            "eve",
            "--password",
            "pw",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            assert banner.startswith("serving on http://127.0.0.1:"), banner
            url = banner.split()[2]
            form = {"username": "eve", "password": "pw"}
            status, body = call("POST", f"{url}/token", form=form)
            assert status == 200
            assert call("GET", f"{url}/users", token=body["access_token"])[0] == 200
        finally:
            process.send_signal(signal.SIGINT)
            _out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "pw" not in banner


@pytest.mark.parametrize("port", ["-1", "not-a-port"])
def test_the_command_rejects_a_bad_port(port: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "host_plugin_http.testserver", "--port", port],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 2
    assert "is not a port number (0-65535)" in finished.stderr
