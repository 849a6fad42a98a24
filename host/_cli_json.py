"""The JSON documents of ``host run --json`` and ``host check --json``, and their JSON Schemas.

Each document is a pydantic model; ``specs/run-result.schema.json`` and
``specs/check-result.schema.json`` are their schemas (:func:`run_report_schema`,
:func:`check_report_schema`; a test keeps them equal, and validates every document the tests
print against them). Every text in a document is masked, as everything the command prints is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from host._discovery import PluginInfo
from host._events import (
    AssetFailed,
    AssetSkipped,
    AssetStarted,
    AssetSucceeded,
    ErrorInfo,
    Event,
    LogRecorded,
    ResourceEvent,
    RunFinished,
    RunStarted,
)
from host._output import Mask
from host._summary import output_repr

__all__ = [
    "SCHEMA_VERSION",
    "CheckReport",
    "RunReport",
    "check_report",
    "check_report_schema",
    "run_report",
    "run_report_schema",
]

#: The version of both documents' shape; a change that is not only an addition raises it.
SCHEMA_VERSION: Literal[1] = 1

_Model = ConfigDict(frozen=True, extra="forbid")

Outcome = Literal["succeeded", "failed", "interrupted", "terminated"]
AssetStatus = Literal["ok", "failed", "skipped", "interrupted", "not run"]


class ErrorReport(BaseModel):
    """An error: its exception type and message (masked)."""

    model_config = _Model

    type: str = Field(description="The exception's qualified class name.")
    message: str = Field(description="The exception's message, masked.")


class AssetReport(BaseModel):
    """One asset of the run."""

    model_config = _Model

    key: str = Field(description="The asset key.")
    status: AssetStatus = Field(
        description="ok, failed, skipped (something upstream did not succeed), interrupted "
        "(it was running when the run was stopped) or not run (the run was stopped first)."
    )
    duration: float | None = Field(description="Seconds it computed for, if it ran.")
    pid: int | None = Field(description="The process it ran in, if it started.")
    error: ErrorReport | None = Field(description="Why it failed, if it did.")
    skipped_because: str | None = Field(
        description="The upstream asset that did not succeed, if it was skipped."
    )
    output: str | None = Field(
        description="A short repr of its output (masked, at most 60 characters), if it "
        "succeeded and the output was returned to this process."
    )


class PhaseReport(BaseModel):
    """One phase of a resource's lifecycle in one process."""

    model_config = _Model

    duration: float = Field(description="Seconds the phase took.")
    error: ErrorReport | None = Field(description="Why it failed, if it did.")


class ResourceReport(BaseModel):
    """One resource in one process: its type and the phases it went through."""

    model_config = _Model

    key: str = Field(description="The resource key ([resources.KEY]).")
    type: str | None = Field(description="Its resource type (entry-point name), if known.")
    distribution: str | None = Field(description="The distribution the type came from.")
    version: str | None = Field(description="That distribution's version.")
    pid: int = Field(description="The process it came up (or failed to) in.")
    phases: dict[Literal["yield_enter", "setup", "teardown", "yield_exit"], PhaseReport] = Field(
        description="yield_enter (up), setup, teardown, yield_exit (down): each phase it went "
        "through."
    )


class LogReport(BaseModel):
    """A log record of the run (a ``LogRecorded`` event), at or above the chosen level."""

    model_config = _Model

    timestamp: float = Field(description="When it was emitted (seconds since the epoch).")
    pid: int = Field(description="The process it was emitted in.")
    level: str = Field(description="The level's name: DEBUG, INFO, WARNING, ERROR, CRITICAL.")
    logger: str = Field(
        description="The logger: host.asset or host.resource for context.log, py.warnings for "
        "a warning, the code's own logger otherwise."
    )
    message: str = Field(description="The message (with its traceback, if any), masked.")
    asset: str | None = Field(description="The asset that emitted it (none in a resource phase).")
    resource: str | None = Field(description="The resource whose phase emitted it.")
    phase: Literal["yield_enter", "setup", "teardown", "yield_exit"] | None = Field(
        description="That resource phase."
    )


class RunReport(BaseModel):
    """What ``host run --json`` prints: one document, after the run (or its interruption)."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="host run result")

    schema_version: Literal[1] = Field(description="The version of this document's shape.")
    run_id: str | None = Field(description="The run's id (none if it was stopped before it began).")
    success: bool = Field(description="No asset failed, no resource phase failed.")
    outcome: Outcome = Field(
        description="succeeded, failed, interrupted (SIGINT) or terminated (SIGTERM, SIGHUP)."
    )
    exit_code: int = Field(description="The command's exit code.")
    executor: str | None = Field(description="The executor's name.")
    duration: float | None = Field(description="Seconds the run took, if it finished.")
    assets: list[AssetReport] = Field(description="Every planned asset, in plan order.")
    resources: list[ResourceReport] = Field(
        description="Every resource lifecycle: one per resource key and process."
    )
    logs: list[LogReport] = Field(
        default_factory=list,
        description="The log records of the run's assets and resource phases at or above the "
        "chosen level (--log-level, -v), in order.",
    )


class ResourceEntry(BaseModel):
    """A resource of a checked run config."""

    model_config = _Model

    key: str
    type: str
    distribution: str | None
    version: str | None


class CheckReport(BaseModel):
    """What ``host check --json`` prints."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="host check result")

    schema_version: Literal[1] = Field(description="The version of this document's shape.")
    file: str = Field(description="The run config checked.")
    valid: bool = Field(description="Whether it is valid (the exit code is then 0, else 2).")
    problems: list[str] = Field(description="Every problem found (none when valid).")
    executor: str | None = Field(description="The executor's name, when valid.")
    assets: list[str] = Field(description="The assets the run would compute, in order.")
    resources: list[ResourceEntry] = Field(description="The resources, when valid.")


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}


def run_report_schema() -> dict[str, Any]:
    """The JSON Schema of ``host run --json`` (``specs/run-result.schema.json``)."""
    return _schema(RunReport)


def check_report_schema() -> dict[str, Any]:
    """The JSON Schema of ``host check --json`` (``specs/check-result.schema.json``)."""
    return _schema(CheckReport)


def _error(info: ErrorInfo | None, mask: Mask) -> ErrorReport | None:
    if info is None:
        return None
    return ErrorReport(type=info.type, message=mask(info.message))


def run_report(
    events: Sequence[Event],
    outputs: Mapping[str, Any],
    planned: Sequence[str],
    types: Mapping[str, PluginInfo],
    exit_code: int,
    outcome: Outcome,
    mask: Mask,
    log_level: int = logging.WARNING,
) -> RunReport:
    """The run's document, from its events (all of them, or those seen before it was stopped).

    Args:
        events: the run's events, in order.
        outputs: asset key -> output, for the assets whose outputs came back.
        planned: the planned asset keys, in order.
        types: resource key -> the entry point its type came from.
        exit_code: the command's exit code.
        outcome: how the run ended.
        mask: masks secret values in a text.
        log_level: the log records kept are those at or above this level.
    """
    logs: list[LogReport] = []
    started: dict[str, int] = {}
    ended: dict[str, AssetSucceeded | AssetFailed | AssetSkipped] = {}
    phases: dict[tuple[str, int], dict[Any, PhaseReport]] = {}
    run_id = executor = None
    duration = None
    for event in events:
        if isinstance(event, RunStarted):
            run_id, executor = event.run_id, event.executor
        elif isinstance(event, RunFinished):
            duration = event.duration
        elif isinstance(event, AssetStarted):
            started[event.asset_key] = event.pid
        elif isinstance(event, AssetSucceeded | AssetFailed | AssetSkipped):
            ended[event.asset_key] = event
        elif isinstance(event, LogRecorded):
            if event.level >= log_level:
                logs.append(_log(event, mask))
        elif isinstance(event, ResourceEvent):
            phases.setdefault((event.resource_key, event.pid), {})[event.phase] = PhaseReport(
                duration=event.duration, error=_error(event.error, mask)
            )
    assets = []
    for key in planned:
        end = ended.get(key)
        status: AssetStatus = "interrupted" if key in started else "not run"
        if isinstance(end, AssetSucceeded):
            status = "ok"
        elif isinstance(end, AssetFailed):
            status = "failed"
        elif isinstance(end, AssetSkipped):
            status = "skipped"
        assets.append(
            AssetReport(
                key=key,
                status=status,
                duration=end.duration if isinstance(end, AssetSucceeded | AssetFailed) else None,
                pid=started.get(key),
                error=_error(end.error, mask) if isinstance(end, AssetFailed) else None,
                skipped_because=end.upstream if isinstance(end, AssetSkipped) else None,
                output=output_repr(outputs[key], mask) if key in outputs else None,
            )
        )
    resources = []
    for (key, pid), done in phases.items():
        info = types.get(key)
        resources.append(
            ResourceReport(
                key=key,
                type=info.name if info is not None else None,
                distribution=info.distribution if info is not None else None,
                version=info.version if info is not None else None,
                pid=pid,
                phases=done,
            )
        )
    failed = any(a.status == "failed" for a in assets) or any(
        phase.error is not None for r in resources for phase in r.phases.values()
    )
    return RunReport(
        schema_version=SCHEMA_VERSION,
        run_id=run_id,
        success=outcome == "succeeded" and not failed,
        outcome=outcome,
        exit_code=exit_code,
        executor=executor,
        duration=duration,
        assets=assets,
        resources=resources,
        logs=logs,
    )


def _log(event: LogRecorded, mask: Mask) -> LogReport:
    return LogReport(
        timestamp=event.timestamp,
        pid=event.pid,
        level=event.level_name,
        logger=event.logger,
        message=mask(event.message),
        asset=event.asset_key,
        resource=event.resource_key,
        phase=event.phase,
    )


def check_report(
    file: str,
    problems: Sequence[str],
    executor: str | None = None,
    planned: Sequence[str] = (),
    types: Mapping[str, PluginInfo] | None = None,
) -> CheckReport:
    """``host check``'s document: valid when there is no problem."""
    return CheckReport(
        schema_version=SCHEMA_VERSION,
        file=file,
        valid=not problems,
        problems=list(problems),
        executor=executor,
        assets=list(planned),
        resources=[
            ResourceEntry(
                key=key, type=info.name, distribution=info.distribution, version=info.version
            )
            for key, info in (types or {}).items()
        ],
    )
