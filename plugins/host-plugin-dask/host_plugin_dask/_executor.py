"""The ``dask`` executor: assets as Dask tasks, resources up once per Dask worker process."""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from distributed import Client, Future, LocalCluster, as_completed, wait
from distributed.batched import BatchedSend
from distributed.scheduler import KilledWorker, Scheduler

from host import (
    AssetFailed,
    AssetSucceeded,
    Event,
    ExecutorConfig,
    ResourceEvent,
    ResourceTeardownError,
    RunState,
    RunTimeoutError,
    WorkerDiedError,
    WorkerError,
)
from host.executors import (
    INTERRUPT_GRACE,
    CallerRun,
    RemoteExecutor,
    distribution_of,
    forward_output,
    signals_held,
    teardown_errors,
    track_up,
)
from host_plugin_dask._config import DaskConfig
from host_plugin_dask._worker import (
    TOPIC,
    RunPlugin,
    SessionPlugin,
    SessionTeardownResult,
    TaskResult,
    TeardownResult,
    close_run,
    close_session_here,
    interrupt_run,
    run_asset,
    run_pack,
)

__all__ = ["DaskExecutor"]

#: Outputs at least this large (pickled) are scattered to the cluster once, not inlined in
#: every downstream task.
_SCATTER_ABOVE = 1 << 20

#: A pack of quick assets (see :meth:`_DaskRun._packed`) holds at most about this many seconds
#: of them, by their earlier runs.
_PACK_SECONDS = 0.1

#: (asset key, its upstream outputs pickled): what a task carries of each of its assets.
_Item = tuple[str, dict[str, Any]]

#: The future of a task: one asset's result, or a pack's (one per asset, in order).
_Task = Future[TaskResult | list[TaskResult]]


def _log_entries(
    client: Client, keep: Callable[[dict[str, Any]], bool]
) -> dict[tuple[str, int], list[str]]:
    """(worker address, pid) -> resources up there, replayed from the scheduler's log (the
    messages ``keep`` says are of interest)."""
    return _up_from([message for _, message in client.get_events(TOPIC)], keep)


def _up_from(
    messages: Iterable[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]
) -> dict[tuple[str, int], list[str]]:
    """(worker address, pid) -> resources up there, from log messages in order (those
    ``keep`` says are of interest)."""
    up: dict[tuple[str, int], list[str]] = {}
    for message in messages:
        if not keep(message):
            continue
        keys = up.setdefault((message["address"], message["pid"]), [])
        if message["phase"] == "yield_enter" and message["ok"]:
            keys.append(message["resource"])
        elif message["phase"] == "yield_exit" and message["ok"] and message["resource"] in keys:
            keys.remove(message["resource"])  # (one whose teardown failed is still reported)
    return up


def _shared(key: str, keys: tuple[str, ...]) -> str:
    """What a failure of asset ``key`` says of the other assets of its task (none: "")."""
    others = ", ".join(repr(other) for other in keys if other != key)
    if not others:
        return ""
    return (
        f" It was sent in one task with {others} (assets quick in earlier runs of the session "
        f"go several to a task, see pack_below); none of their results came back, so whether "
        f"each ran is not known."
    )


class _KeptCluster:
    """What a session keeps on Dask: its client (and the LocalCluster it started), and what
    its runs left up where.

    Attributes:
        session_id: the session.
        client: the client every run of the session uses.
        up_at: worker address -> the session resources up there (from the runs' events), a
            soft placement preference for later runs.
        classes: session-scoped resource key -> its class, to name it in a report of a loss.
        secrets: the secrets the session's runs knew here, masked in what its close writes.
        following: run id -> the scheduler log's messages of that run so far, for the runs
            going on; the scheduler sends each to the client as it is logged, ahead of the
            news of the task that logged it, so once a run's tasks are all back its messages
            are here (no replay of the log needed to see what is up where).
        took: asset key -> the seconds it took in the last run of the session that ran it.
        threads: worker address -> its task threads, as its tasks reported.
        pack_below: ``DaskConfig.pack_below``.
    """

    def __init__(self, session_id: str, config: DaskConfig) -> None:
        self.session_id = session_id
        self.plugin_name = f"host-session-{session_id}"
        self.lock = threading.Lock()
        self.up_at: dict[str, list[str]] = {}
        self.classes: dict[str, type] = {}
        self.secrets: set[str] = set()
        self.following: dict[str, list[dict[str, Any]]] = {}
        self.took: dict[str, float] = {}
        self.threads: dict[str, int] = {}
        self.pack_below = config.pack_below
        self._stack = contextlib.ExitStack()
        try:
            self.client = self._stack.enter_context(_client(config))
            self.client.register_plugin(SessionPlugin(session_id), name=self.plugin_name)
            self.client.subscribe_topic(TOPIC, self._logged)
            self._stack.callback(self._unsubscribe)
        except BaseException:
            self._stack.close()
            raise

    def _logged(self, event: tuple[float, dict[str, Any]]) -> None:
        """A message of the scheduler's log (in the client's event loop)."""
        message = event[1]
        with self.lock:
            messages = self.following.get(message.get("run", ""))
            if messages is not None:
                messages.append(message)

    def _unsubscribe(self) -> None:
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(TOPIC)

    def follow(self, run_id: str) -> None:
        """Keep the scheduler log's messages of run ``run_id`` from now on."""
        with self.lock:
            self.following[run_id] = []

    def unfollow(self, run_id: str) -> list[dict[str, Any]]:
        """Stop keeping run ``run_id``'s messages; those kept, in order."""
        with self.lock:
            return self.following.pop(run_id, [])

    def admit(self, run: RunState) -> None:
        """Remember what ``run`` may leave up for the session."""
        with self.lock:
            for key, node in run.resources.nodes.items():
                if node.scope == "session":
                    self.classes[key] = type(node.resource)
            self.secrets.update(run.secrets)

    def placement(self, run_up: dict[str, list[str]]) -> dict[str, list[str]]:
        """Worker address -> what is up there for a run: its own resources and the
        session's."""
        with self.lock:
            addresses = sorted({*run_up, *self.up_at})
            return {a: [*run_up.get(a, []), *self.up_at.get(a, [])] for a in addresses}

    def learn(self, task: TaskResult) -> None:
        """What an asset's run that came back says of its worker and of how long the asset
        takes: its duration, less its resources' bring-up and recycling there (which happen
        once per run or session in a process, packed or not)."""
        resources = sum(
            event.duration
            for event in task.events
            if isinstance(event, ResourceEvent) and event.phase in ("yield_enter", "yield_exit")
        )
        with self.lock:
            self.threads[task.address] = task.threads
            for event in task.events:
                if isinstance(event, AssetSucceeded | AssetFailed):
                    self.took[event.asset_key] = max(0.0, event.duration - resources)

    def forget(self, address: str) -> None:
        """The worker at ``address`` is gone."""
        with self.lock:
            self.threads.pop(address, None)

    def timings(self, keys: Iterable[str]) -> tuple[dict[str, float], dict[str, int]]:
        """The seconds each of ``keys`` took in its last run of the session (those known), and
        each known worker's task threads."""
        with self.lock:
            took = {key: self.took[key] for key in keys if key in self.took}
            return took, dict(self.threads)

    def note(self, address: str, event: ResourceEvent) -> None:
        """A session resource came up or went down in the worker at ``address``."""
        with self.lock:
            track_up(self.up_at.setdefault(address, []), event)

    def close(self, emit: Callable[[Event], None]) -> list[ResourceTeardownError]:
        """Close the session on every worker, then the client (and the LocalCluster)."""
        try:
            with signals_held():  # a signal now waits until every worker has torn down
                return self._close_everywhere(emit)
        finally:
            with contextlib.suppress(Exception):
                self.client.unregister_worker_plugin(self.plugin_name)
            self._stack.close()

    def _close_everywhere(self, emit: Callable[[Event], None]) -> list[ResourceTeardownError]:
        results: dict[str, Any] = self.client.run(
            close_session_here, self.session_id, on_error="return"
        )
        errors: list[ResourceTeardownError] = []
        answered: set[tuple[str, int]] = set()
        for address in sorted(results):
            result = results[address]
            if isinstance(result, SessionTeardownResult):
                for event in result.events:
                    emit(event)
                forward_output(result.output, self.secrets)
                errors.extend(teardown_errors(result.failures))
                answered.add((address, result.pid))
        # Workers that did not answer (lost, restarted by their nanny) tore nothing down: what
        # was up there for the session is in the scheduler's log.
        logged = _log_entries(
            self.client,
            lambda m: m.get("session") == self.session_id and m.get("scope") == "session",
        )
        for (address, pid), keys in sorted(logged.items()):
            if not keys or (address, pid) in answered:
                continue
            answer = results.get(address)
            why = (
                f"closing the session there failed: {answer!r}"
                if isinstance(answer, BaseException)
                else "the worker process is gone (it died or was restarted during the session)"
            )
            where = f"it was up in Dask worker process {pid} ({address}), and {why}"
            errors.extend(self._lost(key, where) for key in reversed(keys))
        return errors

    def _lost(self, key: str, why: str) -> ResourceTeardownError:
        """Session resource ``key``, left up in a worker process that is gone (the wording of
        :func:`host.executors.not_torn_down`)."""
        cls = self.classes.get(key)
        name = f"{cls.__module__}.{cls.__qualname__}" if cls is not None else "(unknown class)"
        return ResourceTeardownError(
            f"resource {key!r} ({name}) was not torn down: {why}.",
            resource_key=key,
            resource_class=name,
            phase="teardown",
            distribution=distribution_of(cls) if cls is not None else None,
        )


class _DaskRun(CallerRun):
    """One run on a Dask client: submit ready assets, collect results, end the run everywhere."""

    def __init__(
        self,
        run: RunState,
        client: Client,
        grace: float = INTERRUPT_GRACE,
        session: _KeptCluster | None = None,
    ) -> None:
        super().__init__(run, grace)
        self.client = client
        self.session = session
        self.plugin_name = f"host-run-{run.run_id}"
        self.scattered: dict[str, Future[bytes]] = {}  # large outputs, sent to the cluster once
        self.pending: dict[object, tuple[str, ...]] = {}  # dask key -> its assets' keys
        self.submitted: dict[object, _Task] = {}  # dask key -> its future
        self.started: dict[str, float] = {}  # asset key -> when it was submitted
        self.up_at: dict[str, list[str]] = {}  # worker address -> resources up there
        self.pids: dict[str, int] = {}  # worker address -> its pid (from results)
        self.fetched: dict[object, TaskResult] = {}  # dask key -> its result, fetched
        # A run of a session registers no worker plugin: its tasks carry the payload (sent
        # to the cluster once when large) and the session id.
        self.shipped: tuple[bytes | Future[bytes], str] | None = None
        self.went_through = False  # every asset's task came back; nothing was given up on
        self._turn = 0  # the assets placed so far (a turn among equally placed workers)
        self.closing: concurrent.futures.Future[dict[str, Any]] | None = None  # started early
        self._downstream: dict[str, list[str]] | None = None  # asset -> those taking its output

    def execute(self) -> None:
        if self.session is None:
            self.client.register_plugin(RunPlugin(self.payload()), name=self.plugin_name)
        else:
            payload = self.payload()
            shipped = payload if len(payload) < _SCATTER_ABOVE else None
            self.session.follow(self.run.run_id)
            if shipped is None:
                self.scattered[""] = self.client.scatter(payload, hash=False)
            self.shipped = (shipped or self.scattered[""], self.session.session_id)
        remaining = self.run.remaining()
        limit = None if remaining is None else remaining + self.grace
        futures = as_completed(loop=self.client.loop, timeout=limit)
        try:
            try:
                self._submit_ready(futures)
                for future in futures:
                    # What else finished meanwhile comes with it: one fetch of their results.
                    done = [future, *futures.next_batch(block=False)]
                    if self._last(done):  # the run ends on the workers while they come
                        self._close_early()
                    self._fetch(done)
                    for each in done:
                        self._collect(each)
                    if self.going:
                        self._submit_ready(futures)
                self.went_through = True
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
            if self.session is None:
                with contextlib.suppress(Exception):  # the run is over either way
                    self.client.unregister_worker_plugin(self.plugin_name)
            else:
                self.session.unfollow(self.run.run_id)
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
        for dask_key, keys in stuck.items():
            where = ", ".join(a for a in addresses if dask_key in processing[a]) or "(unknown)"
            ending = f"its Dask worker {where} was restarted"
            for key in keys:
                error = (
                    self.given_up(key, ending)
                    if len(keys) == 1
                    else self._pack_given_up(key, keys, ending)
                )
                self.fail(key, error, started=self.started[key])
        self.client.cancel(list(stuck))
        if addresses:
            with contextlib.suppress(Exception):
                self.client.restart_workers(addresses, raise_for_error=False)

    def _pack_given_up(self, key: str, keys: tuple[str, ...], ending: str) -> RunTimeoutError:
        """The failure of asset ``key`` of a pack (of assets ``keys``) still running a grace
        period after the run's timeout: which of them was stuck, and which had run, is not
        known (their results were to come back together)."""
        return RunTimeoutError(
            f"asset {key!r} gave no result: its task was still running {self.grace:g} s after "
            f"the run's timeout of {self.run.timeout or 0.0:g} s passed (one of its assets was in "
            f"code that cannot be interrupted), and {ending}.{_shared(key, keys)}"
        )

    # -- assets ------------------------------------------------------------------------------

    def _submit_ready(self, futures: as_completed) -> None:
        # The ready assets go in one message per placement (one graph for Dask, where the
        # run's payload, when the tasks carry it, is pickled once).
        groups: dict[tuple[str, ...], list[tuple[str, dict[str, Any]]]] = {}
        for key in self.frontier.ready:
            self.frontier.start(key)
            inputs = {up: self._input(up) for up in self.run.plan.steps[key].upstream}
            # A soft preference for the workers that already have most of the asset's
            # resources up: without it Dask could bring them up in one more process.
            up = dict(sorted(self.up_at.items()))
            if self.session is not None:
                up = self.session.placement(up)
            best = self.best_placed(key, up)
            # Among equally placed workers, one each in turn: the scheduler, handed every
            # task at once, would put most of them on one worker by its estimates.
            preferred: tuple[str, ...] = (best[self._turn % len(best)],) if best else ()
            self._turn += 1
            groups.setdefault(preferred, []).append((key, inputs))
        for preferred, group in groups.items():
            for placed, tasks in self._packed(preferred, group).items():
                self._submit(futures, placed, tasks)

    def _packed(
        self, preferred: tuple[str, ...], group: list[_Item]
    ) -> dict[tuple[str, ...], list[list[_Item]]]:
        """The tasks to send for ``group`` (ready assets preferring the same workers), by the
        workers each prefers: one asset each, except in a session, where the assets that took
        less than ``pack_below`` in its earlier runs go several to a task (a pack: one Dask
        task's overhead instead of one per asset), as many packs as the preferred workers
        (every worker that ran the session's tasks, when none is preferred) have task threads,
        or more to keep each under :data:`_PACK_SECONDS` of those earlier times."""
        alone = {preferred: [[item] for item in group]}
        if self.session is None or self.session.pack_below <= 0 or len(group) < 2:
            return alone
        took, threads = self.session.timings(key for key, _ in group)
        quick = [item for item in group if took.get(item[0], math.inf) < self.session.pack_below]
        workers = preferred or tuple(sorted(threads))
        slots = [worker for worker in workers for _ in range(threads.get(worker, 1))]
        seconds = sum(took[key] for key, _ in quick)
        count = min(len(quick), max(len(slots), math.ceil(seconds / _PACK_SECONDS)))
        if count >= len(quick):  # no pack would hold two assets
            return alone
        packed = {key for key, _ in quick}
        tasks: dict[tuple[str, ...], list[list[_Item]]] = {}
        rest = [[item] for item in group if item[0] not in packed]
        if rest:
            tasks[preferred] = rest
        for i in range(count):
            placed = (slots[i % len(slots)],) if slots else preferred
            tasks.setdefault(placed, []).append(quick[i::count])
        return tasks

    def _submit(
        self, futures: as_completed, preferred: tuple[str, ...], tasks: list[list[_Item]]
    ) -> None:
        """Send ``tasks`` (each one asset, or a pack of several) to Dask, preferring the
        workers ``preferred``: one message for those of one asset, one for the packs."""
        placement: dict[str, Any] = {}
        if preferred:
            placement = {"workers": list(preferred), "allow_other_workers": True}
        now = time.perf_counter()
        for task in tasks:
            for key, _ in task:
                self.started[key] = now
        singles = [task[0] for task in tasks if len(task) == 1]
        packs = [task for task in tasks if len(task) > 1]
        submitted: list[tuple[tuple[str, ...], Future[Any]]] = []
        if singles:
            shipped = [[each] * len(singles) for each in self.shipped or ()]
            sent = self.client.map(
                run_asset,
                [self.plugin_name] * len(singles),
                [key for key, _ in singles],
                [inputs for _, inputs in singles],
                *shipped,
                key=[f"{key}-{self.run.run_id}" for key, _ in singles],
                pure=False,
                retries=0,
                **placement,
            )
            submitted.extend(((key,), f) for (key, _), f in zip(singles, sent, strict=True))
        if packs:
            shipped = [[each] * len(packs) for each in self.shipped or ()]
            packed = self.client.map(
                run_pack,
                [self.plugin_name] * len(packs),
                packs,
                *shipped,
                key=[f"{pack[0][0]}+{len(pack) - 1}-{self.run.run_id}" for pack in packs],
                pure=False,
                retries=0,
                **placement,
            )
            submitted.extend(
                (tuple(key for key, _ in pack), f) for pack, f in zip(packs, packed, strict=True)
            )
        for keys, future in submitted:
            self.pending[future.key] = keys
            self.submitted[future.key] = future
        futures.update([future for _, future in submitted])

    def _input(self, key: str) -> Any:
        """Asset ``key``'s pickled output as a task argument: small ones inline, large ones
        scattered to the cluster once (and shared by every downstream task)."""
        blob = self.blobs[key]
        if len(blob) < _SCATTER_ABOVE:
            return blob
        if key not in self.scattered:
            self.scattered[key] = self.client.scatter(blob, hash=False)
        return self.scattered[key]

    def _last(self, done: list[_Task]) -> bool:
        """Whether ``done`` holds every asset still running, and nothing can start after them
        (none has an asset downstream, nothing is ready)."""
        tasks = {f.key for f in done if f.key in self.pending}
        if self.frontier.ready or len(tasks) < len(self.pending):
            return False
        keys = [key for task in tasks for key in self.pending[task]]
        if self._downstream is None:
            self._downstream = self.run.plan.downstream()
        return not any(self._downstream[key] for key in keys)

    def _close_early(self) -> None:
        """Start ending the run on every worker now, in a thread (:meth:`_end_everywhere`
        takes its answer): the last results are fetched meanwhile."""
        closing: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def close() -> None:
            try:
                closing.set_result(self._close_run())
            except BaseException as exc:  # given to the caller's thread
                closing.set_exception(exc)

        threading.Thread(target=close, name=f"host-dask-close-{self.run.run_id}").start()
        self.closing = closing

    def _close_run(self) -> dict[str, Any]:
        """End the run on every worker (:func:`close_run`): worker address -> its answer."""
        session: dict[str, Any] = {}
        if self.session is not None:
            session["session_id"] = self.session.session_id
        results: dict[str, Any] = self.client.run(
            close_run,
            self.plugin_name,
            self.teardown_timeouts,
            self.grace,
            on_error="return",
            **session,
        )
        return results

    def _fetch(self, done: list[_Task]) -> None:
        """Fetch the results of the finished futures in ``done`` at once (one round trip to
        the cluster instead of one each); :meth:`_collect` takes them from there. If that
        fails (a result was lost with its worker), each is fetched on its own there."""
        finished = [f for f in done if f.status == "finished" and f.key in self.pending]
        if len(finished) < 2:
            return
        with contextlib.suppress(Exception):
            results = self.client.gather(finished)
            self.fetched.update(zip((f.key for f in finished), results, strict=True))

    def _collect(self, future: _Task) -> None:
        self.check_time()
        if future.key not in self.pending:
            return  # given up on already
        keys = self.pending.pop(future.key)
        exc: BaseException | None = None
        status = future.status
        if status == "finished":
            try:
                got: TaskResult | list[TaskResult] = (
                    self.fetched.pop(future.key) if future.key in self.fetched else future.result()
                )
            except Exception as lost:  # its result was lost with its worker before it came
                exc = lost
            else:
                future.release()
                for task in got if isinstance(got, list) else [got]:
                    self._take(task)
                return
        if exc is None and status not in ("lost", "cancelled"):
            exc = future.exception()
        future.release()
        if isinstance(exc, KilledWorker) and self.session is not None:
            self.session.forget(exc.last_worker.address)  # no pack goes there any more
        for key in keys:
            error = self._task_failure(key, keys, str(status), exc)
            died = isinstance(error, WorkerDiedError)
            self.fail(key, error, started=self.started[key], ends_run=died)

    def _take(self, task: TaskResult) -> None:
        """Record what one asset's run on a worker gave."""
        self.pids[task.address] = task.pid
        if self.session is not None:
            self.session.learn(task)
        self._emit(task.address, task.events)
        forward_output(task.output, self.run.secrets)
        self.finish(task.result)

    def _task_failure(
        self, key: str, keys: tuple[str, ...], status: str, exc: BaseException | None
    ) -> BaseException:
        """The failure of asset ``key``, whose task (of assets ``keys``) gave no result:
        Dask's ``exc``, or none with the future's ``status``."""
        ended = f"{_shared(key, keys)} The run was ended: no further asset was started."
        error: BaseException
        if exc is None:
            # Dask gives no error: the output was lost with the worker that held it (status
            # "lost"), or the task was cancelled; either way, a worker of the run went away.
            error = WorkerDiedError(
                f"Dask lost asset {key!r} (its future is {status!r}): the worker that ran it or "
                f"held its output went away before the output was fetched.{ended}"
            )
        elif isinstance(exc, KilledWorker):
            address = exc.last_worker.address
            pid = self.pids.get(address)
            where = f"process {pid} ({address})" if pid else f"at {address}"
            error = WorkerDiedError(
                f"Dask worker {where} died while running asset {key!r}, or while holding it to "
                f"run next (Dask hands a worker every ready task at once; whether it had started "
                f"is not known); Dask does not say how the worker died (its nanny logs it).{ended}"
            )
        else:
            error = WorkerError(f"Dask could not run asset {key!r}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error

    def _emit(self, address: str, events: list[Event]) -> None:
        up = self.up_at.setdefault(address, [])
        for event in events:
            if isinstance(event, ResourceEvent) and event.scope == "session":
                # Kept up by the session, not the run: the session's close accounts for it.
                if self.session is not None:
                    self.session.note(address, event)
                self.emit(event)
            else:
                self.emit(event, up)

    # -- the end -----------------------------------------------------------------------------

    def _end_everywhere(self) -> None:
        """Tear down on every worker (in its task threads); report what lost workers left up."""
        results = self._close_run() if self.closing is None else self.closing.result()
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
        # A session's run that went through has that log's messages already (see
        # _KeptCluster.following): the log is replayed only if they show something left.
        up: dict[tuple[str, int], list[str]] | None = None
        if self.session is not None and self.went_through:
            up = _up_from(self.session.unfollow(self.run.run_id), self._of_run)
            if any(keys and where not in ended for where, keys in up.items()):
                up = None
        for (address, pid), keys in (self._up_by_log() if up is None else up).items():
            if keys and (address, pid) not in ended:
                answer = results.get(address)
                why = (
                    f"ending the run there failed: {answer!r}"
                    if isinstance(answer, BaseException)
                    else "the worker process is gone"
                )
                self.lost(keys, f"it was up in Dask worker process {pid} ({address}), and {why}")

    def _up_by_log(self) -> dict[tuple[str, int], list[str]]:
        """(worker address, pid) -> the run's resources up there, replayed from the scheduler's
        log (session resources are the session's close's to account for)."""
        return _log_entries(self.client, self._of_run)

    def _of_run(self, message: dict[str, Any]) -> bool:
        """Whether a message of the scheduler's log is of this run's own resources (session
        resources are the session's close's to account for)."""
        return message.get("run") == self.run.run_id and message.get("scope") != "session"


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

    Sessions (:class:`host.Session`, ``supports_sessions``): :meth:`open_session` starts the
    cluster (or connects to ``address``) once, and every run of the session, also from several
    threads at once, uses that client. Session-scoped resources stay up in each worker process
    between runs; :meth:`close_session` tears them down on every worker (reverse order, in its
    task threads), then closes the client and the LocalCluster it started. Those up in a worker
    process that died or was restarted during the session are reported then as not torn down.
    A run of a session registers no worker plugin: its tasks carry its payload (sent to the
    cluster once when larger than 1 MiB), the first one in a worker process makes the run's
    state there, and the session's plugin ends what a closing worker still has open; the run
    ends on the workers as any run does, with the same guarantees. In a session, the ready
    assets that took less than ``pack_below`` in its earlier runs go several to a task (see
    :meth:`_DaskRun._packed`): a worker lost during such a pack fails each of its assets.
    """

    name: ClassVar[str] = "dask"
    Config: ClassVar[type[ExecutorConfig]] = DaskConfig

    @property
    def shares_environment(self) -> bool:  # type: ignore[override]
        """True for a LocalCluster the run starts (its workers inherit this environment)."""
        assert isinstance(self.config, DaskConfig)
        return self.config.address is None

    supports_sessions: ClassVar[bool] = True

    def __init__(self, config: Mapping[str, Any] | ExecutorConfig | None = None) -> None:
        super().__init__(config)
        self._sessions: dict[str, _KeptCluster] = {}
        self._sessions_lock = threading.Lock()

    def execute(self, run: RunState) -> None:
        assert isinstance(self.config, DaskConfig)
        if run.session_id is None:
            with _client(self.config) as client:
                _DaskRun(run, client, self.config.grace_period).execute()
            return
        kept = self._kept(run.session_id)
        kept.admit(run)
        _DaskRun(run, kept.client, self.config.grace_period, kept).execute()

    def open_session(self, session_id: str) -> None:
        """Start the session's cluster (a ``LocalCluster``, unless ``address`` is given) and
        its client, which every run of the session uses until :meth:`close_session`."""
        assert isinstance(self.config, DaskConfig)
        with self._sessions_lock:
            if session_id in self._sessions:
                return
            self._sessions[session_id] = _KeptCluster(session_id, self.config)

    def close_session(
        self, session_id: str, emit: Callable[[Event], None]
    ) -> list[ResourceTeardownError]:
        """Tear down the session's resources on every worker (reverse order of bring-up in
        each, in its task threads), then close the session's client and the LocalCluster it
        started. Session resources up in a worker process that is gone (it died, or its nanny
        restarted it) are reported as not torn down."""
        with self._sessions_lock:
            kept = self._sessions.pop(session_id, None)
        if kept is None:
            return []
        return kept.close(emit)

    def session_client(self, session_id: str) -> Client:
        """The Dask client of open session ``session_id`` (to look at its cluster).

        Raises:
            KeyError: no such session is open on this executor.
        """
        return self._kept(session_id).client

    def _kept(self, session_id: str) -> _KeptCluster:
        with self._sessions_lock:
            kept = self._sessions.get(session_id)
        if kept is None:
            raise KeyError(
                f"session {session_id!r} is not open on this dask executor (open_session was "
                f"not called, or the session closed); run it through host.Session."
            )
        return kept


@contextmanager
def _client(config: DaskConfig) -> Iterator[Client]:
    """A client of the configured cluster, or of a LocalCluster started (and closed) here."""
    if config.address is not None:
        with Client(config.address, set_as_default=False) as client:
            _send_sooner(client.scheduler_comm)
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
        _send_sooner(client.scheduler_comm)
        client.run_on_scheduler(_hand_out_at_once)
        yield client


#: Seconds between two batches of messages on the streams of a cluster the executor uses
#: (Dask's own: 10 ms from a client, 5 ms from the scheduler to a worker).
_SEND_INTERVAL = 0.001


def _send_sooner(stream: object) -> None:
    """Let a Dask stream (a ``distributed.batched.BatchedSend``) send its messages at most
    :data:`_SEND_INTERVAL` apart: a run's tasks, submitted soon after the previous run's
    futures were released, go out at once, not up to 10 ms later. More small messages, each
    sent sooner; a stream of another kind is left as it is."""
    if isinstance(stream, BatchedSend):
        stream.interval = min(stream.interval, _SEND_INTERVAL)


def _hand_out_at_once(dask_scheduler: Scheduler) -> None:
    """``Client.run_on_scheduler`` target: the scheduler of a LocalCluster a run or a session
    started hands every ready task to a worker at once, as ``distributed.scheduler.
    worker-saturation: inf`` does (no queue on the scheduler, which costs a round trip per
    task; a run submits only the assets whose inputs exist, never a whole large graph), and
    sends to its workers and clients as soon as :func:`_send_sooner` lets a stream."""
    dask_scheduler.WORKER_SATURATION = math.inf
    for stream in [*dask_scheduler.stream_comms.values(), *dask_scheduler.client_comms.values()]:
        _send_sooner(stream)
