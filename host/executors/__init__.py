"""The executor kit: what an executor is, and what one that runs assets elsewhere builds on.

Executors are a plugin kind (``host.executors`` entry points: ``name = "module:Class"``). This
package is their public contract, the same one the built-in ``in_process`` and ``multiprocess``
executors and the ``dask`` plugin are written against:

- the contract: :class:`Executor`, its :class:`ExecutorConfig`, and the :class:`RunState` it
  fills in, with the types it is handed (:class:`Plan` of :class:`Step`, :class:`ResourceGraph`
  of :class:`ResourceNode`, :class:`PhaseTimeouts`, the run's :class:`Deadline`) and the
  :class:`StepOutcome` it records;
- the worker side, "one run in one process": :class:`RunPayload` (sent once per run),
  :class:`WorkerRun` (plugins, runtime and resource stack there) and :class:`StepResult`;
- the caller side: :class:`CallerRun` (one run on workers, as the caller keeps it: the
  frontier, the outputs passed downstream, what is up where and where an asset best goes, the
  run's timeout, and the failures only the caller can report), :class:`RemoteExecutor` (the
  base of executors whose assets run in other processes), :class:`Frontier` (which assets can
  start), shipping (:func:`dumps`, :func:`loads`, :func:`check_shippable`,
  :func:`shippable_plugins`, :func:`needed_resources`, :class:`ShippedError`,
  :class:`ShippingError`), what is up in each worker (:func:`resource_needs`,
  :func:`track_up`, :func:`teardown_due`) and what is reported when a worker goes before
  tearing down (:func:`not_torn_down`, :func:`stuck_teardown`, :func:`teardown_errors`,
  :func:`teardown_timeout`), worker output (:class:`LogForwarder`, :func:`reemit_record`,
  :func:`write_output`, :func:`forward_output`, :class:`CapturedOutput`,
  :func:`caller_log_levels`, :func:`mask`),
  interrupts (:data:`INTERRUPT_GRACE`, :func:`signals_held`, :func:`interrupt_thread`,
  :func:`cancel_interrupt`) and :func:`distribution_of` for error messages.

Names are imported on first use, so ``import host.executors`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from host._lazy import lazy_names

if TYPE_CHECKING:
    from host._errors import ShippingError
    from host._graph import Plan, Step
    from host._interrupts import signals_held
    from host._lifecycle import distribution_of
    from host._resource_graph import ResourceGraph, ResourceNode
    from host._secrets import mask
    from host._session_resources import close_session_resources
    from host._step import StepOutcome
    from host._timeouts import Deadline, PhaseTimeouts, cancel_interrupt, interrupt_thread
    from host.executors._caller import (
        INTERRUPT_GRACE,
        CallerRun,
        resource_needs,
        teardown_due,
        track_up,
    )
    from host.executors._failures import (
        not_torn_down,
        stuck_teardown,
        teardown_errors,
        teardown_timeout,
    )
    from host.executors._frontier import Frontier
    from host.executors._output import (
        CapturedOutput,
        LogForwarder,
        caller_log_levels,
        forward_output,
        reemit_record,
        write_output,
    )
    from host.executors._shipping import (
        ShippedError,
        check_shippable,
        dumps,
        loads,
        needed_resources,
        shippable_plugins,
    )
    from host.executors._worker_run import RunPayload, StepResult, WorkerRun
    from host.executors.base import Executor, ExecutorConfig, RemoteExecutor, RunState
    from host.executors.in_process import InProcessExecutor
    from host.executors.multiprocess import MultiprocessConfig, MultiprocessExecutor

#: Public names imported on first use: name -> the module that defines it.
_LAZY = {
    **dict.fromkeys(
        ("Executor", "ExecutorConfig", "RemoteExecutor", "RunState"), "host.executors.base"
    ),
    **dict.fromkeys(("Plan", "Step"), "host._graph"),
    **dict.fromkeys(("ResourceGraph", "ResourceNode"), "host._resource_graph"),
    "StepOutcome": "host._step",
    "ShippingError": "host._errors",
    "Frontier": "host.executors._frontier",
    **dict.fromkeys(
        ("INTERRUPT_GRACE", "CallerRun", "resource_needs", "teardown_due", "track_up"),
        "host.executors._caller",
    ),
    **dict.fromkeys(
        ("not_torn_down", "stuck_teardown", "teardown_errors", "teardown_timeout"),
        "host.executors._failures",
    ),
    **dict.fromkeys(
        (
            "CapturedOutput",
            "LogForwarder",
            "caller_log_levels",
            "forward_output",
            "reemit_record",
            "write_output",
        ),
        "host.executors._output",
    ),
    **dict.fromkeys(("RunPayload", "StepResult", "WorkerRun"), "host.executors._worker_run"),
    **dict.fromkeys(
        (
            "ShippedError",
            "check_shippable",
            "dumps",
            "loads",
            "needed_resources",
            "shippable_plugins",
        ),
        "host.executors._shipping",
    ),
    "InProcessExecutor": "host.executors.in_process",
    **dict.fromkeys(
        ("MultiprocessConfig", "MultiprocessExecutor"),
        "host.executors.multiprocess",
    ),
    "signals_held": "host._interrupts",
    **dict.fromkeys(
        ("Deadline", "PhaseTimeouts", "cancel_interrupt", "interrupt_thread"), "host._timeouts"
    ),
    "distribution_of": "host._lifecycle",
    "mask": "host._secrets",
    "close_session_resources": "host._session_resources",
}


#: Import a public name of :data:`_LAZY` on first use (then it is a plain attribute).
__getattr__, __dir__ = lazy_names(globals(), _LAZY)

__all__ = [  # noqa: RUF022 (plain sorted() order, which tests/test_executor_kit.py pins)
    "CallerRun",
    "CapturedOutput",
    "Deadline",
    "Executor",
    "ExecutorConfig",
    "Frontier",
    "INTERRUPT_GRACE",
    "InProcessExecutor",
    "LogForwarder",
    "MultiprocessConfig",
    "MultiprocessExecutor",
    "PhaseTimeouts",
    "Plan",
    "RemoteExecutor",
    "ResourceGraph",
    "ResourceNode",
    "RunPayload",
    "RunState",
    "ShippedError",
    "ShippingError",
    "Step",
    "StepOutcome",
    "StepResult",
    "WorkerRun",
    "caller_log_levels",
    "cancel_interrupt",
    "check_shippable",
    "close_session_resources",
    "distribution_of",
    "dumps",
    "forward_output",
    "interrupt_thread",
    "loads",
    "mask",
    "needed_resources",
    "not_torn_down",
    "reemit_record",
    "resource_needs",
    "shippable_plugins",
    "signals_held",
    "stuck_teardown",
    "teardown_due",
    "teardown_errors",
    "teardown_timeout",
    "track_up",
    "write_output",
]
