"""The caller's side of a run on worker processes: what it keeps about the workers' resources.

An executor whose assets run in other processes (``multiprocess``, the ``dask`` plugin) learns
what is up in each worker from the ``ResourceEvent``\\s that come back (:func:`track_up`), sends
an asset preferably where its resources (:func:`resource_needs`) are up already, and, when a
worker goes before it tore down (it died, it was killed or restarted because a teardown hung),
reports what was up there as not torn down (:func:`not_torn_down`, :func:`stuck_teardown`).
"""

from __future__ import annotations

from host._errors import ResourceTeardownError
from host._events import Event, ResourceEvent
from host._lifecycle import distribution_of
from host._timeouts import phase_timeouts
from host.executors._shipping import ShippedError
from host.executors.base import RunState

__all__ = [
    "INTERRUPT_GRACE",
    "not_torn_down",
    "resource_needs",
    "stuck_teardown",
    "teardown_errors",
    "teardown_timeout",
    "track_up",
]

#: Seconds a worker has, by default, past a time limit (the run's timeout, an interrupt, a
#: resource's teardown timeout) before the caller gives up on it (kills or restarts it).
INTERRUPT_GRACE = 5.0


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


def teardown_timeout(run: RunState, key: str) -> float | None:
    """The teardown timeout resource ``key`` has in the run's workers, or ``None``: no limit.

    The workers' rule (``host_teardown_timeout`` on the class, or the run's ``timeouts``). The
    caller of a run on worker processes uses it to know how long a worker may take to take a
    resource down before it gives up on it.
    """
    node = run.resources.nodes.get(key)
    if node is None:
        return None
    return phase_timeouts(type(node.resource), run.timeouts.get(key)).teardown


def teardown_errors(shipped: list[ShippedError]) -> list[ResourceTeardownError]:
    """A worker's teardown failures, as exceptions for ``RunState.record_teardown_errors``."""
    errors: list[ResourceTeardownError] = []
    for item in shipped:
        unpacked = item.unpack()
        if isinstance(unpacked, ResourceTeardownError):
            errors.append(unpacked)
            continue
        wrapped = ResourceTeardownError(
            item.info.message, resource_key=item.info.resource_key or ""
        )
        wrapped.__cause__ = unpacked
        errors.append(wrapped)
    return errors


def _class_name(run: RunState, key: str) -> tuple[type, str]:
    cls = type(run.resources.nodes[key].resource)
    return cls, f"{cls.__module__}.{cls.__qualname__}"


def not_torn_down(
    run: RunState, key: str, why: str, cause: BaseException | None = None
) -> ResourceTeardownError:
    """The failure of resource ``key``, left up in a worker that is gone.

    Args:
        run: the run.
        key: the resource.
        why: what happened to it, completing "resource 'db' (pkg.Db) was not torn down: ...",
            e.g. ``"worker process 123, where it was up, was killed by SIGKILL"``.
        cause: chained as the error's cause.
    """
    cls, name = _class_name(run, key)
    error = ResourceTeardownError(
        f"resource {key!r} ({name}) was not torn down: {why}.",
        resource_key=key,
        resource_class=name,
        phase="teardown",
        distribution=distribution_of(cls),
    )
    error.__cause__ = cause
    return error


def stuck_teardown(run: RunState, key: str, grace: float, ending: str) -> ResourceTeardownError:
    """The failure of resource ``key``, whose teardown went on past its timeout and ``grace``.

    Args:
        run: the run.
        key: the resource.
        grace: the seconds of grace given after its teardown timeout.
        ending: what the caller did about it, e.g. ``"the worker process 123 where it was up
            was killed"``.
    """
    cls, name = _class_name(run, key)
    timeout = teardown_timeout(run, key) or 0.0
    error = ResourceTeardownError(
        f"resource {key!r} ({name}) did not go down within its teardown_timeout of "
        f"{timeout:g} s, nor in the {grace:g} s of grace after it (it was in code that cannot "
        f"be interrupted), so {ending}; what it holds may not be released. Find out why its "
        f"teardown hangs, or give it more time (teardown_timeout for the key, or "
        f"host_teardown_timeout on the class).",
        resource_key=key,
        resource_class=name,
        phase="yield_exit",
        distribution=distribution_of(cls),
    )
    error.__cause__ = TimeoutError(
        f"resource {key!r} did not go down within {timeout:g} s (+ {grace:g} s of grace)"
    )
    return error
