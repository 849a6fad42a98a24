"""The hook specifications of the ``host`` pluggy project; each docstring is the contract.

Three hooks carry the resource phases (setup, yield, teardown); the host's own behaviour for
each is the built-in plugin ``host.builtin`` (see ``host._builtin_hooks``), registered like any
other plugin, so a plugin can observe a phase, wrap it (``@hookimpl(wrapper=True)``), or replace
it (``@hookimpl(tryfirst=True)`` returning a value). The other hooks let observers follow runs
and assets. ``specs/hooks.md`` documents every hook with its exact signature; a test keeps the two
equal.

Where hooks run: resource and asset hooks run in the process that brings up the resource or runs
the asset (a worker, for the process executors); run hooks and :func:`host_event` run in the
process that called ``run_assets``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from host._context import AssetExecutionContext, InitResourceContext
    from host._events import ErrorInfo, Event, RunResult
    from host._resource import ConfigurableResource

__all__ = ["PROJECT_NAME", "ResourceSpec", "RunSpec", "hookimpl", "hookspec"]

#: The pluggy project name; plugins mark their hooks with ``host.hookimpl``.
PROJECT_NAME = "host"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marker for hook implementations: ``@host.hookimpl``, ``@host.hookimpl(wrapper=True)``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class ResourceSpec:
    """The three resource phases: setup, yield and teardown."""

    @hookspec(firstresult=True)
    def host_resource_setup(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> object | None:
        """Bring ``resource`` up: the setup phase.

        Called once per run per process, inside the default yield phase, before the first asset
        in this process that needs the resource. Not called when the resource's class overrides
        ``yield_for_execution``. The built-in implementation calls
        ``resource.setup_for_execution(context)`` (awaiting it if it is a coroutine function).
        A wrapper sees the duration and any exception; an exception fails the resource's bring-up
        (the resource is then not torn down). First non-``None`` result stops the call; the
        result is ignored.

        Args:
            resource: the run's fresh instance of the resource (for a function resource, the
                run's copy of its ``host.ResourceDefinition``).
            context: the resource's init context (key, masked config, run id, dependencies).
        """

    @hookspec(firstresult=True)
    def host_resource_yield(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> AbstractContextManager[Any] | None:
        """Return the context manager that holds ``resource`` up for the rest of the run.

        Entering it brings the resource up and gives the value assets receive; exiting it tears
        the resource down. Entered once per run per process, exited when the run ends in that
        process, in reverse order of bring-up, whatever happened. The built-in implementation
        returns the resource's own ``yield_for_execution(context)`` when its class overrides it
        (async context managers are driven on the run's event loop), and otherwise a context
        manager that calls :func:`host_resource_setup`, yields the resource, and calls
        :func:`host_resource_teardown` in a ``finally`` only if setup succeeded.

        A wrapper receives the inner context manager (``cm = yield``) and may return another
        that wraps it, to act when the resource comes up and goes down.

        Args:
            resource: the run's fresh instance of the resource (for a function resource, the
                run's copy of its ``host.ResourceDefinition``).
            context: the resource's init context.

        Returns:
            A synchronous context manager.
        """

    @hookspec(firstresult=True)
    def host_resource_teardown(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> object | None:
        """Tear ``resource`` down: the teardown phase.

        Called once, at the end of the run in this process, only if setup succeeded, even when
        assets failed. Not called when the class overrides ``yield_for_execution``. The built-in
        implementation calls ``resource.teardown_after_execution(context)`` (awaiting it if
        needed). An exception is recorded as a teardown failure of the resource; the other
        resources are still torn down. First non-``None`` result stops the call.

        Args:
            resource: the instance that was set up (for a function resource, the run's copy
                of its ``host.ResourceDefinition``).
            context: the same init context setup received.
        """


class RunSpec:
    """Runs, assets and events, for observers."""

    @hookspec
    def host_run_start(self, run_id: str, executor: str, assets: tuple[str, ...]) -> None:
        """A run is about to start; nothing has been brought up yet.

        The one run hook that can stop a run: an exception raised here (a plugin refusing
        its own invalid configuration) propagates to the caller of ``run_assets`` before
        any resource is brought up or any asset runs.

        Args:
            run_id: the run's id.
            executor: the executor's name.
            assets: the keys of the assets that will run, in a valid order.
        """

    @hookspec
    def host_run_success(self, result: RunResult) -> None:
        """A run finished with no failure, after every teardown.

        An observer: an exception raised here is logged on the ``host.plugins`` logger naming
        the plugin; the run's result is returned as it is.

        Args:
            result: the run's result.
        """

    @hookspec
    def host_run_failure(self, result: RunResult) -> None:
        """A run finished with failures, after every teardown.

        An observer: an exception raised here is logged on the ``host.plugins`` logger naming
        the plugin; the run's result (or ``RunFailure``) is given as it is.

        Args:
            result: the run's result (see ``failures`` and ``resource_errors``).
        """

    @hookspec
    def host_asset_start(self, context: AssetExecutionContext) -> None:
        """An asset is about to run; its resources are up and its inputs computed.

        Called in the process that runs the asset, on every executor. An exception raised here
        fails the asset before it is computed, with that exception as its error (downstream
        assets are skipped, ``host_asset_failure`` is called).

        Args:
            context: the asset's execution context.
        """

    @hookspec(firstresult=True)
    def host_asset_execute(
        self, context: AssetExecutionContext, fn: Callable[..., Any], kwargs: dict[str, Any]
    ) -> Any:
        """Compute an asset: call ``fn(**kwargs)`` and return its output.

        The built-in implementation calls the function (running a coroutine function on the run's
        event loop). Wrap it to time, retry or trace asset bodies. An exception fails the asset.

        Args:
            context: the asset's execution context.
            fn: the asset's function.
            kwargs: its arguments (upstream outputs, resources, context).

        Returns:
            The asset's output (``None`` is a valid output).
        """

    @hookspec
    def host_asset_success(self, context: AssetExecutionContext, output: Any) -> None:
        """An asset computed ``output``; called before its ``AssetSucceeded`` event.

        An exception raised here fails the asset (on every executor), with that exception as
        its error.

        Args:
            context: the asset's execution context.
            output: what the asset returned.
        """

    @hookspec
    def host_asset_failure(self, context: AssetExecutionContext, error: ErrorInfo) -> None:
        """An asset failed: it raised, or a resource it needs failed to come up.

        An exception raised here does not change the asset's error; it is logged on the
        ``host.plugins`` logger with its traceback.

        Args:
            context: the asset's execution context.
            error: the error (type, message, traceback text; secrets never included).
        """

    @hookspec
    def host_event(self, event: Event) -> None:
        """Every event of the run, in order, in the process that called ``run_assets``.

        Resource phase events (:class:`host.ResourceEvent`) carry key, phase, pid and duration,
        including those that happened in worker processes.

        An observer: each implementation is called on its own, and an exception one raises
        (a closed output's ``BrokenPipeError``, a bug) never fails the resource phase or asset
        the event is about: it is logged on the ``host.plugins`` logger naming the plugin (with
        its traceback the first time in a run), and the others and the run go on.

        Args:
            event: the event.
        """
