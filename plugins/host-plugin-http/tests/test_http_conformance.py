"""The token client passes the host's conformance check and opens like in a run."""

from __future__ import annotations

from host_plugin_http import TokenClientResource
from host_plugin_http.testserver import TokenServer

from host.testing import check_resource_class, open_resource


def test_token_client_is_a_well_formed_host_resource(server: TokenServer) -> None:
    check_resource_class(
        TokenClientResource,
        config={"base_url": server.url, "username": server.username, "password": server.password},
    )


def test_open_resource_fetches_one_token_for_the_block(
    client: TokenClientResource, server: TokenServer
) -> None:
    with open_resource(client, key="api") as api:
        assert [user["name"] for user in api.get_all_users()] == ["Ann", "Bob", "Cy"]
        assert api.get_all_users() == api.get_all_users()
    assert server.token_requests == 1
    with open_resource(client, key="api") as api:  # a fresh copy comes up again
        api.get_all_users()
    assert server.token_requests == 2
