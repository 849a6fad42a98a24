"""Where the command line writes, masked, and its small text helpers (durations, tables, one line).

:class:`Output` writes to stdout/stderr with every known secret value replaced by ``**********``
and never raises for a stream's sake.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from typing import IO

from host._events import format_exception
from host._secrets import mask

__all__ = ["Mask", "Output", "first_line", "seconds", "table", "unmasked"]

#: Text in, text out: how a caller masks secret values (see :meth:`Output.mask`).
Mask = Callable[[str], str]


def unmasked(text: str) -> str:
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


def first_line(text: str, mask: Mask = unmasked) -> str:
    """The first non-empty line of ``text`` (for one-line error summaries).

    ``text`` is masked with ``mask`` before it is cut, so that no part of a secret that spans
    the cut (or a line break) is left.
    """
    text = mask(text).strip()
    return text.splitlines()[0] if text else ""
