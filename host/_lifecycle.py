"""The per-process side of a run: the resource stack, driven by the run's runtime.

A :class:`~host._runtime.ProcessRuntime` exists once per run per process (the caller's process
for the in-process executor, each worker for the others). Its :class:`ResourceStack` brings a
resource up the first time an asset in that process needs it, dependencies first, through the
``host_resource_yield`` hook, and tears everything down in reverse order when the process is done
with the run, whatever happened. Events go to ``emit``: the run's event log in the caller's
process, a queue to the parent in a worker.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from types import TracebackType
from typing import Any

from host._context import InitResourceContext
from host._errors import (
    ConfigError,
    HostInterrupt,
    ResourceSetupError,
    ResourceTeardownError,
    is_interrupt,
)
from host._events import describe_exception
from host._interrupts import signals_held
from host._resource import ConfigurableResource
from host._resource_graph import ResourceGraph
from host._runtime import AssetHooks, ProcessRuntime, distribution_of, resource_failure
from host._secrets import secrets_of
from host._timeouts import (
    Deadline,
    DeadlineExceeded,
    PhaseTimeouts,
    interrupts_sent,
    phase_timeouts,
)

# AssetHooks, ProcessRuntime and distribution_of are defined in host._runtime.
__all__ = ["AssetHooks", "ProcessRuntime", "ResourceStack", "distribution_of"]


def _close_abandoned(cm: object) -> None:
    """Close a generator context manager whose ``__enter__`` was interrupted.

    If the interrupt came after the generator reached its ``yield`` (the resource is up), its
    ``finally`` runs now, not whenever the object is collected; otherwise this does nothing.
    """
    generator = getattr(cm, "gen", None)
    if inspect.isgenerator(generator):
        with contextlib.suppress(Exception):
            generator.close()


class ResourceStack:
    """The resources brought up in this process for one run, torn down in reverse order.

    Use it as a context manager: leaving it tears down every resource that came up, passing on
    the exception that is leaving the block (if any) to each resource's context manager.
    """

    def __init__(self, graph: ResourceGraph, runtime: ProcessRuntime) -> None:
        self._graph = graph
        self._runtime = runtime
        self._stack = contextlib.ExitStack()
        self._instances: dict[str, Any] = {}  # key -> the resource object brought up
        self._values: dict[str, Any] = {}  # key -> what its yield gave (what assets receive)
        self._given: dict[str, Any] = {}  # the same by the keys assets asked for (aliases too)
        self._failed: dict[str, ResourceSetupError] = {}
        self._configs: dict[str, dict[str, Any]] = {}  # key -> its context's resource_config
        #: Teardown failures, in the order they happened.
        self.teardown_errors: list[ResourceTeardownError] = []
        #: Keys in the order they came up.
        self.order: list[str] = []

    def __enter__(self) -> ResourceStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The run's own timeout does not cut teardowns short (each has its own), and neither
        # does a signal: SIGINT/SIGTERM wait until every resource is down.
        if self._runtime.run_deadline is not None:
            self._runtime.run_deadline.disarm()
        with signals_held():
            self._stack.__exit__(exc_type, exc, tb)

    def close(self) -> None:
        """Tear down every resource that came up, in reverse order of bring-up."""
        self.__exit__(None, None, None)

    def _timeouts(self, key: str, cls: type) -> PhaseTimeouts:
        """The setup and teardown timeouts of resource ``key``: the run's, else its class's."""
        return phase_timeouts(cls, self._runtime.timeouts.get(key))

    def get(self, key: str) -> Any:
        """The value assets receive for resource ``key``, bringing it up on first use.

        Raises:
            ResourceSetupError: it (or a dependency) failed to come up, now or earlier in this
                run in this process; it is not tried again.
        """
        try:
            return self._given[key]
        except KeyError:
            pass
        canonical = self._graph.nodes[key].key
        if canonical not in self._values:
            self._bring_up(canonical)
        value = self._given[key] = self._values[canonical]
        return value

    def _bring_up(self, key: str) -> Any:
        """Bring ``key`` up with what it depends on, dependencies first; give the instance.

        Iterative over the graph's closure of ``key`` (a chain of any depth is fine). When a
        dependency fails, the resources on the way from it to ``key`` fail naming it, and
        nothing else of the closure is brought up.
        """
        failing = False
        for name in self._graph.closure([key]):
            if name in self._instances:
                continue
            if name in self._failed:
                failing = True
                continue
            node = self._graph.nodes[name]
            broken = next(
                ((field, dep) for field, dep in node.deps.items() if dep in self._failed), None
            )
            if broken is not None:
                field, dep = broken
                self._fail(
                    name, type(node.resource), "setup", f"its dependency {dep!r} (field "
                    f"{field!r}) failed to come up", self._failed[dep]
                )
                failing = True
            elif not failing:
                try:
                    self._bring_up_one(name)
                except ResourceSetupError:
                    failing = True  # recorded in self._failed; its dependents fail above
        if key in self._failed:
            raise self._failed[key]
        return self._instances[key]

    def _bring_up_one(self, key: str) -> Any:
        """Bring ``key`` up; its dependencies are up already."""
        node = self._graph.nodes[key]
        if not isinstance(node.resource, ConfigurableResource):
            self._instances[key] = self._values[key] = node.resource
            return node.resource
        cls = type(node.resource)
        deps = {field: self._instances[dep] for field, dep in node.deps.items()}
        try:
            instance = node.resource.instantiate(key, deps)
        except ConfigError as exc:
            raise self._fail(key, cls, "config", str(exc), exc) from None
        config = self._configs[key] = instance.masked_config(
            {field: self._configs[dep] for field, dep in node.deps.items() if dep in self._configs}
        )
        context = InitResourceContext(
            resource_key=key,
            resource_config=config,
            run_id=self._runtime.run_id,
            resources=deps,
            executor=self._runtime.executor,
            _runtime=self._runtime,
        )
        self._runtime.secrets.update(secrets_of(instance))
        timeouts = self._timeouts(key, cls)
        try:
            cm = self._runtime.hook.host_resource_yield(resource=instance, context=context)
        except Exception as exc:  # a hook plugin failed to give the context manager
            raise self._fail(key, cls, "yield_enter", describe_exception(exc), exc) from exc
        entered: list[Any] = []  # filled the moment the context manager is entered
        deadline = Deadline(timeouts.setup)
        try:
            with deadline:
                self._runtime.phase("yield_enter", key, lambda: entered.append(cm.__enter__()))
        except DeadlineExceeded as exc:
            if not deadline.expired or self._run_expired():
                self._keep(key, instance, cls, cm, entered, timeouts.teardown)
                raise  # the run's own timeout: it ends the run
            if not entered:
                raise self._timed_out(key, cls, timeouts.setup, stopped=True) from exc
        except Exception as exc:
            self._keep(key, instance, cls, cm, entered, timeouts.teardown)
            phase = self._runtime.failed_phase(key, "yield_enter")
            raise self._fail(key, cls, phase, describe_exception(exc), exc) from exc
        except BaseException as exc:
            # Interrupted after it came up, before it was recorded: it still goes down with
            # the others.
            self._keep(key, instance, cls, cm, entered, timeouts.teardown)
            if not entered:
                _close_abandoned(cm)
            if entered or is_interrupt(exc):
                raise
            # Raised by its own setup code (sys.exit(), GeneratorExit, a BaseException of its
            # own): its setup failed, as with an Exception; it is not tried again.
            phase = self._runtime.failed_phase(key, "yield_enter")
            detail = (
                f"{describe_exception(exc)} ({type(exc).__name__} is not an Exception: raised "
                f"by its own setup code, it is this resource's setup failure and ends neither "
                f"the run nor the process)"
            )
            raise self._fail(key, cls, phase, detail, exc) from exc
        if deadline.expired:  # it came up, too late to be stopped: take it down again
            with signals_held():  # as every teardown: a signal waits until it is down
                self._exit(key, cls, cm, timeouts.teardown, None, None, None)
            raise self._timed_out(key, cls, timeouts.setup, stopped=False)
        self._keep(key, instance, cls, cm, entered, timeouts.teardown)
        return instance

    def _keep(
        self,
        key: str,
        instance: Any,
        cls: type,
        cm: contextlib.AbstractContextManager[Any],
        entered: list[Any],
        teardown_timeout: float | None,
    ) -> None:
        """Record a resource whose context manager was entered, so that it goes down."""
        if not entered or key in self._instances:
            return
        self._stack.push(functools.partial(self._exit, key, cls, cm, teardown_timeout))
        self._instances[key] = instance
        self._values[key] = entered[0]
        self.order.append(key)

    def _run_expired(self) -> bool:
        deadline = self._runtime.run_deadline
        return deadline is not None and deadline.expired

    def _timed_out(
        self, key: str, cls: type, seconds: float | None, *, stopped: bool
    ) -> ResourceSetupError:
        phase = self._runtime.failed_phase(key, "yield_enter") if stopped else "yield_enter"
        what = (
            "and was stopped"
            if stopped
            else "(it could not be stopped sooner: it was in code that cannot be interrupted "
            "here, or it caught the interruption and carried on); it came up late and was "
            "taken down again"
        )
        cause = TimeoutError(f"resource {key!r} did not come up within {seconds:g} s")
        return self._fail(
            key,
            cls,
            phase,
            f"it did not come up within its setup_timeout of {seconds:g} s {what}. Find out "
            f"why its setup is slow or hangs, or give it more time (setup_timeout for the "
            f"key, or host_setup_timeout on the class)",
            cause,
        )

    def _fail(
        self, key: str, cls: type, phase: str, detail: str, cause: BaseException
    ) -> ResourceSetupError:
        error = resource_failure(
            ResourceSetupError, key, cls, "come up", phase, detail, self._runtime.secrets, cause
        )
        self._failed[key] = error
        return error

    def _exit(
        self,
        key: str,
        cls: type,
        cm: contextlib.AbstractContextManager[Any],
        timeout: float | None,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Take resource ``key`` down; record how that failed, never raise what its code raised.

        Whatever the resource's own teardown code raises, ``Exception`` or not
        (``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``, a ``BaseException`` of its
        own), is its teardown failure: recorded as a :class:`ResourceTeardownError` chaining it,
        and the other resources go on going down. A teardown stopped by its
        ``teardown_timeout``, or one that went on past it (it caught the interruption), is
        recorded too. What is sent from outside goes on, ending the teardown: a second Ctrl-C
        (see :func:`signals_held`), an interrupt from another thread, another deadline (the
        run's), the host's own :class:`SignalExit`. So does the exception leaving the run, when
        the context manager re-raises it.
        """
        deadline = Deadline(timeout)
        sent = interrupts_sent()
        try:
            with deadline:
                self._runtime.phase("yield_exit", key, lambda: cm.__exit__(exc_type, exc, tb))
        except BaseException as error:
            if error is exc:  # the context manager re-raised what it was given
                return False
            if isinstance(error, DeadlineExceeded) and deadline.expired:
                cause = TimeoutError(f"resource {key!r} did not go down within {timeout:g} s")
                cause.__cause__ = error
                self._teardown_failed(
                    key,
                    cls,
                    f"it did not go down within its teardown_timeout of {timeout:g} s and was "
                    f"stopped; what it holds may not be released",
                    cause,
                )
                return False
            if isinstance(error, HostInterrupt) or interrupts_sent() != sent:
                raise  # sent from outside the resource's code: it ends the teardown
            detail = describe_exception(error)
            if not isinstance(error, Exception):
                detail += (
                    f" ({type(error).__name__} is not an Exception: raised by its own teardown "
                    f"code, it is this resource's teardown failure, and it ends neither the "
                    f"run nor the process. Raise an Exception to report a failed teardown)"
                )
            if deadline.expired:
                detail += (
                    f" (raised after its teardown_timeout of {timeout:g} s had passed: it did "
                    f"not stop when interrupted)"
                )
            self._teardown_failed(key, cls, detail, error)
            return False
        if deadline.expired:  # it went down, but only after the time it was given
            cause = TimeoutError(
                f"resource {key!r} went down only after its teardown_timeout of {timeout:g} s"
            )
            self._teardown_failed(
                key,
                cls,
                f"it overran its teardown_timeout of {timeout:g} s: it did not stop when "
                f"interrupted (it caught the interruption and carried on, or was in code that "
                f"cannot be interrupted) and went down late. Let DeadlineExceeded and "
                f"asyncio.CancelledError go on in its teardown, or give it more time "
                f"(teardown_timeout for the key, or host_teardown_timeout on the class)",
                cause,
            )
        return False  # never swallow what is leaving the run

    def _teardown_failed(self, key: str, cls: type, detail: str, cause: BaseException) -> None:
        phase = self._runtime.failed_phase(key, "yield_exit")
        failure = resource_failure(
            ResourceTeardownError,
            key,
            cls,
            "tear down",
            phase,
            detail,
            self._runtime.secrets,
            cause,
        )
        self.teardown_errors.append(failure)
        self._runtime.teardown_errors.append(failure)
