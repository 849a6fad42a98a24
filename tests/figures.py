"""The figures of ``specs/reliability.md``, counted from the schedules' own statistics.

``HOST_SCHEDULE_STATS=FILE pytest -m slow tests/test_fault_schedules.py`` appends one JSON line
per schedule that passed every check; this prints the table the specs carry::

    python -m tests.figures FILE [FILE ...]
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any


def figures(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of schedules and faults, per executor."""
    by_executor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_executor[row["executor"]].append(row)
    lines = [
        "| executor | schedules (all checks passed) | with a fault that fired | faults fired "
        "| by action | runs ended by a signal | resources that came up / were torn down |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for executor in ("in_process", "multiprocess", "dask"):
        mine = by_executor.get(executor, [])
        if not mine:
            continue
        fired = [row for row in mine if row["fired"]]
        actions: Counter[str] = Counter()
        for row in fired:
            actions.update(row["actions"])
        by_action = ", ".join(f"{name} {count}" for name, count in sorted(actions.items()))
        signalled = sum(1 for row in mine if row["interrupted"])
        ups = sum(row["setups"] for row in mine)
        downs = sum(row["teardowns"] for row in mine)
        lines.append(
            f"| `{executor}` | {len(mine)} | {len(fired)} | {sum(r['fired'] for r in mine)} "
            f"| {by_action} | {signalled} | {ups} / {downs} |"
        )
    return "\n".join(lines)


def main(paths: list[str]) -> None:
    rows = [
        json.loads(line)
        for path in paths
        for line in Path(path).read_text().splitlines()
        if line.strip()
    ]
    print(figures(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
