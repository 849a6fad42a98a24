"""A secret in any place of a function resource's config never reaches what the host reports.

The function resource sees its real config (``context.resource_config``: values read from the
environment, ``SecretStr`` values), since it has no other way to see them; it quotes its secret
(see ``tests.test_secret_placements.quote``) from its setup, its teardown, the object an asset
uses, or its ``resource_config``. Everything the host reports is searched for the secret in
every form. Example counts: ``EXAMPLES`` in process; every placement once on worker processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from host import EnvVar, InitResourceContext, resource
from tests.recording import read, write
from tests.test_secret_placements import (
    VAR,
    leaks,
    outcome,
    quote,
    reported,
    secrets,
    variable,
)

EXAMPLES = 30

PLACEMENTS = ["top", "listed", "env_str", "env_secret", "env_list", "env_dict"]
PLACES = ["setup", "teardown", "asset", "resource_config"]


class Used:
    """What assets receive of the function resource."""

    def __init__(self, secret: str, leak: str) -> None:
        self._secret, self._leak = secret, leak

    def use(self) -> str:
        if self._leak == "asset":
            raise ValueError(f"the asset saw {quote(self._secret)}")
        return "used"


def _secret_of(config: dict[str, Any]) -> str:
    where = config["where"]
    value: Any = {
        "top": config["top"],
        "listed": (config["listed"] or [None])[-1],
        "env_str": config["env_str"],
        "env_secret": config["env_secret"],
        "env_list": (config["env_list"] or [None])[-1],
        "env_dict": config["env_dict"].get("k"),
    }[where]
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


@resource(
    config_schema={
        "record": str,
        "where": str,
        "leak": str,
        "top": (SecretStr | None, None),
        "listed": (list[SecretStr], []),
        "env_str": (str | None, None),
        "env_secret": (SecretStr | None, None),
        "env_list": (list[str], []),
        "env_dict": (dict[str, str], {}),
    }
)
def holder(context: InitResourceContext) -> Any:
    config = dict(context.resource_config)
    secret = _secret_of(config)

    def say(place: str) -> None:
        if config["leak"] == place == "resource_config":
            raise RuntimeError(f"the holder failed: {context.resource_config!r} {quote(secret)}")
        if config["leak"] == place:
            raise RuntimeError(f"{place} of the holder failed: {quote(secret)}")

    write(config["record"], event="setup", key=context.resource_key, label=config["where"])
    say("setup")
    say("resource_config")
    yield Used(secret, config["leak"])
    write(config["record"], event="teardown", key=context.resource_key, label=config["where"])
    say("teardown")


def configured(where: str, leak: str, secret: str, record: str) -> Any:
    env = EnvVar(VAR)
    placed = {
        "top": {"top": secret},
        "listed": {"listed": ["not-a-secret-1", secret]},
        "env_str": {"env_str": env},
        "env_secret": {"env_secret": env},
        "env_list": {"env_list": ["plain", env]},
        "env_dict": {"env_dict": {"k": env}},
    }[where]
    return holder.configured({"record": record, "where": where, "leak": leak, **placed})


def check(executor: str, work: Path, where: str, leak: str, secret: str) -> None:
    work.mkdir(parents=True, exist_ok=True)
    record = str(work / f"{len(list(work.iterdir()))}.jsonl")
    config = {"max_workers": 1} if executor == "multiprocess" else None
    with variable(secret):
        resources = {"holder": configured(where, leak, secret, record)}
        error, result = outcome(resources, executor, config)
    found = leaks(reported(error, result), secret)
    assert not found, (where, leak, found[:1])
    assert result is not None and not result.success
    events = [r["event"] for r in read(record)]
    assert events.count("setup") == 1
    assert events.count("teardown") == (0 if leak in ("setup", "resource_config") else 1)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(where=st.sampled_from(PLACEMENTS), leak=st.sampled_from(PLACES), secret=secrets())
def test_no_placement_leaks_in_process(tmp_path: Path, where: str, leak: str, secret: str) -> None:
    check("in_process", tmp_path / "work", where, leak, secret)


def test_every_placement_once_on_worker_processes(tmp_path: Path) -> None:
    """One run on worker processes: every placement, each quoting from another place."""
    secret = "Qx7\\'\"\né€-" + "z" * 30 + "-J9k\\'\"q2X"
    records = {where: str(tmp_path / f"{where}.jsonl") for where in PLACEMENTS}
    resources = {
        f"holder_{where}": configured(where, PLACES[i % len(PLACES)], secret, records[where])
        for i, where in enumerate(PLACEMENTS)
    }
    with variable(secret):
        error, result = outcome(resources, "multiprocess", {"max_workers": 2})
    found = leaks(reported(error, result), secret)
    assert not found, found[:1]
    assert result is not None and set(result.failures) == {f"use_{key}" for key in resources} - {
        f"use_holder_{where}"
        for i, where in enumerate(PLACEMENTS)
        if PLACES[i % len(PLACES)] == "teardown"
    }
    for where in PLACEMENTS:
        assert [r["event"] for r in read(records[where])].count("setup") == 1
