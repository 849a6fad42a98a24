"""Secrets never show: not in repr, logs, events, errors, ``host`` output, tracebacks the host
renders, the trace plugin's file, or the fault plugin's log, whatever fails.

The resource (``tests.recording.Vault``) holds a ``SecretStr`` and a value read from an
``EnvVar``, and quotes both in the exceptions it raises on purpose, as careless code does; an
asset quotes them too. Every fault scenario (an injected raise at every phase, a killed or
exiting worker, SIGTERM) runs on every executor through ``run_assets``, and through ``host run
--traceback`` in a subprocess; everything each produced is searched for both values.

What the host cannot mask (documented in ``specs/security.md``): the original exception objects
it chains as ``__cause__`` are the resource's or asset's own, message included, and what a
resource or asset writes itself (its own files, its own log lines) is its own business.
"""

from __future__ import annotations

import json
import logging
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from host_plugin_faults import ASSET_PHASES, PHASES, Fault, Faults

from host import (
    EnvVar,
    HostError,
    InitResourceContext,
    RunFailure,
    asset,
    run_assets,
)
from host._discovery import RESOURCES_GROUP
from host.testing import build_init_resource_context, open_resource
from tests.dists import HOST, make_dist, run
from tests.graphs import make_asset
from tests.observers import Captured, EventLog
from tests.recording import Vault

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tk-0ne-secret-42x"
PASSWORD = "pw-tw0-secret-77y"
PASSWORD_VAR = "GEN_VAULT_PASSWORD"

Executor = tuple[str, dict[str, Any]]


def _setenv(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@asset
def reveals(vault: Vault) -> None:
    raise ValueError(f"the vault said no to {vault.reveal()}")


def _scenarios(executor: str) -> list[tuple[str, dict[str, Any], Fault | None]]:
    """(name, Vault settings, fault) for every way the run can go wrong."""
    found: list[tuple[str, dict[str, Any], Fault | None]] = [
        ("vault-setup-fails", {"fail_setup": True}, None),
        ("vault-teardown-fails", {"fail_teardown": True}, None),
        ("asset-reveals", {}, None),
    ]
    for phase in PHASES:
        key = "uses" if phase in ASSET_PHASES else "vault"
        found.append((f"raise-{phase}", {}, Fault(phase=phase, action="raise", key=key)))
    if executor != "in_process":
        for phase in ("setup", "asset_body", "teardown"):
            key = "uses" if phase in ASSET_PHASES else "vault"
            found.append((f"kill-{phase}", {}, Fault(phase=phase, action="kill", key=key)))
        found.append(("exit-yield_exit", {}, Fault(phase="yield_exit", action="exit")))
    else:
        found.append(("sigterm-asset_body", {}, Fault(
            phase="asset_body", action="signal", signum="SIGTERM", key="uses")))
    return found


@pytest.fixture
def environment(executor: Executor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[
    Path
]:
    """The password's variable and a trace file, where the run's resources come up."""
    name, config = executor
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    monkeypatch.setenv("HOST_TRACE_FILE", str(trace))
    if name != "dask":
        yield trace
        return
    from distributed import Client

    with Client(config["address"], set_as_default=False) as client:
        client.run(_setenv, PASSWORD_VAR, PASSWORD)
        client.run(_setenv, "HOST_TRACE_FILE", str(trace))
        try:
            yield trace
        finally:
            client.wait_for_workers(2, timeout=120)
            client.run(_setenv, PASSWORD_VAR, None)
            client.run(_setenv, "HOST_TRACE_FILE", None)


def test_no_secret_anywhere_in_any_fault_scenario(
    executor: Executor, environment: Path, tmp_path: Path
) -> None:
    name, config = executor
    logs = Captured()
    logging.getLogger().addHandler(logs)
    searched = 0
    try:
        for scenario, settings, fault in _scenarios(name):
            texts = _one_scenario(name, config, tmp_path / scenario, settings, fault)
            texts.append(environment.read_text() if environment.exists() else "")
            for text in texts:
                assert TOKEN not in text and PASSWORD not in text, (scenario, text[:2000])
            searched += 1
            if fault is not None and fault.action in ("kill", "exit") and name == "dask":
                _wait_for_dask_workers(config["address"])
    finally:
        logging.getLogger().removeHandler(logs)
    assert TOKEN not in "\n".join(logs.lines) and PASSWORD not in "\n".join(logs.lines)
    assert searched == len(_scenarios(name))


def _wait_for_dask_workers(address: str) -> None:
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)
        client.run(_setenv, PASSWORD_VAR, PASSWORD)  # a restarted worker starts afresh


def _one_scenario(
    executor: str,
    config: dict[str, Any],
    work: Path,
    settings: dict[str, Any],
    fault: Fault | None,
) -> list[str]:
    work.mkdir()
    vault = Vault(
        record=str(work / "records.jsonl"),
        label="vault",
        token=TOKEN,
        password=EnvVar(PASSWORD_VAR),
        **settings,
    )
    observer = EventLog()
    plugins: list[object] = [observer]
    if fault is not None:
        plugins.append(Faults(fault, log=work / "faults.jsonl", state_dir=work / "state"))
    assets = [make_asset("uses", resources=["vault"])]
    if not settings and fault is None:
        assets = [reveals]
    texts = [repr(vault), repr(EnvVar(PASSWORD_VAR))]
    try:
        run_assets(
            assets, {"vault": vault}, executor=executor, executor_config=config, plugins=plugins
        )
    except RunFailure as failure:
        texts += [str(failure), repr(failure.result)]
    except SystemExit as stopped:  # SIGTERM
        texts.append(repr(stopped))
    texts.append(repr(observer.events))
    if (work / "faults.jsonl").exists():
        texts.append((work / "faults.jsonl").read_text())
    return texts


def test_contexts_and_test_helpers_mask_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    vault = Vault(
        record=str(tmp_path / "r.jsonl"), label="v", token=TOKEN, password=EnvVar(PASSWORD_VAR)
    )
    context = build_init_resource_context({"token": vault.token, "password": vault.password})
    seen: list[InitResourceContext] = []

    class Peek(Vault):
        def setup_for_execution(self, context: InitResourceContext) -> None:
            seen.append(context)

    peek = Peek(**{**vault.__dict__, "password": EnvVar(PASSWORD_VAR)})
    with open_resource(peek, key="vault") as up:
        texts = [repr(up), repr(seen[0]), str(seen[0].resource_config), repr(context)]
    failing = Vault(**{**vault.__dict__, "password": EnvVar(PASSWORD_VAR), "fail_setup": True})
    with pytest.raises(HostError) as info, open_resource(failing, key="vault"):
        pass
    texts.append(str(info.value))
    for text in texts:
        assert TOKEN not in text and PASSWORD not in text, text
    assert up.password == PASSWORD  # the resource itself has the value, of course


# -- host run --------------------------------------------------------------------------------

RUN = """
[run]
assets = ["vault_assets"]
executor = "EXECUTOR"
executor_config = CONFIG

[resources.vault]
type = "genvault.vault"
[resources.vault.config]
record = "RECORD"
label = "vault"
token = "TOKEN"
password = { env = "GEN_VAULT_PASSWORD" }
SETTINGS
"""

ASSETS = """
from host import asset
from tests.graphs import make_asset

uses = make_asset("uses", resources=["vault"])

@asset
def reveals(vault):
    raise ValueError("the vault said no to " + vault.reveal())
"""


@pytest.fixture(scope="module")
def vault_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("vault-site")
    vault = {"genvault.vault": "tests.recording:Vault"}
    make_dist(site, "gen-vault", entry_points={RESOURCES_GROUP: vault})
    return site


HOST_SCENARIOS = [
    ("in_process", "{}", name, settings, fault)
    for name, settings, fault in _scenarios("in_process")
] + [
    ("multiprocess", "{ max_workers = 2 }", name, settings, fault)
    for name, settings, fault in _scenarios("multiprocess")
    if name.startswith(("kill", "exit"))
]

#: Injected raises that ``host run`` takes under ``-m slow`` only: each is reported as its
#: phase's sibling taken by default is (a setup failure as ``raise-setup``, a teardown failure
#: as ``raise-yield_exit``, an asset failure as ``raise-asset_body``); ``run_assets`` (above)
#: takes every phase by default.
HOST_SLOW = {"raise-yield_enter", "raise-teardown", "raise-asset_start", "raise-asset_end"}


@pytest.mark.parametrize(
    ("executor", "config", "scenario", "settings", "fault"),
    [
        pytest.param(*s, marks=pytest.mark.slow if s[2] in HOST_SLOW else (), id=f"{s[0]}-{s[2]}")
        for s in HOST_SCENARIOS
    ],
)
def test_host_run_shows_no_secret_in_any_fault_scenario(
    vault_site: Path,
    tmp_path: Path,
    executor: str,
    config: str,
    scenario: str,
    settings: dict[str, Any],
    fault: Fault | None,
) -> None:
    (tmp_path / "vault_assets.py").write_text(textwrap.dedent(ASSETS))
    text = (
        RUN.replace("EXECUTOR", executor)
        .replace("CONFIG", config)
        .replace("RECORD", str(tmp_path / "records.jsonl"))
        .replace("TOKEN", TOKEN)
        .replace("SETTINGS", "\n".join(f"{k} = true" for k in settings))
    )
    if not settings and fault is None:
        text = text.replace('["vault_assets"]', '["vault_assets:reveals"]')
    else:
        text = text.replace('["vault_assets"]', '["vault_assets:uses"]')
    path = tmp_path / "run.toml"
    path.write_text(textwrap.dedent(text))
    trace = tmp_path / "trace.jsonl"
    env = {
        "PYTHONPATH": os.pathsep.join([str(vault_site), str(ROOT)]),
        PASSWORD_VAR: PASSWORD,
        "HOST_TRACE_FILE": str(trace),
    }
    if fault is not None:
        env["HOST_FAULTS"] = json.dumps([fault.model_dump(mode="json")])
    done = run([HOST, "run", "--plain", "--traceback", str(path)], cwd=tmp_path, env=env)
    assert done.returncode in (1, 143), done.stderr  # the run failed (or was terminated)
    for output in (done.stdout, done.stderr, trace.read_text() if trace.exists() else ""):
        assert TOKEN not in output and PASSWORD not in output, output
    assert "**********" in done.stdout + done.stderr or fault is not None
