"""One run in one process: the resource stack, and the object that owns it with the runtime.

A :class:`ProcessRun` exists once per run per process (the caller's process for the in-process
executor and ``host.testing``'s resource scopes, each worker for the others). It owns the
run's :class:`~host._runtime.ProcessRuntime` there and its :class:`ResourceStack`, which brings
a resource up the first time an asset in that process needs it, dependencies first, through the
``host_resource_yield`` hook; closing the run tears everything down in reverse order, whatever
happened (:mod:`host._teardown`), and closes its event loop. Its policies are arguments: how
awaitables run (:class:`~host._runtime.OwnLoop`, :class:`~host._runtime.CallerLoop`), whether
several threads use it at once, and where events go.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import pluggy

from host._context import InitResourceContext
from host._errors import (
    ConfigError,
    ResourceSetupError,
    ResourceTeardownError,
    is_interrupt,
)
from host._events import Event, describe_exception
from host._function_resource import ResourceDefinition, resource_origin
from host._resource import ConfigurableResource
from host._resource_graph import ResourceGraph
from host._runtime import (
    AssetHooks,
    AwaitableRunner,
    ProcessRuntime,
    distribution_of,
    resource_failure,
)
from host._secret_values import secrets_of
from host._session_resources import SessionResources, session_resources
from host._teardown import TeardownStack, close_abandoned, ended_error
from host._timeouts import (
    Deadline,
    DeadlineExceeded,
    PhaseTimeouts,
    phase_timeouts,
)

# AssetHooks, ProcessRuntime and distribution_of are defined in host._runtime.
__all__ = ["AssetHooks", "ProcessRun", "ProcessRuntime", "ResourceStack", "distribution_of"]


class ResourceStack:
    """The resources brought up in this process for one run, torn down in reverse order.

    Use it as a context manager: leaving it tears down every resource that came up, passing on
    the exception that is leaving the block (if any) to each resource's context manager (see
    :mod:`host._teardown`).

    With ``threads``, assets of several threads at once use it (a worker running assets in
    threads): resources come up under a lock, once per process. A teardown (from another
    thread, e.g. when the run is interrupted) does not wait for a resource that is coming up:
    the thread bringing it up tears it down itself as soon as it is up, and the asset asking
    for it fails. Once the stack is torn down, nothing more is brought up.
    """

    def __init__(
        self,
        graph: ResourceGraph,
        runtime: ProcessRuntime,
        *,
        threads: bool = False,
        session: SessionResources | None = None,
    ) -> None:
        self._graph = graph
        self._runtime = runtime
        self._run_runtime = runtime  # (``_runtime`` is the session's while one comes up)
        self._session = session
        self._teardown = TeardownStack(runtime, threads=threads)
        self._lock = threading.RLock() if threads else None  # held while a resource comes up
        self._instances: dict[str, Any] = {}  # key -> the resource object brought up
        self._values: dict[str, Any] = {}  # key -> what its yield gave (what assets receive)
        self._given: dict[str, Any] = {}  # the same by the keys assets asked for (aliases too)
        self._failed: dict[str, ResourceSetupError] = {}
        self._configs: dict[str, dict[str, Any]] = {}  # key -> its context's resource_config
        #: Keys in the order they came up.
        self.order: list[str] = []

    @property
    def teardown_errors(self) -> list[ResourceTeardownError]:
        """Teardown failures, in the order they happened."""
        return self._teardown.teardown_errors

    def __enter__(self) -> ResourceStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._teardown.__exit__(exc_type, exc, tb)

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
                run in this process; it is not tried again. With ``threads``: the stack was
                torn down.
        """
        if self._lock is None:
            return self._get(key)
        with self._lock:
            if self._teardown.down:
                raise ended_error(key)
            value = self._get(key)
            if self._teardown.down:  # torn down while this one came up: take it down too
                self._teardown.__exit__(None, None, None)
                raise ended_error(key)
            return value

    def _get(self, key: str) -> Any:
        try:
            return self._given[key]
        except KeyError:
            pass
        canonical = self._graph.nodes[key].key
        if canonical not in self._values:
            self._bring_up(canonical)
        value = self._given[key] = self._values[canonical]
        return value

    def _dependency(self, key: str) -> Any:
        """What a dependent receives of resource ``key`` (up): a resource class's instance
        itself, else what assets receive (a function resource's or a factory's object)."""
        resource = self._graph.nodes[key].resource
        if isinstance(resource, ConfigurableResource) and not type(resource).creates_resource():
            return self._instances[key]
        return self._values[key]

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
                    name, resource_origin(node.resource), "setup", f"its dependency {dep!r} (field "
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
        resource = node.resource
        if not isinstance(resource, ConfigurableResource | ResourceDefinition):
            self._instances[key] = self._values[key] = resource
            return resource
        if node.scope == "session" and self._session is not None:
            return self._from_session(key, self._session)
        return self._bring_up_new(key)

    def _from_session(self, key: str, session: SessionResources) -> Any:
        """Session-scoped ``key``: reuse it if it is up in this process (and healthy), else
        bring it up into the session (``host._session_resources``), on the session's runtime."""
        run = self._run_runtime
        with session.lock:
            session.attach(run)
            try:
                entry = session.reuse(key, run)
            finally:
                self._take_teardown_errors(session)
            if entry is not None:
                self._instances[key] = entry.instance
                self._values[key] = entry.value
                self.order.append(key)
                return entry.instance
            self._runtime = session.runtime
            try:
                return self._bring_up_new(key)
            finally:
                self._runtime = run
                self._take_teardown_errors(session)

    def _take_teardown_errors(self, session: SessionResources) -> None:
        """Move the teardown failures the session's runtime saw for this run (a recycle's)
        to this stack's, so each is reported once."""
        errors = session.runtime.teardown_errors
        self._teardown.teardown_errors.extend(errors)
        errors.clear()

    def _bring_up_new(self, key: str) -> Any:
        """Bring ``key`` up anew (a resource with a lifecycle)."""
        node = self._graph.nodes[key]
        resource = node.resource
        assert isinstance(resource, ConfigurableResource | ResourceDefinition)
        cls = type(resource)
        deps = {field: self._dependency(dep) for field, dep in node.deps.items()}
        instance: ConfigurableResource | ResourceDefinition
        config: Any
        if isinstance(resource, ResourceDefinition):
            cls = resource_origin(resource)
            try:
                instance = resource.instantiate(key)
            except ConfigError as exc:
                raise self._fail(key, cls, "config", str(exc), exc) from None
            config = instance.resource_config
            self._configs[key] = instance.masked_config()
        else:
            try:
                instance = resource.instantiate(key, deps)
            except ConfigError as exc:
                raise self._fail(key, cls, "config", str(exc), exc) from None
            config = self._configs[key] = instance.masked_config(
                {f: self._configs[dep] for f, dep in node.deps.items() if dep in self._configs}
            )
        context = InitResourceContext(
            resource_key=key,
            resource_config=config,
            run_id=self._runtime.run_id,
            resources=deps,
            executor=self._runtime.executor,
            _runtime=self._runtime,
        )
        if isinstance(instance, ConfigurableResource):
            instance.host_bind_context(context)
        self._runtime.secrets.update(secrets_of(instance))
        timeouts = self._timeouts(key, type(instance))
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
                close_abandoned(cm)
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
            self._teardown.take_down_now(key, cls, cm, timeouts.teardown)
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
        """Record a resource whose context manager was entered, so that it goes down (at the
        end of the run, or of the session for a session-scoped one)."""
        if not entered or key in self._instances:
            return
        if self._runtime is not self._run_runtime and self._session is not None:
            needs = frozenset(self._graph.closure([key])) - {key}
            lifecycle = isinstance(instance, ConfigurableResource | ResourceDefinition)
            secrets = frozenset(secrets_of(instance)) if lifecycle else frozenset()
            self._session.keep(key, cls, instance, entered[0], cm, teardown_timeout, needs, secrets)
        else:
            self._teardown.push(key, cls, cm, teardown_timeout)
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


class ProcessRun:
    """One run in one process: its runtime and its resource stack, built together once.

    Every place a run happens in a process builds one: the in-process executor (through
    ``RunState.process_run``), each worker (:class:`host.executors.WorkerRun`), and
    ``host.testing``'s resource scopes. Use it as a context manager, or call :meth:`close`.

    Args:
        run_id: the run's id.
        executor: the executor's name.
        hook: the run's hook relay in this process.
        emit: where events go (the run's event log; a queue to the caller in a worker).
        resources: the run's resource graph (configuration only).
        timeouts: resource key -> the setup/teardown timeouts given for the run.
        run_deadline: the run's timeout when it is counted in this thread.
        loop: how awaitables run (default: the run's own event loop,
            :class:`~host._runtime.OwnLoop`).
        threads: assets of several threads use it at once (see :class:`ResourceStack`).
        secrets: the set the secret values known here are collected in (default: a new one).
        session: the session id, if the run is part of a :class:`host.Session`: its
            session-scoped resources come from, and stay in, this process's store of that
            session (:func:`host._session_resources.session_resources`).

    Attributes:
        runtime: the run's runtime here (what the contexts and hooks see of the run).
        stack: the resources brought up here.
    """

    def __init__(
        self,
        run_id: str,
        executor: str,
        hook: pluggy.HookRelay,
        emit: Callable[[Event], None],
        resources: ResourceGraph,
        *,
        timeouts: Mapping[str, PhaseTimeouts] | None = None,
        run_deadline: Deadline | None = None,
        loop: AwaitableRunner | None = None,
        threads: bool = False,
        secrets: set[str] | None = None,
        session: str | None = None,
    ) -> None:
        self.runtime = ProcessRuntime(
            run_id, executor, hook, emit, timeouts=timeouts, run_deadline=run_deadline, loop=loop
        )
        if secrets is not None:
            self.runtime.secrets = secrets
        store = None if session is None else session_resources(session)
        self.stack = ResourceStack(resources, self.runtime, threads=threads, session=store)
        self._closed = False

    @property
    def teardown_errors(self) -> list[ResourceTeardownError]:
        """The teardown failures of :attr:`stack`, in the order they happened."""
        return self.stack.teardown_errors

    def __enter__(self) -> ProcessRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(exc_type, exc, tb)

    def close(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """Tear down what came up here, in reverse order, then close the event loop; once.

        Args:
            exc_type, exc, tb: the exception ending the run here, if any; passed to each
                resource's context manager, as ``with`` would.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.stack.__exit__(exc_type, exc, tb)
        finally:
            self.runtime.close()
