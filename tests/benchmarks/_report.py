"""The figures as tables (terminal and Markdown), the targets with pass/miss, and RESULTS.md."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["evaluate_targets", "machine", "markdown", "tables", "versions"]

_NOTES = re.compile(r"<!-- notes -->.*?<!-- /notes -->", re.DOTALL)
_NOTES_PLACEHOLDER = (
    "<!-- notes -->\n_Findings and proposals are written here by hand; the runner keeps this "
    "block._\n<!-- /notes -->"
)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    cores = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                cores += 1
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu": model,
        "cpuinfo_processors": cores,
        "nproc": len(os.sched_getaffinity(0)),
        "memory": memory,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(extra: Mapping[str, str]) -> dict[str, str]:
    """Versions of host and the packages the figures depend on, in this environment."""
    found: dict[str, str] = {}
    for name in ("host", "pydantic", "pydantic-core", "pluggy", "importlib-metadata",
                 "cloudpickle", "host-plugin-dask", "dask", "distributed"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    found.update(extra)
    return found


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f}" if seconds < 10 else f"{seconds * 1e3:,.0f}"


def _ratio(value: float) -> str:
    return f"{value:,.0f}x" if value >= 100 else f"{value:,.1f}x"


def _config_text(config: Mapping[str, Any]) -> str:
    """An executor_config as shown: a running cluster's address stands for itself."""
    shown = {k: ("<running 2-worker LocalCluster>" if k == "address" else v)
             for k, v in config.items()}
    return str(shown)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _in_process_rows(section: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for n, figures in section.get("sizes", {}).items():
        host, bare = figures.get("host", {}), figures.get("bare", {})
        dagster = figures.get("dagster", {})
        broken = [f"{name}: {f['error']}" for name, f in figures.items()
                  if isinstance(f, dict) and "error" in f]
        if broken or "median_s" not in host or "median_s" not in bare:
            rows.append([n, *(["-"] * 7), "; ".join(broken) or "not measured"])
            continue
        over = figures.get("overhead_us_per_asset", {})
        row = [
            n,
            _ms(host["median_s"]),
            _ms(bare["median_s"]),
            _ms(dagster["median_s"]) if "median_s" in dagster else "-",
            f"{over['host']:,.2f}",
            f"{over['dagster']:,.0f}" if "dagster" in over else "-",
            _ratio(over["dagster"] / over["host"])
            if "dagster" in over and over["host"] > 0 else "-",
            f"{host.get('setups', '-')}/{dagster.get('setups', '-')}",
            f"{host['repetitions']}/{bare['repetitions']}/{dagster.get('repetitions', 0)}",
        ]
        rows.append(row)
    return rows


_IN_PROCESS_HEADERS = (
    "N", "host ms", "bare ms", "Dagster ms", "host-bare us/asset", "Dagster-bare us/asset",
    "Dagster/host overhead", "setups/run host/Dagster", "reps host/bare/Dagster",
)


def tables(results: Mapping[str, Any]) -> list[str]:
    """Every measured section as Markdown tables (readable in a terminal too)."""
    out: list[str] = []
    failed = {name: section for name, section in results.items()
              if isinstance(section, dict) and "error" in section}
    for name, section in failed.items():
        last = section["error"].strip().splitlines()[-1]
        out += [f"### {name}", "", f"Failed: `{last}` (traceback in latest.json).", ""]
    results = {name: section for name, section in results.items() if name not in failed}
    for kind, title in (("fan", "In-process fan (3 resources per asset)"),
                        ("chain", "In-process chain")):
        if kind in results:
            out += [f"### {title}", "", *_table(_IN_PROCESS_HEADERS,
                                                _in_process_rows(results[kind])), ""]
    if "multiprocess" in results:
        section = results["multiprocess"]["contenders"]
        dagster = section.get("dagster", {}).get("median_s")
        rows = []
        for name, figures in section.items():
            if "skipped" in figures or "error" in figures:
                rows.append([name, "-", "-", "-", figures.get("skipped") or figures["error"]])
                continue
            rows.append([
                name,
                _ms(figures["median_s"]),
                str(figures.get("setups", "-")),
                _ratio(dagster / figures["median_s"]) if dagster and name != "dagster" else "-",
                f"{figures['repetitions']} reps"
                + (f", executor_config={_config_text(figures['config'])}"
                   if "config" in figures else ""),
            ])
        out += ["### Multiprocess fan (16 assets, 50 ms setup, 2 workers)", "",
                *_table(("executor", "median ms", "setups", "Dagster/this", "notes"), rows), ""]
    if "discovery" in results:
        section = results["discovery"]
        if "skipped" in section:
            out += ["### Discovery", "", section["skipped"], ""]
        else:
            rows = []
            titles = {"plugins": "host plugins", "resources": "host resources",
                      "import host": "import host (inside the process)",
                      "plugins, in process": "host plugins: the command's work after the import "
                                             "(inside the process)"}
            for command, title in titles.items():
                figures = section.get(command, {})
                if "skipped" in figures:
                    rows.append([title, "-", "-", figures["skipped"], ""])
                elif figures:
                    medians = figures["median_s"]
                    paired = figures.get("added_ms_paired")
                    rows.append([title, _ms(medians["0"]),
                                 _ms(medians[str(section["plugins_generated"])]),
                                 f"{figures['added_ms']:+.1f}",
                                 "-" if paired is None else f"{paired:+.1f}"])
            out += [f"### Discovery (0 vs {section['plugins_generated']} extra distributions; "
                    "whole command, wall time, unless inside the process)", "",
                    *_table(("command", "0 extra ms", f"{section['plugins_generated']} extra ms",
                             "added ms (difference of the medians)",
                             "median of the paired differences"), rows), ""]
    if "import" in results:
        section = results["import"]
        host = section["import_host"]["median_s"]
        dagster = section.get("import_dagster", {}).get("median_s")
        rows = [["import host", _ms(host), f"{len(section['import_host']['samples_s'])}"]]
        host_run = section.get("import_host_run", {}).get("median_s")
        if host_run:
            rows.append(["import host; from host import run_assets", _ms(host_run),
                         f"{len(section['import_host_run']['samples_s'])}"])
        floor = section.get("import_pydantic", {}).get("median_s")
        if floor:
            rows.append(["import pydantic; one model class (the floor under import host)",
                         _ms(floor), f"{len(section['import_pydantic']['samples_s'])}"])
        if dagster:
            rows.append(["import dagster", _ms(dagster),
                         f"{len(section['import_dagster']['samples_s'])}"])
            rows.append(["host / dagster", f"{host / dagster:.2f}", ""])
            if host_run:
                rows.append(["host with run_assets / dagster", f"{host_run / dagster:.2f}", ""])
            if floor:
                rows.append(["pydantic with one model / dagster", f"{floor / dagster:.2f}", ""])
        out += ["### Import time (fresh process, import statement only, warm bytecode caches)",
                "",
                *_table(("", "median ms", "reps"), rows), ""]
        out += ["`python -X importtime -c 'import host'`, largest first-level imports:", "",
                *_table(("module", "cumulative ms", "share of import host"),
                        [[row["module"], f"{row['cumulative_ms']:.1f}",
                          f"{row['share_of_import']:.0%}"]
                         for row in section["import_host_breakdown"]]), ""]
    if "memory" in results:
        section = results["memory"]
        rows = [
            [name, f"{section[name]['rss_before_mb']:.1f}", f"{section[name]['rss_peak_mb']:.1f}",
             f"{section[name]['traced_peak_mb']:.1f}"]
            for name in ("host", "bare")
        ]
        out += [f"### Peak memory of the N={section['n']} fan run (fresh process)", "",
                *_table(("contender", "peak RSS before the run MB", "peak RSS MB (VmHWM)",
                         "tracemalloc peak of the run MB"), rows), ""]
    if "profile" in results:
        section = results["profile"]
        out += [f"### Profile of the host fan ({section['profiler']}, sampling every "
                f"{section['interval_s'] * 1e3:g} ms)", ""]
        for run in section["runs"]:
            out += [f"N={run['n']}, {run['runs']} runs, {run['us_per_asset']:.1f} us per asset "
                    "under the profiler. Top 10 functions by self time:", "",
                    *_table(("function (file:line)", "share", "us/asset"),
                            [[row["function"], f"{row['share']:.1%}",
                              f"{row['us_per_asset']:.2f}"] for row in run["top_self"]]),
                    "", "Stages (inclusive time):", "",
                    *_table(("stage", "share", "us/asset"),
                            [[row["stage"], f"{row['share']:.1%}", f"{row['us_per_asset']:.2f}"]
                             for row in run["stages"]]), ""]
    if "tricks" in results:
        sizes = results["tricks"]["sizes"]
        rows = []
        for name in sizes[next(iter(sizes))]:
            cells = [name]
            for figures in sizes.values():
                entry = figures[name]
                cells += [_ms(entry["median_s"]) if "median_s" in entry else entry["error"],
                          f"{entry['off_over_on']:.3f}" if "off_over_on" in entry else "-"]
            rows.append(cells)
        headers = ["trick switched off"]
        for n in sizes:
            headers += [f"N={n} median ms", f"N={n} off/on"]
        out += ["### Speed tricks (in-process fan; each trick undone in turn, interleaved with "
                "all of them on)", "", *_table(headers, rows), ""]
    if "history" in results:
        section = results["history"]
        rows = [[name, _ms(entry["median_s"]) if "median_s" in entry else entry["error"],
                 f"{entry['over_no_history']:.3f}" if "over_no_history" in entry else "-"]
                for name, entry in section["contenders"].items()]
        target = section.get("target", "the caller's ratio <= 1.05")
        out += [f"### Run history (in-process fan, N={section['n']}; interleaved; target: "
                f"{target})", "",
                *_table(["run", "median ms", "over no history"], rows), ""]
    if "sessions" in results:
        out += _sessions_table(results["sessions"])
    return out


#: The dask figures' labels (tests/benchmarks/_sessions_dask.py) -> the multiprocess ones.
_DASK_CONTENDERS = {"separate": "separate calls", "session": "session",
                    "session, session-scoped resource": "session, resource session-scoped"}


def _session_parts(section: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(executor, figures with ``contenders``) of the sessions section: multiprocess, and
    dask when it was measured (its figures put in the same shape: one block of runs)."""
    parts: list[tuple[str, Mapping[str, Any]]] = [("multiprocess", section)]
    dask = section.get("dask", {})
    if "contenders" in dask:
        parts.append(("dask", dask))
    elif any(label in dask for label in _DASK_CONTENDERS):
        ratios = dask.get("separate_over_session", {})
        contenders: dict[str, Any] = {}
        for label, name in _DASK_CONTENDERS.items():
            entry = dask.get(label)
            if not isinstance(entry, Mapping) or "later_median_s" not in entry:
                contenders[name] = {"error": (entry or {}).get("error", "not run")}
                continue
            contenders[name] = {"first_run_median_s": entry["first_s"],
                                "later_runs_median_s": entry["later_median_s"],
                                "setups_per_block": [entry["setups"]]}
            if label in ratios:
                contenders[name]["separate_over_later_runs"] = ratios[label]
        parts.append(("dask", {"contenders": contenders}))
    return parts


def _sessions_table(section: Mapping[str, Any]) -> list[str]:
    """The sessions section: per contender, run 1, runs 2-10, ratio, setups per block."""
    rows = []
    for where, part in _session_parts(section):
        for name, entry in part.get("contenders", {}).items():
            if "later_runs_median_s" not in entry:
                rows.append([where, name, entry.get("error", "-"), "-", "-", "-"])
                continue
            ratio = entry.get("separate_over_later_runs")
            rows.append([where, name, _ms(entry["first_run_median_s"]),
                         _ms(entry["later_runs_median_s"]),
                         _ratio(ratio) if ratio is not None else "-",
                         ", ".join(map(str, entry["setups_per_block"]))])
    skipped = section.get("dask", {}).get("skipped")
    note = f" Dask: {skipped}." if skipped else ""
    if any(where == "dask" for where, _ in _session_parts(section)):
        note += (" Dask: the same fan on 2 Dask workers (threads_per_worker=1), one block of "
                 "10 runs per contender, one after the other; a session's LocalCluster starts "
                 "with its first run, each separate call starts its own.")
    return [f"### Sessions (multiprocess fan of 16 assets, 50 ms setup, 2 workers; blocks of "
            f"{section.get('runs_per_block', 10)} runs interleaved; targets: runs 2-10 in a "
            f"session >= 4x faster than a separate call; session-scoped: 2 setups per block, "
            f"runs 2-10 < 30 ms).{note}", "",
            *_table(["executor", "runs", "run 1 ms", "runs 2-10 median ms",
                     "separate call / runs 2-10", "setups per block of 10 runs"], rows), ""]


def _session_targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The sessions section's three targets, on multiprocess (and dask when measured)."""
    targets = []
    section = results.get("sessions", {})
    for where, part in _session_parts(section):
        contenders = part.get("contenders", {})
        warm = contenders.get("session", {})
        scoped = contenders.get("session, resource session-scoped", {})
        name = f"sessions on {where}"
        if "separate_over_later_runs" in warm:
            ratio = warm["separate_over_later_runs"]
            targets.append(_target(f"{name}: runs 2-10 vs a separate call", ">= 4x faster",
                                   f"{ratio:.1f}x", ratio >= 4, _ratio_margin(ratio, 4)))
        else:
            targets.append(_target(f"{name}: runs 2-10 vs a separate call", ">= 4x faster",
                                   "-", None, warm.get("error", "not run")))
        if "setups_per_block" in scoped:
            setups = scoped["setups_per_block"]
            targets.append(_target(f"{name}, session-scoped: setups over 10 runs", "2",
                                   ", ".join(map(str, setups)), all(n == 2 for n in setups), ""))
            later = scoped["later_runs_median_s"]
            ratio = scoped.get("separate_over_later_runs")
            targets.append(_target(
                f"{name}, session-scoped: runs 2-10", "< 30 ms",
                f"{_ms(later)} ms" + (f" ({_ratio(ratio)} faster than a separate call)"
                                      if ratio is not None else ""),
                later < 0.030, f"{(later - 0.030) * 1e3:+.1f} ms"))
        else:
            why = scoped.get("error", "not run")
            targets.append(_target(f"{name}, session-scoped: setups over 10 runs", "2", "-",
                                   None, why))
            targets.append(_target(f"{name}, session-scoped: runs 2-10", "< 30 ms", "-", None,
                                   why))
    return targets


def _ratio_margin(measured: float, goal: float) -> str:
    if measured >= goal:
        return f"{measured / goal:.2f}x the goal"
    return f"{goal / measured:.2f}x short of the goal"


def _target(name: str, goal: str, measured: str, ok: bool | None, margin: str) -> dict[str, Any]:
    status = "not measured" if ok is None else ("pass" if ok else "MISS")
    return {"target": name, "goal": goal, "measured": measured, "status": status,
            "margin": margin}


def evaluate_targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target of the benchmark issue with its measured figure and pass/miss."""
    results = {name: section for name, section in results.items()
               if not (isinstance(section, dict) and "error" in section)}
    targets = []
    fan = results.get("fan", {}).get("sizes", {})
    over = fan.get("1000", {}).get("overhead_us_per_asset", {})
    host_over = over.get("host")
    dagster_over = over.get("dagster")
    if host_over is not None and dagster_over is not None:
        ratio = dagster_over / host_over if host_over > 0 else float("inf")
        targets.append(_target(
            "per-asset overhead vs Dagster (fan, N=1000)", ">= 1500x lower",
            f"{ratio:,.0f}x ({dagster_over:,.0f} us vs {host_over:.2f} us)", ratio >= 1500,
            _ratio_margin(ratio, 1500),
        ))
    else:
        targets.append(_target("per-asset overhead vs Dagster (fan, N=1000)", ">= 1500x lower",
                               "-", None, "run with --with-dagster"))
    if host_over is not None:
        targets.append(_target(
            "per-asset overhead over the bare loop (fan, N=1000)", "<= 15 us",
            f"{host_over:.2f} us", host_over <= 15, f"{host_over - 15:+.2f} us",
        ))
    else:
        targets.append(_target("per-asset overhead over the bare loop (fan, N=1000)", "<= 15 us",
                               "-", None, ""))
    if all("median_s" in fan.get(n, {}).get("host", {}) for n in ("1000", "10000")):
        scale = fan["10000"]["host"]["median_s"] / fan["1000"]["host"]["median_s"]
        targets.append(_target("scaling: N=10000 run / N=1000 run (host fan)", "<= 11x",
                               f"{scale:.1f}x", scale <= 11, f"{scale - 11:+.1f}x"))
    else:
        targets.append(_target("scaling: N=10000 run / N=1000 run (host fan)", "<= 11x", "-",
                               None, ""))
    memory = results.get("memory", {}).get("host")
    if memory:
        peak = memory["rss_peak_mb"]
        targets.append(_target("peak memory of the N=10000 run (VmHWM, whole process)",
                               "<= 150 MB", f"{peak:.1f} MB", peak <= 150,
                               f"{peak - 150:+.1f} MB"))
    else:
        targets.append(_target("peak memory of the N=10000 run", "<= 150 MB", "-", None, ""))
    mp = results.get("multiprocess", {}).get("contenders", {})
    dagster_mp = mp.get("dagster", {}).get("median_s")
    for name in [label for label in mp if label != "dagster"] or ["multiprocess", "dask"]:
        figures = mp.get(name)
        if not figures or "median_s" not in figures:
            why = (figures.get("skipped") or figures.get("error")) if figures else "not run"
            targets.append(_target(f"multiprocess fan on {name}: setups", "2", "-", None, why))
            targets.append(_target(f"multiprocess fan on {name}: vs Dagster multiprocess",
                                   ">= 50x faster", "-", None, why))
            continue
        setups = figures.get("setups")
        targets.append(_target(f"multiprocess fan on {name}: setups", "2", str(setups),
                               setups == 2, "" if setups == 2 else f"{setups} setups"))
        if dagster_mp:
            speed = dagster_mp / figures["median_s"]
            targets.append(_target(
                f"multiprocess fan on {name}: vs Dagster multiprocess", ">= 50x faster",
                f"{speed:.1f}x ({_ms(figures['median_s'])} ms vs {_ms(dagster_mp)} ms)",
                speed >= 50, _ratio_margin(speed, 50),
            ))
        else:
            targets.append(_target(f"multiprocess fan on {name}: vs Dagster multiprocess",
                                   ">= 50x faster", "-", None, "run with --with-dagster"))
    plugins = results.get("discovery", {}).get("plugins", {})
    if "added_ms" in plugins:
        added = plugins["added_ms"]
        targets.append(_target("300 extra distributions: time added to `host plugins`",
                               "<= 30 ms", f"{added:.1f} ms", added <= 30,
                               f"{added - 30:+.1f} ms"))
    else:
        targets.append(_target("300 extra distributions: time added to `host plugins`",
                               "<= 30 ms", "-", None,
                               results.get("discovery", {}).get("skipped", "not run")))
    imports = results.get("import", {})
    if "median_s" in imports.get("import_dagster", {}):
        host = imports["import_host"]["median_s"]
        dagster = imports["import_dagster"]["median_s"]
        share = host / dagster
        targets.append(_target("import host / import dagster", "<= 0.20",
                               f"{share:.2f} ({_ms(host)} ms vs {_ms(dagster)} ms)",
                               share <= 0.2, f"{share / 0.2:.2f}x the allowed share "
                               f"(host would need <= {_ms(dagster * 0.2)} ms)"))
    else:
        targets.append(_target("import host / import dagster", "<= 0.20", "-", None,
                               "run with --with-dagster"))
    targets += _session_targets(results)
    return targets


def target_lines(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    return _table(("target", "goal", "measured", "status", "margin"),
                  [[t["target"], t["goal"], t["measured"], t["status"], t["margin"]]
                   for t in targets])


def markdown(results: Mapping[str, Any], previous: str | None) -> str:
    """RESULTS.md: machine, versions, tables, targets, how to reproduce; keeps the notes block."""
    meta = results["meta"]
    sections = ", ".join(
        f"{name} ({results[name]['measured_at']}, {results[name]['mode']})"
        for name in ("fan", "chain", "multiprocess", "discovery", "import", "memory", "profile",
                     "tricks", "history", "sessions")
        if name in results
    )
    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m tests.benchmarks` (see \"Reproduce\"); the notes block is kept "
        "from one run to the next. Every comparison is a ratio of medians measured in the same "
        "run, contenders interleaved round by round.",
        "",
        "## Machine",
        "",
        *_table(("", ""), [[key, str(value)] for key, value in meta["machine"].items()]),
        "",
        "## Versions",
        "",
        *_table(("package", "version"), [[k, v] for k, v in meta["versions"].items()]),
        "",
        f"Command: `{meta.get('command', '')}`. Installed third-party hook plugins: "
        f"{meta.get('third_party_hook_plugins', 'loaded')}. Sections (when measured, mode): "
        f"{sections}.",
        "",
        "## Targets",
        "",
        *target_lines(results["targets"]),
        "",
        "## Figures",
        "",
        "Per-asset overhead = (median run time - median bare-loop run time) / N. The bare loop "
        "sets each resource up once, calls every asset function with them and tears down in "
        "reverse: what the run costs with no framework. Dagster runs `materialize` with "
        "`mem_io_manager` in its own environment, timed inside its process the same way "
        "(`time.perf_counter` around the call, after `gc.collect()`).",
        "",
        *tables(results),
        "## Notes",
        "",
        _NOTES_PLACEHOLDER,
        "",
        "## Reproduce",
        "",
        "```",
        "bash .ci/setup",
        ".venv/bin/python -m tests.benchmarks --with-dagster     # everything, about 10 minutes",
        ".venv/bin/python -m tests.benchmarks --quick            # host and the bare loop only",
        ".venv/bin/python -m tests.benchmarks --only fan --only memory",
        ".venv/bin/python -m tests.benchmarks --report-only      # RESULTS.md from latest.json",
        "```",
        "",
        "`--with-dagster` creates `tests/benchmarks/results/dagster-venv` and runs "
        "`pip install dagster` there (once; delete the folder to upgrade). The profile section "
        "installs `pyinstrument` into the running environment. The figures are in "
        "`tests/benchmarks/results/latest.json`.",
        "",
    ]
    text = "\n".join(lines)
    if previous:
        kept = _NOTES.search(previous)
        if kept:
            text = text.replace(_NOTES_PLACEHOLDER, kept.group(0))
    return text
