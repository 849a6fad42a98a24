"""The listing cache (``host._discovery_cache``) never gives a wrong answer, and never an error.

A complete listing is kept between processes while its fingerprint (``sys.path``, the
distributions' metadata files) is unchanged. These tests change real installed distributions
(``tests.dists``) between two listings, in two real processes and, for many sequences of
changes, in this process (``reset_discovery`` forgets everything a process holds, so the next
listing starts as a new process does), and compare with a listing made without the cache. Every
test points the cache at its own directory (``XDG_CACHE_HOME``); the whole run's default is a
directory of the run (``tests/conftest.py``), never the real ``~/.cache/host``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import _discovery_cache, _discovery_records
from host._discovery import CACHE_ENV, RESOURCES_GROUP, discover_plugins, reset_discovery
from tests.dists import HOST, make_dist, python, run

#: Lists the ``gc.*`` entry points in a fresh interpreter, and how many distributions' metadata
#: it read (none: the listing came from the cache). Files the test wrote just before count as
#: settled (``SETTLE_SECONDS = 0``): the next change is made after this process has ended,
#: far more than a file-system clock tick later.
LIST = """
import json
import host._discovery_cache as cache
import host._discovery_records as records
cache.SETTLE_SECONDS = 0.0
read = []
original = records.describe_distribution
records.describe_distribution = lambda dist: read.append(1) or original(dist)
from host._discovery import discover_plugins
listed = {
    f"{i.group} {i.name}": [i.distribution, i.version, i.value, i.status]
    for i in discover_plugins() if i.name.startswith("gc.")
}
print(json.dumps({"listed": listed, "metadata_read": len(read)}))
"""


def thing(name: str) -> dict[str, dict[str, str]]:
    return {RESOURCES_GROUP: {name: "gc_mod:Thing"}}


def in_a_new_process(site: Path, cache_home: Path) -> dict[str, Any]:
    result: dict[str, Any] = python(LIST, site=site, env={"XDG_CACHE_HOME": str(cache_home)})
    return result


def test_installs_upgrades_and_removals_between_processes_are_seen(tmp_path: Path) -> None:
    site, home = tmp_path / "site", tmp_path / "cache"
    make_dist(site, "gc-a", "1.0", entry_points=thing("gc.a"))
    first = in_a_new_process(site, home)
    assert first["listed"] == {
        f"{RESOURCES_GROUP} gc.a": ["gc-a", "1.0", "gc_mod:Thing", "ok"]
    }
    assert first["metadata_read"] > 0
    assert len(list((home / "host" / "discovery").glob("*.json"))) == 1
    # Nothing changed: the next process reads the kept listing, and no metadata at all.
    assert in_a_new_process(site, home) == {**first, "metadata_read": 0}

    shutil.rmtree(site / "gc_a-1.0.dist-info")  # upgrade
    make_dist(site, "gc-a", "2.0", entry_points=thing("gc.a"))
    assert in_a_new_process(site, home)["listed"][f"{RESOURCES_GROUP} gc.a"][1] == "2.0"

    make_dist(site, "gc-b", "1.0", entry_points=thing("gc.b"))  # install
    assert set(in_a_new_process(site, home)["listed"]) == {
        f"{RESOURCES_GROUP} gc.a", f"{RESOURCES_GROUP} gc.b"
    }

    shutil.rmtree(site / "gc_a-2.0.dist-info")  # uninstall
    assert set(in_a_new_process(site, home)["listed"]) == {f"{RESOURCES_GROUP} gc.b"}

    # Reinstalled at the same version, now requiring another host: same directory name.
    shutil.rmtree(site / "gc_b-1.0.dist-info")
    make_dist(site, "gc-b", "1.0", entry_points=thing("gc.b"), requires=["host>=99"])
    later = in_a_new_process(site, home)
    assert later["listed"][f"{RESOURCES_GROUP} gc.b"][3] == "incompatible"
    assert in_a_new_process(site, home) == {**later, "metadata_read": 0}


def test_edits_in_place_of_the_same_size_between_processes_are_seen(tmp_path: Path) -> None:
    site, home = tmp_path / "site", tmp_path / "cache"
    dist = make_dist(site, "gc-e", "1.0", entry_points=thing("gc.aa"))
    before = in_a_new_process(site, home)
    assert in_a_new_process(site, home) == {**before, "metadata_read": 0}

    entry_points = dist / "entry_points.txt"
    edited = entry_points.read_text().replace("gc.aa", "gc.zz")
    entry_points.write_text(edited)  # same size, same file
    after = in_a_new_process(site, home)
    assert set(after["listed"]) == {f"{RESOURCES_GROUP} gc.zz"}
    assert in_a_new_process(site, home) == {**after, "metadata_read": 0}

    metadata = dist / "METADATA"
    metadata.write_text(metadata.read_text().replace("Version: 1.0", "Version: 1.1"))
    assert in_a_new_process(site, home)["listed"][f"{RESOURCES_GROUP} gc.zz"][1] == "1.1"


def _unusable_cache_home(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "no" / "such" / "directory"
    if kind == "a file":
        path = tmp_path / "cache-is-a-file"
        path.write_text("not a directory\n")
        return path
    path = tmp_path / "read-only"
    (path / "host" / "discovery").mkdir(parents=True)
    for directory in (path / "host" / "discovery", path / "host", path):
        directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return path


@pytest.mark.parametrize("kind", ["missing", "a file", "read-only"])
def test_a_cache_directory_that_cannot_be_used_is_no_error_and_no_warning(
    tmp_path: Path, kind: str
) -> None:
    site = tmp_path / "site"
    make_dist(site, "gc-r", "1.0", entry_points=thing("gc.r"))
    home = _unusable_cache_home(tmp_path, kind)
    try:
        for _ in range(2):  # the second process would read what the first kept, if anything
            env = {"XDG_CACHE_HOME": str(home)}
            done = run([sys.executable, "-c", LIST], site=site, env=env)
            assert (done.returncode, done.stderr) == (0, "")
            assert list(json.loads(done.stdout)["listed"]) == [f"{RESOURCES_GROUP} gc.r"]
            done = run([HOST, "plugins"], site=site, env=env)
            assert (done.returncode, done.stderr) == (0, "")
            assert "gc.r" in done.stdout
    finally:  # let pytest remove it
        for path in (home, *home.rglob("*")) if home.is_dir() else ():
            if path.is_dir():
                path.chmod(stat.S_IRWXU)


# -- in this process: the cache against a listing made without it -------------------------------


def _listing() -> list[dict[str, Any]]:
    return [info.as_dict() for info in discover_plugins()]


@pytest.fixture
def metadata_reads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every distribution whose metadata is read (none when a listing comes from the cache)."""
    reads: list[object] = []
    original = _discovery_records.describe_distribution

    def counted(dist: Any) -> _discovery_records.Described:
        reads.append(dist)
        return original(dist)

    monkeypatch.setattr(_discovery_records, "describe_distribution", counted)
    return reads


@pytest.fixture
def in_process_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site on ``sys.path`` of this process; the cache in ``tmp_path``; a clean scan after."""
    for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", "HOST_ENABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    (tmp_path / "site").mkdir()
    reset_discovery()
    yield tmp_path / "site"
    reset_discovery()


def fresh(*, cache: bool = True) -> list[dict[str, Any]]:
    """A listing as a new process makes it (with or without the cache)."""
    reset_discovery()
    with pytest.MonkeyPatch.context() as patch:
        if not cache:
            patch.setenv(CACHE_ENV, "0")
        return _listing()


def test_a_listing_is_not_kept_while_its_files_are_fresh(
    in_process_site: Path, tmp_path: Path
) -> None:
    make_dist(in_process_site, "gc-fresh", entry_points=thing("gc.fresh"))
    assert any(info["name"] == "gc.fresh" for info in fresh())
    assert not list((tmp_path / "cache").rglob("*.json"))  # within SETTLE_SECONDS: not kept


def test_the_cache_can_be_switched_off(
    in_process_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_discovery_cache, "SETTLE_SECONDS", 0.0)
    make_dist(in_process_site, "gc-off", entry_points=thing("gc.off"))
    assert any(info["name"] == "gc.off" for info in fresh(cache=False))
    assert not (tmp_path / "cache").exists()


NAMES = ("gc-a", "gc-b", "gc-c")
VERSIONS = ("1.0", "1.1", "2.0")  # the same size: an upgrade in place keeps the file's size
#: (operation, distribution, version or entry-point name)
OPERATIONS = st.tuples(
    st.sampled_from(["install", "remove", "version in place", "rename entry point", "requires"]),
    st.sampled_from(NAMES),
    st.sampled_from(VERSIONS),
)


def _apply(site: Path, operation: tuple[str, str, str]) -> None:
    kind, name, version = operation
    installed = sorted(site.glob(f"{name.replace('-', '_')}-*.dist-info"))
    if kind == "install" or not installed:
        for old in installed:
            shutil.rmtree(old)
        make_dist(site, name, version, entry_points=thing(f"gc.{name[-1]}{version[-1]}"))
        return
    dist = installed[0]
    metadata, entry_points = dist / "METADATA", dist / "entry_points.txt"
    if kind == "remove":
        shutil.rmtree(dist)
    elif kind == "version in place":
        text = metadata.read_text()
        current = text.split("\nVersion: ", 1)[1][:3]
        metadata.write_text(text.replace(f"\nVersion: {current}", f"\nVersion: {version}"))
    elif kind == "rename entry point":
        text = entry_points.read_text()
        entry_points.write_text(text.replace("gc.", "gc.x", 1).replace(" = ", "= ", 1))
    else:  # requires: toggle a requirement that excludes this host
        text = metadata.read_text()
        line = "Requires-Dist: host>=99\n"
        metadata.write_text(
            text.replace(line, "") if line in text else text.replace("\n\n", f"\n{line}\n", 1)
        )


@settings(max_examples=12, deadline=None)
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=4))
def test_the_cache_agrees_with_a_listing_without_it_after_any_changes(
    operations: list[tuple[str, str, str]],
) -> None:
    _changes_agree(operations)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=8))
def test_the_cache_agrees_with_a_listing_without_it_after_any_changes_slow(
    operations: list[tuple[str, str, str]],
) -> None:
    _changes_agree(operations)


def _changes_agree(operations: list[tuple[str, str, str]]) -> None:
    """After each change: the cached listing is the uncached one, and then read from the cache.

    The settling time is shortened to 50 ms (the file-system clock ticks every 1-10 ms) and
    each change is given 60 ms to settle, so that listings are kept and then used.
    """
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        site = Path(tmp, "site")
        site.mkdir()
        for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", CACHE_ENV):
            patch.delenv(name, raising=False)
        patch.setenv("XDG_CACHE_HOME", str(Path(tmp, "cache")))
        patch.syspath_prepend(str(site))
        patch.setattr(_discovery_cache, "SETTLE_SECONDS", 0.05)
        reads: list[object] = []
        original = _discovery_records.describe_distribution
        patch.setattr(
            _discovery_records,
            "describe_distribution",
            lambda dist: reads.append(dist) or original(dist),
        )
        try:
            for operation in operations:
                _apply(site, operation)
                time.sleep(0.06)
                expected = fresh(cache=False)
                assert fresh() == expected, operation  # scanned again (or kept: unchanged)
                reads.clear()
                assert fresh() == expected, operation  # from the cache
                assert reads == [], operation
        finally:
            reset_discovery()


# -- a cache file that is not a listing --------------------------------------------------------

CORRUPT = st.one_of(
    st.binary(max_size=300),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=0, max_value=10_000).map(lambda cut: ("cut", cut)),
    st.sampled_from(["status", "index", "name", "entries", "format"]).map(
        lambda field: ("field", field)
    ),
)


def _corrupted(valid: bytes, how: Any) -> bytes:
    if isinstance(how, bytes):
        return how
    kind, detail = how
    if kind == "cut":
        return valid[: detail % max(len(valid), 1)]
    data = json.loads(valid)
    if detail == "status":
        data["sources"][0][3] = "fine"
    elif detail == "index":
        data["entries"][0][3] = len(data["sources"]) + 5
    elif detail == "name":
        data["entries"][0][1] = 12
    elif detail == "entries":
        data["entries"] = {"not": "a list"}
    else:
        data["format"] = "other"
    return json.dumps(data).encode()


@settings(max_examples=40, deadline=None)
@given(how=CORRUPT)
def test_a_corrupt_cache_file_is_ignored_and_rewritten(how: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        site, cache = Path(tmp, "site"), Path(tmp, "cache")
        for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", CACHE_ENV):
            patch.delenv(name, raising=False)
        patch.setenv("XDG_CACHE_HOME", str(cache))
        patch.syspath_prepend(str(site))
        # Nothing is edited after the site is written: no clock tick to wait for.
        patch.setattr(_discovery_cache, "SETTLE_SECONDS", 0.0)
        make_dist(site, "gc-c", entry_points=thing("gc.c"))
        try:
            expected = fresh(cache=False)
            assert fresh() == expected
            (kept,) = (cache / "host" / "discovery").glob("*.json")
            valid = kept.read_bytes()
            kept.write_bytes(_corrupted(valid, how))
            assert fresh() == expected  # ignored: scanned again
            assert json.loads(kept.read_bytes())["fingerprint"] == json.loads(valid)["fingerprint"]
        finally:
            reset_discovery()


def test_a_cache_file_others_can_write_is_not_used(
    in_process_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    metadata_reads: list[object],
) -> None:
    monkeypatch.setattr(_discovery_cache, "SETTLE_SECONDS", 0.0)
    make_dist(in_process_site, "gc-w", entry_points=thing("gc.w"))
    expected = fresh()
    (kept,) = (tmp_path / "cache" / "host" / "discovery").glob("*.json")
    metadata_reads.clear()
    assert fresh() == expected
    assert metadata_reads == []  # the user's own file: used
    os.chmod(kept, 0o666)
    assert fresh() == expected
    assert metadata_reads  # writable by others: not used, scanned again and rewritten
    assert stat.S_IMODE(kept.stat().st_mode) & 0o022 == 0
