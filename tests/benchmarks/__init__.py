"""The benchmark suite: host side by side with a bare hand-written loop and Dagster.

Run it with ``python -m tests.benchmarks`` from the repository root (``--help`` for the flags).
Nothing here is collected by ``pytest``: the files are not named ``test_*.py`` and the folder's
``conftest.py`` ignores them. See ``RESULTS.md`` beside this file for the latest figures.
"""
