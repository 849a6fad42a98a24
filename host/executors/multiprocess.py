"""The ``multiprocess`` executor: a pool of worker processes that live for the whole run.

Each worker brings a resource up the first time one of its assets needs it, keeps it for its
later assets, and tears everything down in reverse order when the run ends, so a resource's
setup is paid once per worker, not once per asset. The caller's process brings up nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveFloat, PositiveInt

from host._errors import ResourceTeardownError
from host._events import Event
from host.executors._caller import INTERRUPT_GRACE
from host.executors._pool import Pool
from host.executors._warm import WarmWorkers
from host.executors.base import ExecutorConfig, RemoteExecutor, RunState

__all__ = ["MultiprocessConfig", "MultiprocessExecutor"]


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


class MultiprocessExecutor(RemoteExecutor):
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
    :class:`~host.executors.ShippingError` carrying the worker's traceback. A worker that dies
    (killed, crashed, ``os._exit``) fails the asset it was running with
    :class:`~host.WorkerDiedError` saying how (signal or exit code); the run then ends: no further
    asset starts, assets running elsewhere finish, assets not started are skipped
    (``AssetSkipped.upstream`` names the asset whose worker died), the other workers tear down, and
    the resources the dead worker had up are reported as not torn down
    (``RunResult.resource_errors``). A worker that dies between assets fails no asset; the run goes
    on with the others. KeyboardInterrupt or SIGTERM in the caller interrupts running assets (SIGINT
    to their workers), every worker tears down, and the exception propagates; the caller acts on a
    signal between the messages it reads from its workers, never in the middle of one, and a second
    SIGINT while the workers tear down stops waiting for them (they are killed). No worker process
    outlives the call.

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

    Sessions: in a :class:`host.Session` the workers a run started stay, idle, for the next
    run of the session (each then loads that run, and tears it down at its end as usual);
    session-scoped resources stay up in them between runs. A run takes the idle workers with
    session resources up first and starts more if it needs them. A worker that dies between
    runs is replaced by the next run that needs one; the session resources it held are
    reported when the session closes (``SessionTeardownError``). Closing the session tells
    every worker to tear its session resources down and exit, and waits for each.
    """

    name: ClassVar[str] = "multiprocess"
    Config: ClassVar[type[ExecutorConfig]] = MultiprocessConfig
    supports_sessions: ClassVar[bool] = True

    def __init__(self, config: Mapping[str, Any] | ExecutorConfig | None = None) -> None:
        super().__init__(config)
        self._sessions: dict[str, WarmWorkers] = {}

    def open_session(self, session_id: str) -> None:
        """Keep the session's workers between its runs (started by its first runs)."""
        self._sessions[session_id] = WarmWorkers(session_id)

    def execute(self, run: RunState) -> None:
        assert isinstance(self.config, MultiprocessConfig)
        warm = None if run.session_id is None else self._sessions.get(run.session_id)
        Pool(run, self.config, warm).execute()

    def close_session(
        self, session_id: str, emit: Callable[[Event], None]
    ) -> list[ResourceTeardownError]:
        """End the session's workers: each tears its session resources down and exits."""
        warm = self._sessions.pop(session_id, None)
        return [] if warm is None else warm.close(emit)
