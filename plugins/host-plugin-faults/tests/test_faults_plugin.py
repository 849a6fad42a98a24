"""host-plugin-faults: each action at each kind of phase, selection by key and process, the
installed plugin's environment variable, and that it does nothing unless asked."""

from __future__ import annotations

import json
import os
import pickle
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from host_plugin_faults import (
    ENV_VAR,
    PHASES,
    Fault,
    FaultConfigError,
    Faults,
    InjectedFault,
    environment_faults,
    read_log,
)
from pydantic import PrivateAttr

from host import (
    AssetDefinition,
    ConfigurableResource,
    InitResourceContext,
    asset,
    discover_plugins,
    run_assets,
)


def _write(path: str, event: str, key: str) -> None:
    with open(path, "a") as file:
        file.write(json.dumps({"event": event, "key": key, "pid": os.getpid()}) + "\n")


def _read(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [(r["event"], r["key"]) for r in map(json.loads, path.read_text().splitlines())]


class Noted(ConfigurableResource):
    """Notes its setup and teardown (with the pid) in a file."""

    path: str
    _up: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        _write(self.path, "setup", context.resource_key)
        self._up = True

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        _write(self.path, "teardown", context.resource_key)


def _user(name: str, *keys: str) -> AssetDefinition:
    def body(**resources: Any) -> int:
        return os.getpid()

    import inspect

    body.__name__ = name
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY) for key in keys]
    )
    return asset(body)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return tmp_path / "notes.jsonl"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "faults.jsonl"


@pytest.fixture(autouse=True)
def _no_environment_plan(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_VAR, raising=False)
    yield


def _run(notes: Path, *faults: Fault, log: Path | None = None, **kwargs: Any) -> Any:
    resources = {"db": Noted(path=str(notes)), "api": Noted(path=str(notes))}
    plan = Faults(*faults, log=log, state_dir=notes.parent / "state")
    return run_assets(
        [_user("load", "db"), _user("serve", "db", "api")],
        resources,
        raise_on_error=False,
        plugins=[plan],
        **kwargs,
    )


# -- raise, at every phase -------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["setup", "yield_enter"])
def test_raise_at_a_setup_phase_keeps_the_resource_down(notes: Path, log: Path, phase: str) -> None:
    result = _run(notes, Fault(phase=phase, action="raise", key="api"), log=log)
    assert result.outputs.keys() == {"load"}
    error = result.failures["serve"]
    assert error.resource_key == "api" and "InjectedFault" in error.message
    assert _read(notes) == [("setup", "db"), ("teardown", "db")]  # api never came up
    (fired,) = read_log(log)
    assert (fired["phase"], fired["key"], fired["when"], fired["pid"]) == (
        phase, "api", "before", os.getpid(),
    )


@pytest.mark.parametrize("phase", ["teardown", "yield_exit"])
def test_raise_at_a_teardown_phase_after_the_resource_went_down(notes: Path, phase: str) -> None:
    result = _run(notes, Fault(phase=phase, action="raise", key="api"))
    assert result.outputs.keys() == {"load", "serve"}
    assert [e.resource_key for e in result.resource_errors] == ["api"]
    assert _read(notes)[-2:] == [("teardown", "api"), ("teardown", "db")]


def test_raise_before_the_teardown_skips_the_resource_s_own(notes: Path) -> None:
    result = _run(notes, Fault(phase="teardown", action="raise", key="api", when="before"))
    assert [e.resource_key for e in result.resource_errors] == ["api"]
    assert ("teardown", "api") not in _read(notes)


@pytest.mark.parametrize("phase", ["asset_start", "asset_body", "asset_end"])
def test_raise_at_an_asset_phase_fails_that_asset(notes: Path, phase: str) -> None:
    result = _run(notes, Fault(phase=phase, action="raise", key="serve"))
    assert result.outputs.keys() == {"load"}
    assert result.failures["serve"].type == "host_plugin_faults._faults.InjectedFault"
    assert f"raise at {phase} of 'serve'" in result.failures["serve"].message


def test_no_key_means_every_key(notes: Path, log: Path) -> None:
    _run(notes, Fault(phase="teardown", action="raise"), log=log)
    assert sorted(f["key"] for f in read_log(log)) == ["api", "db"]


def test_pid_selects_the_process(notes: Path, log: Path) -> None:
    result = _run(notes, Fault(phase="asset_body", action="raise", pid=os.getpid() + 1), log=log)
    assert result.success and read_log(log) == []


# -- hang, signal, kill, exit ----------------------------------------------------------------


def test_hang_is_stopped_by_a_timeout(notes: Path) -> None:
    result = _run(
        notes,
        Fault(phase="setup", action="hang", key="api"),
        resource_timeouts={"api": {"setup": 0.2}},
    )
    assert "did not come up within its setup_timeout of 0.2 s" in result.failures["serve"].message


def test_a_short_hang_goes_on(notes: Path) -> None:
    result = _run(notes, Fault(phase="asset_body", action="hang", hang_seconds=0.05))
    assert result.success


@pytest.mark.parametrize(
    ("signum", "raised"), [("SIGINT", KeyboardInterrupt), ("SIGTERM", SystemExit)]
)
def test_a_signal_to_this_process_at_a_phase(notes: Path, signum: str, raised: type) -> None:
    with pytest.raises(raised):
        _run(notes, Fault(phase="asset_start", action="signal", key="serve", signum=signum))
    assert _read(notes)[-2:] == [("teardown", "api"), ("teardown", "db")]


@pytest.mark.parametrize("action", ["kill", "exit"])
def test_kill_and_exit_end_the_worker_once(notes: Path, log: Path, action: str) -> None:
    result = _run(
        notes,
        Fault(phase="asset_body", action=action, key="serve", once=True, exit_code=7),
        log=log,
        executor="multiprocess",
        executor_config={"max_workers": 2},
    )
    error = result.failures["serve"]
    assert error.type == "host._errors.WorkerDiedError"
    how = "killed by signal SIGKILL" if action == "kill" else "exited with code 7"
    assert how in error.message
    (fired,) = read_log(log)
    assert fired["pid"] != os.getpid()


# -- the plan --------------------------------------------------------------------------------


def test_a_plan_pickles_and_describes_itself(tmp_path: Path) -> None:
    plan = Faults(Fault(phase="setup", action="raise", key="db"), {"phase": "teardown",
                                                                   "action": "hang"})
    copy = pickle.loads(pickle.dumps(plan))
    assert copy.faults == plan.faults
    assert repr(plan) == "<Faults raise at setup of 'db', hang at teardown>"
    assert set(PHASES) == {
        "setup", "yield_enter", "yield_exit", "teardown", "asset_start", "asset_body", "asset_end"
    }


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ({"phase": "nowhere", "action": "raise"}, "faults.0.phase"),
        ({"phase": "setup", "action": "explode"}, "faults.0.action"),
        ({"phase": "setup", "action": "signal", "signum": "SIGNOPE"}, "not a signal"),
        ({"phase": "setup", "action": "raise", "colour": "red"}, "colour"),
    ],
)
def test_an_invalid_plan_is_a_fault_config_error(fault: dict[str, Any], problem: str) -> None:
    with pytest.raises(FaultConfigError, match=problem):
        Faults(fault)


# -- the installed plugin --------------------------------------------------------------------


def test_the_installed_plugin_is_registered_and_inert_until_configured(
    notes: Path, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (info,) = [i for i in discover_plugins("host.plugins") if i.name == "faults"]
    assert (info.distribution, info.status) == ("host-plugin-faults", "ok")
    monkeypatch.delenv("HOST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    assert _run(notes).success  # installed, loaded in the run, and does nothing
    assert environment_faults.faults == ()

    plan = {"faults": [{"phase": "asset_body", "action": "raise", "key": "load"}],
            "log": str(log)}
    monkeypatch.setenv(ENV_VAR, json.dumps(plan))
    result = _run(notes)
    assert result.failures["load"].type.endswith("InjectedFault")
    assert len(read_log(log)) == 1
    monkeypatch.setenv(ENV_VAR, json.dumps(plan["faults"]))  # a plain list works too
    assert environment_faults.faults[0].key == "load"


@pytest.mark.parametrize(
    ("value", "problem"),
    [("{not json", "is not JSON"), ('[{"phase": "setup"}]', "faults.0.action: Field required")],
)
def test_an_invalid_environment_plan_stops_the_run_before_anything_comes_up(
    notes: Path, monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.delenv("HOST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv(ENV_VAR, value)
    with pytest.raises(FaultConfigError, match=problem) as info:
        _run(notes)
    assert ENV_VAR in str(info.value)
    assert _read(notes) == []


def test_the_installed_plugin_shows_no_fault_hook_while_unconfigured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installed but unconfigured, it adds nothing to a run's asset and resource hooks."""
    from host._plugins import make_plugin_manager

    monkeypatch.delenv("HOST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    def wraps_assets() -> bool:
        manager = make_plugin_manager()
        assert manager.is_registered(environment_faults)
        impls = manager.hook.host_asset_execute.get_hookimpls()
        return any(impl.plugin is environment_faults for impl in impls)

    assert not wraps_assets()
    monkeypatch.setenv(ENV_VAR, '[{"phase": "asset_body", "action": "raise"}]')
    assert wraps_assets()


def test_injected_faults_pickle_across_processes() -> None:
    error = InjectedFault("injected fault #0: raise at setup")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert signal.Signals["SIGTERM"] == signal.SIGTERM
