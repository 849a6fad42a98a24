"""The log records of a run: each asset's and resource phase's, as ``LogRecorded`` events.

Through ``run_assets`` on every executor (in_process, multiprocess, dask): which step logs at
which level, through ``context.log``, the code's own logger or ``warnings.warn``, is drawn by
hypothesis; each record is the event of its step (asset key, or resource key and phase), with
the pid of the process the step ran in, and a secret in a message is masked. Through the real
``host run``: ``--log-level``/``-v``/``-vv``, the records shown as the step's (never as
``host: warning:``), ``--json`` (against ``specs/run-result.schema.json``) and the run history's
``logs`` table, none of them holding the secret.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import textwrap
import uuid
import warnings
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from host import (
    AssetExecutionContext,
    AssetStarted,
    ConfigurableResource,
    InitResourceContext,
    LogRecorded,
    ResourceEvent,
    asset,
    run_assets,
)
from host._resource import MASK
from tests.dists import HOST, make_dist, run

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-log-value"
log = logging.getLogger(__name__)

#: Where a record can be emitted: the two assets, and the resource's setup and teardown.
STEPS = ("asset:first", "asset:second", "resource:setup", "resource:teardown")
#: How: context.log, the module's own logger, warnings.warn (always WARNING).
CHANNELS = ("context", "module", "warn")
LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)


def _say(context: Any, step: str, plan: Any, secret: str, nonce: str) -> None:
    """Emit what ``plan`` gives ``step``: each message names the step, its number, the secret
    (and a nonce: a worker shows a warning of the same text and line once only)."""
    for number, (where, channel, level) in enumerate(plan):
        if where != step:
            continue
        text = f"marker {step} #{number} token={secret} ({nonce})"
        if channel == "context":
            context.log.log(level, text)
        elif channel == "module":
            log.log(level, text)
        else:
            warnings.warn(text, UserWarning, stacklevel=1)


class Speaker(ConfigurableResource):
    """Logs in its setup and teardown what the plan gives them; holds the secret."""

    token: SecretStr
    plan: tuple[tuple[str, str, int], ...] = ()
    nonce: str = ""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        _say(context, "resource:setup", self.plan, self.token.get_secret_value(), self.nonce)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        _say(context, "resource:teardown", self.plan, self.token.get_secret_value(), self.nonce)


@asset
def first(context: AssetExecutionContext, speaker: Speaker) -> int:
    _say(context, "asset:first", speaker.plan, speaker.token.get_secret_value(), speaker.nonce)
    return os.getpid()


@asset
def second(context: AssetExecutionContext, speaker: Speaker, first: int) -> int:
    _say(context, "asset:second", speaker.plan, speaker.token.get_secret_value(), speaker.nonce)
    return os.getpid()


def _captured(channel: str, level: int, executor: str) -> bool:
    """What is captured with the caller's root logger at INFO: context.log at every level;
    the code's own loggers from INFO (workers of multiprocess take the caller's levels; a Dask
    worker, shared, keeps its own: WARNING); warnings (WARNING)."""
    return channel != "module" or level >= (logging.WARNING if executor == "dask" else logging.INFO)


def _expected_pid(result: Any, step: str) -> set[int]:
    kind, name = step.split(":")
    if kind == "asset":
        return {e.pid for e in result.events_of(AssetStarted) if e.asset_key == name}
    return {e.pid for e in result.events_of(ResourceEvent) if e.phase == name}


plans = st.lists(
    st.tuples(st.sampled_from(STEPS), st.sampled_from(CHANNELS), st.sampled_from(LEVELS)),
    min_size=1,
    max_size=5,
)


#: Plans per executor in the default run (a ``multiprocess`` run starts its workers afresh, so
#: it draws fewer); ``-m slow`` draws ``SLOW_EXAMPLES`` on every executor.
EXAMPLES = {"in_process": 6, "multiprocess": 3, "dask": 6}
SLOW_EXAMPLES = 30


def check_plans(
    executor: tuple[str, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    examples: int,
) -> None:
    """Draw ``examples`` plans; each step's records are its events, tagged and masked."""

    @settings(max_examples=examples, deadline=None)
    @given(plan=plans)
    def check(plan: list[tuple[str, str, int]]) -> None:
        name, config = executor
        caplog.clear()
        capfd.readouterr()
        plan = [(s, c, logging.WARNING if c == "warn" else lv) for s, c, lv in plan]
        speaker = Speaker(token=SecretStr(SECRET), plan=tuple(plan), nonce=uuid.uuid4().hex)
        with caplog.at_level(logging.INFO), warnings.catch_warnings():
            warnings.simplefilter("always")  # warnings are the asset's records, not errors here
            result = run_assets(
                [first, second], {"speaker": speaker}, executor=name, executor_config=config
            )
        assert result.success
        records = result.events_of(LogRecorded)
        ours = [r for r in records if "marker " in r.message]
        expected = [(n, s, c, lv) for n, (s, c, lv) in enumerate(plan) if _captured(c, lv, name)]
        assert len(ours) == len(expected), (plan, ours)
        for number, step, channel, level in expected:
            found = [r for r in ours if f"marker {step} #{number} " in r.message]
            assert len(found) == 1, (step, number, ours)
            record = found[0]
            kind, key = step.split(":")
            assert record.level == level and record.run_id == result.run_id
            where = (record.asset_key, record.resource_key, record.phase)
            if kind == "asset":
                assert where == (key, None, None)
            else:
                assert where == (None, "speaker", key)
            assert record.pid in _expected_pid(result, step)
            if name != "in_process":
                assert record.pid != os.getpid()
            logger = {"context": f"host.{kind}", "module": __name__, "warn": "py.warnings"}[channel]
            assert record.logger == logger
            assert f"token={MASK}" in record.message
        out, err = capfd.readouterr()
        everything = "\n".join([repr(result.events), out, err, caplog.text])
        assert SECRET not in everything

    check()


def test_each_step_s_records_are_its_events_tagged_and_masked(
    executor: tuple[str, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    check_plans(executor, caplog, capfd, EXAMPLES[executor[0]])


@pytest.mark.slow
def test_each_step_s_records_are_its_events_tagged_and_masked_long(
    executor: tuple[str, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    check_plans(executor, caplog, capfd, SLOW_EXAMPLES)


def test_no_record_no_event_and_the_capture_is_gone_after_the_run() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    showwarning = warnings.showwarning
    result = run_assets([first, second], {"speaker": Speaker(token=SecretStr(SECRET))})
    assert result.success and result.events_of(LogRecorded) == []
    assert root.handlers == before and warnings.showwarning is showwarning


def test_a_record_outside_any_step_is_no_event(caplog: pytest.LogCaptureFixture) -> None:
    from host import hookimpl

    class Observer:
        @hookimpl
        def host_run_start(self, run_id: str, assets: Any) -> None:
            log.warning("run starts")

    with caplog.at_level(logging.WARNING):
        result = run_assets(
            [first], {"speaker": Speaker(token=SecretStr(SECRET))}, plugins=[Observer()]
        )
    assert result.success
    assert "run starts" in caplog.text
    assert result.events_of(LogRecorded) == []


# -- host run --------------------------------------------------------------------------------

ASSETS = """
import logging
import warnings
from host import AssetExecutionContext, asset

log = logging.getLogger("log_assets")

@asset
def talks(context: AssetExecutionContext, speaker) -> int:
    token = speaker.token.get_secret_value()
    context.log.debug("marker-debug " + token)
    context.log.info("marker-info " + token)
    context.log.warning("marker-warning " + token)
    log.error("marker-own-error " + token)
    warnings.warn("marker-warn " + token, UserWarning, stacklevel=1)
    return 1
"""

RUN = """
[run]
assets = ["log_assets"]
executor = "EXECUTOR"

[resources.speaker]
type = "genlogs.speaker"
[resources.speaker.config]
token = { env = "LOGS_TOKEN" }
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from host._discovery import RESOURCES_GROUP

    site = tmp_path_factory.mktemp("logs-site")
    make_dist(
        site, "gen-logs",
        entry_points={RESOURCES_GROUP: {"genlogs.speaker": "tests.test_logs:Speaker"}},
    )
    return site


def _host(site: Path, project: Path, *args: str) -> Any:
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "LOGS_TOKEN": SECRET}
    return run([HOST, "run", "--plain", *args, "run.toml"], site=site, cwd=project, env=env)


def _marker(message: str) -> str:
    found = re.search(r"marker-[\w-]+", message)
    assert found is not None, message
    return found.group()


def _project(tmp_path: Path, executor: str) -> Path:
    (tmp_path / "log_assets.py").write_text(textwrap.dedent(ASSETS))
    (tmp_path / "run.toml").write_text(RUN.replace("EXECUTOR", executor))
    return tmp_path


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        ((), {"warning", "own-error", "warn"}),
        (("-v",), {"info", "warning", "own-error", "warn"}),
        (("-vv",), {"debug", "info", "warning", "own-error", "warn"}),
        (("--log-level", "error"), {"own-error"}),
    ],
)
def test_host_run_shows_the_records_of_assets_from_the_level_given(
    site: Path, tmp_path: Path, flags: tuple[str, ...], shown: set[str]
) -> None:
    done = _host(site, _project(tmp_path, "in_process"), "--no-history", *flags)
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    assert SECRET not in text
    assert "host: warning" not in text
    for marker in ("debug", "info", "warning", "own-error", "warn"):
        line = [ln for ln in done.stderr.splitlines() if f"marker-{marker} " in ln]
        if marker in shown:
            assert len(line) == 1, (marker, done.stderr)
            assert line[0].startswith("asset talks (pid "), line
            assert f"marker-{marker} {MASK}" in line[0]
        else:
            assert line == [], (marker, done.stderr)


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_host_run_json_and_history_hold_the_records_masked(
    site: Path, tmp_path: Path, executor: str
) -> None:
    project = _project(tmp_path, executor)
    database = tmp_path / "history.db"
    done = _host(site, project, "--json", "-v", "--history", str(database))
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    document = json.loads(done.stdout)
    schema = json.loads((ROOT / "specs" / "run-result.schema.json").read_text("utf-8"))
    jsonschema.validate(document, schema)
    asset_pid = document["assets"][0]["pid"]
    logs = {_marker(entry["message"]): entry for entry in document["logs"]}
    assert set(logs) == {"marker-info", "marker-warning", "marker-own-error", "marker-warn"}
    for entry in logs.values():
        assert entry["asset"] == "talks" and entry["pid"] == asset_pid
    assert logs["marker-warning"]["logger"] == "host.asset"
    assert logs["marker-own-error"]["level"] == "ERROR"
    assert logs["marker-warn"]["logger"] == "py.warnings"
    assert SECRET.encode() not in database.read_bytes()
    for extra in (".db-wal", ".db-journal"):
        side = database.with_suffix(extra)
        assert not side.exists() or SECRET.encode() not in side.read_bytes()
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT asset_key, level, logger, message, pid FROM logs ORDER BY seq"
        ).fetchall()
    # Every record captured (context.log's debug too): the level only chooses what is shown.
    assert [_marker(r[3]) for r in rows] == [
        "marker-debug", "marker-info", "marker-warning", "marker-own-error", "marker-warn"
    ]
    assert {r[0] for r in rows} == {"talks"} and {r[4] for r in rows} == {asset_pid}
    assert all(MASK in r[3] for r in rows)


def test_an_unknown_log_level_is_a_usage_error(site: Path, tmp_path: Path) -> None:
    done = _host(site, _project(tmp_path, "in_process"), "--no-history", "--log-level", "loud")
    assert done.returncode == 2
    assert "unknown log level 'loud'" in done.stderr
