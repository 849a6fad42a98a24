"""The ``host`` command, run as a user runs it: the console script in a subprocess.

Generated distributions (a site on PYTHONPATH) give good, broken, duplicated and incompatible
plugins; the plugin packages of plugins/ (installed in the environment like a user's) give real
runs: ``sqlite`` for storage, ``http`` against its local token server, ``trace`` as a hook plugin.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from host._discovery import (
    EXECUTORS_GROUP,
    PLUGINS_GROUP,
    RESOURCES_GROUP,
    check_entry_point,
    discover_plugins,
    reset_discovery,
)
from tests.dists import HOST, environ, imported, make_dist, run

THING = """
import json
from pydantic import Field, SecretStr
from host import ConfigurableResource

class Thing(ConfigurableResource):
    \"\"\"A thing for command tests.\"\"\"

    label: str = Field(description="What the thing is called.")
    token: SecretStr = Field(default=SecretStr(""), description="A secret.")
    record: str = ""

    def setup_for_execution(self, context):
        if self.record:
            with open(self.record, "a") as f:
                f.write(json.dumps({"event": "setup", "key": context.resource_key}) + "\\n")

    def teardown_after_execution(self, context):
        if self.record:
            with open(self.record, "a") as f:
                f.write(json.dumps({"event": "teardown", "key": context.resource_key}) + "\\n")
"""

ASSETS = """
from host import asset

@asset
def labelled(thing):
    return thing.label

@asset
def loud(labelled):
    return labelled.upper()
"""

FAILING_ASSETS = """
from host import asset

@asset
def leaky(thing):
    raise ValueError("could not use token " + thing.token.get_secret_value())

@asset
def after(leaky):
    return leaky
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated distributions for the command tests (one site for the module)."""
    site = tmp_path_factory.mktemp("cli-site")
    make_dist(
        site,
        "gen-cli-good",
        "1.1",
        entry_points={RESOURCES_GROUP: {"gencli.thing": "gencli_good:Thing"}},
        modules={"gencli_good.py": THING},
    )
    make_dist(
        site,
        "gen-cli-broken",
        "0.3",
        entry_points={
            RESOURCES_GROUP: {"gencli.broken": "gencli_broken:Thing"},
            PLUGINS_GROUP: {"gencli_hooks": "gencli_broken"},
        },
        modules={"gencli_broken.py": "raise RuntimeError('this plugin cannot import')\n"},
    )
    for dist in ("gen-cli-dup-a", "gen-cli-dup-b"):
        make_dist(site, dist, entry_points={RESOURCES_GROUP: {"gencli.dup": "gencli_good:Thing"}})
    make_dist(
        site,
        "gen-cli-future",
        "7.0",
        entry_points={EXECUTORS_GROUP: {"gencli_future": "gencli_future:Executor"}},
        requires=["host>=99"],
        modules={"gencli_future.py": "X = 1\n"},
    )
    return site


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cli_assets.py").write_text(textwrap.dedent(ASSETS))
    (tmp_path / "cli_failing.py").write_text(textwrap.dedent(FAILING_ASSETS))
    return tmp_path


def config(project: Path, text: str, name: str = "run.toml") -> Path:
    path = project / name
    path.write_text(textwrap.dedent(text))
    return path


THING_RUN = """
[run]
assets = ["cli_assets"]

[resources.thing]
type = "gencli.thing"
[resources.thing.config]
label = "lamp"
record = "RECORD"
"""


def installed(group: str, name: str) -> bool:
    """Whether the test environment has a working entry point ``name`` (a plugins/ package)."""
    reset_discovery()
    return any(
        check_entry_point(info).status == "ok"
        for info in discover_plugins(group)
        if info.name == name
    )


# -- host plugins -------------------------------------------------------------------------------


def test_plugins_json_lists_every_entry_point_without_importing(site: Path, tmp_path: Path) -> None:
    marker = tmp_path / "imports.txt"
    done = run([HOST, "plugins", "--json"], site=site, env={"HOST_TEST_IMPORTS": str(marker)})
    assert done.returncode == 0, done.stderr
    listed = {(e["group"], e["name"], e["distribution"]): e for e in json.loads(done.stdout)}
    good = listed[(RESOURCES_GROUP, "gencli.thing", "gen-cli-good")]
    assert (good["version"], good["value"], good["status"]) == ("1.1", "gencli_good:Thing", "ok")
    assert listed[(EXECUTORS_GROUP, "in_process", "host")]["status"] == "ok"
    assert listed[(RESOURCES_GROUP, "gencli.dup", "gen-cli-dup-a")]["status"] == "conflict"
    future = listed[(EXECUTORS_GROUP, "gencli_future", "gen-cli-future")]
    assert future["status"] == "incompatible"
    assert "host>=99" in future["problem"]
    assert imported(marker) == []


def test_plugins_check_imports_each_and_reports_status_and_error(
    site: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "imports.txt"
    done = run(
        [HOST, "plugins", "--check", "--json"], site=site, env={"HOST_TEST_IMPORTS": str(marker)}
    )
    assert done.returncode == 2  # something is broken, incompatible or in conflict
    status = {(e["name"], e["distribution"]): e for e in json.loads(done.stdout)}
    assert status[("gencli.thing", "gen-cli-good")]["status"] == "ok"
    broken = status[("gencli.broken", "gen-cli-broken")]
    assert broken["status"] == "broken"
    assert "RuntimeError: this plugin cannot import" in broken["error"]
    assert "gen-cli-broken 0.3" in broken["error"]
    assert status[("gencli.thing", "gen-cli-good")]["error"] is None
    assert status[("gencli_hooks", "gen-cli-broken")]["status"] == "broken"
    assert status[("gencli_future", "gen-cli-future")]["status"] == "incompatible"
    assert "gencli_future" not in imported(marker)  # incompatible: never imported
    assert "gencli_good" in imported(marker)
    assert "traceback" not in broken

    with_tb = run([HOST, "plugins", "--check", "--json", "--traceback"], site=site)
    rows = {(e["name"], e["distribution"]): e for e in json.loads(with_tb.stdout)}
    traceback = rows[("gencli.broken", "gen-cli-broken")]["traceback"]
    assert "Traceback (most recent call last)" in traceback
    assert 'gencli_broken.py", line' in traceback


def test_plugins_prints_a_table_and_honours_disabling(site: Path) -> None:
    done = run([HOST, "plugins"], site=site, env={"HOST_DISABLE_PLUGINS": "gencli.thing"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("plugin API ")
    assert lines[1].split() == ["GROUP", "NAME", "DISTRIBUTION", "VERSION", "VALUE", "STATUS"]
    row = next(line.split() for line in lines if "gencli.thing" in line)
    assert row == [RESOURCES_GROUP, "gencli.thing", "gen-cli-good", "1.1", "gencli_good:Thing",
                   "disabled"]


# -- host resources -----------------------------------------------------------------------------


def test_resources_lists_types_and_shows_a_config_schema(site: Path) -> None:
    listed = run([HOST, "resources", "--json"], site=site)
    assert listed.returncode == 0, listed.stderr
    assert {e["name"] for e in json.loads(listed.stdout)} >= {"gencli.thing", "gencli.broken"}

    schema = run([HOST, "resources", "gencli.thing", "--json"], site=site)
    assert schema.returncode == 0, schema.stderr
    parsed = json.loads(schema.stdout)
    assert parsed["required"] == ["label"]
    assert parsed["properties"]["token"]["format"] == "password"

    text = run([HOST, "resources", "gencli.thing"], site=site)
    assert text.returncode == 0, text.stderr
    assert "gencli_good:Thing (gen-cli-good 1.1)" in text.stdout
    assert any(line.split()[:3] == ["label", "string", "required"] for line in
               text.stdout.splitlines() if line.strip())
    assert "string (secret)" in text.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gencli.thinng", "did you mean 'gencli.thing'"),
        ("gencli.broken", "RuntimeError: this plugin cannot import"),
        ("gencli.dup", "gen-cli-dup-a 1.0"),
    ],
)
def test_resources_of_an_unusable_type_exits_2(site: Path, name: str, expected: str) -> None:
    done = run([HOST, "resources", name], site=site)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("host: error: ")


# -- host check ---------------------------------------------------------------------------------


def test_check_validates_and_brings_nothing_up(site: Path, project: Path) -> None:
    record = project / "records.jsonl"
    path = config(project, THING_RUN.replace("RECORD", str(record)))
    done = run([HOST, "check", str(path)], site=site, cwd=project)
    assert done.returncode == 0, done.stderr
    assert "2 assets (labelled, loud)" in done.stdout
    assert "thing (gencli.thing from gen-cli-good 1.1)" in done.stdout
    assert not record.exists()


def test_check_of_an_invalid_config_is_one_message_and_exit_2(site: Path, project: Path) -> None:
    path = config(project, THING_RUN.replace('label = "lamp"', "label = 5"))
    done = run([HOST, "check", str(path)], site=site)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"host: error: {path}: resource 'thing'")
    assert "label" in done.stderr
    assert "Traceback" not in done.stderr

    with_tb = run([HOST, "check", str(path), "--traceback"], site=site)
    assert with_tb.returncode == 2
    assert "Traceback (most recent call last)" in with_tb.stderr


def test_usage_errors_exit_2(site: Path) -> None:
    assert run([HOST, "run"], site=site).returncode == 2
    assert run([HOST, "frobnicate"], site=site).returncode == 2
    missing = run([HOST, "check", "does-not-exist.toml"], site=site)
    assert missing.returncode == 2
    assert "cannot read run config does-not-exist.toml" in missing.stderr


# -- host run -----------------------------------------------------------------------------------


def test_run_prints_progress_and_a_summary_with_timings(site: Path, project: Path) -> None:
    record = project / "records.jsonl"
    path = config(project, THING_RUN.replace("RECORD", str(record)))
    done = run([HOST, "run", str(path)], site=site, cwd=project)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "asset labelled: ok in" in out  # plain progress lines (not a terminal)
    assert "resource thing: up in" in out
    summary = out[out.index("\nAssets\n") + 1 :]
    assets = {line.split()[0]: line.split() for line in summary.splitlines()[2:4]}
    assert assets["labelled"][1] == "ok"
    assert assets["loud"][1] == "ok"
    assert assets["loud"][-1] == "'LAMP'"  # each output's repr, shortened to one line
    lines = summary.splitlines()
    resource_row = next(line.split() for line in lines if line.startswith("  thing "))
    assert resource_row[1:4] == ["gencli.thing", "(gen-cli-good", "1.1)"]
    # up, setup, teardown and down, each with its duration
    assert all(re.fullmatch(r"\d+\.\d+(ms|s)", cell) for cell in resource_row[5:9])
    assert "succeeded" in summary.splitlines()[-1]
    events = [json.loads(line)["event"] for line in record.read_text().splitlines()]
    assert events == ["setup", "teardown"]


def test_a_failed_run_exits_1_and_never_prints_secrets(site: Path, project: Path) -> None:
    secret = "tok-8f7e6d5c4b3a"
    path = config(
        project,
        """
        [run]
        assets = ["cli_failing"]
        [resources.thing]
        type = "gencli.thing"
        [resources.thing.config]
        label = "lamp"
        token = { env = "GEN_CLI_TOKEN" }
        """,
    )
    for flags in ([], ["--traceback"]):
        done = run([HOST, "run", str(path), *flags], site=site, env={"GEN_CLI_TOKEN": secret})
        assert done.returncode == 1
        assert "asset leaky: FAILED" in done.stdout
        assert "skipped" in done.stdout
        assert "could not use token **********" in done.stderr
        assert secret not in done.stdout + done.stderr
    literal = config(project, THING_RUN.replace("RECORD", "").replace(
        'label = "lamp"', f'label = "lamp"\ntoken = "{secret}"'
    ).replace('["cli_assets"]', '["cli_failing"]'), name="literal.toml")
    done = run([HOST, "run", str(literal), "--traceback"], site=site)
    assert done.returncode == 1
    assert secret not in done.stdout + done.stderr


def test_run_of_an_invalid_config_exits_2_and_brings_nothing_up(site: Path, project: Path) -> None:
    record = project / "records.jsonl"
    text = THING_RUN.replace("RECORD", str(record)) + '\n[resources.other]\ntype = "gencli.dup"\n'
    done = run([HOST, "run", str(config(project, text))], site=site)
    assert done.returncode == 2
    assert "registered by several distributions" in done.stderr
    assert not record.exists()


def test_run_shows_a_live_display_on_a_terminal(site: Path, project: Path) -> None:
    path = config(project, THING_RUN.replace("RECORD", ""))
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [HOST, "run", str(path)],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=environ(site, TERM="xterm"),
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=60) == 0
    shown = b"".join(chunks).decode()
    assert "\r\x1b[2K" in shown  # the status line is redrawn in place
    assert "2/2 assets" in shown
    assert "Assets" in shown
    assert "Resources" in shown


# -- runs with the plugin packages of plugins/ ---------------------------------------------------


@pytest.fixture
def sqlite_and_trace() -> Iterator[None]:
    if not (installed(RESOURCES_GROUP, "sqlite") and installed(PLUGINS_GROUP, "trace")):
        pytest.skip("host-plugin-sqlite and host-plugin-trace are not installed (bash .ci/setup)")
    yield
    reset_discovery()


SQLITE_ASSETS = """
from host import asset

@asset
def stored(db):
    db.execute("create table if not exists t (x integer)")
    db.execute("insert into t values (1), (2), (3)")
    return 3

@asset
def counted(stored, db):
    return db.execute("select count(*) from t").fetchone()[0]
"""


def test_run_with_the_sqlite_resource_and_the_trace_hook_plugin(
    sqlite_and_trace: None, tmp_path: Path
) -> None:
    (tmp_path / "sqlite_assets.py").write_text(textwrap.dedent(SQLITE_ASSETS))
    database = tmp_path / "data.db"
    path = config(
        tmp_path,
        f"""
        [run]
        assets = ["sqlite_assets"]
        [resources.db]
        type = "sqlite"
        [resources.db.config]
        path = "{database}"
        """,
    )
    trace = tmp_path / "trace.jsonl"
    done = run([HOST, "run", str(path)], cwd=tmp_path, env={"HOST_TRACE_FILE": str(trace)})
    assert done.returncode == 0, done.stderr
    assert "db        sqlite (host-plugin-sqlite" in done.stdout
    import sqlite3

    with sqlite3.connect(database) as connection:  # committed at teardown
        assert connection.execute("select count(*) from t").fetchone()[0] == 3
    phases = [json.loads(line)["phase"] for line in trace.read_text().splitlines()]
    assert phases == ["yield_enter", "yield_exit"]

    trace.unlink()
    off = run(
        [HOST, "run", str(path)],
        cwd=tmp_path,
        env={"HOST_TRACE_FILE": str(trace), "HOST_DISABLE_PLUGINS": "trace"},
    )
    assert off.returncode == 0, off.stderr
    assert not trace.exists()  # the hook plugin was switched off


def test_run_with_the_http_resource_reads_the_password_from_the_environment(
    tmp_path: Path,
) -> None:
    if not installed(RESOURCES_GROUP, "http"):
        pytest.skip("host-plugin-http is not installed (bash .ci/setup)")
    from host_plugin_http.testserver import serve

    (tmp_path / "http_assets.py").write_text(
        "from host import asset\n\n@asset\ndef names(api):\n"
        "    return [user['name'] for user in api.get_all_users()]\n"
    )
    with serve(password="pw-5a4b3c2d1e") as server:
        path = config(
            tmp_path,
            f"""
            [run]
            assets = ["http_assets"]
            [resources.api]
            type = "http"
            [resources.api.config]
            base_url = "{server.url}"
            username = "{server.username}"
            password = {{ env = "GEN_API_PASSWORD" }}
            """,
        )
        missing = run([HOST, "check", str(path)])
        assert missing.returncode == 2
        assert "GEN_API_PASSWORD" in missing.stderr
        done = run([HOST, "run", str(path)], env={"GEN_API_PASSWORD": "pw-5a4b3c2d1e"})
        assert done.returncode == 0, done.stderr
        assert server.token_requests == 1
        assert "pw-5a4b3c2d1e" not in done.stdout + done.stderr


def test_the_run_config_switches_reach_worker_processes(
    sqlite_and_trace: None, tmp_path: Path
) -> None:
    if not installed(EXECUTORS_GROUP, "multiprocess"):
        pytest.skip("the multiprocess executor is not installed")
    (tmp_path / "sqlite_assets.py").write_text(textwrap.dedent(SQLITE_ASSETS))
    text = f"""
        [run]
        assets = ["sqlite_assets"]
        executor = "multiprocess"
        executor_config = {{ max_workers = 2 }}
        [resources.db]
        type = "sqlite"
        [resources.db.config]
        path = "{tmp_path / 'data.db'}"
        [plugins]
        disable = [DISABLE]
        """
    trace = tmp_path / "trace.jsonl"
    for disable in ('"trace"', ""):
        path = config(tmp_path, text.replace("DISABLE", disable))
        done = run([HOST, "run", str(path)], env={"HOST_TRACE_FILE": str(trace)})
        assert done.returncode == 0, done.stderr
        assert "2 ok, 0 failed" in done.stdout
        if disable:
            assert not trace.exists()  # not in the workers either
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert {line["executor"] for line in lines} == {"multiprocess"}


def test_new_plugin_is_a_command(tmp_path: Path) -> None:
    done = run([HOST, "new", "plugin", "gencli", "--dir", str(tmp_path)])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "host-plugin-gencli" / "pyproject.toml").exists()
    again = run([HOST, "new", "plugin", "gencli", "--dir", str(tmp_path)])
    assert again.returncode == 2
    assert again.stderr.startswith("host: error: ")
    assert "already exists" in again.stderr
