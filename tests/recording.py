"""Resources that write their own lifecycle records, for tests on every executor.

Each record is one JSON line appended to a file named by the resource's ``record`` field:
``{"event": "setup"|"teardown"|"enter"|"exit"|"use", "key": ..., "label": ..., "pid": ...}``.
Appends of short lines with O_APPEND are atomic, so several processes can share one file. The
records are the evidence for the lifecycle guarantees, counted per process.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

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


class Recorded(ConfigurableResource):
    """Records setup and teardown; can be told to fail in either."""

    record: str
    label: str
    fail_setup: bool = False
    fail_teardown: bool = False
    _up: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self._up:
            raise AssertionError(f"{self.label} set up twice on one instance")
        write(self.record, event="setup", key=context.resource_key, label=self.label)
        if self.fail_setup:
            raise RuntimeError(f"setup of {self.label} failed on purpose")
        self._up = True

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label=self.label)
        self._up = False
        if self.fail_teardown:
            raise RuntimeError(f"teardown of {self.label} failed on purpose")

    def use(self) -> str:
        """Called by assets: fails unless the resource is up."""
        if not self._up:
            raise AssertionError(f"{self.label} used while not up")
        write(self.record, event="use", key="", label=self.label)
        return self.label


class RecordedYield(ConfigurableResource):
    """Holds itself up in ``yield_for_execution``; records enter and exit."""

    record: str
    label: str
    fail_enter: bool = False
    _up: bool = PrivateAttr(default=False)

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[RecordedYield]:
        write(self.record, event="setup", key=context.resource_key, label=self.label)
        if self.fail_enter:
            raise RuntimeError(f"enter of {self.label} failed on purpose")
        self._up = True
        try:
            yield self
        finally:
            self._up = False
            write(self.record, event="teardown", key=context.resource_key, label=self.label)

    def use(self) -> str:
        if not self._up:
            raise AssertionError(f"{self.label} used while not up")
        write(self.record, event="use", key="", label=self.label)
        return self.label


class RecordedPair(ConfigurableResource):
    """Depends on another recorded resource (a nested resource field)."""

    record: str
    label: str
    inner: Recorded
    _up: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if not self.inner._up:
            raise AssertionError(f"{self.label} set up before its dependency")
        write(self.record, event="setup", key=context.resource_key, label=self.label)
        self._up = True

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label=self.label)
        self._up = False

    def use(self) -> str:
        if not self._up or not self.inner._up:
            raise AssertionError(f"{self.label} used while it or its dependency is not up")
        write(self.record, event="use", key="", label=self.label)
        return self.label
