"""``host new plugin [--kind resource|hook|executor]``: each generated package builds a clean
wheel, installs with pip and its own tests pass.

The generated package is really built (``python -m build``, checked by the same wheel checks as
the host's own distributions) and installed (``pip install --target``), then its tests run with
pytest in a subprocess whose ``sys.path`` has the install folder: the entry point comes from the
real dist-info. CI (``.ci/wheels``) also installs each kind with ``pip install ./host-plugin-NAME``
into a fresh virtual environment of the built host wheels and runs its tests there.

The default test run builds every kind's wheel and checks it, and installs and tests one kind
(``resource``); the other kinds are installed and tested under ``-m slow`` (and by
``.ci/wheels``). Each kind is linted and type-checked by default too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from host import HostError
from host._discovery import EXECUTORS_GROUP, discover_plugins
from tests.wheels import build, wheel_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from host._scaffold import (
    KINDS,
    ScaffoldError,
    add_arguments,
    guide_path,
    run,
    scaffold_plugin,
    supported_host_range,
)

#: Per kind: the tests the generated package has, each of which must pass once it is installed.
GENERATED_TESTS = {
    "resource": [
        "test_is_a_well_formed_resource",
        "test_writes_while_up",
        "test_the_fixture_keeps_it_up_for_the_test",
        "test_runs_on_every_executor[in_process]",
        "test_runs_on_every_executor[multiprocess]",
        "test_is_registered_as_a_resource_type",
    ],
    "hook": [
        "test_records_each_asset_once_on_every_executor[in_process]",
        "test_records_each_asset_once_on_every_executor[multiprocess]",
        "test_records_a_failure_and_lets_it_through[in_process]",
        "test_records_a_failure_and_lets_it_through[multiprocess]",
        "test_records_nothing_while_the_variable_is_unset[in_process]",
        "test_is_registered_as_a_hook_plugin",
    ],
    "executor": [
        "test_runs_in_order_with_each_resource_up_once[acme_crm]",
        "test_a_failure_skips_downstream_and_resources_still_go_down[acme_crm]",
        "test_runs_by_name_and_by_class",
        "test_is_registered_as_an_executor",
    ],
}


#: Per kind: the entry point the generated package declares.
ENTRY_POINTS = {
    "resource": "acme_crm = host_plugin_acme_crm:AcmeCrmResource",
    "hook": "acme_crm = host_plugin_acme_crm",
    "executor": "acme_crm = host_plugin_acme_crm:AcmeCrmExecutor",
}


def _entry_point(kind: str) -> str:
    return f"[{KINDS[kind]}]\n{ENTRY_POINTS[kind]}\n"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_generated_plugin_of_each_kind_builds_a_clean_wheel(tmp_path: Path, kind: str) -> None:
    root = scaffold_plugin("acme-crm", tmp_path / "work", kind)
    # The same wheel checks as the host's own distributions (tests/test_packaging.py).
    (wheel,) = build(root, tmp_path / "dist", sdist=False)
    assert wheel_problems(wheel, root) == []
    with zipfile.ZipFile(wheel) as built:
        declared = built.read("host_plugin_acme_crm-0.1.0.dist-info/entry_points.txt").decode()
    assert _entry_point(kind) in declared


#: The kind installed and tested in the default run; the others run under ``-m slow``.
BUILT_BY_DEFAULT = "resource"


@pytest.mark.parametrize(
    "kind",
    [
        kind if kind == BUILT_BY_DEFAULT else pytest.param(kind, marks=pytest.mark.slow)
        for kind in sorted(KINDS)
    ],
)
def test_the_generated_plugin_builds_a_clean_wheel_installs_and_its_tests_pass(
    tmp_path: Path, kind: str
) -> None:
    root = scaffold_plugin("acme-crm", tmp_path / "work", kind)
    assert root == tmp_path / "work" / "host-plugin-acme-crm"
    # The same wheel checks as the host's own distributions (tests/test_packaging.py).
    (wheel,) = build(root, tmp_path / "dist", sdist=False)
    assert wheel_problems(wheel, root) == []
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, wheel],
        check=True,
        capture_output=True,
    )
    (dist_info,) = site.glob("host_plugin_acme_crm-0.1.0.dist-info")
    assert _entry_point(kind) in (dist_info / "entry_points.txt").read_text()
    # Executors shipped by other plugin packages are off: their own tests cover them.
    others = sorted(
        {i.distribution or "" for i in discover_plugins(EXECUTORS_GROUP)} - {"host", ""}
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HOST_DISABLE_PLUGINS": ",".join(others)}
    result = subprocess.run(
        # From outside the package's folder, so that it is imported from the install, not
        # from its sources (python -m puts the working folder first on sys.path).
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"),
            *(
                "-v",
                "--rootdir",
                str(root),
                "-c",
                str(root / "pyproject.toml"),
                str(root / "tests"),
            ),
        ],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for test in GENERATED_TESTS[kind]:
        assert f"{test} PASSED" in result.stdout, result.stdout


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_readme_says_how_to_install_before_publishing_and_where_the_guide_is(
    tmp_path: Path, kind: str
) -> None:
    root = scaffold_plugin("acme", tmp_path, kind)
    readme = (root / "README.md").read_text()
    assert "pip install ./host-plugin-acme " in readme
    assert 'pip install -e "./host-plugin-acme[test]"' in readme
    assert "pip install host-plugin-acme" in readme
    assert str(guide_path()) in readme and guide_path().is_file()
    assert guide_path().read_text().startswith("# Author's guide")
    assert "$" not in readme.replace("$PWD", "")  # every template field was filled in


def test_an_unknown_kind_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match=r"'resources' is not a kind .*\['executor', 'hook'"):
        scaffold_plugin("acme", tmp_path, "resources")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_command_makes_each_kind(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from host._cli import main

    assert main(["new", "plugin", "acme", "--kind", kind, "--dir", str(tmp_path)]) == 0
    project = tomllib.loads((tmp_path / "host-plugin-acme" / "pyproject.toml").read_text())
    assert list(project["project"]["entry-points"]) == [KINDS[kind]]
    out = capsys.readouterr().out
    assert f"created {tmp_path / 'host-plugin-acme'}" in out and str(guide_path()) in out


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


def test_every_kind_is_clean_under_ruff(tmp_path: Path) -> None:
    roots = [scaffold_plugin(f"lint-{kind}", tmp_path, kind) for kind in sorted(KINDS)]
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "E,F,W,I,B,UP"]
        + [str(root) for root in roots],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.slow
def test_every_kind_is_clean_under_mypy_strict(tmp_path: Path) -> None:
    roots = [scaffold_plugin(f"types-{kind}", tmp_path, kind) for kind in sorted(KINDS)]
    packages = [str(next(root.glob("host_plugin_*"))) for root in roots]
    types = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *packages],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert types.returncode == 0, types.stdout + types.stderr
