"""Pytest fixtures for runs on Dask, loaded through the ``pytest11`` entry point ``host_dask``.

Importing this module imports nothing from Dask; the fixtures do, when used. Switch it off with
``-p no:host_dask``.

* ``host_dask_address``: the address of a ``LocalCluster`` of two worker processes (one thread
  each) shared by the whole test session, for ``executor_config={"address": ...}``. Its
  scheduler reports a worker lost mid-task at once (``allowed_failures=0``), like the cluster a
  run starts for itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

__all__ = ["host_dask_address"]


@pytest.fixture(scope="session")
def host_dask_address() -> Iterator[str]:
    """The scheduler address of a session-wide LocalCluster with 2 worker processes."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address="127.0.0.1:0",  # no fixed port to collide with
        scheduler_kwargs={"allowed_failures": 0},
    ) as cluster:
        yield cluster.scheduler_address
