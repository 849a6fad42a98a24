"""The worker process of the ``multiprocess`` executor: alive for the whole run.

Protocol, over one duplex pipe per worker, each message a cloudpickled tuple:

* caller -> worker: ``("run", key, {upstream key: pickled output})`` and ``("stop",)``;
* worker -> caller: ``("ready",)`` once the run is loaded, ``("event", event)`` as events happen,
  ``("done", StepResult, last)`` after each asset (``last`` when the worker is leaving because
  the asset was interrupted), ``("closed", [ShippedError])`` after its teardown, or
  ``("failed", ShippedError)`` if it could not load the run.

In a :class:`host.Session` (the run's payload has a ``session_id``) the worker stays for the
next run after ``("closed", ...)``: the caller sends ``("load", payload)`` (the worker answers as
for its first run) or ``("end",)``; then, or when the pipe ends, or on SIGINT, SIGTERM or SIGHUP
between runs, or when a run here was interrupted, it tears down the session's resources in
this process (``host._session_resources``), sends their events and ``("ended",
[ShippedError])``, and exits.

The worker tears down everything it brought up when it is told to stop, when the caller goes
away (end of file on the pipe; or, while an asset runs, the caller's process gone: it then
sends itself SIGTERM, within :data:`CALLER_CHECK` seconds), and on SIGINT (KeyboardInterrupt),
SIGTERM or SIGHUP (SystemExit of 128 + the signal number), which interrupt an asset that is
running. While it tears down it
ignores them, so a second one cannot cut a teardown short; the caller escalates to SIGKILL only
when it must (see the ``multiprocess`` executor). How the resources go down (order, failures,
timeouts) is the policy of ``host._teardown``, as in every process.

SIGUSR1 from the caller means the run's timeout passed: it interrupts the asset running (which
fails with :class:`host.RunTimeoutError`, see ``WorkerRun.run``) and is ignored at any other
time; the caller then says stop.

Output: the worker's standard output and error (file descriptors 1 and 2, so whatever writes
there: ``print``, ``warnings``, tracebacks printed by ``threading`` or ``multiprocessing``, C
code) go to pipes the caller reads, masks, and writes to its own ``sys.stdout`` and
``sys.stderr``. Log records go over the message pipe as ``("log", fields)``
(:class:`~host.executors.LogForwarder`), masked here and again in the caller, which
re-emits them on the same loggers.

Threads: when its teardown is done, the worker logs each non-daemon thread that a resource or
an asset left running, and exits without waiting for them.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from host._events import ErrorInfo, Event
from host._interrupts import TERMINATING, SignalExit
from host._processes import process_start
from host._secrets import mask_error, mask_event
from host._session_resources import close_session_resources
from host._timeouts import DeadlineExceeded
from host.executors._output import LogForwarder
from host.executors._shipping import ShippedError, dumps, loads
from host.executors._worker_run import StepResult, WorkerRun

__all__ = ["TIMEOUT_SIGNAL", "main"]

#: What the caller sends a worker whose asset must stop because the run's timeout passed.
TIMEOUT_SIGNAL = signal.SIGUSR1

_SIGNALS = {signal.SIGINT, *TERMINATING, TIMEOUT_SIGNAL}

#: How often a worker looks whether the process that started it is still there (seconds).
CALLER_CHECK = 0.25


def _watch_caller(caller: int, stop: threading.Event) -> None:
    """When the caller process is gone (killed with SIGKILL, so it could not say stop), send
    this process SIGTERM, as the caller would have: the asset running is interrupted and what
    came up here goes down. The end of the message pipe says the same, but only once the
    worker reads it again, after its asset."""
    started = process_start(caller)  # the caller, not a later process given its pid
    parent = os.getppid()
    while not stop.wait(CALLER_CHECK):
        gone = process_start(caller) != started if started is not None else (
            os.getppid() != parent  # no /proc: the parent is the caller (spawn)
        )
        if gone:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _start_watching_caller(caller: int) -> threading.Event:
    stop = threading.Event()
    threading.Thread(
        target=_watch_caller, args=(caller, stop), name="host caller watch", daemon=True
    ).start()
    return stop


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SignalExit(128 + signum)


class _Running:
    """The run here, once loaded: the timeout signal interrupts only an asset it runs."""

    run: WorkerRun | None = None

    @classmethod
    def timeout(cls, signum: int, frame: FrameType | None) -> None:
        if cls.run is not None and cls.run.running:
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
            result = run.run(key, inputs)
        except BaseException as exc:  # interrupted: report the asset, then tear down
            channel.send(("done", StepResult.failed(key, exc, run.runtime.secrets), True))
            raise
        channel.send(("done", result, False))


def _redirect(stdout: Connection | None, stderr: Connection | None) -> None:
    """Point file descriptors 1 and 2 at the caller's output pipes (line-buffered)."""
    for fd, pipe, stream in ((1, stdout, sys.stdout), (2, stderr, sys.stderr)):
        if pipe is None:
            continue
        with suppress(Exception):
            stream.flush()
        os.dup2(pipe.fileno(), fd)
        pipe.close()
        if hasattr(stream, "reconfigure"):
            with suppress(Exception):
                stream.reconfigure(line_buffering=True)


def _forward_logs(
    channel: _Channel, secrets: Callable[[], Collection[str]], levels: Mapping[str, int] | None
) -> None:
    """Send every log record of this process to the caller (masked), at the caller's levels."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(LogForwarder(lambda fields: channel.send(("log", fields)), secrets))
    for name, level in (levels or {"": logging.WARNING}).items():
        logging.getLogger(name or None).setLevel(level)


def _exit_now() -> None:
    """Leave without waiting for non-daemon threads (they were reported)."""
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(0)


def _install_handlers() -> None:
    """SIGINT raises KeyboardInterrupt, SIGTERM/SIGHUP SignalExit, SIGUSR1 stops an asset."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in TERMINATING:  # SIGTERM, SIGHUP
        signal.signal(signum, _sigterm)
    signal.signal(TIMEOUT_SIGNAL, _Running.timeout)


def _ignore_signals() -> None:
    for signum in _SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def main(
    conn: Connection,
    payload: bytes,
    stdout: Connection | None = None,
    stderr: Connection | None = None,
    caller: int | None = None,
) -> None:
    """Take part in one run (or, in a :class:`host.Session`, in each run the caller sends
    until the session ends): load it, run assets on request, tear down, report, exit.

    Args:
        conn: the message pipe to the caller.
        payload: the pickled :class:`~host.executors.RunPayload` of the first run.
        stdout / stderr: write ends of the pipes the caller reads this process's output from
            (file descriptors 1 and 2 are pointed at them); ``None``: keep the inherited ones.
        caller: the caller's pid (default: the parent process; under ``forkserver`` the
            parent is the fork server, which may outlive the caller).
    """
    _redirect(stdout, stderr)
    watching = _start_watching_caller(os.getppid() if caller is None else caller)
    channel = _Channel(conn)
    lingering = 0
    session: str | None = None
    secrets: Collection[str] = ()
    while True:
        _install_handlers()
        outcome = _one_run(channel, payload)
        if outcome is None:  # it could not load the run
            break
        run, error = outcome
        session, secrets = run.payload.session_id, run.runtime.secrets
        lingering += run.report_lingering_threads(f"worker process {os.getpid()}")
        if session is None or channel.broken or error is not None:
            break  # (an interrupt or a signal here ends the session here too)
        message = _between_runs(channel)
        if message[0] != "load":
            break
        payload = message[1]
    if session is not None:
        _end_session(channel, session, secrets)
    watching.set()
    conn.close()
    if lingering:
        _exit_now()


def _one_run(channel: _Channel, payload: bytes) -> tuple[WorkerRun, BaseException | None] | None:
    """Load one run, serve it, tear it down and say so; ``None`` if it could not be loaded."""
    known: list[Collection[str]] = [()]  # the run's secrets here, once the run is loaded
    try:
        loaded = loads(payload)
        _forward_logs(channel, lambda: known[0], loaded.log_levels)
        run = _Running.run = WorkerRun(loaded, channel.event)
        known[0] = run.runtime.secrets  # grows as resources come up (EnvVars read here)
    except BaseException as exc:
        with suppress(OSError):
            channel.send(("failed", WorkerRun.pack(exc, known[0])))
        return None
    error: BaseException | None = None
    try:
        channel.send(("ready",))
        _serve(channel, run)
    except BaseException as exc:
        error = exc
    finally:
        _ignore_signals()
    failures = run.close(error)
    if not channel.broken:
        with suppress(OSError):
            channel.send(("closed", failures))
    return run, error


def _between_runs(channel: _Channel) -> tuple[Any, ...]:
    """Wait for the session's next run (``("load", payload)``); anything else, the end of the
    pipe, SIGINT, SIGTERM or SIGHUP ends the session here (``("end",)``)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in TERMINATING:
        signal.signal(signum, _sigterm)
    try:
        return channel.recv()
    except BaseException:
        return ("end",)
    finally:
        _ignore_signals()


def _end_session(channel: _Channel, session: str, secrets: Collection[str]) -> None:
    """Tear down the session's resources here (signals ignored), report, ``("ended", ...)``."""
    _ignore_signals()
    pid = os.getpid()
    failures = close_session_resources(
        session, lambda event: channel.event(mask_event(event, secrets))
    )
    shipped = [
        ShippedError.pack(
            error, mask_error(ErrorInfo.from_exception(error, error.resource_key), secrets), pid
        )
        for error in failures
    ]
    if not channel.broken:
        with suppress(OSError):
            channel.send(("ended", shipped))
