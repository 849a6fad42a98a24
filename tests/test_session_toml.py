"""``[resources.KEY] scope`` in the TOML run config: a resource's scope chosen per key.

The resource type comes from a really installed (generated) distribution ``gen-sessacme``
registering ``sessacme.counter``; its resource writes one JSON line per setup and teardown.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host import ConfigError, Session, load_run_config
from host._config_schema import ResourceSection
from host._discovery import RESOURCES_GROUP
from tests.dists import Site

COUNTER = """
import json, os
from typing import ClassVar
from host import ConfigurableResource

def _record(path, **fields):
    with open(path, "a") as f:
        f.write(json.dumps({**fields, "pid": os.getpid()}) + "\\n")

class Counter(ConfigurableResource):
    record: str

    def setup_for_execution(self, context):
        _record(self.record, event="setup", key=context.resource_key, run=context.run_id)

    def teardown_after_execution(self, context):
        _record(self.record, event="teardown", key=context.resource_key)

class SessionCounter(Counter):
    host_scope: ClassVar[str] = "session"
"""

ASSETS = """
from host import asset

@asset
def count(db):
    return 1
"""

TOML = """
[run]
assets = ["ASSETS"]

[resources.db]
type = "TYPE"
SCOPE
[resources.db.config]
record = "RECORD"
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", "HOST_ENABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    site = Site(tmp_path / "site")
    site.add(
        "gen-sessacme",
        "1.0",
        entry_points={
            RESOURCES_GROUP: {
                "sessacme.counter": "sessacme_res:Counter",
                "sessacme.session_counter": "sessacme_res:SessionCounter",
            }
        },
        modules={"sessacme_res.py": COUNTER},
    )
    yield site
    site.close(tmp_path)


def write(
    tmp_path: Path, request: pytest.FixtureRequest, scope: str | None, kind: str = "counter"
) -> tuple[Path, Path]:
    """A run config (and its assets module) for ``scope``; give it and the record file."""
    module = "assets_" + re.sub(r"\W", "_", request.node.name)[:60]
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(ASSETS))
    record = tmp_path / "records.jsonl"
    text = (
        TOML.replace("ASSETS", module)
        .replace("TYPE", f"sessacme.{kind}")
        .replace("SCOPE", "" if scope is None else f"scope = {json.dumps(scope)}")
        .replace("RECORD", str(record))
    )
    path = root / "run.toml"
    path.write_text(text)
    return path, record


def events(record: Path) -> list[str]:
    if not record.exists():
        return []
    return [json.loads(line)["event"] for line in record.read_text().splitlines()]


def run_in_session(path: Path, runs: int = 3) -> tuple[list[str], Any]:
    """Run the config ``runs`` times in one session; give the events before close, and it."""
    config = load_run_config(path)
    with Session(config.executor, dict(config.executor_config)) as session:
        for _ in range(runs):
            session.run_assets(
                list(config.assets), dict(config.resources), run_config=config.launch_config()
            )
        before = events(Path(config.resources["db"].record))  # type: ignore[attr-defined]
    return before, config


def test_scope_session_in_toml_makes_a_resource_session_scoped(
    site: Site, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path, record = write(tmp_path, request, "session")
    before, config = run_in_session(path)
    assert config.resource_scopes == {"db": "session"}
    assert config.launch_config() == {"resources": {"db": {"scope": "session"}}}
    assert before == ["setup"]  # up once for the three runs, still up
    assert events(record) == ["setup", "teardown"]  # down when the session closed


def test_scope_run_in_toml_overrides_a_session_scoped_class(
    site: Site, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path, _ = write(tmp_path, request, "run", kind="session_counter")
    before, _ = run_in_session(path)
    assert before == ["setup", "teardown"] * 3


def test_without_scope_the_class_decides(
    site: Site, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path, _ = write(tmp_path, request, None, kind="session_counter")
    before, config = run_in_session(path)
    assert config.resource_scopes == {} and config.launch_config() is None
    assert before == ["setup"]


def test_outside_a_session_a_session_scope_is_run_scoped(
    site: Site, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path, record = write(tmp_path, request, "session")
    config = load_run_config(path)
    config.run()
    config.run()
    assert events(record) == ["setup", "teardown"] * 2


@pytest.mark.parametrize("scope", ["sometimes", "Session", 1])
def test_an_unknown_scope_is_a_config_error_naming_the_key_and_the_choices(
    site: Site, tmp_path: Path, request: pytest.FixtureRequest, scope: Any
) -> None:
    path, record = write(tmp_path, request, scope)
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    message = str(caught.value)
    assert "resources.db.scope" in message
    assert "'run'" in message and "'session'" in message
    assert events(record) == []


def test_the_schema_documents_scope() -> None:
    schema = ResourceSection.model_json_schema()["properties"]["scope"]
    assert '"run"' in json.dumps(schema) and '"session"' in json.dumps(schema)
    assert "host.Session" in schema["description"]
