"""Real installed distributions, made on the fly for discovery, config and command tests.

An installed distribution is, to ``importlib_metadata``, a ``NAME-VERSION.dist-info`` directory
with a ``METADATA`` file (and ``entry_points.txt``) on ``sys.path``, next to its modules. This
module writes exactly that into a directory (a "site"), which tests put on ``sys.path`` (in the
test process) or on ``PYTHONPATH`` (of a subprocess).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The ``host`` console script of the environment the tests run in.
HOST = str(Path(sys.executable).with_name("host"))

#: A module that records its own import in the file named by ``HOST_TEST_IMPORTS``.
IMPORT_MARKER = """
import os as _os
if _os.environ.get("HOST_TEST_IMPORTS"):
    with open(_os.environ["HOST_TEST_IMPORTS"], "a") as _f:
        _f.write(__name__ + "\\n")
"""


def make_dist(
    site: Path,
    name: str,
    version: str = "1.0",
    *,
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
    requires: Sequence[str] = (),
    modules: Mapping[str, str] | None = None,
) -> Path:
    """Write an installed distribution into ``site``; return its dist-info directory.

    Args:
        site: the directory (a ``sys.path`` entry).
        name: the distribution name (``Name:`` in METADATA).
        version: its version.
        entry_points: group -> {entry-point name: value}.
        requires: ``Requires-Dist`` lines.
        modules: relative file path (``pkg/__init__.py``) -> source; every module records its
            import (see :data:`IMPORT_MARKER`).
    """
    site.mkdir(parents=True, exist_ok=True)
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {line}" for line in requires]
    (dist_info / "METADATA").write_text("\n".join(metadata) + "\n\nA test distribution.\n")
    if entry_points:
        text = "".join(
            f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in items.items()) + "\n"
            for group, items in entry_points.items()
        )
        (dist_info / "entry_points.txt").write_text(text)
    for relative, source in (modules or {}).items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(IMPORT_MARKER + textwrap.dedent(source))
    return dist_info


def imported(marker: Path) -> list[str]:
    """The generated modules that recorded their import in ``marker``."""
    return marker.read_text().split() if marker.exists() else []


def environ(site: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for a subprocess: ``site`` first on PYTHONPATH, host variables cleared."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HOST_", "PYTHONPATH"))
    }
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def run(
    args: Sequence[str],
    *,
    site: Path | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (e.g. ``[HOST, "plugins"]``) with ``site`` on PYTHONPATH; capture output."""
    return subprocess.run(
        list(args),
        cwd=cwd,
        env=environ(site, **dict(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def python(code: str, *, site: Path | None = None, env: Mapping[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh interpreter and return what it printed as its last line (JSON)."""
    done = run([sys.executable, "-c", textwrap.dedent(code)], site=site, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


class Site:
    """A directory of generated distributions on ``sys.path`` of the test process.

    Every :meth:`add` makes the host scan again, so a test sees exactly what it installed.
    :meth:`close` forgets the scan and the modules imported from the site.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, version: str = "1.0", **kwargs: Any) -> Path:
        """:func:`make_dist` into this site, then reset discovery."""
        from host._discovery import reset_discovery

        dist_info = make_dist(self.path, name, version, **kwargs)
        reset_discovery()
        return dist_info

    def close(self, root: Path | None = None) -> None:
        """Forget the scan and unload the modules imported from the site (or from ``root``)."""
        from host._discovery import reset_discovery

        reset_discovery()
        prefix = str(root or self.path)
        for module_name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(prefix):
                del sys.modules[module_name]
