"""What ``host run`` shows as a run goes: one plain line per event, or a live status line.

:class:`Progress` is a hook plugin (``host_event``) that prints plain lines, or on a terminal
keeps a live status line at the bottom (redrawn on each event and ten times a second) with the
finished steps printed above it. The summary at the end is :mod:`host._summary`'s.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from host._events import (
    AssetFailed,
    AssetSkipped,
    AssetStarted,
    AssetSucceeded,
    Event,
    ResourceEvent,
    RunFinished,
    RunStarted,
)
from host._hookspecs import hookimpl
from host._output import Mask, Output, first_line, seconds, unmasked

__all__ = ["Progress", "event_line"]


def _asset_line(event: Event, mask: Mask) -> str | None:
    if isinstance(event, AssetStarted):
        return f"asset {event.asset_key}: started (pid {event.pid})"
    if isinstance(event, AssetSucceeded):
        return f"asset {event.asset_key}: ok in {seconds(event.duration)}"
    if isinstance(event, AssetFailed):
        return (
            f"asset {event.asset_key}: FAILED in {seconds(event.duration)}: "
            f"{event.error.type.rpartition('.')[2]}: {first_line(event.error.message, mask)}"
        )
    if isinstance(event, AssetSkipped):
        return f"asset {event.asset_key}: skipped (upstream {event.upstream!r} did not succeed)"
    return None


def _resource_line(event: ResourceEvent, mask: Mask) -> str | None:
    where = f"in {seconds(event.duration)} (pid {event.pid})"
    if event.error is not None:
        return (
            f"resource {event.resource_key}: {event.phase} FAILED {where}: "
            f"{first_line(event.error.message, mask)}"
        )
    words = {"yield_enter": "up", "yield_exit": "down"}
    if event.phase in words:
        return f"resource {event.resource_key}: {words[event.phase]} {where}"
    return None  # setup and teardown are inside up and down; the summary shows them


def event_line(event: Event, mask: Mask = unmasked) -> str | None:
    """One plain line for an event, or ``None`` for events plain progress does not show.

    Texts that are cut to one line are masked with ``mask`` first.
    """
    if isinstance(event, RunStarted):
        return f"run {event.run_id}: {len(event.assets)} assets on {event.executor}"
    if isinstance(event, RunFinished):
        state = "succeeded" if event.success else "failed"
        return f"run {event.run_id}: {state} in {seconds(event.duration)}"
    if isinstance(event, ResourceEvent):
        return _resource_line(event, mask)
    return _asset_line(event, mask)


class _Inert:
    """What the progress display is in a worker process: nothing."""


class Progress:
    """A hook plugin showing a run's progress: plain lines, or a live status line on a terminal.

    The live display prints finished steps as lines and keeps one status line at the bottom
    (assets done, running, resources up, elapsed time), redrawn on every event and every tenth
    of a second.

    Showing progress never fails the run: writing cannot raise (:class:`Output`), and an error
    while a line is made is kept in :attr:`failure` (the first one) and the event is not shown.
    """

    SPINNER = "|/-\\"

    def __init__(self, out: Output, total: int, live: bool) -> None:
        """Show a run's progress on ``out``.

        Args:
            out: where to write.
            total: how many assets the run will compute.
            live: keep a live status line (a terminal) instead of printing plain lines.
        """
        self.out = out
        self.total = total
        self.live = live
        self.done = 0
        self.running: dict[str, None] = {}
        self.up: dict[str, None] = {}
        self.start = time.perf_counter()
        self.ticks = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # the state is read by the ticker thread too
        #: The first error met while showing an event, if any (the run went on).
        self.failure: Exception | None = None

    @hookimpl
    def host_event(self, event: Event) -> None:
        """Update the state with ``event`` and show it; never raises an ``Exception``."""
        try:
            self._show(event)
        except Exception as exc:
            if self.failure is None:
                self.failure = exc

    def _show(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, AssetStarted):
                self.running[event.asset_key] = None
            elif isinstance(event, AssetSucceeded | AssetFailed | AssetSkipped):
                self.running.pop(event.asset_key, None)
                self.done += 1
            elif isinstance(event, ResourceEvent) and event.error is None:
                if event.phase == "yield_enter":
                    self.up[event.resource_key] = None
                elif event.phase == "yield_exit":
                    self.up.pop(event.resource_key, None)
        line = event_line(event, self.out.mask)
        if not self.live:
            if line is not None:
                self.out.write(line)
            return
        if line is not None and not isinstance(event, AssetStarted | RunStarted):
            self._print(line)
        else:
            self._redraw()

    def _status(self) -> str:
        with self._lock:
            self.ticks += 1
            running = ", ".join(self.running) or "-"
            up = ", ".join(self.up) or "-"
        return (
            f"{self.SPINNER[self.ticks % len(self.SPINNER)]} {self.done}/{self.total} assets  "
            f"running: {running}  resources up: {up}  "
            f"{time.perf_counter() - self.start:.1f}s"
        )

    def _print(self, line: str) -> None:
        self.out.write("\r\x1b[2K" + line + "\n" + self._status(), end="")

    def _redraw(self) -> None:
        self.out.write("\r\x1b[2K" + self._status(), end="")

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            self._redraw()

    def __reduce__(self) -> tuple[type[_Inert], tuple[()]]:
        # Executors with worker processes send the run's plugins to each worker; the display
        # lives in this process only (host_event is called here), so workers get a stand-in.
        return _Inert, ()

    @contextlib.contextmanager
    def showing(self) -> Iterator[Progress]:
        """Show progress for the block; the live status line is cleared at the end."""
        if self.live:
            self._thread = threading.Thread(target=self._tick, name="host-progress", daemon=True)
            self._thread.start()
        try:
            yield self
        finally:
            if self._thread is not None:
                self._stop.set()
                self._thread.join()
                self.out.write("\r\x1b[2K", end="")
