"""The caller's handle on one ``multiprocess`` worker process: its pipes and how it ended.

Each worker has a duplex message pipe (cloudpickled tuples, see :mod:`host.executors._worker`)
and two output pipes, its file descriptors 1 and 2, which the caller reads without waiting,
masks, and writes to its own ``sys.stdout`` and ``sys.stderr`` a whole line at a time.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Literal

from host.executors._output import write_output
from host.executors._shipping import dumps

__all__ = ["Stream", "Worker", "how_it_ended"]


def how_it_ended(exitcode: int | None) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if exitcode is None:
        return "it did not exit"
    if exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class Stream:
    """One of a worker's output pipes (its fd 1 or 2), read here, masked, written to this
    process's ``sys.stdout`` or ``sys.stderr`` (as they are when written, so a redirection or
    a capture in the caller applies), a whole line at a time."""

    def __init__(self, conn: Connection, name: Literal["stdout", "stderr"]) -> None:
        self.conn = conn
        self.name = name
        self.pending = b""
        self.open = True
        os.set_blocking(conn.fileno(), False)

    def pump(self, secrets: set[str], final: bool = False) -> None:
        """Read what is there (never waits); write the complete lines (all of it if
        ``final``, or at the end of the pipe)."""
        while self.open:
            try:
                chunk = os.read(self.conn.fileno(), 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.open = False
                break
            self.pending += chunk
        cut = len(self.pending) if (final or not self.open) else self.pending.rfind(b"\n") + 1
        if cut <= 0:
            return
        data, self.pending = self.pending[:cut], self.pending[cut:]
        write_output(self.name, data.decode(errors="replace"), secrets)

    def close(self, secrets: set[str]) -> None:
        self.pump(secrets, final=True)
        self.open = False
        self.conn.close()


@dataclass(eq=False)
class Worker:
    """The caller's handle on one worker process."""

    index: int
    process: BaseProcess
    conn: Connection
    ready: bool = False  # it loaded the run
    busy: str | None = None  # the asset it runs
    started: float = 0.0  # when that asset was sent
    up: list[str] = field(default_factory=list)  # resources up there, in bring-up order
    #: session-scoped resources up there (a worker kept by a ``host.Session``), in order
    session_up: list[str] = field(default_factory=list)
    leaving: bool = False  # told to stop, or stopping on its own
    closed: bool = False  # it reported its teardown
    ending: bool = False  # its end is being handled
    gone: bool = False  # its process ended and was handled
    interrupted: float | None = None  # when it was told to stop its asset (timeout, signal)
    since: float | None = None  # leaving: when its current teardown started (at the latest)
    dropped: bool = False  # killed by the caller before it loaded the run (nothing was up)
    kept: bool = False  # taken from a session's idle workers for the run (it ran earlier ones)
    #: it ended the session there (interrupted during the run) and exits: not kept for the next
    ended_session: bool = False
    output: list[Stream] = field(default_factory=list)  # its stdout and stderr pipes

    def next_run(self) -> None:
        """A worker kept by a session takes part in another run: forget the last run's state
        (not the session resources it holds)."""
        self.ready = self.leaving = self.closed = self.ending = self.dropped = False
        self.busy = self.interrupted = self.since = None
        self.started = 0.0
        self.up = []

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def send(self, message: tuple[Any, ...]) -> None:
        self.conn.send_bytes(dumps(message))
