"""What ``host run`` shows as a run goes: one plain line per event, or a live display.

:class:`Progress` is a hook plugin (``host_event``). In plain mode (stdout is not a terminal,
or ``--plain``, or ``NO_COLOR``) it prints one line per event. On a terminal it keeps a live
``rich`` display at the bottom (assets done of the total, what is running in which process,
the resources up in each process, the time so far), refreshed by ``rich``, with each finished
step printed above it; the summary at the end is then drawn as ``rich`` tables
(:func:`rich_summary`). Errors are not spelt out as they happen: each line names the number
of its error, and the summary (``host._summary``) gives each distinct error once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from host._events import (
    AssetFailed,
    AssetSkipped,
    AssetStarted,
    AssetSucceeded,
    Event,
    LogRecorded,
    ResourceEvent,
    RunFinished,
    RunStarted,
)
from host._hookspecs import hookimpl
from host._output import Mask, Output, seconds, unmasked
from host._summary import ASSET_HEADERS, RESOURCE_HEADERS, ErrorCatalog, RunView

__all__ = ["Progress", "event_line", "log_line", "rich_summary", "terminal_console"]


def log_line(event: LogRecorded, mask: Mask = unmasked) -> str:
    """A log record as ``host run`` shows it: the step, its process, the level, the logger and
    the message (continuation lines indented), masked: ``asset users (pid 12): WARNING
    host.asset: 3 rows dropped``."""
    where = event.step if event.phase is None else f"{event.step} ({event.phase}"
    where = f"{where}, pid {event.pid})" if event.phase else f"{where} (pid {event.pid})"
    message = event.message.rstrip().replace("\n", "\n    ")
    return mask(f"{where}: {event.level_name} {event.logger}: {message}")


def _asset_line(event: Event, mask: Mask, catalog: ErrorCatalog | None) -> str | None:
    if isinstance(event, AssetStarted):
        return f"asset {event.asset_key}: started (pid {event.pid})"
    if isinstance(event, AssetSucceeded):
        return f"asset {event.asset_key}: ok in {seconds(event.duration)}"
    if isinstance(event, AssetFailed):
        kind = event.error.type.rpartition(".")[2]
        number = catalog.add_event(event) if catalog is not None else None
        ref = f" (error {number.number} in the summary)" if number is not None else ""
        return mask(f"asset {event.asset_key}: FAILED in {seconds(event.duration)}: {kind}{ref}")
    if isinstance(event, AssetSkipped):
        return f"asset {event.asset_key}: skipped (upstream {event.upstream!r} did not succeed)"
    return None


def _resource_line(
    event: ResourceEvent, mask: Mask, catalog: ErrorCatalog | None
) -> str | None:
    where = f"in {seconds(event.duration)} (pid {event.pid})"
    words = {"yield_enter": "up", "yield_exit": "down"}
    if event.error is not None:
        number = catalog.add_event(event) if catalog is not None else None
        ref = f" (error {number.number} in the summary)" if number is not None else ""
        kind = event.error.type.rpartition(".")[2]
        phase = words.get(event.phase, event.phase)
        return mask(f"resource {event.resource_key}: {phase} FAILED {where}: {kind}{ref}")
    if event.phase in words:
        return f"resource {event.resource_key}: {words[event.phase]} {where}"
    return None  # setup and teardown are inside up and down; the summary shows them


def event_line(
    event: Event, mask: Mask = unmasked, catalog: ErrorCatalog | None = None
) -> str | None:
    """One plain line for an event, or ``None`` for events plain progress does not show.

    A failure's line names its exception type and, given the run's ``catalog``, the number of
    its error in the summary; the message itself is shown once, in the summary. Every line is
    masked with ``mask``.
    """
    if isinstance(event, RunStarted):
        return f"run {event.run_id}: {len(event.assets)} assets on {event.executor}"
    if isinstance(event, RunFinished):
        state = "succeeded" if event.success else "failed"
        return f"run {event.run_id}: {state} in {seconds(event.duration)}"
    if isinstance(event, ResourceEvent):
        return _resource_line(event, mask, catalog)
    return _asset_line(event, mask, catalog)


class _Inert:
    """What the progress display is in a worker process: nothing."""


class _OutputFile:
    """A text stream for ``rich`` that writes through an :class:`Output` (masked, never
    raising for the stream's sake)."""

    def __init__(self, out: Output) -> None:
        self.out = out

    def write(self, text: str) -> int:
        self.out.write(text, end="")
        return len(text)

    def flush(self) -> None:
        """Each write is flushed already."""

    def isatty(self) -> bool:
        return True


def terminal_console(out: Output) -> Console:
    """A ``rich`` console drawing on ``out``'s stdout (a terminal), through its masking."""
    width = 0
    with contextlib.suppress(AttributeError, OSError, ValueError):
        if out.stdout is not None:
            width = os.get_terminal_size(out.stdout.fileno()).columns
    if width <= 0:  # a terminal that does not say its size (a new pseudo-terminal)
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) > 0 else 80
    return Console(
        file=_OutputFile(out),  # type: ignore[arg-type]
        force_terminal=True,
        width=width,
        markup=False,
        emoji=False,
        highlight=False,
    )


_STYLES = {
    "ok": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "interrupted": "bold yellow",
    "not run": "dim",
}


def rich_summary(view: RunView) -> RenderableType:
    """The summary of ``view`` as ``rich`` tables: assets, resources, errors, the last line."""
    assets = Table(title="Assets", title_justify="left", header_style="bold")
    for header in ASSET_HEADERS:
        assets.add_column(header, overflow="fold")
    for row in view.assets:
        assets.add_row(*row[:1], Text(row[1], style=_STYLES.get(row[1], "")), *row[2:])
    parts: list[RenderableType] = [assets]
    if view.resources:
        resources = Table(title="Resources", title_justify="left", header_style="bold")
        for header in RESOURCE_HEADERS:
            resources.add_column(header, overflow="fold")
        for row in view.resources:
            resources.add_row(
                *(Text(cell, style="bold red" if "FAILED" in cell else "") for cell in row)
            )
        parts.append(resources)
    else:
        parts.append(Text("Resources: none brought up"))
    if view.errors:
        errors = Table(title="Errors", title_justify="left", header_style="bold")
        errors.add_column("#")
        errors.add_column("ERROR", overflow="fold")
        errors.add_column("WHERE", overflow="fold")
        for group in view.errors:
            errors.add_row(
                str(group.number),
                Text(f"{group.short_type}: {group.message.strip()}", style="red"),
                ", ".join(group.where),
            )
        parts.append(errors)
    style = "bold green" if " succeeded " in view.last else "bold red"
    parts.append(Text(view.last, style=style))
    return Group(*parts)


class Progress:
    """A hook plugin showing a run's progress: plain lines, or a live display on a terminal.

    It keeps every event it was shown (:attr:`events`), so that a run stopped by a signal can
    still be summed up, and numbers the distinct errors as they come (:attr:`errors`).

    Showing progress never fails the run: writing cannot raise (:class:`Output`), and an error
    while a line is made is kept in :attr:`failure` (the first one) and the event is not shown.
    """

    def __init__(
        self,
        out: Output,
        total: int,
        live: bool,
        quiet: bool = False,
        log_level: int = logging.WARNING,
    ) -> None:
        """Show a run's progress on ``out``.

        Args:
            out: where to write.
            total: how many assets the run will compute.
            live: keep a live display (a terminal) instead of printing plain lines.
            quiet: show nothing (``--json``); the events are still kept.
            log_level: the log records shown (:func:`log_line`, on stderr in plain mode, above
                the live display on a terminal) are those at or above this level.
        """
        self.log_level = log_level
        self.out = out
        self.total = total
        self.live = live and not quiet
        self.quiet = quiet
        self.done = 0
        #: Asset key -> the pid it runs in, for those running now.
        self.running: dict[str, int] = {}
        #: pid -> the resource keys up in that process.
        self.up: dict[int, dict[str, None]] = {}
        self.start = time.perf_counter()
        self._lock = threading.Lock()
        #: Every event shown, in order.
        self.events: list[Event] = []
        #: The distinct errors so far, numbered as the summary numbers them.
        self.errors = ErrorCatalog(out.mask)
        #: The ``rich`` console of the live display (``None`` in plain mode).
        self.console: Console | None = terminal_console(out) if self.live else None
        self._live: Live | None = None
        self._spinner = Spinner("dots")
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
            self.events.append(event)
            if isinstance(event, AssetStarted):
                self.running[event.asset_key] = event.pid
            elif isinstance(event, AssetSucceeded | AssetFailed | AssetSkipped):
                self.running.pop(event.asset_key, None)
                self.done += 1
            elif isinstance(event, ResourceEvent) and event.error is None:
                if event.phase == "yield_enter":
                    self.up.setdefault(event.pid, {})[event.resource_key] = None
                elif event.phase == "yield_exit":
                    self.up.get(event.pid, {}).pop(event.resource_key, None)
            if isinstance(event, LogRecorded):
                line = log_line(event, self.out.mask) if event.level >= self.log_level else None
            else:
                line = event_line(event, self.out.mask, self.errors)
        if self.quiet or line is None:
            return
        if isinstance(event, LogRecorded):
            if self._live is None or self.console is None:
                self.out.write(line, err=True)
            else:
                self.console.print(Text(line, style="yellow" if event.level >= 30 else "dim"))
            return
        if self._live is None or self.console is None:
            self.out.write(line)
            return
        if not isinstance(event, AssetStarted | RunStarted):
            style = "red" if "FAILED" in line else ("green" if ": ok in" in line else "")
            self.console.print(Text(line, style=style))
        self._live.refresh()

    def __rich__(self) -> RenderableType:
        """The live display: a spinner with the counts, what runs where, what is up where."""
        with self._lock:
            running = ", ".join(f"{key} (pid {pid})" for key, pid in self.running.items())
            up = "; ".join(
                f"pid {pid}: {', '.join(keys)}" for pid, keys in self.up.items() if keys
            )
            done = self.done
        elapsed = time.perf_counter() - self.start
        status = Text(f"{done}/{self.total} assets  {elapsed:.1f}s", style="bold")
        self._spinner.update(text=status)
        return Group(
            self._spinner,
            Text(self.out.mask(f"  running: {running or '-'}")),
            Text(self.out.mask(f"  resources up: {up or '-'}")),
        )

    def __reduce__(self) -> tuple[type[_Inert], tuple[()]]:
        # Executors with worker processes send the run's plugins to each worker; the display
        # lives in this process only (host_event is called here), so workers get a stand-in.
        return _Inert, ()

    @contextlib.contextmanager
    def showing(self) -> Iterator[Progress]:
        """Show progress for the block; the live display is taken away at the end."""
        if self.console is not None:
            self._live = Live(
                self,
                console=self.console,
                refresh_per_second=10,
                transient=True,
                redirect_stdout=True,  # in-process prints go above the display
                redirect_stderr=False,
            )
            try:
                self._live.start()
            except Exception as exc:  # a display that cannot start leaves plain lines
                self.failure = self.failure or exc
                self._live = None
        try:
            yield self
        finally:
            live, self._live = self._live, None
            if live is not None:
                with contextlib.suppress(Exception):
                    live.stop()

    def print(self, renderable: Any) -> None:
        """Print a ``rich`` renderable on the terminal console (live mode only)."""
        if self.console is not None:
            self.console.print(renderable)
