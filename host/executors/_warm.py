"""The worker processes a :class:`host.Session` keeps warm for the ``multiprocess`` executor.

Between runs of the session its workers wait here, idle, each with the session resources it
holds (``Worker.session_up``). A run takes some (:meth:`WarmWorkers.take`; a worker that died
meanwhile is dropped and what it held reported lost), sends them its payload, and gives them
back when they have torn its run down (:meth:`WarmWorkers.give_back`). Closing the session
(:meth:`WarmWorkers.close`) tells each to end: it tears its session resources down, sends
their events and its failures, and exits; none outlives the call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from multiprocessing.connection import wait

from host._errors import ResourceTeardownError, WorkerDiedError
from host._events import Event, ResourceEvent
from host.executors._failures import teardown_errors
from host.executors._handles import Worker, how_it_ended
from host.executors._output import reemit_record
from host.executors._shipping import loads

__all__ = ["WarmWorkers"]


#: Seconds a worker ending the session is waited for before it is killed.
_ENDING = 10.0


class WarmWorkers:
    """The idle workers of one session (see the module's docstring).

    Args:
        session_id: the session.

    Attributes:
        lost: session resources lost with a worker that died between runs (reported at close).
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._started = 0
        self.lost: list[ResourceTeardownError] = []
        #: The secret values of the session's runs, masked in what workers write at close.
        self.secrets: set[str] = set()

    def next_index(self) -> int:
        """A number for a new worker's name, unique in the session."""
        with self._lock:
            self._started += 1
            return self._started - 1

    def take(self, count: int) -> list[Worker]:
        """Up to ``count`` idle workers, alive, those with session resources up first. One
        that ended the session in its last run (it was interrupted there) is not taken: it is
        waited for while it tears its session resources down and exits."""
        with self._lock:
            ending = [worker for worker in self._idle if worker.ended_session]
            self._idle = [worker for worker in self._idle if not worker.ended_session]
        # Waited for outside the lock: a run handing its workers back meanwhile goes on.
        for worker in ending:
            worker.process.join(timeout=_ENDING)
            self._bury(worker)
        with self._lock:
            alive = []
            for worker in self._idle:
                if worker.process.is_alive():
                    alive.append(worker)
                else:
                    self._bury(worker)
            alive.sort(key=lambda w: -len(w.session_up))
            taken, self._idle = alive[:count], alive[count:]
        for worker in taken:
            worker.next_run()
        return taken

    def give_back(self, workers: list[Worker], secrets: set[str]) -> None:
        """Workers that tore their run down and are still alive wait for the next run;
        ``secrets``: the run's secret values."""
        with self._lock:
            self._idle.extend(workers)
            self.secrets.update(secrets)

    def _bury(self, worker: Worker) -> None:
        """``worker`` ended between runs: what it said last (its session teardown's failures
        are reported at close), then its session resources not torn down, lost."""
        self.lost.extend(self._drain(worker, None))
        self.died_between_runs(worker)
        _reap(worker, self.secrets)

    def died_between_runs(self, worker: Worker) -> None:
        """``worker`` ended between runs (also one taken for a run that died before it loaded
        it): its session resources are lost, reported when the session closes."""
        if worker.session_up:
            how = how_it_ended(worker.process.exitcode)
            self.lost.extend(_lost(worker, f"worker process {worker.pid}, where it was up, {how}"))
            worker.session_up.clear()

    def close(self, emit: Callable[[Event], None]) -> list[ResourceTeardownError]:
        """End every idle worker: each tears its session resources down; give the failures
        (with those lost before), in order. No worker process outlives the call."""
        with self._lock:
            workers, self._idle = self._idle, []
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.send(("end",))
        failures = list(self.lost)
        for worker in workers:
            failures.extend(self._drain(worker, emit))
            if worker.session_up:  # it ended without saying it had torn them down
                how = how_it_ended(worker.process.exitcode)
                failures.extend(
                    _lost(worker, f"worker process {worker.pid}, where it was up, {how}")
                )
            _reap(worker, self.secrets)
        return failures

    def _drain(
        self, worker: Worker, emit: Callable[[Event], None] | None
    ) -> list[ResourceTeardownError]:
        """Read ``worker``'s messages until it says it ended (or its pipe closes)."""
        failures: list[ResourceTeardownError] = []
        secrets = self.secrets
        while True:
            if emit is None:  # it is gone already: only what it sent
                try:
                    if not worker.conn.poll():
                        return failures
                except (EOFError, OSError):
                    return failures
            else:
                ready = wait([worker.conn, *(s.conn for s in worker.output if s.open)])
                for stream in worker.output:
                    if stream.open and stream.conn in ready:
                        stream.pump(secrets)
                if worker.conn not in ready:
                    continue
            try:
                message = loads(worker.conn.recv_bytes())
            except (EOFError, OSError):
                return failures
            kind = message[0]
            if kind == "event":
                event = message[1]
                if (
                    isinstance(event, ResourceEvent)
                    and event.phase == "yield_exit"
                    and event.resource_key in worker.session_up
                ):
                    worker.session_up.remove(event.resource_key)
                if emit is not None:
                    emit(event)
            elif kind == "log":
                reemit_record(message[1], secrets)
            elif kind == "ended":
                failures.extend(teardown_errors(message[1]))
                worker.session_up.clear()
                return failures


def _lost(worker: Worker, why: str) -> list[ResourceTeardownError]:
    """The session resources of ``worker`` (last first), as not torn down: ``why``."""
    cause = WorkerDiedError(f"worker process {worker.pid} ended")
    errors = []
    for key in reversed(worker.session_up):
        error = ResourceTeardownError(
            f"session resource {key!r} was not torn down: {why}.",
            resource_key=key,
            phase="teardown",
        )
        error.__cause__ = cause
        errors.append(error)
    return errors


def _reap(worker: Worker, secrets: set[str]) -> None:
    """Wait for ``worker``'s process to end (killing it after 10 s), close its pipes."""
    process = worker.process
    if process.pid is not None:
        process.join(timeout=_ENDING)
        if process.is_alive():
            process.kill()
            process.join()
        process.close()
    worker.conn.close()
    for stream in worker.output:
        if not stream.conn.closed:
            stream.close(secrets)
    worker.gone = True
