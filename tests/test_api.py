"""The public API is pinned: adding or removing a name is a deliberate, changelogged act."""

from __future__ import annotations

import host

PUBLIC = {
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
}


def test_all_is_pinned_and_sorted() -> None:
    assert set(host.__all__) == PUBLIC
    assert list(host.__all__) == sorted(host.__all__)
    for name in host.__all__:
        assert hasattr(host, name), name


def test_every_error_is_a_host_error() -> None:
    for name in host.__all__:
        value = getattr(host, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, host.HostError), name
