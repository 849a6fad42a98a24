"""host: pip-installable resources with a once-per-run, per-process lifecycle around assets.

The public API is what ``__all__`` lists; everything in underscore modules is private.

What defining resources and assets needs (``ConfigurableResource``, ``EnvVar``, ``@asset``, the
contexts, the errors) is imported with the package. What running needs (``run_assets``, the
events and ``RunResult``, executors, the run config, discovery) and what hook plugins need
(``hookimpl``, ``hookspec``, ``PLUGIN_API_VERSION``; pluggy) is imported on first use (PEP 562
``__getattr__``): a package that only defines a resource does not pay for the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from host._asset import AssetDefinition, ResourceParam, asset, with_resources
from host._asset_config import Config
from host._context import (
    AssetExecutionContext,
    IAttachDifferentObjectToOpContext,
    InitResourceContext,
)
from host._envvar import EnvVar
from host._errors import (
    ConfigError,
    DefinitionError,
    EnvVarNotReadError,
    FrozenResourceError,
    HostError,
    PluginError,
    ResourceError,
    ResourceSetupError,
    ResourceTeardownError,
    RunFailure,
    RunTimeoutError,
    SessionError,
    SessionTeardownError,
    WorkerDiedError,
    WorkerError,
)
from host._function_resource import ResourceDefinition, configured, resource
from host._lazy import lazy_names
from host._resource import ConfigurableResource, ResourceDependency
from host._resource_factory import ConfigurableResourceFactory
from host._version import __version__

if TYPE_CHECKING:
    from host._config_load import load_run_config
    from host._config_schema import RunConfig
    from host._discovery import PluginInfo, discover_plugins
    from host._events import (
        AssetFailed,
        AssetSkipped,
        AssetStarted,
        AssetSucceeded,
        ErrorInfo,
        Event,
        LogRecorded,
        ResourceEvent,
        ResourceRecycled,
        ResourceReused,
        RunFinished,
        RunResult,
        RunStarted,
    )
    from host._hookspecs import hookimpl, hookspec
    from host._invocation import build_asset_context
    from host._plugin_api import PLUGIN_API_VERSION
    from host._resource_scope import build_init_resource_context, build_resources
    from host._run import run_assets
    from host._session import Session
    from host.executors import Executor, ExecutorConfig, RunState

#: Public names imported on first use: name -> the module that defines it.
_LAZY = {
    **dict.fromkeys(("PluginInfo", "discover_plugins"), "host._discovery"),
    "RunConfig": "host._config_schema",
    "load_run_config": "host._config_load",
    **dict.fromkeys(
        (
            "AssetFailed",
            "AssetSkipped",
            "AssetStarted",
            "AssetSucceeded",
            "ErrorInfo",
            "Event",
            "LogRecorded",
            "ResourceEvent",
            "ResourceRecycled",
            "ResourceReused",
            "RunFinished",
            "RunResult",
            "RunStarted",
        ),
        "host._events",
    ),
    **dict.fromkeys(("Executor", "ExecutorConfig", "RunState"), "host.executors"),
    **dict.fromkeys(("hookimpl", "hookspec"), "host._hookspecs"),
    "PLUGIN_API_VERSION": "host._plugin_api",
    "build_asset_context": "host._invocation",
    **dict.fromkeys(("build_init_resource_context", "build_resources"), "host._resource_scope"),
    "run_assets": "host._run",
    "Session": "host._session",
}


#: Import a public name of :data:`_LAZY` on first use (then it is a plain attribute).
__getattr__, __dir__ = lazy_names(globals(), _LAZY)

__all__ = [  # noqa: RUF022 (plain sorted() order, which tests/test_api.py pins)
    "AssetDefinition",
    "AssetExecutionContext",
    "AssetFailed",
    "AssetSkipped",
    "AssetStarted",
    "AssetSucceeded",
    "Config",
    "ConfigError",
    "ConfigurableResource",
    "ConfigurableResourceFactory",
    "DefinitionError",
    "EnvVar",
    "EnvVarNotReadError",
    "ErrorInfo",
    "Event",
    "Executor",
    "ExecutorConfig",
    "FrozenResourceError",
    "HostError",
    "IAttachDifferentObjectToOpContext",
    "InitResourceContext",
    "LogRecorded",
    "PLUGIN_API_VERSION",
    "PluginError",
    "PluginInfo",
    "ResourceDefinition",
    "ResourceDependency",
    "ResourceError",
    "ResourceEvent",
    "ResourceParam",
    "ResourceRecycled",
    "ResourceReused",
    "ResourceSetupError",
    "ResourceTeardownError",
    "RunConfig",
    "RunFailure",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunState",
    "RunTimeoutError",
    "Session",
    "SessionError",
    "SessionTeardownError",
    "WorkerDiedError",
    "WorkerError",
    "__version__",
    "asset",
    "build_asset_context",
    "build_init_resource_context",
    "build_resources",
    "configured",
    "discover_plugins",
    "hookimpl",
    "hookspec",
    "load_run_config",
    "resource",
    "run_assets",
    "with_resources",
]
