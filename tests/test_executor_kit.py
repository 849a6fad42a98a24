"""The executor kit (``host.executors``) is public and pinned; plugins use only public names."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import sys
import threading
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import host
import host.executors as kit
from tests import test_contract

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = {
    "CallerRun",
    "CapturedOutput",
    "Deadline",
    "Executor",
    "ExecutorConfig",
    "Frontier",
    "INTERRUPT_GRACE",
    "InProcessExecutor",
    "LogForwarder",
    "MultiprocessConfig",
    "MultiprocessExecutor",
    "PhaseTimeouts",
    "Plan",
    "RemoteExecutor",
    "ResourceGraph",
    "ResourceNode",
    "RunPayload",
    "RunState",
    "ShippedError",
    "ShippingError",
    "Step",
    "StepOutcome",
    "StepResult",
    "WorkerRun",
    "caller_log_levels",
    "cancel_interrupt",
    "check_shippable",
    "close_session_resources",
    "distribution_of",
    "dumps",
    "forward_output",
    "interrupt_thread",
    "loads",
    "mask",
    "needed_resources",
    "not_torn_down",
    "reemit_record",
    "resource_needs",
    "shippable_plugins",
    "signals_held",
    "stuck_teardown",
    "teardown_due",
    "teardown_errors",
    "teardown_timeout",
    "track_up",
    "write_output",
}


def test_all_is_pinned_and_sorted() -> None:
    assert set(kit.__all__) == PUBLIC
    assert list(kit.__all__) == sorted(kit.__all__)
    for name in kit.__all__:
        assert hasattr(kit, name), name


def test_host_names_for_executors_are_the_kits() -> None:
    for name in ("Executor", "ExecutorConfig", "RunState"):
        assert getattr(host, name) is getattr(kit, name)


def _public_classes() -> set[type]:
    found: set[type] = set()
    for module in (host, kit):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type):
                found.add(value)
    return found


def _host_classes(hint: object) -> set[type]:
    """The classes defined in ``host`` that a type hint names (arguments included)."""
    found: set[type] = set()
    if isinstance(hint, type) and hint.__module__.split(".")[0] == "host":
        found.add(hint)
    for arg in typing.get_args(hint):
        found |= _host_classes(arg)
    return found


def test_the_executor_contract_is_typed_with_public_classes() -> None:
    public = _public_classes()
    hints = typing.get_type_hints(kit.Executor.check)
    named = set().union(*(_host_classes(h) for h in hints.values()))
    state = typing.get_type_hints(kit.RunState)
    for spec in dataclasses.fields(kit.RunState):
        if not spec.name.startswith("_"):
            named |= _host_classes(state[spec.name])
    for method in ("record", "time_out", "skip", "remaining", "inputs_for"):
        for hint in typing.get_type_hints(getattr(kit.RunState, method)).values():
            named |= _host_classes(hint)
    assert named, "no host class found: the check checks nothing"
    assert not {cls for cls in named if cls not in public}, "private classes in the contract"


def _plugin_modules() -> list[Path]:
    return sorted(ROOT.glob("plugins/*/host_plugin_*/**/*.py"))


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "host" and any(part.startswith("_") for part in parts[1:]):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{where}:{node.lineno}: {name}")
    return found


def test_plugins_import_only_public_host_names() -> None:
    modules = _plugin_modules()
    assert len(modules) > 5, modules
    found = [hit for path in modules for hit in _private_imports(path)]
    assert found == []


def test_the_private_import_check_finds_one(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from host._graph import Plan\nimport host._secrets\nfrom host import asset\n")
    assert [hit.split(": ")[1] for hit in _private_imports(probe)] == [
        "host._graph",
        "host._graph.Plan",
        "host._secrets",
    ]


def test_the_kit_needs_no_private_import_in_a_signature() -> None:
    for name in kit.__all__:
        value = getattr(kit, name)
        if inspect.isfunction(value):
            for hint in typing.get_type_hints(value).values():
                assert _host_classes(hint) <= _public_classes(), (name, hint)


# -- the worked example of specs/authors-guide.md -------------------------------------------------

GUIDE = ROOT / "specs" / "authors-guide.md"
EXAMPLE_HEADING = "### A worked example: a minimal executor"


def _example_code() -> str:
    """The first Python code block after the worked example's heading, exactly as printed."""
    text = GUIDE.read_text(encoding="utf-8")
    assert EXAMPLE_HEADING in text
    after = text.split(EXAMPLE_HEADING, 1)[1]
    block = after.split("```python\n", 1)[1].split("\n```", 1)[0]
    return block + "\n"


@pytest.fixture(scope="module")
def example_executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[type[kit.Executor]]:
    """The guide's example, written to a module file and imported from there."""
    where = tmp_path_factory.mktemp("guide")
    path = where / "host_guide_one_thread.py"
    path.write_text(_example_code(), encoding="utf-8")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "host.executors" in imported
    assert not {name for name in imported if name.startswith("host") and name != "host.executors"}
    spec = importlib.util.spec_from_file_location("host_guide_one_thread", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        executor = module.OneThreadExecutor
        assert issubclass(executor, kit.Executor)
        yield executor
    finally:
        del sys.modules[spec.name]


CONTRACT = [
    name
    for name, fn in vars(test_contract).items()
    if name.startswith("test_")
    and not name.endswith("_long")
    and {"executor", "record"} <= set(inspect.signature(fn).parameters)
]


def test_the_contract_tests_are_found() -> None:
    assert len(CONTRACT) >= 7, CONTRACT


@pytest.mark.parametrize("name", CONTRACT)
def test_the_guides_example_keeps_the_contract(
    name: str, example_executor: type[kit.Executor], tmp_path: Path
) -> None:
    getattr(test_contract, name)(executor=(example_executor, {}), record=str(tmp_path / "r.jsonl"))


def test_the_guides_example_runs_in_its_own_thread(example_executor: type[kit.Executor]) -> None:
    seen: list[str] = []

    @host.asset
    def where() -> str:
        seen.append(threading.current_thread().name)
        return "here"

    @host.asset
    def after(where: str) -> str:
        return where + " and there"

    result = host.run_assets([where, after], executor=example_executor)
    assert result.outputs == {"where": "here", "after": "here and there"}
    assert seen and seen[0].startswith("one_thread") and seen[0] != threading.main_thread().name


# -- specific errors, one formatter ----------------------------------------------------------------


def _executor_modules() -> list[Path]:
    dask = ROOT.glob("plugins/host-plugin-dask/host_plugin_*/*.py")
    return sorted([*ROOT.glob("host/executors/*.py"), *dask])


def _bare_host_errors(path: Path) -> list[str]:
    """Where ``path`` makes a plain ``HostError`` (not one of the tree's specific errors)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "HostError":
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_executors_raise_the_specific_error_of_each_fault() -> None:
    modules = _executor_modules()
    assert len(modules) > 10, modules
    assert [hit for path in modules for hit in _bare_host_errors(path)] == []


def test_the_bare_host_error_check_finds_one(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import host\nraise host.HostError('x')\nerror = HostError('y')\n")
    assert _bare_host_errors(probe) == ["probe.py:2", "probe.py:3"]


def test_validation_errors_are_formatted_in_one_place() -> None:
    """Only ``host._errors`` reads a pydantic ``ValidationError``'s ``errors()``."""
    found = []
    for path in sorted(ROOT.glob("host/**/*.py")):
        if path.name == "_errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "errors":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _executor_classes() -> list[type[kit.Executor]]:
    from host_plugin_dask import DaskExecutor

    return [kit.InProcessExecutor, kit.MultiprocessExecutor, DaskExecutor]


_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=4, max_size=12)
_VALUES = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=6, max_size=12).map(
        lambda s: "VAL" + s
    ),
    st.integers(max_value=0),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(0, 2),
    extra=st.dictionaries(_WORDS, _VALUES, max_size=2),
    wrong=st.sampled_from(["max_workers", "grace_period", "n_workers", "start_method", None]),
    value=_VALUES,
)
def test_invalid_executor_settings_read_like_resource_config_errors(
    index: int, extra: dict[str, Any], wrong: str | None, value: Any
) -> None:
    """Any invalid ``executor_config`` of any executor: a ConfigError naming the executor and
    each field with pydantic's message, in the one format, never quoting a value."""
    from pydantic import ValidationError

    from host._errors import describe_validation

    executor = _executor_classes()[index]
    config = dict(extra)
    if wrong is not None:
        config[wrong] = value
    try:
        executor.Config.model_validate(config)
    except ValidationError as exc:
        expected = describe_validation(exc, whole="(config)")
    else:
        return  # a valid config (nothing extra, a value that fits)
    with pytest.raises(host.ConfigError) as info:
        executor(config)
    message = str(info.value)
    assert message == f"executor {executor.name!r}: invalid executor_config: {expected}"
    for key in config.keys() - executor.Config.model_fields.keys():
        assert f"{key}: Extra inputs are not permitted" in message
    for item in config.values():
        if isinstance(item, str):
            assert item not in message
