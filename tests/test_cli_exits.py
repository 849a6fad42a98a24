"""Exit codes of the real ``host`` command for bad input and for code that tries to exit.

Each case runs the console script in a subprocess, on a run config whose resource ``r``
(``tests.recording.Recorded``, registered by a generated distribution) writes its own records:

* an asset module that exits or raises a ``BaseException`` at import: exit 2, one message
  naming the module, nothing brought up (``host check`` and ``host run``);
* an asset that calls ``sys.exit``: that asset fails, the summary is printed, independent
  assets ran, teardown is complete, exit 1 (on ``in_process`` and ``multiprocess``);
* a run config with a UTF-8 byte order mark is read;
* ``host run`` writing into a pipe whose reader goes away after the first line: the run and its
  teardown go on, no traceback, the exit status is the run's.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from host._discovery import RESOURCES_GROUP
from tests.dists import HOST, environ, make_dist, run
from tests.recording import read

ROOT = Path(__file__).resolve().parent.parent

RUN = """
[run]
assets = ["exit_assets"]
executor = "EXECUTOR"

[resources.r]
type = "genexit.recorded"
[resources.r.config]
record = "RECORD"
label = "r"
"""

ASSETS = """
import os
import sys
import time
from pathlib import Path

from host import asset

PREAMBLE

@asset
def uses_r(r):
    return r.use()

@asset
def exits():
    code = os.environ.get("GENEXIT_CODE")
    if code is not None:
        sys.exit(int(code) if code.isdigit() else code)
    return "did not exit"

@asset
def after_exit(exits):
    return exits

@asset
def waits(uses_r):
    # Holds the run until the test has closed its end of the pipe (a hang guard of 60 s).
    marker = os.environ.get("GENEXIT_WAIT_FOR")
    until = time.monotonic() + 60
    while marker and not Path(marker).exists() and time.monotonic() < until:
        time.sleep(0.01)
    return uses_r
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("exits-site")
    resources = {"genexit.recorded": "tests.recording:Recorded"}
    make_dist(site, "gen-exit", entry_points={RESOURCES_GROUP: resources})
    return site


def project(tmp_path: Path, preamble: str = "", executor: str = "in_process") -> Path:
    source = textwrap.dedent(ASSETS).replace("PREAMBLE", textwrap.dedent(preamble))
    (tmp_path / "exit_assets.py").write_text(source)
    path = tmp_path / "run.toml"
    text = textwrap.dedent(RUN).replace("EXECUTOR", executor)
    path.write_text(text.replace("RECORD", str(tmp_path / "records.jsonl")))
    return path


def host(site: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run(
        [HOST, *args],
        site=site,
        cwd=cwd,
        env={"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), **env},
    )


IMPORT_CASES = {
    "sys.exit(0)": ("import sys\nsys.exit(0)", "it called sys.exit(0) while being imported"),
    "sys.exit(3)": ("import sys\nsys.exit(3)", "it called sys.exit(3) while being imported"),
    "SystemExit(msg)": (
        "raise SystemExit('stop here')",
        "it called sys.exit('stop here') while being imported",
    ),
    "KeyboardInterrupt": (
        "raise KeyboardInterrupt",
        "it raised KeyboardInterrupt while being imported",
    ),
    "BaseException": (
        "class Odd(BaseException):\n    pass\nraise Odd('odd')",
        "it raised Odd: odd while being imported",
    ),
}


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("case", sorted(IMPORT_CASES))
def test_an_asset_module_that_exits_at_import_is_invalid_input(
    site: Path, tmp_path: Path, case: str, command: str
) -> None:
    preamble, expected = IMPORT_CASES[case]
    path = project(tmp_path, preamble)
    done = host(site, command, str(path), cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("host: error: "), done.stderr
    assert "importing 'exit_assets' failed" in done.stderr
    assert expected in done.stderr, done.stderr
    assert "SIGINT" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "records.jsonl").exists(), "a resource came up"


@pytest.mark.parametrize(
    ("executor", "code"), [("in_process", "0"), ("in_process", "143"), ("multiprocess", "0")]
)
def test_an_asset_calling_sys_exit_fails_and_the_run_goes_on(
    site: Path, tmp_path: Path, executor: str, code: str
) -> None:
    path = project(tmp_path, executor=executor)
    done = host(site, "run", str(path), "--plain", cwd=tmp_path, GENEXIT_CODE=code)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "SIGTERM" not in done.stderr, done.stderr
    assert f"sys.exit({code}) was called while asset 'exits' ran" in done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()
            if line.startswith("  ") and len(line.split()) > 1}
    assert rows["exits"] == "failed" and rows["after_exit"] == "skipped"
    assert rows["uses_r"] == "ok" and rows["waits"] == "ok"
    assert done.stdout.strip().splitlines()[-1].startswith("Run ")
    events = [r["event"] for r in read(tmp_path / "records.jsonl") if r["event"] != "use"]
    assert events == ["setup", "up", "teardown"]


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_run_config_with_a_byte_order_mark_is_read(
    site: Path, tmp_path: Path, command: str
) -> None:
    path = project(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    done = host(site, command, str(path), cwd=tmp_path)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stderr == ""


def test_a_byte_that_is_not_utf8_after_a_byte_order_mark_is_named_at_its_offset(
    site: Path, tmp_path: Path
) -> None:
    path = tmp_path / "run.toml"
    path.write_bytes(b"\xef\xbb\xbf[run]\xff\n")
    done = host(site, "check", str(path), cwd=tmp_path)
    assert done.returncode == 2
    assert "not UTF-8 text (invalid start byte at byte 8)" in done.stderr, done.stderr


def test_a_pipe_closed_early_ends_output_quietly_and_the_run_goes_on(
    site: Path, tmp_path: Path
) -> None:
    path = project(tmp_path)
    marker = tmp_path / "reader-gone"
    with subprocess.Popen(
        [HOST, "run", str(path), "--plain"],
        cwd=tmp_path,
        env=environ(
            site,
            PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]),
            GENEXIT_WAIT_FOR=str(marker),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()  # what `| head -1` reads, then it goes away
        process.stdout.close()
        marker.touch()
        try:
            stderr = process.stderr.read().decode()
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:  # a hang guard only
            process.kill()
            raise
    assert first.startswith(b"run "), first
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr
    assert code == 0, stderr  # the run's own status: it succeeded
    records = read(tmp_path / "records.jsonl")
    assert [r["event"] for r in records] == ["setup", "up", "use", "teardown"]


@pytest.mark.parametrize(
    ("redirect", "exits"),
    [
        (">&-", "0"),  # stdout closed before the command starts (Python's sys.stdout is None)
        ("2>&-", "0"),  # stderr closed before it starts
        (">&- 2>&-", "0"),  # both
        (">/dev/full", "0"),  # every write to stdout fails (ENOSPC)
        (">&-", "3"),  # a failed run with stdout closed: the run's status, 1
        ("2>/dev/full", "3"),  # a failed run whose error cannot be written
    ],
)
def test_a_stream_that_cannot_be_written_never_changes_the_run_or_its_status(
    site: Path, tmp_path: Path, redirect: str, exits: str
) -> None:
    path = project(tmp_path)
    env = environ(site, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    if exits != "0":
        env["GENEXIT_CODE"] = exits
    code = _run_redirected(HOST, path, redirect, tmp_path, env)
    assert code == (0 if exits == "0" else 1)
    records = read(tmp_path / "records.jsonl")
    assert [r["event"] for r in records] == ["setup", "up", "use", "teardown"]


def _run_redirected(
    command: str, path: Path, redirect: str, cwd: Path, env: dict[str, str]
) -> int:
    """Run ``host run PATH --plain`` under ``bash`` with ``redirect``; its exit status."""
    status = cwd / "status"
    script = f'"$0" run "$1" --plain {redirect}; echo $? > "$2"'
    subprocess.run(
        ["bash", "-c", script, command, str(path), str(status)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    return int(status.read_text())
