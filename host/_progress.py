"""What ``host run`` shows: progress as a run goes, then a summary; all output masked.

:class:`Output` writes to stdout/stderr with every known secret value replaced by ``**********``.
:class:`Progress` is a hook plugin (``host_event``) that prints plain lines, or on a terminal
keeps a live status line at the bottom (redrawn on each event and ten times a second) with the
finished steps printed above it. :func:`summary` turns a :class:`host.RunResult`'s events into
tables of assets and of resource lifecycles with their timings.
"""

from __future__ import annotations

import contextlib
import os
import reprlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

from host._discovery import PluginInfo
from host._events import (
    AssetFailed,
    AssetSkipped,
    AssetStarted,
    AssetSucceeded,
    Event,
    ResourceEvent,
    RunFinished,
    RunResult,
    RunStarted,
    format_exception,
    safe_repr,
)
from host._hookspecs import hookimpl
from host._secrets import mask

__all__ = [
    "Output",
    "Progress",
    "event_line",
    "first_line",
    "output_repr",
    "seconds",
    "summary",
    "table",
]

#: Text in, text out: how a caller masks secret values (see :meth:`Output.mask`).
Mask = Callable[[str], str]


def _unmasked(text: str) -> str:
    return text


class Output:
    """Where the command writes: stdout and stderr, with every known secret value masked.

    Writing never raises: a stream that fails (a closed pipe, as in ``host run ... | head``, a
    terminal that went away, a closed file) is given up on, and what would go there is
    dropped, so the run, its teardown and the other stream carry on. Its file descriptor is
    pointed at ``os.devnull`` (as Python's documentation recommends for ``BrokenPipeError``),
    so the interpreter's own flush at exit does not fail on it either.

    Attributes:
        stdout, stderr: the streams.
        secrets: the secret values to mask (set once the run config is read).
        lost: the streams given up on (``"stdout"``, ``"stderr"``), in the order they failed.
    """

    def __init__(self, stdout: IO[str] | None, stderr: IO[str] | None) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.secrets: list[str] = []
        self.lock = threading.Lock()
        # A stream Python could not open (its descriptor was closed when the command started:
        # ``host run x.toml >&-``) is ``None``: lost from the start.
        self.lost: list[str] = [
            name for name, stream in (("stdout", stdout), ("stderr", stderr)) if stream is None
        ]

    def mask(self, text: str) -> str:
        """``text`` with every value in :attr:`secrets` replaced by the mask."""
        return mask(text, self.secrets)

    def write(self, text: str, *, err: bool = False, end: str = "\n") -> None:
        """Write ``text`` (masked) and ``end`` to stdout, or stderr if ``err``; flush.

        Never raises for the stream's sake: see the class docstring.
        """
        name = "stderr" if err else "stdout"
        stream = self.stderr if err else self.stdout
        with self.lock:
            if name in self.lost:
                return
            assert stream is not None  # a missing stream is lost from the start
            try:
                stream.write(self.mask(text) + end)
                stream.flush()
            except (OSError, ValueError):
                self.lost.append(name)
                _point_at_devnull(stream)

    def error(self, message: str, exc: BaseException | None = None, show_tb: bool = False) -> None:
        """Report an error on stderr: ``host: error: MESSAGE``, after the traceback if asked."""
        if exc is not None and show_tb:
            self.write(format_exception(exc).rstrip(), err=True)
        self.write(f"host: error: {message}", err=True)


def _point_at_devnull(stream: IO[str]) -> None:
    """Send what is still buffered for ``stream`` (and later writes to its descriptor) to
    ``os.devnull``; nothing happens for a stream without a file descriptor."""
    with contextlib.suppress(OSError, ValueError):
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def seconds(value: float | None) -> str:
    """A duration for people: ``12.3ms``, ``1.20s``, or ``-`` when unknown."""
    if value is None:
        return "-"
    return f"{value * 1000:.1f}ms" if value < 1 else f"{value:.2f}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Left-aligned columns two spaces apart, each line prefixed with ``indent``."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def first_line(text: str, mask: Mask = _unmasked) -> str:
    """The first non-empty line of ``text`` (for one-line error summaries).

    ``text`` is masked with ``mask`` before it is cut, so that no part of a secret that spans
    the cut (or a line break) is left.
    """
    text = mask(text).strip()
    return text.splitlines()[0] if text else ""


# -- progress ---------------------------------------------------------------------------------


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


def event_line(event: Event, mask: Mask = _unmasked) -> str | None:
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


# -- summary ----------------------------------------------------------------------------------

#: How much of an output's ``repr`` the summary shows.
OUTPUT_WIDTH = 60


class _BoundedRepr(reprlib.Repr):
    """``reprlib`` with the summary's limits, masking each piece of text before it is cut.

    Containers show their first few items and nest a few levels; long strings, numbers and
    other objects are cut in the middle. A ``__repr__`` that raises or returns no str gives
    ``<unprintable TypeName>``.
    """

    def __init__(self, mask: Mask) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxarray = self.maxset = 8
        self.maxfrozenset = self.maxdeque = self.maxdict = 8
        self.maxstring = self.maxother = OUTPUT_WIDTH
        self.maxlong = 40
        self._mask = mask

    def _cut(self, text: str, limit: int) -> str:
        text = self._mask(text)
        if len(text) <= limit:
            return text
        head = max(0, (limit - 3) // 2)
        tail = max(0, limit - 3 - head)
        return text[:head] + "..." + text[len(text) - tail :]

    def repr_str(self, x: str, level: int) -> str:
        # The whole string is masked before any of it is cut away (its repr is escaped).
        return self._cut(str.__repr__(self._mask(x)), self.maxstring)

    def repr_int(self, x: int, level: int) -> str:
        try:
            text = int.__repr__(x)
        except ValueError:  # more digits than the interpreter converts (sys.set_int_max_str_digits)
            return f"<int of {x.bit_length()} bits>"
        return self._cut(text, self.maxlong)

    def repr_instance(self, x: Any, level: int) -> str:
        return self._cut(safe_repr(x), self.maxother)


def output_repr(value: object, mask: Mask = _unmasked) -> str:
    """An asset's output for the summary: a bounded ``repr`` on one line, masked, never raising.

    The cost does not grow with the size of a list, dict, set, tuple or string (only their
    first items are looked at); every piece of text is masked with ``mask`` before it is cut,
    so no part of a secret is left at a cut. At most :data:`OUTPUT_WIDTH` characters.
    """
    try:
        text = _BoundedRepr(mask).repr(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return _shorten(text, mask)


def _shorten(text: str, mask: Mask = _unmasked) -> str:
    """``text`` on one line, masked, then cut to :data:`OUTPUT_WIDTH` characters."""
    text = mask(" ".join(mask(text).split()))
    return text if len(text) <= OUTPUT_WIDTH else text[: OUTPUT_WIDTH - 3] + "..."


def summary(
    result: RunResult,
    types: Mapping[str, PluginInfo],
    planned: Sequence[str],
    mask: Mask = _unmasked,
) -> str:
    """The end-of-run report, from the run's events; it never raises for an output's sake.

    Args:
        result: the run's result.
        types: resource key -> the entry point its type came from (shown with its distribution).
        planned: the asset keys the run was to compute, in order.
        mask: masks secret values in a text (:meth:`Output.mask`); every text is masked
            before it is shortened, and every table cell before the columns are laid out.

    Returns:
        An ``Assets`` table (status, time, process, and the output's ``repr`` shortened to one
        line, or the error), a ``Resources`` table (one row per
        resource and process: type, and the durations of up, setup, teardown, down), and a last
        line with the run's outcome, duration and counts.
    """
    started: dict[str, int] = {}
    durations: dict[str, float] = {}
    for event in result.events:
        if isinstance(event, AssetStarted):
            started[event.asset_key] = event.pid
        elif isinstance(event, AssetSucceeded | AssetFailed):
            durations[event.asset_key] = event.duration
    asset_rows = []
    for key in planned:
        if key in result.outputs:
            status = "ok"
        elif key in result.failures:
            status = "failed"
        elif key in result.skipped:
            status = "skipped"
        else:
            status = "not run"
        pid = str(started[key]) if key in started else "-"
        detail = ""
        if key in result.failures:
            error = result.failures[key]
            detail = f"{error.type.rpartition('.')[2]}: {first_line(error.message, mask)}"
        elif key in result.outputs:
            detail = output_repr(result.outputs[key], mask)
        cells = (key, status, seconds(durations.get(key)), pid, detail)
        asset_rows.append([mask(cell) for cell in cells])
    lines = ["Assets", table(["ASSET", "STATUS", "TIME", "PID", "OUTPUT / ERROR"], asset_rows)]

    phases: dict[tuple[str, int], dict[str, str]] = {}
    for event in result.events:
        if isinstance(event, ResourceEvent):
            row = phases.setdefault((event.resource_key, event.pid), {})
            text = seconds(event.duration) + (" FAILED" if event.error is not None else "")
            row[event.phase] = text
    if phases:
        resource_rows = []
        for (key, resource_pid), row in phases.items():
            info = types.get(key)
            kind = f"{info.name} ({info.origin})" if info is not None else "-"
            resource_cells = [
                key,
                kind,
                str(resource_pid),
                row.get("yield_enter", "-"),
                row.get("setup", "-"),
                row.get("teardown", "-"),
                row.get("yield_exit", "-"),
            ]
            resource_rows.append([mask(cell) for cell in resource_cells])
        lines += [
            "Resources",
            table(["RESOURCE", "TYPE", "PID", "UP", "SETUP", "TEARDOWN", "DOWN"], resource_rows),
        ]
    else:
        lines.append("Resources: none brought up")
    finished = result.events_of(RunFinished)
    total = seconds(finished[-1].duration) if finished else "-"
    counts = (
        f"{len(result.outputs)} ok, {len(result.failures)} failed, {len(result.skipped)} skipped"
    )
    state = "succeeded" if result.success else "FAILED"
    lines.append(f"Run {result.run_id} {state} in {total}: {counts}")
    return "\n".join(lines)
