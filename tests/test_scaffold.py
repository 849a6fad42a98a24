"""``host new plugin``: the generated package installs with pip and its own tests pass.

The generated package is really built and installed (``pip install --target``, with build
isolation, as a user's ``pip install`` would), then its tests run with pytest in a subprocess
whose ``sys.path`` has the install folder: the entry point comes from the real dist-info.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from host import HostError
from host._discovery import EXECUTORS_GROUP, discover_plugins

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from host._scaffold import (
    ScaffoldError,
    add_arguments,
    run,
    scaffold_plugin,
    supported_host_range,
)


def test_the_generated_plugin_installs_and_its_tests_pass(tmp_path: Path) -> None:
    root = scaffold_plugin("acme-crm", tmp_path / "work")
    assert root == tmp_path / "work" / "host-plugin-acme-crm"
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, root],
        check=True,
        capture_output=True,
    )
    (dist_info,) = site.glob("host_plugin_acme_crm-0.1.0.dist-info")
    assert (
        "acme_crm = host_plugin_acme_crm:AcmeCrmResource"
        in (dist_info / "entry_points.txt").read_text()
    )
    # Executors shipped by other plugin packages are off: their own tests cover them.
    others = sorted(
        {i.distribution or "" for i in discover_plugins(EXECUTORS_GROUP)} - {"host", ""}
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HOST_DISABLE_PLUGINS": ",".join(others)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v"],
        check=False,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for test in [
        "test_is_a_well_formed_resource",
        "test_writes_while_up",
        "test_the_fixture_keeps_it_up_for_the_test",
        "test_runs_on_every_executor[in_process]",
        "test_runs_on_every_executor[multiprocess]",
        "test_is_registered_as_a_resource_type",
    ]:
        assert f"{test} PASSED" in result.stdout, result.stdout


def test_the_pyproject_registers_the_resource_and_the_supported_host_range(
    tmp_path: Path,
) -> None:
    root = scaffold_plugin("acme", tmp_path)
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "host-plugin-acme"
    assert project["entry-points"]["host.resources"] == {"acme": "host_plugin_acme:AcmeResource"}
    assert project["dependencies"] == [supported_host_range()]
    assert (root / "host_plugin_acme" / "py.typed").exists()
    assert "host.testing" in (root / "tests" / "test_acme.py").read_text()
    assert "pip install host-plugin-acme" in (root / "README.md").read_text()


def test_the_supported_range_is_the_hosts_release_series() -> None:
    assert supported_host_range("0.1.0") == "host>=0.1,<0.2"
    assert supported_host_range("0.7.3.dev1") == "host>=0.7,<0.8"
    assert supported_host_range("1.4.0") == "host>=1.4,<2"


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    root = scaffold_plugin("acme", tmp_path)
    (root / "README.md").write_text("my own notes")
    with pytest.raises(ScaffoldError, match="already exists") as info:
        scaffold_plugin("acme", tmp_path)
    assert isinstance(info.value, HostError)
    assert str(root) in str(info.value)
    assert (root / "README.md").read_text() == "my own notes"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Acme", "lowercase"),
        ("1acme", "starting with a letter"),
        ("acme--crm", "lowercase"),
        ("host-plugin-acme", "short name: `host new plugin acme`"),
        ("class", "keyword"),
    ],
)
def test_unusable_names_are_refused(tmp_path: Path, name: str, problem: str) -> None:
    with pytest.raises(ScaffoldError, match=problem):
        scaffold_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_command_helpers_parse_and_report(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["acme", "--dir", str(tmp_path)])
    lines: list[str] = []
    assert run(args, lines.append) == 0
    assert (tmp_path / "host-plugin-acme" / "pyproject.toml").exists()
    assert f"created {tmp_path / 'host-plugin-acme'}" in lines[0]
    assert 'pip install -e ".[test]"' in lines[0]
    with pytest.raises(ScaffoldError):
        run(args, lines.append)
