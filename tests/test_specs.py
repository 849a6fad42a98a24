"""specs/ stays equal to the code: every hook, its exact signature and its docstring; the tests
the specs name exist.

Run ``python -m tests.test_specs`` to print the generated hook reference after changing a hook.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import host
from host._hookspecs import ResourceSpec, RunSpec

SPECS = Path(__file__).resolve().parent.parent / "specs"
START, END = "<!-- hooks:start -->", "<!-- hooks:end -->"


def hook_functions() -> list[tuple[str, object]]:
    return [
        (name, fn)
        for spec in (ResourceSpec, RunSpec)
        for name, fn in vars(spec).items()
        if name.startswith("host_")
    ]


def render_hooks() -> str:
    """The hook reference as it must stand in specs/hooks.md, generated from host._hookspecs."""
    parts = []
    for spec in (ResourceSpec, RunSpec):
        parts.append(f"### {spec.__name__}: {inspect.getdoc(spec)}\n")
        for name, fn in vars(spec).items():
            if not name.startswith("host_"):
                continue
            signature = inspect.signature(fn)
            params = [p for p in signature.parameters.values() if p.name != "self"]
            shown = signature.replace(parameters=params)
            opts = getattr(fn, "host_spec", {})
            flags = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()) if v)
            parts.append(
                f"#### `{name}`\n\n```python\n@hookspec{f'({flags})' if flags else ''}\n"
                f"def {name}{shown}\n```\n\n{inspect.getdoc(fn)}\n"
            )
    return "\n".join(parts)


def test_hooks_md_documents_every_hook_exactly() -> None:
    text = (SPECS / "hooks.md").read_text()
    assert START in text and END in text, "specs/hooks.md lost its generated-section markers"
    documented = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert documented == render_hooks().strip(), (
        "specs/hooks.md differs from host/_hookspecs.py; regenerate the section between the "
        "markers with `python -m tests.test_specs`"
    )
    headings = re.findall(r"^#### `(host_\w+)`", text, flags=re.M)
    assert headings == [name for name, _ in hook_functions()]


def test_specs_name_the_public_markers_and_phases() -> None:
    text = (SPECS / "lifecycle.md").read_text()
    for phase in ("setup", "yield_enter", "yield_exit", "teardown"):
        assert f"`{phase}`" in text
    for name in ("setup_for_execution", "teardown_after_execution", "yield_for_execution"):
        assert name in text and hasattr(host.ConfigurableResource, name)


if __name__ == "__main__":
    print(render_hooks())


def test_the_tests_the_specs_name_exist() -> None:
    """security.md and reliability.md name the tests that hold each statement: they exist."""
    root = SPECS.parent
    for name in ("security.md", "reliability.md"):
        text = (SPECS / name).read_text()
        for path, test in re.findall(r"`(tests/\w+\.py)(?:::(\w+))?`", text):
            assert (root / path).exists(), f"specs/{name} names {path}, which does not exist"
            if test:
                assert f"def {test}(" in (root / path).read_text(), (
                    f"specs/{name} names {path}::{test}, which does not exist"
                )


def test_the_reliability_figures_are_filled_in() -> None:
    text = (SPECS / "reliability.md").read_text()
    for placeholder in ("FIGURES", "BAD_INPUTS", "SECRET_SCENARIOS"):
        assert placeholder not in text, f"specs/reliability.md still says {placeholder}"
    assert "| secrets leaked | 0 |" in text
