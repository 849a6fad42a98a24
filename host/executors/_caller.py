"""The caller's side of a run on worker processes: what it keeps, and what only it can report.

An executor whose assets run in other processes (``multiprocess``, the ``dask`` plugin) drives
one :class:`CallerRun`: the :class:`~host.executors.Frontier` of what can start, the pickled
outputs passed downstream, which resources are up in each worker (from the
``ResourceEvent``\\s that come back, :func:`track_up`), where an asset best goes (where its
resources, :func:`resource_needs`, are up already), the run's timeout, and the failures the
workers cannot report themselves: an asset whose worker died or was given up on, resources left
up in a worker that is gone (:func:`~host.executors.not_torn_down`) or whose teardown hung
(:func:`~host.executors.stuck_teardown`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

from host._errors import ResourceTeardownError, WorkerDiedError
from host._events import AssetFailed, AssetStarted, ErrorInfo, Event, ResourceEvent
from host._step import StepOutcome
from host.executors._failures import given_up, not_torn_down, stuck_teardown, teardown_timeout
from host.executors._frontier import Frontier
from host.executors._shipping import dumps, shippable_plugins
from host.executors._worker_run import RunPayload, StepResult
from host.executors.base import RunState

__all__ = [
    "INTERRUPT_GRACE",
    "CallerRun",
    "resource_needs",
    "teardown_due",
    "track_up",
]

#: Seconds a worker has, by default, past a time limit (the run's timeout, an interrupt, a
#: resource's teardown timeout) before the caller gives up on it (kills or restarts it).
INTERRUPT_GRACE = 5.0

_W = TypeVar("_W")


def resource_needs(run: RunState) -> dict[str, set[str]]:
    """Asset key -> every resource key it needs, dependencies included."""
    graph = run.resources
    return {key: set(graph.closure(step.resources)) for key, step in run.plan.steps.items()}


def track_up(up: list[str], event: Event) -> bool:
    """Keep ``up`` (the resources up in one worker, in bring-up order) current with ``event``.

    Returns:
        Whether a resource went down (its teardown ended, well or not).
    """
    if not isinstance(event, ResourceEvent):
        return False
    if event.phase == "yield_enter" and event.error is None:
        up.append(event.resource_key)
    elif event.phase == "yield_exit" and event.resource_key in up:
        up.remove(event.resource_key)
        return True
    return False


def teardown_due(
    up: Sequence[str], since: float, timeouts: Mapping[str, float | None], grace: float
) -> float | None:
    """When a worker taking its resources down has overrun the teardown going on now.

    Resources go down in reverse order, so the one going down is the last of ``up`` (those
    still up there); it has its teardown timeout plus ``grace``, counted from ``since`` (when
    its teardown started at the latest: the previous resource's end). ``None``: no limit
    (nothing up, or a resource without a teardown timeout).
    """
    timeout = timeouts.get(up[-1]) if up else None
    return None if timeout is None else since + timeout + grace


class CallerRun:
    """One run on workers elsewhere, as the caller keeps it.

    Args:
        run: the run.
        grace: seconds a worker has past a limit before the caller gives up on it.

    Attributes:
        run: the run.
        grace: as given.
        frontier: which assets can start.
        blobs: asset key -> its pickled output, for downstream assets.
        needs: asset key -> every resource key it needs (:func:`resource_needs`).
        ended_by: the asset whose worker died (or was given up on); nothing more starts.
        timed_out: the run's timeout passed; nothing more starts.
        began: asset key -> when its worker said it started (its ``AssetStarted``).
    """

    def __init__(self, run: RunState, grace: float = INTERRUPT_GRACE) -> None:
        self.run = run
        self.grace = grace
        self.frontier = Frontier(run.plan)
        self.blobs: dict[str, bytes] = {}
        self.needs = resource_needs(run)
        self.ended_by: str | None = None
        self.timed_out = False
        self.began: dict[str, float] = {}

    @property
    def going(self) -> bool:
        """Whether assets may still start (no worker died, the timeout did not pass)."""
        return self.ended_by is None and not self.timed_out

    def payload(self, *, assets_by_reference: bool = False) -> bytes:
        """The run's :class:`RunPayload`, pickled for the workers, its plugins checked first.

        Args:
            assets_by_reference: ship asset functions of importable modules by reference
                (for workers that share the caller's modules; see :func:`dumps`).

        Raises:
            PluginError: naming a ``run_assets(plugins=...)`` plugin that cannot be pickled.
        """
        shippable_plugins(self.run.plugins)
        return dumps(RunPayload.of(self.run), assets_by_reference=assets_by_reference)

    @functools.cached_property
    def teardown_timeouts(self) -> dict[str, float | None]:
        """Resource key -> its teardown timeout in the workers (:func:`teardown_timeout`)."""
        return {key: teardown_timeout(self.run, key) for key in self.run.resources.nodes}

    def inputs(self, key: str) -> dict[str, bytes]:
        """The pickled upstream outputs asset ``key`` takes."""
        return {up: self.blobs[up] for up in self.run.plan.steps[key].upstream}

    def best_placed(self, key: str, up: Mapping[_W, Collection[str]]) -> list[_W]:
        """The workers of ``up`` (worker -> resources up there) that have most of asset
        ``key``'s resources up, in the order given; none if no worker has any of them."""
        needs = self.needs[key]
        overlap = {worker: len(needs.intersection(keys)) for worker, keys in up.items()}
        best = max(overlap.values(), default=0)
        return [worker for worker, n in overlap.items() if n == best] if best else []

    def emit(self, event: Event, up: list[str] | None = None) -> bool:
        """Record a worker's ``event`` in the run, keeping ``up`` (the resources up in that
        worker, :func:`track_up`) current; return whether a resource went down."""
        down = up is not None and track_up(up, event)
        if type(event) is AssetStarted:
            self.began[event.asset_key] = event.timestamp
        self.run.emit(event)
        return down

    def record(self, outcome: StepOutcome) -> None:
        """Record what one asset gave; skip what can no longer run because it failed."""
        self.run.record(outcome)
        for key, upstream in self.frontier.finish(outcome.key, outcome.ok):
            self.run.skip(key, upstream)

    def finish(self, result: StepResult) -> None:
        """Record what a worker reported for one asset (unless the asset is accounted for
        already: its worker was given up on), keeping its output for downstream assets."""
        if result.key in self.run.outputs or result.key in self.run.failures:
            return
        outcome, blob = result.outcome()
        if blob is not None:
            self.blobs[result.key] = blob
        self.record(outcome)

    def fail(
        self,
        key: str,
        error: BaseException,
        *,
        started: float | None = None,
        pid: int | None = None,
        ends_run: bool = False,
    ) -> None:
        """Fail asset ``key`` here, for a worker that cannot report it (it died, it was given
        up on): an ``AssetFailed`` event, the failure, what is downstream skipped.

        Args:
            key: the asset.
            error: its failure.
            started: when it was sent (``time.perf_counter()``), for the event's duration
                when its worker never reported it started (else from that report).
            pid: the process it ran in (default: this one).
            ends_run: nothing more starts (:attr:`ended_by`), as when a worker dies.
        """
        info = ErrorInfo.from_exception(error)
        if key in self.began:
            duration = max(0.0, time.time() - self.began[key])
        else:
            duration = 0.0 if started is None else time.perf_counter() - started
        extra: dict[str, Any] = {"pid": pid} if pid else {}
        self.run.emit(
            AssetFailed(self.run.run_id, asset_key=key, duration=duration, error=info, **extra)
        )
        self.record(StepOutcome(key, False, error=info, exception=error))
        if ends_run:
            self.ended_by = self.ended_by or key

    def check_time(self) -> bool:
        """If the run's timeout passed just now: nothing more starts, and each asset that did
        not start fails (``RunState.time_out``). Returns whether it passed just now."""
        if self.timed_out or self.run.remaining() != 0.0:
            return False
        self.timed_out = True
        for key in self.frontier.abandon():
            self.run.time_out(key, None)
        return True

    def given_up(self, key: str, ending: str) -> BaseException:
        """The failure of asset ``key``, still running :attr:`grace` s after it was told to
        stop (the run's timeout, or an interrupt of the run); ``ending`` says what the caller
        did about its worker (``"its worker process 123 was killed"``)."""
        timeout = (self.run.timeout or 0.0) if self.timed_out else None
        return given_up(key, self.grace, ending, timeout=timeout)

    def end(self) -> None:
        """After the last result: each asset that never started is skipped, naming the asset
        whose worker ended the run, or fails if no worker was left to run it."""
        for key in self.frontier.abandon():
            if self.ended_by is not None:
                self.run.skip(key, self.ended_by)
            else:
                self.fail(
                    key,
                    WorkerDiedError(
                        f"asset {key!r} was not run: every worker process of the run died."
                    ),
                )

    def lost(self, keys: Sequence[str], why: str, cause: BaseException | None = None) -> None:
        """Record resources ``keys`` (in bring-up order), left up in a worker that is gone, as
        not torn down (last first); ``why`` completes "was not torn down: ..."."""
        self.run.record_teardown_errors(
            not_torn_down(self.run, key, why, cause) for key in reversed(keys)
        )

    def stuck(
        self, up: list[str], worker: str, done: str, cause: BaseException | None = None
    ) -> ResourceTeardownError:
        """The teardown of the last of ``up`` (the resources up in a worker) hung past its
        teardown timeout and the grace period, and the caller ended that worker: record it,
        and those below it as not torn down; ``up`` is emptied.

        Args:
            up: the resources up in the worker, in bring-up order.
            worker: names it, e.g. ``"worker process 123"``.
            done: what the caller did to it, e.g. ``"was killed"``.
            cause: chained to the failures of the resources below.

        Returns:
            The stuck resource's failure.
        """
        stuck, below = up[-1], up[:-1]
        up.clear()
        error = stuck_teardown(self.run, stuck, self.grace, f"the {worker} where it was up {done}")
        self.run.record_teardown_errors([error])
        self.lost(
            below,
            f"{worker}, where it was up, {done} because the teardown of {stuck!r} before it hung "
            f"past its teardown_timeout",
            cause,
        )
        return error
