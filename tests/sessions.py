"""Resources and checks for tests of ``host.Session``, on every executor that keeps sessions.

:class:`Controlled` writes its own lifecycle records (as ``tests.recording``: ``setup``, ``up``,
``teardown``, ``use``, plus ``check`` for each ``host_check`` and ``count`` for its private use
counter), and reads which faults are on from a JSON control file, not from its config (a
session resource's config cannot change within a session): ``{"setup": [labels], "teardown":
[labels], "check": {label: "false" | "raise"}}``. The checks count the records per process:
session resources up once per session per process (again only after a recycle), torn down
exactly once, at close, in reverse order; run resources torn down in their run.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import PrivateAttr, SecretStr

from host import ConfigurableResource, InitResourceContext
from host.executors import MultiprocessExecutor
from tests.recording import write

Scope = Literal["run", "session"]

#: (executor name, executor_config) pairs the session tests run on. The multiprocess entry runs
#: once that executor keeps sessions.
SESSION_EXECUTORS: list[Any] = [
    pytest.param(("in_process", {}), id="in_process"),
    pytest.param(
        ("multiprocess", {"max_workers": 2}),
        id="multiprocess",
        marks=pytest.mark.skipif(
            not MultiprocessExecutor.supports_sessions,
            reason="the multiprocess executor does not keep sessions yet",
        ),
    ),
]


def sampled(
    variants: Iterable[Any], on_multiprocess: Iterable[Any], name: str = "variant"
) -> pytest.MarkDecorator:
    """Parametrize ``session_executor`` (indirect) and ``name`` over every executor and
    variant, the ``multiprocess`` ones outside ``on_multiprocess`` only under ``-m slow``
    (their class is held on ``in_process`` and by the sampled ``multiprocess`` ones)."""
    keep = set(on_multiprocess)
    params = []
    for executor in SESSION_EXECUTORS:
        for variant in variants:
            marks = list(executor.marks)
            if executor.id == "multiprocess" and variant not in keep:
                marks.append(pytest.mark.slow)
            params.append(
                pytest.param(
                    executor.values[0], variant, marks=marks, id=f"{executor.id}-{variant}"
                )
            )
    return pytest.mark.parametrize(
        ("session_executor", name), params, indirect=["session_executor"]
    )


def faults(control: str) -> dict[str, Any]:
    """The faults switched on in control file ``control`` (none if it is absent)."""
    if not control or not os.path.exists(control):
        return {}
    loaded: dict[str, Any] = json.loads(Path(control).read_text())
    return loaded


def set_faults(control: str, **on: Any) -> None:
    """Switch faults on (and every other one off) for what comes next; at once (a worker
    reading it meanwhile sees the old file or the new one, never half of one)."""
    draft = Path(f"{control}.{os.getpid()}.draft")
    draft.write_text(json.dumps(on))
    os.replace(draft, control)


def _quoted(secret: SecretStr | None) -> str:
    return f" (secret {secret.get_secret_value()})" if secret is not None else ""


class Controlled(ConfigurableResource):
    """Records its lifecycle; fails where its control file says; counts its uses privately."""

    record: str
    label: str
    control: str = ""
    secret: SecretStr | None = None
    _up: bool = PrivateAttr(default=False)
    _run: str = PrivateAttr(default="")
    _count: int = PrivateAttr(default=0)

    def _note(self, event: str, **more: Any) -> None:
        write(self.record, event=event, label=self.label, run=self._run, **more)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self._up:
            raise AssertionError(f"{self.label} set up twice on one instance")
        self._run = context.run_id
        self._note("setup", key=context.resource_key)
        if self.label in faults(self.control).get("setup", []):
            raise RuntimeError(f"setup of {self.label} failed on purpose{_quoted(self.secret)}")
        self._up = True
        self._note("up", key=context.resource_key)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self._note("teardown", key=context.resource_key)
        self._up = False
        if self.label in faults(self.control).get("teardown", []):
            raise RuntimeError(f"teardown of {self.label} failed on purpose{_quoted(self.secret)}")

    def host_check(self, context: InitResourceContext | None) -> bool:
        """Healthy unless the control file says ``"false"`` or ``"raise"`` for this label; a
        signal's name (``"SIGINT"``): sends it to this process and waits to be interrupted."""
        how = faults(self.control).get("check", {}).get(self.label, "ok")
        self._note("check", how=how, checked_for=getattr(context, "run_id", None))
        if how == "raise":
            raise ConnectionError(f"ping of {self.label} failed{_quoted(self.secret)}")
        if how.startswith("SIG"):
            os.kill(os.getpid(), getattr(signal, how))
            time.sleep(30)
        return how != "false"

    def use(self) -> str:
        """Called by assets: fails unless up; counts the uses of this one instance."""
        if not self._up:
            raise AssertionError(f"{self.label} used while not up")
        self._count += 1
        self._note("use", count=self._count)
        return self.label


class SessionControlled(Controlled):
    """:class:`Controlled`, session-scoped."""

    host_scope: ClassVar[Scope] = "session"


class AsyncChecked(SessionControlled):
    """Session-scoped, with an async ``host_check``."""

    async def host_check(self, context: InitResourceContext | None) -> bool:  # type: ignore[override]
        return Controlled.host_check(self, context)


class ShortLived(SessionControlled):
    """Session-scoped, recycled once up for longer than 50 ms."""

    host_max_lifetime: ClassVar[float | None] = 0.05


class LongLived(SessionControlled):
    """Session-scoped, with a lifetime no test reaches."""

    host_max_lifetime: ClassVar[float | None] = 3600.0


class ControlledPair(Controlled):
    """Depends on another :class:`Controlled` (a nested resource field)."""

    inner: Controlled

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if not self.inner._up:
            raise AssertionError(f"{self.label} set up before its dependency")
        super().setup_for_execution(context)

    def use(self) -> str:
        if not self.inner._up:
            raise AssertionError(f"{self.label} used while its dependency is not up")
        return super().use()


class SessionPair(ControlledPair):
    """:class:`ControlledPair`, session-scoped."""

    host_scope: ClassVar[Scope] = "session"


# -- checks ----------------------------------------------------------------------------------


def by_pid(records: Iterable[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        found[r["pid"]].append(r)
    return found


def lifecycle(records: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    return [r for r in records if r["label"] == label and r["event"] in ("setup", "up", "teardown")]


def check_session_lifecycle(
    records: list[dict[str, Any]], session_labels: Iterable[str], closed_at: int
) -> dict[int, list[str]]:
    """Assert, per process, for each session-scoped label: every bring-up that came up is torn
    down exactly once, one that failed never, and no two copies are up at once; the copies up
    when the session closed (``records[closed_at:]`` are the close's) go down there, in reverse
    order of bring-up. Give the close's teardown order per pid."""
    labels = set(session_labels)
    order: dict[int, list[str]] = {}
    rows_of: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for i, r in enumerate(records):
        rows_of[r["pid"]].append((i, r))
    for pid, rows in rows_of.items():
        up_at_close: list[tuple[int, str]] = []
        for label in labels:
            state, upped = "down", -1
            seq = [(i, r) for i, r in rows if r["label"] == label]
            for i, r in seq:
                event = r["event"]
                if event == "setup":
                    assert state != "up", f"pid {pid}: {label} set up while up: {seq}"
                    state = "coming"
                elif event == "up":
                    assert state == "coming", f"pid {pid}: {label} up without setup: {seq}"
                    state, upped = "up", i
                elif event == "teardown":
                    assert state == "up", f"pid {pid}: {label} torn down but not up: {seq}"
                    state = "down"
                    if i >= closed_at:
                        up_at_close.append((upped, label))
                elif state == "coming":  # (a check or use: its setup had failed)
                    state = "down"
            assert state != "up", f"pid {pid}: {label} was never torn down: {seq}"
        teardowns = [
            r["label"]
            for i, r in rows
            if i >= closed_at and r["label"] in labels and r["event"] == "teardown"
        ]
        expected = [label for _, label in sorted(up_at_close, reverse=True)]
        assert teardowns == expected, (
            f"pid {pid}: close tore down {teardowns}, not the reverse of bring-up {expected}"
        )
        order[pid] = teardowns
    return order


def check_run_resources(
    records: list[dict[str, Any]], run_labels: Iterable[str], run_id: str
) -> None:
    """Assert that in run ``run_id`` each run-scoped label came up at most once per process and
    what came up is already torn down (call it once the run returned)."""
    labels = set(run_labels)
    for pid, rows in by_pid(records).items():
        for label in labels:
            mine = [r["event"] for r in rows if r["label"] == label and r["run"] == run_id]
            mine = [e for e in mine if e in ("setup", "up", "teardown")]
            assert mine.count("setup") <= 1, f"pid {pid}: {label} up twice in run {run_id}"
            assert mine.count("teardown") == mine.count("up"), (
                f"pid {pid}: {label} of run {run_id} not torn down in its run: {mine}"
            )


def worker_pids(records: list[dict[str, Any]]) -> set[int]:
    """The processes other than this one that wrote records."""
    return {r["pid"] for r in records} - {os.getpid()}


def alive(pids: Iterable[int]) -> list[int]:
    """The pids of ``pids`` that still exist (``/proc/PID``)."""
    return [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
