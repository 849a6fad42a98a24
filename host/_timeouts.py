"""Deadlines: stop a call that runs too long by raising an exception in the thread running it.

A :class:`Deadline` is armed around a block (a resource phase, a whole run). When its time
passes while the block still runs, :class:`DeadlineExceeded` is raised in the thread that armed
it, wherever that thread is:

* in the **main thread**, a helper thread sends ``SIGALRM`` to it (``signal.pthread_kill``) and
  a handler raises. A signal also interrupts a blocking system call (``time.sleep``, a socket
  read, ``select``), so a call waiting on the operating system is stopped too. The host owns
  ``SIGALRM`` while a deadline is armed in the main thread; the previous handler comes back
  when the last one is disarmed.
* in **any other thread**, a helper thread schedules the exception with
  ``PyThreadState_SetAsyncExc``. CPython raises it the next time that thread runs Python
  bytecode, so a Python loop is stopped (``while not ready(): time.sleep(0.1)``), but a single
  blocking call in C (one long ``time.sleep``, a read without a timeout, an event loop waiting
  in ``select``) is stopped only when it returns.

Neither can stop C code that never returns to Python; no thread can be killed. A process can:
the process executors use that as their last resort (see ``specs/reliability.md``).

``DeadlineExceeded`` derives from ``BaseException``, like ``KeyboardInterrupt``, so that code
catching ``Exception`` does not swallow it; the host turns it into a
:class:`host.ResourceSetupError`, :class:`host.ResourceTeardownError` or
:class:`host.RunTimeoutError` naming what timed out.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from types import FrameType, TracebackType
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from host._errors import HostInterrupt

__all__ = [
    "Deadline",
    "DeadlineExceeded",
    "PhaseTimeouts",
    "Seconds",
    "cancel_interrupt",
    "interrupt_thread",
    "interrupts_sent",
    "note_interrupt",
    "phase_timeouts",
]

#: A timeout in seconds: a positive, finite number (at most what ``threading`` can wait).
Seconds = Annotated[float, Field(gt=0, le=threading.TIMEOUT_MAX, allow_inf_nan=False)]


class PhaseTimeouts(BaseModel):
    """How long one resource may take to come up and to go down; ``None``: no limit.

    Attributes:
        setup: seconds for bringing the resource up (entering ``yield_for_execution``, which by
            default runs ``setup_for_execution``).
        teardown: seconds for taking it down (leaving ``yield_for_execution``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    setup: Seconds | None = None
    teardown: Seconds | None = None


def phase_timeouts(cls: type, given: PhaseTimeouts | None = None) -> PhaseTimeouts:
    """The setup and teardown timeouts of a resource of class ``cls`` in a run.

    What the run gives for the key (``resource_timeouts``, ``setup_timeout`` /
    ``teardown_timeout`` in the run config) wins, phase by phase, over the class's own
    ``host_setup_timeout`` / ``host_teardown_timeout``. The one rule: the resource stack of each
    process and the caller of a run on worker processes (which must know how long a worker may
    take to take a resource down) both ask here.
    """
    setup = getattr(cls, "host_setup_timeout", None)
    teardown = getattr(cls, "host_teardown_timeout", None)
    if given is not None:
        setup = given.setup if given.setup is not None else setup
        teardown = given.teardown if given.teardown is not None else teardown
    return PhaseTimeouts.model_construct(setup=setup, teardown=teardown)


class DeadlineExceeded(BaseException, HostInterrupt):
    """Raised in a thread whose deadline passed (see :class:`Deadline`)."""


_SENT_LOCK = threading.Lock()
_SENT: dict[int, int] = {}  # thread ident -> interrupts sent to it from outside


def note_interrupt(ident: int) -> None:
    """Count an interrupt sent to thread ``ident`` from outside the code it runs.

    :func:`interrupt_thread` counts its own; a signal handler that makes the interrupted code
    raise (a second Ctrl-C abandoning a teardown, see :func:`host._interrupts.signals_held`)
    counts it with this before it raises.
    """
    with _SENT_LOCK:
        _SENT[ident] = _SENT.get(ident, 0) + 1


def interrupts_sent(ident: int | None = None) -> int:
    """How many interrupts were sent to thread ``ident`` (default: this one) so far.

    Compare the count before and after a call to tell an exception the call's own code raised
    from one sent to it from outside (by a signal or another thread): the resource stack records
    the first as the resource's teardown failure and lets the second go on.
    """
    with _SENT_LOCK:
        return _SENT.get(threading.get_ident() if ident is None else ident, 0)


def interrupt_thread(
    ident: int, exc_type: type[BaseException] = DeadlineExceeded, *, counted: bool = True
) -> bool:
    """Schedule ``exc_type`` to be raised in thread ``ident`` when it next runs Python code.

    Args:
        ident: the thread.
        exc_type: what to raise there.
        counted: count the interrupt (:func:`interrupts_sent`); a :class:`Deadline` does not
            count its own (the code it bounds knows by ``Deadline.expired``).

    Returns:
        Whether the thread exists (and the exception was scheduled).
    """
    if counted:
        note_interrupt(ident)
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc_type)
    )
    if done > 1:  # never expected: undo rather than interrupt several threads
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
        return False
    return bool(done)


def cancel_interrupt(ident: int) -> None:
    """Drop an exception scheduled with :func:`interrupt_thread` that was not raised yet."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)


class _MainThreadAlarm:
    """The ``SIGALRM`` handler shared by the deadlines armed in the main thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.armed: set[Deadline] = set()
        self.fired: set[Deadline] = set()
        self.previous: signal._HANDLER = None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        with self.lock:
            due = self.fired & self.armed
            self.fired.clear()
            for deadline in due:  # raised once: done, whether or not __exit__ runs
                deadline._armed = False
            self.armed -= due
            empty = not self.armed
        if due:
            if empty:
                self._restore()
            raise DeadlineExceeded()

    def add(self, deadline: Deadline) -> None:
        with self.lock:
            first = not self.armed
            self.armed.add(deadline)
        if first:
            self.previous = signal.signal(signal.SIGALRM, self.handler)

    def remove(self, deadline: Deadline) -> None:
        with self.lock:
            if deadline not in self.armed:
                return
            self.armed.discard(deadline)
            self.fired.discard(deadline)
            empty = not self.armed
        if empty:
            self._restore()

    def _restore(self) -> None:
        # A SIGALRM already sent must not reach the previous handler (SIG_DFL would end the
        # process): hold it, take it off the pending set, then put the previous handler back.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            while signal.SIGALRM in signal.sigpending():
                signal.sigtimedwait({signal.SIGALRM}, 0)
            signal.signal(signal.SIGALRM, self.previous or signal.SIG_DFL)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})

    def fire(self, deadline: Deadline) -> None:
        with self.lock:
            if deadline not in self.armed:
                return
            self.fired.add(deadline)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGALRM)


_ALARM = _MainThreadAlarm()


class Deadline:
    """Raise :class:`DeadlineExceeded` in this thread if the block runs longer than ``seconds``.

    Use it as a context manager, once. ``None`` (or no positive time) arms nothing. After the
    block, :attr:`expired` says whether the time passed while it ran, whether or not the
    exception reached the block (it cannot interrupt C code that never returns to Python); an
    exception that arrives while the block is being left is raised from ``__exit__``. Nothing
    is raised once ``__exit__`` has returned.

    A primitive: how resource timeouts and the run's timeout apply to teardown is decided in
    :mod:`host._teardown`.

    Args:
        seconds: how long the block may run.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        #: Whether the time passed before the block was left.
        self.expired = False
        self._lock = threading.Lock()
        self._armed = False
        self._ident = 0
        self._main = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Deadline:
        if self.seconds is None or self.seconds <= 0:
            return self
        thread = threading.current_thread()
        self._ident = thread.ident or 0
        self._main = thread is threading.main_thread() and hasattr(signal, "pthread_kill")
        if self._main:
            _ALARM.add(self)
        self._armed = True
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.name = "host-deadline"
        self._timer.daemon = True
        self._timer.start()
        return self

    def _fire(self) -> None:
        with self._lock:
            if not self._armed:
                return
            self.expired = True
            if self._main:
                _ALARM.fire(self)
            else:
                interrupt_thread(self._ident, counted=False)

    def disarm(self) -> None:
        """Stop the clock now (idempotent); the time is no longer counted."""
        if self._timer is None:
            return
        with self._lock:
            was_armed, self._armed = self._armed, False
            fired = self.expired
        self._timer.cancel()
        if not was_armed:
            return
        if self._main:
            _ALARM.remove(self)
        elif fired:
            cancel_interrupt(self._ident)  # raised already, or now never

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disarm()
