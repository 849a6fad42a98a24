"""The worker process of the ``multiprocess`` executor: alive for the whole run.

Protocol, over one duplex pipe per worker, each message a cloudpickled tuple:

* caller -> worker: ``("run", key, {upstream key: pickled output})`` and ``("stop",)``;
* worker -> caller: ``("ready",)`` once the run is loaded, ``("event", event)`` as events happen,
  ``("done", StepResult, last)`` after each asset (``last`` when the worker is leaving because
  the asset was interrupted), ``("closed", [ShippedError])`` after its teardown, or
  ``("failed", ShippedError)`` if it could not load the run.

The worker tears down everything it brought up when it is told to stop, when the caller goes
away (end of file on the pipe), and on SIGINT (KeyboardInterrupt) or SIGTERM (SystemExit), which
interrupt an asset that is running. While it tears down it ignores both signals, so a second one
cannot cut a teardown short; the caller escalates to SIGKILL only when it must.

SIGUSR1 from the caller means the run's timeout passed: it interrupts the asset running (which
fails with :class:`host.RunTimeoutError`, see ``WorkerRun.run``) and is ignored at any other
time; the caller then says stop.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from host._events import Event
from host._executors._remote import StepResult, WorkerRun
from host._executors._shipping import dumps, loads
from host._interrupts import SignalExit
from host._timeouts import DeadlineExceeded

__all__ = ["TIMEOUT_SIGNAL", "main"]

#: What the caller sends a worker whose asset must stop because the run's timeout passed.
TIMEOUT_SIGNAL = signal.SIGUSR1

_SIGNALS = {signal.SIGINT, signal.SIGTERM, TIMEOUT_SIGNAL}


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SignalExit(128 + signum)


class _Running:
    """Whether an asset runs now: the timeout signal interrupts only that."""

    asset = False

    @classmethod
    def timeout(cls, signum: int, frame: FrameType | None) -> None:
        if cls.asset:
            raise DeadlineExceeded()


class _Channel:
    """The worker's end of the pipe: whole messages, never cut by a signal, one at a time."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.broken = False

    @contextmanager
    def _signals_held(self) -> Iterator[None]:
        # A signal handler raising mid-write would leave half a message in the pipe.
        if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "pthread_sigmask"
        ):
            yield
            return
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def send(self, message: tuple[Any, ...]) -> None:
        """Send ``message``; raises OSError if the caller is gone."""
        blob = dumps(message)
        with self._lock, self._signals_held():
            try:
                self._conn.send_bytes(blob)
            except OSError:
                self.broken = True
                raise

    def event(self, event: Event) -> None:
        """Send an event; dropped if the caller is gone (a teardown must not fail on it)."""
        if self.broken:
            return
        with suppress(OSError):
            self.send(("event", event))

    def recv(self) -> tuple[Any, ...]:
        """The next message from the caller; ``("stop",)`` once the caller is gone."""
        try:
            message: tuple[Any, ...] = loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            return ("stop",)
        return message


def _serve(channel: _Channel, run: WorkerRun) -> None:
    """Run assets as the caller sends them, until it says stop (or is gone)."""
    while True:
        message = channel.recv()
        if message[0] == "stop":
            return
        _, key, inputs = message
        try:
            _Running.asset = True
            try:
                result = run.run(key, inputs)
            finally:
                _Running.asset = False
        except BaseException as exc:  # interrupted: report the asset, then tear down
            packed = WorkerRun.pack(exc, run.runtime.secrets)
            failed = StepResult(key, False, error=packed, pid=os.getpid())
            channel.send(("done", failed, True))
            raise
        channel.send(("done", result, False))


def main(conn: Connection, payload: bytes) -> None:
    """Take part in one run: load it, run assets on request, tear down, report, exit."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(TIMEOUT_SIGNAL, _Running.timeout)
    channel = _Channel(conn)
    try:
        run = WorkerRun(loads(payload), channel.event)
    except BaseException as exc:
        channel.send(("failed", WorkerRun.pack(exc)))
        return
    error: BaseException | None = None
    try:
        channel.send(("ready",))
        _serve(channel, run)
    except BaseException as exc:
        error = exc
    finally:
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
    failures = run.close(error)
    if not channel.broken:
        with suppress(OSError):
            channel.send(("closed", failures))
    conn.close()
