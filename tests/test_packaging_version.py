"""``host --version``: host's version, then every installed plugin distribution with its own.

It reads distribution metadata only: no plugin module is imported, whatever the distributions
register (any group, any number of entry points, a broken module, a requirement on another host).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import host
from host._cli import version_text
from host._plugin_api import GROUPS, PLUGIN_API_VERSION
from tests.dists import HOST, Site, imported, make_dist, run

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())


def test_the_command_names_host_and_every_installed_plugin_with_its_version(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "imports.txt"
    make_dist(
        tmp_path / "site",
        "host-plugin-broken",
        "2.3",
        entry_points={"host.resources": {"broken": "broken_mod:Thing"}},
        modules={"broken_mod.py": "raise ImportError('never imported by --version')"},
    )
    done = run([HOST, "--version"], site=tmp_path / "site", env={"HOST_TEST_IMPORTS": str(marker)})
    assert done.returncode == 0 and done.stderr == ""
    first, plugins = done.stdout.splitlines()
    assert first == f"host {host.__version__} (plugin API {PLUGIN_API_VERSION})"
    assert plugins.startswith("plugins: ")
    listed = plugins.removeprefix("plugins: ").split(", ")
    assert "host-plugin-broken-2.3" in listed
    for name in PLUGINS:  # each plugin package of the checkout, as installed
        assert f"{name}-{distribution(name).version}" in listed
    assert listed == sorted(listed)
    assert imported(marker) == []


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", "HOST_ENABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOST_TEST_IMPORTS", str(tmp_path / "imports.txt"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    created = Site(tmp_path / "site")
    yield created
    created.close()


_versions = st.from_regex(r"\A[1-9][0-9]?\.[0-9]{1,2}(\.[0-9])?\Z")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plugins=st.dictionaries(
        st.from_regex(r"\A[a-z]{2,8}\Z"),
        st.tuples(
            _versions,
            st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3),
            st.sampled_from(["", "host>=99", "host<0"]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_every_distribution_with_a_host_entry_point_is_named_and_none_is_imported(
    site: Site, plugins: dict[str, tuple[str, list[str], str]]
) -> None:
    added = []
    for index, (short, (version, groups, requires)) in enumerate(plugins.items()):
        name = f"host-plugin-v{index}-{short}"
        module = f"vprobe_{index}_{short}"
        site.add(
            name,
            version,
            entry_points={g: {f"{short}{n}": f"{module}:X" for n in range(2)} for g in groups},
            modules={f"{module}.py": "X = 1\n"},
            requires=[requires] if requires else [],
        )
        added.append((name, version, bool(requires)))
    text = version_text()
    listed = text.splitlines()[1].removeprefix("plugins: ").split(", ")
    for name, version, incompatible in added:
        wanted = f"{name}-{version} (incompatible)" if incompatible else f"{name}-{version}"
        assert wanted in listed, text
    assert not [m for m in sys.modules if m.startswith("vprobe_")]
    assert imported(Path(str(site.path.parent / "imports.txt"))) == []
    site.close()
    for dist_info in site.path.glob("*.dist-info"):
        shutil.rmtree(dist_info)
    for stale in site.path.glob("*.py"):
        stale.unlink()
