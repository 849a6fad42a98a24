"""One run inside one worker process: what a worker receives, and how it runs assets.

Every executor that runs assets in other processes (``multiprocess``, the ``dask`` plugin) sends
each worker a :class:`RunPayload` once per run and drives a :class:`WorkerRun` there. The worker
builds its own plugin manager the way the caller's process does (entry-point hook plugins load
there too, the run's extra plugins are registered), and one :class:`host._lifecycle.ProcessRun`
for the run: a resource comes up the first time an asset in that worker needs it, and everything
goes down in reverse order when the worker is done with the run (:mod:`host._teardown`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from host._context import AssetExecutionContext
from host._errors import HostError, RunTimeoutError
from host._events import AssetFailed, ErrorInfo, Event, ResourceEvent, describe_exception
from host._graph import Step
from host._hookspecs import hookimpl
from host._lifecycle import ProcessRun
from host._plugins import make_plugin_manager
from host._resource_graph import ResourceGraph
from host._secrets import mask, mask_error, mask_event, secret_values
from host._step import StepOutcome, execute_step
from host._switches import PluginSwitches, current_switches
from host._timeouts import Deadline, DeadlineExceeded, PhaseTimeouts
from host.executors._shipping import ShippedError, dumps, loads, needed_resources
from host.executors.base import RunState

__all__ = [
    "LogForwarder",
    "RunPayload",
    "StepResult",
    "WorkerRun",
    "caller_log_levels",
    "reemit_record",
]

#: Where the host reports about worker processes (lingering threads, output).
log = logging.getLogger("host.executors")

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

    def outcome(self) -> tuple[StepOutcome, bytes | None]:
        """The outcome for :meth:`RunState.record`, and the output's pickle to pass downstream.

        An output that cannot be unpickled here fails the asset.
        """
        if self.ok:
            assert self.output is not None
            try:
                return StepOutcome(self.key, True, output=loads(self.output)), self.output
            except Exception as exc:
                error = HostError(
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
            raise HostError(
                f"asset {context.asset_key!r} returned {type(output).__qualname__}, which cannot "
                f"be pickled to leave worker process {os.getpid()}: {describe_exception(exc)}. "
                f"Return data (or write it somewhere and return where), not live handles."
            ) from exc
        return output


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
        # Installed hook plugins load here as in the caller, with the caller's switches.
        manager = make_plugin_manager(payload.plugins, switches=payload.switches)
        self._shipper = _OutputShipper()
        manager.register(self._shipper, name=_SHIPPER_NAME)
        self._process = ProcessRun(
            payload.run_id,
            payload.executor,
            manager.hook,
            self._masked(emit),
            payload.resources,
            timeouts=payload.timeouts,
            threads=threads,
        )
        self.runtime = self._process.runtime
        self.stack = self._process.stack
        # Secret values this process knows (EnvVars are read here), masked in what it reports.
        nodes = payload.resources.nodes
        self.runtime.secrets.update(secret_values({k: n.resource for k, n in nodes.items()}))
        self._closed = False

    def _masked(self, emit: Callable[[Event], None]) -> Callable[[Event], None]:
        def masked(event: Event) -> None:
            self._threads.note(event)
            emit(mask_event(event, self.runtime.secrets))

        self._threads = _ThreadOwners()
        return masked

    def lingering_threads(self) -> list[tuple[threading.Thread, str]]:
        """Non-daemon threads started during the run here and still running, with what
        started them (``"resource 'db'"``, ``"asset 'x'"``: the first event after the thread
        appeared). Call it after :meth:`close`."""
        return self._threads.lingering()

    def report_lingering_threads(self, where: str, ignore: tuple[str, ...] = ()) -> int:
        """Log a warning (logger ``host.executors``) for each of :meth:`lingering_threads`;
        return how many. ``where`` names the worker (``"worker process 123"``); threads whose
        name starts with one of ``ignore`` are the worker's own (not reported)."""
        found = [(t, o) for t, o in self.lingering_threads() if not t.name.startswith(ignore)]
        for thread, owner in found:
            target = getattr(thread, "_target", None)
            runs = (
                f", running {getattr(target, '__module__', '?')}."
                f"{getattr(target, '__qualname__', repr(target))}"
                if target is not None
                else ""
            )
            log.warning(
                "%s",
                mask(
                    f"run {self.payload.run_id}: {where}: non-daemon thread {thread.name!r}"
                    f"{runs}, started by {owner}, was still running when the run ended there; "
                    f"it was not waited for (the process exits without it). Stop it in the "
                    f"resource's teardown, or make it a daemon thread.",
                    self.runtime.secrets,
                ),
            )
        return len(found)

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
        """
        until = self.payload.until if counted else None
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
        timeout = f" of {self.payload.timeout:g} s" if self.payload.timeout else ""
        if elapsed is None:
            what = f"asset {key!r} was not run: the run's timeout{timeout} passed"
        else:
            what = (
                f"asset {key!r} was interrupted after {elapsed:.3g} s: the run's timeout"
                f"{timeout} passed"
            )
        error = RunTimeoutError(f"{what}. Give the run more time (timeout), or find the slow part.")
        info = ErrorInfo.from_exception(error)
        self.runtime.emit(
            AssetFailed(self.payload.run_id, asset_key=key, duration=elapsed or 0.0, error=info)
        )
        return StepResult(key, False, error=self.pack(error, self.runtime.secrets), pid=os.getpid())

    def _run(self, key: str, inputs: Mapping[str, bytes]) -> StepResult:
        pid = os.getpid()
        try:
            values = {name: loads(blob) for name, blob in inputs.items()}
        except Exception as exc:
            error = HostError(
                f"the inputs of asset {key!r} cannot be unpickled in worker process {pid}: "
                f"{describe_exception(exc)}"
            )
            error.__cause__ = exc
            return StepResult(key, False, error=self.pack(error, self.runtime.secrets), pid=pid)
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
        assert outcome.error is not None
        raised = outcome.exception or HostError(outcome.error.message)
        info = mask_error(outcome.error, self.runtime.secrets)
        return StepResult(key, False, error=ShippedError.pack(raised, info, pid), pid=pid)

    def close(self, exc: BaseException | None = None) -> list[ShippedError]:
        """Tear down what came up here, in reverse order; return the teardown failures.

        Args:
            exc: the exception ending the run here, if any; passed to each resource's context
                manager, as ``with`` would.
        """
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


class _ThreadOwners:
    """Which part of the run started each thread of this process: the threads that exist at
    each event and did not at the one before were started by what the event is about."""

    def __init__(self) -> None:
        self._owners: dict[threading.Thread, str | None] = dict.fromkeys(threading.enumerate())

    def note(self, event: Event | None) -> None:
        current = threading.enumerate()
        if len(current) == len(self._owners) and all(t in self._owners for t in current):
            return
        owner = "the run"
        if isinstance(event, ResourceEvent):
            owner = f"resource {event.resource_key!r}"
        elif (key := getattr(event, "asset_key", None)) is not None:
            owner = f"asset {key!r}"
        for thread in current:
            self._owners.setdefault(thread, owner)

    def lingering(self) -> list[tuple[threading.Thread, str]]:
        self.note(None)
        me = threading.current_thread()
        return [
            (thread, owner)
            for thread, owner in self._owners.items()
            if owner is not None
            and thread is not me
            and thread is not threading.main_thread()
            and not thread.daemon
            and thread.is_alive()
        ]


#: LogRecord attributes that travel (others are dropped; extras of simple types travel too).
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) - {
    "args",
    "exc_info",
    "msg",
    "message",
}


def caller_log_levels() -> dict[str, int]:
    """Logger name -> level, for every logger given a level in this process (root: ``""``)."""
    levels = {"": logging.getLogger().level}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


def _simple(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class LogForwarder(logging.Handler):
    """A handler for a worker's root logger: every record, masked, as a dict to ``send``.

    The message is formatted here (``args`` do not travel), the exception and stack become
    text, secrets are masked with ``secrets`` (read when each record is sent). The caller
    re-emits the records with :func:`reemit_record`. ``send`` failing (the caller is gone)
    drops the record.
    """

    def __init__(
        self, send: Callable[[dict[str, Any]], None], secrets: Callable[[], Collection[str]]
    ) -> None:
        super().__init__(logging.NOTSET)
        self._send = send
        self._secrets = secrets
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):
            return  # a record logged while sending one (never sent in a loop)
        self._local.busy = True
        try:
            self._send(self.pack(record, self._secrets()))
        except OSError:
            pass
        except Exception:
            self.handleError(record)
        finally:
            self._local.busy = False

    @staticmethod
    def pack(record: logging.LogRecord, secrets: Collection[str]) -> dict[str, Any]:
        """``record`` as a dict of simple values, its text masked."""
        fields = {
            key: value
            for key, value in record.__dict__.items()
            if (key in _RECORD_FIELDS or not key.startswith("_")) and _simple(value)
        }
        fields.pop("args", None)
        fields["msg"] = mask(record.getMessage(), secrets)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for key in ("exc_text", "stack_info"):
            if fields.get(key) is not None or getattr(record, key, None):
                fields[key] = mask(str(getattr(record, key)), secrets)
        return fields


def reemit_record(fields: Mapping[str, Any], secrets: Collection[str]) -> None:
    """Re-emit a record a worker forwarded (:class:`LogForwarder`), here, on its logger.

    Its text is masked again with ``secrets`` (the run's, known here); it is handled only if
    its logger is enabled for its level here, as if it had been logged here.
    """
    masked = dict(fields)
    for key in ("msg", "exc_text", "stack_info"):
        if isinstance(masked.get(key), str):
            masked[key] = mask(masked[key], secrets)
    masked["args"] = None
    record = logging.makeLogRecord(masked)
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)
