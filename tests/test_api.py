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


def test_import_host_leaves_the_run_machinery_until_it_is_used() -> None:
    """``import host`` loads what defining resources and assets needs; the rest on first use."""
    import subprocess
    import sys

    probe = (
        "import sys, host\n"
        "lazy = ['host._run', 'host._config_build', 'host._config_load', 'host._config_schema',\n"
        "        'host._discovery', 'host._events', 'host.executors.base', 'host._hookspecs',\n"
        "        'pluggy', 'asyncio', 'logging']\n"
        "print(sorted(m for m in lazy if m in sys.modules))\n"
        "from host import run_assets, RunResult\n"
        "print(run_assets.__module__, RunResult.__module__, 'run_assets' in dir(host))\n"
        "try:\n"
        "    host.no_such_name\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        "[]",
        "host._run host._events True",
        "module 'host' has no attribute 'no_such_name'",
    ]
