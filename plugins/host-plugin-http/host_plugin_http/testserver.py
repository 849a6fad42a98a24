"""A small real token API on 127.0.0.1, for tests and examples of ``TokenClientResource``.

It speaks the protocol the resource expects and counts what it serves, so tests can check how
often a run fetched a token::

    from host_plugin_http.testserver import serve

    with serve() as server:                     # an ephemeral port on 127.0.0.1
        client = TokenClientResource(
            base_url=server.url, username=server.username, password=server.password,
            revoke_path="/revoke",
        )
        ...
        assert server.token_requests == 1

From a shell: ``python -m host_plugin_http.testserver --port 8765`` serves until interrupted
(Ctrl-C) and prints its URL; ``--username`` and ``--password`` change the credentials.

Endpoints:

* ``POST /token``: form ``grant_type=password&username=...&password=...``; ``200
  {"access_token": ..., "token_type": "bearer", "expires_in": 3600}``, or ``401
  {"error": "invalid_grant"}`` for wrong credentials, ``400`` for a malformed request.
* ``GET /users`` and ``GET /users/<id>``: the users, with ``Authorization: Bearer <token>``;
  ``401`` with ``WWW-Authenticate: Bearer`` without a valid token, ``404`` for an unknown id.
* ``POST /users``: a JSON object, added as a user with the next id (``201``, the user).
* ``POST /revoke``: form ``token=...``; the token stops working (``200``, as RFC 7009 says, also
  for an unknown token).
* ``GET /redirect?to=<url>``: ``302`` to ``url`` (to check what a client forwards on redirect).

It listens on 127.0.0.1 only and keeps everything in memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USERNAME", "DEFAULT_USERS", "TokenServer", "main", "serve"]

#: The credentials the server accepts unless told otherwise.
DEFAULT_USERNAME = "ann"
DEFAULT_PASSWORD = "correct horse battery staple"

#: The users ``GET /users`` returns unless told otherwise.
DEFAULT_USERS: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "Ann", "email": "ann@example.org"},
    {"id": 2, "name": "Bob", "email": "bob@example.org"},
    {"id": 3, "name": "Cy", "email": "cy@example.org"},
)

_LOOPBACK = "127.0.0.1"


class TokenServer:
    """The server's state and its thread; see :func:`serve`.

    Attributes:
        username: the username the token endpoint accepts.
        password: the password it accepts.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        users: Sequence[dict[str, Any]] = DEFAULT_USERS,
    ) -> None:
        self.username = username
        self.password = password
        self._users = [dict(user) for user in users]
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._counts = {"token_requests": 0, "tokens_issued": 0, "revocations": 0, "api": 0}
        self._httpd = _HTTPServer((_LOOPBACK, port), _Handler, self)
        self._thread: threading.Thread | None = None

    # -- what tests look at ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (the real one when started with port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the ``base_url`` for clients."""
        return f"http://{_LOOPBACK}:{self.port}"

    @property
    def token_requests(self) -> int:
        """Requests to ``POST /token``, accepted or not."""
        return self._count("token_requests")

    @property
    def tokens_issued(self) -> int:
        """Tokens handed out."""
        return self._count("tokens_issued")

    @property
    def revocations(self) -> int:
        """Requests to ``POST /revoke``."""
        return self._count("revocations")

    @property
    def api_requests(self) -> int:
        """Requests to the users endpoints that carried a valid token."""
        return self._count("api")

    @property
    def active_tokens(self) -> int:
        """Tokens issued and not revoked."""
        with self._lock:
            return len(self._tokens)

    def issued_token_values(self) -> frozenset[str]:
        """The values of the tokens that are active (to check they appear nowhere else)."""
        with self._lock:
            return frozenset(self._tokens)

    # -- running --------------------------------------------------------------------------

    def start(self) -> TokenServer:
        """Serve in a daemon thread; return ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"host-plugin-http test server :{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C); then call :meth:`stop`."""
        with contextlib.suppress(KeyboardInterrupt):
            self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving, wait for the thread, and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- used by the handler --------------------------------------------------------------

    def _count(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def _bump(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _issue(self, username: str, password: str) -> str | None:
        ok = secrets.compare_digest(username, self.username) and secrets.compare_digest(
            password.encode(), self.password.encode()
        )
        if not ok:
            return None
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
            self._counts["tokens_issued"] += 1
        return token

    def _revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)
            self._counts["revocations"] += 1

    def _valid(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def _users_snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(user) for user in self._users]

    def _add_user(self, user: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            user = {**user, "id": max((u["id"] for u in self._users), default=0) + 1}
            self._users.append(user)
            return dict(user)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], state: TokenServer
    ) -> None:
        self.state = state
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "host-plugin-http-testserver/1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and examples print what they need."""

    # -- routing --------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        if path == "/token":
            self._token()
        elif path == "/revoke":
            self._revoke()
        elif path == "/users":
            if self._authorized():
                self._create_user()
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": "not_found", "path": path})

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        if path == "/users":
            if self._authorized():
                self._send(HTTPStatus.OK, self.server.state._users_snapshot())
        elif path.startswith("/users/"):
            if self._authorized():
                self._user(path.removeprefix("/users/"))
        elif path == "/redirect":
            self._redirect()
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": "not_found", "path": path})

    # -- endpoints ------------------------------------------------------------------------

    def _token(self) -> None:
        state = self.server.state
        state._bump("token_requests")
        form = self._form()
        if form is None or form.get("grant_type", "password") != "password":
            self._send(HTTPStatus.BAD_REQUEST, {"error": "invalid_request"})
            return
        token = state._issue(form.get("username", ""), form.get("password", ""))
        if token is None:
            self._send(
                HTTPStatus.UNAUTHORIZED,
                {"error": "invalid_grant", "error_description": "wrong username or password"},
            )
            return
        self._send(
            HTTPStatus.OK, {"access_token": token, "token_type": "bearer", "expires_in": 3600}
        )

    def _revoke(self) -> None:
        form = self._form()
        if form is None or "token" not in form:
            self._send(HTTPStatus.BAD_REQUEST, {"error": "invalid_request"})
            return
        self.server.state._revoke(form["token"])
        self._send(HTTPStatus.OK, {})

    def _user(self, user_id: str) -> None:
        for user in self.server.state._users_snapshot():
            if str(user["id"]) == user_id:
                self._send(HTTPStatus.OK, user)
                return
        self._send(HTTPStatus.NOT_FOUND, {"error": "not_found", "id": user_id})

    def _redirect(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        target = query.get("to", [""])[0]
        if not target:
            self._send(HTTPStatus.BAD_REQUEST, {"error": "missing 'to'"})
            return
        self._send(HTTPStatus.FOUND, {"location": target}, headers={"Location": target})

    def _create_user(self) -> None:
        body = self._json()
        if not isinstance(body, dict):
            self._send(HTTPStatus.BAD_REQUEST, {"error": "expected a JSON object"})
            return
        self._send(HTTPStatus.CREATED, self.server.state._add_user(body))

    # -- helpers --------------------------------------------------------------------------

    def _authorized(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.server.state._valid(token.strip()):
            self.server.state._bump("api")
            return True
        self._send(
            HTTPStatus.UNAUTHORIZED,
            {"error": "invalid_token"},
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
        return False

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _form(self) -> dict[str, str] | None:
        if self.headers.get_content_type() != "application/x-www-form-urlencoded":
            self._body()
            return None
        pairs = urllib.parse.parse_qsl(self._body().decode("utf-8", errors="replace"))
        return dict(pairs)

    def _json(self) -> Any:
        try:
            return json.loads(self._body() or b"null")
        except ValueError:
            return None

    def _send(self, status: HTTPStatus, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def serve(
    port: int = 0,
    *,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
    users: Sequence[dict[str, Any]] = DEFAULT_USERS,
) -> Iterator[TokenServer]:
    """Serve the token API on 127.0.0.1 in a background thread for the ``with`` block.

    Args:
        port: the port; 0 picks a free one (see ``server.url``).
        username: the username the token endpoint accepts.
        password: the password it accepts.
        users: what ``GET /users`` returns.

    Yields:
        The running :class:`TokenServer`; it is stopped and its socket closed after the block.
    """
    with TokenServer(port, username=username, password=password, users=users) as server:
        yield server


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m host_plugin_http.testserver``: serve until interrupted (Ctrl-C)."""
    parser = argparse.ArgumentParser(
        prog="python -m host_plugin_http.testserver",
        description="Serve a small token API on 127.0.0.1 for trying TokenClientResource.",
    )
    parser.add_argument("--port", type=_port, default=8765, help="port (0: any free port)")
    parser.add_argument("--username", default=DEFAULT_USERNAME)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    args = parser.parse_args(argv)
    server = TokenServer(args.port, username=args.username, password=args.password)
    print(f"serving on {server.url} (username {args.username!r}); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
