"""What a built wheel and sdist of a host distribution must hold, checked file by file.

Shared by ``tests/test_packaging.py`` (the host and every plugin under ``plugins/``) and
``tests/test_scaffold.py`` (a freshly scaffolded plugin of each kind): the same conventions hold
for both. Each check returns the problems it found, as sentences naming the file, so a failing
test says what is wrong with which distribution.
"""

from __future__ import annotations

import configparser
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path, PurePosixPath

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Folders and files the build must never take from a source tree, nor write into it.
SCRATCH = {".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".hypothesis"}


def build(source: Path, out: Path, *, sdist: bool = True) -> list[Path]:
    """Build ``source``'s wheel (and sdist) into ``out`` with its build backend, hatchling.

    The backend runs in this process (hatchling is a dev dependency), which is what
    ``python -m build --no-isolation`` asks it to do, without a subprocess per build; CI builds
    with ``python -m build`` itself (``.ci/wheels``) and checks those files. A warning the
    backend gives fails the build.
    """
    import warnings

    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    out.mkdir(parents=True, exist_ok=True)
    builders = [SdistBuilder, WheelBuilder] if sdist else [WheelBuilder]
    built: list[Path] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for builder in builders:
            built += [Path(p) for p in builder(str(source)).build(directory=str(out))]
    return built


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (files and folders), skipping scratch folders (:data:`SCRATCH`)."""
    found: set[str] = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if SCRATCH.isdisjoint(relative.parts):
            found.add(relative.as_posix())
    return found


def project_of(source: Path) -> dict[str, object]:
    """The ``[project]`` table of ``source/pyproject.toml``."""
    data = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    project: dict[str, object] = data["project"]
    return project


def _package_dir(source: Path) -> Path:
    data = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    (package,) = data["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return source / package


def _modules(package: Path) -> set[str]:
    """The package's modules in the source tree, as wheel paths (``pkg/sub/mod.py``)."""
    return {
        path.relative_to(package.parent).as_posix()
        for path in package.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def wheel_problems(wheel: Path, source: Path, *, extra: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with ``wheel``, built from ``source``; empty when it is right.

    It must hold exactly the package (every module of the source tree, its ``py.typed``) and its
    ``.dist-info`` (``METADATA``, ``WHEEL``, ``RECORD``, ``entry_points.txt`` with every entry
    point and script of the ``pyproject.toml``, the licence file): no tests, nothing else but
    the paths matching ``extra`` (glob patterns, e.g. ``host/specs/*.md``).

    Args:
        wheel: the built ``.whl``.
        source: the folder with its ``pyproject.toml``.
        extra: patterns of further files the wheel is meant to carry.
    """
    problems: list[str] = []
    project = project_of(source)
    package = _package_dir(source)
    name = str(project["name"]).replace("-", "_")
    info = f"{name}-{project['version']}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = (
            archive.read(f"{info}/entry_points.txt").decode()
            if f"{info}/entry_points.txt" in names
            else ""
        )
        metadata = (
            Parser().parsestr(archive.read(f"{info}/METADATA").decode())
            if f"{info}/METADATA" in names
            else None
        )
    expected_info = {f"{info}/{f}" for f in ("METADATA", "WHEEL", "RECORD", "entry_points.txt")}
    expected_info |= {f"{info}/licenses/{f}" for f in project.get("license-files", [])}  # type: ignore[attr-defined]
    modules = _modules(package)
    typed = f"{package.name}/py.typed"
    for missing in sorted((modules | expected_info | {typed}) - names):
        problems.append(f"{wheel.name} lacks {missing}")
    for path in sorted(names - modules - expected_info - {typed}):
        pure = PurePosixPath(path)
        if not any(pure.match(pattern) for pattern in extra):
            problems.append(f"{wheel.name} holds a stray file: {path}")
    for path in sorted(names):
        parts = PurePosixPath(path).parts
        if "tests" in parts or parts[-1].startswith(("test_", "conftest")):
            problems.append(f"{wheel.name} holds a test file: {path}")
    problems += _entry_point_problems(wheel.name, project, entry_points)
    if metadata is None:
        return problems
    wanted = {
        "License-Expression": str(project.get("license")),
        "Requires-Python": str(project.get("requires-python")),
        "Description-Content-Type": "text/markdown",
    }
    for field, value in wanted.items():
        if metadata.get(field) != value:
            problems.append(
                f"{wheel.name}: METADATA {field} is {metadata.get(field)!r}, not {value!r}"
            )
    if "Typing :: Typed" not in (metadata.get_all("Classifier") or []):
        problems.append(f"{wheel.name}: METADATA lacks the classifier 'Typing :: Typed'")
    if not str(metadata.get_payload()).strip():
        problems.append(f"{wheel.name}: METADATA has no README (long description)")
    return problems


def _entry_point_problems(wheel: str, project: dict[str, object], text: str) -> list[str]:
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    found = {
        (group, key): parser[group][key] for group in parser.sections() for key in parser[group]
    }
    wanted: dict[tuple[str, str], str] = {}
    for group, entries in dict(project.get("entry-points", {})).items():  # type: ignore[call-overload]
        wanted |= {(group, key): value for key, value in entries.items()}
    wanted |= {("console_scripts", k): v for k, v in dict(project.get("scripts", {})).items()}  # type: ignore[call-overload]
    if found != wanted:
        return [f"{wheel}: entry_points.txt has {found}, pyproject.toml declares {wanted}"]
    return []


#: Where a checkout keeps what it makes (``.gitignore``): never part of a distribution.
_MADE_HERE = ("tests/benchmarks/results",)


def _ignored(path: Path) -> bool:
    """Whether ``path`` (relative to a source tree) is made by the checkout, not its source: in
    a scratch folder, or where the benchmarks keep their results (and Dagster's environment)."""
    posix = path.as_posix()
    return bool(set(path.parts) & SCRATCH) or any(
        posix.startswith(f"{made}/") for made in _MADE_HERE
    )


def sdist_problems(sdist: Path, source: Path) -> list[str]:
    """What is wrong with ``sdist``: it must hold the package, its tests, README and licence,
    and nothing of a checkout's state (virtual environments, caches, build output)."""
    with tarfile.open(sdist) as archive:
        names = {
            PurePosixPath(n).relative_to(PurePosixPath(n).parts[0]).as_posix()
            for n in archive.getnames()
        }
    problems = []
    package = _package_dir(source)
    wanted = {"pyproject.toml", "PKG-INFO", "README.md", "LICENSE", f"{package.name}/py.typed"}
    wanted |= _modules(package)
    if (source / "tests").is_dir():
        wanted |= {
            p.relative_to(source).as_posix()
            for p in (source / "tests").rglob("test_*.py")
            if not _ignored(p.relative_to(source))
        }
    for missing in sorted(wanted - names):
        problems.append(f"{sdist.name} lacks {missing}")
    for path in sorted(names):
        parts = set(PurePosixPath(path).parts)
        if parts & (SCRATCH | {"dist", "build"}) or any(
            p.endswith((".egg-info", ".pyc")) for p in parts
        ):
            problems.append(f"{sdist.name} holds checkout state: {path}")
    return problems
