"""The executor kit (``host.executors``) is public and pinned; plugins use only public names."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from pathlib import Path

import host
import host.executors as kit

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = {
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
    "ResourceGraph",
    "ResourceNode",
    "RunPayload",
    "RunState",
    "ShippedError",
    "Step",
    "StepOutcome",
    "StepResult",
    "WorkerRun",
    "caller_log_levels",
    "cancel_interrupt",
    "check_shippable",
    "distribution_of",
    "dumps",
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
    "teardown_errors",
    "teardown_timeout",
    "track_up",
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
