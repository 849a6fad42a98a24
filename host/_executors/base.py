"""The executor contract and the run state every executor fills in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pluggy
from pydantic import BaseModel, ConfigDict, ValidationError

from host._errors import ConfigError, ResourceTeardownError
from host._events import AssetSkipped, ErrorInfo, Event
from host._graph import Plan
from host._lifecycle import ProcessRuntime
from host._resource_graph import ResourceGraph
from host._step import StepOutcome

__all__ = ["Executor", "ExecutorConfig", "RunState"]


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

    def runtime(self) -> ProcessRuntime:
        """A runtime for this run in the current process, emitting into the run."""
        return ProcessRuntime(self.run_id, self.executor, self.plugin_manager.hook, self.emit)

    def record(self, outcome: StepOutcome) -> None:
        """Record what one asset gave."""
        if outcome.ok:
            self.outputs[outcome.key] = outcome.output
        else:
            assert outcome.error is not None
            self.failures[outcome.key] = outcome.error
            if self.first_exception is None:
                self.first_exception = outcome.exception
                if outcome.exception is None:
                    self.first_exception = RuntimeError(outcome.error.message)

    def record_teardown_errors(self, errors: list[ResourceTeardownError]) -> None:
        """Record resources that failed to tear down (the run fails)."""
        for error in errors:
            self.teardown_errors.append(ErrorInfo.from_exception(error, error.resource_key))
            if self.first_exception is None:
                self.first_exception = error

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

    def __init__(self, config: Mapping[str, Any] | ExecutorConfig | None = None) -> None:
        if isinstance(config, ExecutorConfig):
            self.config = config
            return
        try:
            self.config = self.Config.model_validate(dict(config or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(config)'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
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
