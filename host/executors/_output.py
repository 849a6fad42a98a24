"""What a worker prints and logs, on its way to the caller, masked at both ends.

In a worker, :class:`LogForwarder` sends every log record as a dict of simple values (its text
formatted and masked there) to the caller, at the levels the caller set
(:func:`caller_log_levels`, read in the caller and applied in the worker). In the caller,
:func:`reemit_record` handles such a record on the same logger, and :func:`write_output` writes
what a worker printed to the caller's own ``sys.stdout`` or ``sys.stderr``; both mask again with
the run's secrets. :func:`forward_output` does both for a batch of what a worker wrote and
logged, in order; :class:`CapturedOutput` keeps such a batch in a worker whose assets run in
threads.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import IO, Any

from host._secrets import mask

__all__ = [
    "CapturedOutput",
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


class _Captured:
    """Stands in for ``sys.stdout``/``sys.stderr`` on a worker while a run is installed there:
    text written goes to ``sink`` (masked when shipped), whole lines at a time."""

    def __init__(self, name: str, original: IO[str], sink: CapturedOutput) -> None:
        self.name = name
        self.original = original
        self._sink = sink

    def write(self, text: str) -> int:
        self._sink.add(self.name, text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class CapturedOutput:
    """What the run prints and logs in a worker whose assets run in threads (a Dask worker),
    kept until the next result takes it, in the items :func:`forward_output` handles.

    While installed, ``sys.stdout`` and ``sys.stderr`` are replaced by writers that keep the
    text, and a :class:`LogForwarder` on the root logger keeps each record. What code below
    Python writes to file descriptors 1 and 2 is not captured (a worker process of its own
    redirects those instead, as ``multiprocess`` does).

    Args:
        secrets: the run's secrets in this process (a set that grows as resources come up),
            masked in what :meth:`take` gives.
    """

    def __init__(self, secrets: Collection[str]) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[str, Any]] = []
        self._secrets = secrets  # the run's secrets here (a set that grows)
        self._streams: list[_Captured] = []
        self._handler = LogForwarder(lambda fields: self.add("log", fields), lambda: secrets)

    def add(self, kind: str, item: Any) -> None:
        """Keep ``item``: text for ``"stdout"``/``"stderr"`` (joined to the text before it of
        the same stream), record fields for ``"log"``."""
        with self._lock:
            if kind != "log" and self._items and self._items[-1][0] == kind:
                self._items[-1] = (kind, self._items[-1][1] + item)
            else:
                self._items.append((kind, item))

    def take(self) -> list[tuple[str, Any]]:
        """Everything kept so far, masked (and forgotten here)."""
        with self._lock:
            items, self._items = self._items, []
        return [
            (kind, item if kind == "log" else mask(item, self._secrets)) for kind, item in items
        ]

    def install(self) -> None:
        """Start capturing (``sys.stdout``, ``sys.stderr``, the root logger)."""
        for name in ("stdout", "stderr"):
            original = getattr(sys, name)
            captured = _Captured(name, original, self)
            self._streams.append(captured)
            setattr(sys, name, captured)
        logging.getLogger().addHandler(self._handler)

    def uninstall(self) -> None:
        """Stop capturing; a stream replaced again meanwhile by someone else is left alone."""
        logging.getLogger().removeHandler(self._handler)
        for captured in reversed(self._streams):
            if getattr(sys, captured.name) is captured:
                setattr(sys, captured.name, captured.original)
        self._streams.clear()
