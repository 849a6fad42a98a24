"""The end-of-run summary of ``host run``: tables of assets and resource lifecycles, and each
distinct error once, from events.

:func:`run_view` gives the cells; :func:`summary` lays them out as plain text, and
``host._progress`` as ``rich`` tables on a terminal.

Every text is masked before it is cut or laid out; an output's ``repr`` is bounded and never
raises.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from host._discovery import PluginInfo
from host._events import (
    AssetFailed,
    AssetSkipped,
    AssetStarted,
    AssetSucceeded,
    ErrorInfo,
    Event,
    ResourceEvent,
    RunFinished,
    RunResult,
    safe_repr,
)
from host._output import Mask, seconds, table, unmasked

__all__ = [
    "ASSET_HEADERS",
    "OUTPUT_WIDTH",
    "RESOURCE_HEADERS",
    "ErrorCatalog",
    "ErrorGroup",
    "RunView",
    "error_text",
    "output_repr",
    "plain_summary",
    "run_view",
    "summary",
]

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


@dataclass
class ErrorGroup:
    """One distinct error of a run and everywhere it happened.

    Attributes:
        number: its number in the summary (1, 2, ...), in the order first seen.
        type: the exception's qualified class name.
        message: its message, masked.
        traceback: its formatted traceback (the first seen), masked.
        resource: the resource whose phase failed with it, if it was a resource's error.
        where: where it happened (``asset a``, ``resource r setup (pid 12)``), in order.
    """

    number: int
    type: str
    message: str
    traceback: str
    resource: str | None
    where: list[str] = field(default_factory=list)

    @property
    def short_type(self) -> str:
        """The class name without its module."""
        return self.type.rpartition(".")[2]


class ErrorCatalog:
    """The distinct errors of a run, numbered as they are first seen.

    Two errors are the same when their type and masked message are; a host error about a
    resource (an asset's ``ResourceSetupError``, a ``ResourceTeardownError``: it names the
    resource key) that quotes an error of that resource's own phases is counted under that
    error, so one wrong password in a resource shared by many assets and processes is one
    error.
    """

    def __init__(self, mask: Mask = unmasked) -> None:
        self.mask = mask
        self.groups: list[ErrorGroup] = []
        self._by_text: dict[tuple[str, str], ErrorGroup] = {}
        self._by_resource: dict[str, list[ErrorGroup]] = {}

    def add(self, info: ErrorInfo, where: str, resource: str | None = None) -> ErrorGroup:
        """Count ``info``, seen at ``where``; ``resource`` is the key of the resource whose
        phase failed with it (none for an asset's error). Returns its group."""
        message = self.mask(info.message)
        group = self._by_text.get((info.type, message))
        if group is None and resource is None and info.resource_key is not None:
            # A host error about a resource (it did not come up, or go down) that quotes the
            # resource's own error: counted as that error.
            group = next(
                (
                    known
                    for known in self._by_resource.get(info.resource_key, [])
                    if f"{known.short_type}: {known.message}" in message
                ),
                None,
            )
        if group is None:
            group = ErrorGroup(
                len(self.groups) + 1, info.type, message, self.mask(info.traceback), resource
            )
            self.groups.append(group)
            self._by_text[(info.type, message)] = group
        if resource is not None and group not in self._by_resource.setdefault(resource, []):
            self._by_resource[resource].append(group)
        if where not in group.where:
            group.where.append(where)
        return group

    def has(self, info: ErrorInfo) -> bool:
        """Whether an error of the same type and (masked) message was counted."""
        return (info.type, self.mask(info.message)) in self._by_text

    def add_event(self, event: Event) -> ErrorGroup | None:
        """Count the error of ``event``, if it has one."""
        if isinstance(event, AssetFailed):
            return self.add(event.error, f"asset {event.asset_key}")
        if isinstance(event, ResourceEvent) and event.error is not None:
            phase = _PHASE_WORDS.get(event.phase, event.phase)
            where = f"resource {event.resource_key} {phase} (pid {event.pid})"
            return self.add(event.error, where, event.resource_key)
        return None

    @classmethod
    def of(cls, events: Iterable[Event], mask: Mask = unmasked) -> ErrorCatalog:
        """The catalog of a run's events."""
        catalog = cls(mask)
        for event in events:
            catalog.add_event(event)
        return catalog


#: How the summary names resource phases.
_PHASE_WORDS = {"yield_enter": "up", "yield_exit": "down"}


@dataclass
class RunView:
    """What the summary shows of a run, in cells (each masked), for text or a terminal.

    Attributes:
        assets: one row per planned asset: key, status, time, pid, output or error.
        resources: one row per resource and process: key, type, pid, up, setup, teardown, down.
        errors: the distinct errors.
        last: the last line: outcome, duration, counts.
    """

    assets: list[list[str]]
    resources: list[list[str]]
    errors: list[ErrorGroup]
    last: str


#: The headers of :attr:`RunView.assets` and :attr:`RunView.resources`.
ASSET_HEADERS = ["ASSET", "STATUS", "TIME", "PID", "OUTPUT / ERROR"]
RESOURCE_HEADERS = ["RESOURCE", "TYPE", "PID", "UP", "SETUP", "TEARDOWN", "DOWN"]


def run_view(
    result: RunResult,
    types: Mapping[str, PluginInfo],
    planned: Sequence[str],
    mask: Mask = unmasked,
    stopped: str | None = None,
) -> RunView:
    """The summary's cells for ``result`` (from its events; see :func:`summary`).

    ``stopped`` is what stopped the run before it finished (``"SIGINT"``), if anything: assets
    that started and never ended are then ``interrupted``, those that never started ``not
    run``, and the last line says so.
    """
    catalog = ErrorCatalog.of(result.events, mask)
    numbers: dict[str, int] = {}
    started: dict[str, int] = {}
    durations: dict[str, float] = {}
    succeeded: set[str] = set()
    upstream: dict[str, str] = {}
    for event in result.events:
        if isinstance(event, AssetStarted):
            started[event.asset_key] = event.pid
        elif isinstance(event, AssetSucceeded | AssetFailed):
            durations[event.asset_key] = event.duration
            if isinstance(event, AssetSucceeded):
                succeeded.add(event.asset_key)
        elif isinstance(event, AssetSkipped):
            upstream[event.asset_key] = event.upstream
    for lost in result.resource_errors:  # teardown errors, and what a dead worker held
        if not catalog.has(lost):
            catalog.add(lost, f"resource {lost.resource_key or '?'}")
    for group in catalog.groups:
        for where in group.where:
            numbers.setdefault(where, group.number)
    asset_rows = []
    for key in planned:
        detail = ""
        if key in result.failures:
            status = "failed"
            error = result.failures[key]
            number = numbers.get(f"asset {key}")
            if number is None:  # no event for it: count it now
                number = catalog.add(error, f"asset {key}").number
            kind = error.type.rpartition(".")[2]
            detail = f"error {number}: {kind}"
            if error.resource_key is not None:
                detail += f" (resource {error.resource_key})"
        elif key in result.outputs:
            status = "ok"
            detail = output_repr(result.outputs[key], mask)
        elif key in succeeded:
            status = "ok"
        elif key in result.skipped:
            status = "skipped"
            if key in upstream:
                detail = f"upstream {upstream[key]} did not succeed"
        elif key in started:
            status = "interrupted"  # it started and never ended: the run was stopped
        else:
            status = "not run"
        pid = str(started[key]) if key in started else "-"
        cells = (key, status, seconds(durations.get(key)), pid, detail)
        asset_rows.append([mask(cell) for cell in cells])

    phases: dict[tuple[str, int], dict[str, str]] = {}
    for event in result.events:
        if isinstance(event, ResourceEvent):
            row = phases.setdefault((event.resource_key, event.pid), {})
            text = seconds(event.duration)
            if event.error is not None:
                seen = catalog.add_event(event)
                text += f" FAILED (error {seen.number})" if seen is not None else " FAILED"
            row[event.phase] = text
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
    finished = result.events_of(RunFinished)
    total = seconds(finished[-1].duration) if finished else "-"
    ok = sum(1 for row in asset_rows if row[1] == "ok")
    counts = f"{ok} ok, {len(result.failures)} failed, {len(result.skipped)} skipped"
    for word in ("interrupted", "not run"):
        count = sum(1 for row in asset_rows if row[1] == word)
        if count:
            counts += f", {count} {word}"
    if stopped is not None:
        down = sum(1 for row in resource_rows if row[6] != "-")
        last = (
            f"Run {result.run_id} stopped by {stopped}: {counts}; {down} of "
            f"{len(resource_rows)} resource lifecycles torn down"
        )
    else:
        state = "succeeded" if result.success else "FAILED"
        last = f"Run {result.run_id} {state} in {total}: {counts}"
    return RunView(asset_rows, resource_rows, catalog.groups, mask(last))


def error_text(group: ErrorGroup) -> str:
    """One distinct error in plain text: ``error N: Type: message`` (every line of it), then
    where it happened."""
    message = group.message.strip() or "(no message)"
    head, *rest = message.splitlines()
    lines = [f"error {group.number}: {group.short_type}: {head}"]
    lines += [f"  {line}" for line in rest]
    lines.append(f"  in {', '.join(group.where)}")
    return "\n".join(lines)


def summary(
    result: RunResult,
    types: Mapping[str, PluginInfo],
    planned: Sequence[str],
    mask: Mask = unmasked,
    stopped: str | None = None,
    errors: bool = True,
) -> str:
    """The end-of-run report as plain text, from the run's events; it never raises for an
    output's sake.

    Args:
        result: the run's result (for a run that was stopped, one made of the events seen).
        types: resource key -> the entry point its type came from (shown with its distribution).
        planned: the asset keys the run was to compute, in order.
        mask: masks secret values in a text (:meth:`Output.mask`); every text is masked
            before it is shortened, and every table cell before the columns are laid out.
        stopped: the signal that stopped the run (``"SIGINT"``), if one did.
        errors: include the ``Errors`` section (``host run`` writes it on stderr instead:
            :func:`error_text` for each of :attr:`RunView.errors`).

    Returns:
        An ``Assets`` table (status, time, process, and the output's ``repr`` shortened to one
        line, or the number of its error), a ``Resources`` table (one row per resource and
        process: type, and the durations of up, setup, teardown, down), an ``Errors`` section
        giving each distinct error once, in full, with everywhere it happened, and a last line
        with the run's outcome, duration and counts.
    """
    return plain_summary(run_view(result, types, planned, mask, stopped), errors)


def plain_summary(view: RunView, errors: bool = False) -> str:
    """``view`` as plain text (see :func:`summary`); the ``Errors`` section if ``errors``."""
    lines = ["Assets", table(ASSET_HEADERS, view.assets)]
    if view.resources:
        lines += ["Resources", table(RESOURCE_HEADERS, view.resources)]
    else:
        lines.append("Resources: none brought up")
    if errors and view.errors:
        lines.append("Errors")
        lines += [error_text(group) for group in view.errors]
    lines.append(view.last)
    return "\n".join(lines)
