"""The ``multiprocess`` executor: a pool of worker processes that live for the whole run.

Each worker brings a resource up the first time one of its assets needs it, keeps it for its
later assets, and tears everything down in reverse order when the run ends, so a resource's
setup is paid once per worker, not once per asset. The caller's process brings up nothing.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from host._errors import HostError, ResourceTeardownError, RunTimeoutError, WorkerDiedError
from host._events import AssetFailed, ErrorInfo, ResourceEvent
from host._executors import _worker
from host._executors._frontier import Frontier
from host._executors._remote import RunPayload, StepResult, teardown_errors
from host._executors._shipping import (
    ShippedError,
    check_shippable,
    dumps,
    loads,
    shippable_plugins,
)
from host._executors._worker import TIMEOUT_SIGNAL
from host._executors.base import Executor, ExecutorConfig, RunState
from host._graph import Plan
from host._interrupts import DeferredSignals
from host._lifecycle import distribution_of
from host._resource_graph import ResourceGraph
from host._step import StepOutcome

__all__ = ["MultiprocessConfig", "MultiprocessExecutor"]

#: Seconds a worker has to stop its asset once the run's timeout passed; then it is killed.
INTERRUPT_GRACE = 5.0


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
    """

    max_workers: PositiveInt = Field(default_factory=lambda: os.cpu_count() or 1)
    start_method: Literal["spawn", "forkserver"] = "spawn"


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
    interrupted: float | None = None  # when it was told to stop its asset (run timeout)
    dropped: bool = False  # killed by the caller before it loaded the run (nothing was up)

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
        graph = run.resources
        self.needs = {
            key: set(graph.closure(step.resources)) for key, step in run.plan.steps.items()
        }

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
        process = context.Process(
            target=_worker.main,
            args=(child, payload),
            name=f"host-worker-{index}",
            daemon=False,
        )
        worker = _Worker(index, process, parent)
        self.workers.append(worker)
        try:
            process.start()
        except BaseException:
            worker.gone = True  # never started: nothing to wait for or reap
            parent.close()
            raise
        finally:
            child.close()

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

    def _wakeup(self) -> float | None:
        """Seconds until the next time limit (the run's, or a grace period), or ``None``."""
        if not self.timed_out:
            return self.run.remaining()
        due = [w.interrupted for w in self._live() if w.busy and w.interrupted is not None]
        if not due:
            return None
        return max(0.0, min(due) + INTERRUPT_GRACE - time.monotonic())

    def _check_time(self) -> None:
        if not self.timed_out:
            if self.run.remaining() == 0.0:
                self._time_out()
            return
        now = time.monotonic()
        for worker in self._live():
            started = worker.interrupted
            if worker.busy and started is not None and now >= started + INTERRUPT_GRACE:
                self._give_up(worker)

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
        timeout = self.run.timeout or 0.0
        error = RunTimeoutError(
            f"asset {key!r} was still running {INTERRUPT_GRACE:g} s after the run's timeout of "
            f"{timeout:g} s passed and it was told to stop (it was in code that cannot be "
            f"interrupted); its worker process {worker.pid} was killed."
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
        """Tell every worker to tear down (interrupting running assets if ``interrupt``)."""
        for worker in self._live():
            if interrupt and worker.busy is not None and worker.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGINT)
            if not worker.leaving:
                worker.leaving = True
                with contextlib.suppress(OSError):
                    worker.send(("stop",))
        while live := self._live():
            self._wait(live)

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
            worker.gone = True

    # -- messages ----------------------------------------------------------------------------

    def _wait(self, live: list[_Worker], timeout: float | None = None) -> None:
        """Wait for a message from a worker, or for one to end, and handle it (or time out).

        A SIGINT or SIGTERM noted meanwhile takes effect here, after the messages ready.
        """
        by_object: dict[Any, _Worker] = {}
        for worker in live:
            by_object[worker.conn] = worker
            by_object[worker.process.sentinel] = worker
        for ready in wait([*by_object, *self.signals.waitable], timeout):
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
            if isinstance(event, ResourceEvent):
                if event.phase == "yield_enter" and event.error is None:
                    worker.up.append(event.resource_key)
                elif event.phase == "yield_exit" and event.resource_key in worker.up:
                    worker.up.remove(event.resource_key)
            self.run.emit(event)
        elif kind == "ready":
            worker.ready = True
        elif kind == "done":
            result: StepResult = message[1]
            worker.busy = None
            self._finish(result)
            if message[2]:  # the asset was interrupted there: the worker tears down, the run ends
                worker.leaving = True
                self.ended_by = self.ended_by or result.key
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
        worker.process.join(timeout=5)
        if worker.process.is_alive():  # its pipe closed but it hangs on: it is done for
            worker.process.kill()
            worker.process.join()
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
        errors = []
        for key in reversed(keys):
            cls = type(self.run.resources.nodes[key].resource)
            error = ResourceTeardownError(
                f"resource {key!r} ({cls.__module__}.{cls.__qualname__}) was not torn down: "
                f"worker process {worker.pid}, where it was up, {how}.",
                resource_key=key,
                resource_class=f"{cls.__module__}.{cls.__qualname__}",
                phase="teardown",
                distribution=distribution_of(cls),
            )
            error.__cause__ = WorkerDiedError(f"worker process {worker.pid} {how}")
            errors.append(error)
        self.run.record_teardown_errors(errors)


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
    :data:`INTERRUPT_GRACE` seconds later is killed.
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
