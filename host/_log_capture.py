"""Capturing a run's log records and warnings, per step, as :class:`host.LogRecorded` events.

While a run is in this process, one handler sits first on the root logger and
``warnings.showwarning`` logs on ``py.warnings``; a record emitted while a :class:`Step` runs
(an asset, a resource phase: the ``STEP`` context variable says which) becomes that step's
event, masked, and the record itself is masked in place. Records emitted outside any step are
left alone. See ``specs/logs.md``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from host._events import STEP, LogRecorded, ResourcePhase, safe_str
from host._secrets import mask

if TYPE_CHECKING:
    from host._runtime import ProcessRuntime

__all__ = ["Step", "in_step", "install_lock", "start_capture", "stop_capture"]


class Step:
    """The step of a run running in this thread (or task): an asset, or a resource phase.

    Made for each asset and each resource phase (a plain class with slots: cheap to make).

    Attributes:
        runtime: the run's runtime in this process.
        asset_key: the asset computing (``None`` in a resource phase).
        resource_key: the resource whose phase runs (``None`` for an asset).
        phase: the resource phase.
    """

    __slots__ = ("asset_key", "phase", "resource_key", "runtime")

    def __init__(
        self,
        runtime: ProcessRuntime,
        asset_key: str | None = None,
        resource_key: str | None = None,
        phase: ResourcePhase | None = None,
    ) -> None:
        self.runtime = runtime
        self.asset_key = asset_key
        self.resource_key = resource_key
        self.phase = phase

    @property
    def name(self) -> str:
        """``"asset NAME"`` or ``"resource KEY"``."""
        if self.asset_key is not None:
            return f"asset {self.asset_key}"
        return f"resource {self.resource_key}"

    def record(self, record: logging.LogRecord) -> None:
        """Emit ``record`` as a :class:`LogRecorded` event of this step, masked.

        The record itself is masked in place too (its message formatted, its exception and
        stack as text), so the handlers that see it after this one never show a secret (what
        was logged stays in the private ``_host_unmasked``, which no handler of the host shows
        or forwards), and
        it is tagged ``host_step`` (the step's :attr:`name`), which travels with a record a
        worker forwards.
        """
        runtime = self.runtime
        secrets = runtime.secrets
        raw = safe_str(record.msg) if not record.args else _message(record)
        message = mask(raw, secrets)
        if message != raw:
            # What the code logged, for this process's own checks of code that logs a secret
            # (``host.testing.check_resource``); a private attribute, never forwarded.
            record._host_unmasked = raw
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            with contextlib.suppress(Exception):
                record.exc_text = logging.Formatter().formatException(record.exc_info)
        text = message
        if record.exc_text:
            record.exc_text = mask(record.exc_text, secrets)
            text = f"{text}\n{record.exc_text}"
        if record.stack_info:
            record.stack_info = mask(record.stack_info, secrets)
            text = f"{text}\n{record.stack_info}"
        record.host_step = self.name
        runtime.emit(
            LogRecorded(
                runtime.run_id,
                level=record.levelno,
                level_name=record.levelname,
                logger=record.name,
                message=text,
                asset_key=self.asset_key,
                resource_key=self.resource_key,
                phase=self.phase,
            )
        )


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        return f"{safe_str(record.msg)} (its arguments do not fit: {safe_str(record.args)})"


@contextlib.contextmanager
def in_step(step: Step) -> Iterator[None]:
    """Run the block as ``step``: what it logs or warns is that step's."""
    token = STEP.set(step)
    try:
        yield
    finally:
        STEP.reset(token)


class _Capture(logging.Handler):
    """On the root logger while a run is in this process: a record emitted in a step becomes
    that step's :class:`LogRecorded` event (a record emitted elsewhere is left alone).

    Inserted first among the root logger's handlers, so that the handlers after it (a worker's
    :class:`~host.executors.LogForwarder`) see the ``host_step`` tag.
    """

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)

    def handle(self, record: logging.LogRecord) -> bool:  # no lock: nothing shared is written
        step = STEP.get()
        if step is None or getattr(record, "host_captured", False):
            return False
        try:
            step.record(record)
        except Exception:
            self.handleError(record)
            return False
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and not _handled_elsewhere(record):
            last.handle(record)  # as if no handler were installed here
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


def _handled_elsewhere(record: logging.LogRecord) -> bool:
    """Whether a handler other than the capture's sees ``record`` on its way up."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(handler is not _CAPTURE for handler in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` while a run is in this process: a warning issued in a step is
    logged on ``py.warnings`` (as ``logging.captureWarnings`` does), so it is that step's."""
    step = STEP.get()
    previous = _installed["showwarning"]
    if step is None or file is not None:
        if callable(previous):
            previous(message, category, filename, lineno, file, line)
        return
    text = f"{filename}:{lineno}: {category.__name__}: {message}"
    logging.getLogger("py.warnings").warning("%s", text)


_CAPTURE = _Capture()
#: How many runtimes in this process capture now, and the ``showwarning`` they replaced.
_installed: dict[str, Any] = {"count": 0, "showwarning": None}
install_lock = threading.Lock()


def start_capture() -> None:
    """Count one more runtime capturing here (called under ``install_lock``)."""
    _installed["count"] += 1
    root = logging.getLogger()
    if _CAPTURE not in root.handlers:
        root.handlers.insert(0, _CAPTURE)
    if warnings.showwarning is not _show_warning:
        _installed["showwarning"] = warnings.showwarning
        warnings.showwarning = _show_warning


def stop_capture() -> None:
    """Count one runtime less capturing here (called under ``install_lock``)."""
    _installed["count"] -= 1
    if _installed["count"] > 0:
        return
    logging.getLogger().removeHandler(_CAPTURE)
    if warnings.showwarning is _show_warning:
        warnings.showwarning = _installed["showwarning"]
    _installed["showwarning"] = None
