"""The ``dask`` executor: assets as Dask tasks, resources up once per Dask worker process."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from distributed import Client, Future, LocalCluster, as_completed, wait
from distributed.scheduler import KilledWorker

from host import Event, ExecutorConfig, RunState, WorkerDiedError, WorkerError
from host.executors import (
    INTERRUPT_GRACE,
    CallerRun,
    RemoteExecutor,
    forward_output,
    signals_held,
    teardown_errors,
)
from host_plugin_dask._config import DaskConfig
from host_plugin_dask._worker import (
    TOPIC,
    RunPlugin,
    TaskResult,
    TeardownResult,
    close_run,
    interrupt_run,
    run_asset,
)

__all__ = ["DaskExecutor"]

#: Outputs at least this large (pickled) are scattered to the cluster once, not inlined in
#: every downstream task.
_SCATTER_ABOVE = 1 << 20


class _DaskRun(CallerRun):
    """One run on a Dask client: submit ready assets, collect results, end the run everywhere."""

    def __init__(self, run: RunState, client: Client, grace: float = INTERRUPT_GRACE) -> None:
        super().__init__(run, grace)
        self.client = client
        self.plugin_name = f"host-run-{run.run_id}"
        self.scattered: dict[str, Future[bytes]] = {}  # large outputs, sent to the cluster once
        self.pending: dict[object, str] = {}  # dask key -> asset key
        self.submitted: dict[object, Future[TaskResult]] = {}  # dask key -> its future
        self.started: dict[str, float] = {}  # asset key -> when it was submitted
        self.up_at: dict[str, list[str]] = {}  # worker address -> resources up there
        self.pids: dict[str, int] = {}  # worker address -> its pid (from results)

    def execute(self) -> None:
        self.client.register_plugin(RunPlugin(self.payload()), name=self.plugin_name)
        remaining = self.run.remaining()
        limit = None if remaining is None else remaining + self.grace
        futures = as_completed(loop=self.client.loop, timeout=limit)
        try:
            try:
                self._submit_ready(futures)
                for future in futures:
                    self._collect(future)
                    if self.going:
                        self._submit_ready(futures)
            except TimeoutError:  # as_completed's limit: the timeout and its grace passed
                if self.run.timeout is None:
                    raise
                self._give_up()
            except BaseException:
                # Interrupt the assets running (each worker raises KeyboardInterrupt in their
                # threads), record what they report, cancel the others, and end the run on
                # every worker.
                with contextlib.suppress(Exception):
                    self.client.run(interrupt_run, self.plugin_name, on_error="ignore")
                self._collect_interrupted()
                self.client.cancel([f for f in futures.futures if not f.done()])
                raise
            finally:
                # A signal now waits until every worker has torn down (a second SIGINT does not).
                with signals_held():
                    self._end_everywhere()
        finally:
            for future in self.scattered.values():
                future.release()
            self.scattered.clear()
            with contextlib.suppress(Exception):  # the run is over either way
                self.client.unregister_worker_plugin(self.plugin_name)
        self.end()

    def _collect_interrupted(self) -> None:
        """After an interrupt: record the assets that stop within the grace period (with their
        events), so the run's record of them is complete."""
        running = [self.submitted[key] for key in self.pending if key in self.submitted]
        if not running:
            return
        with contextlib.suppress(Exception):
            wait(running, timeout=self.grace)
        for future in running:
            if future.done():
                with contextlib.suppress(Exception):
                    self._collect(future)

    def _give_up(self) -> None:
        """Assets still running a grace period after the run's timeout: restart their workers.

        They were in code that cannot be interrupted; a Dask worker cannot stop a thread, but
        its nanny can replace the process (what was up there is reported as not torn down).
        """
        self.check_time()
        stuck = dict(self.pending)
        self.pending.clear()
        processing: dict[str, Any] = self.client.processing()
        addresses = sorted(
            address for address, keys in processing.items() if any(key in stuck for key in keys)
        )
        for dask_key, key in stuck.items():
            where = ", ".join(a for a in addresses if dask_key in processing[a]) or "(unknown)"
            error = self.given_up(key, f"its Dask worker {where} was restarted")
            self.fail(key, error, started=self.started[key])
        self.client.cancel(list(stuck))
        if addresses:
            with contextlib.suppress(Exception):
                self.client.restart_workers(addresses, raise_for_error=False)

    # -- assets ------------------------------------------------------------------------------

    def _submit_ready(self, futures: as_completed) -> None:
        for key in self.frontier.ready:
            self.frontier.start(key)
            inputs = {up: self._input(up) for up in self.run.plan.steps[key].upstream}
            placement: dict[str, Any] = {}
            # A soft preference for the workers that already have most of the asset's
            # resources up: without it Dask could bring them up in one more process.
            if preferred := self.best_placed(key, dict(sorted(self.up_at.items()))):
                placement = {"workers": preferred, "allow_other_workers": True}
            self.started[key] = time.perf_counter()
            future = self.client.submit(
                run_asset,
                self.plugin_name,
                key,
                inputs,
                key=f"{key}-{self.run.run_id}",
                pure=False,
                retries=0,
                **placement,
            )
            self.pending[future.key] = key
            self.submitted[future.key] = future
            futures.add(future)

    def _input(self, key: str) -> Any:
        """Asset ``key``'s pickled output as a task argument: small ones inline, large ones
        scattered to the cluster once (and shared by every downstream task)."""
        blob = self.blobs[key]
        if len(blob) < _SCATTER_ABOVE:
            return blob
        if key not in self.scattered:
            self.scattered[key] = self.client.scatter(blob, hash=False)
        return self.scattered[key]

    def _collect(self, future: Future[TaskResult]) -> None:
        self.check_time()
        if future.key not in self.pending:
            return  # given up on already
        key = self.pending.pop(future.key)
        exc: BaseException | None = None
        status = future.status
        if status == "finished":
            try:
                task: TaskResult = future.result()
            except Exception as lost:  # its result was lost with its worker before it came
                exc = lost
            else:
                future.release()
                self.pids[task.address] = task.pid
                self._emit(task.address, task.events)
                forward_output(task.output, self.run.secrets)
                self.finish(task.result)
                return
        if exc is None and status not in ("lost", "cancelled"):
            exc = future.exception()
        future.release()
        ended = " The run was ended: no further asset was started."
        if exc is None:
            # Dask gives no error: the output was lost with the worker that held it (status
            # "lost"), or the task was cancelled; either way, a worker of the run went away.
            error: BaseException = WorkerDiedError(
                f"Dask lost asset {key!r} (its future is {status!r}): the worker that ran it or "
                f"held its output went away before the output was fetched.{ended}"
            )
        elif isinstance(exc, KilledWorker):
            address = exc.last_worker.address
            pid = self.pids.get(address)
            where = f"process {pid} ({address})" if pid else f"at {address}"
            error = WorkerDiedError(
                f"Dask worker {where} died while running asset {key!r}; Dask does not say how "
                f"(the worker's nanny logs it).{ended}"
            )
        else:
            error = WorkerError(f"Dask could not run asset {key!r}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        died = isinstance(error, WorkerDiedError)
        self.fail(key, error, started=self.started[key], ends_run=died)

    def _emit(self, address: str, events: list[Event]) -> None:
        up = self.up_at.setdefault(address, [])
        for event in events:
            self.emit(event, up)

    # -- the end -----------------------------------------------------------------------------

    def _end_everywhere(self) -> None:
        """Tear down on every worker (in its task threads); report what lost workers left up."""
        results: dict[str, Any] = self.client.run(
            close_run, self.plugin_name, self.teardown_timeouts, self.grace, on_error="return"
        )
        ended: set[tuple[str, int]] = set()
        stuck: list[str] = []
        for address in sorted(results):
            result = results[address]
            if isinstance(result, TeardownResult):
                self._emit(address, result.events)
                forward_output(result.output, self.run.secrets)
                self.run.record_teardown_errors(teardown_errors(result.failures))
                if result.stuck and self.up_at.get(address):
                    ended.add((address, result.pid))
                    where = f"Dask worker process {result.pid} ({address})"
                    self.stuck(self.up_at[address], where, "was restarted (killed by its nanny)")
                    stuck.append(address)
                elif not result.stuck:
                    ended.add((address, result.pid))
        if stuck:  # a thread cannot be stopped: the nanny replaces the process
            with contextlib.suppress(Exception):
                self.client.restart_workers(stuck, raise_for_error=False)
        # Workers that did not answer (lost, or replaced by their nanny) tore nothing down:
        # what was up there is in the scheduler's log, even for an asset that never returned.
        for (address, pid), keys in self._up_by_log().items():
            if keys and (address, pid) not in ended:
                answer = results.get(address)
                why = (
                    f"ending the run there failed: {answer!r}"
                    if isinstance(answer, BaseException)
                    else "the worker process is gone"
                )
                self.lost(keys, f"it was up in Dask worker process {pid} ({address}), and {why}")

    def _up_by_log(self) -> dict[tuple[str, int], list[str]]:
        """(worker address, pid) -> resources up there, replayed from the scheduler's log."""
        up: dict[tuple[str, int], list[str]] = {}
        for _, message in self.client.get_events(TOPIC):
            if message.get("run") != self.run.run_id:
                continue
            keys = up.setdefault((message["address"], message["pid"]), [])
            if message["phase"] == "yield_enter" and message["ok"]:
                keys.append(message["resource"])
            elif message["phase"] == "yield_exit" and message["resource"] in keys:
                keys.remove(message["resource"])
        return up


class DaskExecutor(RemoteExecutor):
    """Runs assets as tasks on a ``dask.distributed`` cluster.

    Cluster: ``address`` connects to a running scheduler; otherwise the run starts a
    ``LocalCluster`` of ``n_workers`` worker processes (``threads_per_worker`` threads each) and
    closes it when it ends. The run's own cluster reports a worker lost while it runs an asset
    at once (``allowed_failures=0``); a cluster given by ``address`` keeps its own setting.

    Resources, per Dask worker process: brought up the first time an asset of the run runs
    there (dependencies first), reused by later assets there, and torn down in reverse order
    when the run ends, on every worker that brought any up, by the same task threads that
    brought them up, also after failures. State lives in a Dask ``WorkerPlugin`` registered for
    the run (its ``teardown`` is the fallback when a worker closes first); ``Client.run`` ends
    the run on each worker. Workers must have ``host`` and this package installed.

    Scheduling: an asset is submitted as soon as its upstream outputs exist, with a soft
    preference for the workers that already have its resources up; outputs come back to the
    caller and travel to downstream assets as task arguments (scattered once when large), so a
    finished asset whose output reached the caller never runs again when a worker is lost.
    (Dask does compute a task again when the worker holding its result dies in the moment
    between the task finishing and the caller fetching the result: that asset then runs twice.)
    Assets downstream of a failure are skipped. Events of an asset come back with its result,
    in order, with the worker's pid.

    Shipping and plugins are as for the ``multiprocess`` executor: assets go by value with
    cloudpickle and are checked before anything starts; ``run_assets(plugins=...)`` plugins
    are pickled into every worker, where resource and asset hooks run.

    A worker lost while it runs an asset fails that asset with :class:`host.WorkerDiedError`
    (Dask's ``KilledWorker`` chained) and ends the run: nothing new starts, running assets
    finish, the others are skipped. Resources coming up are logged on the scheduler before the
    asset goes on, so those up in a lost worker process are reported as not torn down
    (``RunResult.resource_errors``). Dask may instead retry the task on another worker, when
    the scheduler's ``allowed-failures`` is above 0 (a cluster given by ``address``): the asset
    then runs again, in full, in another worker process, which brings its resources up there
    (once, as for any asset), and the asset's side effects happen twice; the lost worker's
    resources are never torn down, and are reported when the run ends.

    KeyboardInterrupt/SIGTERM in the caller: the assets running are interrupted (each worker
    raises ``KeyboardInterrupt`` in their task threads: Python code stops, a blocking call in C
    only when it returns), assets not yet started are cancelled, then every worker tears down,
    and the exception propagates.

    The run's ``timeout`` is counted by each worker for the assets it runs: one that would
    start after it is not run, one still running is interrupted in its thread (as above); each
    fails with :class:`host.RunTimeoutError`. The caller waits a grace period of
    ``grace_period`` seconds more (default 5); an asset still running then is failed and its
    worker restarted by its nanny (what was up there is reported as not torn down).

    A teardown that its timeout cannot stop (a task thread blocked in C code) is given its
    ``teardown_timeout`` plus ``grace_period``; then the run stops waiting for that worker,
    reports the resource (:class:`host.ResourceTeardownError`, "did not go down within its
    teardown_timeout") and those below it as not torn down, and restarts the worker (a thread
    cannot be stopped; the nanny kills the process). What the run's code prints
    (``sys.stdout``/``sys.stderr``) and logs on a worker comes back with each result, masked,
    and is written or re-emitted in the caller.
    """

    name: ClassVar[str] = "dask"
    Config: ClassVar[type[ExecutorConfig]] = DaskConfig

    @property
    def shares_environment(self) -> bool:  # type: ignore[override]
        """True for a LocalCluster the run starts (its workers inherit this environment)."""
        assert isinstance(self.config, DaskConfig)
        return self.config.address is None

    def execute(self, run: RunState) -> None:
        assert isinstance(self.config, DaskConfig)
        with _client(self.config) as client:
            _DaskRun(run, client, self.config.grace_period).execute()


@contextmanager
def _client(config: DaskConfig) -> Iterator[Client]:
    """A client of the configured cluster, or of a LocalCluster started (and closed) here."""
    if config.address is not None:
        with Client(config.address, set_as_default=False) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=config.n_workers,
            threads_per_worker=config.threads_per_worker,
            processes=True,
            dashboard_address="127.0.0.1:0",  # no fixed port to collide with
            scheduler_kwargs={"allowed_failures": 0},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client
