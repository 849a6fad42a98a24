"""host: pip-installable resources with a once-per-run, per-process lifecycle around assets.

The public API is what ``__all__`` lists; everything in underscore modules is private.
"""

from host._asset import AssetDefinition, asset
from host._context import AssetExecutionContext, InitResourceContext
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
from host._resource import ConfigurableResource, EnvVar
from host._run import run_assets

__version__ = "0.1.0"

__all__ = [
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
    "PluginError",
    "ResourceError",
    "ResourceEvent",
    "ResourceSetupError",
    "ResourceTeardownError",
    "RunFailure",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunState",
    "WorkerDiedError",
    "__version__",
    "asset",
    "hookimpl",
    "hookspec",
    "run_assets",
]
