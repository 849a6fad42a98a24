"""host-plugin-http: a ``host`` resource for token-authenticated JSON APIs.

Registered as the resource type ``http`` (entry-point group ``host.resources``)::

    [resources.api]
    type = "http"
    [resources.api.config]
    base_url = "http://127.0.0.1:8765"
    username = "ann"
    password = { env = "API_PASSWORD" }

:class:`TokenClientResource` fetches one token per run per process and sends it with every
call; :mod:`host_plugin_http.testserver` is a real token API on 127.0.0.1 to test against.
"""

from host_plugin_http._client import APIError, TokenClientResource, TokenRequestError

__all__ = ["APIError", "TokenClientResource", "TokenRequestError"]
