"""``host run`` / ``host check`` flags and output, through the real ``host`` command.

``--select`` (dbt's ``+name`` / ``name+``), ``--executor``, ``--set``, ``--json`` (validated
against the schemas in specs/, which are held equal to the code), ``host executors``, every
problem of a file at once, each distinct error shown once (every placement on both built-in
executors), the live display under a real pseudo-terminal, and the summary after SIGINT and
SIGTERM. The resource is ``tests.recording.Recorded`` (registered by a generated
distribution), which writes a record the moment it comes up and goes down.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import termios
import textwrap
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host._cli_json import check_report_schema, run_report_schema
from host._config_load import load_run_config
from host._discovery import RESOURCES_GROUP
from tests.dists import HOST, environ, make_dist, run
from tests.recording import read

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

#: a -> b, a -> c, (b, c) -> d; e alone. a and e take the resource r.
ASSETS = """
import os
import time
from host import asset

@asset
def a(r):
    if os.environ.get("FLAGS_FAIL") == "asset":
        raise ValueError("asset a broke: " + os.environ["FLAGS_TOKEN"])
    return r.use()

@asset
def b(a):
    return a + "b"

@asset
def c(a):
    return a + "c"

@asset
def d(b, c):
    return b + c

@asset
def e(r):
    if os.environ.get("FLAGS_WAIT"):
        open(os.environ["FLAGS_WAIT"], "w").close()
        while True:
            time.sleep(0.05)
    return r.use()
"""

RUN = """
[run]
assets = ["flag_assets"]

[resources.r]
type = "genflags.recorded"
[resources.r.config]
record = "RECORD"
label = "LABEL"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("flags-site")
    make_dist(
        site,
        "gen-flags",
        "2.5",
        entry_points={RESOURCES_GROUP: {"genflags.recorded": "tests.recording:Recorded"}},
    )
    return site


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flag_assets.py").write_text(textwrap.dedent(ASSETS))
    (tmp_path / "run.toml").write_text(
        RUN.replace("RECORD", str(tmp_path / "records.jsonl")).replace("LABEL", "lamp")
    )
    return tmp_path


def host(site: Path, project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``host ARGS`` in ``project``, with the site and the repository on PYTHONPATH."""
    pythonpath = os.pathsep.join([str(site), str(ROOT)])
    return run([HOST, *args], site=site, cwd=project, env={"PYTHONPATH": pythonpath, **env})


def validated(text: str, schema_file: str) -> dict[str, Any]:
    """The JSON document ``text`` (all of stdout), checked against ``specs/SCHEMA_FILE``."""
    document = json.loads(text)
    schema = json.loads((SPECS / schema_file).read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    return dict(document)


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {asset["key"]: asset["status"] for asset in document["assets"]}


# -- the schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("run-result.schema.json", run_report_schema),
        ("check-result.schema.json", check_report_schema),
    ],
)
def test_the_json_schemas_in_specs_are_the_code_s(name: str, make: Any) -> None:
    on_disk = json.loads((SPECS / name).read_text(encoding="utf-8"))
    assert on_disk == make(), (
        f"specs/{name} is out of date; regenerate it with `python -c 'import json, "
        f"host._cli_json as c; print(json.dumps(c.{make.__name__}(), indent=2))' > specs/{name}`"
    )
    jsonschema.Draft202012Validator.check_schema(on_disk)


# -- --json, --select, --executor, --set ---------------------------------------------------------


def test_run_json_is_one_document_with_assets_and_resource_lifecycles(
    site: Path, project: Path
) -> None:
    done = host(site, project, "run", "run.toml", "--json")
    assert done.returncode == 0, done.stderr
    document = validated(done.stdout, "run-result.schema.json")
    assert document["success"] and document["outcome"] == "succeeded"
    assert document["exit_code"] == 0 and document["executor"] == "in_process"
    assert statuses(document) == dict.fromkeys("abcde", "ok")
    assert {a["key"]: a["output"] for a in document["assets"]}["d"] == "'lampblampc'"
    (resource,) = document["resources"]
    assert resource["key"] == "r" and resource["type"] == "genflags.recorded"
    assert (resource["distribution"], resource["version"]) == ("gen-flags", "2.5")
    assert set(resource["phases"]) == {"setup", "yield_enter", "teardown", "yield_exit"}
    assert {r["event"] for r in read(project / "records.jsonl")} >= {"setup", "teardown"}


SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        pytest.param("d", "abcd", marks=SLOW),  # a name: it and its upstream assets
        pytest.param("+c", "ac", marks=SLOW),  # +name says the same explicitly
        ("b+,e", "abcde"),  # name+: downstream too (d, which needs c)
        (" b , ", "ab"),  # empty terms are dropped
    ],
)
def test_select_takes_dbt_terms(site: Path, project: Path, select: str, expected: str) -> None:
    done = host(site, project, "run", "run.toml", "--json", "--select", select)
    assert done.returncode == 0, done.stderr
    document = validated(done.stdout, "run-result.schema.json")
    assert sorted(statuses(document)) == list(expected)


def test_executor_and_set_override_the_file(site: Path, project: Path) -> None:
    done = host(
        site, project, "run", "run.toml", "--json", "--executor", "multiprocess",
        "--set", "run.executor_config.max_workers=2",
        "--set", 'resources.r.config.label="desk"',
        "--set", "resources.r.config.record=" + str(project / "other.jsonl"),  # a bare word
    )
    assert done.returncode == 0, done.stderr
    document = validated(done.stdout, "run-result.schema.json")
    assert document["executor"] == "multiprocess"
    pids = {asset["pid"] for asset in document["assets"]}
    assert len(pids) <= 2 and pids.isdisjoint({os.getpid(), None})
    assert {a["key"]: a["output"] for a in document["assets"]}["a"] == "'desk'"
    assert not (project / "records.jsonl").exists()
    assert {r["label"] for r in read(project / "other.jsonl")} == {"desk"}


def test_a_failed_run_s_json_names_each_error(site: Path, project: Path) -> None:
    done = host(
        site, project, "run", "run.toml", "--json", "--set", "resources.r.config.fail_setup=true"
    )
    assert done.returncode == 1
    document = validated(done.stdout, "run-result.schema.json")
    assert not document["success"] and document["outcome"] == "failed"
    assert document["exit_code"] == 1
    by_key = {asset["key"]: asset for asset in document["assets"]}
    assert by_key["a"]["status"] == "failed"
    assert by_key["a"]["error"]["type"] == "host._errors.ResourceSetupError"
    assert by_key["d"]["status"] == "skipped" and by_key["d"]["skipped_because"] in "bc"
    phases = document["resources"][0]["phases"]
    assert phases["setup"]["error"]["message"] == "setup of lamp failed on purpose"


def test_check_json_lists_every_problem_and_validates(site: Path, project: Path) -> None:
    done = host(site, project, "check", "run.toml", "--json")
    assert done.returncode == 0, done.stderr
    document = validated(done.stdout, "check-result.schema.json")
    assert document["valid"] and document["problems"] == []
    assert document["assets"] == list("abcde") and document["executor"] == "in_process"
    assert document["resources"][0]["type"] == "genflags.recorded"
    (project / "bad.toml").write_text(
        textwrap.dedent(
            """
            [run]
            assets = ["flag_assets"]
            executor = "multiproces"
            selection = ["dd"]
            [resources.r]
            type = "genflags.recorded"
            [resources.r.config]
            record = "RECORD"
            label = { env = "FLAGS_UNSET_VARIABLE" }
            """
        ).replace("RECORD", str(project / "records.jsonl"))
    )
    done = host(site, project, "check", "bad.toml", "--json")
    assert done.returncode == 2
    document = validated(done.stdout, "check-result.schema.json")
    assert not document["valid"]
    problems = document["problems"]
    assert len(problems) == 3, problems  # an unknown executor hides nothing else
    assert "did you mean 'multiprocess'" in problems[0]
    assert "FLAGS_UNSET_VARIABLE" in problems[1]
    assert "run.selection[0] 'dd': no asset is called 'dd'; did you mean 'd'?" in problems[2]
    assert not (project / "records.jsonl").exists()


def test_check_speaks_toml_and_lists_as_text(site: Path, project: Path) -> None:
    (project / "run.toml").write_text(
        (project / "run.toml").read_text().replace("[resources.r", "[resources.q")
    )
    done = host(site, project, "check", "run.toml")
    assert done.returncode == 2
    err = done.stderr
    assert "asset 'a', parameter 'r': no asset, [resources.r] table or 'context'" in err
    assert "resources: q" in err and "assets: a, b, c, d, e" in err
    assert "[" + "'" not in err  # no Python list reprs
    assert "resources={" not in err and "pid" not in err


def test_set_keys_for_executor_settings_suggest_the_close_one(site: Path, project: Path) -> None:
    done = host(
        site, project, "check", "run.toml", "--executor", "multiprocess",
        "--set", "run.executor_config.max_worker=2",
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "run.executor_config.max_worker: executor 'multiprocess' has no setting" in done.stderr
    assert "did you mean 'max_workers'?" in done.stderr


# -- host executors ------------------------------------------------------------------------------


def test_executors_lists_them_and_shows_one_s_settings(site: Path, project: Path) -> None:
    done = host(site, project, "executors")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert rows["in_process"][1] == "host" and rows["multiprocess"][1] == "host"
    done = host(site, project, "executors", "multiprocess")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    settings_rows = {line.split()[0]: line for line in lines if line[:2] == "  "}
    assert set(settings_rows) >= {"SETTING", "max_workers", "start_method", "grace_period"}
    assert 'default "spawn"' in settings_rows["start_method"]
    assert "worker processes" in settings_rows["max_workers"]  # the docstring's words
    done = host(site, project, "executors", "multiprocess", "--json")
    properties = set(json.loads(done.stdout)["properties"])
    assert properties == {"max_workers", "start_method", "grace_period"}
    done = host(site, project, "executors", "multiproces")
    assert done.returncode == 2
    assert done.stderr.startswith("host: error: no executor is called 'multiproces'; did you mean")
    listed = json.loads(host(site, project, "executors", "--json").stdout)
    assert {"in_process", "multiprocess"} <= {entry["name"] for entry in listed}


# -- selection, for any graph and any terms ------------------------------------------------------

#: A fixed graph of eight assets: name -> upstream names.
GRAPH = {
    "g0": [], "g1": ["g0"], "g2": ["g0"], "g3": ["g1", "g2"], "g4": [], "g5": ["g4", "g1"],
    "g6": ["g5"], "g7": ["g3", "g6"],
}


def _upstream(name: str) -> set[str]:
    found = {name}
    for up in GRAPH[name]:
        found |= _upstream(up)
    return found


def _downstream(name: str) -> set[str]:
    found = {name}
    for other, ups in GRAPH.items():
        if name in ups:
            found |= _downstream(other)
    return found


@pytest.fixture(scope="module")
def graph_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("selection-graph")
    lines = ["from tests.graphs import make_asset"]
    lines += [f"{name} = make_asset({name!r}, {ups!r})" for name, ups in GRAPH.items()]
    (root / "selection_graph_assets.py").write_text("\n".join(lines) + "\n")
    (root / "run.toml").write_text('[run]\nassets = ["selection_graph_assets"]\n')
    return root / "run.toml"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(GRAPH)), st.sampled_from(["", "+", "post", "both"])),
        min_size=1,
        max_size=4,
    )
)
def test_any_selection_plans_the_names_their_upstream_and_downstream_if_asked(
    graph_config: Path, picks: list[tuple[str, str]]
) -> None:
    terms = []
    expected: set[str] = set()
    for name, how in picks:
        terms.append({"": name, "+": "+" + name, "post": name + "+", "both": f"+{name}+"}[how])
        chosen = _downstream(name) if how in ("post", "both") else {name}
        for key in chosen:
            expected |= _upstream(key)
    config = load_run_config(graph_config, selection=terms)
    assert set(config.planned) == expected


# -- bad command-line input: exit 2, one line, nothing brought up --------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--set", "run.executr=multiprocess"],
            "run.executr (set on the command line): unknown key; did you mean 'executor'?",
        ),
        (["--set", "run.timeout=soon"], "run.timeout (set on the command line): "),
        (
            ["--set", "resources.r.config.fail_setup=[1"],
            "--set resources.r.config.fail_setup: the value is not a TOML value",
        ),
        pytest.param(
            ["--set", "resources.r.config.labl=1"],
            "unknown config field 'labl' (did you mean 'label'?)",
            marks=SLOW,
        ),
        pytest.param(["--set", "nothing"], "expected DOTTED.KEY=VALUE", marks=SLOW),
        pytest.param(["--set", "run.assets.x=1"], "run.assets is not a table", marks=SLOW),
        (["--select", ","], "--select ',' names no asset"),
        (["--select", "dd+"], "--select[0] 'dd+': no asset is called 'dd'; did you mean 'd'?"),
        pytest.param(["--select", "+"], "--select[0] '+': names no asset", marks=SLOW),
        (["--executor", "dusk"], "no executor is called 'dusk'; did you mean 'dask'?"),
    ],
)
@pytest.mark.parametrize("command", ["run", pytest.param("check", marks=SLOW)])
def test_bad_flags_exit_2_with_one_line_and_nothing_comes_up(
    site: Path, project: Path, command: str, args: list[str], expected: str
) -> None:
    done = host(site, project, command, "run.toml", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("host: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert expected in done.stderr, done.stderr
    assert done.stdout == ""
    assert not (project / "records.jsonl").exists(), "a resource came up"


# -- each distinct error once --------------------------------------------------------------------

PLACEMENTS = {
    "asset": ({"FLAGS_FAIL": "asset"}, [], "asset a broke: {token}"),
    "setup": (
        {}, ["--set", "resources.r.config.fail_setup=true"], "setup of {token} failed on purpose"
    ),
    "teardown": (
        {},
        ["--set", "resources.r.config.fail_teardown=true"],
        "teardown of {token} failed on purpose",
    ),
}


@pytest.mark.parametrize(
    ("placement", "executor"),
    [
        *((placement, "in_process") for placement in sorted(PLACEMENTS)),
        ("setup", "multiprocess"),  # one wrong password, two workers: one error
        pytest.param("asset", "multiprocess", marks=SLOW),
        pytest.param("teardown", "multiprocess", marks=SLOW),
    ],
)
def test_each_error_is_shown_once_and_its_traceback_once(
    site: Path, project: Path, placement: str, executor: str
) -> None:
    env, args, message = PLACEMENTS[placement]
    token = f"tok{placement}{executor}"
    message = message.format(token=token)
    common = [
        "run", "run.toml", "--executor", executor, "--set", f'resources.r.config.label="{token}"',
        *args,
    ]
    if executor == "multiprocess":  # two workers: a and e can each bring r up
        common += ["--set", "run.executor_config.max_workers=2"]
    done = host(site, project, *common, FLAGS_TOKEN=token, **env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    shown = done.stdout + done.stderr
    assert shown.count(message) == 1, shown
    assert "error 1: " in done.stderr and "error 2: " not in done.stderr, done.stderr
    assert "Traceback" not in shown
    done = host(site, project, *common, "--traceback", FLAGS_TOKEN=token, **env)
    assert done.returncode == 1
    assert done.stderr.count("Traceback (most recent call last)") == 1, done.stderr


# -- the live display, under a real pseudo-terminal ----------------------------------------------


def on_terminal(command: list[str], env: dict[str, str], columns: int = 120) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as stdin, stdout and stderr; its code and output."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        command, stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=env["PWD"]
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
    return process.wait(timeout=120), b"".join(chunks).decode()


def terminal_env(site: Path, project: Path, **extra: str) -> dict[str, str]:
    pythonpath = os.pathsep.join([str(site), str(ROOT)])
    return environ(site, PYTHONPATH=pythonpath, TERM="xterm", PWD=str(project), **extra)


def test_the_live_display_shows_progress_pids_and_resources_per_process(
    site: Path, project: Path
) -> None:
    command = [
        HOST, "run", "run.toml", "--executor", "multiprocess",
        "--set", "run.executor_config.max_workers=2",
    ]
    code, shown = on_terminal(command, terminal_env(site, project))
    assert code == 0, shown
    assert "\x1b[2K" in shown and "\x1b[1A" in shown  # redrawn in place
    assert "5/5 assets" in shown
    assert "running: " in shown and "(pid " in shown
    assert "resources up: pid " in shown and ": r" in shown
    assert "┏" in shown and "Assets" in shown and "Resources" in shown  # rich tables
    assert "succeeded" in shown.splitlines()[-1] or "succeeded" in shown[-400:]


@pytest.mark.parametrize("how", ["--plain", "NO_COLOR"])
def test_plain_or_no_color_gives_plain_lines_on_a_terminal(
    site: Path, project: Path, how: str
) -> None:
    command = [HOST, "run", "run.toml"] + (["--plain"] if how == "--plain" else [])
    env = terminal_env(site, project, **({"NO_COLOR": "1"} if how == "NO_COLOR" else {}))
    code, shown = on_terminal(command, env)
    assert code == 0, shown
    assert "\x1b[" not in shown  # no escape sequence at all
    assert "asset a: ok in" in shown and "\nAssets\r\n" in shown


# -- the summary after SIGINT and SIGTERM -------------------------------------------------------


def stopped(site: Path, project: Path, signum: int, *flags: str) -> tuple[int, str, str]:
    """``host run`` stopped by ``signum`` while asset ``e`` runs: its exit code and output."""
    wait = project / "waiting"
    pythonpath = os.pathsep.join([str(site), str(ROOT)])
    process = subprocess.Popen(
        [HOST, "run", "run.toml", *flags],
        cwd=project,
        env=environ(site, PYTHONPATH=pythonpath, FLAGS_WAIT=str(wait)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60  # a hang guard only
        while not wait.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert wait.exists(), process.communicate()
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, out, err


@pytest.mark.parametrize(
    ("signum", "code", "name"),
    [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")],
)
def test_a_signal_prints_the_summary_of_what_ran_and_was_torn_down(
    site: Path, project: Path, signum: int, code: int, name: str
) -> None:
    returncode, out, err = stopped(site, project, signum, "--plain")
    assert returncode == code, (out, err)
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ")}
    assert rows["a"][1] == "ok" and rows["d"][1] == "ok"
    assert rows["e"][1] == "interrupted"  # it was running
    assert rows["r"][-1] != "-"  # torn down: its DOWN column has a duration
    last = out.strip().splitlines()[-1]
    assert last.startswith("Run ") and f"stopped by {name}" in last
    assert "1 of 1 resource lifecycles torn down" in last
    assert err.strip().splitlines()[-1].startswith("host: error: ")
    events = [r["event"] for r in read(project / "records.jsonl") if r["event"] != "use"]
    assert events == ["setup", "up", "teardown"]


def test_json_after_sigterm_says_terminated_and_what_ran(site: Path, project: Path) -> None:
    code, out, err = stopped(site, project, signal.SIGTERM, "--json")
    assert code == 143, (out, err)
    document = validated(out, "run-result.schema.json")
    assert document["outcome"] == "terminated" and document["exit_code"] == 143
    assert not document["success"]
    assert statuses(document) == {**dict.fromkeys("abcd", "ok"), "e": "interrupted"}
    assert "yield_exit" in document["resources"][0]["phases"]  # it was torn down
