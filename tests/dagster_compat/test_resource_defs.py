"""``@asset(resource_defs=...)`` and ``with_resources(...)``, in code and through ``host run``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from host import DefinitionError, asset, run_assets, with_resources
from host._discovery import RESOURCES_GROUP
from tests import recording
from tests.dists import HOST, make_dist, run
from tests.recording import Recorded

MULTI = [
    pytest.param(("in_process", {}), id="in_process"),
    pytest.param(("multiprocess", {"max_workers": 2}), id="multiprocess"),
]


@asset
def plain(db: Recorded) -> str:
    return str(db.use())


@pytest.mark.parametrize("executor", MULTI)
def test_an_asset_binds_its_own_resources(
    executor: tuple[str, dict[str, Any]], record: str
) -> None:
    name, config = executor

    @asset(resource_defs={"db": Recorded(record=record, label="own")})
    def bound(db: Recorded) -> str:
        return str(db.use())

    assert run_assets([bound], executor=name, executor_config=config).outputs == {
        "bound": "own"
    }
    assert [r["event"] for r in recording.read(record)] == ["setup", "up", "use", "teardown"]


def test_with_resources_binds_copies_and_an_assets_own_binding_wins(record: str) -> None:
    @asset(resource_defs={"db": Recorded(record=record, label="own")})
    def bound(db: Recorded) -> str:
        return str(db.use())

    copies = with_resources([plain, bound], {"db": Recorded(record=record, label="shared")})
    assert [c.key for c in copies] == ["plain", "bound"]
    assert plain.resource_defs == {}  # the definition passed in is not changed
    assert run_assets([copies[0]]).outputs == {"plain": "shared"}
    assert run_assets([copies[1]]).outputs == {"bound": "own"}


def test_one_key_bound_to_two_resources_is_a_definition_error(record: str) -> None:
    @asset(resource_defs={"db": Recorded(record=record, label="own")})
    def bound(db: Recorded) -> str:
        return str(db.use())

    with pytest.raises(DefinitionError, match=r"'db' is bound twice.*by the run's resources= "
                       r"and by asset 'bound'"):
        run_assets([bound], {"db": Recorded(record=record, label="run")})
    other = with_resources([plain], {"db": Recorded(record=record, label="other")})
    with pytest.raises(DefinitionError, match=r"by asset 'bound' and by asset 'plain'"):
        run_assets([bound, *other])
    assert recording.read(record) == []
    # the same resource bound by the run and an asset is one resource
    same = Recorded(record=record, label="same")
    assert run_assets(with_resources([plain], {"db": same}), {"db": same}).success


THING = """
import json
from host import ConfigurableResource

class Thing(ConfigurableResource):
    label: str
    record: str

    def _write(self, event, context):
        with open(self.record, "a") as f:
            f.write(json.dumps({"event": event, "key": context.resource_key,
                                "label": self.label}) + "\\n")

    def setup_for_execution(self, context):
        self._write("setup", context)

    def teardown_after_execution(self, context):
        self._write("teardown", context)
"""

ASSETS = """
from host import AssetExecutionContext, Config, asset
from daga_thing import Thing

class Settings(Config):
    suffix: str = "!"

@asset(required_resource_keys={"db"})
def via_context(context: AssetExecutionContext):
    return context.resources.db.label

@asset(resource_defs={"own": Thing(label="own", record=RECORD)})
def own_resource(own: Thing, via_context, config: Settings):
    return own.label + "+" + via_context + config.suffix
"""

RUN = """
[run]
assets = ["daga_assets"]

[resources.db]
type = "daga.thing"
[resources.db.config]
label = "file"
record = RECORD
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("daga-site")
    make_dist(site, "gen-daga", entry_points={RESOURCES_GROUP: {"daga.thing": "daga_thing:Thing"}},
              modules={"daga_thing.py": THING})
    return site


def test_host_run_with_context_resources_resource_defs_and_config_defaults(
    site: Path, tmp_path: Path
) -> None:
    record = tmp_path / "records.jsonl"
    (tmp_path / "daga_assets.py").write_text(
        textwrap.dedent(ASSETS).replace("RECORD", json.dumps(str(record)))
    )
    path = tmp_path / "run.toml"
    path.write_text(textwrap.dedent(RUN).replace("RECORD", json.dumps(str(record))))
    checked = run([HOST, "check", str(path)], site=site, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = run([HOST, "run", str(path)], site=site, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'own+file!'" in done.stdout
    events = [(r["event"], r["key"]) for r in recording.read(record)]
    assert sorted(events) == [("setup", "db"), ("setup", "own"), ("teardown", "db"),
                              ("teardown", "own")]
    assert events.index(("teardown", "own")) < events.index(("teardown", "db"))
