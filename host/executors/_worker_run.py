"""One run inside one worker process: what a worker receives, and how it runs assets.

Every executor that runs assets in other processes (``multiprocess``, the ``dask`` plugin) sends
each worker a :class:`RunPayload` once per run and drives a :class:`WorkerRun` there. The worker
builds its own plugin manager the way the caller's process does (entry-point hook plugins load
there too, the run's extra plugins are registered), and one :class:`host._lifecycle.ProcessRun`
for the run: a resource comes up the first time an asset in that worker needs it, and everything
goes down in reverse order when the worker is done with the run (:mod:`host._teardown`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from host._context import AssetExecutionContext
from host._errors import ShippingError
from host._events import AssetFailed, ErrorInfo, Event, describe_exception
from host._graph import Step
from host._hookspecs import hookimpl
from host._lifecycle import ProcessRun
from host._plugins import run_plugin_manager
from host._resource_graph import ResourceGraph
from host._secret_values import secret_values
from host._secrets import mask_error, mask_event
from host._step import StepOutcome, execute_step
from host._switches import PluginSwitches, current_switches
from host._timeouts import (
    Deadline,
    DeadlineExceeded,
    PhaseTimeouts,
    cancel_interrupt,
    interrupt_thread,
)
from host.executors._failures import timed_out
from host.executors._output import caller_log_levels
from host.executors._shipping import ShippedError, dumps, loads, needed_resources
from host.executors._threads import ThreadOwners
from host.executors.base import RunState

__all__ = ["RunPayload", "StepResult", "WorkerRun"]

#: The name the output pickler is registered under in workers.
_SHIPPER_NAME = "host.ship_outputs"


@dataclass(frozen=True)
class RunPayload:
    """What a worker needs to take part in a run; pickled once per run with cloudpickle.

    Attributes:
        run_id: the run's id.
        executor: the executor's name.
        steps: the plan's assets (functions travel by value).
        resources: the resources the plan needs (configuration only).
        plugins: the run's extra hook plugins (``run_assets(plugins=...)``).
        switches: the plugin switches in effect in the caller (environment and run config), so
            a worker loads the same installed hook plugins.
        timeout: the run's timeout in seconds, for messages.
        until: when the run's timeout passes, in seconds since the epoch (``time.time()``), for
            executors that let each worker count it (:meth:`WorkerRun.run`); ``None``: no
            limit, or the caller counts it.
        timeouts: resource key -> the setup/teardown timeouts given for the run.
        log_levels: logger name -> level set in the caller (``""``: the root logger), applied
            in workers so that they forward the records the caller would handle.
        session_id: the :class:`host.Session` the run is part of (``RunState.session_id``):
            session-scoped resources come from and stay in the worker's store of that session,
            which the executor closes when the session closes
            (:func:`host.executors.close_session_resources`).
    """

    run_id: str
    executor: str
    steps: Mapping[str, Step]
    resources: ResourceGraph
    plugins: tuple[object, ...]
    switches: PluginSwitches
    timeout: float | None = None
    until: float | None = None
    timeouts: Mapping[str, PhaseTimeouts] | None = None
    log_levels: Mapping[str, int] | None = None
    session_id: str | None = None

    @classmethod
    def of(cls, run: RunState) -> RunPayload:
        """The payload for ``run`` (call it in the caller's context: it reads the switches)."""
        remaining = run.remaining()
        return cls(
            run_id=run.run_id,
            executor=run.executor,
            steps=dict(run.plan.steps),
            resources=needed_resources(run.plan, run.resources),
            plugins=run.plugins,
            switches=current_switches(),
            timeout=run.timeout,
            until=None if remaining is None else time.time() + remaining,
            timeouts=dict(run.timeouts),
            log_levels=caller_log_levels(),
            session_id=run.session_id,
        )


@dataclass(frozen=True)
class StepResult:
    """What running one asset in a worker gave, ready for the trip to the caller.

    Attributes:
        key: the asset key.
        ok: it returned an output.
        output: the pickled output (when ``ok``).
        error: the error (when not ``ok``).
        pid: the worker process.
    """

    key: str
    ok: bool
    output: bytes | None = None
    error: ShippedError | None = None
    pid: int = 0

    @classmethod
    def failed(cls, key: str, exc: BaseException, secrets: Collection[str] = ()) -> StepResult:
        """Asset ``key`` failed here with ``exc`` (``secrets`` masked in its description)."""
        return cls(key, False, error=WorkerRun.pack(exc, secrets), pid=os.getpid())

    def outcome(self) -> tuple[StepOutcome, bytes | None]:
        """The outcome for :meth:`RunState.record`, and the output's pickle to pass downstream.

        An output that cannot be unpickled here fails the asset.
        """
        if self.ok:
            assert self.output is not None
            try:
                return StepOutcome(self.key, True, output=loads(self.output)), self.output
            except Exception as exc:
                error = ShippingError(
                    f"the output of asset {self.key!r} cannot be unpickled in process "
                    f"{os.getpid()}: {describe_exception(exc)}"
                )
                error.__cause__ = exc
                info = ErrorInfo.from_exception(error)
                return StepOutcome(self.key, False, error=info, exception=error), None
        assert self.error is not None
        return (
            StepOutcome(self.key, False, error=self.error.info, exception=self.error.unpack()),
            None,
        )


class _OutputShipper:
    """Pickles each asset's output inside ``host_asset_execute``.

    Registered first in workers (the outermost wrapper), so an output that cannot travel to the
    caller fails its asset like an exception in the asset would, with the asset hooks called.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def take(self) -> bytes:
        """The pickled output of the asset that last ran in this thread."""
        blob: bytes = self._local.blob
        del self._local.blob
        return blob

    @hookimpl(wrapper=True, tryfirst=True)
    def host_asset_execute(
        self, context: AssetExecutionContext, fn: Callable[..., Any], kwargs: dict[str, Any]
    ) -> Generator[None, Any, Any]:
        output = yield
        try:
            self._local.blob = dumps(output)
        except Exception as exc:
            raise ShippingError(
                f"asset {context.asset_key!r} returned {type(output).__qualname__}, which cannot "
                f"be pickled to leave worker process {os.getpid()}: {describe_exception(exc)}. "
                f"Return data (or write it somewhere and return where), not live handles."
            ) from exc
        return output


#: The output shipper of every run in this process (its state is per thread, one asset at a
#: time), so that runs can share a plugin manager.
_SHIPPER = _OutputShipper()


class WorkerRun:
    """The run in this worker process: plugins, runtime, and the resource stack.

    Args:
        payload: the run's payload.
        emit: where this worker's events go (to the caller, which records them in order).
        threads: whether assets may run in several threads of this process at once (resources
            then come up under a lock, still once per process).

    Attributes:
        runtime: the run's runtime in this process.
        stack: the resources brought up here.
    """

    def __init__(
        self, payload: RunPayload, emit: Callable[[Event], None], *, threads: bool = False
    ) -> None:
        self.payload = payload
        self._threads = ThreadOwners()
        # Installed hook plugins load here as in the caller, with the caller's switches; a run
        # with no plugins of its own reuses the manager of the previous such run here.
        manager = run_plugin_manager(
            payload.plugins, switches=payload.switches, outermost=(_SHIPPER_NAME, _SHIPPER)
        )
        self._shipper = _SHIPPER

        def masked(event: Event) -> None:
            self._threads.note(event)
            emit(mask_event(event, self.runtime.secrets))

        self._process = ProcessRun(
            payload.run_id,
            payload.executor,
            manager.hook,
            masked,
            payload.resources,
            timeouts=payload.timeouts,
            threads=threads,
            session=payload.session_id,
        )
        self.runtime = self._process.runtime
        self.stack = self._process.stack
        # Secret values this process knows (EnvVars are read here), masked in what it reports.
        nodes = payload.resources.nodes
        self.runtime.secrets.update(secret_values({k: n.resource for k, n in nodes.items()}))
        self._lock = threading.Lock()
        self._running: dict[int, str] = {}  # thread ident -> the asset it runs
        self._interrupted = False
        self._closed = False

    @property
    def running(self) -> bool:
        """Whether an asset of the run is running in this process now (in :meth:`run`)."""
        return bool(self._running)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def interrupt(self, exc: type[BaseException] = KeyboardInterrupt) -> list[str]:
        """Interrupt the assets running in other threads of this process (``exc`` raised in
        them, :func:`host.executors.interrupt_thread`); assets given to :meth:`run` afterwards
        are not run (``KeyboardInterrupt``). Returns the interrupted asset keys.

        A thread in one blocking call in C stops only when the call returns; a process's main
        thread is better interrupted with a signal.
        """
        with self._lock:
            self._interrupted = True
            for ident in self._running:
                interrupt_thread(ident, exc)
            return sorted(self._running.values())

    def lingering_threads(self) -> list[tuple[threading.Thread, str]]:
        """Non-daemon threads started during the run here and still running, with what
        started them (``"resource 'db'"``, ``"asset 'x'"``: the first event after the thread
        appeared). Call it after :meth:`close`."""
        return self._threads.lingering()

    def report_lingering_threads(self, where: str, ignore: tuple[str, ...] = ()) -> int:
        """Log a warning (logger ``host.executors``) for each of :meth:`lingering_threads`;
        return how many. ``where`` names the worker (``"worker process 123"``); threads whose
        name starts with one of ``ignore`` are the worker's own (not reported)."""
        return self._threads.report(self.payload.run_id, where, ignore, self.runtime.secrets)

    def run(self, key: str, inputs: Mapping[str, bytes], *, counted: bool = False) -> StepResult:
        """Run asset ``key`` with its upstream outputs (pickled); never raises an Exception.

        Interrupted because the run's timeout passed (:class:`DeadlineExceeded` raised in this
        thread), the asset fails with :class:`host.RunTimeoutError`. Another BaseException
        (KeyboardInterrupt, SystemExit) propagates after an ``AssetFailed`` event; the caller
        then tears down with :meth:`close`.

        Args:
            key: the asset.
            inputs: upstream asset key -> pickled output.
            counted: count the run's timeout here (``RunPayload.until``): an asset that would
                start after it is not run, one still running when it passes is interrupted.

        Raises:
            KeyboardInterrupt: the run was interrupted here (:meth:`interrupt`); not run.
            RuntimeError: the run already ended here (:meth:`close`); not run.
        """
        ident = threading.get_ident()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the run already ended in worker process {os.getpid()}")
            if self._interrupted:
                raise KeyboardInterrupt(f"the run was interrupted; asset {key!r} not run")
            self._running[ident] = key
        try:
            return self._counted(key, inputs) if counted else self._run(key, inputs)
        finally:
            with self._lock:
                self._running.pop(ident, None)
                if self._interrupted:
                    cancel_interrupt(ident)  # an interrupt that came too late is dropped

    def _counted(self, key: str, inputs: Mapping[str, bytes]) -> StepResult:
        until = self.payload.until
        if until is None:
            return self._run(key, inputs)
        remaining = until - time.time()
        if remaining <= 0:
            return self._timed_out(key, None)
        deadline = Deadline(remaining)
        result: StepResult | None = None
        try:
            with deadline:
                result = self._run(key, inputs)
        except DeadlineExceeded:
            if result is None:
                return self._timed_out(key, None)
        assert result is not None
        return result

    def _timed_out(self, key: str, elapsed: float | None) -> StepResult:
        """``key`` failed with RunTimeoutError: interrupted after ``elapsed`` s, or not run."""
        error = timed_out(key, self.payload.timeout, elapsed)
        info = ErrorInfo.from_exception(error)
        self.runtime.emit(
            AssetFailed(self.payload.run_id, asset_key=key, duration=elapsed or 0.0, error=info)
        )
        return StepResult.failed(key, error, self.runtime.secrets)

    def _run(self, key: str, inputs: Mapping[str, bytes]) -> StepResult:
        pid = os.getpid()
        try:
            values = {name: loads(blob) for name, blob in inputs.items()}
        except Exception as exc:
            error = ShippingError(
                f"the inputs of asset {key!r} cannot be unpickled in worker process {pid}: "
                f"{describe_exception(exc)}"
            )
            error.__cause__ = exc
            return StepResult.failed(key, error, self.runtime.secrets)
        start = time.perf_counter()
        try:
            outcome = execute_step(self.payload.steps[key], values, self.stack, self.runtime)
        except DeadlineExceeded:
            return self._timed_out(key, time.perf_counter() - start)
        except BaseException as exc:
            self.runtime.emit(
                AssetFailed(
                    self.payload.run_id,
                    asset_key=key,
                    duration=time.perf_counter() - start,
                    error=ErrorInfo.from_exception(exc),
                )
            )
            raise
        if outcome.ok:
            return StepResult(key, True, output=self._shipper.take(), pid=pid)
        assert outcome.error is not None and outcome.exception is not None
        info = mask_error(outcome.error, self.runtime.secrets)
        shipped = ShippedError.pack(outcome.exception, info, pid)
        return StepResult(key, False, error=shipped, pid=pid)

    def close(self, exc: BaseException | None = None) -> list[ShippedError]:
        """Tear down what came up here, in reverse order; return the teardown failures.

        Args:
            exc: the exception ending the run here, if any; passed to each resource's context
                manager, as ``with`` would.
        """
        with self._lock:
            if self._closed:
                return []
            self._closed = True
        if exc is None:
            self._process.close()
        else:
            self._process.close(type(exc), exc, exc.__traceback__)
        pid = os.getpid()
        secrets = self.runtime.secrets
        return [
            ShippedError.pack(
                error, mask_error(ErrorInfo.from_exception(error, error.resource_key), secrets), pid
            )
            for error in self.stack.teardown_errors
        ]

    @staticmethod
    def pack(exc: BaseException, secrets: Collection[str] = ()) -> ShippedError:
        """``exc`` ready for the trip to the caller (``secrets`` masked in its description)."""
        info = mask_error(ErrorInfo.from_exception(exc), secrets)
        return ShippedError.pack(exc, info, os.getpid())
