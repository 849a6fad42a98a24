"""The ``multiprocess`` executor: a pool of worker processes that live for the whole run.

Each worker brings a resource up the first time one of its assets needs it, keeps it for its
later assets, and tears everything down in reverse order when the run ends, so a resource's
setup is paid once per worker, not once per asset. The caller's process brings up nothing.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveFloat, PositiveInt

from host._errors import HostError, RunTimeoutError, WorkerDiedError
from host._events import AssetFailed, ErrorInfo, ResourceEvent
from host._graph import Plan
from host._interrupts import DeferredSignals
from host._resource_graph import ResourceGraph
from host._secrets import mask
from host._step import StepOutcome
from host.executors import _worker
from host.executors._caller import (
    INTERRUPT_GRACE,
    not_torn_down,
    resource_needs,
    stuck_teardown,
    teardown_errors,
    teardown_timeout,
    track_up,
)
from host.executors._frontier import Frontier
from host.executors._remote import RunPayload, StepResult, reemit_record
from host.executors._shipping import (
    ShippedError,
    check_shippable,
    dumps,
    loads,
    shippable_plugins,
)
from host.executors._worker import TIMEOUT_SIGNAL
from host.executors.base import Executor, ExecutorConfig, RunState

__all__ = ["MultiprocessConfig", "MultiprocessExecutor"]

log = logging.getLogger("host.executors")


class MultiprocessConfig(ExecutorConfig):
    """Settings of the ``multiprocess`` executor (its ``executor_config``).

    Attributes:
        max_workers: how many worker processes at most (never more than there are assets);
            default: the number of CPUs.
        start_method: how workers are started, ``"spawn"`` (the default) or ``"forkserver"``.
            Both start workers from a clean, single-threaded state. ``"fork"`` is not offered:
            forking a process that runs threads (a Dask client, a logging handler, a run in
            another thread) can deadlock the child, and it would copy the caller's live
            resources and open handles into every worker. ``"spawn"`` starts a fresh
            interpreter per worker, which imports the host (two workers, in parallel: about
            0.2 s on an idle 2-CPU machine, against 0.02 s for fork) and leaves nothing behind
            but multiprocessing's own resource tracker. ``"forkserver"`` forks workers from a
            server process that multiprocessing starts on first use and keeps until the caller
            exits (a child process that outlives the run); each worker still imports the host,
            so it saves only the interpreter start.
        grace_period: seconds a worker is given, past a limit, before the caller kills it
            (default 5): past the run's ``timeout`` (its asset was told to stop), past an
            interrupt of the run (SIGINT, SIGTERM, SIGHUP: its asset was told to stop), and
            past the ``teardown_timeout`` of the resource it is taking down (a teardown stuck
            in code that cannot be interrupted). What was up in a killed worker is reported in
            ``RunResult.resource_errors``.
    """

    max_workers: PositiveInt = Field(default_factory=lambda: os.cpu_count() or 1)
    start_method: Literal["spawn", "forkserver"] = "spawn"
    grace_period: PositiveFloat = INTERRUPT_GRACE


def _how(exitcode: int | None) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if exitcode is None:
        return "it did not exit"
    if exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class _Stream:
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
        text = mask(data.decode(errors="replace"), secrets)
        stream = getattr(sys, self.name)
        with contextlib.suppress(Exception):  # a closed stream in the caller loses output only
            stream.write(text)
            stream.flush()

    def close(self, secrets: set[str]) -> None:
        self.pump(secrets, final=True)
        self.open = False
        self.conn.close()


@dataclass(eq=False)
class _Worker:
    """The caller's handle on one worker process."""

    index: int
    process: BaseProcess
    conn: Connection
    ready: bool = False  # it loaded the run
    busy: str | None = None  # the asset it runs
    started: float = 0.0  # when that asset was sent
    up: list[str] = field(default_factory=list)  # resources up there, in bring-up order
    leaving: bool = False  # told to stop, or stopping on its own
    closed: bool = False  # it reported its teardown
    ending: bool = False  # its end is being handled
    gone: bool = False  # its process ended and was handled
    interrupted: float | None = None  # when it was told to stop its asset (timeout, signal)
    since: float | None = None  # leaving: when its current teardown started (at the latest)
    dropped: bool = False  # killed by the caller before it loaded the run (nothing was up)
    output: list[_Stream] = field(default_factory=list)  # its stdout and stderr pipes

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def send(self, message: tuple[Any, ...]) -> None:
        self.conn.send_bytes(dumps(message))


class _Pool:
    """One run on a pool of workers: start, schedule, collect, shut down, reap."""

    def __init__(self, run: RunState, config: MultiprocessConfig) -> None:
        self.run = run
        self.config = config
        self.frontier = Frontier(run.plan)
        self.workers: list[_Worker] = []
        self.blobs: dict[str, bytes] = {}  # asset key -> pickled output, for downstream
        self.ended_by: str | None = None  # an asset whose worker died: the run ends
        self.timed_out = False  # the run's timeout passed: nothing more starts
        self.startup_error: BaseException | None = None
        # SIGINT/SIGTERM act between messages, never in the middle of one (which would lose
        # the rest of it and leave the pipe unreadable).
        self.signals = DeferredSignals()
        self.needs = resource_needs(run)

    # -- the run -----------------------------------------------------------------------------

    def execute(self) -> None:
        shippable_plugins(self.run.plugins)
        payload = dumps(RunPayload.of(self.run))
        count = min(self.config.max_workers, len(self.run.plan.steps))
        if count == 0:
            return
        context = multiprocessing.get_context(self.config.start_method)
        with self.signals:
            try:
                for index in range(count):
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
            raise HostError(
                f"run {self.run.run_id}: a worker process could not take part in the run: "
                f"{self.startup_error}"
            ) from self.startup_error
        left = self.frontier.abandon()
        if self.ended_by is not None:
            for key in left:
                self.run.skip(key, self.ended_by)
        else:
            for key in left:
                error = WorkerDiedError(
                    f"asset {key!r} was not run: every worker process of the run died."
                )
                self._fail(key, error)

    def _start(self, context: Any, payload: bytes, index: int) -> None:
        parent, child = context.Pipe(duplex=True)
        out_read, out_write = context.Pipe(duplex=False)
        err_read, err_write = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker.main,
            args=(child, payload, out_write, err_write),
            name=f"host-worker-{index}",
            daemon=False,
        )
        worker = _Worker(index, process, parent)
        worker.output = [_Stream(out_read, "stdout"), _Stream(err_read, "stderr")]
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

    def _live(self) -> list[_Worker]:
        return [w for w in self.workers if not w.gone]

    def _schedule(self) -> None:
        """Send ready assets to idle workers and collect results, until nothing can run."""
        while True:
            going = self.ended_by is None and self.startup_error is None and not self.timed_out
            if going:
                self._dispatch()
            live = self._live()
            busy = any(w.busy for w in live)
            can_start = going and self.frontier.ready and any(not w.leaving for w in live)
            if not busy and not can_start:
                return
            self._wait(live, self._wakeup())
            self._check_time()

    # -- the run's timeout -------------------------------------------------------------------

    def _wakeup(self, run_timeout: bool = True) -> float | None:
        """Seconds until the next time limit (the run's, a worker's), or ``None``: none."""
        now = time.monotonic()
        limits = [due - now for w in self._live() if (due := self._due(w)) is not None]
        if run_timeout and not self.timed_out and (left := self.run.remaining()) is not None:
            limits.append(left)
        return max(0.0, min(limits)) if limits else None

    def _due(self, worker: _Worker) -> float | None:
        """When the caller gives up on ``worker`` (kills it) unless it has moved on by then.

        A worker told to stop its asset has the grace period to do so. A worker tearing down
        has the teardown timeout of the resource it is taking down (the last one up there,
        as resources go down in reverse order) plus the grace period, counted from when that
        teardown started at the latest (the stop, or the previous resource's end). ``None``:
        no limit (nothing to wait for, or a resource without a teardown timeout).
        """
        if worker.gone:
            return None
        grace = self.config.grace_period
        if worker.busy is not None:
            return None if worker.interrupted is None else worker.interrupted + grace
        if not worker.leaving or worker.closed or worker.since is None or not worker.up:
            return None
        timeout = teardown_timeout(self.run, worker.up[-1])
        return None if timeout is None else worker.since + timeout + grace

    def _check_time(self) -> None:
        if not self.timed_out and self.run.remaining() == 0.0:
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

    def _drain(self, worker: _Worker) -> None:
        """Handle every message ``worker`` already sent, without waiting."""
        while not worker.gone:
            try:
                if not worker.conn.poll():
                    return
            except (EOFError, OSError):
                return
            if not self._receive(worker):
                return

    def _kill_stuck_teardown(self, worker: _Worker) -> None:
        """``worker`` is still taking a resource down past its teardown timeout and the grace
        period (in code that cannot be interrupted): kill it, and report what it held."""
        stuck, below = worker.up[-1], list(reversed(worker.up[:-1]))
        worker.up.clear()
        error = stuck_teardown(
            self.run,
            stuck,
            self.config.grace_period,
            f"the worker process {worker.pid} where it was up was killed",
        )
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
        errors = [error]
        for key in below:
            errors.append(
                not_torn_down(
                    self.run,
                    key,
                    f"worker process {worker.pid}, where it was up, was killed because the "
                    f"teardown of {stuck!r} before it hung past its teardown_timeout",
                    WorkerDiedError(f"worker process {worker.pid} was killed"),
                )
            )
        self.run.record_teardown_errors(errors)
        worker.process.kill()

    def _time_out(self) -> None:
        """The run's timeout passed: fail what has not started, interrupt what runs."""
        self.timed_out = True
        for key in self.frontier.abandon():
            self.run.time_out(key, None)
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

    def _give_up(self, worker: _Worker) -> None:
        """``worker`` did not stop its asset within the grace period: kill it."""
        key, worker.busy = worker.busy, None
        assert key is not None
        self.frontier.finish(key, False)
        grace = self.config.grace_period
        error: HostError
        if self.timed_out:
            timeout = self.run.timeout or 0.0
            error = RunTimeoutError(
                f"asset {key!r} was still running {grace:g} s after the run's timeout of "
                f"{timeout:g} s passed and it was told to stop (it was in code that cannot be "
                f"interrupted); its worker process {worker.pid} was killed."
            )
        else:
            error = WorkerDiedError(
                f"asset {key!r} was still running {grace:g} s after the run was interrupted "
                f"and it was told to stop (it was in code that cannot be interrupted); its "
                f"worker process {worker.pid} was killed."
            )
        self._fail(key, error, pid=worker.pid, started=worker.started)
        worker.leaving = True
        worker.process.kill()

    def _dispatch(self) -> None:
        for key in self.frontier.ready:
            idle = [w for w in self._live() if w.busy is None and not w.leaving]
            if not idle or self.ended_by is not None:
                return
            # Prefer a worker that already has the asset's resources up.
            worker = max(idle, key=lambda w: (len(self.needs[key].intersection(w.up)), -w.index))
            step = self.run.plan.steps[key]
            self.frontier.start(key)
            worker.busy = key
            worker.started = time.perf_counter()
            try:
                worker.send(("run", key, {up: self.blobs[up] for up in step.upstream}))
            except OSError:
                self._ended(worker)

    def _shutdown(self, interrupt: bool) -> None:
        """Tell every worker to tear down (interrupting running assets if ``interrupt``).

        Waits for every worker to end; one past its limit (:meth:`_due`) is killed.
        """
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
        while live := self._live():
            self._wait(live, self._wakeup(run_timeout=False))
            self._check_workers()

    def _reap(self) -> None:
        """Make sure no worker process outlives the run, whatever happened."""
        for worker in self.workers:
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

    def _wait(self, live: list[_Worker], timeout: float | None = None) -> None:
        """Wait for a message from a worker, or for one to end, and handle it (or time out).

        A SIGINT or SIGTERM noted meanwhile takes effect here, after the messages ready.
        """
        by_object: dict[Any, _Worker] = {}
        streams: dict[Any, _Stream] = {}
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

    def _receive(self, worker: _Worker) -> bool:
        """Handle one message from ``worker``; False if its pipe is closed."""
        try:
            message = loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            self._ended(worker)
            return False
        kind = message[0]
        if kind == "event":
            event = message[1]
            if track_up(worker.up, event) and worker.leaving:  # the next teardown starts now
                worker.since = time.monotonic()
            self.run.emit(event)
        elif kind == "log":
            reemit_record(message[1], self.run.secrets)
        elif kind == "ready":
            worker.ready = True
        elif kind == "done":
            result: StepResult = message[1]
            worker.busy = None
            self._finish(result)
            if message[2]:  # the asset was interrupted there: the worker tears down, the run ends
                worker.leaving = True
                self.ended_by = self.ended_by or result.key
            if worker.leaving:  # its teardown starts now
                worker.since = time.monotonic()
        elif kind == "closed":
            self.run.record_teardown_errors(teardown_errors(message[1]))
            worker.closed = True
        elif kind == "failed":
            failure: ShippedError = message[1]
            if self.startup_error is None:
                self.startup_error = failure.unpack()
            worker.leaving = True
        return True

    def _finish(self, result: StepResult) -> None:
        if result.key in self.run.outputs or result.key in self.run.failures:
            return  # already accounted for (its worker was given up on)
        outcome, blob = result.outcome()
        if blob is not None:
            self.blobs[result.key] = blob
        self.run.record(outcome)
        for key, upstream in self.frontier.finish(result.key, outcome.ok):
            self.run.skip(key, upstream)

    def _fail(
        self, key: str, error: BaseException, pid: int | None = None, started: float | None = None
    ) -> None:
        """Fail ``key`` here, for a worker that cannot report it (it died)."""
        info = ErrorInfo.from_exception(error)
        duration = 0.0 if started is None else time.perf_counter() - started
        self.run.emit(
            AssetFailed(
                self.run.run_id,
                asset_key=key,
                duration=duration,
                error=info,
                pid=pid or os.getpid(),
            )
        )
        self.run.record(StepOutcome(key, False, error=info, exception=error))

    def _ended(self, worker: _Worker) -> None:
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
        how = _how(worker.process.exitcode)
        if not worker.ready and self.startup_error is None and not worker.dropped:
            self.startup_error = WorkerDiedError(
                f"worker process {worker.pid} {how} before it loaded the run; its standard "
                f"error says why. (A common cause: a script that starts a run outside "
                f"`if __name__ == '__main__':`, since each worker imports the main module.)"
            )
        lost = list(worker.up)
        if worker.busy is not None:
            key, worker.busy = worker.busy, None
            not_torn = f" Resources up there were not torn down: {', '.join(lost)}." if lost else ""
            error = WorkerDiedError(
                f"worker process {worker.pid} died while running asset {key!r}: {how}. The run "
                f"was ended: no further asset was started.{not_torn}"
            )
            self._fail(key, error, pid=worker.pid, started=worker.started)
            for skipped, upstream in self.frontier.finish(key, False):
                self.run.skip(skipped, upstream)
            self.ended_by = self.ended_by or key
        self._lost_resources(worker, lost, how)

    def _lost_resources(self, worker: _Worker, keys: list[str], how: str) -> None:
        self.run.record_teardown_errors(
            not_torn_down(
                self.run,
                key,
                f"worker process {worker.pid}, where it was up, {how}",
                WorkerDiedError(f"worker process {worker.pid} {how}"),
            )
            for key in reversed(keys)
        )


class MultiprocessExecutor(Executor):
    """Runs assets in a pool of worker processes that live for the whole run.

    Scheduling: an asset is sent to an idle worker as soon as every upstream output exists
    (preferring a worker that already has its resources up); outputs travel back to the caller
    and on to downstream assets pickled. Assets downstream of a failure are skipped.

    Resources, per worker: brought up (dependencies first) the first time an asset there needs
    them, reused, torn down in reverse order when the run ends, also after failures; never in
    the caller's process. Only a resource's configuration reaches a worker; ``EnvVar`` values
    are read there.

    Shipping: asset functions go by value with cloudpickle (closures from factories and
    functions in a ``__main__`` script work); :meth:`check` pickles every asset and needed
    resource before any worker starts, and one that cannot be pickled is a
    :class:`~host.DefinitionError` naming it. Hook plugins passed as
    ``run_assets(plugins=...)`` are pickled too and registered in every worker, where the
    resource and asset hooks run: they must pickle (a module, a class, or an instance whose
    attributes pickle), and their state is per process (observe the run from the caller with
    ``host_event``). Entry-point hook plugins load in each worker as in the caller. Scripts must
    guard the run with ``if __name__ == "__main__":`` (workers import the main module).

    Failures: an exception keeps its chain of causes when it pickles, and is otherwise a
    :class:`~host.HostError` carrying the worker's traceback. A worker that dies (killed,
    crashed, ``os._exit``) fails the asset it was running with :class:`~host.WorkerDiedError`
    saying how (signal or exit code); the run then ends: no further asset starts, assets
    running elsewhere finish, assets not started are skipped (``AssetSkipped.upstream`` names
    the asset whose worker died), the other workers tear down, and the resources the dead
    worker had up are reported as not torn down (``RunResult.resource_errors``). A worker that
    dies between assets fails no asset; the run goes on with the others. KeyboardInterrupt or
    SIGTERM in the caller interrupts running assets (SIGINT to their workers), every worker
    tears down, and the exception propagates; the caller acts on a signal between the messages
    it reads from its workers, never in the middle of one, and a second SIGINT while the
    workers tear down stops waiting for them (they are killed). No worker process outlives the
    call.

    Timeouts: resources' setup and teardown timeouts are counted in the worker (its main
    thread: ``SIGALRM`` stops a call that hangs). The run's ``timeout`` is counted here: when it
    passes, assets not started are not run, each worker running one gets ``SIGUSR1`` (its asset
    fails with :class:`~host.RunTimeoutError`), and a worker that has not stopped it
    ``grace_period`` seconds later is killed. The same goes for an asset told to stop because
    the run was interrupted. A teardown that cannot be stopped in the worker (C code that never
    returns to Python, signals blocked) is counted here too: the caller knows from the events
    which resources are up in each worker and their teardown timeouts, and a worker still
    taking a resource down ``grace_period`` seconds past that resource's teardown timeout is
    killed; that resource is reported (:class:`~host.ResourceTeardownError`, "did not go down
    within its teardown_timeout ... killed") with the ones still up below it, and the run
    fails. A resource without a teardown timeout is waited for (as in the caller's process).

    Threads: a non-daemon thread that a resource or an asset started and left running when the
    worker is done is logged as a warning (logger ``host.executors``, naming the thread and
    the resource or asset that started it); the worker does not wait for it, and the run does
    not fail because of it.
    """

    name: ClassVar[str] = "multiprocess"
    Config: ClassVar[type[ExecutorConfig]] = MultiprocessConfig
    supports_timeout: ClassVar[bool] = True

    def check(self, plan: Plan, resources: ResourceGraph) -> None:
        """Pickle every asset and every resource the plan needs, before any worker starts.

        Raises:
            DefinitionError: naming the asset or resource that cannot be sent to a worker.
        """
        check_shippable(plan, resources)

    def execute(self, run: RunState) -> None:
        assert isinstance(self.config, MultiprocessConfig)
        _Pool(run, self.config).execute()
