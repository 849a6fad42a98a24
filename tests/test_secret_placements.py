"""A secret in any place of a resource's configuration never reaches what the host reports.

One resource class (``Holder``) can hold a secret in every placement the host must find it in:
a ``SecretStr`` field, an optional one, one nested three models deep, in a ``dict``, a
``list``, a ``tuple``; an ``EnvVar`` on a ``str``, ``int`` or ``SecretStr`` field, inside a
list, a dict or a nested model; ``{ env = "X" }`` in a TOML run config. It quotes the secret
(raw, ``repr``, inside a list's ``repr``, ``json.dumps``, and cut short with ``...``) from one
leak place: its setup, its teardown, an asset using it, a ``field_validator`` of an environment
value, pydantic's own error for an environment value, a log record, its own ``repr`` and
``__dict__``, its init context's ``resource_config``. Everything the host reports is searched
for the secret in every form (:func:`leaks`).

Example counts: the in-process property test runs ``IN_PROCESS_EXAMPLES`` examples by default
(``SLOW_EXAMPLES`` under ``-m slow``); multiprocess and dask run every placement once in one run
(the full placement x leak-place product under ``-m slow``); ``host run`` (with and without
``--traceback``) and ``host check`` run every placement once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, PrivateAttr, SecretStr, field_validator

from host import (
    ConfigError,
    ConfigurableResource,
    EnvVar,
    HostError,
    InitResourceContext,
    RunFailure,
    RunResult,
    run_assets,
)
from host._discovery import RESOURCES_GROUP
from tests.conftest import EXECUTORS
from tests.dists import HOST, make_dist, run
from tests.graphs import make_asset
from tests.recording import read, write

ROOT = Path(__file__).resolve().parent.parent

IN_PROCESS_EXAMPLES = 60
SLOW_EXAMPLES = 400

#: The environment variable every EnvVar placement reads.
VAR = "HOST_PLACED_SECRET"


class Deep(BaseModel):
    secret: SecretStr


class Mid(BaseModel):
    deep: Deep


class Outer(BaseModel):
    mid: Mid


def quote(secret: str) -> str:
    """How careless code quotes a secret: raw, repr, in a list, as JSON, cut short."""
    cut = 8 + len(secret) // 3
    return (
        f"raw={secret} repr={secret!r} list={[secret]!r} json={json.dumps(secret)} "
        f"ascii={secret!a} cut={secret[:cut]}... tail=...{secret[-cut:]}"
    )


class Holder(ConfigurableResource):
    """Holds one secret in the placement ``where`` and quotes it from the place ``leak``."""

    record: str
    where: str
    leak: str
    top: SecretStr | None = None
    optional: SecretStr | None = None
    outer: Outer | None = None
    mapping: dict[str, SecretStr] = Field(default_factory=dict)
    listed: list[SecretStr] = Field(default_factory=list)
    tupled: tuple[str, SecretStr] | None = None
    env_str: str | None = None
    env_int: int | None = None
    env_secret: SecretStr | None = None
    env_list: list[str] = Field(default_factory=list)
    env_dict: dict[str, str] = Field(default_factory=dict)
    checked: str | None = None
    _context: Any = PrivateAttr(default=None)

    @field_validator("checked")
    @classmethod
    def _refuse(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(f"bad value {value} ({value!r})")
        return value

    def secret(self) -> str:
        """The secret, wherever it is held."""
        found: dict[str, Any] = {
            "top": self.top,
            "optional": self.optional,
            "nested": self.outer.mid.deep.secret if self.outer else None,
            "env_nested": self.outer.mid.deep.secret if self.outer else None,
            "mapping": self.mapping.get("k"),
            "listed": self.listed[-1] if self.listed else None,
            "tupled": self.tupled[1] if self.tupled else None,
            "env_str": self.env_str,
            "env_secret": self.env_secret,
            "env_list": self.env_list[-1] if self.env_list else None,
            "env_dict": self.env_dict.get("k"),
        }
        value = found[self.where]
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    def _say(self, place: str, context: InitResourceContext) -> None:
        if self.leak != place:
            return
        text = quote(self.secret())
        if place == "log":
            context.log.warning("the holder logs %s", text)
            return
        if place == "repr":
            text = f"{self!r} {self.__dict__!r} {text}"
        elif place == "resource_config":
            text = f"{context.resource_config!r} {text}"
        raise RuntimeError(f"{place} of the holder failed: {text}")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.where)
        for place in ("setup", "log", "repr", "resource_config"):
            self._say(place, context)
        self._context = context
        write(self.record, event="up", key=context.resource_key, label=self.where)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label=self.where)
        self._say("teardown", context)

    def use(self) -> str:
        if self.leak == "asset":
            raise ValueError(f"the asset saw {quote(self.secret())}")
        return "used"


def config_for(where: str, secret: str) -> dict[str, Any]:
    """The Holder configuration that puts ``secret`` (or EnvVar ``VAR``) in ``where``."""
    env = EnvVar(VAR)
    return {
        "top": {"top": secret},
        "optional": {"optional": secret},
        "nested": {"outer": {"mid": {"deep": {"secret": secret}}}},
        "mapping": {"mapping": {"k": secret}},
        "listed": {"listed": ["not-a-secret-1", secret]},
        "tupled": {"tupled": ("label", secret)},
        "env_str": {"env_str": env},
        "env_int": {"env_int": env},
        "env_secret": {"env_secret": env},
        "env_list": {"env_list": ["plain", env]},
        "env_dict": {"env_dict": {"k": env}},
        "env_nested": {"outer": {"mid": {"deep": {"secret": env}}}},
    }[where]


LITERAL = ["top", "optional", "nested", "mapping", "listed", "tupled"]
FROM_ENV = ["env_str", "env_secret", "env_list", "env_dict", "env_nested"]
PLACEMENTS = [*LITERAL, *FROM_ENV, "env_int"]
#: Places a run reaches (a run_assets result shows them).
RUN_PLACES = ["setup", "teardown", "asset", "repr", "resource_config"]
#: Places that stop the run before anything comes up (values read from the environment).
CONFIG_PLACES = ["validator", "pydantic"]


def holder(where: str, leak: str, secret: str, record: str) -> Holder:
    config = config_for(where, secret)
    if leak == "validator":
        config = {"checked": EnvVar(VAR)}
    elif leak == "pydantic":
        config = {"env_int": EnvVar(VAR)}
    return Holder(record=record, where=where, leak=leak, **config)


# -- what the host reported, searched ----------------------------------------------------------


def forms(secret: str) -> set[str]:
    """The secret as text may show it: raw, repr/ascii/json escaped, and its first and last
    characters (8 of the raw value, 12 of each escaped form: enough to be telling)."""
    escaped = {
        repr(secret)[1:-1],
        repr(secret + '"')[1:-2],
        ascii(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(repr(secret))[1:-1],
    }
    found = {secret, secret[:8], secret[-8:]}
    for form in escaped:
        found |= {form, form[:12], form[-12:]}
    return found


def leaks(texts: list[str], secret: str) -> list[str]:
    """The texts that show ``secret`` in some form (empty: nothing leaked)."""
    every = forms(secret)
    return [text for text in texts if any(form in text for form in every)]


def strings(obj: Any) -> list[str]:
    """Every string inside ``obj`` (dataclasses, mappings, sequences), and its repr."""
    found = [repr(obj)]
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def reported(error: BaseException | None, result: RunResult | None) -> list[str]:
    """Everything the host reported: the result's every string, the error's text and its
    traceback (with the whole chain for the host's own errors, without it for RunFailure,
    whose cause is the resource's or asset's own exception)."""
    texts: list[str] = []
    if result is not None:
        texts += strings(result)
    if error is not None:
        texts.append(str(error))
        chain = not isinstance(error, RunFailure)
        texts.append("".join(traceback.format_exception(error, chain=chain)))
    return texts


def outcome(
    resources: dict[str, Any], executor: str = "in_process", config: Any = None
) -> tuple[BaseException | None, RunResult | None]:
    assets = [make_asset(f"use_{key}", resources=[key]) for key in resources]
    try:
        result = run_assets(assets, resources, executor=executor, executor_config=config)
    except RunFailure as failure:
        return failure, failure.result
    except HostError as error:
        return error, None
    return None, result


# -- the secret --------------------------------------------------------------------------------

#: Characters a secret is made of: escapes, quotes, newline, non-ASCII, ordinary letters.
_TELLING = "QXZJKqxzjk0123456789"
_SPECIAL = "\\'\"\n\té€ü√ 😀-_=:/"


@st.composite
def secrets(draw: st.DrawFn) -> str:
    """A secret of at least 16 characters: its first and last 8 each hold at least 4 rare
    characters (so that they are telling), with quotes, backslashes, newlines and non-ASCII
    anywhere; sometimes long (as pydantic cuts it short)."""
    end = st.lists(st.sampled_from(_TELLING + _SPECIAL), min_size=8, max_size=8).filter(
        lambda chars: sum(char in _TELLING for char in chars) >= 4
    )
    alphabet = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00*")
    middle = draw(st.one_of(st.text(alphabet, max_size=12), st.text(alphabet, min_size=80)))
    return "".join(draw(end)) + middle + "".join(draw(end))


@contextlib.contextmanager
def variable(value: str) -> Iterator[None]:
    """``VAR`` set to ``value`` in this process for the block."""
    before = os.environ.get(VAR)
    os.environ[VAR] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(VAR, None)
        else:
            os.environ[VAR] = before


# -- in process, every placement x every leak place x any secret ----------------------------


def check_in_process(work: Path, where: str, leak: str, secret: str) -> None:
    if where == "env_int":
        leak = "pydantic"  # an int field from a secret text never validates
    work.mkdir(parents=True, exist_ok=True)
    record = str(work / f"{len(list(work.iterdir()))}.jsonl")
    with variable(secret):
        error, result = outcome({"holder": holder(where, leak, secret, record)})
    found = leaks(reported(error, result), secret)
    assert not found, (where, leak, found[:1])
    if leak in CONFIG_PLACES:
        assert isinstance(error, ConfigError), error
        assert (error.resource_key, VAR in str(error)) == ("holder", True)
        assert error.__cause__ is None and error.__context__ is None
        assert read(record) == []  # nothing came up
    else:
        assert result is not None and not result.success
        assert [r["event"] for r in read(record)].count("setup") == 1


@settings(
    max_examples=IN_PROCESS_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    where=st.sampled_from(PLACEMENTS),
    leak=st.sampled_from(RUN_PLACES + CONFIG_PLACES),
    secret=secrets(),
)
def test_no_placement_leaks_in_process(tmp_path: Path, where: str, leak: str, secret: str) -> None:
    check_in_process(tmp_path / "runs", where, leak, secret)


@pytest.mark.slow
@settings(
    max_examples=SLOW_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    where=st.sampled_from(PLACEMENTS),
    leak=st.sampled_from(RUN_PLACES + CONFIG_PLACES),
    secret=secrets(),
)
def test_no_placement_leaks_in_process_slow(
    tmp_path: Path, where: str, leak: str, secret: str
) -> None:
    check_in_process(tmp_path / "runs", where, leak, secret)


# -- on worker processes: every placement once, in one run ----------------------------------

#: A fixed secret with every hard character, long enough to be cut short.
FIXED = "Qx7\\'\"\né€-" + "z" * 70 + "-J9k\\'\"q2X"


def _setenv(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@pytest.fixture
def worker_variable(executor: tuple[str, dict[str, Any]]) -> Iterator[None]:
    """``VAR`` set to :data:`FIXED` where the run's resources come up."""
    name, config = executor
    with variable(FIXED):
        if name != "dask":
            yield
            return
        from distributed import Client

        with Client(config["address"], set_as_default=False) as client:
            client.run(_setenv, VAR, FIXED)
            try:
                yield
            finally:
                client.run(_setenv, VAR, None)


def sample(placements: list[str], places: list[str]) -> list[tuple[str, str]]:
    """Each placement once, with the leak places taken in turn."""
    return [(where, places[index % len(places)]) for index, where in enumerate(placements)]


def check_on(
    executor: tuple[str, dict[str, Any]], work: Path, pairs: list[tuple[str, str]]
) -> None:
    name, config = executor
    work.mkdir(parents=True, exist_ok=True)
    record = str(work / "records.jsonl")
    resources = {
        f"p{index}_{where}": holder(where, leak, FIXED, record)
        for index, (where, leak) in enumerate(pairs)
    }
    error, result = outcome(resources, name, config)
    found = leaks(reported(error, result), FIXED)
    assert not found, found[:1]
    assert result is not None and not result.success
    setups = {r["key"] for r in read(record) if r["event"] == "setup"}
    assert setups == set(resources)  # every holder came up (and quoted its secret)
    failed = set(result.failures) | {f"use_{e.resource_key}" for e in result.resource_errors}
    assert failed == {f"use_{key}" for key in resources}


@pytest.mark.parametrize("executor", EXECUTORS[1:], indirect=True)
def test_every_placement_once_on_worker_processes(
    executor: tuple[str, dict[str, Any]], worker_variable: None, tmp_path: Path
) -> None:
    check_on(executor, tmp_path, sample([p for p in PLACEMENTS if p != "env_int"], RUN_PLACES))


@pytest.mark.slow
@pytest.mark.parametrize("executor", EXECUTORS[1:], indirect=True)
@pytest.mark.parametrize("leak", RUN_PLACES)
def test_every_placement_and_place_on_worker_processes(
    executor: tuple[str, dict[str, Any]], worker_variable: None, tmp_path: Path, leak: str
) -> None:
    check_on(executor, tmp_path, [(p, leak) for p in PLACEMENTS if p != "env_int"])


# -- through the command line: host run (with and without --traceback) and host check --------


def toml_value(value: Any) -> str:
    if isinstance(value, EnvVar):
        return f'{{ env = "{value.name}" }}'
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def run_config(path: Path, pairs: list[tuple[str, str]], executor: str = "in_process") -> Path:
    """A run config with a Holder per (placement, leak place), and an asset using each."""
    record = str(path.parent / "records.jsonl")
    lines = [
        "[run]",
        'assets = ["placed_assets"]',
        f'executor = "{executor}"',
        "executor_config = { max_workers = 2 }" if executor == "multiprocess" else "",
    ]
    keys = []
    for index, (where, leak) in enumerate(pairs):
        key = f"p{index}_{where}"
        keys.append(key)
        config = dict(config_for(where, FIXED))
        if leak == "validator":
            config = {"checked": EnvVar(VAR)}
        elif leak == "pydantic":
            config = {"env_int": EnvVar(VAR)}
        config |= {"record": record, "where": where, "leak": leak}
        lines += [f"[resources.{key}]", 'type = "placed.holder"', f"[resources.{key}.config]"]
        lines += [f"{name} = {toml_value(value)}" for name, value in config.items()]
    (path.parent / "placed_assets.py").write_text(
        "from tests.graphs import make_asset\n"
        + "".join(f"use_{key} = make_asset('use_{key}', resources=['{key}'])\n" for key in keys)
    )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def placed_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("placed-site")
    holder_type = {"placed.holder": "tests.test_secret_placements:Holder"}
    make_dist(site, "gen-placed", entry_points={RESOURCES_GROUP: holder_type})
    return site


def host(site: Path, *args: str, cwd: Path) -> tuple[int, str]:
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), VAR: FIXED}
    done = run([HOST, *args], cwd=cwd, env=env)
    return done.returncode, done.stdout + done.stderr


def test_host_run_and_check_show_no_placement(placed_site: Path, tmp_path: Path) -> None:
    places = [*RUN_PLACES, "log"]
    path = run_config(tmp_path / "run.toml", sample(PLACEMENTS[:-1], places))
    outputs = []
    for args in (["run", "--plain", "--traceback"], ["run", "--plain"], ["check"]):
        code, text = host(placed_site, *args, str(path), cwd=tmp_path)
        assert code == (0 if args == ["check"] else 1), text
        outputs.append(text)
    assert not leaks(outputs, FIXED), leaks(outputs, FIXED)[0]
    assert "**********" in outputs[0] and "the holder logs" in outputs[0]  # quoted, masked
    setups = {r["key"] for r in read(tmp_path / "records.jsonl") if r["event"] == "setup"}
    assert len(setups) == len(PLACEMENTS) - 1


def test_host_run_on_multiprocess_shows_no_placement(placed_site: Path, tmp_path: Path) -> None:
    path = run_config(tmp_path / "run.toml", sample(PLACEMENTS[:-1], RUN_PLACES), "multiprocess")
    code, text = host(placed_site, "run", "--plain", "--traceback", str(path), cwd=tmp_path)
    assert code == 1, text
    assert not leaks([text], FIXED), text
    assert "**********" in text


@pytest.mark.parametrize("leak", CONFIG_PLACES)
def test_host_check_and_run_show_no_env_value_that_does_not_validate(
    placed_site: Path, tmp_path: Path, leak: str
) -> None:
    path = run_config(tmp_path / "run.toml", [("env_str", leak), ("top", "setup")])
    outputs = []
    for args in (["check", "--traceback"], ["run", "--plain", "--traceback"]):
        code, text = host(placed_site, *args, str(path), cwd=tmp_path)
        assert code == 2, text  # invalid input: nothing was brought up
        field = "checked" if leak == "validator" else "env_int"
        assert "'p0_env_str'" in text and field in text and VAR in text, text
        outputs.append(text)
    assert not leaks(outputs, FIXED), outputs
    assert read(tmp_path / "records.jsonl") == []
