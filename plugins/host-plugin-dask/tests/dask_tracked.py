"""A resource that writes its lifecycle, with the pid, to a JSON-lines file; helpers to read it.

Shared by the tests and the scripts they start; importable in the Dask workers (this folder is
on their ``sys.path``, inherited from the test session).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

from host import ConfigurableResource, InitResourceContext


def write(path: str, event: str, label: str) -> None:
    """Append one record (short O_APPEND writes do not interleave between processes)."""
    line = json.dumps({"event": event, "label": label, "pid": os.getpid()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read(path: str | Path) -> list[dict[str, Any]]:
    """The records in ``path``, in order."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def count(records: list[dict[str, Any]], event: str) -> Counter[tuple[str, int]]:
    """How many ``event`` records each (label, pid) wrote."""
    return Counter((r["label"], r["pid"]) for r in records if r["event"] == event)


class Tracked(ConfigurableResource):
    """Records setup, teardown and each use; a use fails unless the resource is up."""

    path: str
    label: str
    token: str = ""
    _up: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        assert not self._up, "set up twice on one instance"
        write(self.path, "setup", self.label)
        self._up = True

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.path, "teardown", self.label)
        self._up = False

    def use(self) -> int:
        """Record a use; return this process's pid."""
        assert self._up, f"{self.label} used while not up"
        write(self.path, "use", self.label)
        return os.getpid()
