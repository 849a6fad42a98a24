"""One ``multiprocess`` run on its pool of workers: start, schedule, collect, shut down, reap.

The caller's side of :mod:`host.executors._worker`'s protocol. It reads every worker's
messages, output pipes and process sentinel with one ``wait``, acts on a SIGINT or SIGTERM only
between messages, and counts the limits only the caller can enforce: the run's timeout, the
grace period of an asset told to stop, and a teardown that hangs past its timeout (the worker
is killed and what it held reported).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from host._errors import WorkerDiedError, WorkerError
from host._events import ErrorInfo, ResourceEvent
from host._interrupts import DeferredSignals
from host.executors import _worker
from host.executors._caller import CallerRun, teardown_due
from host.executors._failures import teardown_errors
from host.executors._handles import Stream, Worker, how_it_ended
from host.executors._output import reemit_record
from host.executors._shipping import ShippedError, loads
from host.executors._warm import WarmWorkers
from host.executors._worker import TIMEOUT_SIGNAL
from host.executors._worker_run import StepResult
from host.executors.base import RunState

if TYPE_CHECKING:
    from host.executors.multiprocess import MultiprocessConfig

__all__ = ["Pool"]

log = logging.getLogger("host.executors")


class Pool(CallerRun):
    """One run on a pool of workers (see :class:`~host.executors.MultiprocessExecutor`)."""

    def __init__(
        self, run: RunState, config: MultiprocessConfig, warm: WarmWorkers | None = None
    ) -> None:
        super().__init__(run, config.grace_period)
        self.config = config
        #: The session's idle workers, when the run is part of a session (``host.Session``):
        #: the run takes its workers there first, and gives back those that tore it down.
        self.warm = warm
        self.workers: list[Worker] = []
        #: (multiprocessing context, payload) to start a worker that replaces a session's
        #: worker that died before it loaded the run; None once the run is ending.
        self._replacement: tuple[Any, bytes] | None = None
        self.startup_error: BaseException | None = None
        # SIGINT/SIGTERM act between messages, never in the middle of one (which would lose
        # the rest of it and leave the pipe unreadable).
        self.signals = DeferredSignals()

    # -- the run -----------------------------------------------------------------------------

    def execute(self) -> None:
        payload = self.payload(assets_by_reference=True)
        count = min(self.config.max_workers, len(self.run.plan.steps))
        if count == 0:
            return
        context = multiprocessing.get_context(self.config.start_method)
        with self.signals:
            try:
                self._replacement = (context, payload)
                if self.warm is not None:
                    for worker in self.warm.take(count):
                        worker.kept = True
                        self.workers.append(worker)
                        try:
                            worker.send(("load", payload))
                        except OSError:
                            self._ended(worker)
                while len(self._live()) < count:
                    index = len(self.workers) if self.warm is None else self.warm.next_index()
                    self._start(context, payload, index)
                    self.signals.deliver()
                self._schedule()
                self._shutdown(interrupt=False)
            except BaseException:
                self.signals.arm()  # a second SIGINT now ends the wait for the workers
                self._shutdown(interrupt=True)
                raise
            finally:
                self._reap()
        if self.startup_error is not None:
            raise WorkerError(
                f"run {self.run.run_id}: a worker process could not take part in the run: "
                f"{self.startup_error}"
            ) from self.startup_error
        self.end()

    def _start(self, context: Any, payload: bytes, index: int) -> None:
        parent, child = context.Pipe(duplex=True)
        out_read, out_write = context.Pipe(duplex=False)
        err_read, err_write = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker.main,
            args=(child, payload, out_write, err_write, os.getpid()),
            name=f"host-worker-{index}",
            daemon=False,
        )
        worker = Worker(index, process, parent)
        worker.output = [Stream(out_read, "stdout"), Stream(err_read, "stderr")]
        self.workers.append(worker)
        try:
            process.start()
        except BaseException:
            worker.gone = True  # never started: nothing to wait for or reap
            parent.close()
            for stream in worker.output:
                stream.close(self.run.secrets)
            raise
        finally:
            child.close()
            out_write.close()
            err_write.close()

    def _live(self) -> list[Worker]:
        return [w for w in self.workers if not w.gone]

    def _in_run(self) -> list[Worker]:
        """The workers still taking part in the run: alive, and (for a session's) not done
        tearing it down yet."""
        if self.warm is None:
            return self._live()
        return [w for w in self.workers if not w.gone and not w.closed]

    def _schedule(self) -> None:
        """Send ready assets to idle workers and collect results, until nothing can run."""
        while True:
            going = self.going and self.startup_error is None
            if going:
                self._dispatch()
            live = self._live()
            busy = any(w.busy for w in live)
            can_start = going and self.frontier.ready and any(not w.leaving for w in live)
            if not busy and not can_start:
                return
            self._wait(live, self._wakeup())
            self._check_time()

    # -- time limits -------------------------------------------------------------------------

    def _wakeup(self, run_timeout: bool = True) -> float | None:
        """Seconds until the next time limit (the run's, a worker's), or ``None``: none."""
        now = time.monotonic()
        limits = [due - now for w in self._live() if (due := self._due(w)) is not None]
        if run_timeout and not self.timed_out and (left := self.run.remaining()) is not None:
            limits.append(left)
        return max(0.0, min(limits)) if limits else None

    def _due(self, worker: Worker) -> float | None:
        """When the caller gives up on ``worker`` (kills it) unless it has moved on by then.

        A worker told to stop its asset has the grace period to do so. A worker tearing down
        has the teardown timeout of the resource it is taking down plus the grace period
        (:func:`~host.executors.teardown_due`). ``None``: no limit.
        """
        if worker.gone:
            return None
        if worker.busy is not None:
            return None if worker.interrupted is None else worker.interrupted + self.grace
        if not worker.leaving or worker.closed or worker.since is None:
            return None
        return teardown_due(worker.up, worker.since, self.teardown_timeouts, self.grace)

    def _check_time(self) -> None:
        if self.check_time():  # the run's timeout passed: interrupt what runs
            self._time_out()
        self._check_workers()

    def _check_workers(self) -> None:
        """Kill each worker past its limit (see :meth:`_due`), reporting what it held."""
        for worker in self._live():
            due = self._due(worker)
            if due is None or time.monotonic() < due:
                continue
            self._drain(worker)  # what it sent meanwhile (it may have just moved on)
            due = self._due(worker)
            if due is None or time.monotonic() < due:
                continue
            if worker.busy is not None:
                self._give_up(worker)
            else:
                self._kill_stuck_teardown(worker)

    def _drain(self, worker: Worker) -> None:
        """Handle every message ``worker`` already sent, without waiting."""
        while not worker.gone:
            try:
                if not worker.conn.poll():
                    return
            except (EOFError, OSError):
                return
            if not self._receive(worker):
                return

    def _kill_stuck_teardown(self, worker: Worker) -> None:
        """``worker`` is still taking a resource down past its teardown timeout and the grace
        period (in code that cannot be interrupted): kill it, and report what it held."""
        stuck = worker.up[-1]
        where = f"worker process {worker.pid}"
        error = self.stuck(worker.up, where, "was killed", WorkerDiedError(f"{where} was killed"))
        elapsed = time.monotonic() - (worker.since or time.monotonic())
        self.run.emit(
            ResourceEvent(
                self.run.run_id,
                resource_key=stuck,
                phase="yield_exit",
                duration=elapsed,
                error=ErrorInfo.from_exception(error, resource_key=stuck),
                pid=worker.pid,
            )
        )
        worker.process.kill()

    def _time_out(self) -> None:
        """The run's timeout passed (what had not started failed): interrupt what runs."""
        now = time.monotonic()
        for worker in self._live():
            if worker.busy is None:
                continue
            if not worker.ready:  # its asset waits in the pipe; nothing is up there yet
                key, worker.busy = worker.busy, None
                self.frontier.finish(key, False)
                self.run.time_out(key, None)
                worker.dropped = worker.leaving = True
                worker.process.kill()
                continue
            worker.interrupted = now
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, TIMEOUT_SIGNAL)

    def _give_up(self, worker: Worker) -> None:
        """``worker`` did not stop its asset within the grace period: kill it."""
        key, worker.busy = worker.busy, None
        assert key is not None
        error = self.given_up(key, f"its worker process {worker.pid} was killed")
        self.fail(key, error, pid=worker.pid, started=worker.started)
        worker.leaving = True
        worker.process.kill()

    def _dispatch(self) -> None:
        for key in self.frontier.ready:
            idle = [w for w in self._live() if w.busy is None and not w.leaving]
            if not idle or self.ended_by is not None:
                return
            # Prefer a worker that already has the asset's resources up.
            worker = (self.best_placed(key, {w: [*w.up, *w.session_up] for w in idle}) or idle)[0]
            self.frontier.start(key)
            worker.busy = key
            worker.started = time.perf_counter()
            try:
                worker.send(("run", key, self.inputs(key)))
            except OSError:
                self._ended(worker)

    def _shutdown(self, interrupt: bool) -> None:
        """Tell every worker to tear down (interrupting running assets if ``interrupt``).

        Waits for every worker to end; one past its limit (:meth:`_due`) is killed.
        """
        self._replacement = None  # the run is ending: a worker lost now is not replaced
        now = time.monotonic()
        for worker in self._live():
            if interrupt and worker.busy is not None and worker.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGINT)
                if worker.interrupted is None:
                    worker.interrupted = now
            if not worker.leaving:
                worker.leaving = True
                with contextlib.suppress(OSError):
                    worker.send(("stop",))
            if worker.busy is None and worker.since is None:
                worker.since = now
        while live := self._in_run():
            self._wait(live, self._wakeup(run_timeout=False))
            self._check_workers()

    def _reap(self) -> None:
        """Make sure no worker process outlives the run, whatever happened; in a session,
        the workers that tore the run down are given back for the next run instead."""
        kept = []
        if self.warm is not None:
            kept = [w for w in self.workers if w.closed and not w.gone and w.process.is_alive()]
            self.warm.give_back(kept, self.run.secrets)
        for worker in self.workers:
            if worker in kept:
                continue
            process = worker.process
            if process.pid is not None and process.is_alive():
                process.kill()
            if process.pid is not None:
                process.join()
                process.close()
            worker.conn.close()
            for stream in worker.output:
                if not stream.conn.closed:
                    stream.close(self.run.secrets)
            worker.gone = True

    # -- messages ----------------------------------------------------------------------------

    def _wait(self, live: list[Worker], timeout: float | None = None) -> None:
        """Wait for a message from a worker, or for one to end, and handle it (or time out).

        A SIGINT or SIGTERM noted meanwhile takes effect here, after the messages ready.
        """
        by_object: dict[Any, Worker] = {}
        streams: dict[Any, Stream] = {}
        for worker in live:
            by_object[worker.conn] = worker
            by_object[worker.process.sentinel] = worker
            streams.update({s.conn: s for s in worker.output if s.open})
        for ready in wait([*streams, *by_object, *self.signals.waitable], timeout):
            if (stream := streams.get(ready)) is not None:
                stream.pump(self.run.secrets)
                continue
            sender = by_object.get(ready)
            if sender is None or sender.gone:
                continue
            if ready is sender.conn:
                self._receive(sender)
            else:
                self._ended(sender)
        self.signals.deliver()

    def _receive(self, worker: Worker) -> bool:
        """Handle one message from ``worker``; False if its pipe is closed."""
        try:
            message = loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            self._ended(worker)
            return False
        kind = message[0]
        if kind == "event":
            event = message[1]
            if isinstance(event, ResourceEvent) and event.scope == "session":
                self.emit(event, worker.session_up)  # (they go down when the session closes)
            elif self.emit(event, worker.up) and worker.leaving:  # the next teardown starts
                worker.since = time.monotonic()
        elif kind == "log":
            reemit_record(message[1], self.run.secrets)
        elif kind == "ready":
            worker.ready = True
        elif kind == "done":
            result: StepResult = message[1]
            worker.busy = None
            self.finish(result)
            if message[2]:  # the asset was interrupted there: the worker tears down, the run ends
                worker.leaving = True
                worker.ended_session = True  # and, in a session, ends it there and exits
                self.ended_by = self.ended_by or result.key
            if worker.leaving:  # its teardown starts now
                worker.since = time.monotonic()
        elif kind == "closed":
            self.run.record_teardown_errors(teardown_errors(message[1]))
            worker.closed = True
        elif kind == "ended":  # it ended the session here (the run was interrupted there)
            if self.warm is not None:
                self.warm.lost.extend(teardown_errors(message[1]))
            worker.session_up.clear()
            worker.ended_session = True
        elif kind == "failed":
            failure: ShippedError = message[1]
            if self.startup_error is None:
                self.startup_error = failure.unpack()
            worker.leaving = True
        return True

    def _ended(self, worker: Worker) -> None:
        """``worker``'s pipe closed or its process ended: read what is left, then account."""
        if worker.gone or worker.ending:
            return
        worker.ending = True
        while not worker.closed:
            try:
                if not worker.conn.poll():
                    break
            except (EOFError, OSError):
                break
            if not self._receive(worker):
                break
        until = time.monotonic() + 5
        while worker.process.is_alive() and time.monotonic() < until:
            for stream in worker.output:  # it may be writing its last words
                stream.pump(self.run.secrets)
            worker.process.join(timeout=0.05)
        if worker.process.is_alive():  # its pipe closed but it hangs on: it is done for
            worker.process.kill()
            worker.process.join()
            log.warning(
                "run %s: worker process %d did not exit within 5 s after its pipe to the caller "
                "closed (something in it held it back: a non-daemon thread, an atexit "
                "handler); it was killed.",
                self.run.run_id,
                worker.pid,
            )
        for stream in worker.output:
            stream.pump(self.run.secrets)
        worker.gone = True
        if worker.closed:
            return
        if worker.kept and not worker.ready and not worker.dropped and self.warm is not None:
            # A session's worker that died just before this run loaded (between runs, as far
            # as the session goes): replaced, as one found dead between runs would have been.
            self.warm.died_between_runs(worker)
            if worker.busy is not None:  # sent to it, never started there: it goes again
                self.frontier.unstart(worker.busy)
                worker.busy = None
            if self._replacement is not None and self.going and self.startup_error is None:
                context, payload = self._replacement
                self._start(context, payload, self.warm.next_index())
            return
        how = how_it_ended(worker.process.exitcode)
        if not worker.ready and self.startup_error is None and not worker.dropped:
            self.startup_error = WorkerDiedError(
                f"worker process {worker.pid} {how} before it loaded the run; its standard "
                f"error says why. (A common cause: a script that starts a run outside "
                f"`if __name__ == '__main__':`, since each worker imports the main module.)"
            )
        lost = [*worker.session_up, *worker.up]
        worker.session_up.clear()
        if worker.busy is not None:
            key, worker.busy = worker.busy, None
            not_torn = f" Resources up there were not torn down: {', '.join(lost)}." if lost else ""
            error = WorkerDiedError(
                f"worker process {worker.pid} died while running asset {key!r}: {how}. The run "
                f"was ended: no further asset was started.{not_torn}"
            )
            self.fail(key, error, pid=worker.pid, started=worker.started, ends_run=True)
        where = f"worker process {worker.pid}"
        self.lost(lost, f"{where}, where it was up, {how}", WorkerDiedError(f"{where} {how}"))
