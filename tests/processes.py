"""Child processes of the test process, read from /proc: proof that a run leaves none behind."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

#: Child processes multiprocessing itself keeps for the life of the caller (not run workers).
HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def children() -> dict[int, str]:
    """pid -> command line of every child of this process (zombies included), from /proc."""
    me = os.getpid()
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def new_children(before: set[int]) -> dict[int, str]:
    """Children that were not in ``before`` (multiprocessing's own helpers left out)."""
    return {
        pid: cmd
        for pid, cmd in children().items()
        if pid not in before and not any(helper in cmd for helper in HELPERS)
    }


def assert_no_child_left(before: set[int]) -> None:
    """Fail if a child process started since ``before`` (a set of pids) is still there."""
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("host-")]
    left = new_children(before)
    assert not left, f"child processes left behind: {left}"
