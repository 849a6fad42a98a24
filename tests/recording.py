"""Resources that write their own lifecycle records, for tests on every executor.

Each record is one JSON line appended to a file named by the resource's ``record`` field:
``{"event": "setup"|"up"|"teardown"|"use", "key": ..., "label": ..., "run": ..., "pid": ...}``
(``run`` is the run id the resource's copy was brought up for). ``setup`` is written when
bringing the resource up starts, ``up`` as its last act once it is up: a resource interrupted
in between (by a signal or a timeout) did not come up, and must not be torn down. Appends of
short lines with O_APPEND are atomic, so several processes can share one file. The records are
the evidence for the lifecycle guarantees, counted per process.

Each resource may hold a ``secret`` (a ``SecretStr``); the failures it raises on purpose quote
it, as careless code does, so that tests can prove the host masks it in what it reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import PrivateAttr, SecretStr

from host import ConfigurableResource, InitResourceContext


def write(path: str, **record: Any) -> None:
    """Append one record to ``path``."""
    line = json.dumps({**record, "pid": os.getpid()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read(path: str | Path) -> list[dict[str, Any]]:
    """Every record in ``path``, in the order written (empty if nothing was written)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def counts(records: list[dict[str, Any]], event: str) -> Counter[tuple[str, int]]:
    """How many ``event`` records each (label, pid) wrote."""
    return Counter((r["label"], r["pid"]) for r in records if r["event"] == event)


def _quoted(secret: SecretStr | None) -> str:
    return f" (secret {secret.get_secret_value()})" if secret is not None else ""


class Recorded(ConfigurableResource):
    """Records setup and teardown; can be told to fail in either."""

    record: str
    label: str
    fail_setup: bool = False
    fail_teardown: bool = False
    secret: SecretStr | None = None
    _up: bool = PrivateAttr(default=False)
    _run: str = PrivateAttr(default="")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self._up:
            raise AssertionError(f"{self.label} set up twice on one instance")
        self._run = context.run_id
        write(self.record, event="setup", key=context.resource_key, label=self.label, run=self._run)
        if self.fail_setup:
            raise RuntimeError(f"setup of {self.label} failed on purpose{_quoted(self.secret)}")
        self._up = True
        write(self.record, event="up", key=context.resource_key, label=self.label, run=self._run)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(
            self.record, event="teardown", key=context.resource_key, label=self.label, run=self._run
        )
        self._up = False
        if self.fail_teardown:
            raise RuntimeError(f"teardown of {self.label} failed on purpose{_quoted(self.secret)}")

    def use(self) -> str:
        """Called by assets: fails unless the resource is up."""
        if not self._up:
            raise AssertionError(f"{self.label} used while not up")
        write(self.record, event="use", key="", label=self.label, run=self._run)
        return self.label


class RecordedYield(ConfigurableResource):
    """Holds itself up in ``yield_for_execution``; records enter and exit."""

    record: str
    label: str
    fail_enter: bool = False
    secret: SecretStr | None = None
    _up: bool = PrivateAttr(default=False)
    _run: str = PrivateAttr(default="")

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[RecordedYield]:
        self._run = context.run_id
        write(self.record, event="setup", key=context.resource_key, label=self.label, run=self._run)
        if self.fail_enter:
            raise RuntimeError(f"enter of {self.label} failed on purpose{_quoted(self.secret)}")
        self._up = True
        write(self.record, event="up", key=context.resource_key, label=self.label, run=self._run)
        try:
            yield self
        finally:
            self._up = False
            write(
                self.record,
                event="teardown",
                key=context.resource_key,
                label=self.label,
                run=self._run,
            )

    def use(self) -> str:
        if not self._up:
            raise AssertionError(f"{self.label} used while not up")
        write(self.record, event="use", key="", label=self.label, run=self._run)
        return self.label


class RecordedPair(ConfigurableResource):
    """Depends on another recorded resource (a nested resource field)."""

    record: str
    label: str
    inner: Recorded
    secret: SecretStr | None = None
    _up: bool = PrivateAttr(default=False)
    _run: str = PrivateAttr(default="")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if not self.inner._up:
            raise AssertionError(f"{self.label} set up before its dependency")
        self._run = context.run_id
        write(self.record, event="setup", key=context.resource_key, label=self.label, run=self._run)
        self._up = True
        write(self.record, event="up", key=context.resource_key, label=self.label, run=self._run)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(
            self.record, event="teardown", key=context.resource_key, label=self.label, run=self._run
        )
        self._up = False

    def use(self) -> str:
        if not self._up or not self.inner._up:
            raise AssertionError(f"{self.label} used while it or its dependency is not up")
        write(self.record, event="use", key="", label=self.label, run=self._run)
        return self.label


def _hang(seconds: float, blocking: bool) -> None:
    """Sleep ``seconds``: in short steps (Python code, which a deadline can stop anywhere), or
    in one blocking call (which only a signal can cut short)."""
    if blocking:
        time.sleep(seconds)
        return
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        time.sleep(0.01)


class Hanging(ConfigurableResource):
    """Records setup and teardown like :class:`Recorded`; hangs in one of them if told to."""

    record: str
    label: str
    hang_in: Literal["setup", "teardown", "none"] = "setup"
    seconds: float = 3600.0
    blocking: bool = False
    _up: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.label)
        if self.hang_in == "setup":
            _hang(self.seconds, self.blocking)
        self._up = True

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self.hang_in == "teardown":
            _hang(self.seconds, self.blocking)
        write(self.record, event="teardown", key=context.resource_key, label=self.label)
        self._up = False

    def use(self) -> str:
        if not self._up:
            raise AssertionError(f"{self.label} used while not up")
        write(self.record, event="use", key="", label=self.label)
        return self.label


class Vault(ConfigurableResource):
    """Holds two secrets (a ``SecretStr``, and a value read from an ``EnvVar``) and quotes both
    in the failures it raises on purpose, as careless code does."""

    record: str
    label: str
    token: SecretStr
    password: str
    fail_setup: bool = False
    fail_teardown: bool = False

    def _quote(self) -> str:
        return f"token={self.token.get_secret_value()} password={self.password}"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.label)
        if self.fail_setup:
            raise ConnectionError(f"login to the vault failed with {self._quote()}")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label=self.label)
        if self.fail_teardown:
            raise ConnectionError(f"logout from the vault failed with {self._quote()}")

    def reveal(self) -> str:
        """What an asset might carelessly put in an error message."""
        return self._quote()
