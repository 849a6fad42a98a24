"""Run host assets on a ``dask.distributed`` cluster: the ``dask`` executor.

Registered under the ``host.executors`` entry-point group, so
``run_assets(..., executor="dask", executor_config={"n_workers": 4})`` (or ``executor = "dask"``
in a run config) finds it without importing it first.
"""

from host_plugin_dask._config import DaskConfig
from host_plugin_dask._executor import DaskExecutor

__all__ = ["DaskConfig", "DaskExecutor"]
