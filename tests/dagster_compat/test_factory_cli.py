"""A ``ConfigurableResourceFactory`` shipped as a resource type and run with ``host run`` from a
TOML run config, as a user runs it (the console script in a subprocess), its integer field read
from the environment in each worker process (what ``EnvVar.int`` does in code)."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

from host._plugin_api import RESOURCES_GROUP
from tests.dists import HOST, make_dist, run
from tests.recording import read

FACTORY = """
from host import ConfigurableResourceFactory, InitResourceContext
from tests.recording import write


class Client:
    def __init__(self, port: int) -> None:
        self.port = port


class ClientFactory(ConfigurableResourceFactory[Client]):
    record: str
    port: int

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label="factory")

    def create_resource(self, context: InitResourceContext) -> Client:
        return Client(self.port)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label="factory")
"""

ASSETS = """
from host import asset


@asset
def first(client):
    # what the factory created, its port read from the environment in this process
    assert type(client).__name__ == "Client" and client.port == 4100, client
    return client.port


@asset
def second(client, first):
    return (type(client).__name__, client.port + first)
"""

RUN = """
[run]
assets = ["factory_assets"]
executor = "multiprocess"
executor_config = {{ max_workers = 2 }}

[resources.client]
type = "genfactory.client"
[resources.client.config]
record = "{record}"
port = {{ env = "HOST_FACTORY_PORT" }}
"""


def test_a_factory_runs_from_a_run_config(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(
        site,
        "gen-factory",
        entry_points={RESOURCES_GROUP: {"genfactory.client": "genfactory:ClientFactory"}},
        modules={"genfactory.py": FACTORY},
    )
    (tmp_path / "factory_assets.py").write_text(textwrap.dedent(ASSETS))
    record = tmp_path / "records.jsonl"
    path = tmp_path / "run.toml"
    path.write_text(RUN.format(record=record))
    root = str(Path(__file__).resolve().parents[2])
    done = run(
        [HOST, "run", str(path)],
        site=site,
        cwd=tmp_path,
        env={"HOST_FACTORY_PORT": "4100", "PYTHONPATH": f"{site}:{root}"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    records = read(record)
    per_process = Counter((r["event"], r["pid"]) for r in records)
    pids = {pid for _, pid in per_process}
    assert pids and all(
        per_process[("setup", pid)] == per_process[("teardown", pid)] == 1 for pid in pids
    )
