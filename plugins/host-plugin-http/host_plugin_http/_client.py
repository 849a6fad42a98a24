"""``TokenClientResource``: a JSON API client that fetches one bearer token per run per process.

The protocol is OAuth 2.0's resource-owner password grant (RFC 6749, section 4.3), which is
what most token endpoints that take a username and password speak: ``POST {base_url}{token_path}``
with a form body ``grant_type=password&username=...&password=...``, answered by
``{"access_token": "...", "token_type": "bearer"}``. API calls then send
``Authorization: Bearer <token>``. With ``revoke_path`` set, teardown revokes the token the way
RFC 7009 describes (``POST`` a form body ``token=...``).

HTTP goes through the standard library's ``urllib.request``: a handful of JSON requests per run
does not need a third-party client, and the package then depends on the host alone.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from pydantic import Field, PrivateAttr, SecretStr, field_validator

from host import ConfigurableResource, InitResourceContext

__all__ = ["APIError", "TokenClientResource", "TokenRequestError"]

_MASK = "**********"
_SNIPPET = 200  # characters of a response body quoted in an error message


class APIError(Exception):
    """A request to the API failed: no connection, an HTTP error status, or a body that is not JSON.

    The message names the method, the URL and the status, and quotes the start of the response
    body with the password and the token replaced by ``**********``; it never contains either.

    Attributes:
        method: the HTTP method.
        url: the URL requested.
        status: the HTTP status, or ``None`` when no response came back.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", status: int | None = None):
        # Defaults only so that the error pickles (cls(message), then __dict__) across processes.
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status


class TokenRequestError(APIError):
    """The token endpoint refused the credentials or did not return a token."""


class TokenClientResource(ConfigurableResource):
    """A token-authenticated JSON API: one token per run per process, sent with every call.

    Configuration (fields):

    * ``base_url``: the API's root, ``http://`` or ``https://``; paths are relative to it.
    * ``username`` and ``password`` (a ``SecretStr``, masked everywhere): the credentials sent
      to the token endpoint. In a run config, ``password = { env = "API_PASSWORD" }``.
    * ``token_path``: the token endpoint, relative to ``base_url`` (default ``/token``).
    * ``revoke_path``: if set, the endpoint teardown posts the token to, to revoke it.
    * ``timeout``: seconds to wait for each response.

    Lifecycle: :meth:`setup_for_execution` fetches the token, once per run in each process that
    runs an asset needing the resource; :meth:`teardown_after_execution` forgets it (and revokes
    it when ``revoke_path`` is set). A wrong password fails the bring-up with
    :class:`TokenRequestError`, which the host reports as ``host.ResourceSetupError``.

    The token is sent only to ``base_url``: paths must be relative, and the ``Authorization``
    header is not forwarded when the server redirects. A token that expires during a run is not
    renewed: calls then fail with an :class:`APIError` of status 401.
    """

    base_url: str = Field(description="The API's root URL (http or https).")
    username: str = Field(description="Username sent to the token endpoint.")
    password: SecretStr = Field(description="Password sent to the token endpoint.")
    token_path: str = Field(default="/token", description="Token endpoint, relative to base_url.")
    revoke_path: str | None = Field(
        default=None, description="Endpoint to revoke the token at teardown, if any."
    )
    timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for each response.")

    _token: str | None = PrivateAttr(default=None)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or a fragment")
        return value.rstrip("/")

    # -- lifecycle ------------------------------------------------------------------------

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Fetch the run's token with the username and password.

        Raises:
            TokenRequestError: the endpoint refused the credentials or returned no token.
            APIError: the endpoint could not be reached.
        """
        self._token = self._fetch_token()
        context.log.debug("fetched an API token for %r from %s", self.username, self.base_url)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """Forget the token; revoke it first when ``revoke_path`` is set.

        Raises:
            APIError: the revocation failed (the token is forgotten anyway).
        """
        token, self._token = self._token, None
        if token is not None and self.revoke_path is not None:
            self._send("POST", self._url(self.revoke_path), form={"token": token}, token=token)

    # -- for assets -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """Call the API with the run's token; return the decoded JSON (``None`` if empty).

        Args:
            method: the HTTP method.
            path: relative to ``base_url``.
            params: query parameters.
            body: sent as JSON when not ``None``.

        Raises:
            RuntimeError: called outside a run (no token).
            ValueError: ``path`` is an absolute URL.
            APIError: no response, an error status, or a body that is not JSON.
        """
        if self._token is None:
            raise RuntimeError(
                f"TokenClientResource for {self.base_url} has no token: it fetches one when a "
                f"run brings it up, for the assets that take it as a parameter."
            )
        return self._send(method, self._url(path, params), json_body=body, token=self._token)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET`` a path relative to ``base_url``; return the decoded JSON."""
        return self.request("GET", path, params=params)

    def post_json(self, path: str, body: Any) -> Any:
        """``POST`` ``body`` as JSON to a path relative to ``base_url``; return the decoded JSON."""
        return self.request("POST", path, body=body)

    def get_all_users(self) -> list[dict[str, Any]]:
        """``GET /users``: every user the API knows."""
        users = self.get_json("/users")
        if not isinstance(users, list):
            raise APIError(
                f"GET {self._url('/users')} returned {type(users).__name__}, not a list",
                method="GET",
                url=self._url("/users"),
                status=200,
            )
        return users

    # -- internals ------------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        parts = urllib.parse.urlsplit(path)
        if parts.scheme or parts.netloc:
            raise ValueError(
                f"{path!r} is an absolute URL; pass a path relative to {self.base_url}, where "
                f"the token is meant to go."
            )
        url = f"{self.base_url}/{path.lstrip('/')}"
        if params:
            url += ("&" if parts.query else "?") + urllib.parse.urlencode(params, doseq=True)
        return url

    def _fetch_token(self) -> str:
        url = self._url(self.token_path)
        form = {
            "grant_type": "password",
            "username": self.username,
            "password": self.password.get_secret_value(),
        }
        try:
            answer = self._send("POST", url, form=form)
        except APIError as exc:
            raise TokenRequestError(
                f"could not fetch a token for user {self.username!r}: {exc}",
                method=exc.method,
                url=exc.url,
                status=exc.status,
            ) from exc.__cause__
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenRequestError(
                f"POST {url} returned no access_token for user {self.username!r}",
                method="POST",
                url=url,
                status=200,
            )
        return token

    def _send(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        json_body: Any = None,
        token: str | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        data: bytes | None = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        if token is not None:
            # Unredirected: urllib does not copy it to the request a redirect leads to.
            request.add_unredirected_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read() if exc.fp is not None else b""
            except OSError:
                raw = b""
            finally:
                exc.close()
            raise APIError(
                f"{method} {url} failed: HTTP {exc.code} {exc.reason}{self._quote(raw, token)}",
                method=method,
                url=url,
                status=exc.code,
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise APIError(f"{method} {url} failed: {reason}", method=method, url=url) from exc
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise APIError(
                f"{method} {url} returned HTTP {status} with a body that is not JSON"
                f"{self._quote(raw, token)}",
                method=method,
                url=url,
                status=status,
            ) from None

    def _quote(self, raw: bytes, token: str | None) -> str:
        """``: <the start of the body>``, secrets replaced by the mask; empty if no body."""
        text = " ".join(raw.decode("utf-8", errors="replace").split())
        for secret in (self.password.get_secret_value(), token, self._token):
            if secret:
                text = text.replace(secret, _MASK)
        if not text:
            return ""
        if len(text) > _SNIPPET:
            text = text[:_SNIPPET] + "..."
        return f": {text}"
