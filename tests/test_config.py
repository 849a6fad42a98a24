"""The TOML run config: the issue's shape, whole-file validation, the JSON Schema in specs/.

Resource types come from a really installed (generated) distribution ``gen-acme`` registering
``acme.creds`` and ``acme.client``; asset modules are files next to the config file.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from host import ConfigError, DefinitionError, PluginError, RunConfig, load_run_config
from host._config_schema import PluginsSection, ResourceSection, RunSection, run_config_schema
from host._discovery import PLUGINS_GROUP, RESOURCES_GROUP
from tests.dists import Site

SPECS = Path(__file__).resolve().parent.parent / "specs"

ACME = """
import json
from pydantic import SecretStr
from host import ConfigurableResource

def _record(path, **fields):
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(fields) + "\\n")

class Creds(ConfigurableResource):
    username: str
    password: SecretStr
    record: str = ""

    def setup_for_execution(self, context):
        _record(self.record, event="setup", key=context.resource_key,
                password=self.password.get_secret_value())

class Client(ConfigurableResource):
    creds: Creds
    port: int = 80
    record: str = ""

    def setup_for_execution(self, context):
        _record(self.record, event="setup", key=context.resource_key)

    def whoami(self):
        return f"{self.creds.username}@{self.port}"
"""

ASSETS = """
from host import asset

@asset
def who(client):
    return client.whoami()

@asset
def shout(who):
    return who.upper()

@asset
def unused():
    return 0

def helper():
    return 1
"""


class Project:
    """A directory with a run config and an assets module (a unique name per test)."""

    def __init__(self, root: Path, module: str) -> None:
        self.root = root
        self.module = module
        root.mkdir(parents=True, exist_ok=True)

    def write(self, toml: str, assets: str = ASSETS, name: str = "run.toml") -> Path:
        (self.root / f"{self.module}.py").write_text(textwrap.dedent(assets))
        path = self.root / name
        path.write_text(textwrap.dedent(toml).replace("ASSETS", self.module))
        return path


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    for name in ("HOST_DISABLE_PLUGINS", "HOST_DISABLE_PLUGIN_AUTOLOAD", "HOST_ENABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    site = Site(tmp_path / "site")
    site.add(
        "gen-acme",
        "1.2",
        entry_points={
            RESOURCES_GROUP: {"acme.creds": "acme_res:Creds", "acme.client": "acme_res:Client"}
        },
        modules={"acme_res.py": ACME},
    )
    yield site
    site.close(tmp_path)


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Project:
    name = re.sub(r"\W", "_", request.node.name)[:60]
    return Project(tmp_path / "project", f"assets_{name}")


VALID = """
[run]
assets = ["ASSETS"]
executor = "in_process"
executor_config = {}
selection = ["shout"]

[resources.client]
type = "acme.client"
[resources.client.config]
port = 8080
creds = { resource = "creds" }
record = "RECORD"

[resources.creds]
type = "acme.creds"
[resources.creds.config]
username = "ann"
password = { env = "GEN_ACME_PASSWORD" }
record = "RECORD"

[plugins]
disable = ["some.plugin"]
"""


def records(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- the issue's shape --------------------------------------------------------------------------


def test_the_issue_shape_loads_and_runs(
    acme: Site, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "records.jsonl"
    monkeypatch.setenv("GEN_ACME_PASSWORD", "s3cret-from-env")
    config = load_run_config(project.write(VALID.replace("RECORD", str(record))))
    assert isinstance(config, RunConfig)
    assert [a.key for a in config.assets] == ["who", "shout", "unused"]
    assert config.planned == ("who", "shout")
    assert config.selection == ("shout",)
    assert config.resource_types["client"].distribution == "gen-acme"
    assert config.resources["client"].creds is config.resources["creds"]  # type: ignore[attr-defined]
    assert "some.plugin" in config.switches.disable
    assert "s3cret-from-env" not in repr(config)
    assert records(record) == []  # loading brings nothing up

    result = config.run()
    assert result.success
    assert result.outputs == {"who": "ann@8080", "shout": "ANN@8080"}
    setups = records(record)
    assert [r["key"] for r in setups] == ["creds", "client"]  # the dependency first, once
    assert setups[0]["password"] == "s3cret-from-env"  # read where it came up

    kwargs = config.run_kwargs()
    assert set(kwargs) == {
        "assets",
        "resources",
        "executor",
        "executor_config",
        "selection",
        "timeout",
        "resource_timeouts",
    }


def test_module_and_module_name_entries_and_the_config_directory_on_sys_path(
    acme: Site, project: Project
) -> None:
    (project.root / "lib").mkdir()
    (project.root / "lib" / "gen_extra_assets.py").write_text(
        "from host import asset\n\n@asset\ndef extra():\n    return 2\n\nNOT_ASSET = 3\n"
    )
    path = project.write(
        """
        [run]
        assets = ["ASSETS:unused", "gen_extra_assets:extra", "ASSETS:unused"]
        pythonpath = ["lib"]
        """
    )
    config = load_run_config(path)
    assert [a.key for a in config.assets] == ["unused", "extra"]
    assert config.run().outputs == {"unused": 0, "extra": 2}


# -- whole-file validation ----------------------------------------------------------------------


def test_a_toml_syntax_error_names_the_line(acme: Site, project: Project) -> None:
    path = project.write('[run]\nassets = ["ASSETS"]\nexecutor = = "x"\n')
    with pytest.raises(ConfigError, match=r"run\.toml:3: invalid TOML"):
        load_run_config(path)


def test_unknown_keys_are_named_with_the_allowed_ones(acme: Site, project: Project) -> None:
    path = project.write(
        """
        [run]
        assets = ["ASSETS"]
        executr = "in_process"

        [resources.creds]
        type = "acme.creds"
        confg = {}

        [plugin]
        disable = []
        """
    )
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    message = str(caught.value)
    assert "run.executr: unknown key; did you mean 'executor'?" in message
    assert "resources.creds.confg: unknown key; did you mean 'config'?" in message
    assert "plugin: unknown key; did you mean 'plugins'?" in message


def test_a_missing_required_key(acme: Site, project: Project) -> None:
    with pytest.raises(ConfigError, match="run: required key is missing"):
        load_run_config(project.write("[plugins]\ndisable = []\n"))


def test_an_unknown_resource_type_suggests_close_names(acme: Site, project: Project) -> None:
    path = project.write(
        """
        [run]
        assets = ["ASSETS:unused"]
        [resources.client]
        type = "acme.clinet"
        """
    )
    with pytest.raises(ConfigError, match=r"did you mean 'acme\.client'") as caught:
        load_run_config(path)
    assert (caught.value.resource_key, caught.value.field) == ("client", "type")


def test_field_errors_name_key_field_and_problem_never_the_value(
    acme: Site, project: Project
) -> None:
    path = project.write(
        """
        [run]
        assets = ["ASSETS:unused"]
        [resources.creds]
        type = "acme.creds"
        [resources.creds.config]
        username = "ann"
        password = 918273645546372819
        [resources.client]
        type = "acme.client"
        [resources.client.config]
        creds = { resource = "creds" }
        port = "port-value-zyx"
        prot = 1
        """
    )
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    message = str(caught.value)
    assert "resource 'creds'" in message
    assert "password" in message
    assert "918273645546372819" not in message
    assert "unknown config field 'prot' (did you mean 'port'?)" in message


def test_a_field_error_without_unknown_fields(acme: Site, project: Project) -> None:
    path = project.write(
        """
        [run]
        assets = ["ASSETS:unused"]
        [resources.creds]
        type = "acme.creds"
        [resources.creds.config]
        username = "ann"
        password = "pw"
        [resources.client]
        type = "acme.client"
        [resources.client.config]
        creds = { resource = "creds" }
        port = "port-value-zyx"
        """
    )
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    assert (caught.value.resource_key, caught.value.field) == ("client", "port")
    assert "port-value-zyx" not in str(caught.value)
    assert "valid integer" in str(caught.value)


def test_a_missing_environment_variable_is_named(
    acme: Site, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEN_ACME_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="'GEN_ACME_PASSWORD', which is not set") as caught:
        load_run_config(project.write(VALID.replace("RECORD", "")))
    assert (caught.value.resource_key, caught.value.field) == ("creds", "password")


def test_environment_variables_are_not_checked_for_a_cluster_elsewhere(
    acme: Site, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("host_plugin_dask")
    monkeypatch.delenv("GEN_ACME_PASSWORD", raising=False)
    remote = VALID.replace("RECORD", "").replace(
        'executor = "in_process"\nexecutor_config = {}',
        'executor = "dask"\nexecutor_config = { address = "tcp://127.0.0.1:1" }',
    )
    config = load_run_config(project.write(remote))  # read where the resource comes up
    assert config.run_kwargs()["executor"].name == "dask"
    local = remote.replace('{ address = "tcp://127.0.0.1:1" }', "{ n_workers = 1 }")
    with pytest.raises(ConfigError, match="'GEN_ACME_PASSWORD', which is not set"):
        load_run_config(project.write(local))  # a cluster the run starts shares this one


def test_an_environment_value_that_does_not_validate_is_never_shown(
    acme: Site, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEN_ACME_PORT", "secret-port-value")
    monkeypatch.setenv("GEN_ACME_PASSWORD", "pw")
    path = project.write(
        VALID.replace("RECORD", "").replace("port = 8080", 'port = { env = "GEN_ACME_PORT" }')
    )
    with pytest.raises(ConfigError, match="GEN_ACME_PORT") as caught:
        load_run_config(path)
    assert "secret-port-value" not in str(caught.value)


def test_a_dependency_on_a_missing_resource_key(acme: Site, project: Project) -> None:
    path = project.write(
        """
        [run]
        assets = ["ASSETS:unused"]
        [resources.client]
        type = "acme.client"
        [resources.client.config]
        creds = { resource = "cred" }
        """
    )
    expected = r"refers to resource .cred., which has no \[resources.cred\] table; defined: client"
    with pytest.raises(ConfigError, match=expected):
        load_run_config(path)


def test_a_dependency_cycle_between_resources(acme: Site, project: Project) -> None:
    path = project.write(
        """
        [run]
        assets = ["ASSETS:unused"]
        [resources.a]
        type = "acme.client"
        [resources.a.config]
        creds = { resource = "b" }
        [resources.b]
        type = "acme.client"
        [resources.b.config]
        creds = { resource = "a" }
        """
    )
    with pytest.raises(DefinitionError, match=r"dependency cycle: (a -> b -> a|b -> a -> b)"):
        load_run_config(path)


@pytest.mark.parametrize(
    ("entry", "module_source", "expected"),
    [
        ("gen_no_such_module", None, "no module named 'gen_no_such_module'"),
        ("ASSETS:nothing", None, "has no attribute 'nothing'; its assets: shout, unused, who."),
        ("ASSETS:helper", None, "not an asset; decorate it with @host.asset"),
        ("gen_empty_assets", "X = 1\n", "defines no @asset"),
        ("gen_failing_assets", "import gen_missing_dep\n", "ModuleNotFoundError"),
        ("not a module!", None, 'not a module or "module:name" reference'),
    ],
)
def test_assets_that_cannot_be_imported_or_resolved(
    acme: Site, project: Project, entry: str, module_source: str | None, expected: str
) -> None:
    if module_source is not None:
        (project.root / f"{entry}.py").write_text(module_source)
    path = project.write(f'[run]\nassets = ["{entry}"]\n')
    with pytest.raises(DefinitionError, match=r"run\.assets\[0\]") as caught:
        load_run_config(path)
    assert expected in str(caught.value)


def test_an_asset_whose_resource_is_not_configured(acme: Site, project: Project) -> None:
    with pytest.raises(DefinitionError, match="'who', parameter 'client'"):
        load_run_config(project.write('[run]\nassets = ["ASSETS:who"]\n'))


def test_an_unknown_selection(acme: Site, project: Project) -> None:
    path = project.write('[run]\nassets = ["ASSETS:unused"]\nselection = ["nope"]\n')
    with pytest.raises(DefinitionError, match=r"run.selection.0. 'nope': no asset is called"):
        load_run_config(path)


def test_an_unknown_executor_and_invalid_executor_config(acme: Site, project: Project) -> None:
    with pytest.raises(DefinitionError, match="did you mean 'in_process'"):
        load_run_config(
            project.write('[run]\nassets = ["ASSETS:unused"]\nexecutor = "in_proces"\n')
        )
    path = project.write('[run]\nassets = ["ASSETS:unused"]\nexecutor_config = { workers = 2 }\n')
    expected = r"run.executor_config.workers: executor 'in_process' has no setting 'workers'"
    with pytest.raises(ConfigError, match=expected):
        load_run_config(path)


def test_every_problem_is_reported_at_once(acme: Site, project: Project) -> None:
    path = project.write(
        """
        [run]
        assets = ["ASSETS", "gen_nowhere"]
        [resources.x]
        type = "acme.nope"
        [resources.creds]
        type = "acme.creds"
        [resources.creds.config]
        username = "ann"
        """
    )
    with pytest.raises(ConfigError) as caught:
        load_run_config(path)
    message = str(caught.value)
    assert "3 problems" in message
    assert "unknown type 'acme.nope'" in message
    assert "password" in message
    assert "gen_nowhere" in message


def test_nothing_is_brought_up_when_any_part_is_invalid(
    acme: Site, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "records.jsonl"
    monkeypatch.setenv("GEN_ACME_PASSWORD", "pw")
    text = VALID.replace("RECORD", str(record))
    text = text.replace('selection = ["shout"]', 'selection = ["x"]')
    with pytest.raises(DefinitionError):
        load_run_config(project.write(text))
    assert records(record) == []


# -- choosing and switching off plugins ---------------------------------------------------------


def test_a_duplicate_type_is_an_error_unless_the_distribution_is_picked(
    acme: Site, project: Project
) -> None:
    acme.add(
        "gen-acme-fork",
        "9.9",
        entry_points={RESOURCES_GROUP: {"acme.creds": "acme_res:Creds"}},
    )
    toml = """
        [run]
        assets = ["ASSETS:unused"]
        [resources.creds]
        type = "acme.creds"
        DIST
        [resources.creds.config]
        username = "ann"
        password = "pw"
        """
    with pytest.raises(PluginError) as caught:
        load_run_config(project.write(toml.replace("DIST", "")))
    assert "gen-acme 1.2" in str(caught.value)
    assert "gen-acme-fork 9.9" in str(caught.value)
    config = load_run_config(project.write(toml.replace("DIST", 'distribution = "gen-acme-fork"')))
    assert config.resource_types["creds"].origin == "gen-acme-fork 9.9"


def test_plugins_disabled_in_the_run_config_cannot_be_used(acme: Site, project: Project) -> None:
    path = project.write(
        """
        [run]
        assets = ["ASSETS:unused"]
        [resources.creds]
        type = "acme.creds"
        [resources.creds.config]
        username = "ann"
        password = "pw"
        [plugins]
        disable = ["gen-acme"]
        """
    )
    with pytest.raises(PluginError, match="disabled by name 'gen-acme'"):
        load_run_config(path)


def test_plugins_enabled_in_the_run_config_load_when_autoload_is_off(
    acme: Site, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = (
        "from host import hookimpl\n\ncalls = []\n\n"
        "@hookimpl\ndef host_run_start(run_id):\n    calls.append(run_id)\n"
    )
    acme.add(
        "gen-cfg-hooks",
        entry_points={PLUGINS_GROUP: {"gen_cfg_a": "gen_cfg_a", "gen_cfg_b": "gen_cfg_b"}},
        modules={"gen_cfg_a.py": hooks, "gen_cfg_b.py": hooks},
    )
    monkeypatch.setenv("HOST_DISABLE_PLUGIN_AUTOLOAD", "1")
    path = project.write(
        """
        [run]
        assets = ["ASSETS:unused"]
        [plugins]
        enable = ["gen_cfg_a"]
        """
    )
    result = load_run_config(path).run()
    import gen_cfg_a  # type: ignore[import-not-found]

    assert gen_cfg_a.calls == [result.run_id]
    assert "gen_cfg_b" not in sys.modules  # autoload is off and it was not enabled


# -- the schema and the documentation in specs/ -------------------------------------------------


def test_the_json_schema_in_specs_is_the_one_the_models_give() -> None:
    on_disk = json.loads((SPECS / "run-config.schema.json").read_text(encoding="utf-8"))
    assert on_disk == run_config_schema(), (
        "specs/run-config.schema.json is out of date; regenerate it with "
        "`python -c 'import json, host._config_schema as c; "
        "print(json.dumps(c.run_config_schema(), indent=2))' > specs/run-config.schema.json`"
    )


def test_the_documentation_names_every_table_and_key_of_the_file() -> None:
    text = (SPECS / "run-config.md").read_text(encoding="utf-8")
    for table in ("[run]", "[resources.KEY]", "[plugins]"):
        assert f"### `{table}`" in text
    keys = {"env", "resource"}
    for section in (RunSection, ResourceSection, PluginsSection):
        keys |= set(section.model_fields)
    missing = sorted(key for key in keys if f"| `{key}` |" not in text and f"{key} =" not in text)
    assert not missing, f"specs/run-config.md does not document {missing}"
