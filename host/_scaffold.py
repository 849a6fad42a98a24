"""``host new plugin NAME``: a new plugin package, ready to install, test and publish.

:func:`scaffold_plugin` writes ``host-plugin-NAME/``: a ``pyproject.toml`` that registers one
example resource in the ``host.resources`` entry-point group and declares the host versions it
supports (its requirement on ``host``, which the host reads to decide whether the plugin is
compatible), the package with the example resource, a README, and tests that use
``host.testing`` and the ``host`` pytest plugin. The tests pass as generated, once the package is
installed (``pip install -e ".[test]"``). Nothing is ever overwritten.

:func:`add_arguments` and :func:`run` are the command's parser and body, for ``host._cli``.
"""

from __future__ import annotations

import argparse
import keyword
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from string import Template

from host._errors import ScaffoldError

__all__ = ["ScaffoldError", "add_arguments", "run", "scaffold_plugin", "supported_host_range"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


def supported_host_range(version: str | None = None) -> str:
    """The requirement on ``host`` a new plugin declares: this host's release series.

    Before 1.0 a minor release may change the plugin contract, so ``0.1.3`` gives
    ``host>=0.1,<0.2``; from 1.0 on, a major release does, so ``1.4.0`` gives ``host>=1.4,<2``.

    Args:
        version: the host version to build for (default: the installed host's).
    """
    if version is None:
        import host

        version = host.__version__
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    upper = f"0.{minor + 1}" if major == 0 else f"{major + 1}"
    return f"host>={major}.{minor},<{upper}"


def _names(name: str) -> dict[str, str]:
    if name.startswith(("host-plugin-", "host_plugin_")):
        raise ScaffoldError(
            f"give the plugin's short name: `host new plugin {name[12:]}` creates {name}"
        )
    if not _NAME.match(name):
        raise ScaffoldError(
            f"{name!r} cannot name a plugin: use lowercase letters and digits, words joined by "
            f"'-' or '_', starting with a letter (e.g. 'acme' or 'acme-crm')"
        )
    ident = name.replace("-", "_")
    if keyword.iskeyword(ident):
        raise ScaffoldError(f"{name!r} is a Python keyword; assets could not name the resource")
    words = re.split(r"[-_]", name)
    return {
        "name": name,
        "dist": f"host-plugin-{'-'.join(words)}",
        "package": f"host_plugin_{ident}",
        "type": ident,
        "cls": "".join(word.capitalize() for word in words) + "Resource",
        "title": " ".join(word.capitalize() for word in words),
        "env": f"{ident.upper()}_TOKEN",
        "requirement": supported_host_range(),
    }


def scaffold_plugin(name: str, dest_dir: str | Path) -> Path:
    """Create the plugin package ``host-plugin-NAME/`` in ``dest_dir``.

    Args:
        name: the plugin's short name, e.g. ``acme`` or ``acme-crm``: the distribution is
            ``host-plugin-acme-crm``, the package ``host_plugin_acme_crm``, the resource type
            (entry-point name) ``acme_crm`` and the class ``AcmeCrmResource``.
        dest_dir: the folder to create it in (made if missing).

    Returns:
        The new plugin folder.

    Raises:
        ScaffoldError: ``name`` is not usable, or the folder already exists (nothing is
            overwritten).
    """
    names = _names(name)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest / names["dist"]
    try:
        root.mkdir()
    except FileExistsError:
        raise ScaffoldError(
            f"{root} already exists; `host new plugin` never overwrites anything. Choose another "
            f"name or folder, or remove it first."
        ) from None
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"{names['package']}/__init__.py": _PACKAGE,
        f"{names['package']}/py.typed": Template(""),
        f"tests/test_{names['type']}.py": _TESTS,
    }
    try:
        for relative, template in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.substitute(names), encoding="utf-8")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)  # ours: it did not exist before
        raise
    return root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``host new plugin`` to ``parser``."""
    parser.add_argument(
        "name", help="the plugin's short name, e.g. acme (creates host-plugin-acme)"
    )
    parser.add_argument(
        "--dir",
        dest="dest_dir",
        type=Path,
        default=None,
        help="the folder to create it in (default: the current folder)",
    )


def run(args: argparse.Namespace, write: Callable[[str], object] = print) -> int:
    """``host new plugin``: scaffold, then say what to do next; returns the exit code.

    Raises:
        ScaffoldError: as :func:`scaffold_plugin` (the command reports it and exits with 2).
    """
    root = scaffold_plugin(args.name, args.dest_dir or Path.cwd())
    names = _names(args.name)
    write(
        f"created {root}: resource type {names['type']!r} ({names['package']}."
        f"{names['cls']}), for {names['requirement']}.\n"
        f"next:\n"
        f"  cd {root}\n"
        f'  python -m pip install -e ".[test]"\n'
        f"  python -m pytest\n"
        f"then replace the example resource with yours; the guide: specs/authors-guide.md."
    )
    return 0


_PYPROJECT = Template("""\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "${dist}"
version = "0.1.0"
description = "${title}: a resource for the host plugin framework."
readme = "README.md"
requires-python = ">=3.10"
license = "MIT"
# The host releases this plugin supports; the host reads this requirement to decide whether the
# plugin is compatible with it, and reports (does not load) a plugin built for another host.
dependencies = ["${requirement}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# The resource types this package ships: name (used in run configs) = "module:Class".
[project.entry-points."host.resources"]
${type} = "${package}:${cls}"

# A hook plugin or an executor is registered the same way:
# [project.entry-points."host.plugins"]
# ${type} = "${package}.hooks"
# [project.entry-points."host.executors"]
# ${type} = "${package}.executor:MyExecutor"

[tool.setuptools]
packages = ["${package}"]

[tool.setuptools.package-data]
${package} = ["py.typed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-ra"
filterwarnings = ["error"]
""")

_README = Template("""\
# ${dist}

${title}: a resource for the host plugin framework, registered as the resource type `${type}`.

It supports `${requirement}`: the host checks that requirement and reports the plugin (without
loading it) when the installed host is outside it.

## Install

```sh
pip install ${dist}
host resources ${type}     # its configuration, from the class's fields
```

## Use

In Python:

```python
from host import asset, run_assets
from ${package} import ${cls}

@asset
def greeting(${type}: ${cls}) -> str:
    ${type}.write("hello")
    return "hello"

run_assets([greeting], resources={"${type}": ${cls}(path="out.txt")})
```

In a run config (`host run run.toml`):

```toml
[run]
assets = ["my_assets"]

[resources.${type}]
type = "${type}"
config = { path = "out.txt", token = { env = "${env}" } }
```

## Develop

```sh
python -m pip install -e ".[test]"
python -m pytest
```

The tests use `host.testing` and the `host` pytest plugin (installed with the host): the
resource comes up through the same hooks, dependency handling and teardown as in a run, and
`check_resource_class` checks that it is well formed (frozen, picklable configuration, a JSON
schema, masked secrets, a lifecycle that survives failures, a worker process). Tests using the
`host_run` fixture run once per installed executor.

## Publish

```sh
python -m pip install build twine
python -m build
python -m twine upload dist/*
```
""")

_PACKAGE = Template('''\
"""${title}: a host resource, registered as the resource type `${type}`.

Replace the example with your own resource: configuration in fields (validated, frozen, shown by
`host resources ${type}`), live state in private attributes (never pickled, never shown).
"""

from __future__ import annotations

from typing import TextIO

from pydantic import Field, PrivateAttr, SecretStr

from host import ConfigurableResource, InitResourceContext

__all__ = ["${cls}"]


class ${cls}(ConfigurableResource):
    """Appends lines to a file that stays open for the run, once per run per process."""

    path: str = Field(description="The file lines are appended to.")
    token: SecretStr = Field(
        default=SecretStr(""),
        description="An example secret: masked in repr, events, logs and errors.",
    )
    _file: TextIO | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in teardown)
        context.log.info("appending to %s", self.path)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, line: str) -> None:
        """Append ``line``: in an asset, or in a test under ``host.testing.open_resource``."""
        if self._file is None:
            raise RuntimeError(
                f"{type(self).__name__} is not up: use it in an asset, or in a test with "
                f"`with host.testing.open_resource(...)`"
            )
        self._file.write(line + "\\n")
        self._file.flush()
''')

_TESTS = Template('''\
"""Tests of ${dist}: the resource goes through the same lifecycle as in a run.

`host.testing` and the `host` pytest plugin's fixtures (`host_resource`, `host_run`, ...) come
with the host.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from host import asset
from host.testing import check_resource_class, open_resource

from ${package} import ${cls}


def test_is_a_well_formed_resource(tmp_path: Path) -> None:
    check_resource_class(
        ${cls}, config={"path": str(tmp_path / "out.txt"), "token": "an-example-secret"}
    )


def test_writes_while_up(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    with open_resource(${cls}(path=str(path))) as resource:
        resource.write("hello")
    assert path.read_text() == "hello\\n"


def test_the_fixture_keeps_it_up_for_the_test(
    host_resource: Callable[..., Any], tmp_path: Path
) -> None:
    resource = host_resource(${cls}(path=str(tmp_path / "out.txt")))
    resource.write("from a fixture")


@asset
def greeting(${type}: ${cls}) -> str:
    ${type}.write("hello from an asset")
    return "hello"


def test_runs_on_every_executor(host_run: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    result = host_run([greeting], resources={"${type}": ${cls}(path=str(path))})
    assert result.success and result.outputs["greeting"] == "hello"
    assert path.read_text() == "hello from an asset\\n"


def test_is_registered_as_a_resource_type() -> None:
    (entry_point,) = entry_points(group="host.resources", name="${type}")
    assert entry_point.load() is ${cls}
''')
