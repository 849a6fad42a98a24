"""What a run config can make the host import: the asset modules it lists, and the entry points
of installed distributions it names; nothing else.

Every generated module records its own import (``tests.dists.IMPORT_MARKER``), so each test
proves what was imported, by name. That a plugin switched off is never imported, even to be
listed, is ``tests/test_discovery.py::test_a_disabled_plugin_is_never_imported`` (and the
``[plugins] disable`` case below, through ``host run``).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from host._discovery import PLUGINS_GROUP, RESOURCES_GROUP
from tests.dists import HOST, imported, make_dist, run

ROOT = Path(__file__).resolve().parent.parent

THING = """
from host import ConfigurableResource

class Thing(ConfigurableResource):
    pass
"""

HOOKS = """
from host import hookimpl

@hookimpl
def host_run_start(run_id, executor, assets):
    pass
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed distribution, and modules on sys.path that no entry point names."""
    site = tmp_path_factory.mktemp("security-site")
    make_dist(
        site,
        "gen-sec",
        entry_points={
            RESOURCES_GROUP: {"gensec.thing": "gensec_thing:Thing"},
            PLUGINS_GROUP: {"gensec_hooks": "gensec_hooks"},
        },
        modules={"gensec_thing.py": THING, "gensec_hooks.py": HOOKS},
    )
    stray = THING + "\nclass Executor:\n    pass\n"
    make_dist(site, "gen-sec-stray", modules={"stray_mod.py": stray})
    return site


def _host(site: Path, tmp_path: Path, command: str, toml: str) -> tuple[int, str, list[str]]:
    (tmp_path / "sec_assets.py").write_text(
        "from host import asset\n\n@asset\ndef one(thing):\n    return 1\n"
    )
    path = tmp_path / "run.toml"
    path.write_text(textwrap.dedent(toml))
    marker = tmp_path / "imports.txt"
    done = run(
        [HOST, command, str(path)],
        site=site,
        cwd=tmp_path,
        env={"HOST_TEST_IMPORTS": str(marker), "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"},
    )
    return done.returncode, done.stderr, imported(marker)


RUN = """
[run]
assets = ["sec_assets"]
EXECUTOR
[resources.thing]
type = "TYPE"
DISTRIBUTION
"""


@pytest.mark.parametrize(
    "name",
    ["stray_mod:Thing", "stray_mod", "os:system", "subprocess:Popen", "gensec_thing:Thing",
     "../stray_mod", "stray_mod.Thing"],
)
def test_a_resource_type_is_an_entry_point_name_never_an_import_path(
    site: Path, tmp_path: Path, name: str
) -> None:
    toml = RUN.replace("TYPE", name).replace("EXECUTOR", "").replace("DISTRIBUTION", "")
    code, err, modules = _host(site, tmp_path, "check", toml)
    assert code == 2
    assert f"unknown type {name!r}" in err
    assert modules == []  # not even the installed plugin's module: nothing named it


def test_naming_an_installed_type_imports_that_entry_point_only(
    site: Path, tmp_path: Path
) -> None:
    toml = RUN.replace("TYPE", "gensec.thing").replace("EXECUTOR", "").replace("DISTRIBUTION", "")
    code, err, modules = _host(site, tmp_path, "check", toml)
    assert code == 0, err
    assert modules == ["gensec_thing"]  # (hook plugins load for runs, not for checks)


def test_an_executor_is_an_entry_point_name_never_an_import_path(
    site: Path, tmp_path: Path
) -> None:
    toml = (
        RUN.replace("TYPE", "gensec.thing")
        .replace("EXECUTOR", 'executor = "stray_mod:Executor"')
        .replace("DISTRIBUTION", "")
    )
    code, err, modules = _host(site, tmp_path, "run", toml)
    assert code == 2
    assert "no executor is called 'stray_mod:Executor'" in err
    assert "stray_mod" not in modules


def test_a_distribution_name_only_picks_among_installed_ones(
    site: Path, tmp_path: Path
) -> None:
    toml = (
        RUN.replace("TYPE", "gensec.thing")
        .replace("EXECUTOR", "")
        .replace("DISTRIBUTION", 'distribution = "gen-sec-stray"')
    )
    code, err, modules = _host(site, tmp_path, "run", toml)
    assert code == 2
    assert "not registered by distribution 'gen-sec-stray'" in err
    assert "stray_mod" not in modules


def test_a_hook_plugin_to_enable_must_be_an_installed_entry_point(
    site: Path, tmp_path: Path
) -> None:
    toml = (
        RUN.replace("TYPE", "gensec.thing").replace("EXECUTOR", "").replace("DISTRIBUTION", "")
        + '\n[plugins]\nenable = ["stray_mod"]\n'
    )
    code, err, modules = _host(site, tmp_path, "run", toml)
    assert code == 2
    assert "no hook plugin is called 'stray_mod'" in err
    assert "stray_mod" not in modules


def test_plugins_switched_off_in_the_run_config_are_never_imported(
    site: Path, tmp_path: Path
) -> None:
    toml = (
        RUN.replace("TYPE", "gensec.thing").replace("EXECUTOR", "").replace("DISTRIBUTION", "")
        + '\n[plugins]\ndisable = ["gensec_hooks"]\n'
    )
    code, err, modules = _host(site, tmp_path, "run", toml)
    assert code == 0, err
    assert modules == ["gensec_thing"]  # the hook plugin's module was never imported
    code, err, modules = _host(site, tmp_path, "run", toml.replace("disable", "enable"))
    assert code == 0, err
    assert "gensec_hooks" in modules  # the same run with it on does import it
