"""The failures only an executor can report, each built by one function.

An asset the run's timeout stopped (:func:`timed_out`), an asset whose worker was given up on
(:func:`given_up`), a resource left up in a worker that is gone (:func:`not_torn_down`), a
resource whose teardown hung past its timeout (:func:`stuck_teardown`), and a worker's own
teardown failures as they arrive in the caller (:func:`teardown_errors`).
"""

from __future__ import annotations

from host._errors import ResourceTeardownError, RunTimeoutError, WorkerDiedError
from host._lifecycle import distribution_of
from host._timeouts import phase_timeouts
from host.executors._shipping import ShippedError
from host.executors.base import RunState

__all__ = [
    "given_up",
    "not_torn_down",
    "stuck_teardown",
    "teardown_errors",
    "teardown_timeout",
    "timed_out",
]


def timed_out(key: str, timeout: float | None, running_for: float | None) -> RunTimeoutError:
    """The failure of asset ``key``, stopped because the run's timeout passed.

    Args:
        key: the asset.
        timeout: the run's timeout in seconds (named in the message when known).
        running_for: how long the asset had been running when it was interrupted; ``None``:
            it was not run.
    """
    of = f" of {timeout:g} s" if timeout else ""
    if running_for is None:
        what = f"asset {key!r} was not run: the run's timeout{of} passed"
    else:
        what = (
            f"asset {key!r} was interrupted after {running_for:.3g} s: the run's timeout{of} "
            f"passed"
        )
    return RunTimeoutError(f"{what}. Give the run more time (timeout), or find the slow part.")


def given_up(
    key: str, grace: float, ending: str, *, timeout: float | None = None
) -> RunTimeoutError | WorkerDiedError:
    """The failure of asset ``key``, still running ``grace`` s after it was told to stop.

    Args:
        key: the asset.
        grace: the seconds it was given to stop.
        ending: what the caller did about its worker, e.g. ``"its worker process 123 was
            killed"``.
        timeout: the run's timeout, if that is why it was told to stop (a
            :class:`~host.RunTimeoutError`); ``None``: the run was interrupted (a
            :class:`~host.WorkerDiedError`).
    """
    why = (
        "the run was interrupted"
        if timeout is None
        else f"the run's timeout of {timeout:g} s passed"
    )
    message = (
        f"asset {key!r} was still running {grace:g} s after {why} and it was told to stop (it "
        f"was in code that cannot be interrupted); {ending}."
    )
    return WorkerDiedError(message) if timeout is None else RunTimeoutError(message)


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
