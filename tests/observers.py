"""Observers shared by tests: every event of a run (in the caller), every log line."""

from __future__ import annotations

import logging

from host import Event, hookimpl


class _Inert:
    """What an :class:`EventLog` becomes in a worker process: nothing (events arrive here)."""


class EventLog:
    """Every event of the run as it happens, in the caller (``host_event``)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def host_event(self, event: Event) -> None:
        self.events.append(event)

    def __reduce__(self) -> tuple[type[_Inert], tuple[()]]:
        return _Inert, ()


class Captured(logging.Handler):
    """Every log record of the process, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
