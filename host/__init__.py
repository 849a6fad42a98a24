"""host: pip-installable resources with a once-per-run, per-process lifecycle around assets.

The public API is what ``__all__`` lists; everything in underscore modules is private.
"""

from host._asset import AssetDefinition, asset
from host._config import RunConfig, load_run_config
from host._context import AssetExecutionContext, InitResourceContext
from host._discovery import PluginInfo, discover_plugins
from host._errors import (
    ConfigError,
    DefinitionError,
    FrozenResourceError,
    HostError,
    PluginError,
    ResourceError,
    ResourceSetupError,
    ResourceTeardownError,
    RunFailure,
    RunTimeoutError,
    WorkerDiedError,
)
from host._events import (
    AssetFailed,
    AssetSkipped,
    AssetStarted,
    AssetSucceeded,
    ErrorInfo,
    Event,
    ResourceEvent,
    RunFinished,
    RunResult,
    RunStarted,
)
from host._executors.base import Executor, ExecutorConfig, RunState
from host._hookspecs import hookimpl, hookspec
from host._plugin_api import PLUGIN_API_VERSION
from host._resource import ConfigurableResource, EnvVar
from host._run import run_assets

__version__ = "0.1.0"

__all__ = [  # noqa: RUF022 (plain sorted() order, which tests/test_api.py pins)
    "AssetDefinition",
    "AssetExecutionContext",
    "AssetFailed",
    "AssetSkipped",
    "AssetStarted",
    "AssetSucceeded",
    "ConfigError",
    "ConfigurableResource",
    "DefinitionError",
    "EnvVar",
    "ErrorInfo",
    "Event",
    "Executor",
    "ExecutorConfig",
    "FrozenResourceError",
    "HostError",
    "InitResourceContext",
    "PLUGIN_API_VERSION",
    "PluginError",
    "PluginInfo",
    "ResourceError",
    "ResourceEvent",
    "ResourceSetupError",
    "ResourceTeardownError",
    "RunConfig",
    "RunFailure",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunState",
    "RunTimeoutError",
    "WorkerDiedError",
    "__version__",
    "asset",
    "discover_plugins",
    "hookimpl",
    "hookspec",
    "load_run_config",
    "run_assets",
]
