"""The files ``host new plugin`` writes, as ``string.Template`` texts per kind of plugin.

Each is filled with the names :func:`host._scaffold.scaffold_plugin` derives from the plugin's
short name (``${name}``, ``${dist}``, ``${package}``, ``${cls}``, ...).
"""

from __future__ import annotations

from string import Template

__all__ = ["LICENSE", "PYPROJECT", "README_HEAD", "README_TAIL", "SOURCES", "SUFFIX", "USE"]

SUFFIX = {"resource": "Resource", "executor": "Executor"}

PYPROJECT = Template("""\
[build-system]
requires = ["hatchling>=1.27"]
build-backend = "hatchling.build"

[project]
name = "${dist}"
version = "0.1.0"
description = "${title}: a ${kind} plugin for the host plugin framework."
readme = "README.md"
requires-python = ">=3.10"
license = "MIT"
license-files = ["LICENSE"]
classifiers = [
    "Development Status :: 3 - Alpha",
    "Intended Audience :: Developers",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Typing :: Typed",
]
# The host releases this plugin supports; the host reads this requirement to decide whether the
# plugin is compatible with it, and reports (does not load) a plugin built for another host.
dependencies = ["${requirement}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# What this package ships, by entry-point group: name = "module" or "module:object".
[project.entry-points."${group}"]
${type} = "${entry}"

# Other kinds are registered the same way:
# [project.entry-points."host.resources"]    a resource type: "module:ResourceClass"
# [project.entry-points."host.plugins"]      a hook plugin: "module" or "module:object"
# [project.entry-points."host.executors"]    an executor: "module:ExecutorClass"

# The wheel holds the package with its py.typed and nothing else; the sdist adds the tests.
[tool.hatch.build.targets.wheel]
packages = ["${package}"]
exclude = ["__pycache__", "*.pyc"]

[tool.hatch.build.targets.sdist]
include = ["/${package}", "/tests", "/README.md", "/LICENSE"]
exclude = ["__pycache__", "*.pyc"]

[tool.ruff]
line-length = 100

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-ra"
filterwarnings = ["error"]
""")

LICENSE = Template(
    """MIT License

Copyright (c) 2026 the authors of ${dist}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
)

README_HEAD = """\
# ${dist}

${title}: a ${kind} plugin for the host plugin framework, registered as `${type}` in the
entry-point group `${group}`.

It supports `${requirement}`: the host checks that requirement and reports the plugin (without
loading it) when the installed host is outside it.

## Install

Before it is published, install it from its folder:

```sh
pip install ./${dist}                # as users will get it (a wheel is built and installed)
pip install -e "./${dist}[test]"     # for development: edits take effect without reinstalling
```

Once it is published, `pip install ${dist}` installs it from the package index. Either way
the host finds it through its entry point, without importing it: `host plugins` lists it and
`host --version` names it.

"""

USE = {
    "resource": """\
## Use

`host resources ${type}` shows its configuration, from the class's fields. In Python:

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

""",
    "hook": """\
## Use

Installed, the plugin joins every run, in every process of it: set `${asset_log}` to a file
and each asset that runs appends one JSON line to it (`asset`, `ok`, `duration`, `pid`,
`run_id`); while the variable is unset it records nothing.

```sh
${asset_log}=$$PWD/assets.jsonl host run run.toml
```

Switch it off for one run with `HOST_DISABLE_PLUGINS=${type}`, or in a run config's `[plugins]`.

""",
    "executor": """\
## Use

It runs every asset in one worker thread of its own, one after another, bringing resources up
there the first time an asset needs them and down in reverse order when the run ends.

```python
from host import run_assets

run_assets(assets, resources, executor="${type}")
```

In a run config: `[run]` `executor = "${type}"`. It is written only against the public executor
kit, `host.executors`.

""",
}

README_TAIL = """\
## Develop

```sh
python -m pip install -e ".[test]"
python -m pytest
```

The tests use `host.testing` and the `host` pytest plugin (installed with the host): resources
come up through the same hooks, dependency handling and teardown as in a run. Tests using the
`host_run` fixture run once per installed executor (or those named by
`@pytest.mark.host_executors(...)`).

The authors' guide (how to write each kind of plugin, the executor kit, testing, publishing)
is installed with the host: `host new plugin` printed where (here `${guide}`), and it is the
"Authors' guide" page of the host's documentation site.

## Publish

```sh
python -m pip install build twine
python -m build
python -m twine check dist/*
python -m twine upload dist/*
```
"""

_HOOK_PACKAGE = Template('''\
"""${title}: a host hook plugin, registered as `${type}` in `host.plugins`.

This module is the plugin: its module-level functions are `@host.hookimpl`s, and the package
registers the module itself. Installed, it joins every run in every process of it. Each asset
that runs appends one JSON line to the file named by the environment variable `${asset_log}`
(read each time an asset runs; nothing is recorded while it is unset), one `write` with
`O_APPEND` each, so the processes of a run can share the file.

Replace the example with your own hooks (`host.hookimpl`; the hooks are listed in the guide).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from host import AssetExecutionContext, hookimpl

__all__ = ["ENV_VAR", "host_asset_execute", "read_records"]

#: The environment variable naming the file the records are appended to.
ENV_VAR = "${asset_log}"


@hookimpl(wrapper=True)
def host_asset_execute(
    context: AssetExecutionContext, fn: Callable[..., Any], kwargs: dict[str, Any]
) -> Generator[None, Any, Any]:
    """Time each asset's body and record how it ended; the output and errors pass unchanged."""
    start = time.perf_counter()
    ok = False
    try:
        output = yield
        ok = True
        return output
    finally:
        _record(
            {
                "run_id": context.run_id,
                "asset": context.asset_key,
                "ok": ok,
                "duration": time.perf_counter() - start,
                "pid": os.getpid(),
            }
        )


def _record(record: dict[str, Any]) -> None:
    path = os.environ.get(ENV_VAR)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\\n").encode())
    finally:
        os.close(fd)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records in ``path``, in the order they were written."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line]
''')

_HOOK_TESTS = Template('''\
"""Tests of ${dist}: the installed plugin records every asset, on every executor.

The plugin is loaded from its entry point, as in production: it joins every run (and every
worker process of one) without being passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from host import asset

import ${package}
from ${package} import ENV_VAR, read_records


@asset
def numbers() -> list[int]:
    return [1, 2, 3]


@asset
def total(numbers: list[int]) -> int:
    return sum(numbers)


@asset
def broken(numbers: list[int]) -> int:
    raise ValueError("an example failure")


def test_records_each_asset_once_on_every_executor(
    host_run: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "assets.jsonl"
    monkeypatch.setenv(ENV_VAR, str(path))
    result = host_run([numbers, total])
    assert result.success and result.outputs["total"] == 6
    records = read_records(path)
    assert sorted(r["asset"] for r in records) == ["numbers", "total"]
    assert all(r["ok"] and r["run_id"] == result.run_id for r in records)


def test_records_a_failure_and_lets_it_through(
    host_run: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "assets.jsonl"
    monkeypatch.setenv(ENV_VAR, str(path))
    result = host_run([numbers, broken], raise_on_error=False)
    assert result.failures["broken"].type.endswith("ValueError")
    assert {r["asset"]: r["ok"] for r in read_records(path)} == {"numbers": True, "broken": False}


def test_records_nothing_while_the_variable_is_unset(
    host_run: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert host_run([numbers]).success
    assert list(tmp_path.iterdir()) == []


def test_is_registered_as_a_hook_plugin() -> None:
    (entry_point,) = entry_points(group="host.plugins", name="${type}")
    assert entry_point.load() is ${package}
''')

_EXECUTOR_PACKAGE = Template('''\
"""${title}: a host executor, registered as `${type}` in `host.executors`.

Written only against the public executor kit, `host.executors`: a `RunPayload` for the run, one
`WorkerRun` where the assets run (here a thread of its own; in a worker process, the payload
travels there with `dumps`), a `Frontier` to pick what can start, outputs passed downstream as
pickles, and `close()` at the end, whatever happened. Replace it with your own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from host.executors import Executor, Frontier, RunPayload, RunState, WorkerRun, teardown_errors

__all__ = ["${cls}"]


class ${cls}(Executor):
    """Runs the assets in one thread (not the caller's), one after another, in plan order.

    Resources come up in that thread the first time an asset needs them and go down there, in
    reverse order, when the run ends, whatever happened.
    """

    name: ClassVar[str] = "${type}"

    def execute(self, run: RunState) -> None:
        payload = RunPayload.of(run)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="${type}") as thread:
            worker = thread.submit(WorkerRun, payload, run.emit).result()
            frontier = Frontier(run.plan)
            outputs: dict[str, bytes] = {}  # asset key -> its output, pickled
            try:
                while frontier.ready:
                    key = frontier.ready[0]
                    frontier.start(key)
                    inputs = {up: outputs[up] for up in run.plan.steps[key].upstream}
                    result = thread.submit(worker.run, key, inputs).result()
                    outcome, blob = result.outcome()
                    if blob is not None:
                        outputs[key] = blob
                    run.record(outcome)
                    for skipped, upstream in frontier.finish(key, outcome.ok):
                        run.skip(skipped, upstream)
            finally:
                failures = thread.submit(worker.close).result()
                run.record_teardown_errors(teardown_errors(failures))
''')

_EXECUTOR_TESTS = Template('''\
"""Tests of ${dist}: the executor keeps the host's lifecycle guarantees.

Each test runs on this executor through the `host_run` fixture of the host's pytest plugin, with
a real resource that writes what happens to it to a file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from host import ConfigurableResource, InitResourceContext, asset, run_assets

from ${package} import ${cls}

#: The tests that take `host_run` run on this executor only.
on_this_executor = pytest.mark.host_executors("${type}")


class Journal(ConfigurableResource):
    """Appends what happens to it (setup, use, teardown, with the thread) to a file."""

    path: str

    def _note(self, what: str) -> None:
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(f"{what} {threading.current_thread().name}\\n")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._note("setup")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self._note("teardown")

    def use(self, key: str) -> None:
        self._note(f"use:{key}")


@asset
def numbers(journal: Journal) -> list[int]:
    journal.use("numbers")
    return [1, 2, 3]


@asset
def total(numbers: list[int], journal: Journal) -> int:
    journal.use("total")
    return sum(numbers)


@asset
def broken(numbers: list[int]) -> int:
    raise ValueError("an example failure")


@asset
def after_broken(broken: int) -> int:
    return broken


def _journal(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split()[::2]


@on_this_executor
def test_runs_in_order_with_each_resource_up_once(
    host_run: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "journal.txt"
    result = host_run([total, numbers], {"journal": Journal(path=str(path))})
    assert result.success and result.outputs == {"numbers": [1, 2, 3], "total": 6}
    assert _journal(path) == ["setup", "use:numbers", "use:total", "teardown"]
    threads = set(path.read_text(encoding="utf-8").split()[1::2])
    assert len(threads) == 1 and threads != {threading.current_thread().name}


@on_this_executor
def test_a_failure_skips_downstream_and_resources_still_go_down(
    host_run: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "journal.txt"
    result = host_run(
        [numbers, broken, after_broken],
        {"journal": Journal(path=str(path))},
        raise_on_error=False,
    )
    assert not result.success
    assert result.failures["broken"].type.endswith("ValueError")
    assert result.skipped == ("after_broken",)
    assert _journal(path) == ["setup", "use:numbers", "teardown"]


def test_runs_by_name_and_by_class(tmp_path: Path) -> None:
    by_name = run_assets(
        [numbers], {"journal": Journal(path=str(tmp_path / "a"))}, executor="${type}"
    )
    by_class = run_assets(
        [numbers], {"journal": Journal(path=str(tmp_path / "b"))}, executor=${cls}
    )
    assert by_name.outputs == by_class.outputs == {"numbers": [1, 2, 3]}


def test_is_registered_as_an_executor() -> None:
    (entry_point,) = entry_points(group="host.executors", name="${type}")
    assert entry_point.load() is ${cls}
''')

_RESOURCE_PACKAGE = Template('''\
"""${title}: a host resource, registered as the resource type `${type}`.

Replace the example with your own resource: configuration in fields (validated, frozen, shown by
`host resources ${type}`), live state in private attributes (never pickled, never shown).
"""

from __future__ import annotations

from typing import TextIO

from host import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr, SecretStr

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

_RESOURCE_TESTS = Template('''\
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
        ${cls},
        config={"path": str(tmp_path / "out.txt"), "token": "an-example-secret"},
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


#: Per kind: the package's __init__.py and its test module.
SOURCES = {
    "resource": (_RESOURCE_PACKAGE, _RESOURCE_TESTS),
    "hook": (_HOOK_PACKAGE, _HOOK_TESTS),
    "executor": (_EXECUTOR_PACKAGE, _EXECUTOR_TESTS),
}
