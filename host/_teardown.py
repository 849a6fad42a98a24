"""Teardown, all of it: how the resources brought up in one process go down.

This is the one module to open for "how is a resource torn down". The policy:

* **Reverse order.** Every resource whose context manager was entered is pushed on a
  :class:`TeardownStack`; leaving it takes them down in reverse order of bring-up, passing on
  the exception leaving the run (if any) to each context manager, as ``with`` would.
* **Nothing cuts a teardown short but its own timeout.** The run's timeout is disarmed when
  teardown starts (each resource has its own ``teardown_timeout``), and SIGINT/SIGTERM are held
  until every resource is down (:func:`host._interrupts.signals_held`; a second Ctrl-C goes
  on at once).
* **What is a teardown failure, and what ends a teardown** (:func:`tear_down_one`): whatever
  the resource's own code raises is its failure, recorded as a
  :class:`~host._errors.ResourceTeardownError`, and the others go on going down; so is a
  teardown stopped by, or overrunning, its timeout. What is sent from outside (a second Ctrl-C,
  an interrupt from another thread, another deadline, the host's ``SignalExit``) ends it.
* **Several threads** (``threads=True``, a worker running assets in threads at once): the
  teardown runs under a lock, and once it has run nothing more comes up in that process
  (:func:`ended_error`); a resource that was coming up meanwhile is taken down by the thread
  that brought it up.

Elsewhere, only what must be: the ``host_resource_yield`` hookspec and the built-in default
yield (setup, yield, teardown in a ``finally``), and the primitives this module uses
(:class:`host._timeouts.Deadline`, :func:`host._interrupts.signals_held`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import threading
from types import TracebackType
from typing import Any

from host._errors import HostInterrupt, ResourceSetupError, ResourceTeardownError
from host._events import describe_exception
from host._interrupts import signals_held
from host._runtime import ProcessRuntime, resource_failure
from host._timeouts import Deadline, DeadlineExceeded, interrupts_sent

__all__ = ["TeardownStack", "close_abandoned", "ended_error", "tear_down_one"]


class TeardownStack:
    """The resources up in one process for one run, each with how it goes down.

    Args:
        runtime: the run's runtime here (its run deadline, phases, secrets, and the run-wide
            list of teardown failures).
        threads: several threads may bring resources up and tear down at once: teardown then
            runs under a lock, and :attr:`down` says it has run.

    Attributes:
        teardown_errors: the teardown failures of this stack, in the order they happened (also
            appended to ``runtime.teardown_errors``).
        down: teardown has started (always false without ``threads``: a stack of one thread
            may be used again after it was torn down).
    """

    def __init__(self, runtime: ProcessRuntime, *, threads: bool = False) -> None:
        self._runtime = runtime
        self._stack = contextlib.ExitStack()
        self._exit_lock = threading.Lock() if threads else None
        self.down = False
        self.teardown_errors: list[ResourceTeardownError] = []

    def push(
        self,
        key: str,
        cls: type,
        cm: contextlib.AbstractContextManager[Any],
        timeout: float | None,
    ) -> None:
        """Resource ``key`` is up: take it down (within ``timeout`` s) before those before it."""
        self._stack.push(functools.partial(self._exit_one, key, cls, cm, timeout))

    def take_down_now(
        self, key: str, cls: type, cm: contextlib.AbstractContextManager[Any], timeout: float | None
    ) -> None:
        """Take resource ``key`` down at once (it came up too late), as every teardown: signals
        wait until it is down."""
        with signals_held():
            self._exit_one(key, cls, cm, timeout, None, None, None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Take every resource pushed down, in reverse order; ``exc`` is what leaves the run."""
        if self._exit_lock is None:
            self._exit(exc_type, exc, tb)
            return
        self.down = True
        with self._exit_lock:
            self._exit(exc_type, exc, tb)

    def _exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The run's own timeout does not cut teardowns short (each has its own), and neither
        # does a signal: SIGINT/SIGTERM wait until every resource is down.
        if self._runtime.run_deadline is not None:
            self._runtime.run_deadline.disarm()
        with signals_held():
            self._stack.__exit__(exc_type, exc, tb)

    def _exit_one(
        self,
        key: str,
        cls: type,
        cm: contextlib.AbstractContextManager[Any],
        timeout: float | None,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        failure = tear_down_one(self._runtime, key, cls, cm, timeout, exc_type, exc, tb)
        if failure is not None:
            self.teardown_errors.append(failure)
            self._runtime.teardown_errors.append(failure)
        return False  # never swallow what is leaving the run


def tear_down_one(
    runtime: ProcessRuntime,
    key: str,
    cls: type,
    cm: contextlib.AbstractContextManager[Any],
    timeout: float | None,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> ResourceTeardownError | None:
    """Take resource ``key`` down; give how that failed, never raise what its code raised.

    Whatever the resource's own teardown code raises, ``Exception`` or not
    (``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``, a ``BaseException`` of its
    own), is its teardown failure: given as a :class:`ResourceTeardownError` chaining it, and
    the other resources go on going down. A teardown stopped by its ``teardown_timeout``, or
    one that went on past it (it caught the interruption), is a failure too. What is sent from
    outside goes on, ending the teardown: a second Ctrl-C (see :func:`signals_held`), an
    interrupt from another thread, another deadline (the run's), the host's own
    :class:`SignalExit`. So does the exception leaving the run, when the context manager
    re-raises it (then ``None`` is given).
    """
    deadline = Deadline(timeout)
    sent = interrupts_sent()
    try:
        with deadline:
            runtime.phase("yield_exit", key, lambda: cm.__exit__(exc_type, exc, tb))
    except BaseException as error:
        if error is exc:  # the context manager re-raised what it was given
            return None
        if isinstance(error, DeadlineExceeded) and deadline.expired:
            cause = TimeoutError(f"resource {key!r} did not go down within {timeout:g} s")
            cause.__cause__ = error
            return _failed(
                runtime,
                key,
                cls,
                f"it did not go down within its teardown_timeout of {timeout:g} s and was "
                f"stopped; what it holds may not be released",
                cause,
            )
        if isinstance(error, HostInterrupt) or interrupts_sent() != sent:
            raise  # sent from outside the resource's code: it ends the teardown
        detail = describe_exception(error)
        if not isinstance(error, Exception):
            detail += (
                f" ({type(error).__name__} is not an Exception: raised by its own teardown "
                f"code, it is this resource's teardown failure, and it ends neither the "
                f"run nor the process. Raise an Exception to report a failed teardown)"
            )
        if deadline.expired:
            detail += (
                f" (raised after its teardown_timeout of {timeout:g} s had passed: it did "
                f"not stop when interrupted)"
            )
        return _failed(runtime, key, cls, detail, error)
    if deadline.expired:  # it went down, but only after the time it was given
        cause = TimeoutError(
            f"resource {key!r} went down only after its teardown_timeout of {timeout:g} s"
        )
        return _failed(
            runtime,
            key,
            cls,
            f"it overran its teardown_timeout of {timeout:g} s: it did not stop when "
            f"interrupted (it caught the interruption and carried on, or was in code that "
            f"cannot be interrupted) and went down late. Let DeadlineExceeded and "
            f"asyncio.CancelledError go on in its teardown, or give it more time "
            f"(teardown_timeout for the key, or host_teardown_timeout on the class)",
            cause,
        )
    return None


def _failed(
    runtime: ProcessRuntime, key: str, cls: type, detail: str, cause: BaseException
) -> ResourceTeardownError:
    phase = runtime.failed_phase(key, "yield_exit")
    return resource_failure(
        ResourceTeardownError, key, cls, "tear down", phase, detail, runtime.secrets, cause
    )


def ended_error(key: str) -> ResourceSetupError:
    """Why resource ``key`` is not brought up: teardown has run in this process already."""
    return ResourceSetupError(
        f"resource {key!r} was not brought up in process {os.getpid()}: the run has ended "
        f"here and its resources were torn down.",
        resource_key=key,
        phase="setup",
    )


def close_abandoned(cm: object) -> None:
    """Close a generator context manager whose ``__enter__`` was interrupted.

    If the interrupt came after the generator reached its ``yield`` (the resource is up), its
    ``finally`` runs now, not whenever the object is collected; otherwise this does nothing.
    """
    generator = getattr(cm, "gen", None)
    if inspect.isgenerator(generator):
        with contextlib.suppress(Exception):
            generator.close()
