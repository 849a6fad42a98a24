"""The end-of-run summary of ``host run``: tables of assets and resource lifecycles, from events.

Every text is masked before it is cut or laid out; an output's ``repr`` is bounded and never
raises.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from host._discovery import PluginInfo
from host._events import (
    AssetFailed,
    AssetStarted,
    AssetSucceeded,
    ResourceEvent,
    RunFinished,
    RunResult,
    safe_repr,
)
from host._output import Mask, first_line, seconds, table, unmasked

__all__ = ["OUTPUT_WIDTH", "output_repr", "summary"]

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


def output_repr(value: object, mask: Mask = unmasked) -> str:
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


def _shorten(text: str, mask: Mask = unmasked) -> str:
    """``text`` on one line, masked, then cut to :data:`OUTPUT_WIDTH` characters."""
    text = mask(" ".join(mask(text).split()))
    return text if len(text) <= OUTPUT_WIDTH else text[: OUTPUT_WIDTH - 3] + "..."


def summary(
    result: RunResult,
    types: Mapping[str, PluginInfo],
    planned: Sequence[str],
    mask: Mask = unmasked,
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
