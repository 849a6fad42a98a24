"""The picture of a run: one self-contained HTML file (inline CSS, SVG and a little JS; no
network), drawn from a :class:`host._history.RunRecord`.

One lane per process that brought a resource up or ran an asset, named by executor and worker;
in it one row per resource (its setup, its time up, its teardown) and a row of assets, each bar
coloured by outcome, with details on hover; the assets and resource events in tables below.
Every element the eye reads is marked for tests: ``g.lane[data-pid]``,
``rect.bar[data-kind=setup|up|teardown|asset][data-key][data-pid][data-outcome]``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from host._history import RunRecord
from host._history_schema import HistoryError
from host._output import Mask, seconds, unmasked

__all__ = ["lanes_of", "render", "report_path", "write_picture"]

_WIDTH = 1000.0
_LABEL = 240.0
_ROW = 22.0
_GAP = 14.0

_CSS = """
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 4px; } .meta { color: #555; margin-bottom: 12px; }
svg text { font: 12px system-ui, sans-serif; fill: #222; }
.lane-bg { fill: #f6f6f6; stroke: #ddd; } .lane-name { font-weight: 600; }
.row-name { fill: #555; }
.bar { stroke: #0003; stroke-width: .5; cursor: default; }
.bar:hover { stroke: #000; stroke-width: 1.5; }
.kind-setup { fill: #1565c0; } .kind-up { fill: #90caf9; } .kind-teardown { fill: #6a1b9a; }
.kind-asset.outcome-ok { fill: #2e7d32; }
.outcome-failed, .kind-asset.outcome-failed { fill: #c62828; }
.outcome-not-torn-down { fill: #ef6c00; } .kind-up.outcome-session { fill: #4db6ac; }
#tip { position: fixed; display: none; background: #222; color: #fff; padding: 6px 8px;
       border-radius: 4px; white-space: pre; pointer-events: none; max-width: 640px;
       font: 12px ui-monospace, monospace; z-index: 2; }
table { border-collapse: collapse; margin: 8px 0 20px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.failed { color: #c62828; font-weight: 600; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px;
               vertical-align: middle; }
"""

_JS = """
(function () {
  var tip = document.getElementById('tip');
  document.querySelectorAll('.bar').forEach(function (bar) {
    bar.addEventListener('mousemove', function (e) {
      tip.textContent = bar.getAttribute('data-tip');
      tip.style.display = 'block';
      var left = e.clientX + 12;
      if (left + tip.offsetWidth + 8 > window.innerWidth) {
        left = e.clientX - tip.offsetWidth - 12;
      }
      tip.style.left = Math.max(0, left) + 'px';
      tip.style.top = (e.clientY + 12) + 'px';
    });
    bar.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  });
})();
"""


def lanes_of(record: RunRecord) -> list[tuple[int, str]]:
    """The lanes of the picture, in order: (pid, name) of every process that brought a resource
    up or ran an asset; the run's own process first, then the others as they began."""
    first: dict[int, float] = {}
    for row in [*record.resources, *record.assets]:
        if row["pid"] is not None and row["started"] is not None:
            first[row["pid"]] = min(first.get(row["pid"], row["started"]), row["started"])
    run = record.run
    order = sorted(first, key=lambda pid: (pid != run["pid"], first[pid]))
    lanes = []
    worker = 0
    for pid in order:
        if pid == run["pid"]:
            lanes.append((pid, f"{run['executor']} (the run's process) · pid {pid}"))
        else:
            worker += 1
            lanes.append((pid, f"{run['executor']} worker {worker} · pid {pid}"))
    return lanes


def _tip(*lines: str) -> str:
    return "\n".join(line for line in lines if line)


def _error_line(row: dict[str, Any], mask: Mask) -> str:
    if not row.get("error_type"):
        return ""
    return f"error: {row['error_type']}: {mask(row['error_message'] or '')}"


def _resource_bars(
    record: RunRecord, pid: int, end: float, mask: Mask
) -> list[tuple[str, list[dict[str, Any]]]]:
    """(resource key, bars) for one process, in the order the resources came up there."""
    by_key: dict[str, dict[str, dict[str, Any]]] = {}
    for event in record.resources:
        if event["pid"] == pid:
            by_key.setdefault(event["resource_key"], {})[event["phase"]] = event
    rows = []
    for key, phases in by_key.items():
        up_phase = phases.get("yield_enter") or phases.get("setup")
        down_phase = phases.get("yield_exit") or phases.get("teardown")
        any_event = up_phase or down_phase or phases.get("reused") or next(iter(phases.values()))
        kind = any_event["resource_type"] or "?"
        dist = any_event["distribution"] or "not from an installed distribution"
        head = f"resource {key}\ntype: {kind}\ndistribution: {dist}\npid: {pid}"
        bars: list[dict[str, Any]] = []
        setup_failed = any(phases[p]["error_type"] for p in ("setup", "yield_enter") if p in phases)
        reused = phases.get("reused")
        if up_phase is not None:
            bars.append(_phase_bar("setup", up_phase, phases, head, setup_failed, mask))
        up_start: float | None = None
        if up_phase is not None and not setup_failed:
            up_start = up_phase["started"] + up_phase["duration"]
        elif reused is not None and up_phase is None:
            up_start = reused["started"]
        if up_start is not None:
            up_end = down_phase["started"] if down_phase is not None else end
            torn = down_phase is not None
            kept = any_event.get("scope") == "session" or reused is not None
            why = (
                "session-scoped: reused from an earlier run of the session"
                if reused is not None and not up_phase
                else "session-scoped: kept up for the session's later runs, torn down when "
                "the session closes"
                if kept
                else "not torn down (its process ended first)"
            )
            bars.append(
                {
                    "kind": "up",
                    "start": up_start,
                    "end": up_end,
                    "outcome": "ok" if torn else "session" if kept else "not-torn-down",
                    "tip": _tip(
                        head,
                        f"up for {seconds(up_end - up_start)}",
                        "" if torn else why,
                        mask(reused["note"] or "") if reused is not None else "",
                    ),
                }
            )
        if down_phase is not None:
            failed = any(phases[p]["error_type"] for p in ("teardown", "yield_exit") if p in phases)
            bars.append(_phase_bar("teardown", down_phase, phases, head, failed, mask))
        rows.append((key, bars))
    return rows


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], failed_col: int = -1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            cls = ' class="failed"' if index == failed_col and cell == "failed" else ""
            cells.append(f"<td{cls}>{html.escape(cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render(record: RunRecord, mask: Mask = unmasked) -> str:
    """The HTML text of the picture of ``record`` (every text masked with ``mask``)."""
    run = record.run
    starts = [r["started"] for r in [*record.resources, *record.assets] if r["started"]]
    ends = [r["started"] + r["duration"] for r in record.resources]
    ends += [r["finished"] for r in record.assets if r["finished"]]
    # From the first bar: worker processes may take a while to start.
    t0 = min(starts) if starts else run["started"]
    t1 = max([*ends, t0 + 1e-6]) if ends else max(run.get("finished") or 0.0, t0 + 1e-6)
    span = t1 - t0

    def x(t: float) -> float:
        return float(_LABEL + (t - t0) / span * _WIDTH)

    parts: list[str] = []
    y = 24.0
    for index in range(6):  # the time axis
        t = t0 + span * index / 5
        parts.append(
            f'<text x="{x(t):.1f}" y="14" text-anchor="middle">{seconds(t - t0)}</text>'
            f'<line x1="{x(t):.1f}" y1="18" x2="{x(t):.1f}" y2="100%" stroke="#e4e4e4"/>'
        )
    for pid, name in lanes_of(record):
        resources = _resource_bars(record, pid, t1, mask)
        assets = [a for a in record.assets if a["pid"] == pid and a["started"] is not None]
        height = _ROW * (len(resources) + 1) + 8
        lane = [
            f'<g class="lane" data-pid="{pid}" data-name="{html.escape(name)}">',
            f'<rect class="lane-bg" x="0" y="{y:.1f}" width="{_LABEL + _WIDTH + 10:.0f}" '
            f'height="{height:.1f}"/>',
            f'<text class="lane-name" x="6" y="{y + 15:.1f}">{html.escape(name)}</text>',
        ]
        row_y = y + 4
        for key, bars in resources:
            lane.append(
                f'<text class="row-name" x="16" y="{row_y + _ROW + 11:.1f}">'
                f"{html.escape(mask(key))}</text>"
            )
            for bar in bars:
                lane.append(_bar(bar, key, pid, x, row_y + _ROW + 2, mask))
            row_y += _ROW
        for row in assets:
            finished = row["finished"] if row["finished"] is not None else t1
            tip = _tip(
                f"asset {row['asset_key']}",
                f"status: {row['status']}",
                f"pid: {pid}",
                f"time: {seconds(row['duration']) if row['duration'] is not None else '-'}",
                _error_line(row, mask),
            )
            bar = {
                "kind": "asset",
                "start": row["started"],
                "end": finished,
                "outcome": row["status"],
                "tip": tip,
            }
            lane.append(_bar(bar, row["asset_key"], pid, x, y + 4 + 2, mask))
        lane.append("</g>")
        parts.extend(lane)
        y += height + _GAP
    svg = (
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{_LABEL + _WIDTH + 20:.0f}" '
        f'height="{y:.0f}">{"".join(parts)}</svg>'
    )
    asset_rows = [
        [
            a["asset_key"],
            a["status"],
            "-" if a["pid"] is None else str(a["pid"]),
            "-" if a["started"] is None else seconds(a["started"] - t0),
            seconds(a["duration"]) if a["duration"] is not None else "-",
            f"{a['error_type']}: {a['error_message']}"
            if a["error_type"]
            else (a.get("output") or ""),
        ]
        for a in record.assets
    ]
    resource_rows = [
        [
            r["resource_key"],
            r["resource_type"] or "-",
            r["distribution"] or "-",
            str(r["pid"]),
            r["phase"],
            seconds(r["started"] - t0),
            seconds(r["duration"]),
            f"{r['error_type']}: {r['error_message']}" if r["error_type"] else "",
        ]
        for r in record.resources
    ]
    masked = [[mask(c) for c in row] for row in asset_rows]
    masked_resources = [[mask(c) for c in row] for row in resource_rows]
    title = f"run {run['run_id']}"
    meta = (
        f"{run['outcome']} · {run['executor']} · started "
        f"{_clock(run['started'])} · {seconds(run.get('duration'))} · host {run['host_version']}"
        + (f" · {run['config']}" if run.get("config") else "")
        + (f" · {run['reason']}" if run.get("reason") else "")
    )
    legend = "".join(
        f'<span style="background:{colour}"></span>{label}'
        for label, colour in (
            ("setup", "#1565c0"),
            ("up", "#90caf9"),
            ("teardown", "#6a1b9a"),
            ("asset ok", "#2e7d32"),
            ("failed", "#c62828"),
            ("not torn down", "#ef6c00"),
            ("up for the session", "#4db6ac"),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(mask(title))}</title><style>{_CSS}</style></head><body>"
        f'<h1>{html.escape(mask(title))}</h1><div class="meta">{html.escape(mask(meta))}</div>'
        f'<div class="legend">{legend}</div>{svg}<div id="tip"></div>'
        "<h2>Assets</h2>"
        + _table(["ASSET", "STATUS", "PID", "START", "TIME", "OUTPUT / ERROR"], masked, 1)
        + "<h2>Resource events</h2>"
        + _table(
            ["RESOURCE", "TYPE", "DISTRIBUTION", "PID", "PHASE", "START", "TIME", "ERROR"],
            masked_resources,
        )
        + f"<script>{_JS}</script></body></html>\n"
    )


def _clock(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")


def _bar(bar: dict[str, Any], key: str, pid: int, x: Any, y: float, mask: Mask) -> str:
    left = x(bar["start"])
    width = max(x(bar["end"]) - left, 2.0)
    return (
        f'<rect class="bar kind-{bar["kind"]} outcome-{bar["outcome"].replace(" ", "-")}" '
        f'data-kind="{bar["kind"]}" data-key="{html.escape(mask(key))}" data-pid="{pid}" '
        f'data-outcome="{html.escape(bar["outcome"])}" data-tip="{html.escape(mask(bar["tip"]))}" '
        f'x="{left:.2f}" y="{y:.1f}" width="{width:.2f}" height="{_ROW - 6:.1f}">'
        f"<title>{html.escape(mask(bar['tip']))}</title></rect>"
    )


def report_path(path: str | Path) -> Path:
    """``path`` as a place to write a picture to: its folder must exist (``host run
    --report`` checks it before the run).

    Raises:
        HistoryError: the folder does not exist, or ``path`` is a folder.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise HistoryError(
            f"cannot write the report to {target}: the folder {target.parent} does not exist; "
            f"make it, or give a path in a folder that exists"
        )
    if target.is_dir():
        raise HistoryError(
            f"cannot write the report to {target}: it is a folder; give a file name, e.g. "
            f"{target / 'run.html'}"
        )
    return target


def write_picture(record: RunRecord, path: str | Path, mask: Mask = unmasked) -> Path:
    """Write the picture of ``record`` to ``path`` (see :func:`report_path`).

    Raises:
        HistoryError: the folder does not exist or the file cannot be written.
    """
    target = report_path(path)
    try:
        target.write_text(render(record, mask), encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot write the report to {target}: {exc.strerror or exc}") from exc
    return target


def _phase_bar(
    kind: str,
    outer: dict[str, Any],
    phases: dict[str, dict[str, Any]],
    head: str,
    failed: bool,
    mask: Mask,
) -> dict[str, Any]:
    """The bar of a resource's bring-up (``kind`` ``"setup"``: the ``yield_enter`` phase
    ``outer``, around ``setup_for_execution``) or its teardown (``"teardown"``: ``yield_exit``
    around ``teardown_after_execution``), with its tip."""
    inner = phases.get(kind)
    method = "setup_for_execution" if kind == "setup" else "teardown_after_execution"
    around = f" ({method} {seconds(inner['duration'])})" if inner and inner is not outer else ""
    return {
        "kind": kind,
        "start": outer["started"],
        "end": outer["started"] + outer["duration"],
        "outcome": "failed" if failed else "ok",
        "tip": _tip(
            head,
            f"{kind}: {seconds(outer['duration'])}{around}",
            _error_line(inner or outer, mask) or _error_line(outer, mask),
        ),
    }
