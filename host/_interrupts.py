"""SIGINT, SIGTERM and SIGHUP around a run: each ends the run like Ctrl-C; none cuts a teardown.

SIGHUP (the terminal that started the run went away) is treated exactly like SIGTERM: both are
"terminate" requests. Python delivers signals to the main thread only, so these helpers act
only there (a run in another thread is not interrupted by signals; its teardown cannot be cut
by one either).

* :func:`sigterm_raises_systemexit`: while the run is on, SIGTERM raises ``SystemExit(143)``
  and SIGHUP ``SystemExit(129)`` (``128 +`` the signal number, the exit status a shell reports
  for a process killed by that signal; a :class:`SignalExit`, told apart from a ``sys.exit()``
  in asset code), so the run ends as with ``KeyboardInterrupt``: every resource that came up is
  torn down, then the exception goes on. Once one of them arrived, further SIGTERMs and SIGHUPs
  are ignored.
* :func:`signals_held`: while resources are torn down, SIGINT, SIGTERM and SIGHUP are held; the
  first of each takes effect when the block is over (re-sent to this process, with the handlers
  that were in place before the block). A second SIGINT while one is held (Ctrl-C pressed
  twice) takes effect at once: that is how a user abandons a teardown that hangs (the interrupt
  is counted for the main thread, :func:`host._timeouts.interrupts_sent`, so that the resource
  stack lets it go on rather than record it as the resource's own teardown failure). Further
  SIGTERMs and SIGHUPs are dropped, as process managers repeat SIGTERM before they send
  SIGKILL.
* :class:`DeferredSignals`: for code that coordinates other processes (reading messages from
  pipes), where an exception raised in the middle of a read would lose the rest of a message:
  SIGINT, SIGTERM and SIGHUP are only noted, wake up a wait on
  :attr:`DeferredSignals.waitable`, and take effect where the code calls
  :meth:`DeferredSignals.deliver`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

from host._errors import HostInterrupt
from host._timeouts import note_interrupt

__all__ = [
    "HELD_SIGNALS",
    "TERMINATING",
    "DeferredSignals",
    "SignalExit",
    "signals_held",
    "sigterm_raises_systemexit",
]

#: The signals that ask a process to terminate: each ends a run with ``SystemExit(128 + n)``.
TERMINATING: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)

#: The signals that end a run (and are held while resources are torn down).
HELD_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, *TERMINATING)
_HELD = HELD_SIGNALS


class SignalExit(SystemExit, HostInterrupt):
    """The ``SystemExit`` the host raises itself for a signal that ends the run (SIGTERM).

    Code that must tell the host's own exit from a ``sys.exit()`` called by asset or resource
    code checks for this class (never the exit code: a user may call ``sys.exit(143)`` too).
    """


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def sigterm_raises_systemexit() -> Iterator[None]:
    """While the run is in the main thread, SIGTERM and SIGHUP raise ``SystemExit(128 + n)``.

    ``SystemExit(143)`` for SIGTERM, ``SystemExit(129)`` for SIGHUP, so that every resource
    that came up is torn down. Once one arrived, further SIGTERMs and SIGHUPs are ignored; the
    previous handlers come back after the block.
    """
    if not _in_main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        for terminating in TERMINATING:
            signal.signal(terminating, signal.SIG_IGN)
        raise SignalExit(128 + signum)

    previous = {signum: signal.signal(signum, handler) for signum in TERMINATING}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before if before is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP for the block (main thread only); see the module
    docstring. The teardown policy that holds them lives in :mod:`host._teardown`."""
    if not _in_main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in _HELD}
    held: list[signal.Signals] = []

    def deliver(signum: signal.Signals) -> None:
        signal.signal(signum, previous[signum] or signal.SIG_DFL)
        signal.raise_signal(signum)

    def handler(number: int, frame: FrameType | None) -> None:
        signum = signal.Signals(number)
        if signum not in held:
            held.append(signum)
        elif signum == signal.SIGINT:
            held.remove(signum)
            note_interrupt(threading.get_ident())  # what it raises is not the teardown's own
            deliver(signum)  # the handler that was in place runs now

    for signum in _HELD:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum in _HELD:
            if signal.getsignal(signum) is handler:
                signal.signal(signum, previous[signum] or signal.SIG_DFL)
        for signum in held:
            deliver(signum)


class DeferredSignals:
    """SIGINT, SIGTERM and SIGHUP noted while the block runs, acting only at :meth:`deliver`.

    In the main thread only (elsewhere nothing changes: signals do not reach other threads).
    A signal noted is delivered by putting back the handlers that were in place and sending it
    again to this process: the handler then raises (``KeyboardInterrupt``, the run's
    ``SystemExit(143)`` or ``SystemExit(129)``) from :meth:`deliver`. Leaving the block
    delivers what is still noted.
    """

    def __init__(self) -> None:
        self._noted: list[signal.Signals] = []
        self._previous: dict[signal.Signals, Any] = {}
        self._pipe: tuple[int, int] | None = None

    @property
    def waitable(self) -> list[int]:
        """A file descriptor that becomes readable when a signal is noted (to wait on)."""
        return [self._pipe[0]] if self._pipe is not None else []

    def __enter__(self) -> DeferredSignals:
        if _in_main_thread():
            read, write = os.pipe()
            os.set_blocking(read, False)
            os.set_blocking(write, False)
            self._pipe = (read, write)
            self.arm()
        return self

    def arm(self) -> None:
        """(Again) note signals instead of acting on them."""
        if self._pipe is None:
            return
        for signum in _HELD:
            current = signal.getsignal(signum)
            if current != self._note:
                self._previous[signum] = current
                signal.signal(signum, self._note)

    def _note(self, number: int, frame: FrameType | None) -> None:
        signum = signal.Signals(number)
        if signum not in self._noted:
            self._noted.append(signum)
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                os.write(self._pipe[1], b"\0")

    def _disarm(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def deliver(self) -> None:
        """Let the signals noted so far act now (their handlers may raise here)."""
        if self._pipe is None:
            return
        with contextlib.suppress(OSError):
            while os.read(self._pipe[0], 64):
                pass
        if not self._noted:
            return
        noted, self._noted = self._noted, []
        self._disarm()
        for signum in noted:
            signal.raise_signal(signum)
        self.arm()  # nothing raised (the signal is ignored): keep noting

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pipe is None:
            return
        self._disarm()
        for fd in self._pipe:
            os.close(fd)
        self._pipe = None
        noted, self._noted = self._noted, []
        for signum in noted:
            signal.raise_signal(signum)
