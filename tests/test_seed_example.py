"""The seed example from Dagster's resource docs, with only the imports changed.

A client resource fetches a token from a real local HTTP server in ``setup_for_execution``;
a connection resource holds a real sqlite connection open in ``yield_for_execution``.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from host_plugin_http.testserver import TokenServer, serve
from pydantic import PrivateAttr

from host import ConfigurableResource, InitResourceContext, asset, run_assets

API: dict[str, str] = {}


def fetch_token(username: str, password: str) -> str:
    body = urllib.parse.urlencode(
        {"grant_type": "password", "username": username, "password": password}
    ).encode()
    with urllib.request.urlopen(f"{API['url']}/token", data=body, timeout=10) as response:
        token: str = json.load(response)["access_token"]
        return token


# -- from here on, Dagster's example with `from host import ...` instead of `from dagster import`


class MyClientResource(ConfigurableResource):
    username: str
    password: str
    _api_token: str = PrivateAttr()

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Fetch and set up an API token based on the username and password
        self._api_token = fetch_token(self.username, self.password)

    def get_all_users(self) -> list[dict[str, Any]]:
        request = urllib.request.Request(
            f"{API['url']}/users", headers={"Authorization": f"Bearer {self._api_token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            users: list[dict[str, Any]] = json.load(response)
            return users


class MyConnectionResource(ConfigurableResource):
    connection_url: str
    _connection: sqlite3.Connection = PrivateAttr()

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[MyConnectionResource]:
        # keep connection open for the duration of the execution
        connection = sqlite3.connect(self.connection_url)
        try:
            self._connection = connection
            yield self
            connection.commit()
        finally:
            connection.close()

    def query(self, body: str, *args: Any) -> list[Any]:
        return self._connection.execute(body, args).fetchall()


@asset
def my_asset(client: MyClientResource) -> list[dict[str, Any]]:
    return client.get_all_users()


@asset
def stored(my_asset: list[dict[str, Any]], connection: MyConnectionResource) -> int:
    connection.query("create table if not exists users (id integer primary key, name text)")
    for user in my_asset:
        connection.query("insert into users values (?, ?)", user["id"], user["name"])
    return int(connection.query("select count(*) from users")[0][0])


# -- end of the example


@pytest.fixture
def server() -> Iterator[TokenServer]:
    with serve() as running:
        API["url"] = running.url
        yield running
        API.clear()


def test_seed_example_runs_with_real_server_and_database(
    server: TokenServer, tmp_path: Path
) -> None:
    database = tmp_path / "users.db"
    resources = {
        "client": MyClientResource(username=server.username, password=server.password),
        "connection": MyConnectionResource(connection_url=str(database)),
    }
    result = run_assets([my_asset, stored], resources=resources)

    assert result.success
    assert [user["name"] for user in result.outputs["my_asset"]] == ["Ann", "Bob", "Cy"]
    assert result.outputs["stored"] == 3
    assert server.token_requests == 1  # one token per run, however many assets use the client
    with sqlite3.connect(database) as check:  # committed and closed at the end of the run
        assert check.execute("select name from users order by id").fetchall() == [
            ("Ann",),
            ("Bob",),
            ("Cy",),
        ]
    check.close()

    run_assets([my_asset], resources=resources)
    assert server.token_requests == 2  # a second run brings the client up again
