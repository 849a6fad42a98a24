"""The fault plan (:class:`Fault`, :class:`Faults`) and the hooks that carry it out."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections.abc import Generator, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from host import (
    AssetExecutionContext,
    ConfigurableResource,
    HostError,
    InitResourceContext,
    hookimpl,
)

__all__ = [
    "ASSET_PHASES",
    "ENV_VAR",
    "PHASES",
    "RESOURCE_PHASES",
    "Fault",
    "FaultConfigError",
    "Faults",
    "InjectedFault",
    "environment_faults",
    "read_log",
]

#: The environment variable the installed plugin reads: a fault plan as JSON.
ENV_VAR = "HOST_FAULTS"

Phase = Literal[
    "setup", "yield_enter", "yield_exit", "teardown", "asset_start", "asset_body", "asset_end"
]
Action = Literal["raise", "hang", "kill", "exit", "signal"]

#: Resource phases, in the order a resource goes through them.
RESOURCE_PHASES: tuple[str, ...] = ("yield_enter", "setup", "teardown", "yield_exit")
#: Asset phases, in order.
ASSET_PHASES: tuple[str, ...] = ("asset_start", "asset_body", "asset_end")
#: Every phase a fault can be placed at.
PHASES: tuple[str, ...] = RESOURCE_PHASES + ASSET_PHASES

_BEFORE_BY_DEFAULT = {"setup", "yield_enter"}


class InjectedFault(RuntimeError):
    """What a ``raise`` fault raises; its message names the fault, phase, key and process."""


class FaultConfigError(HostError):
    """A fault plan (``HOST_FAULTS`` or the arguments of :class:`Faults`) is invalid."""


class Fault(BaseModel):
    """One fault: what to do, at which phase, for which key, in which process.

    Attributes:
        phase: where it fires. Resource phases (the key is the resource key): ``setup`` and
            ``teardown`` (the resource's own methods, under the default ``yield_for_execution``),
            ``yield_enter`` and ``yield_exit`` (entering and leaving the context manager that
            holds the resource up, for every resource). Asset phases (the key is the asset
            key): ``asset_start`` (the ``host_asset_start`` hook: resources are up, the body has
            not run), ``asset_body`` (just before the asset's function is called) and
            ``asset_end`` (just after it returned, before its output is reported).
        action: ``raise`` :class:`InjectedFault`; ``hang`` for ``hang_seconds`` (in short
            sleeps, so a timeout can stop it) and then go on; ``kill`` the process with
            SIGKILL; ``exit`` it with ``os._exit(exit_code)``; ``signal``: send ``signum`` to
            ``target`` and go on.
        key: the resource or asset key it applies to; ``None``: every one.
        when: for resource phases, ``before`` or ``after`` the resource's own code runs.
            Default: ``before`` for ``setup`` and ``yield_enter`` (the resource does not come
            up), ``after`` for ``teardown`` and ``yield_exit`` (it went down, then the phase
            fails). ``after`` on a setup phase means the resource's code ran and then the phase
            failed: the host does not tear it down, as for any setup that raises.
        pid: fire only in this process.
        once: fire in one process only per run: the first that reaches it (claimed with a
            file in the plan's ``state_dir``).
        signum: the signal for ``signal`` (a name such as ``"SIGTERM"``, or a number).
        target: where ``signal`` goes: ``self``, ``parent`` (the process that started this
            one: the caller, for a ``multiprocess`` worker), or a pid.
        exit_code: the status for ``exit``.
        hang_seconds: how long ``hang`` lasts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    phase: Phase
    action: Action
    key: str | None = None
    when: Literal["before", "after"] | None = None
    pid: int | None = None
    once: bool = False
    signum: str | int = "SIGTERM"
    target: Literal["self", "parent"] | int = "self"
    exit_code: int = Field(default=3, ge=0, le=255)
    hang_seconds: float = Field(default=3600.0, gt=0, allow_inf_nan=False)

    @field_validator("signum")
    @classmethod
    def _known_signal(cls, value: str | int) -> str | int:
        try:
            signal.Signals[value] if isinstance(value, str) else signal.Signals(value)
        except (KeyError, ValueError):
            raise ValueError(f"{value!r} is not a signal of this platform") from None
        return value

    def timing(self) -> str:
        """``before`` or ``after``: when the fault fires relative to the resource's code."""
        if self.when is not None:
            return self.when
        return "before" if self.phase in _BEFORE_BY_DEFAULT else "after"

    def describe(self) -> str:
        """A short description for messages and the log."""
        where = f"{self.phase} of {self.key!r}" if self.key is not None else self.phase
        return f"{self.action} at {where}"


class _Plan(BaseModel):
    """The JSON shape of ``HOST_FAULTS``: a list of faults, or an object with them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    faults: tuple[Fault, ...]
    log: str | None = None
    state_dir: str | None = None


def _default_state_dir() -> str:
    return str(Path(tempfile.gettempdir()) / "host-faults")


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The faults fired, as the plan's ``log`` recorded them (one dict each, in order)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _append(path: str, record: Mapping[str, Any]) -> None:
    """One JSON line, one ``write`` on an ``O_APPEND`` descriptor (atomic between processes)."""
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class Faults:
    """A hook plugin that carries out a fault plan; pass it in ``run_assets(plugins=[...])``.

    It pickles (it is sent to worker processes with the run) and fires in whatever process
    reaches a fault's phase. ``environment_faults``, the instance the package registers as the
    installed hook plugin ``faults``, reads its plan from ``HOST_FAULTS`` each time a hook runs
    and costs nothing while the variable is unset or empty.

    Args:
        *faults: the faults (:class:`Fault` or dicts of its fields).
        log: a file each fault appends one JSON line to just before it acts (phase, key,
            action, pid, run id): the record of what fired, even in a process it kills.
        state_dir: where ``once`` faults claim their turn (shared by the processes of a run).

    Raises:
        FaultConfigError: a fault is invalid.
    """

    def __init__(
        self,
        *faults: Fault | Mapping[str, Any],
        log: str | os.PathLike[str] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        _from_environment: bool = False,
    ) -> None:
        self._from_environment = _from_environment
        self._cached: tuple[str, _Plan] | None = None
        self._plan = _Plan(faults=(), log=None, state_dir=None)
        if not _from_environment:
            self._plan = _validated(
                {
                    "faults": list(faults),
                    "log": None if log is None else str(log),
                    "state_dir": None if state_dir is None else str(state_dir),
                },
                "Faults(...)",
            )

    def __repr__(self) -> str:
        if self._from_environment:
            return f"<Faults from ${ENV_VAR}>"
        return f"<Faults {', '.join(f.describe() for f in self._plan.faults) or 'none'}>"

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The plan's faults (for the installed plugin: those ``HOST_FAULTS`` gives now)."""
        return self._current().faults

    def _current(self) -> _Plan:
        if not self._from_environment:
            return self._plan
        text = os.environ.get(ENV_VAR, "").strip()
        if not text:
            return self._plan
        if self._cached is None or self._cached[0] != text:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise FaultConfigError(
                    f"{ENV_VAR} is not JSON ({exc.msg} at character {exc.pos}); give a list "
                    f'of faults such as [{{"phase": "setup", "action": "raise", "key": "db"}}]'
                ) from None
            if isinstance(data, list):
                data = {"faults": data}
            self._cached = (text, _validated(data, ENV_VAR))
        return self._cached[1]

    # -- firing ------------------------------------------------------------------------------

    def _at(self, phase: str, timing: str | None, key: str, run_id: str) -> None:
        """Carry out every fault placed here, in the order of the plan."""
        plan = self._current()
        for index, fault in enumerate(plan.faults):
            if fault.phase != phase or (fault.key is not None and fault.key != key):
                continue
            if timing is not None and fault.timing() != timing:
                continue
            if fault.pid is not None and fault.pid != os.getpid():
                continue
            if fault.once and not _claim(plan, run_id, index):
                continue
            _act(plan, index, fault, key, run_id)

    def _wants(self, phases: Iterable[str], key: str) -> bool:
        return any(
            fault.phase in phases and (fault.key is None or fault.key == key)
            for fault in self._current().faults
        )

    # -- resource hooks ----------------------------------------------------------------------

    @hookimpl(wrapper=True, tryfirst=True)
    def host_resource_setup(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> Generator[None, object | None, object | None]:
        """Faults at ``setup``, before or after the resource's ``setup_for_execution``."""
        self._at("setup", "before", context.resource_key, context.run_id)
        result = yield
        self._at("setup", "after", context.resource_key, context.run_id)
        return result

    @hookimpl(wrapper=True, tryfirst=True)
    def host_resource_teardown(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> Generator[None, object | None, object | None]:
        """Faults at ``teardown``, before or after the resource's teardown."""
        self._at("teardown", "before", context.resource_key, context.run_id)
        result = yield
        self._at("teardown", "after", context.resource_key, context.run_id)
        return result

    @hookimpl(wrapper=True, tryfirst=True)
    def host_resource_yield(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> Generator[
        None, AbstractContextManager[Any] | None, AbstractContextManager[Any] | None
    ]:
        """Wrap the context manager that holds the resource up (``yield_enter``/``_exit``)."""
        inner = yield
        if inner is None or not self._wants(("yield_enter", "yield_exit"), context.resource_key):
            return inner
        return _FaultyYield(self, inner, context)

    # -- asset hooks -------------------------------------------------------------------------

    @hookimpl
    def host_asset_start(self, context: AssetExecutionContext) -> None:
        """Faults at ``asset_start``."""
        self._at("asset_start", None, context.asset_key, context.run_id)

    @hookimpl(wrapper=True, tryfirst=True)
    def host_asset_execute(
        self, context: AssetExecutionContext, fn: Any, kwargs: dict[str, Any]
    ) -> Generator[None, Any, Any]:
        """Faults at ``asset_body`` (before the function) and ``asset_end`` (after it)."""
        self._at("asset_body", None, context.asset_key, context.run_id)
        output = yield
        self._at("asset_end", None, context.asset_key, context.run_id)
        return output


class _FaultyYield(AbstractContextManager[Any]):
    """The resource's context manager, with the faults of ``yield_enter`` and ``yield_exit``."""

    def __init__(
        self, faults: Faults, inner: AbstractContextManager[Any], context: InitResourceContext
    ) -> None:
        self._faults = faults
        self._inner = inner
        self._key = context.resource_key
        self._run_id = context.run_id

    def __enter__(self) -> Any:
        self._faults._at("yield_enter", "before", self._key, self._run_id)
        value = self._inner.__enter__()
        self._faults._at("yield_enter", "after", self._key, self._run_id)
        return value

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._faults._at("yield_exit", "before", self._key, self._run_id)
        swallowed = self._inner.__exit__(exc_type, exc, tb)
        self._faults._at("yield_exit", "after", self._key, self._run_id)
        return swallowed


def _validated(data: Any, source: str) -> _Plan:
    try:
        return _Plan.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(plan)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise FaultConfigError(f"{source}: invalid fault plan: {problems}") from None


def _claim(plan: _Plan, run_id: str, index: int) -> bool:
    """Whether this process is the first of the run to reach fault ``index``."""
    directory = Path(plan.state_dir or _default_state_dir())
    directory.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(directory / f"{run_id}-{index}", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _act(plan: _Plan, index: int, fault: Fault, key: str, run_id: str) -> None:
    pid = os.getpid()
    if plan.log is not None:
        _append(
            plan.log,
            {
                "fault": index,
                "phase": fault.phase,
                "when": fault.timing(),
                "key": key,
                "action": fault.action,
                "pid": pid,
                "run_id": run_id,
            },
        )
    if fault.action == "raise":
        raise InjectedFault(
            f"injected fault #{index}: {fault.describe()} (key {key!r}, process {pid})"
        )
    if fault.action == "hang":
        until = time.monotonic() + fault.hang_seconds
        while time.monotonic() < until:
            time.sleep(min(0.05, max(0.0, until - time.monotonic())))
        return
    if fault.action == "kill":
        os.kill(pid, signal.SIGKILL)
        while True:  # the signal is on its way
            time.sleep(1)
    if fault.action == "exit":
        os._exit(fault.exit_code)
    signum = (
        signal.Signals[fault.signum] if isinstance(fault.signum, str) else fault.signum
    )
    target = {"self": pid, "parent": os.getppid()}.get(str(fault.target), fault.target)
    assert isinstance(target, int)
    os.kill(target, signum)


#: The hooks a plan acts through (``_FromEnvironment`` offers them only while a plan is set).
_FAULT_HOOKS = frozenset(
    {
        "host_resource_setup",
        "host_resource_teardown",
        "host_resource_yield",
        "host_asset_start",
        "host_asset_execute",
    }
)


class _FromEnvironment(Faults):
    """The installed plugin: the plan in ``HOST_FAULTS``, read each time a hook runs.

    While the variable is unset or empty it costs nothing: a plugin manager is built for each
    run, and this object then shows it no fault hook at all (``dir`` is what pluggy reads), only
    ``host_run_start``, which checks a plan that is set before anything comes up.
    """

    def __dir__(self) -> list[str]:
        names = list(super().__dir__())
        if os.environ.get(ENV_VAR, "").strip():
            return names
        return [name for name in names if name not in _FAULT_HOOKS]

    @hookimpl
    def host_run_start(self, run_id: str, executor: str, assets: tuple[str, ...]) -> None:
        """Check the plan in ``HOST_FAULTS`` (if any) before the run brings anything up.

        Raises:
            FaultConfigError: the plan is invalid.
        """
        self._current()


#: The installed hook plugin (entry point ``faults``): the plan in ``HOST_FAULTS``, if any.
environment_faults: Faults = _FromEnvironment(_from_environment=True)
