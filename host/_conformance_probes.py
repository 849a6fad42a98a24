"""The probes ``check_resource_class`` uses: hook plugins that capture or fail a bring-up on
purpose, a resource that always fails, log capture, a spawned worker round trip, small helpers."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import traceback
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import TypeAdapter

from host._context import InitResourceContext
from host._events import Event, ResourceEvent
from host._hookspecs import hookimpl
from host._resource import ConfigurableResource
from host._resource_scope import open_resource

__all__ = [
    "Capture",
    "FailBringUp",
    "FailingResource",
    "InjectedFailure",
    "LogRecords",
    "capture_logs",
    "chain",
    "has_json_schema",
    "phases_of",
    "qualname",
    "same",
    "worker_problem",
]

#: The key the checked resource is brought up under.
SUBJECT = "subject"


class InjectedFailure(Exception):
    """Raised on purpose by ``check_resource_class`` to simulate a failing bring-up."""


class FailingResource(ConfigurableResource):
    """A resource whose setup always fails: brought up after the checked one."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        raise InjectedFailure("this resource fails to come up on purpose")


class Capture:
    """Records each resource the run brings up, with its init context."""

    def __init__(self) -> None:
        self.up: dict[str, tuple[ConfigurableResource, InitResourceContext]] = {}

    @hookimpl(wrapper=True)
    def host_resource_yield(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> Generator[None, Any, Any]:
        self.up[context.resource_key] = (resource, context)
        return (yield)


class FailBringUp:
    """Makes the bring-up of one key fail before the resource's own code runs."""

    def __init__(self, key: str) -> None:
        self.key = key

    @hookimpl(tryfirst=True)
    def host_resource_setup(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> None:
        if context.resource_key == self.key:
            raise InjectedFailure(f"setup of {self.key!r} fails on purpose")

    @hookimpl(wrapper=True)
    def host_resource_yield(
        self, resource: ConfigurableResource, context: InitResourceContext
    ) -> Generator[None, Any, Any]:
        inner = yield
        if context.resource_key != self.key or not type(resource).overrides_yield():
            return inner
        return failing_enter(self.key)


@contextmanager
def failing_enter(key: str) -> Iterator[Any]:
    raise InjectedFailure(f"yield_for_execution of {key!r} fails on purpose")
    yield  # pragma: no cover - makes this a generator


class LogRecords(logging.Handler):
    """Keeps the text of every log record, to look for secrets in."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is not what is checked here
            text = str(record.msg)
        self.texts.append(f"{text} {record.__dict__!r}")


@contextmanager
def capture_logs() -> Iterator[LogRecords]:
    root = logging.getLogger()
    handler = LogRecords()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.setLevel(level)
        root.removeHandler(handler)


def qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


def has_json_schema(annotation: Any) -> bool:
    """Whether pydantic can describe ``annotation`` (a field's type) in a JSON schema."""
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    except Exception:  # an arbitrary type: validated with isinstance, never describable
        return False
    try:
        adapter.json_schema()
    except Exception:
        return False
    return True


def phases_of(events: list[Event], key: str) -> list[tuple[str, bool]]:
    """(phase, failed) of each resource event of ``key``."""
    return [
        (e.phase, e.error is not None)
        for e in events
        if isinstance(e, ResourceEvent) and e.resource_key == key
    ]


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def worker_main(conn: Any, payload: bytes) -> None:
    """In a spawned process: unpickle the resource, bring it up and down, answer."""
    try:
        resource = pickle.loads(payload)
        with open_resource(resource, key=SUBJECT):
            pass
        conn.send(("ok", os.getpid(), resource.masked_config()))
    except BaseException:
        conn.send(("error", os.getpid(), traceback.format_exc()))
    finally:
        conn.close()


def worker_problem(resource: ConfigurableResource, timeout: float) -> str | None:
    """What is wrong with bringing ``resource`` up and down in a spawned process, or ``None``.

    The resource is pickled, sent to a new process, brought up and down there through
    ``open_resource``; its masked configuration must arrive unchanged. A worker that gives no
    answer within ``timeout`` seconds, or is still alive ``timeout`` seconds after answering, is
    killed.
    """
    try:
        payload = pickle.dumps(resource)
    except Exception as exc:
        cls = type(resource)
        return (
            f"it cannot be sent to a worker process ({type(exc).__name__}: {exc}); the class "
            f"must be importable as {qualname(cls)}"
        )
    reply, answered, exitcode = _round_trip(payload, timeout)
    if reply is None:
        return (
            f"the worker process exited with code {exitcode} before answering (its stderr "
            f"tells why)"
            if answered
            else f"the worker process did not answer within {timeout} s"
        )
    if reply[0] != "ok":
        return f"in a worker process: {reply[2]}"
    if reply[1] == os.getpid():
        return "the worker ran in this process"  # pragma: no cover
    if reply[2] != resource.masked_config():
        return "the configuration that reached the worker differs from this one"
    return None


def _round_trip(payload: bytes, timeout: float) -> tuple[tuple[Any, ...] | None, bool, int | None]:
    """Run :func:`worker_main` on ``payload`` in a spawned process: (reply, answered, exit code)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=worker_main, args=(sender, payload), daemon=True)
    process.start()
    sender.close()
    reply: tuple[Any, ...] | None = None
    try:
        answered = receiver.poll(timeout)
        with contextlib.suppress(EOFError):  # it died: the pipe closed without an answer
            reply = receiver.recv() if answered else None
    finally:
        receiver.close()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
        exitcode = process.exitcode
        process.close()
    return reply, answered, exitcode
