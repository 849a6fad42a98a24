"""Typed run events and the result of a run.

Every event carries the run id, the pid of the process where it happened, and a wall-clock
timestamp; phase events carry their duration in seconds. Events are plain frozen dataclasses:
cheap to build, picklable (they travel from worker processes to the parent), and easy to match.
"""

from __future__ import annotations

import contextvars
import os
import re
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import logging

from host._errors import is_interrupt

__all__ = [
    "AssetFailed",
    "AssetSkipped",
    "AssetStarted",
    "AssetSucceeded",
    "ErrorInfo",
    "Event",
    "LogRecorded",
    "ResourceEvent",
    "ResourcePhase",
    "ResourceRecycled",
    "ResourceReused",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "StepLog",
    "current_pid",
    "current_step",
    "describe_exception",
    "format_exception",
    "safe_repr",
    "safe_str",
    "unprintable",
]

#: The phases a resource goes through. ``setup``/``teardown`` are the resource's own methods;
#: ``yield_enter``/``yield_exit`` are entering and leaving ``yield_for_execution`` (which, by
#: default, contain setup and teardown).
ResourcePhase = Literal["setup", "yield_enter", "yield_exit", "teardown"]


def unprintable(obj: object) -> str:
    """What stands for an object whose text cannot be had: ``<unprintable TypeName>``."""
    return f"<unprintable {type(obj).__name__}>"


def safe_str(obj: object) -> str:
    """``str(obj)``, or :func:`unprintable` when its ``__str__`` raises or returns no str.

    Whatever ``__str__`` raises (an ``Exception``, one whose own ``__str__`` raises, a
    ``SystemExit`` or other ``BaseException`` of its own) is swallowed; a ``str`` subclass
    returned is turned into a plain ``str``. Only an interrupt of the run
    (:func:`host._errors.is_interrupt`: Ctrl-C, the host's signal exit, a deadline) goes on.
    """
    return _text_of(str, obj)


def safe_repr(obj: object) -> str:
    """``repr(obj)``, or :func:`unprintable` when its ``__repr__`` raises (as :func:`safe_str`)
    or returns no str."""
    return _text_of(repr, obj)


def _text_of(render: Callable[[object], object], obj: object) -> str:
    try:
        text = render(obj)
    except BaseException as exc:
        if is_interrupt(exc):
            raise
        return unprintable(obj)
    return text if type(text) is str else str.__str__(text)


def describe_exception(exc: BaseException) -> str:
    """``"TypeName: message"`` for ``exc`` (``"TypeName"`` if its message is empty), never
    raising.

    Use it wherever an exception raised by user code (an asset, a resource, a plugin) is put
    into a message: an exception whose ``__str__`` raises or returns no str is described as
    ``"TypeName: <unprintable TypeName>"`` instead of raising in the middle of the report.
    """
    message = safe_str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


#: How :mod:`traceback` shows an exception whose ``__str__`` failed, at the end of a line.
_STR_FAILED = re.compile(r"(?m)(?P<type>[\w.<>]+): <exception str\(\) failed>$")


def _unprintable_line(match: re.Match[str]) -> str:
    kind = match.group("type")
    return f"{kind}: <unprintable {kind.rpartition('.')[2]}>"


def format_exception(exc: BaseException) -> str:
    """The formatted traceback of ``exc`` with its chain of causes, never raising.

    As :func:`traceback.format_exception`, except that an exception (or a cause) whose
    ``__str__`` raises or returns no str shows as ``<unprintable TypeName>``; if formatting
    fails altogether, the frames and the :func:`describe_exception` line are given.
    """
    kind = type(exc)
    try:
        text = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    except Exception:
        try:
            frames = "".join(traceback.format_tb(exc.__traceback__))
        except Exception:
            frames = ""
        head = "Traceback (most recent call last):\n" if frames else ""
        text = f"{head}{frames}{kind.__module__}.{kind.__qualname__}: {safe_str(exc)}\n"
    return _STR_FAILED.sub(_unprintable_line, text)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A picklable description of an error: type, message, formatted traceback.

    Attributes:
        type: the qualified name of the exception class.
        message: ``str(exc)``, or ``<unprintable TypeName>`` when that raises or gives no str.
        traceback: the formatted traceback, with the chain of causes (a link whose text cannot
            be had shows as ``<unprintable TypeName>``).
        resource_key: the resource at fault, when a resource phase failed.
    """

    type: str
    message: str
    traceback: str
    resource_key: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, resource_key: str | None = None) -> ErrorInfo:
        """Describe ``exc`` (its traceback is formatted now, where it happened).

        Never raises for what the exception's own code does: a ``__str__`` that raises or
        returns no str gives ``<unprintable TypeName>`` (see :func:`safe_str`).
        """
        kind = type(exc)
        return cls(
            type=f"{kind.__module__}.{kind.__qualname__}",
            message=safe_str(exc),
            traceback=format_exception(exc),
            resource_key=resource_key,
        )


#: This process's pid, read once: ``os.getpid`` is a system call, and every event carries it.
_process = {"pid": os.getpid()}


def _forked() -> None:
    _process["pid"] = os.getpid()


# A forked child learns its own pid here; a spawned one imports this module afresh.
os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    """This process's pid (read once per process, again after a fork)."""
    return _process["pid"]


@dataclass(frozen=True, slots=True)
class _Base:
    run_id: str
    pid: int = field(default_factory=current_pid, kw_only=True)
    timestamp: float = field(default_factory=time.time, kw_only=True)


@dataclass(frozen=True, slots=True)
class RunStarted(_Base):
    """A run started (in the coordinating process)."""

    executor: str
    assets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunFinished(_Base):
    """A run finished, after every teardown."""

    success: bool
    duration: float


@dataclass(frozen=True, slots=True)
class AssetStarted(_Base):
    """An asset started computing."""

    asset_key: str


@dataclass(frozen=True, slots=True)
class AssetSucceeded(_Base):
    """An asset computed its output."""

    asset_key: str
    duration: float


@dataclass(frozen=True, slots=True)
class AssetFailed(_Base):
    """An asset raised, or a resource it needs failed to come up, or its worker died."""

    asset_key: str
    duration: float
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class AssetSkipped(_Base):
    """An asset was not run because an upstream asset failed or was skipped."""

    asset_key: str
    upstream: str


@dataclass(frozen=True, slots=True)
class ResourceEvent(_Base):
    """A resource phase ended, successfully (``error is None``) or not.

    ``scope`` is ``"session"`` for a session-scoped resource in a :class:`host.Session` (it
    outlives the run that brought it up; its ``yield_exit`` comes when the session closes,
    with the session's id as ``run_id``), else ``"run"``.
    """

    resource_key: str
    phase: ResourcePhase
    duration: float
    error: ErrorInfo | None = None
    scope: Literal["run", "session"] = "run"


@dataclass(frozen=True, slots=True)
class ResourceReused(_Base):
    """A run took a session-scoped resource that was already up in this process.

    Attributes:
        resource_key: the resource.
        session_id: the :class:`host.Session` it belongs to.
        since_run: the run that brought it up in this process.
        uses: how many runs have used it in this process, this one included.
        age: seconds since it came up.
    """

    resource_key: str
    session_id: str
    since_run: str
    uses: int
    age: float


@dataclass(frozen=True, slots=True)
class ResourceRecycled(_Base):
    """A session-scoped resource was torn down between runs, to come up again fresh.

    Attributes:
        resource_key: the resource.
        session_id: the :class:`host.Session` it belongs to.
        reason: why: its ``host_check`` returned false or raised, or it outlived its
            ``host_max_lifetime``; masked.
    """

    resource_key: str
    session_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class LogRecorded(_Base):
    """A log record emitted by a step of the run: an asset computing, or a resource phase.

    ``context.log`` of an asset or a resource (at every level), a Python ``logging`` record
    its code emitted (when its logger's level lets it through in that process), and a warning
    its code issued (``warnings.warn``, logger ``py.warnings``) become one event each, in the
    process where they happened (``pid``), their text masked with the run's secrets.

    Attributes:
        level: the ``logging`` level number (``logging.WARNING`` is 30).
        level_name: the level's name (``"WARNING"``).
        logger: the logger's name (``"host.asset"``, ``"host.resource"`` for ``context.log``).
        message: the formatted message, with the formatted exception and stack if any.
        asset_key: the asset whose code emitted it (``None`` for a resource phase).
        resource_key: the resource whose phase emitted it (``None`` for an asset).
        phase: the resource phase (``None`` for an asset).
    """

    level: int
    level_name: str
    logger: str
    message: str
    asset_key: str | None = None
    resource_key: str | None = None
    phase: ResourcePhase | None = None

    @property
    def step(self) -> str:
        """``"asset NAME"`` or ``"resource KEY"``: the step that emitted it."""
        if self.asset_key is not None:
            return f"asset {self.asset_key}"
        return f"resource {self.resource_key}"


class StepLog(Protocol):
    """The step of a run running in a thread or task, as log capture sees it."""

    def record(self, record: logging.LogRecord) -> None:
        """Emit ``record`` as this step's :class:`LogRecorded` event."""
        ...


#: The step running in this thread or asyncio task, if any (set by ``host._runtime``).
STEP: contextvars.ContextVar[StepLog | None] = contextvars.ContextVar("host_step", default=None)


def current_step() -> StepLog | None:
    """The step of a run running in this thread (or asyncio task), if any."""
    return STEP.get()


#: Any event of a run.
Event = (
    RunStarted | RunFinished | AssetStarted | AssetSucceeded | AssetFailed | AssetSkipped
    | ResourceEvent | ResourceReused | ResourceRecycled | LogRecorded
)


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run produced.

    Attributes:
        run_id: the run's id.
        success: no asset failed and no resource phase failed.
        outputs: asset key -> output, for every asset that succeeded.
        failures: asset key -> error, for every asset that failed (raised, needed a resource that
            failed to come up, or ran in a worker that died).
        skipped: the assets not run because something upstream failed.
        resource_errors: resource errors not attributable to one asset (teardown failures).
        events: every event of the run, in order.
    """

    run_id: str
    success: bool
    outputs: Mapping[str, Any]
    failures: Mapping[str, ErrorInfo]
    skipped: tuple[str, ...] = ()
    resource_errors: tuple[ErrorInfo, ...] = ()
    events: tuple[Event, ...] = ()

    def events_of(self, kind: type[Any]) -> list[Any]:
        """The events of one type, in order."""
        return [event for event in self.events if isinstance(event, kind)]

    def output_for_node(self, node: str, output_name: str = "result") -> Any:
        """The output of asset ``node`` (Dagster's name for ``outputs[node]``; an asset has
        one output, ``output_name`` ``"result"``).

        Raises:
            KeyError: the asset has no output in this run (it failed, was skipped, or is not
                one of the run's), saying which.
        """
        if output_name != "result":
            raise KeyError(
                f"asset {node!r} has one output, 'result', not {output_name!r}: host assets "
                f"return one value"
            )
        if node in self.outputs:
            return self.outputs[node]
        why = (
            "it failed" if node in self.failures
            else "it was skipped" if node in self.skipped
            else "it is not an asset of this run"
        )
        raise KeyError(f"asset {node!r} has no output in run {self.run_id}: {why}")
