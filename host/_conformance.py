"""``check_resource_class``: a plugin's own tests prove that its resource class is well formed.

Each check brings the resource up through the same machinery as a run (``open_resource``) and
reports what failed, by check name, with what to do about it. The checks, in order:

``subclass``      the class is a ``host.ConfigurableResource``
``construct``     it can be made from the given configuration
``frozen``        configuration is frozen (assignment raises FrozenResourceError), unknown
                  fields are rejected
``schema``        the JSON schema exports, names every field and no private attribute
``pickle``        a pickle round trip keeps the configuration; pickling the resource while it is
                  up works and leaves its private state behind
``lifecycle``     it comes up and goes down, twice in a row, each time as a fresh copy
``secrets``       no ``SecretStr`` (or EnvVar-read) value shows in repr, str, JSON, the schema,
                  the init context, events or log records
``setup_failure`` when its own bring-up fails, it is not torn down and the error names it; when
                  a resource after it fails, it is torn down exactly once, cleanly
``worker``        it comes up and goes down in a spawned worker process, from its pickle
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from pydantic import ValidationError

from host._conformance_probes import (
    SUBJECT,
    Capture,
    FailBringUp,
    FailingResource,
    InjectedFailure,
    capture_logs,
    chain,
    has_json_schema,
    phases_of,
    qualname,
    same,
    worker_problem,
)
from host._errors import FrozenResourceError, ResourceCheckError, ResourceSetupError
from host._resource import ConfigurableResource
from host._resource_scope import open_resource, open_resources
from host._secret_values import secret_values
from host._secrets import mask

__all__ = ["CHECKS", "ResourceCheckError", "check_resource_class"]

#: The names of the checks, in the order they run.
CHECKS = (
    "subclass",
    "construct",
    "frozen",
    "schema",
    "pickle",
    "lifecycle",
    "secrets",
    "setup_failure",
    "worker",
)


_MISSING = object()


def _secrets(resource: ConfigurableResource) -> list[str]:
    """The secret values in ``resource`` and its dependencies (EnvVars as currently set), at
    least :data:`host._secrets.MIN_SECRET_LENGTH` long: the same collection a run masks."""
    return secret_values({SUBJECT: resource})


def _shows(text: str, secrets: list[str]) -> bool:
    """Whether ``text`` shows one of ``secrets`` in any form a run would mask."""
    return mask(text, secrets) != text


class _Checker:
    """Runs the checks on one class and configuration, collecting failures by check name."""

    def __init__(self, cls: type[ConfigurableResource], config: Mapping[str, Any]) -> None:
        self.cls = cls
        self.config = dict(config)
        self.resource = cls(**self.config)
        self.failures: dict[str, str] = {}
        self.skipped: list[str] = []
        #: Text produced while the resource was up: repr, context, events, log records.
        self.seen: list[tuple[str, str]] = []

    def fail(self, check: str, message: str) -> None:
        self.failures[check] = (
            f"{self.failures[check]}; {message}" if check in self.failures else message
        )

    # -- static checks ----------------------------------------------------------------------

    def frozen(self) -> None:
        cls, resource = self.cls, self.resource
        if cls.model_config.get("frozen") is not True:
            self.fail("frozen", "model_config sets frozen to something else than True; remove it")
        for name in cls.model_fields:
            try:
                setattr(resource, name, getattr(resource, name))
            except FrozenResourceError:
                continue
            except Exception as exc:
                self.fail(
                    "frozen",
                    f"assigning field {name!r} raised {type(exc).__name__}, not "
                    f"host.FrozenResourceError; do not override __setattr__",
                )
            else:
                self.fail(
                    "frozen",
                    f"assigning field {name!r} was allowed; do not override "
                    f"__setattr__ or model_config['frozen']",
                )
        try:
            cls(**self.config, host_check_unknown_field=1)
        except ValidationError:
            pass
        except Exception as exc:
            self.fail("frozen", f"an unknown field raised {type(exc).__name__}: {exc}")
        else:
            self.fail(
                "frozen",
                "an unknown field was accepted; keep model_config['extra'] == 'forbid' so that "
                "a typo in a run config is an error",
            )

    def schema(self) -> None:
        try:
            schema = self.cls.model_json_schema()
            text = json.dumps(schema)
        except Exception as exc:
            culprits = [
                name
                for name, info in self.cls.model_fields.items()
                if not has_json_schema(info.annotation)
            ]
            self.fail(
                "schema",
                f"the JSON schema cannot be exported (fields {culprits}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}); give every field a type pydantic can describe, "
                f"or keep the object in a PrivateAttr",
            )
            return
        self.seen.append(("the JSON schema", text))
        properties = schema.get("properties", {})
        private = sorted(name for name in properties if name.startswith("_"))
        if private:
            self.fail("schema", f"the schema shows private attributes {private}")
        missing = sorted(
            name
            for name, info in self.cls.model_fields.items()
            if name not in properties and (info.alias or name) not in properties
        )
        if missing:
            self.fail("schema", f"the schema does not describe fields {missing}")

    def pickle_config(self) -> None:
        try:
            loaded = pickle.loads(pickle.dumps(self.resource))
        except Exception as exc:
            self.fail(
                "pickle",
                f"the configured resource cannot be pickled ({type(exc).__name__}: {exc}); "
                f"configuration must be picklable to reach worker processes",
            )
            return
        if type(loaded) is not self.cls:
            self.fail("pickle", f"unpickling gave {type(loaded).__name__}, not {self.cls.__name__}")
        elif loaded.model_dump() != self.resource.model_dump():
            self.fail("pickle", "a pickle round trip changed the configuration")
        elif loaded.env_vars() != self.resource.env_vars():
            self.fail("pickle", "a pickle round trip lost the EnvVar fields")

    def pickle_up(self, up: ConfigurableResource) -> None:
        try:
            loaded = pickle.loads(pickle.dumps(up))
        except Exception as exc:
            self.fail(
                "pickle",
                f"pickling the resource while it is up failed ({type(exc).__name__}: {exc}); "
                f"only its configuration may be pickled: keep live handles in PrivateAttr "
                f"attributes and do not override __getstate__/__reduce__",
            )
            return
        fresh = pickle.loads(pickle.dumps(self.resource)).__pydantic_private__ or {}
        got = loaded.__pydantic_private__ or {}
        for name, value in (up.__pydantic_private__ or {}).items():
            if name.startswith("_host_"):
                continue
            default, after = fresh.get(name, _MISSING), got.get(name, _MISSING)
            if not same(after, default) and same(after, value):
                self.fail(
                    "pickle",
                    f"private attribute {name} kept its run state through pickling; private "
                    f"state must stay in the process that brought the resource up",
                )

    # -- lifecycle --------------------------------------------------------------------------

    def lifecycle(self) -> bool:
        """Bring the resource up twice; False when it did not come up and go down cleanly."""
        instances = []
        for attempt in (1, 2):
            capture = Capture()
            scope = open_resource(self.resource, key=SUBJECT, plugins=[capture])
            try:
                with capture_logs() as logs, scope:
                    up, context = capture.up[SUBJECT]
                    instances.append(up)
                    self.seen += [
                        ("repr() of the resource while up", repr(up)),
                        ("str() of the resource while up", str(up)),
                        ("the init context's resource_config", repr(context.resource_config)),
                    ]
                    if attempt == 1:
                        self.pickle_up(up)
            except Exception as exc:
                when = "" if attempt == 1 else " the second time (after a clean first run)"
                self.fail(
                    "lifecycle",
                    f"it failed to come up or go down{when}: {type(exc).__name__}: {exc}",
                )
                return False
            self.seen += [("a log record", text) for text in logs.texts]
            self.seen += [("an event", repr(event)) for event in scope.events]
            for phase in ("yield_enter", "yield_exit"):
                count = phases_of(scope.events, SUBJECT).count((phase, False))
                if count != 1:
                    self.fail("lifecycle", f"phase {phase} happened {count} times, not once")
        first, second = instances
        if first is self.resource or second is self.resource or first is second:
            self.fail("lifecycle", "a run brought up the configured object itself, not a copy")
        return True

    def secrets(self) -> None:
        secrets = _secrets(self.resource)
        if not secrets:
            return
        static: list[tuple[str, str]] = []
        renders: list[tuple[str, Callable[[], str]]] = [
            ("repr()", lambda: repr(self.resource)),
            ("str()", lambda: str(self.resource)),
            ("model_dump_json()", self.resource.model_dump_json),
            ("model_dump(mode='json')", lambda: json.dumps(self.resource.model_dump(mode="json"))),
            ("masked_config()", lambda: json.dumps(self.resource.masked_config(), default=str)),
        ]
        for where, render in renders:
            try:
                static.append((where, render()))
            except Exception as exc:
                self.fail(
                    "secrets",
                    f"{where} raised {type(exc).__name__}: {mask(str(exc), secrets)}; every "
                    f"configured resource (EnvVar fields included) must render",
                )
        leaks = [where for where, text in [*static, *self.seen] if _shows(text, secrets)]
        for where in dict.fromkeys(leaks):
            self.fail("secrets", f"a secret value shows in {where}")

    def setup_failure(self) -> None:
        expected_phase = "yield_enter" if self.cls.overrides_yield() else "setup"
        try:
            with open_resource(self.resource, key=SUBJECT, plugins=[FailBringUp(SUBJECT)]):
                pass
        except ResourceSetupError as exc:
            if exc.resource_key != SUBJECT or exc.resource_class != qualname(self.cls):
                self.fail(
                    "setup_failure",
                    f"the setup error names {exc.resource_key!r} "
                    f"({exc.resource_class}), not the failing resource",
                )
            if exc.phase != expected_phase:
                self.fail(
                    "setup_failure",
                    f"the setup error names phase {exc.phase!r}, not {expected_phase!r}",
                )
            if not any(isinstance(e, InjectedFailure) for e in chain(exc)):
                self.fail("setup_failure", "the setup error does not chain the original error")
        except Exception as exc:
            self.fail(
                "setup_failure",
                f"a failing bring-up raised {type(exc).__name__}: {exc}, "
                f"not host.ResourceSetupError",
            )
        else:
            self.fail(
                "setup_failure",
                "a failing bring-up raised nothing; does yield_for_execution swallow exceptions?",
            )

        scope = open_resources({SUBJECT: self.resource, "failing": FailingResource()})
        try:
            with scope:
                pass
        except ResourceSetupError as exc:
            if exc.resource_key != "failing":
                self.fail(
                    "setup_failure",
                    f"with a resource failing after it came up, the "
                    f"error names {exc.resource_key!r}: {exc}",
                )
        except Exception as exc:
            self.fail(
                "setup_failure",
                f"with a resource failing after it came up: {type(exc).__name__}: {exc}",
            )
        else:
            self.fail("setup_failure", "a resource failing after it came up raised nothing")
        phases = phases_of(scope.events, SUBJECT)
        if phases.count(("yield_exit", False)) != 1 or any(failed for _, failed in phases):
            errors = "; ".join(str(e) for e in scope.teardown_errors) or "no error"
            self.fail(
                "setup_failure",
                f"when a resource after it failed to come up, it was not "
                f"torn down exactly once, cleanly (phases {phases}; {errors})",
            )
        failing = phases_of(scope.events, "failing")
        if any(phase in ("yield_exit", "teardown") for phase, _ in failing):
            self.fail("setup_failure", "a resource that never came up was torn down")

    def worker(self, timeout: float) -> None:
        problem = worker_problem(self.resource, timeout)
        if problem is not None:
            self.fail("worker", problem)


def check_resource_class(
    cls: type[ConfigurableResource],
    config: Mapping[str, Any] | None = None,
    *,
    worker_timeout: float = 120.0,
) -> None:
    """Check that ``cls`` is a well-formed resource; call it from the plugin's own tests.

    Every check brings the resource up through the same machinery as a run (hooks, fresh copies,
    EnvVar reading, teardown), several times and once in a spawned worker process, so
    ``config`` must be one that can come up in the test environment (a temporary path, a local
    server). Put secret values in it (``SecretStr`` fields, or ``EnvVar`` with the variable set)
    so that the ``secrets`` check has something to look for. The checks, by name, are described
    in the module :mod:`host.testing` and the author's guide.

    Example::

        def test_sqlite_resource_is_well_formed(tmp_path):
            check_resource_class(SQLiteResource, config={"path": str(tmp_path / "db.sqlite")})

    Args:
        cls: the resource class.
        config: keyword arguments to construct it with; default: none.
        worker_timeout: seconds to wait for the worker process before giving up on it.

    Raises:
        ResourceCheckError: an ``AssertionError`` naming each failed check, what is wrong and
            what to do; ``.failures`` maps check names to those messages.
    """
    name = qualname(cls) if isinstance(cls, type) else repr(cls)
    if not (isinstance(cls, type) and issubclass(cls, ConfigurableResource)):
        _raise(name, {"subclass": f"{name} is not a host.ConfigurableResource subclass"}, [])
    try:
        checker = _Checker(cls, config or {})
    except Exception as exc:
        _raise(name, {"construct": f"{name}(**config) raised {type(exc).__name__}: {exc}"}, [])
    for check, run in (
        ("frozen", checker.frozen),
        ("schema", checker.schema),
        ("pickle", checker.pickle_config),
    ):
        _guarded(checker, check, run)
    came_up = _guarded(checker, "lifecycle", checker.lifecycle)
    _guarded(checker, "secrets", checker.secrets)
    if came_up:
        _guarded(checker, "setup_failure", checker.setup_failure)
        _guarded(checker, "worker", lambda: checker.worker(worker_timeout))
    else:
        checker.skipped += ["setup_failure", "worker"]
    if checker.failures:
        _raise(name, checker.failures, checker.skipped)


def _guarded(checker: _Checker, check: str, run: Callable[[], Any]) -> Any:
    """Run one check; what it raises unexpectedly is that check's failure (masked)."""
    try:
        return run()
    except Exception as exc:
        secrets = _secrets(checker.resource)
        checker.fail(
            check,
            f"checking it raised {type(exc).__name__}: {mask(str(exc), secrets)}",
        )
        return False


def _raise(name: str, failures: Mapping[str, str], skipped: list[str]) -> NoReturn:
    lines = [f"{name} is not a well-formed host resource; failed checks:"]
    lines += [f"  {check}: {message}" for check, message in failures.items()]
    if skipped:
        lines.append(
            f"  (not run, as it did not come up and go down cleanly: {', '.join(skipped)})"
        )
    raise ResourceCheckError("\n".join(lines), resource_class=name, failures=failures)
