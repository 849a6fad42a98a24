"""The distributions users get: the wheel and sdist of host and of every plugin under plugins/.

Each is built with ``python -m build`` as CI does (``.ci/wheels``), and checked file by file
(``tests/wheels.py``): exactly the package with every module of the source tree and its
``py.typed``, the entry points of its ``pyproject.toml``, the licence, a README, no tests and no
stray file. Building writes nothing into the source tree. Under CI, ``HOST_WHEEL_DIR`` names the
folder ``.ci/wheels`` built into, and those very files are checked instead of new ones.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.wheels import build, project_of, sdist_problems, tree, wheel_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    ROOT,
    *sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists()),
]
#: The files the host's wheel carries besides its modules: the specs and their pictures, for
#: `host new plugin`.
HOST_EXTRA = ("host/specs/*.md", "host/specs/*.json", "host/specs/*.png")


def _name(source: Path) -> str:
    return str(project_of(source)["name"])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder with every distribution's wheel and sdist (CI's, or built here)."""
    given = os.environ.get("HOST_WHEEL_DIR")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("dist")
    before = tree(ROOT)
    for source in SOURCES:
        build(source, out)
    after = tree(ROOT)
    assert after == before, f"building wrote into the source tree: {sorted(after ^ before)}"
    return out


def _one(built: Path, source: Path, suffix: str) -> Path:
    project = project_of(source)
    stem = f"{str(project['name']).replace('-', '_')}-{project['version']}"
    matches = sorted(built.glob(f"{stem}*{suffix}"))
    assert len(matches) == 1, f"expected one {stem}*{suffix} in {built}, found {matches}"
    return matches[0]


@pytest.mark.parametrize("source", SOURCES, ids=_name)
def test_the_wheel_holds_the_package_its_entry_points_and_nothing_else(
    built: Path, source: Path
) -> None:
    extra = HOST_EXTRA if source == ROOT else ()
    assert wheel_problems(_one(built, source, ".whl"), source, extra=extra) == []


@pytest.mark.parametrize("source", SOURCES, ids=_name)
def test_the_sdist_holds_the_sources_and_no_checkout_state(built: Path, source: Path) -> None:
    assert sdist_problems(_one(built, source, ".tar.gz"), source) == []


@pytest.mark.parametrize("source", SOURCES, ids=_name)
def test_each_distribution_follows_the_packaging_conventions(source: Path) -> None:
    data = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    assert data["build-system"]["build-backend"] == "hatchling.build"
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (source / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert project["requires-python"] == ">=3.10"
    assert "Typing :: Typed" in project["classifiers"]
    assert (source / project["readme"]).read_text(encoding="utf-8").startswith("# ")
    if source != ROOT:  # a plugin requires the host's release series, as the scaffold writes
        from host._scaffold import supported_host_range

        assert supported_host_range() in project["dependencies"]


def test_a_module_left_out_of_the_wheel_is_caught(tmp_path: Path) -> None:
    """The check that CI relies on finds a module the wheel configuration leaves out."""
    source = tmp_path / "host-plugin-probe"
    package = source / "host_plugin_probe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from host_plugin_probe._impl import X\n")
    (package / "_impl.py").write_text("X = 1\n")
    (package / "py.typed").write_text("")
    (source / "README.md").write_text("# host-plugin-probe\n\nA probe.\n")
    (source / "LICENSE").write_text((ROOT / "LICENSE").read_text())
    pyproject = (ROOT / "plugins" / "host-plugin-trace" / "pyproject.toml").read_text()
    pyproject = pyproject.replace("host-plugin-trace", "host-plugin-probe").replace(
        "host_plugin_trace", "host_plugin_probe"
    )
    # The slip: an exclude that takes one module out of the wheel.
    pyproject = pyproject.replace(
        'exclude = ["__pycache__", "*.pyc"]\n',
        'exclude = ["__pycache__", "*.pyc", "_impl.py"]\n',
        1,
    )
    (source / "pyproject.toml").write_text(pyproject)
    (wheel,) = build(source, tmp_path / "dist", sdist=False)
    assert wheel_problems(wheel, source) == [f"{wheel.name} lacks host_plugin_probe/_impl.py"]
