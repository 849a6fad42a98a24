"""Workload 4: ``host plugins`` and ``host resources`` start-up with 0 and 300 extra plugins.

The extra plugins are real installed distributions as ``importlib_metadata`` sees them: a
throwaway directory on ``PYTHONPATH`` holds, for each, a ``*.dist-info`` folder (``METADATA``,
``entry_points.txt``, ``top_level.txt``, ``RECORD``) and its package, which declares one resource
type (``host.resources``) and one hook plugin (``host.plugins``). The baseline run gets an empty
directory on ``PYTHONPATH``, so both runs have the same ``sys.path``. Each figure is the wall time
of the whole command, from the parent, interleaved between the two environments; ``import host``
alone and the ``host plugins`` command's own work (after the import) are also timed inside a fresh
interpreter, to tell start-up from the command's work.

The time added is the difference of the two medians; the median of the paired differences (each
round runs both environments back to back, in alternating order) is reported beside it. Where
the two disagree, the machine's own jitter (page cache reclaimed, other load) is larger than
what is measured, and the parts timed inside the process are the steadier figures.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["command", "make_distributions", "run_discovery"]

PLUGINS = 300

_MODULE = '''"""Generated for the host benchmarks: one resource type and an empty hook plugin."""

from host import ConfigurableResource


class BenchResource{i}(ConfigurableResource):
    """A generated resource."""

    url: str = "bench://{i}"
'''


def make_distributions(target: Path, count: int) -> None:
    """Write ``count`` installed distributions ``host-bench-plugin-I`` into ``target``."""
    for i in range(count):
        package = f"host_bench_plugin_{i}"
        (target / package).mkdir(parents=True)
        (target / package / "__init__.py").write_text(_MODULE.format(i=i))
        info = target / f"{package}-1.0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\n"
            f"Name: host-bench-plugin-{i}\n"
            "Version: 1.0.0\n"
            f"Summary: Generated plugin {i} for the host benchmarks\n"
            "Requires-Dist: host\n"
        )
        (info / "entry_points.txt").write_text(
            f"[host.resources]\nbench_{i} = {package}:BenchResource{i}\n\n"
            f"[host.plugins]\nbench_{i} = {package}\n"
        )
        (info / "top_level.txt").write_text(f"{package}\n")
        (info / "INSTALLER").write_text("bench\n")
        (info / "RECORD").write_text(
            f"{package}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/entry_points.txt,,\n"
        )


def command() -> tuple[list[str] | None, str]:
    """How to start the ``host`` command here, or ``None`` and why it is not available."""
    script = Path(sys.executable).with_name("host")
    if script.exists():
        return [str(script)], ""
    try:
        import host._cli  # noqa: F401
    except ImportError as exc:
        return None, f"skipped: the host command is not available yet ({exc})"
    launcher = "import sys; from host._cli import main; sys.argv[0] = 'host'; sys.exit(main())"
    return [sys.executable, "-c", launcher], ""


#: Times ``import host`` inside a fresh interpreter: the part of start-up that is not the
#: command's own work (pydantic, for one, reads every distribution's entry points on first use).
IMPORT_PROBE = (
    "import time; start = time.perf_counter(); import host; print(time.perf_counter() - start)"
)
#: Times the ``host plugins`` command's own work (discovery and listing) after ``import host``.
COMMAND_PROBE = (
    "import contextlib, io, time, host; start = time.perf_counter()\n"
    "from host._cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    main(['plugins'])\n"
    "print(time.perf_counter() - start)"
)


def _run(argv: list[str], pythonpath: Path, cache: Path) -> float:
    """Wall time of ``argv`` from here, or what it printed last if it is the import probe.

    The discovery listing cache lives under ``cache`` (the run's own, not the user's).
    """
    env = dict(os.environ, PYTHONPATH=str(pythonpath), XDG_CACHE_HOME=str(cache))
    env.pop("HOST_DISABLE_PLUGIN_AUTOLOAD", None)  # list plugins as a user's shell would
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    if argv[-1] in (IMPORT_PROBE, COMMAND_PROBE):
        return float(done.stdout.strip().splitlines()[-1])
    return seconds


def run_discovery(repetitions: int) -> dict[str, Any]:
    """Median start-up of each command with 0 and with :data:`PLUGINS` extra distributions."""
    base, why_not = command()
    if base is None:
        return {"skipped": why_not}
    figures: dict[str, Any] = {"plugins_generated": PLUGINS, "command": " ".join(base)}
    scratch = Path(tempfile.mkdtemp(prefix="host-bench-discovery-"))
    try:
        empty, full = scratch / "empty", scratch / "plugins"
        empty.mkdir()
        make_distributions(full, PLUGINS)
        # The listing cache keeps no listing of metadata younger than 2 s (a file system's clock
        # is coarse); a user's plugins were installed long before the command runs.
        time.sleep(2.5)
        cache = scratch / "cache"
        commands = {
            "plugins": [*base, "plugins"],
            "resources": [*base, "resources"],
            "import host": [sys.executable, "-c", IMPORT_PROBE],
            "plugins, in process": [sys.executable, "-c", COMMAND_PROBE],
        }
        for label, argv in commands.items():
            try:
                for path in (empty, full):  # warm the file system cache
                    _run(argv, path, cache)
            except RuntimeError as exc:
                figures[label] = {"skipped": f"failed: {exc}"}
                continue
            samples: dict[str, list[float]] = {"0": [], str(PLUGINS): []}
            for round_ in range(repetitions):
                order = [("0", empty), (str(PLUGINS), full)]
                for env, path in order if round_ % 2 == 0 else order[::-1]:
                    samples[env].append(_run(argv, path, cache))
            medians = {env: statistics.median(values) for env, values in samples.items()}
            paired = [b - a for a, b in zip(samples["0"], samples[str(PLUGINS)], strict=True)]
            figures[label] = {
                "median_s": medians,
                "samples_s": samples,
                "added_ms": (medians[str(PLUGINS)] - medians["0"]) * 1e3,
                "added_ms_paired": statistics.median(paired) * 1e3,
            }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return figures
