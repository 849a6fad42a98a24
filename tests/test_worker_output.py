"""What a worker process prints or logs reaches the caller, masked, on every remote executor.

Each channel a worker can write through: ``warnings.warn``, ``print`` to stderr and to stdout,
``context.log.warning`` in an asset and in a resource's setup, an asset module's own logger,
a traceback printed by ``threading`` for an exception nobody caught, and a teardown raising
``KeyboardInterrupt`` (whose traceback multiprocessing prints, or which is reported as the
resource's teardown failure). A secret (a ``SecretStr`` of the run's resource, also with ``\\``
and ``'`` in it) is placed in each; the caller's captured stdout and stderr (and its log
records) never contain it, and the message itself does arrive, masked. Through ``run_assets``
(``capfd``) and through ``host run`` in a subprocess, on multiprocess and Dask.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from host import AssetExecutionContext, ConfigurableResource, InitResourceContext, asset, run_assets
from host._values import MASK
from tests.dists import HOST, environ

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)

#: The channels an asset writes through (each line starts with its marker).
ASSET_CHANNELS = ("warn", "stderr", "stdout", "context_log", "module_log", "thread_traceback")
CHANNELS = (*ASSET_CHANNELS, "setup_log", "teardown_interrupt")

SECRETS = ("hunter2-plain-secret", "back\\slash-secret", "it's-a-secret")


def _boom(text: str) -> None:
    raise RuntimeError(text)


class Talker(ConfigurableResource):
    """Holds the secret; says it in its setup's log and in its teardown if told to."""

    secret: SecretStr
    channels: tuple[str, ...] = ()

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if "setup_log" in self.channels:
            context.log.warning("marker-setup_log %s", self.secret.get_secret_value())

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if "teardown_interrupt" in self.channels:
            raise KeyboardInterrupt(f"marker-teardown_interrupt {self.secret.get_secret_value()}")


@asset
def talks(context: AssetExecutionContext, talker: Talker) -> int:
    secret = talker.secret.get_secret_value()
    said = set(talker.channels)
    if "warn" in said:
        warnings.warn(f"marker-warn {secret}", UserWarning, stacklevel=1)
    if "stderr" in said:
        print(f"marker-stderr {secret}", file=sys.stderr)
    if "stdout" in said:
        print(f"marker-stdout {secret}")
    if "context_log" in said:
        context.log.warning(f"marker-context_log {secret}")
    if "module_log" in said:
        log.error("marker-module_log %s", secret)
    if "thread_traceback" in said:
        thread = threading.Thread(target=_boom, args=(f"marker-thread_traceback {secret}",))
        thread.start()
        thread.join()
    return os.getpid()


def _arrived(channel: str, text: str) -> bool:
    return f"marker-{channel} {MASK}" in text


def _check(channels: tuple[str, ...], secret: str, text: str, result: Any = None) -> None:
    assert secret not in text
    for channel in channels:
        if channel == "teardown_interrupt":
            # Printed by multiprocessing (masked), or reported as the teardown's failure.
            reported = "" if result is None else repr(result.resource_errors)
            assert secret not in reported
            assert _arrived(channel, text) or _arrived(channel, reported), (channel, text)
        else:
            assert _arrived(channel, text), (channel, text)


@pytest.fixture(params=["multiprocess", "dask"])
def remote(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    if request.param == "dask":
        return "dask", {"address": request.getfixturevalue("host_dask_address")}
    return "multiprocess", {"max_workers": 1}


#: Examples per remote executor in the default run (a ``multiprocess`` run starts its worker
#: afresh, so it draws fewer); ``-m slow`` draws ``SLOW_EXAMPLES`` on each.
EXAMPLES = {"multiprocess": 4, "dask": 8}
SLOW_EXAMPLES = 40


def check_worker_output(
    remote: tuple[str, dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    examples: int,
) -> None:
    """Draw ``examples`` sets of channels and a secret; each run's output arrives, masked."""

    # capfd and caplog are emptied at the start of each example.
    @settings(max_examples=examples, deadline=None)
    @given(
        channels=st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True),
        secret=st.sampled_from(SECRETS),
    )
    def check(channels: list[str], secret: str) -> None:
        executor, config = remote
        if executor == "dask" and "teardown_interrupt" in channels:
            channels = [c for c in channels if c != "teardown_interrupt"] or ["stderr"]
        caplog.clear()
        capfd.readouterr()
        talker = Talker(secret=SecretStr(secret), channels=tuple(channels))
        with caplog.at_level(logging.WARNING):
            result = run_assets(
                [talks], {"talker": talker}, executor=executor, executor_config=config,
                raise_on_error=False,
            )
        out, err = capfd.readouterr()
        records = "\n".join(r.getMessage() for r in caplog.records)
        _check(tuple(channels), secret, "\n".join([out, err, records]), result)
        assert talks.key not in result.failures

    check()


def test_worker_output_reaches_the_caller_masked(
    remote: tuple[str, dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    check_worker_output(remote, capfd, caplog, EXAMPLES[remote[0]])


@pytest.mark.slow
def test_worker_output_reaches_the_caller_masked_long(
    remote: tuple[str, dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    check_worker_output(remote, capfd, caplog, SLOW_EXAMPLES)


ASSETS = """
from tests.test_worker_output import talks
"""

RUN = """
[run]
assets = ["output_assets"]
executor = "EXECUTOR"
executor_config = CONFIG

[resources.talker]
type = "genout.talker"
[resources.talker.config]
secret = SECRET
channels = CHANNELS
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from host._discovery import RESOURCES_GROUP
    from tests.dists import make_dist

    site = tmp_path_factory.mktemp("output-site")
    make_dist(
        site, "gen-output",
        entry_points={RESOURCES_GROUP: {"genout.talker": "tests.test_worker_output:Talker"}},
    )
    return site


#: ``host run`` on each remote executor with each secret; the default run takes one secret
#: with ``\\`` on ``multiprocess`` and one with ``'`` on Dask, the others run under ``-m slow``
#: (the property test above draws from every secret on both).
BY_DEFAULT = {("multiprocess", "back\\slash-secret"), ("dask", "it's-a-secret")}


@pytest.mark.parametrize(
    ("executor", "secret"),
    [
        (executor, secret)
        if (executor, secret) in BY_DEFAULT
        else pytest.param(executor, secret, marks=pytest.mark.slow)
        for executor in ("multiprocess", "dask")
        for secret in SECRETS
    ],
)
def test_host_run_shows_worker_output_masked(
    site: Path, tmp_path: Path, executor: str, secret: str, host_dask_address: str
) -> None:
    channels = CHANNELS if executor == "multiprocess" else (*ASSET_CHANNELS, "setup_log")
    config = (
        "{ max_workers = 1 }" if executor == "multiprocess"
        else f'{{ address = "{host_dask_address}" }}'
    )
    (tmp_path / "output_assets.py").write_text(textwrap.dedent(ASSETS))
    run = (
        RUN.replace("EXECUTOR", executor)
        .replace("CONFIG", config)
        .replace("CHANNELS", "[" + ", ".join(f'"{c}"' for c in channels) + "]")
        # Read from the environment where workers share it; a SecretStr value on a cluster.
        .replace(
            "SECRET",
            '{ env = "TALKER_SECRET" }' if executor == "multiprocess" else json.dumps(secret),
        )
    )
    (tmp_path / "run.toml").write_text(textwrap.dedent(run))
    env = environ(
        None, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), TALKER_SECRET=secret
    )
    done = subprocess.run(
        [HOST, "run", "--plain", "--traceback", str(tmp_path / "run.toml")],
        check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    text = done.stdout + done.stderr
    assert secret not in text
    for channel in channels:
        assert _arrived(channel, text), (channel, text)
