"""The trace plugin registered for a run: one JSON line per resource phase, nothing else changed."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import host_plugin_trace
import pytest
from host_plugin_trace import read_trace
from pydantic import SecretStr

from host import (
    ConfigurableResource,
    InitResourceContext,
    ResourceEvent,
    ResourceSetupError,
    RunFailure,
    asset,
    run_assets,
)

FIELDS = {
    "run_id",
    "executor",
    "resource_key",
    "resource_class",
    "phase",
    "pid",
    "start",
    "duration",
    "ok",
    "error",
    "exited_by",
}
SECRET = "s3cr3t-password-value"
CONFIG_VALUE = "db.internal.example:5432"


class Plain(ConfigurableResource):
    """Setup and teardown methods, under the host's default yield; can fail either."""

    dsn: str = CONFIG_VALUE
    password: SecretStr = SecretStr(SECRET)
    fail_setup: bool = False
    fail_teardown: bool = False

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.fail_setup:
            raise ConnectionRefusedError(f"{self.dsn} refused {self.password.get_secret_value()}")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self.fail_teardown:
            raise OSError(f"{self.dsn} went away")


class Held(ConfigurableResource):
    """Overrides yield_for_execution; writes what its ``yield`` saw to ``seen``."""

    seen: str

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[dict[str, str]]:
        try:
            yield {"held": context.resource_key}
        except BaseException as exc:
            Path(self.seen).write_text(type(exc).__name__)
            raise
        else:
            Path(self.seen).write_text("normal exit")


@asset
def uses_both(plain: Plain, held: dict[str, str]) -> dict[str, str]:
    return held


@asset
def uses_plain(plain: Plain, uses_both: dict[str, str]) -> str:
    return "done"


def phases(lines: list[dict[str, Any]], key: str) -> list[tuple[str, bool, str | None]]:
    return [
        (line["phase"], line["ok"], line["error"]) for line in lines if line["resource_key"] == key
    ]


def test_the_package_registers_the_module_as_a_hook_plugin() -> None:
    (entry_point,) = entry_points(group="host.plugins", name="trace")
    assert entry_point.value == "host_plugin_trace"
    assert entry_point.dist is not None and entry_point.dist.name == "host-plugin-trace"
    assert entry_point.load() is host_plugin_trace


def test_once_installed_it_traces_every_run_by_itself(
    trace_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOST_DISABLE_PLUGIN_AUTOLOAD")

    result = run_assets([uses_both], {"plain": Plain(), "held": {}})

    lines = read_trace(trace_path)
    assert [(line["run_id"], line["phase"]) for line in lines] == [
        (result.run_id, "setup"),
        (result.run_id, "yield_enter"),
        (result.run_id, "teardown"),
        (result.run_id, "yield_exit"),
    ]


def test_passing_the_installed_plugin_again_traces_each_phase_once(
    trace_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOST_DISABLE_PLUGIN_AUTOLOAD")

    run_assets([uses_both], {"plain": Plain(), "held": {}}, plugins=[host_plugin_trace])

    assert [line["phase"] for line in read_trace(trace_path)] == [
        "setup",
        "yield_enter",
        "teardown",
        "yield_exit",
    ]


def test_each_phase_of_each_resource_is_one_line(trace_path: Path, tmp_path: Path) -> None:
    resources = {"plain": Plain(), "held": Held(seen=str(tmp_path / "seen"))}

    result = run_assets([uses_both, uses_plain], resources, plugins=[host_plugin_trace])

    assert result.outputs == {"uses_both": {"held": "held"}, "uses_plain": "done"}
    lines = read_trace(trace_path)
    # Lines are written as phases end: setup inside yield_enter, teardown inside yield_exit,
    # and resources go down in reverse order of bring-up.
    assert [(line["resource_key"], line["phase"]) for line in lines] == [
        ("plain", "setup"),
        ("plain", "yield_enter"),
        ("held", "yield_enter"),
        ("held", "yield_exit"),
        ("plain", "teardown"),
        ("plain", "yield_exit"),
    ]
    for line in lines:
        assert set(line) == FIELDS
        assert line["run_id"] == result.run_id
        assert line["executor"] == "in_process"
        assert line["pid"] == os.getpid()
        assert line["duration"] >= 0
        assert (line["ok"], line["error"], line["exited_by"]) == (True, None, None)
    assert {line["resource_class"] for line in lines} == {
        f"{Plain.__module__}.Plain",
        f"{Held.__module__}.Held",
    }
    # The same phases the host reports as events.
    events = Counter((e.resource_key, e.phase) for e in result.events_of(ResourceEvent))
    assert events == Counter((line["resource_key"], line["phase"]) for line in lines)
    assert (tmp_path / "seen").read_text() == "normal exit"


def test_a_failing_setup_is_recorded_and_the_run_still_fails(trace_path: Path) -> None:
    with pytest.raises(RunFailure) as caught:
        run_assets(
            [uses_both],
            {"plain": Plain(fail_setup=True), "held": {"not": "a resource"}},
            plugins=[host_plugin_trace],
        )

    error = caught.value.__cause__
    assert isinstance(error, ResourceSetupError)
    assert (error.resource_key, error.phase) == ("plain", "setup")
    assert isinstance(error.__cause__, ConnectionRefusedError)
    lines = read_trace(trace_path)
    assert phases(lines, "plain") == [
        ("setup", False, "builtins.ConnectionRefusedError"),
        ("yield_enter", False, "builtins.ConnectionRefusedError"),
    ]
    text = trace_path.read_text()
    assert SECRET not in text
    assert CONFIG_VALUE not in text


def test_a_failing_teardown_is_recorded_and_fails_the_run(trace_path: Path, tmp_path: Path) -> None:
    result = run_assets(
        [uses_both],
        {"plain": Plain(fail_teardown=True), "held": Held(seen=str(tmp_path / "seen"))},
        plugins=[host_plugin_trace],
        raise_on_error=False,
    )

    assert not result.success
    assert [e.resource_key for e in result.resource_errors] == ["plain"]
    lines = read_trace(trace_path)
    assert phases(lines, "plain") == [
        ("setup", True, None),
        ("yield_enter", True, None),
        ("teardown", False, "builtins.OSError"),
        ("yield_exit", False, "builtins.OSError"),
    ]
    assert phases(lines, "held") == [("yield_enter", True, None), ("yield_exit", True, None)]


def _raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # the run's handler raises SystemExit(143) here


@pytest.mark.parametrize(
    ("ending", "interrupt", "name"),
    [
        (KeyboardInterrupt, _raise_keyboard_interrupt, "builtins.KeyboardInterrupt"),
        (SystemExit, _sigterm, "host._interrupts.SignalExit"),
    ],
    ids=["KeyboardInterrupt", "SIGTERM"],
)
def test_the_exception_ending_a_run_reaches_the_resource_through_the_wrapper(
    trace_path: Path,
    tmp_path: Path,
    ending: type[BaseException],
    interrupt: Any,
    name: str,
) -> None:
    # What ends a run: Ctrl-C, or SIGTERM to it (a sys.exit() in an asset only fails the asset).
    @asset
    def interrupted(uses_both: dict[str, str]) -> None:
        interrupt()

    with pytest.raises(ending):
        run_assets(
            [uses_both, interrupted],
            {"plain": Plain(), "held": Held(seen=str(tmp_path / "seen"))},
            plugins=[host_plugin_trace],
        )

    assert (tmp_path / "seen").read_text() == name.rpartition(".")[2]
    lines = read_trace(trace_path)
    # Both context managers received the exception and let it pass on: they exited fine.
    exits = [line for line in lines if line["phase"] == "yield_exit"]
    assert [(x["resource_key"], x["ok"], x["exited_by"]) for x in exits] == [
        ("held", True, name),
        ("plain", True, name),
    ]
    assert phases(lines, "plain") == [
        ("setup", True, None),
        ("yield_enter", True, None),
        ("teardown", True, None),
        ("yield_exit", True, None),
    ]


def test_nothing_is_recorded_without_a_trace_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(host_plugin_trace.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)

    result = run_assets([uses_both], {"plain": Plain(), "held": {}}, plugins=[host_plugin_trace])

    assert result.success
    assert host_plugin_trace.trace_file() is None
    assert list(tmp_path.iterdir()) == []


def test_a_trace_file_that_cannot_be_written_does_not_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "no-such-directory" / "trace.jsonl"
    monkeypatch.setenv(host_plugin_trace.ENV_VAR, str(target))

    with caplog.at_level(logging.WARNING, logger="host_plugin_trace"):
        result = run_assets(
            [uses_both], {"plain": Plain(), "held": {}}, plugins=[host_plugin_trace]
        )

    assert result.success
    assert not target.exists()
    assert len(caplog.records) == 4  # setup, yield_enter, teardown, yield_exit
    assert f"cannot append to trace file {target}" in caplog.records[0].getMessage()


def test_processes_append_to_one_shared_file(trace_path: Path, tmp_path: Path) -> None:
    script = tmp_path / "one_run.py"
    script.write_text(
        textwrap.dedent(
            """
            import host_plugin_trace
            from host import ConfigurableResource, InitResourceContext, asset, run_assets

            class Counter(ConfigurableResource):
                start: int

                def setup_for_execution(self, context: InitResourceContext) -> None:
                    pass

            @asset
            def counted(counter: Counter) -> int:
                return counter.start

            for _ in range(5):
                run_assets([counted], {"counter": Counter(start=1)}, plugins=[host_plugin_trace])
            """
        )
    )
    processes = [
        subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for process in processes:
        with process:
            _out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err

    lines = read_trace(trace_path)  # every line is whole JSON
    assert len(lines) == 4 * 5 * 4
    assert len({line["pid"] for line in lines}) == 4
    assert len({line["run_id"] for line in lines}) == 4 * 5
    per_run = Counter(line["run_id"] for line in lines)
    assert set(per_run.values()) == {4}
    assert {pid for pid in (line["pid"] for line in lines)}.isdisjoint({os.getpid()})


class Cheap(ConfigurableResource):
    """Nothing to do but come up and go down."""

    label: str = "cheap"


@asset
def in_worker_a(cheap: Cheap) -> int:
    return os.getpid()


@asset
def in_worker_b(cheap: Cheap) -> int:
    return os.getpid()


@asset
def in_worker_c(cheap: Cheap) -> int:
    return os.getpid()


def test_worker_processes_of_a_run_trace_their_own_phases(trace_path: Path) -> None:
    result = run_assets(
        [in_worker_a, in_worker_b, in_worker_c],
        {"cheap": Cheap()},
        executor="multiprocess",
        executor_config={"max_workers": 2},
        plugins=[host_plugin_trace],
    )

    workers = set(result.outputs.values())
    lines = read_trace(trace_path)
    assert {line["pid"] for line in lines} == workers
    for pid in workers:
        mine = [line for line in lines if line["pid"] == pid]
        assert [line["phase"] for line in mine] == [
            "setup",
            "yield_enter",
            "teardown",
            "yield_exit",
        ]
        assert {(line["run_id"], line["executor"]) for line in mine} == {
            (result.run_id, "multiprocess")
        }


def test_a_test_can_trace_resources_it_opens_with_host_testing(trace_path: Path) -> None:
    from host.testing import open_resource, register_plugin

    with register_plugin(host_plugin_trace), open_resource(Plain(), key="db") as plain:
        assert isinstance(plain, Plain)
    assert [(line["resource_key"], line["phase"]) for line in read_trace(trace_path)] == [
        ("db", "setup"),
        ("db", "yield_enter"),
        ("db", "teardown"),
        ("db", "yield_exit"),
    ]
