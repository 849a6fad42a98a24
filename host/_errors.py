"""The one error tree of `host`.

Every error the host raises on purpose derives from :class:`HostError`, so a caller can catch
everything the framework means with one ``except``::

    HostError
    ├── DefinitionError          assets or resources wired wrongly; raised before anything runs
    │   ├── ResourceCheckError       a resource class failed the conformance check (host.testing;
    │   │                            also an AssertionError)
    │   └── EnvVarNotReadError       an ``EnvVar`` was used as a plain string before it was read
    │                                (also a RuntimeError, as in Dagster)
    ├── ConfigError              a configuration value is invalid or missing (resource key, field)
    ├── PluginError              a plugin cannot be found, imported or used
    │   └── ScaffoldError            ``host new plugin`` cannot create the plugin's folder
    ├── FrozenResourceError      a resource's configuration field was assigned (AttributeError)
    ├── ResourceError            a resource lifecycle phase failed (key, class, distribution, phase)
    │   ├── ResourceSetupError       bringing the resource up failed
    │   └── ResourceTeardownError    tearing it down failed
    ├── WorkerDiedError          a worker process died while it ran an asset
    ├── WorkerError              a worker could not take part in the run, or run an asset there
    ├── ShippingError            a value could not cross a process boundary (pickle, unpickle)
    ├── RunTimeoutError          the run's ``timeout`` passed: an asset was interrupted or not run
    └── RunFailure               a run finished with failures; carries ``.result``

Messages name what is wrong and what to do; they never contain secret values. A pydantic
``ValidationError`` becomes part of one through :func:`validation_problems` (each problem's
location and message, never the input) and :func:`describe_validation` (those on one line).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pydantic import ValidationError

    from host._events import RunResult

__all__ = [
    "ConfigError",
    "DefinitionError",
    "EnvVarNotReadError",
    "FrozenResourceError",
    "HostError",
    "HostInterrupt",
    "PluginError",
    "ResourceCheckError",
    "ResourceError",
    "ResourceSetupError",
    "ResourceTeardownError",
    "RunFailure",
    "RunTimeoutError",
    "ScaffoldError",
    "SessionError",
    "SessionTeardownError",
    "ShippingError",
    "ValidationProblem",
    "WorkerDiedError",
    "WorkerError",
    "describe_validation",
    "is_interrupt",
    "location_text",
    "validation_problems",
    "with_prefix",
]


class HostError(Exception):
    """Base class of every error raised by `host` on purpose."""


class DefinitionError(HostError):
    """Assets, resources or executors are defined or wired wrongly.

    Raised before any resource is brought up; the message names the asset and parameter (or
    resource key) at fault and says how to fix it.
    """


class EnvVarNotReadError(DefinitionError, RuntimeError):
    """An ``EnvVar`` was turned into a string (``str()``, an f-string, ``%s``) before it was
    read: its text is the variable's name, not its value. Dagster raises a ``RuntimeError``
    here; this is one."""


class ConfigError(HostError):
    """A configuration value is invalid or missing.

    Attributes:
        resource_key: the resource whose configuration is at fault, if any.
        field: the configuration field at fault, if any.
    """

    def __init__(
        self, message: str, *, resource_key: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        #: The resource whose configuration is at fault, if any.
        self.resource_key = resource_key
        #: The configuration field at fault, if any.
        self.field = field


class PluginError(HostError):
    """A plugin (entry point) cannot be found, imported, or used."""


class ScaffoldError(PluginError):
    """A plugin cannot be scaffolded: the name is not usable, or the folder already exists."""


class FrozenResourceError(HostError, AttributeError):
    """A configuration field of a resource was assigned to; resources are frozen."""


class ResourceCheckError(DefinitionError, AssertionError):
    """A resource class failed checks of :func:`host.testing.check_resource_class`.

    An ``AssertionError``, so test runners report it as a failed test with its message.

    Attributes:
        resource_class: the qualified name of the class that was checked.
        failures: check name -> what is wrong and what to do, for each failed check.
    """

    def __init__(
        self, message: str, *, resource_class: str = "", failures: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.resource_class = resource_class
        self.failures = dict(failures or {})


class ResourceError(HostError):
    """A resource lifecycle phase failed.

    Attributes:
        resource_key: the key the resource is bound to in the run.
        resource_class: the qualified name of the resource class.
        distribution: ``"name version"`` of the distribution that ships the class, if any.
        phase: the phase that failed (``"setup"``, ``"yield_enter"``, ``"yield_exit"``,
            ``"teardown"``, or ``"config"`` when the configuration could not be resolved).
    """

    def __init__(
        self,
        message: str,
        *,
        resource_key: str = "",
        resource_class: str = "",
        phase: str = "",
        distribution: str | None = None,
    ) -> None:
        # Defaults only so that pickling (cls(message) + __dict__) works across processes.
        super().__init__(message)
        self.resource_key = resource_key
        self.resource_class = resource_class
        self.phase = phase
        self.distribution = distribution


class ResourceSetupError(ResourceError):
    """Bringing a resource up failed; it was not torn down, those already up were."""


class ResourceTeardownError(ResourceError):
    """Tearing a resource down failed; the other resources were still torn down."""


class WorkerDiedError(HostError):
    """A worker process died (killed, crashed, exited) while it ran an asset."""


class WorkerError(HostError):
    """A worker could not take part in the run (it could not load the run, or went before it
    did), or the cluster it belongs to could not run an asset there.

    The message names the worker and the run; the cause, when there is one, is chained.
    """


class ShippingError(HostError):
    """A value could not cross a process boundary: an asset's output or inputs did not pickle
    or unpickle, or an exception raised in a worker could not be unpickled in the caller (it
    then arrives as this error, carrying the worker's traceback as text).

    Recorded as the failure of the asset concerned; the message names the asset (or the
    exception's type) and the process.
    """


class RunTimeoutError(HostError):
    """The run's ``timeout`` passed: the asset was interrupted, or never started.

    Recorded as the failure of each asset the timeout stopped (``RunResult.failures``).
    """


class SessionError(HostError):
    """A :class:`host.Session` was used wrongly: a run after it closed, or its executor does
    not take part in sessions the way asked."""


class SessionTeardownError(SessionError):
    """Session-scoped resources failed to go down when the session closed (the others were
    still torn down), or were lost with a worker that died.

    Attributes:
        errors: the :class:`~host.ErrorInfo` of each, in the order they happened (masked).
    """

    def __init__(self, message: str, errors: Sequence[Any] = ()) -> None:
        super().__init__(message)
        #: Each failure, as an ``ErrorInfo``.
        self.errors = tuple(errors)


class RunFailure(HostError):
    """A run finished with failures, after every resource that came up was torn down.

    The first underlying error is chained as ``__cause__``.

    Attributes:
        result: the :class:`~host.RunResult` of the failed run.
    """

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        #: The result of the failed run.
        self.result = result


def with_prefix(error: HostError, prefix: str) -> HostError:
    """The same kind of error with ``prefix`` before its message, chaining what it chained."""
    if isinstance(error, ConfigError):
        new: HostError = type(error)(
            prefix + str(error), resource_key=error.resource_key, field=error.field
        )
    else:
        new = type(error)(prefix + str(error))
    new.__cause__ = error.__cause__
    return new


# -- pydantic's validation errors in host's words -------------------------------------------------


def location_text(location: Sequence[int | str]) -> str:
    """A location as pydantic writes one in its errors: ``items.0``, ``sub.token``."""
    return ".".join(str(part) for part in location)


class ValidationProblem(NamedTuple):
    """One problem of a pydantic ``ValidationError``, without the input that caused it."""

    #: Where: the dotted location (``"field.0.sub"``), or the caller's word for the whole value.
    where: str
    #: The location as pydantic gives it.
    loc: tuple[int | str, ...]
    #: pydantic's error type (``"missing"``, ``"extra_forbidden"``, ...).
    type: str
    #: pydantic's message (a validator's own message, as it wrote it).
    message: str


def validation_problems(exc: ValidationError, *, whole: str = "(value)") -> list[ValidationProblem]:
    """The problems of ``exc``, in pydantic's order, leaving out the inputs (which may be secret).

    Args:
        exc: what validating raised.
        whole: the ``where`` of a problem with the whole value rather than a part of it.
    """
    return [
        ValidationProblem(
            location_text(error["loc"]) or whole, error["loc"], error["type"], error["msg"]
        )
        for error in exc.errors(include_input=False, include_url=False, include_context=False)
    ]


def describe_validation(
    exc: ValidationError,
    *,
    whole: str = "(value)",
    where: Callable[[ValidationProblem], str] | None = None,
) -> str:
    """The problems of ``exc`` on one line: ``"where: message; where: message"``.

    Args:
        exc: what validating raised.
        whole: the ``where`` of a problem with the whole value (e.g. ``"(config)"``).
        where: names a problem's location otherwise than by its dotted path.
    """
    return "; ".join(
        f"{where(problem) if where else problem.where}: {problem.message}"
        for problem in validation_problems(exc, whole=whole)
    )


class HostInterrupt:
    """Marks the exceptions the host raises to interrupt a run (not an error class).

    The host's own ``SystemExit`` for a signal (``SignalExit``) and a passed deadline
    (``DeadlineExceeded``) carry this mark. With ``KeyboardInterrupt`` they are what ends a run
    (:func:`is_interrupt`); any other ``BaseException`` raised by an asset's or a resource's own
    code (``sys.exit()``, ``GeneratorExit``, ``asyncio.CancelledError``, one of its own) is that
    asset's or resource's failure, and the run goes on.
    """


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` interrupts the run: ``KeyboardInterrupt`` or one the host raised for that
    (:class:`HostInterrupt`), as opposed to what user code raised on its own."""
    return isinstance(exc, (KeyboardInterrupt, HostInterrupt))
