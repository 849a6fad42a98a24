"""KeyboardInterrupt and SIGTERM during a run: everything that came up is torn down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from host import Event, ResourceEvent, hookimpl, run_assets
from tests.graphs import make_asset
from tests.recording import Recorded, RecordedYield, read


def test_keyboard_interrupt_in_an_asset_tears_down_and_propagates(record: str) -> None:
    from host import asset

    @asset
    def interrupted(r: Recorded, y: RecordedYield) -> None:
        raise KeyboardInterrupt

    resources = {
        "r": Recorded(record=record, label="r"),
        "y": RecordedYield(record=record, label="y"),
    }
    with pytest.raises(KeyboardInterrupt):
        run_assets([make_asset("first", resources=["r"]), interrupted], resources)
    events = [(x["event"], x["label"]) for x in read(record) if x["event"] in ("setup", "teardown")]
    assert events == [("setup", "r"), ("setup", "y"), ("teardown", "y"), ("teardown", "r")]


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from host import asset, run_assets
    from tests.recording import Recorded, RecordedYield, write

    record = sys.argv[1]

    @asset
    def slow(r: Recorded, y: RecordedYield):
        write(record, event="running", key="", label="slow")
        time.sleep(60)

    run_assets([slow], {"r": Recorded(record=record, label="r"),
                        "y": RecordedYield(record=record, label="y")})
    """
)


def test_sigterm_to_a_running_process_tears_down_and_exits_143(
    record: str, tmp_path: Path
) -> None:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, str(script), record], cwd=root, env=env)
    try:
        deadline = time.monotonic() + 30
        while not any(r["event"] == "running" for r in read(record)):
            assert proc.poll() is None, "the run ended before the asset started"
            assert time.monotonic() < deadline, "the asset never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    assert code == 128 + signal.SIGTERM
    events = [(x["event"], x["label"]) for x in read(record) if x["event"] in ("setup", "teardown")]
    assert events == [("setup", "r"), ("setup", "y"), ("teardown", "y"), ("teardown", "r")]


class InterruptOnEvent:
    """Raises KeyboardInterrupt when one phase's event is emitted: an interrupt that arrives
    after the phase's own work is done, but before the host has finished with the phase."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.fired = False

    @hookimpl
    def host_event(self, event: Event) -> None:
        if isinstance(event, ResourceEvent) and event.phase == self.phase and not self.fired:
            self.fired = True
            raise KeyboardInterrupt


@pytest.mark.parametrize("phase", ["setup", "yield_enter"])
def test_an_interrupt_right_after_a_resource_came_up_still_tears_it_down(
    record: str, phase: str
) -> None:
    resources = {
        "first": Recorded(record=record, label="first"),
        "second": Recorded(record=record, label="second"),
    }
    interrupt = InterruptOnEvent(phase)
    with pytest.raises(KeyboardInterrupt):
        run_assets(
            [make_asset("a", resources=["first"]), make_asset("b", ["a"], ["second"])],
            resources,
            plugins=[interrupt],
        )
    assert interrupt.fired
    events = [(x["event"], x["label"]) for x in read(record) if x["event"] in ("up", "teardown")]
    # `first` came up; the interrupt arrived as its phase ended: it is torn down all the same.
    assert events == [("up", "first"), ("teardown", "first")]
