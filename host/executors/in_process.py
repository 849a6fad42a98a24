"""The in-process executor: every asset in the caller's process, one resource stack per run."""

from __future__ import annotations

from typing import ClassVar

from host._step import execute_step
from host.executors.base import Executor, RunState

__all__ = ["InProcessExecutor"]


class InProcessExecutor(Executor):
    """Runs assets one after another in the calling process, in plan order.

    Resources come up the first time an asset needs them and are torn down in reverse order when
    the run ends, also on an asset error, KeyboardInterrupt or SIGTERM (which then propagate).
    Assets downstream of a failure are skipped; the others still run. In a
    :class:`host.Session`, session-scoped resources stay up in this process between runs.
    """

    name: ClassVar[str] = "in_process"
    supports_sessions: ClassVar[bool] = True

    def execute(self, run: RunState) -> None:
        outputs = run.outputs
        with run.process_run() as process:
            stack, runtime = process.stack, process.runtime
            for key, step in run.plan.steps.items():
                # No asset is blocked before one has failed or been skipped: the lookup is
                # skipped until then. Every upstream output is in ``outputs`` by now (the
                # plan's order), so it serves as the inputs as it is.
                blocker = run.blocked_by(key) if run.failures or run.skipped else None
                if blocker is not None:
                    run.skip(key, blocker)
                else:
                    outcome = execute_step(step, outputs, stack, runtime)
                    if outcome.ok:
                        outputs[key] = outcome.output
                    else:
                        run.record(outcome)
        run.record_teardown_errors(process.teardown_errors)
