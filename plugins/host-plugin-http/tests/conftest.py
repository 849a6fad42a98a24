"""Fixtures: a real token API on 127.0.0.1 and a client configured for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from host_plugin_http import TokenClientResource
from host_plugin_http.testserver import TokenServer, serve


@pytest.fixture
def server() -> Iterator[TokenServer]:
    """The test token server, running on an ephemeral port for one test."""
    with serve() as running:
        yield running


@pytest.fixture
def client(server: TokenServer) -> TokenClientResource:
    """A client with the server's URL and credentials (not up: runs bring copies up)."""
    return TokenClientResource(
        base_url=server.url, username=server.username, password=server.password
    )
