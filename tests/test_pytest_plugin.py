"""The ``host`` pytest plugin: fixtures, the executor marker, and a cheap import.

Each test writes a small test file and runs pytest on it with ``pytester``; the plugin is the one
the ``pytest11`` entry point of the installed host distribution loads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Imported here, before pytester snapshots sys.modules: its first import registers a finder on
# sys.meta_path, which an inner run's module cleanup would leave stale (host's discovery imports
# it on first use).
import importlib_metadata  # noqa: F401
import pytest

import host.executors
import host.pytest_plugin
from host.pytest_plugin import installed_executors

pytest_plugins = ["pytester"]

#: Options of every inner run: hypothesis's plugin would re-import hypothesis in each one.
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

RESOURCES = """
# Imported here, before pytester snapshots sys.modules: its first import registers a finder on
# sys.meta_path, which an inner run's module cleanup would leave stale (host's discovery imports
# it on first use).
import importlib_metadata  # noqa: F401
import pytest
from pydantic import PrivateAttr
from host import ConfigurableResource, asset, hookimpl

RECORD = {record!r}


def note(*words):
    with open(RECORD, "a") as file:
        file.write(" ".join(words) + "\\n")


class Conn(ConfigurableResource):
    name: str
    fail_teardown: bool = False
    _up: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context):
        note("setup", self.name, context.resource_key)
        self._up = True

    def teardown_after_execution(self, context):
        note("teardown", self.name, context.resource_key)
        if self.fail_teardown:
            raise RuntimeError("teardown of " + self.name + " failed on purpose")


class Seen:
    def __init__(self):
        self.keys = []

    @hookimpl
    def host_resource_setup(self, resource, context):
        self.keys.append(context.resource_key)


@asset
def value(conn: Conn) -> str:
    assert conn._up
    return conn.name
"""


def records(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_the_plugin_is_loaded_through_the_pytest11_entry_point(
    request: pytest.FixtureRequest,
) -> None:
    assert request.config.pluginmanager.get_plugin("host") is host.pytest_plugin


def test_importing_the_plugin_imports_nothing_beyond_the_host() -> None:
    code = (
        "import sys, pytest, host; before = set(sys.modules); import host.pytest_plugin; "
        "print(sorted(set(sys.modules) - before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "['host.pytest_plugin']"


def test_resource_fixtures_bring_up_for_the_test_and_tear_down_after(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = tmp_path / "records.txt"
    pytester.makepyfile(
        RESOURCES.format(record=str(record))
        + """
def test_fixtures(host_resource, host_resources, host_plugin):
    seen = host_plugin(Seen())
    first = host_resource(Conn(name="a"), key="first")
    up = host_resources({"b": Conn(name="b"), "c": Conn(name="c")})
    assert first._up and up["b"]._up and up["c"]._up
    assert seen.keys == ["first", "b", "c"]
    note("body")
"""
    )
    result = pytester.runpytest(*INNER, "--strict-markers")
    result.assert_outcomes(passed=1)
    assert records(record) == [
        "setup a first",
        "setup b b",
        "setup c c",
        "body",
        "teardown c c",
        "teardown b b",
        "teardown a first",
    ]


def test_a_teardown_error_is_an_error_of_the_tests_teardown(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = tmp_path / "records.txt"
    pytester.makepyfile(
        RESOURCES.format(record=str(record))
        + """
def test_teardown_fails(host_resource):
    host_resource(Conn(name="a", fail_teardown=True))
"""
    )
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ResourceTeardownError*teardown of a failed on purpose*"])
    assert records(record) == ["setup a resource", "teardown a resource"]


def test_the_marker_runs_a_test_once_per_named_executor(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = tmp_path / "records.txt"
    pytester.makepyfile(
        RESOURCES.format(record=str(record))
        + """
@pytest.mark.host_executors("in_process", "multiprocess", "not_installed")
def test_value(host_run, host_executor, host_plugin):
    seen = host_plugin(Seen())
    result = host_run([value], {"conn": Conn(name=host_executor)})
    assert result.outputs["value"] == host_executor
    if host_executor == "in_process":
        assert seen.keys == ["conn"]  # host_run passes the test's plugins to the run
"""
    )
    result = pytester.runpytest(*INNER, "--strict-markers", "-v", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*test_value?in_process? PASSED*",
            "*test_value?multiprocess? PASSED*",
            "*test_value?not_installed? SKIPPED*",
            "*executor 'not_installed' is not installed*",
        ]
    )
    assert sorted(records(record)) == sorted(
        [
            "setup in_process conn",
            "teardown in_process conn",
            "setup multiprocess conn",
            "teardown multiprocess conn",
        ]
    )


def test_without_the_marker_a_test_runs_on_every_installed_executor(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
# Imported here, before pytester snapshots sys.modules: its first import registers a finder on
# sys.meta_path, which an inner run's module cleanup would leave stale (host's discovery imports
# it on first use).
import importlib_metadata  # noqa: F401
import pytest

def test_default(host_executor):
    pass

@pytest.mark.parametrize("host_executor", ["in_process"])
def test_own_values(host_executor):
    assert host_executor == "in_process"
"""
    )
    result = pytester.runpytest(*INNER, "--collect-only", "-q")
    collected = [line for line in result.stdout.lines if "::" in line]
    assert installed_executors()[0] == "in_process"
    assert collected == [
        *(
            f"test_without_the_marker_a_test_runs_on_every_installed_executor.py::"
            f"test_default[{name}]"
            for name in installed_executors()
        ),
        "test_without_the_marker_a_test_runs_on_every_installed_executor.py::"
        "test_own_values[in_process]",
    ]


def test_the_marker_without_the_fixture_is_a_clear_collection_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
# Imported here, before pytester snapshots sys.modules: its first import registers a finder on
# sys.meta_path, which an inner run's module cleanup would leave stale (host's discovery imports
# it on first use).
import importlib_metadata  # noqa: F401
import pytest

@pytest.mark.host_executors("in_process")
def test_forgot_the_fixture():
    pass
"""
    )
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*uses neither the host_executor nor the host_run fixture*"])


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*INNER, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.host_executors(*names): run the test once per*"])


def test_the_plugin_can_be_switched_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_needs_it(host_resource):\n    pass\n")
    result = pytester.runpytest(*INNER, "-p", "no:host")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'host_resource' not found*"])


SESSION_TESTS = """
import os
from typing import ClassVar, Literal


class Shared(Conn):
    host_scope: ClassVar[Literal["run", "session"]] = "session"

    def setup_for_execution(self, context):
        note("setup", str(os.getpid()))
        self._up = True

    def teardown_after_execution(self, context):
        note("teardown", str(os.getpid()))


@asset
def where(shared: Shared) -> int:
    assert shared._up
    note("use", str(os.getpid()))
    return os.getpid()


@pytest.mark.parametrize("i", range(5))
def test_run(host_session, i):
    assert type(host_session.executor).__name__ == {executor!r}
    result = host_session.run_assets([where], {{"shared": Shared(name="s")}})
    assert result.success


def test_another_module_level_test(host_session):
    host_session.run_assets([where], {{"shared": Shared(name="s")}})
"""


def session_records(path: Path) -> tuple[list[int], list[int], list[int]]:
    """The pids of the setups, uses and teardowns the inner tests' session resource noted."""
    rows = [line.split() for line in records(path)]

    def pids(kind: str) -> list[int]:
        return [int(pid) for event, pid in rows if event == kind]

    return pids("setup"), pids("use"), pids("teardown")


def test_host_session_is_one_session_for_every_test_of_the_run(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = tmp_path / "records.txt"
    pytester.makepyfile(
        RESOURCES.format(record=str(record)) + SESSION_TESTS.format(executor="InProcessExecutor")
    )
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=6)
    setups, uses, teardowns = session_records(record)
    assert len(setups) == 1 and len(uses) == 6 and teardowns == setups  # one setup, not six
    assert records(record)[-1].startswith("teardown")  # torn down when the test session ended


@pytest.mark.skipif(
    not host.executors.MultiprocessExecutor.supports_sessions,
    reason="the multiprocess executor does not keep sessions yet",
)
def test_host_session_on_multiprocess_shares_warm_workers_across_tests(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = tmp_path / "records.txt"
    pytester.makepyfile(
        RESOURCES.format(record=str(record)) + SESSION_TESTS.format(executor="MultiprocessExecutor")
    )
    pytester.makeini('[pytest]\nhost_session_executor_config = {"max_workers": 2}\n')
    result = pytester.runpytest(*INNER, "--host-session-executor", "multiprocess")
    result.assert_outcomes(passed=6)
    setups, uses, teardowns = session_records(record)
    assert 1 <= len(setups) <= 2 and len(set(setups)) == len(setups)  # once per worker
    assert set(uses) <= set(setups) and len(uses) == 6
    assert sorted(teardowns) == sorted(setups)
    assert not [pid for pid in setups if Path(f"/proc/{pid}").exists()]


def test_host_session_executor_from_the_ini_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeini("[pytest]\nhost_session_executor = not_an_executor\n")
    pytester.makepyfile("def test_it(host_session):\n    pass\n")
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*not_an_executor*"])


def test_host_session_executor_config_must_be_a_json_object(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nhost_session_executor_config = [2]\n")
    pytester.makepyfile("def test_it(host_session):\n    pass\n")
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*host_session_executor_config is a JSON list*"])
