"""Which part of a run started each thread of a worker process, and the threads left running.

A resource or an asset may start a thread and leave it running when the run ends in that
process. A worker does not wait for such a thread; it logs it as a warning (logger
``host.executors``), naming the thread and what started it, and exits without it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection

from host._events import Event, ResourceEvent
from host._secrets import mask

__all__ = ["ThreadOwners"]

#: Where the host reports about worker processes (lingering threads, output).
log = logging.getLogger("host.executors")


class ThreadOwners:
    """Which part of the run started each thread of this process: the threads that exist at
    each event and did not at the one before were started by what the event is about."""

    def __init__(self) -> None:
        self._owners: dict[threading.Thread, str | None] = dict.fromkeys(threading.enumerate())

    def note(self, event: Event | None) -> None:
        """Attribute the threads that appeared since the last event to what ``event`` is about."""
        current = threading.enumerate()
        if len(current) == len(self._owners) and all(t in self._owners for t in current):
            return
        owner = "the run"
        if isinstance(event, ResourceEvent):
            owner = f"resource {event.resource_key!r}"
        elif (key := getattr(event, "asset_key", None)) is not None:
            owner = f"asset {key!r}"
        elif (key := getattr(event, "resource_key", None)) is not None:
            owner = f"resource {key!r}"  # a record logged in one of its phases
        for thread in current:
            self._owners.setdefault(thread, owner)

    def lingering(self) -> list[tuple[threading.Thread, str]]:
        """Non-daemon threads started during the run and still running, with what started
        them."""
        self.note(None)
        me = threading.current_thread()
        return [
            (thread, owner)
            for thread, owner in self._owners.items()
            if owner is not None
            and thread is not me
            and thread is not threading.main_thread()
            and not thread.daemon
            and thread.is_alive()
        ]

    def report(
        self, run_id: str, where: str, ignore: tuple[str, ...], secrets: Collection[str]
    ) -> int:
        """Log a warning for each of :meth:`lingering` whose name does not start with one of
        ``ignore``; return how many. ``where`` names the worker (``"worker process 123"``)."""
        found = [(t, o) for t, o in self.lingering() if not t.name.startswith(ignore)]
        for thread, owner in found:
            target = getattr(thread, "_target", None)
            runs = (
                f", running {getattr(target, '__module__', '?')}."
                f"{getattr(target, '__qualname__', repr(target))}"
                if target is not None
                else ""
            )
            log.warning(
                "%s",
                mask(
                    f"run {run_id}: {where}: non-daemon thread {thread.name!r}{runs}, started "
                    f"by {owner}, was still running when the run ended there; it was not "
                    f"waited for (the process exits without it). Stop it in the resource's "
                    f"teardown, or make it a daemon thread.",
                    secrets,
                ),
            )
        return len(found)
