"""The README: its example runs as written, its links resolve, it says how to install.

The example runs in a fresh interpreter from a folder outside the checkout, through
``tests/readme_example.py`` (the same runner ``.ci/wheels`` uses with the installed wheels).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUNNER = ROOT / "tests" / "readme_example.py"


def _run_example(readme: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    with RUNNER.open(encoding="utf-8") as runner:
        return subprocess.run(
            [sys.executable, "-", str(readme)],
            stdin=runner,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def test_the_example_runs_as_written(tmp_path: Path) -> None:
    done = _run_example(README, tmp_path)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_sessions_example_runs_after_the_first(tmp_path: Path) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)
    (sessions,) = [block for block in blocks if "host.Session(" in block]
    script = tmp_path / "example.py"  # a script: the session's workers import it
    script.write_text(f"{blocks[0]}\n{sessions}", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("token = fetch_token()", "NameError"),  # what the README's example once did
        ("assert 1 == 2", "AssertionError"),
    ],
)
def test_a_broken_example_fails_the_runner(tmp_path: Path, line: str, error: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n```python\nimport host\n{line}\n```\n", encoding="utf-8")
    done = _run_example(readme, tmp_path)
    assert done.returncode != 0 and error in done.stderr


def test_every_relative_link_resolves() -> None:
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links, "the README links to the guide and the docs"
    for link in links:
        if not re.match(r"[a-z]+://", link):
            assert (ROOT / link).exists(), f"README.md links to {link}, which does not exist"


def test_it_says_how_to_install_and_where_the_guide_and_docs_are() -> None:
    text = README.read_text(encoding="utf-8")
    for needed in [
        "## Install",
        "pip install dist/host-0.1.0-py3-none-any.whl",  # from a wheel
        "pip install ./ ",  # from a path
        "pip install host-plugin-foo",  # a published plugin
        "(specs/authors-guide.md)",
        "## Documentation",
        "mkdocs build --strict",
    ]:
        assert needed in text, needed
    import host

    assert f"host-{host.__version__}-py3-none-any.whl" in text
