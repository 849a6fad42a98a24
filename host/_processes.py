"""Telling one process from another: a pid and when that process started, read from
``/proc``; the run history and the ``multiprocess`` workers use it to see a process gone."""

from __future__ import annotations

__all__ = ["process_start"]


def process_start(pid: int) -> str | None:
    """A token for when process ``pid`` started (``/proc/PID/stat`` field 22, clock ticks
    since boot), or ``None`` when it is not running: no such process, or one that has ended
    and not yet been reaped (a zombie), or no ``/proc`` to read.

    A pid and this token together name one process: a later process given the same pid has
    another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2 :].split()
    if len(fields) <= 19 or fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()
