"""``host new plugin NAME [--kind KIND]``: a new plugin package, ready to install, test, publish.

:func:`scaffold_plugin` writes ``host-plugin-NAME/`` for one of three kinds (:data:`KINDS`):

- ``resource`` (the default): an example resource registered in ``host.resources``;
- ``hook``: a hook plugin module registered in ``host.plugins`` (it records each asset's outcome
  as a JSON line in the file an environment variable names, and is inert while it is unset);
- ``executor``: an executor registered in ``host.executors``, written only against the public
  executor kit (:mod:`host.executors`): every asset in one worker thread of its own.

Each package has a ``pyproject.toml`` with the same packaging conventions as the host's own
plugins (hatchling, an SPDX licence with its file, classifiers, ``py.typed``, a wheel of the
package alone) and the host versions it supports (its requirement on ``host``, which the host
reads to decide whether the plugin is compatible), a README that says how to install it before
and after publishing and where the authors' guide is, and tests that use ``host.testing`` and
the ``host`` pytest plugin. The tests pass as generated, once the package is installed
(``pip install ./host-plugin-NAME``, or ``pip install -e "./host-plugin-NAME[test]"`` to develop).
Nothing is ever overwritten.

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
from host._scaffold_templates import (
    LICENSE,
    PYPROJECT,
    README_HEAD,
    README_TAIL,
    SOURCES,
    SUFFIX,
    USE,
)

__all__ = [
    "KINDS",
    "ScaffoldError",
    "add_arguments",
    "guide_path",
    "run",
    "scaffold_plugin",
    "supported_host_range",
]

#: The kinds of plugin ``host new plugin --kind`` makes, with the entry-point group of each.
KINDS = {"resource": "host.resources", "hook": "host.plugins", "executor": "host.executors"}

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


def guide_path() -> Path:
    """Where the authors' guide of the installed host is, as a file on this machine.

    The host's wheel ships the specs in the package (``host/specs/authors-guide.md``); an
    editable install of a checkout reads them from the checkout's ``specs/`` folder.
    """
    import host

    package = Path(host.__file__).resolve().parent
    shipped = package / "specs" / "authors-guide.md"
    return shipped if shipped.is_file() else package.parent / "specs" / "authors-guide.md"


def _names(name: str, kind: str = "resource") -> dict[str, str]:
    if kind not in KINDS:
        raise ScaffoldError(
            f"{kind!r} is not a kind of plugin `host new plugin` makes: use one of {sorted(KINDS)}"
        )
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
    cls = "".join(word.capitalize() for word in words) + SUFFIX.get(kind, "")
    return {
        "name": name,
        "dist": f"host-plugin-{'-'.join(words)}",
        "package": f"host_plugin_{ident}",
        "type": ident,
        "cls": cls,
        "title": " ".join(word.capitalize() for word in words),
        "env": f"{ident.upper()}_TOKEN",
        "requirement": supported_host_range(),
        "kind": kind,
        "group": KINDS[kind],
        "asset_log": f"{ident.upper()}_ASSET_LOG",
        "guide": str(guide_path()),
    } | {"entry": f"host_plugin_{ident}" + ("" if kind == "hook" else f":{cls}")}


def scaffold_plugin(name: str, dest_dir: str | Path, kind: str = "resource") -> Path:
    """Create the plugin package ``host-plugin-NAME/`` of ``kind`` in ``dest_dir``.

    Args:
        name: the plugin's short name, e.g. ``acme`` or ``acme-crm``: the distribution is
            ``host-plugin-acme-crm``, the package ``host_plugin_acme_crm``, the entry-point name
            (resource type, hook plugin or executor name) ``acme_crm``, and the class
            ``AcmeCrmResource`` or ``AcmeCrmExecutor`` (a hook plugin is the package's module).
        dest_dir: the folder to create it in (made if missing).
        kind: ``resource``, ``hook`` or ``executor`` (:data:`KINDS`).

    Returns:
        The new plugin folder.

    Raises:
        ScaffoldError: ``name`` or ``kind`` is not usable, or the folder already exists (nothing
            is overwritten).
    """
    names = _names(name, kind)
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
    package, tests = SOURCES[kind]
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": Template(README_HEAD + USE[kind] + README_TAIL),
        "LICENSE": LICENSE,
        f"{names['package']}/__init__.py": package,
        f"{names['package']}/py.typed": Template(""),
        f"tests/test_{names['type']}.py": tests,
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
        "--kind",
        dest="plugin_kind",
        choices=sorted(KINDS),
        default="resource",
        help="what the plugin ships: a resource type (default), a hook plugin or an executor",
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
    kind = getattr(args, "plugin_kind", "resource")
    root = scaffold_plugin(args.name, args.dest_dir or Path.cwd(), kind)
    names = _names(args.name, kind)
    what = {
        "resource": f"resource type {names['type']!r} ({names['package']}.{names['cls']})",
        "hook": f"hook plugin {names['type']!r} (the module {names['package']})",
        "executor": f"executor {names['type']!r} ({names['package']}.{names['cls']})",
    }[kind]
    write(
        f"created {root}: {what}, for {names['requirement']}.\n"
        f"next:\n"
        f"  cd {root}\n"
        f'  python -m pip install -e ".[test]"\n'
        f"  python -m pytest\n"
        f"then replace the example {kind} with yours; the authors' guide: {names['guide']}"
    )
    return 0
