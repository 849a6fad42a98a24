"""Dagster in its own virtual environment, and a client for ``dagster_worker.py`` running there."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["DagsterWorker", "ensure_dagster"]

HERE = Path(__file__).resolve().parent
#: Dagster's environment; under results/, which git ignores.
VENV = HERE / "results" / "dagster-venv"
WORKER = HERE / "dagster_worker.py"


def _python(env: Path) -> Path:
    return env / "bin" / "python"


def _installed_version(python: Path) -> str | None:
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('dagster'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_dagster(spec: str = "dagster", env: Path = VENV) -> tuple[Path, str]:
    """Dagster's interpreter and version, installing ``pip install SPEC`` into ``env`` if needed.

    An environment that already has Dagster is reused as it is (delete it to upgrade).
    """
    python = _python(env)
    if not python.exists():
        print(f"creating {env} ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    version = _installed_version(python)
    if version is None:
        print(f"pip install {spec} into {env} ...", file=sys.stderr)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", spec],
            check=True,
        )
        version = _installed_version(python)
        if version is None:
            raise RuntimeError(f"dagster is still not importable in {env} after pip install")
    return python, version


class DagsterWorker:
    """``dagster_worker.py`` running in Dagster's environment; each request times one run there."""

    def __init__(self, python: Path) -> None:
        self._process = subprocess.Popen(
            [str(python), str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            cwd=str(HERE),
        )

    def __enter__(self) -> DagsterWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send one request, wait for its answer; raise if the worker reports an error."""
        stdin: IO[str] | None = self._process.stdin
        stdout: IO[str] | None = self._process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the Dagster worker exited (code {self._process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the Dagster worker failed on {op!r}:\n{answer['error']}")
        return answer

    def run(self, op: str, **arguments: Any) -> tuple[float, dict[str, Any]]:
        """One timed run: (seconds measured inside the worker, the other figures)."""
        answer = self.request(op, **arguments)
        seconds = float(answer.pop("seconds"))
        return seconds, answer

    def close(self) -> None:
        """Ask the worker to quit; kill it if it does not within 30 s."""
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self._process.stdin.close()
                self._process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
