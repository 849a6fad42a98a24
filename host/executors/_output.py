"""What a worker prints and logs, on its way to the caller, masked at both ends.

In a worker, :class:`LogForwarder` sends every log record as a dict of simple values (its text
formatted and masked there) to the caller, at the levels the caller set
(:func:`caller_log_levels`, read in the caller and applied in the worker). In the caller,
:func:`reemit_record` handles such a record on the same logger, and :func:`write_output` writes
what a worker printed to the caller's own ``sys.stdout`` or ``sys.stderr``; both mask again with
the run's secrets. :func:`forward_output` does both for a batch of what a worker wrote and
logged, in order.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from host._secrets import mask

__all__ = [
    "LogForwarder",
    "caller_log_levels",
    "forward_output",
    "reemit_record",
    "write_output",
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


def write_output(stream: str, text: str, secrets: Collection[str]) -> None:
    """Write what a worker printed to this process's ``sys.stdout`` or ``sys.stderr``
    (``stream``: ``"stdout"`` or ``"stderr"``, as they are now, so a redirection or a capture
    in the caller applies), masked with ``secrets``.

    A stream that cannot be written (closed in the caller) loses the text, never the run.
    """
    target = getattr(sys, stream, None)
    if target is None:
        return
    with contextlib.suppress(Exception):
        target.write(mask(text, secrets))
        target.flush()


def forward_output(items: Iterable[tuple[str, Any]], secrets: Collection[str]) -> None:
    """Write and re-emit, in order, what a worker wrote and logged: ``("stdout" | "stderr",
    text)`` items with :func:`write_output`, ``("log", fields)`` ones with
    :func:`reemit_record`."""
    for kind, item in items:
        if kind == "log":
            reemit_record(item, secrets)
        elif kind in ("stdout", "stderr"):
            write_output(kind, item, secrets)
