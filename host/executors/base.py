"""The executor contract and the run state every executor fills in."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pluggy
from pydantic import BaseModel, ConfigDict, ValidationError

from host._discovery_load import describe_object, register_check
from host._errors import ConfigError, ResourceTeardownError, describe_validation
from host._events import AssetFailed, AssetSkipped, ErrorInfo, Event
from host._graph import Plan
from host._lifecycle import ProcessRun
from host._plugin_api import EXECUTORS_GROUP
from host._resource_graph import ResourceGraph
from host._runtime import ProcessRuntime
from host._secrets import mask_error
from host._session_resources import close_session_resources
from host._step import StepOutcome
from host._timeouts import Deadline, PhaseTimeouts
from host.executors._shipping import check_shippable

__all__ = ["Executor", "ExecutorConfig", "RemoteExecutor", "RunState"]


class ExecutorConfig(BaseModel):
    """Base of executor configuration models: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass
class RunState:
    """One run, as an executor sees it: what to run, with what, and what happened so far.

    Attributes:
        run_id: the run's id.
        plan: the assets to run, in a valid order.
        resources: the run's resource graph (configuration only).
        plugin_manager: the run's plugin manager.
        emit: records an event in the run (and calls ``host_event``).
        outputs / failures / skipped / teardown_errors: filled in by :meth:`record` and
            :meth:`record_teardown_errors`.
        first_exception: the first exception of the run, chained by ``RunFailure``.
        plugins: the run's extra hook plugins (``run_assets(plugins=...)``), which executors
            with worker processes register in each worker too.
        timeout: the run's ``timeout`` in seconds (``None``: no limit). An executor whose
            ``supports_timeout`` is true counts it itself (see :meth:`remaining`); for the
            others, ``run_assets`` interrupts the thread that runs :meth:`Executor.execute`.
        timeouts: resource key -> setup/teardown timeouts given for the run.
        secrets: secret values known in this process, masked in every error recorded.
        run_deadline: the run's timeout as counted in this thread (set by ``run_assets``).
        session_id: the :class:`host.Session` the run is part of, if its executor keeps
            sessions (``Executor.supports_sessions``): session-scoped resources then come from
            and stay in each process's store of that session.
    """

    run_id: str
    executor: str
    plan: Plan
    resources: ResourceGraph
    plugin_manager: pluggy.PluginManager
    emit: Callable[[Event], None]
    outputs: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, ErrorInfo] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    teardown_errors: list[ErrorInfo] = field(default_factory=list)
    first_exception: BaseException | None = None
    plugins: tuple[object, ...] = ()
    timeout: float | None = None
    timeouts: Mapping[str, PhaseTimeouts] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)
    run_deadline: Deadline | None = None
    session_id: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    _runtimes: list[ProcessRuntime] = field(default_factory=list, repr=False)
    #: The teardown errors recorded, by id (kept, so that an id is never another's).
    _recorded: dict[int, BaseException] = field(default_factory=dict, repr=False)

    def process_run(self) -> ProcessRun:
        """This run in the current process (its runtime and resource stack), emitting into
        the run; close it (or use it with ``with``) to tear down."""
        process = ProcessRun(
            self.run_id,
            self.executor,
            self.plugin_manager.hook,
            self.emit,
            self.resources,
            timeouts=self.timeouts,
            run_deadline=self.run_deadline,
            secrets=self.secrets,  # secrets read here are masked in the run's reports
            session=self.session_id,
        )
        self._runtimes.append(process.runtime)
        return process

    def remaining(self) -> float | None:
        """Seconds left before the run's timeout (never below 0), or ``None``: no limit."""
        if self.timeout is None:
            return None
        return max(0.0, self.started_at + self.timeout - time.monotonic())

    def record(self, outcome: StepOutcome) -> None:
        """Record what one asset gave."""
        if outcome.ok:
            self.outputs[outcome.key] = outcome.output
        else:
            assert outcome.error is not None
            self.failures[outcome.key] = mask_error(outcome.error, self.secrets)
            if self.first_exception is None:
                self.first_exception = outcome.exception
                if outcome.exception is None:
                    self.first_exception = RuntimeError(self.failures[outcome.key].message)

    def record_teardown_errors(self, errors: Iterable[ResourceTeardownError]) -> None:
        """Record resources that failed to tear down (the run fails); each error once."""
        for error in errors:
            if id(error) in self._recorded:
                continue
            self._recorded[id(error)] = error
            info = ErrorInfo.from_exception(error, error.resource_key)
            self.teardown_errors.append(mask_error(info, self.secrets))
            if self.first_exception is None:
                self.first_exception = error

    def collect_teardown_errors(self) -> None:
        """Record the teardown failures of resources brought up through :meth:`process_run`.

        An executor records them itself when it ends normally; this also records them when the
        run ended with an exception (an interrupt, the run's timeout). Each is recorded once.
        """
        for runtime in self._runtimes:
            self.record_teardown_errors(runtime.teardown_errors)

    def time_out(self, key: str, running_for: float | None, pid: int | None = None) -> None:
        """Fail asset ``key`` because the run's timeout passed.

        Args:
            key: the asset.
            running_for: how long it had been running when it was interrupted; ``None`` if it
                never started.
            pid: the process it ran in (default: this one).
        """
        from host.executors._failures import timed_out  # it builds on RunState

        error = timed_out(key, self.timeout, running_for)
        info = ErrorInfo.from_exception(error)
        extra: dict[str, Any] = {} if pid is None else {"pid": pid}
        duration = running_for or 0.0
        self.emit(AssetFailed(self.run_id, asset_key=key, duration=duration, error=info, **extra))
        self.record(StepOutcome(key, False, error=info, exception=error))

    def skip(self, key: str, upstream: str) -> None:
        """Record that ``key`` is not run because ``upstream`` failed or was skipped."""
        self.skipped[key] = upstream
        self.emit(AssetSkipped(self.run_id, asset_key=key, upstream=upstream))

    def blocked_by(self, key: str) -> str | None:
        """The first upstream asset of ``key`` that failed or was skipped, if any."""
        for up in self.plan.steps[key].upstream:
            if up in self.failures or up in self.skipped:
                return up
        return None

    def inputs_for(self, key: str) -> dict[str, Any]:
        """The upstream outputs asset ``key`` takes."""
        return {up: self.outputs[up] for up in self.plan.steps[key].upstream}


class Executor(ABC):
    """Runs the assets of a plan somewhere, keeping the resource lifecycle contract.

    Subclasses set ``name`` and, if they take settings, a ``Config`` model (an
    :class:`ExecutorConfig`); they are registered under the ``host.executors`` entry-point
    group. Contract, in every process the executor uses: a resource comes up at most once per
    run, only when an asset there needs it, and everything that came up is torn down in reverse
    order when the run ends there, whatever happened.
    """

    #: The name the executor is registered under.
    name: ClassVar[str]
    #: The model ``executor_config`` is validated with.
    Config: ClassVar[type[ExecutorConfig]] = ExecutorConfig
    #: Whether assets run where the caller's environment variables are (EnvVars can be checked
    #: before the run starts).
    shares_environment: ClassVar[bool] = True
    #: Whether :meth:`execute` counts the run's ``timeout`` itself (``RunState.remaining``),
    #: failing timed-out assets with ``RunState.time_out``. If not, ``run_assets`` raises an
    #: interrupt in the thread running :meth:`execute` when the time passes (as for Ctrl-C).
    supports_timeout: ClassVar[bool] = False
    #: Whether the executor keeps :class:`host.Session`\ s: runs of one session share the
    #: processes it uses, and session-scoped resources stay up in them between runs until
    #: :meth:`close_session`. The default methods below keep them in this process, which is
    #: enough for an executor that runs assets here through :meth:`RunState.process_run`
    #: (``in_process`` says true). An executor with processes of its own says true only once
    #: it keeps them for the session and closes the session in each of them.
    supports_sessions: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any] | ExecutorConfig | None = None) -> None:
        if isinstance(config, ExecutorConfig):
            self.config = config
            return
        try:
            self.config = self.Config.model_validate(dict(config or {}))
        except ValidationError as exc:
            problems = describe_validation(exc, whole="(config)")
            raise ConfigError(
                f"executor {self.name!r}: invalid executor_config: {problems}"
            ) from None

    def check(self, plan: Plan, resources: ResourceGraph) -> None:  # noqa: B027 (optional hook)
        """Fail before anything runs if this executor cannot run ``plan`` (e.g. unpicklable).

        Raises:
            DefinitionError: naming the asset or resource at fault.
        """

    @abstractmethod
    def execute(self, run: RunState) -> None:
        """Run the plan, recording every outcome in ``run``; tear down before returning."""

    def open_session(self, session_id: str) -> None:  # noqa: B027 (optional hook)
        """A :class:`host.Session` starts with this executor instance (before its first run).

        Runs of the session then come with ``RunState.session_id`` set. Default: nothing.
        """

    def close_session(
        self, session_id: str, emit: Callable[[Event], None]
    ) -> list[ResourceTeardownError]:
        """The session closes: tear down its session-scoped resources in every process that
        kept some (reverse order of bring-up in each), and stop what was kept for it.

        Default: this process's session resources
        (:func:`host._session_resources.close_session_resources`).

        Args:
            session_id: the session.
            emit: where the events of the teardowns go.

        Returns:
            The teardown failures (and session resources lost with a process that died).
        """
        return close_session_resources(session_id, emit)


class RemoteExecutor(Executor):
    """Base of executors whose assets run in other processes (``multiprocess``, ``dask``).

    What every such executor does the same way: :meth:`check` pickles every asset and needed
    resource before anything starts (one that cannot be sent is a :class:`~host.DefinitionError`
    naming it), and the run's ``timeout`` is counted by the executor (``supports_timeout``),
    the caller giving each worker a grace period past it
    (:class:`host.executors.CallerRun`).
    """

    supports_timeout: ClassVar[bool] = True

    def check(self, plan: Plan, resources: ResourceGraph) -> None:
        """Pickle every asset and every resource the plan needs, before any worker starts.

        Raises:
            DefinitionError: naming the asset or resource that cannot be sent to a worker.
        """
        check_shippable(plan, resources)


def _check_executor_class(obj: Any) -> str | None:
    """What discovery checks a ``host.executors`` entry point against: an Executor subclass."""
    if isinstance(obj, type) and issubclass(obj, Executor):
        return None
    return f"it is {describe_object(obj)}, not a host.Executor subclass"


# Registered where Executor is defined: whenever an Executor subclass exists, so does its check.
register_check(EXECUTORS_GROUP, _check_executor_class)
