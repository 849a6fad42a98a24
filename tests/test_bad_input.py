"""Bad input to ``host``: each case is one clear message naming the culprit, exit code 2, and
nothing brought up.

Every case is a real ``host`` command (the console script, in a subprocess) on a run config
whose resource ``r`` (``tests.recording.Recorded``, registered by a generated distribution)
would write a record the moment it came up: the record file must not exist afterwards. The
plugins are real installed distributions (``tests.dists``): broken, of the wrong kind,
duplicated, built for another host, with a hook that does not match the specification.

Then the run-config loader is fuzzed: any bytes, any text, any TOML document of any shape give
a ``host.HostError`` or a valid config, never another exception.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host import HostError, RunConfig, load_run_config
from host._config_load import MAX_RUN_CONFIG_BYTES
from host._discovery import PLUGINS_GROUP, RESOURCES_GROUP, reset_discovery
from tests.dists import HOST, Site, make_dist, run

ROOT = Path(__file__).resolve().parent.parent

BASE = """
[run]
assets = ["bad_assets"]

[resources.r]
type = "genbad.recorded"
[resources.r.config]
record = "RECORD"
label = "r"
"""

ASSETS = """
from host import asset
from tests.graphs import make_asset

uses_r = make_asset("uses_r", resources=["r"])
"""


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, and what the message must name."""

    id: str
    expect: tuple[str, ...]
    toml: str | None = BASE  # None: no run config is written (the file case makes its own)
    replace: tuple[tuple[str, str], ...] = ()
    append: str = ""
    modules: dict[str, str] = field(default_factory=dict)
    command: str = "run"
    env: dict[str, str] = field(default_factory=dict)
    file: str = ""  # a special file instead of the run config: missing, directory, ...


CASES = [
    # -- config ------------------------------------------------------------------------------
    Case("toml-syntax", ("run.toml:9: invalid TOML",), replace=(('label = "r"', 'label = "r'),)),
    Case("unknown-table", ("runn: unknown key; did you mean 'run'?",), append="\n[runn]\n"),
    Case("unknown-key", ("run.asets: unknown key; did you mean 'assets'?",),
         replace=(("assets =", "asets ="),)),
    Case("wrong-type", ("run.assets: Input should be a valid list",),
         replace=(('["bad_assets"]', '"bad_assets"'),)),
    Case("missing-run", ("run: required key is missing",),
         replace=(('[run]\nassets = ["bad_assets"]', ""),)),
    Case("field-wrong-type", ("resource 'r' (Recorded)", "label: Input should be a valid string"),
         replace=(('label = "r"', "label = 5"),)),
    Case("unknown-field", ("unknown config field 'lable' (did you mean 'label'?)",),
         replace=(('label = "r"', 'label = "r"\nlable = "x"'),)),
    Case("unknown-type", ("unknown type 'genbad.recordd'", "did you mean 'genbad.recorded'"),
         replace=(('"genbad.recorded"', '"genbad.recordd"'),)),
    Case("missing-env-var", ("'GENBAD_UNSET'", "resource 'r'", "'label'"),
         replace=(('label = "r"', 'label = { env = "GENBAD_UNSET" }'),)),
    Case("missing-dependency", ("field 'inner' refers to resource 'nope'",), append="""
        [resources.p]
        type = "genbad.pair"
        [resources.p.config]
        record = "RECORD"
        label = "p"
        inner = { resource = "nope" }
        """),
    Case("dependency-cycle", ("resources form a dependency cycle",), append="""
        [resources.p]
        type = "genbad.pair"
        [resources.p.config]
        record = "RECORD"
        label = "p"
        inner = { resource = "q" }
        [resources.q]
        type = "genbad.pair"
        [resources.q.config]
        record = "RECORD"
        label = "q"
        inner = { resource = "p" }
        """),
    Case("resource-key", ("a resource key must be a Python identifier",),
         replace=(("[resources.r]", '[resources."not-a-key"]'),
                  ("[resources.r.config]", '[resources."not-a-key".config]'))),
    Case("executor-config", ("run.executor_config.max_workers: invalid for executor 'multiprocess'",
                             "max_workers"),
         replace=(('assets = ["bad_assets"]',
                   'assets = ["bad_assets"]\nexecutor = "multiprocess"\n'
                   "executor_config = { max_workers = 0 }"),)),
    Case("unknown-executor", ("no executor is called 'multiproces'", "did you mean"),
         replace=(('assets = ["bad_assets"]',
                   'assets = ["bad_assets"]\nexecutor = "multiproces"'),)),
    Case("run-timeout", ("run.timeout: Input should be greater than 0",),
         replace=(('assets = ["bad_assets"]', 'assets = ["bad_assets"]\ntimeout = -1'),)),
    Case("setup-timeout", ("resources.r.setup_timeout: Input should be a valid number",),
         replace=(('type = "genbad.recorded"', 'type = "genbad.recorded"\nsetup_timeout = "1m"'),)),
    # -- definitions -------------------------------------------------------------------------
    Case("unresolved-parameter", ("asset 'lonely', parameter 'nothing'",),
         modules={"bad_assets.py": ASSETS + "\n@asset\ndef lonely(nothing):\n    return 1\n"}),
    Case("asset-cycle", ("assets form a cycle",),
         modules={"bad_assets.py": ASSETS + textwrap.dedent("""
        @asset
        def hen(egg):
            return 1

        @asset
        def egg(hen):
            return 2
        """)}),
    Case("duplicate-names", ("two assets are called 'uses_r'",),
         replace=(('["bad_assets"]', '["bad_assets", "more_assets"]'),),
         modules={"more_assets.py": ASSETS}),
    Case("async-generator", ("asset 'stream' is an async generator function",),
         modules={"bad_assets.py": ASSETS + "\n@asset\nasync def stream():\n    yield 1\n"}),
    Case("unpicklable-asset", ("asset 'locked'", "cannot be sent to a worker process"),
         replace=(('assets = ["bad_assets"]',
                   'assets = ["bad_assets"]\nexecutor = "multiprocess"'),),
         modules={"bad_assets.py": ASSETS + textwrap.dedent("""
        import threading

        def make():
            lock = threading.Lock()

            @asset
            def locked(r):
                return lock.locked()

            return locked

        locked = make()
        """)}),
    Case("asset-import-error", ("importing 'bad_assets' failed: RuntimeError: no such thing",),
         modules={"bad_assets.py": "raise RuntimeError('no such thing')\n"}),
    Case("missing-module", ("no module named 'no_such_assets'",),
         replace=(('["bad_assets"]', '["no_such_assets"]'),)),
    Case("missing-asset", ("module 'bad_assets' has no attribute 'nope'",),
         replace=(('["bad_assets"]', '["bad_assets:nope"]'),)),
    Case("unknown-selection", ("run.selection[0] 'nope': no asset is called 'nope'",),
         replace=(('assets = ["bad_assets"]', 'assets = ["bad_assets"]\nselection = ["nope"]'),)),
    # -- plugins -----------------------------------------------------------------------------
    Case("plugin-import-error", ("genbad.broken", "gen-bad-broken 0.3", "failed to import",
                                 "RuntimeError: this plugin cannot import"),
         replace=(('"genbad.recorded"', '"genbad.broken"'),)),
    Case("plugin-wrong-type", ("genbad.wrong", "not a host.ConfigurableResource subclass"),
         replace=(('"genbad.recorded"', '"genbad.wrong"'),)),
    Case("plugin-duplicate", ("registered by several distributions", "gen-bad-dup-a 1.0",
                              "gen-bad-dup-b 2.0"),
         replace=(('"genbad.recorded"', '"genbad.dup"'),)),
    Case("plugin-incompatible", ("genbad.future", "requires host>=99", "gen-bad-future 9.0"),
         replace=(('"genbad.recorded"', '"genbad.future"'),)),
    Case("hook-signature", ("plugins.enable[0] 'genbad_hooks'", "gen-bad-hooks 1.0",
                            "do not match the host's hook specifications"),
         append="\n[plugins]\nenable = [\"genbad_hooks\"]\n"),
    Case("unknown-hook-plugin", ("plugins.enable[0]: no hook plugin is called 'genbad_nohooks'",),
         append="\n[plugins]\nenable = [\"genbad_nohooks\"]\n"),
    Case("disabled-type", ("'genbad.recorded' in host.resources cannot be used", "disabled"),
         append="\n[plugins]\ndisable = [\"genbad.recorded\"]\n"),
    # -- files -------------------------------------------------------------------------------
    Case("missing-file", ("cannot read run config", "nothing.toml"), file="missing"),
    Case("directory", ("cannot read run config", "Is a directory"), file="directory"),
    Case("binary", ("not UTF-8 text",), file="binary"),
    Case("huge", ("larger than 1024 KiB",), file="huge"),
    Case("empty", ("run: required key is missing",), file="empty"),
    Case("deeply-nested", ("nested too deeply",), file="nested"),
    Case("check-command", ("resource 'r' (Recorded)", "label"), command="check",
         replace=(('label = "r"', "label = []"),)),
]

BROKEN = "raise RuntimeError('this plugin cannot import')\n"
BAD_HOOK = """
from host import hookimpl

@hookimpl
def host_resource_setup(resource, context, colour):
    pass
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distributions the cases use."""
    site = tmp_path_factory.mktemp("bad-input-site")
    resources = {
        "genbad.recorded": "tests.recording:Recorded",
        "genbad.pair": "tests.recording:RecordedPair",
    }
    make_dist(site, "gen-bad-good", entry_points={RESOURCES_GROUP: resources})
    make_dist(site, "gen-bad-broken", "0.3",
              entry_points={RESOURCES_GROUP: {"genbad.broken": "genbad_broken:Thing"}},
              modules={"genbad_broken.py": BROKEN})
    make_dist(site, "gen-bad-wrong",
              entry_points={RESOURCES_GROUP: {"genbad.wrong": "genbad_wrong:Thing"}},
              modules={"genbad_wrong.py": "class Thing:\n    pass\n"})
    for name, version in (("gen-bad-dup-a", "1.0"), ("gen-bad-dup-b", "2.0")):
        make_dist(site, name, version,
                  entry_points={RESOURCES_GROUP: {"genbad.dup": "tests.recording:Recorded"}})
    make_dist(site, "gen-bad-future", "9.0", requires=["host>=99"],
              entry_points={RESOURCES_GROUP: {"genbad.future": "genbad_future:Thing"}},
              modules={"genbad_future.py": "X = 1\n"})
    make_dist(site, "gen-bad-hooks",
              entry_points={PLUGINS_GROUP: {"genbad_hooks": "genbad_hooks"}},
              modules={"genbad_hooks.py": BAD_HOOK})
    return site


def _special(kind: str, path: Path) -> Path:
    """A run config that is not a well-formed text file."""
    if kind == "missing":
        return path.with_name("nothing.toml")
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    elif kind == "huge":
        comment = b"# " + b"x" * 1021 + b"\n"
        path.write_bytes(BASE.encode() + comment * (MAX_RUN_CONFIG_BYTES // len(comment) + 1))
    elif kind == "empty":
        path.write_bytes(b"")
    else:  # nested
        path.write_text(BASE + "\n[run2]\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    return path


def _write_case(case: Case, project: Path, record: Path) -> Path:
    modules = {"bad_assets.py": ASSETS, **case.modules}
    for name, source in modules.items():
        (project / name).write_text(textwrap.dedent(source))
    path = project / "run.toml"
    if case.file:
        return _special(case.file, path)
    text = case.toml or ""
    for old, new in case.replace:
        assert old in text, (case.id, old)
        text = text.replace(old, new)
    text = textwrap.dedent(text) + textwrap.dedent(case.append)
    path.write_text(text.replace("RECORD", str(record)))
    return path


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_clear_message_exit_2_and_nothing_comes_up(
    case: Case, site: Path, tmp_path: Path
) -> None:
    record = tmp_path / "records.jsonl"
    path = _write_case(case, tmp_path, record)
    done = run(
        [HOST, case.command, str(path)],
        site=site,
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), **case.env},
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("host: error: "), done.stderr
    assert "Traceback" not in done.stderr
    for expected in case.expect:
        assert expected in done.stderr, (expected, done.stderr)
    assert not record.exists(), "a resource came up"
    assert done.stdout == "" or (case.command == "run" and "Assets" not in done.stdout)


def test_the_table_has_at_least_25_cases_in_every_category() -> None:
    assert len(CASES) >= 25
    assert len({case.id for case in CASES}) == len(CASES)


# -- fuzzing the loader ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The recording resource types, installed for the loader in this process."""
    root = tmp_path_factory.mktemp("fuzz")
    site = Site(root / "site")
    site.add("gen-fuzz", entry_points={RESOURCES_GROUP: {
        "genfuzz.recorded": "tests.recording:Recorded",
        "genfuzz.pair": "tests.recording:RecordedPair",
    }})
    (root / "fuzz_assets.py").write_text(textwrap.dedent(ASSETS))
    import sys

    sys.path.insert(0, str(site.path))
    reset_discovery()
    yield root
    sys.path.remove(str(site.path))
    site.close()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(document: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in document.items())


KEYS = ["run", "resources", "plugins", "assets", "executor", "executor_config", "selection",
        "pythonpath", "timeout", "type", "config", "distribution", "setup_timeout",
        "teardown_timeout", "disable", "enable", "env", "resource", "record", "label", "inner",
        "r", "p", "max_workers", "start_method"]
STRINGS = ["fuzz_assets", "fuzz_assets:uses_r", "zz_fuzz_missing", "in_process", "multiprocess",
           "genfuzz.recorded", "genfuzz.pair", "genfuzz.nope", "r", "p", "x", "", "a.b", ":",
           "GENFUZZ_UNSET", "trace"]

scalars = (
    st.sampled_from(STRINGS)
    | st.text(max_size=12)
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), values, max_size=4)


def _load(fuzz_site: Path, content: bytes) -> None:
    path = fuzz_site / "fuzz.toml"
    path.write_bytes(content)
    try:
        loaded = load_run_config(path)
    except HostError:
        return
    assert isinstance(loaded, RunConfig)


_FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_FUZZ
@given(content=st.binary(max_size=400))
def test_any_bytes_give_a_host_error_or_a_config(fuzz_site: Path, content: bytes) -> None:
    _load(fuzz_site, content)


@_FUZZ
@given(text=st.text(alphabet=st.sampled_from('[]{}="\'.,#\n\t =abrunsetx0123:-+_\\'), max_size=200))
def test_any_text_gives_a_host_error_or_a_config(fuzz_site: Path, text: str) -> None:
    _load(fuzz_site, text.encode())


@_FUZZ
@given(document=documents)
def test_any_toml_document_gives_a_host_error_or_a_config(
    fuzz_site: Path, document: dict[str, Any]
) -> None:
    _load(fuzz_site, _toml(document).encode())


@_FUZZ
@given(
    run=st.fixed_dictionaries(
        {"assets": st.lists(st.sampled_from(STRINGS), min_size=1, max_size=3)},
        optional={"executor": st.sampled_from(STRINGS), "timeout": scalars,
                  "executor_config": values, "selection": values},
    ),
    resources=st.dictionaries(
        st.sampled_from(["r", "p", "q", "1x"]),
        st.fixed_dictionaries(
            {"type": st.sampled_from(STRINGS)},
            optional={"config": st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
                      "setup_timeout": scalars, "distribution": st.sampled_from(STRINGS)},
        ),
        max_size=3,
    ),
)
def test_any_run_config_of_the_right_shape_gives_a_host_error_or_a_config(
    fuzz_site: Path, run: dict[str, Any], resources: dict[str, Any]
) -> None:
    document: dict[str, Any] = {"run": run, "resources": resources}
    _load(fuzz_site, _toml(document).encode())
