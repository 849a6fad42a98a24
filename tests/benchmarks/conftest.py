"""Benchmarks are never part of a ``pytest`` run: they time things, and tests must not."""

collect_ignore_glob = ["*.py"]
