"""The docs site (``mkdocs.yml``): built from ``specs/`` and the docstrings, strict.

Cheap checks run by default: every spec and every page under ``docs/`` is in the navigation, and
every ``::: object`` a page renders exists. The built site is checked under ``-m slow`` (CI's
``.ci/docs`` builds it with ``--strict`` and passes its folder as ``HOST_DOCS_SITE``; otherwise
the test builds it): each public name of ``host`` and of the executor kit, each hook, and the
run-config schema generated from the code appear on their pages.
"""

from __future__ import annotations

import html
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import host
import host.executors
from host import _hookspecs
from host._config_schema import run_config_schema

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _config() -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return loaded


def _nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def test_the_site_is_strict_and_every_spec_and_page_is_in_the_navigation() -> None:
    config = _config()
    assert config["strict"] is True
    pages = _nav_pages(config["nav"])
    assert len(pages) == len(set(pages))
    specs = {p.name for p in (ROOT / "specs").glob("*.md")}
    written = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    generated = {"reference/run-config-schema.md"}
    assert set(pages) == specs | written | generated


def test_every_rendered_object_exists() -> None:
    pages = "".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    targets = re.findall(r"^::: ([\w.]+)$", pages, re.MULTILINE)
    assert {"host", "host.executors", "host._hookspecs", "host.testing"} <= set(targets)
    for target in targets:
        module, _, attribute = target.rpartition(".")
        try:
            importlib.import_module(target)
        except ModuleNotFoundError:
            assert hasattr(importlib.import_module(module), attribute), target


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("HOST_DOCS_SITE")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _anchors(page: Path, prefix: str) -> set[str]:
    text = page.read_text(encoding="utf-8")
    return set(re.findall('id="' + re.escape(prefix) + r'\.(\w+)"', text))


@pytest.mark.slow
def test_every_spec_is_a_page(site: Path) -> None:
    for spec in (ROOT / "specs").glob("*.md"):
        assert (site / spec.stem / "index.html").is_file(), spec.name


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "page"), [(host, "reference/host"), (host.executors, "reference/executors")]
)
def test_every_public_name_is_rendered_from_the_code(site: Path, module: Any, page: str) -> None:
    shown = _anchors(site / page / "index.html", module.__name__)
    public = {name for name in module.__all__ if not name.startswith("__")}
    assert public - shown == set()


@pytest.mark.slow
def test_every_hook_is_rendered_from_the_code(site: Path) -> None:
    text = (site / "reference" / "hooks" / "index.html").read_text(encoding="utf-8")
    for spec in (_hookspecs.ResourceSpec, _hookspecs.RunSpec):
        for name in vars(spec):
            if name.startswith("host_"):
                assert f'id="host._hookspecs.{spec.__name__}.{name}"' in text, name


@pytest.mark.slow
def test_the_run_config_schema_page_is_the_codes_schema(site: Path) -> None:
    text = (site / "reference" / "run-config-schema" / "index.html").read_text(encoding="utf-8")
    (block,) = re.findall(r'<code class="language-json">(.*?)</code>', text, re.DOTALL)
    assert json.loads(html.unescape(re.sub(r"<[^>]+>", "", block))) == run_config_schema()
