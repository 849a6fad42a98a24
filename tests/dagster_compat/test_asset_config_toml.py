"""``[assets.NAME.config]``: a run config file gives an asset's ``host.Config``, checked with the
rest of the file, through the real ``host`` command."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.dists import HOST, run

ASSETS = """
from host import Config, asset

class Greeting(Config):
    word: str
    times: int = 1

@asset
def greet(config: Greeting):
    return " ".join([config.word] * config.times)

@asset
def shout(greet):
    return greet.upper()
"""


def _write(tmp_path: Path, table: str) -> Path:
    (tmp_path / "cfg_assets.py").write_text(textwrap.dedent(ASSETS))
    path = tmp_path / "run.toml"
    path.write_text('[run]\nassets = ["cfg_assets"]\n' + textwrap.dedent(table))
    return path


def test_the_file_gives_the_config_and_set_overrides_it(tmp_path: Path) -> None:
    path = _write(tmp_path, '[assets.greet.config]\nword = "hi"\ntimes = 2\n')
    done = run([HOST, "run", str(path), "--no-history", "--json"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assets = {a["key"]: a for a in json.loads(done.stdout)["assets"]}
    assert assets["greet"]["status"] == "ok" and assets["shout"]["status"] == "ok"
    done = run(
        [HOST, "run", str(path), "--no-history", "--set", "assets.greet.config.word=yo"],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'YO YO'" in done.stdout


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("", ["greet", "word"]),  # a required field not given
        ('[assets.greet.config]\nword = "hi"\ntimes = "many"\n', ["greet", "times"]),
        ('[assets.greet.config]\nword = "hi"\nloud = true\n', ["greet", "loud"]),
        ('[assets.gret.config]\nword = "hi"\n', ["[assets.gret]", "did you mean [assets.greet]"]),
        ('[assets.greet]\nconfg = {}\n', ["confg"]),
    ],
)
def test_bad_asset_config_is_one_clear_error_before_anything_runs(
    tmp_path: Path, table: str, words: list[str]
) -> None:
    path = _write(tmp_path, table)
    for command in ("check", "run"):
        flags = ["--no-history"] if command == "run" else []
        done = run([HOST, command, str(path), *flags], cwd=tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stdout == ""
        for word in words:
            assert word in done.stderr, done.stderr
