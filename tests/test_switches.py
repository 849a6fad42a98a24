"""Switching one distribution's entry point off when another distribution shares its name.

Real generated distributions on ``sys.path`` (``tests/dists.py``). Two distributions register
the same entry-point name, one broken: the hint printed for the broken one must name a switch
that switches off that one only (``DIST:NAME``), and every spelling of a switch must match
exactly what it says, in every group.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import PluginError
from host._discovery import (
    PLUGINS_GROUP,
    RESOURCES_GROUP,
    PluginSwitches,
    discover_plugins,
    load_entry_point,
    lookup,
    use_switches,
)
from host._switches import matches, qualified
from tests.dists import Site

GOOD = """
from host import ConfigurableResource

class Thing(ConfigurableResource):
    size: int = 1
"""

HOOKS = """
from host import hookimpl

@hookimpl
def host_run_start(run_id, executor, assets):
    pass
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", "HOST_ENABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    created = Site(tmp_path / "site")
    yield created
    created.close()


def _statuses() -> dict[tuple[str, str], str]:
    return {
        (info.group, info.distribution or ""): info.status
        for info in discover_plugins()
        if info.name == "gen_redis"
    }


@pytest.mark.parametrize("other_group", [RESOURCES_GROUP, PLUGINS_GROUP])
def test_the_hint_for_a_broken_entry_point_switches_off_that_one_only(
    site: Site, monkeypatch: pytest.MonkeyPatch, other_group: str
) -> None:
    site.add(
        "gen-broken-redis",
        entry_points={RESOURCES_GROUP: {"gen_redis": "gen_broken_redis:Thing"}},
        modules={"gen_broken_redis.py": "raise ImportError('no module named redis_driver')\n"},
    )
    value = "gen_good_redis:Thing" if other_group == RESOURCES_GROUP else "gen_good_redis"
    site.add(
        "gen-good-redis",
        entry_points={other_group: {"gen_redis": value}},
        modules={"gen_good_redis.py": GOOD + HOOKS},
    )
    broken = lookup(RESOURCES_GROUP, "gen_redis", distribution="gen-broken-redis")
    assert broken is not None
    with pytest.raises(PluginError) as caught:
        load_entry_point(broken)
    assert "HOST_DISABLE_PLUGINS=gen-broken-redis:gen_redis" in str(caught.value)

    # The hint, as printed, switches off the broken one and nothing else.
    monkeypatch.setenv("HOST_DISABLE_PLUGINS", "gen-broken-redis:gen_redis")
    statuses = _statuses()
    assert statuses[(RESOURCES_GROUP, "gen-broken-redis")] == "disabled"
    assert statuses[(other_group, "gen-good-redis")] == "ok"
    good = lookup(other_group, "gen_redis")
    assert good is not None and good.distribution == "gen-good-redis"
    load_entry_point(good)


def test_a_name_shared_by_no_other_distribution_is_hinted_bare(site: Site) -> None:
    site.add(
        "gen-lonely",
        entry_points={RESOURCES_GROUP: {"gen_lonely": "gen_lonely:Thing"}},
        modules={"gen_lonely.py": "raise RuntimeError('broken')\n"},
    )
    info = lookup(RESOURCES_GROUP, "gen_lonely")
    assert info is not None
    with pytest.raises(PluginError, match=r"HOST_DISABLE_PLUGINS=gen_lonely\."):
        load_entry_point(info)


def test_a_conflict_names_the_qualified_switch_of_each_distribution(site: Site) -> None:
    for dist in ("gen-first", "gen-second"):
        module = dist.replace("-", "_")
        site.add(
            dist,
            entry_points={RESOURCES_GROUP: {"gen_dup": f"{module}:Thing"}},
            modules={f"{module}.py": GOOD},
        )
    with pytest.raises(PluginError) as caught:
        lookup(RESOURCES_GROUP, "gen_dup")
    assert "gen-first:gen_dup or gen-second:gen_dup" in str(caught.value)
    with use_switches(PluginSwitches(disable=frozenset({"gen-second:gen_dup"}))):
        alone = lookup(RESOURCES_GROUP, "gen_dup")
        assert alone is not None and alone.distribution == "gen-first"


def test_a_plugin_that_exits_at_import_is_broken_not_the_end_of_the_process(
    site: Site,
) -> None:
    site.add(
        "gen-exits",
        entry_points={RESOURCES_GROUP: {"gen_exits": "gen_exits:Thing"}},
        modules={"gen_exits.py": "import sys\nsys.exit(0)\n"},
    )
    info = lookup(RESOURCES_GROUP, "gen_exits")
    assert info is not None
    with pytest.raises(PluginError, match="failed to import: SystemExit") as caught:
        load_entry_point(info)
    assert isinstance(caught.value.__cause__, SystemExit)


_names = st.sampled_from(["redis", "gen_redis", "db", "sqlite"])
_dists = st.sampled_from(["host-plugin-redis", "acme-redis", "Host_Plugin.Redis"])


@settings(max_examples=300, deadline=None)
@given(
    switch_name=_names,
    switch_dist=_dists,
    name=_names,
    dist=st.one_of(st.none(), _dists),
    form=st.sampled_from(["name", "dist", "qualified"]),
)
def test_every_spelling_of_a_switch_matches_exactly_what_it_names(
    switch_name: str, switch_dist: str, name: str, dist: str | None, form: str
) -> None:
    def same(a: str, b: str | None) -> bool:
        return b is not None and a.replace("_", "-").replace(".", "-").lower() == (
            b.replace("_", "-").replace(".", "-").lower()
        )

    if form == "name":
        switch, expected = switch_name, switch_name == name
    elif form == "dist":
        switch, expected = switch_dist, same(switch_dist, dist)
    else:
        switch = qualified(switch_name, switch_dist)
        expected = switch_name == name and same(switch_dist, dist)
    assert matches(switch, name, dist) is expected
    # Spaces around the parts, as in "a, b" lists, change nothing.
    if form == "qualified":
        spaced = switch.replace(":", " : ")
        assert matches(spaced, name, dist) is expected


def test_a_plugin_whose_import_error_cannot_be_printed_is_broken_not_a_crash(
    site: Site,
) -> None:
    site.add(
        "gen-mute",
        entry_points={RESOURCES_GROUP: {"gen_mute": "gen_mute:Thing"}},
        modules={
            "gen_mute.py": (
                "class Mute(Exception):\n"
                "    def __str__(self):\n"
                "        raise ValueError('no words')\n"
                "raise Mute()\n"
            )
        },
    )
    info = lookup(RESOURCES_GROUP, "gen_mute")
    assert info is not None
    with pytest.raises(PluginError, match=r"failed to import: Mute: <unprintable Mute>"):
        load_entry_point(info)
    assert {i.name: i.status for i in discover_plugins() if i.name == "gen_mute"}
