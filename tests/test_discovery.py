"""Entry-point discovery against real installed distributions (generated dist-info directories).

What is proven here: listing is data and imports nothing; loading imports one entry point; a
broken, wrong-typed, duplicated, disabled or incompatible plugin never stops the others and using
it is a PluginError naming entry point, distribution and version; the scan happens once per
process; hook plugins load into each plugin manager from a per-process cache.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import host
from host import DefinitionError, PluginError, asset, run_assets
from host._discovery import (
    EXECUTORS_GROUP,
    GROUPS,
    PLUGIN_API_VERSION,
    PLUGINS_GROUP,
    RESOURCES_GROUP,
    PluginSwitches,
    check_entry_point,
    discover_plugins,
    load_entry_point,
    lookup,
    use_switches,
)
from host._plugin_api import specifier_contains
from host._plugins import hook_plugin_problems, make_plugin_manager
from host.executors.registry import executor_class
from tests.dists import Site, imported, python

SPECS = Path(__file__).resolve().parent.parent / "specs"

RESOURCE_MODULE = """
from host import ConfigurableResource

class Thing(ConfigurableResource):
    size: int = 1
"""

EXECUTOR_MODULE = """
from host.executors.in_process import InProcessExecutor

class Named(InProcessExecutor):
    name = "gen_exec"
"""

HOOK_MODULE = """
from host import hookimpl

calls = []

@hookimpl
def host_run_start(run_id, executor, assets):
    calls.append(run_id)
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """Generated distributions on sys.path; no HOST_ switches from the outer environment."""
    for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", "HOST_ENABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOST_TEST_IMPORTS", str(tmp_path / "imports.txt"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    created = Site(tmp_path / "site")
    yield created
    created.close()


def mine(prefix: str) -> list[host.PluginInfo]:
    return [info for info in discover_plugins() if info.name.startswith(prefix)]


# -- listing ------------------------------------------------------------------------------------


def test_listing_gives_group_name_distribution_version_and_value(site: Site) -> None:
    site.add(
        "gen-plugins",
        "2.3",
        entry_points={
            RESOURCES_GROUP: {"gen.thing": "gen_res:Thing"},
            EXECUTORS_GROUP: {"gen_exec": "gen_exec:Named"},
            PLUGINS_GROUP: {"gen_hooks": "gen_hooks"},
        },
    )
    listed = {(i.group, i.name): i for i in mine("gen")}
    assert set(listed) == {
        (RESOURCES_GROUP, "gen.thing"),
        (EXECUTORS_GROUP, "gen_exec"),
        (PLUGINS_GROUP, "gen_hooks"),
    }
    thing = listed[(RESOURCES_GROUP, "gen.thing")]
    assert (thing.distribution, thing.version, thing.value, thing.status) == (
        "gen-plugins",
        "2.3",
        "gen_res:Thing",
        "ok",
    )
    assert thing.as_dict()["group"] == RESOURCES_GROUP


def test_listing_and_looking_up_import_no_plugin_code(site: Site, tmp_path: Path) -> None:
    site.add(
        "gen-quiet",
        entry_points={RESOURCES_GROUP: {"gen.quiet": "gen_quiet:Thing"}},
        modules={"gen_quiet.py": RESOURCE_MODULE},
    )
    assert [i.name for i in mine("gen.quiet")] == ["gen.quiet"]
    assert lookup(RESOURCES_GROUP, "gen.quiet") is not None
    assert imported(tmp_path / "imports.txt") == []


def test_loading_imports_only_that_entry_point(tmp_path: Path) -> None:
    site = Site(tmp_path / "site")
    site.add(
        "gen-two",
        entry_points={RESOURCES_GROUP: {"gen.one": "gen_one:Thing", "gen.two": "gen_two:Thing"}},
        modules={"gen_one.py": RESOURCE_MODULE, "gen_two.py": RESOURCE_MODULE},
    )
    loaded = python(
        """
        import json, sys
        from host._discovery import RESOURCES_GROUP, discover_plugins, load_entry_point, lookup
        discover_plugins()
        before = sorted(m for m in sys.modules if m.startswith("gen_"))
        cls = load_entry_point(lookup(RESOURCES_GROUP, "gen.one"))
        after = sorted(m for m in sys.modules if m.startswith("gen_"))
        print(json.dumps([before, after, cls.__name__]))
        """,
        site=site.path,
    )
    assert loaded == [[], ["gen_one"], "Thing"]


# -- broken plugins -----------------------------------------------------------------------------


def test_an_import_error_is_a_plugin_error_and_the_others_still_load(site: Site) -> None:
    site.add(
        "gen-broken",
        "0.4",
        entry_points={RESOURCES_GROUP: {"gen.broken": "gen_broken:Thing"}},
        modules={"gen_broken.py": "raise RuntimeError('the plugin is broken')\n"},
    )
    site.add(
        "gen-fine",
        entry_points={RESOURCES_GROUP: {"gen.fine": "gen_fine:Thing"}},
        modules={"gen_fine.py": RESOURCE_MODULE},
    )
    info = lookup(RESOURCES_GROUP, "gen.broken")
    assert info is not None
    with pytest.raises(PluginError) as caught:
        load_entry_point(info)
    message = str(caught.value)
    for part in ("gen.broken", "gen_broken:Thing", "gen-broken 0.4", "RuntimeError", "broken"):
        assert part in message
    assert isinstance(caught.value.__cause__, RuntimeError)
    fine = lookup(RESOURCES_GROUP, "gen.fine")
    assert fine is not None
    assert load_entry_point(fine).__name__ == "Thing"
    assert check_entry_point(info).status == "broken"
    assert check_entry_point(fine).status == "ok"


def test_a_missing_dependency_names_the_missing_module(site: Site) -> None:
    site.add(
        "gen-needy",
        entry_points={RESOURCES_GROUP: {"gen.needy": "gen_needy:Thing"}},
        modules={"gen_needy.py": "import gen_not_installed_anywhere\n"},
    )
    info = lookup(RESOURCES_GROUP, "gen.needy")
    assert info is not None
    with pytest.raises(PluginError, match="gen_not_installed_anywhere") as caught:
        load_entry_point(info)
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        (RESOURCES_GROUP, "not a host.ConfigurableResource subclass"),
        (EXECUTORS_GROUP, "not a host.Executor subclass"),
        (PLUGINS_GROUP, "no @host.hookimpl function"),
    ],
)
def test_an_object_of_the_wrong_kind_is_a_plugin_error(
    site: Site, group: str, expected: str
) -> None:
    site.add(
        "gen-wrong",
        entry_points={group: {"gen_wrong": "gen_wrong:NotIt"}},
        modules={"gen_wrong.py": "class NotIt:\n    pass\n"},
    )
    info = lookup(group, "gen_wrong")
    assert info is not None
    with pytest.raises(PluginError, match=expected):
        load_entry_point(info)


def test_a_hook_plugin_with_an_unknown_hook_is_broken(site: Site) -> None:
    site.add(
        "gen-typo",
        entry_points={PLUGINS_GROUP: {"gen_typo": "gen_typo"}},
        modules={
            "gen_typo.py": "from host import hookimpl\n\n"
            "@hookimpl\ndef host_run_strat():\n    pass\n"
        },
    )
    [info] = mine("gen_typo")
    checked = check_entry_point(info)
    assert checked.status == "broken"
    assert "host_run_strat" in (checked.problem or "")


# -- duplicates ---------------------------------------------------------------------------------


def test_two_distributions_with_one_name_are_a_conflict_naming_both(site: Site) -> None:
    for dist in ("gen-first", "gen-second"):
        site.add(
            dist,
            entry_points={RESOURCES_GROUP: {"gen.dup": f"{dist.replace('-', '_')}:Thing"}},
            modules={f"{dist.replace('-', '_')}.py": RESOURCE_MODULE},
        )
    listed = mine("gen.dup")
    assert sorted(i.distribution or "" for i in listed) == ["gen-first", "gen-second"]
    assert {i.status for i in listed} == {"conflict"}
    with pytest.raises(PluginError) as caught:
        lookup(RESOURCES_GROUP, "gen.dup")
    assert "gen-first 1.0" in str(caught.value)
    assert "gen-second 1.0" in str(caught.value)

    picked = lookup(RESOURCES_GROUP, "gen.dup", distribution="gen_second")
    assert picked is not None
    assert picked.value == "gen_second:Thing"
    assert load_entry_point(picked).__module__ == "gen_second"

    with use_switches(PluginSwitches(disable=frozenset({"gen-first"}))):
        alone = lookup(RESOURCES_GROUP, "gen.dup")
        assert alone is not None
        assert alone.distribution == "gen-second"
        assert {i.distribution: i.status for i in mine("gen.dup")} == {
            "gen-first": "disabled",
            "gen-second": "ok",
        }


def test_picking_a_distribution_that_does_not_register_the_name(site: Site) -> None:
    site.add("gen-only", entry_points={RESOURCES_GROUP: {"gen.only": "gen_only:Thing"}})
    with pytest.raises(PluginError, match="not registered by distribution 'gen-other'"):
        lookup(RESOURCES_GROUP, "gen.only", distribution="gen-other")


# -- switching off ------------------------------------------------------------------------------


def test_a_disabled_plugin_is_never_imported(tmp_path: Path) -> None:
    site = Site(tmp_path / "site")
    site.add(
        "gen-off",
        entry_points={
            RESOURCES_GROUP: {"gen.off": "gen_off_res:Thing"},
            PLUGINS_GROUP: {"gen_off_hooks": "gen_off_hooks"},
        },
        modules={"gen_off_res.py": RESOURCE_MODULE, "gen_off_hooks.py": HOOK_MODULE},
    )
    result = python(
        """
        import json, sys
        from host import asset, run_assets
        from host._discovery import RESOURCES_GROUP, discover_plugins, lookup
        from host._errors import PluginError

        statuses = {i.name: i.status for i in discover_plugins() if i.name.startswith("gen")}
        try:
            lookup(RESOURCES_GROUP, "gen.off")
            error = None
        except PluginError as exc:
            error = str(exc)

        @asset
        def one():
            return 1

        run_assets([one])
        print(json.dumps([statuses, error, sorted(m for m in sys.modules if m.startswith("gen_"))]))
        """,
        site=site.path,
        env={"HOST_DISABLE_PLUGINS": "gen.off, gen_off_hooks"},
    )
    statuses, error, modules = result
    assert statuses == {"gen.off": "disabled", "gen_off_hooks": "disabled"}
    assert "HOST_DISABLE_PLUGINS" in error
    assert modules == []


def test_disabling_a_distribution_disables_all_its_entry_points(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add(
        "gen-whole",
        entry_points={
            RESOURCES_GROUP: {"gen.w1": "gen_whole:Thing"},
            EXECUTORS_GROUP: {"gen_w2": "gen_whole:Named"},
        },
    )
    monkeypatch.setenv("HOST_DISABLE_PLUGINS", "Gen_Whole")
    assert {i.status for i in mine("gen")} == {"disabled"}
    with pytest.raises(PluginError, match="disabled"):
        executor_class("gen_w2")


def test_autoload_off_loads_no_hook_plugin_unless_enabled(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add(
        "gen-hooks",
        entry_points={PLUGINS_GROUP: {"gen_hooks_a": "gen_hooks_a", "gen_hooks_b": "gen_hooks_b"}},
        modules={"gen_hooks_a.py": HOOK_MODULE, "gen_hooks_b.py": HOOK_MODULE},
    )

    def loaded() -> list[str]:
        names = [name for name, _ in make_plugin_manager().list_name_plugin()]
        return sorted(name for name in names if name.startswith("gen"))

    assert loaded() == ["gen_hooks_a", "gen_hooks_b"]
    monkeypatch.setenv("HOST_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert loaded() == []
    monkeypatch.setenv("HOST_ENABLE_PLUGINS", "gen_hooks_b")
    assert loaded() == ["gen_hooks_b"]
    with use_switches(PluginSwitches(autoload=False, enable=frozenset({"gen_hooks_a"}))):
        assert loaded() == ["gen_hooks_a"]


# -- hook plugins in runs -----------------------------------------------------------------------


def test_installed_hook_plugins_take_part_in_runs(site: Site) -> None:
    site.add(
        "gen-observer",
        entry_points={PLUGINS_GROUP: {"gen_observer": "gen_observer"}},
        modules={"gen_observer.py": HOOK_MODULE},
    )

    @asset
    def one() -> int:
        return 1

    result = run_assets([one])
    module = load_entry_point(lookup(PLUGINS_GROUP, "gen_observer"))  # type: ignore[arg-type]
    assert module.calls == [result.run_id]
    with use_switches(PluginSwitches(disable=frozenset({"gen_observer"}))):
        run_assets([one])
    assert module.calls == [result.run_id]


def test_a_broken_hook_plugin_does_not_stop_the_others_or_the_run(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site.add(
        "gen-bad-hooks",
        "0.9",
        entry_points={PLUGINS_GROUP: {"gen_bad_hooks": "gen_bad_hooks"}},
        modules={"gen_bad_hooks.py": "raise ImportError('cannot import name x')\n"},
    )
    site.add(
        "gen-good-hooks",
        entry_points={PLUGINS_GROUP: {"gen_good_hooks": "gen_good_hooks"}},
        modules={"gen_good_hooks.py": HOOK_MODULE},
    )
    with caplog.at_level(logging.WARNING, logger="host.plugins"):
        manager = make_plugin_manager()
    names = [name for name, _ in manager.list_name_plugin()]
    assert "gen_good_hooks" in names
    assert "gen_bad_hooks" not in names
    assert any("gen-bad-hooks 0.9" in r.getMessage() for r in caplog.records)
    [problem] = [p for p in hook_plugin_problems() if "gen_bad_hooks" in p]
    assert "ImportError" in problem


def test_hook_plugins_are_loaded_once_per_process_and_the_scan_is_not_repeated(
    site: Site,
) -> None:
    dist_info = site.add(
        "gen-cached",
        entry_points={PLUGINS_GROUP: {"gen_cached": "gen_cached"}},
        modules={"gen_cached.py": HOOK_MODULE},
    )
    first = make_plugin_manager().get_plugin("gen_cached")
    for path in dist_info.iterdir():
        path.unlink()
    dist_info.rmdir()  # uninstalled: a new scan would no longer find it
    second = make_plugin_manager().get_plugin("gen_cached")
    assert first is not None
    assert second is first
    site.close()
    assert make_plugin_manager().get_plugin("gen_cached") is None


def test_executors_come_from_entry_points(site: Site) -> None:
    site.add(
        "gen-executor",
        entry_points={EXECUTORS_GROUP: {"gen_exec": "gen_executor:Named"}},
        modules={"gen_executor.py": EXECUTOR_MODULE},
    )

    @asset
    def one() -> int:
        return 1

    result = run_assets([one], executor="gen_exec")
    assert result.events[0].executor == "gen_exec"  # type: ignore[union-attr]
    with pytest.raises(DefinitionError, match="did you mean 'gen_exec'"):
        run_assets([one], executor="gen_exek")


# -- plugin API version -------------------------------------------------------------------------


def test_an_incompatible_distribution_is_listed_and_not_loaded(
    site: Site, tmp_path: Path
) -> None:
    site.add(
        "gen-future",
        "5.0",
        entry_points={RESOURCES_GROUP: {"gen.future": "gen_future:Thing"}},
        requires=["host>=99,<100", "pydantic>=2"],
        modules={"gen_future.py": RESOURCE_MODULE},
    )
    site.add(
        "gen-current",
        entry_points={RESOURCES_GROUP: {"gen.current": "gen_current:Thing"}},
        requires=[
            f"host>={host.__version__},<{int(host.__version__.split('.')[0]) + 100}",
            'host<0.0.1; extra == "legacy"',
        ],
        modules={"gen_current.py": RESOURCE_MODULE},
    )
    listed = {i.name: i for i in mine("gen.")}
    future = listed["gen.future"]
    assert future.status == "incompatible"
    assert future.requires_host == "host>=99,<100"
    assert f"host {host.__version__}" in (future.problem or "")
    assert listed["gen.current"].status == "ok"
    with pytest.raises(PluginError, match="requires host>=99,<100"):
        lookup(RESOURCES_GROUP, "gen.future")
    assert check_entry_point(future).status == "incompatible"
    current = lookup(RESOURCES_GROUP, "gen.current")
    assert current is not None
    load_entry_point(current)
    assert imported(tmp_path / "imports.txt") == ["gen_current"]


def test_unreadable_metadata_marks_one_distribution_broken_not_the_scan(
    site: Site, tmp_path: Path
) -> None:
    site.add(
        "gen-garbled",
        entry_points={RESOURCES_GROUP: {"gen.garbled": "gen_garbled:Thing"}},
        requires=['host>=0.1; python_version >>> "3"'],
        modules={"gen_garbled.py": RESOURCE_MODULE},
    )
    site.add("gen-sane", entry_points={RESOURCES_GROUP: {"gen.sane": "gen_sane:Thing"}})
    listed = {i.name: i for i in mine("gen.")}
    assert listed["gen.garbled"].status == "broken"
    assert "metadata cannot be read" in (listed["gen.garbled"].problem or "")
    assert listed["gen.sane"].status == "ok"
    with pytest.raises(PluginError, match="metadata cannot be read"):
        lookup(RESOURCES_GROUP, "gen.garbled")
    assert check_entry_point(listed["gen.garbled"]).status == "broken"
    assert imported(tmp_path / "imports.txt") == []


@pytest.mark.parametrize(
    "specifier",
    [
        ">=0.1",
        ">=0.1,<0.2",
        "<0.1",
        "==0.1.*",
        "==0.2.*",
        "!=0.1.0",
        "~=0.1",
        "~=0.1.1",
        "~=1.0",
        ">0.1",
        ">0.0.9",
        "<=0.1",
        "==0.1",
        "===0.1.0",
        ">=0.1.0rc1",
        "<0.1.0.post1",
        ">=1!0.1",
    ],
)
@pytest.mark.parametrize("version", ["0.1.0", "0.2", "1.0.5", "0.1.0rc2", "0.1.1.dev0"])
def test_specifier_comparison_agrees_with_packaging(specifier: str, version: str) -> None:
    from packaging.specifiers import SpecifierSet

    expected = SpecifierSet(specifier).contains(version, prereleases=True)
    assert specifier_contains(specifier, version) is expected


# -- the contract in specs/ ---------------------------------------------------------------------


def test_specs_name_the_groups_and_the_plugin_api_version() -> None:
    text = (SPECS / "plugins.md").read_text(encoding="utf-8")
    for group in GROUPS:
        assert f"`{group}`" in text
    declared = re.search(r"^Plugin API version: `([^`]+)`", text, re.MULTILINE)
    assert declared is not None, "specs/plugins.md must state 'Plugin API version: `X.Y`'"
    assert declared.group(1) == PLUGIN_API_VERSION == host.PLUGIN_API_VERSION
    variables = ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", "HOST_ENABLE_PLUGINS")
    for variable in (*variables, "HOST_DISCOVERY_CACHE", "~/.cache/host/discovery/"):
        assert variable in text


def test_checking_executors_needs_nothing_imported_first(tmp_path: Path) -> None:
    """``check_entry_point`` on an executor, in a process that imported only discovery.

    The executor check is registered where ``Executor`` is defined (``host.executors.base``),
    which loading any executor imports; a process that never imported the executor registry
    checks executors right, and something that is not an executor is still refused.
    """
    site = Site(tmp_path / "site")
    site.add(
        "gen-not-exec",
        entry_points={EXECUTORS_GROUP: {"gen_not_exec": "gen_not_exec:thing"}},
        modules={"gen_not_exec.py": "thing = 42\n"},
    )
    statuses = python(
        """
        import json, sys
        from host._discovery import EXECUTORS_GROUP, check_entry_point, discover_plugins
        before = "host.executors.registry" in sys.modules
        print(json.dumps({"registry imported first": before, **{
            info.name: [checked.status, checked.problem]
            for info in discover_plugins(EXECUTORS_GROUP)
            for checked in [check_entry_point(info)]
        }}))
        """,
        site=tmp_path / "site",
    )
    assert statuses["registry imported first"] is False
    assert statuses["in_process"] == ["ok", None]
    assert statuses["multiprocess"] == ["ok", None]
    assert statuses["gen_not_exec"][0] == "broken"
    assert "int 42, not a host.Executor subclass" in statuses["gen_not_exec"][1]


INTERRUPTING_MODULE = """
import os
if os.environ.get("GEN_RAISE") == "keyboard":
    raise KeyboardInterrupt
if os.environ.get("GEN_RAISE") == "signal":
    from host._interrupts import SignalExit
    raise SignalExit(143)
if os.environ.get("GEN_RAISE") == "deadline":
    from host._timeouts import DeadlineExceeded
    raise DeadlineExceeded()
if os.environ.get("GEN_RAISE") == "exit":
    raise SystemExit(3)
from host import ConfigurableResource

class Thing(ConfigurableResource):
    pass
"""


@pytest.mark.parametrize(
    ("raised", "interrupts"),
    [("keyboard", True), ("signal", True), ("deadline", True), ("exit", False)],
)
def test_an_interrupt_while_a_plugin_imports_is_not_the_plugins_failure(
    site: Site, monkeypatch: pytest.MonkeyPatch, raised: str, interrupts: bool
) -> None:
    """An interrupt of the run propagates and is not kept as the entry point's failure (the
    next load imports it again); anything else the module raises makes it broken."""
    site.add(
        "gen-interrupting",
        entry_points={RESOURCES_GROUP: {"gen.interrupting": "gen_interrupting:Thing"}},
        modules={"gen_interrupting.py": INTERRUPTING_MODULE},
    )
    info = lookup(RESOURCES_GROUP, "gen.interrupting")
    assert info is not None
    monkeypatch.setenv("GEN_RAISE", raised)
    if interrupts:
        with pytest.raises(BaseException) as caught:
            load_entry_point(info)
        assert not isinstance(caught.value, PluginError)
        monkeypatch.setenv("GEN_RAISE", "")
        assert load_entry_point(info).__name__ == "Thing"
    else:
        with pytest.raises(PluginError, match="failed to import: SystemExit"):
            load_entry_point(info)
