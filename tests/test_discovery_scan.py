"""What the discovery scan reads, and when, against real installed distributions.

The scan takes ``importlib_metadata.entry_points()`` and must find exactly the same host entry
points: the first distribution of a name on ``sys.path`` wins, one with metadata before one
without, and a file the library refuses hides nothing else. A
distribution's ``METADATA`` is read only when one of its entry points is listed or looked up;
name and version always come from the metadata, never from the ``*.dist-info`` directory name.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import importlib_metadata
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import host
from host import PluginError, _discovery, _discovery_listing
from host._discovery import (
    EXECUTORS_GROUP,
    GROUPS,
    PLUGINS_GROUP,
    RESOURCES_GROUP,
    check_entry_point,
    discover_plugins,
    load_entry_point,
    lookup,
    names_in,
    reset_discovery,
)
from host._plugin_api import normalize_distribution
from host._plugins import hook_plugin_problems
from tests.dists import Site, imported

RESOURCE_MODULE = """
from host import ConfigurableResource

class Thing(ConfigurableResource):
    size: int = 1
"""


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Site, Site]]:
    """Two sites on sys.path, the first one first; no HOST_ switches from outside."""
    for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", "HOST_ENABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOST_TEST_IMPORTS", str(tmp_path / "imports.txt"))
    monkeypatch.syspath_prepend(str(tmp_path / "second"))
    monkeypatch.syspath_prepend(str(tmp_path / "first"))
    first, second = Site(tmp_path / "first"), Site(tmp_path / "second")
    yield first, second
    first.close()
    second.close(tmp_path)


def listed(prefix: str = "gen") -> dict[tuple[str, str], host.PluginInfo]:
    return {(i.group, i.name): i for i in discover_plugins() if i.name.startswith(prefix)}


def test_the_scan_finds_exactly_what_importlib_metadata_entry_points_finds(
    sites: tuple[Site, Site],
) -> None:
    first, second = sites
    first.add(
        "gen-plain",
        "1.2",
        entry_points={
            RESOURCES_GROUP: {"gen.plain": "gen_plain:Thing"},
            "console_scripts": {"gen-plain": "gen_plain:main"},
            "host.other": {"gen.other": "gen_plain:Other"},
        },
    )
    first.add("gen-shadow", "2.0", entry_points={RESOURCES_GROUP: {"gen.shadow": "new:Thing"}})
    second.add("gen-shadow", "1.0", entry_points={RESOURCES_GROUP: {"gen.shadow": "old:Thing"}})
    second.add("gen-later", entry_points={PLUGINS_GROUP: {"gen_later": "gen_later"}})
    odd = first.add("gen-odd")
    (odd / "entry_points.txt").write_bytes(
        b"# a comment\r\n[console_scripts]\r\nx = y:z\r\n\r\n"
        b"[host.executors]\r\n  gen_exec  =  gen_odd.sub:Named [extra]  \r\n"
        b"# gen_commented = no:Thing\r\n\r\n[host.plugins]\r\ngen_hooks=gen_odd.hooks\r\n"
    )
    reset_discovery()

    expected = {
        (ep.group, ep.name, ep.value, normalize_distribution(ep.dist.name))
        for ep in importlib_metadata.entry_points()
        if ep.group in GROUPS and ep.name.startswith("gen") and ep.dist is not None
    }
    found = {
        (i.group, i.name, i.value, normalize_distribution(i.distribution or ""))
        for i in discover_plugins()
        if i.name.startswith("gen")
    }
    assert found == expected
    assert found == {
        (RESOURCES_GROUP, "gen.plain", "gen_plain:Thing", "gen-plain"),
        (RESOURCES_GROUP, "gen.shadow", "new:Thing", "gen-shadow"),  # the first on sys.path
        (PLUGINS_GROUP, "gen_later", "gen_later", "gen-later"),
        (EXECUTORS_GROUP, "gen_exec", "gen_odd.sub:Named [extra]", "gen-odd"),
        (PLUGINS_GROUP, "gen_hooks", "gen_odd.hooks", "gen-odd"),
    }
    shadow = listed()[(RESOURCES_GROUP, "gen.shadow")]
    assert (shadow.version, shadow.status) == ("2.0", "ok")  # one of them: no conflict


def test_a_distribution_without_metadata_does_not_hide_a_later_one(
    sites: tuple[Site, Site],
) -> None:
    first, second = sites
    empty = first.path / "gen_hidden-9.0.dist-info"  # what a half-finished uninstall leaves
    empty.mkdir(parents=True)
    (empty / "entry_points.txt").write_text("[host.resources]\ngen.hidden = stale:Thing\n")
    second.add("gen-hidden", "1.0", entry_points={RESOURCES_GROUP: {"gen.hidden": "real:Thing"}})
    hidden = listed()[(RESOURCES_GROUP, "gen.hidden")]
    assert (hidden.value, hidden.distribution) == ("real:Thing", "gen-hidden")
    assert hidden.version == "1.0"


def test_name_and_version_come_from_metadata_not_the_directory_name(
    sites: tuple[Site, Site],
) -> None:
    first, _ = sites
    renamed = first.add("gen-renamed", "3.1", entry_points={RESOURCES_GROUP: {"gen.r": "m:T"}})
    renamed.rename(renamed.with_name("gen_renamed-0.0.0.dist-info"))  # disagrees with METADATA
    unversioned = first.add("Gen.Bare", "0.7", entry_points={RESOURCES_GROUP: {"gen.b": "m:T"}})
    unversioned.rename(unversioned.with_name("genbare.dist-info"))  # no version: does not parse
    reset_discovery()
    origins = {name: info.origin for (_, name), info in listed().items()}
    assert origins == {"gen.r": "gen-renamed 3.1", "gen.b": "Gen.Bare 0.7"}


def test_an_egg_info_distribution_is_read_from_pkg_info_and_requires_txt(
    sites: tuple[Site, Site], tmp_path: Path
) -> None:
    first, _ = sites
    egg = first.path / "gen_egg.egg-info"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: gen-egg\nVersion: 0.5\n")
    (egg / "entry_points.txt").write_text("[host.resources]\ngen.egg = gen_egg:Thing\n")
    (egg / "requires.txt").write_text("pydantic>=2\nhost>=99\n\n[docs]\nhost<0.0.1\n")
    (first.path / "gen_egg.py").write_text(RESOURCE_MODULE)
    reset_discovery()
    egg_info = listed()[(RESOURCES_GROUP, "gen.egg")]
    assert (egg_info.distribution, egg_info.version) == ("gen-egg", "0.5")
    assert (egg_info.status, egg_info.requires_host) == ("incompatible", "host>=99")
    assert imported(tmp_path / "imports.txt") == []


def test_a_line_without_equals_sign_is_skipped_and_the_others_are_listed(
    sites: tuple[Site, Site],
) -> None:
    first, _ = sites
    dist_info = first.add("gen-sloppy")
    (dist_info / "entry_points.txt").write_text(
        "[host.resources]\nnot an entry point\ngen.fine = gen_sloppy:Thing\n"
    )
    reset_discovery()
    assert list(listed()) == [(RESOURCES_GROUP, "gen.fine")]


def test_looking_up_one_name_reads_only_its_own_distributions_metadata(
    sites: tuple[Site, Site], tmp_path: Path
) -> None:
    first, _ = sites
    first.add(
        "gen-wanted",
        entry_points={RESOURCES_GROUP: {"gen.wanted": "gen_wanted:Thing"}},
        modules={"gen_wanted.py": RESOURCE_MODULE},
    )
    first.add("gen-other", entry_points={RESOURCES_GROUP: {"gen.other": "gen_other:Thing"}})

    def metadata_read() -> dict[str, bool]:
        return {
            entry.name: entry.source.is_described
            for entry in _discovery_listing.scan().entries
            if entry.name.startswith("gen.")
        }

    assert names_in(RESOURCES_GROUP)  # names alone: no metadata
    assert metadata_read() == {"gen.wanted": False, "gen.other": False}
    found = lookup(RESOURCES_GROUP, "gen.wanted")
    assert found is not None
    assert load_entry_point(found).__name__ == "Thing"
    assert metadata_read() == {"gen.wanted": True, "gen.other": False}
    assert listed()[(RESOURCES_GROUP, "gen.other")].distribution == "gen-other"  # listing: all
    assert metadata_read() == {"gen.wanted": True, "gen.other": True}
    assert imported(tmp_path / "imports.txt") == ["gen_wanted"]


def test_an_incompatible_plugin_is_refused_when_looked_up_before_any_listing(
    sites: tuple[Site, Site], tmp_path: Path
) -> None:
    first, _ = sites
    first.add(
        "gen-future",
        "5.0",
        entry_points={
            RESOURCES_GROUP: {"gen.future": "gen_future:Thing"},
            PLUGINS_GROUP: {"gen_future_hooks": "gen_future"},
        },
        requires=["host>=99,<100"],
        modules={"gen_future.py": RESOURCE_MODULE},
    )
    with pytest.raises(PluginError, match=r"gen-future 5\.0\) is not loaded: it requires host>=99"):
        lookup(RESOURCES_GROUP, "gen.future")
    reset_discovery()
    [problem] = [p for p in hook_plugin_problems() if "gen_future_hooks" in p]
    assert "requires host>=99,<100" in problem
    info = listed()[(RESOURCES_GROUP, "gen.future")]
    assert check_entry_point(info).status == "incompatible"
    assert imported(tmp_path / "imports.txt") == []


def test_only_the_metadata_headers_are_read_from_a_long_metadata_file(
    sites: tuple[Site, Site],
) -> None:
    first, _ = sites
    long = first.add(
        "gen-long",
        "4.2",
        entry_points={RESOURCES_GROUP: {"gen.long": "gen_long:Thing"}},
        requires=["host>=99"],
    )
    metadata = (long / "METADATA").read_bytes()
    body = ("Ünïcödé description line\n" * 20_000).encode()  # far more than one read
    (long / "METADATA").write_bytes(metadata + body + b"\xff not UTF-8 at the end\n")
    reset_discovery()
    info = listed()[(RESOURCES_GROUP, "gen.long")]
    assert (info.origin, info.status, info.requires_host) == (
        "gen-long 4.2",
        "incompatible",
        "host>=99",
    )


#: Where a byte that is not UTF-8 goes: in METADATA's headers or body, in entry_points.txt.
PLACES = ["Name", "Version", "Summary", "Requires-Dist", "body", "entry point", "comment"]
NOT_UTF8 = [b"\xff", b"\x80", b"\xc3(", b"\xe9t\xe9", b"\xed\xa0\x80"]


@settings(max_examples=25, deadline=None)
@given(place=st.sampled_from(PLACES), bad=st.sampled_from(NOT_UTF8))
def test_bytes_that_are_not_utf8_in_metadata_are_one_plugins_problem_never_a_crash(
    place: str, bad: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setenv(_discovery.CACHE_ENV, "0")
        patch.syspath_prepend(tmp)
        site = Site(Path(tmp))
        site.add("gen-fine", entry_points={RESOURCES_GROUP: {"gen.fine": "gen_fine:Thing"}})
        dist = site.add("gen-bad", entry_points={RESOURCES_GROUP: {"gen.bad": "gen_bad:Thing"}})
        headers = {
            "Name": b"Name: gen-bad",
            "Version": b"Version: 1.0",
            "Summary": b"Summary: a distribution",
            "Requires-Dist": b"Requires-Dist: pydantic>=2",
        }
        if place in headers:
            headers[place] += b" " + bad
        body = b"A test distribution." + (b" " + bad if place == "body" else b"")
        (dist / "METADATA").write_bytes(
            b"Metadata-Version: 2.1\n" + b"\n".join(headers.values()) + b"\n\n" + body + b"\n"
        )
        name = b"gen.bad" + (b"\xe9" if place == "entry point" else b"")
        comment = b"# " + bad + b"\n" if place == "comment" else b""
        (dist / "entry_points.txt").write_bytes(
            comment + b"[host.resources]\n" + name + b" = gen_bad:Thing\n"
        )
        try:
            reset_discovery()
            found = listed()
            assert found[(RESOURCES_GROUP, "gen.fine")].status == "ok"  # never affects others
            (info,) = [i for key, i in found.items() if key[1].startswith("gen.bad")]
            if place in ("Name", "Version", "Summary", "Requires-Dist"):
                assert info.status == "broken"
                assert info.problem is not None and "METADATA is not UTF-8" in info.problem
                assert "in its headers" in info.problem and "reinstall" in info.problem
                if place != "Name":
                    assert info.distribution == "gen-bad"
            else:  # the description, or entry_points.txt: read with replacement characters
                assert (info.status, info.distribution, info.version) == ("ok", "gen-bad", "1.0")
                assert info.name == ("gen.bad\N{REPLACEMENT CHARACTER}" if place == "entry point"
                                     else "gen.bad")
        finally:
            site.close()
