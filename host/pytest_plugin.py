"""The host's pytest plugin: fixtures over :mod:`host.testing`; a marker to run on each executor.

pytest loads it in every session of an environment where ``host`` is installed (entry point
``pytest11``: ``host = "host.pytest_plugin"``), so importing it imports nothing beyond the host
package itself; each fixture imports what it needs when it is used. Switch it off with
``-p no:host``.

Fixtures:

* ``host_resource(resource, *, key="resource", plugins=())``: bring a resource up for the rest of
  the test (as :func:`host.testing.open_resource`); it is torn down when the test ends.
* ``host_resources({key: resource, ...}, *, plugins=())``: the same for several, giving a dict.
* ``host_plugin(obj)``: register a hook plugin for the rest of the test
  (:func:`host.testing.register_plugin`).
* ``host_executor``: the name of an executor; a test that uses it (directly or through
  ``host_run``) runs once per executor: those named by ``@pytest.mark.host_executors(...)``, or
  else every installed one. A named executor that is not installed is a skipped test.
* ``host_run(assets, resources=None, **kwargs)``: ``host.run_assets`` on ``host_executor``, with
  the plugins registered through ``host_plugin``.
* ``host_session`` (scope ``session``): one :class:`host.Session` for the whole test session,
  so that the runs of many tests share its warm worker processes and its session-scoped
  resources (each up once per worker process, not once per test); it closes when the test
  session ends (a session resource that fails to go down is an error of the last test's
  teardown). Its executor is ``--host-session-executor NAME`` or the ini option
  ``host_session_executor`` (default ``in_process``), with the JSON object of ini option
  ``host_session_executor_config`` as its settings (default none: the executor's defaults).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from host._events import RunResult
    from host._session import Session

__all__ = [
    "MARKER",
    "host_executor",
    "host_plugin",
    "host_resource",
    "host_resources",
    "host_run",
    "host_session",
    "pytest_addoption",
    "pytest_configure",
    "pytest_generate_tests",
]

#: The marker naming the executors a test runs on.
MARKER = "host_executors"

_FIXTURE = "host_executor"

#: The executor of ``host_session`` when neither the option nor the ini option names one.
DEFAULT_SESSION_EXECUTOR = "in_process"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("host")
    group.addoption(
        "--host-session-executor",
        dest="host_session_executor",
        default=None,
        metavar="NAME",
        help="executor of the host_session fixture (default: the ini option "
        f"host_session_executor, else {DEFAULT_SESSION_EXECUTOR}).",
    )
    parser.addini(
        "host_session_executor",
        f"executor of the host_session fixture (default: {DEFAULT_SESSION_EXECUTOR}).",
        default="",
    )
    parser.addini(
        "host_session_executor_config",
        "settings of the host_session fixture's executor, a JSON object "
        '(e.g. {"max_workers": 2}).',
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*names): run the test once per named host executor (the host_executor "
        f"fixture); without it, tests that use host_executor run on every installed executor.",
    )


def installed_executors() -> list[str]:
    """The names of the installed executors that are switched on, ``in_process`` first."""
    from host._discovery import EXECUTORS_GROUP, discover_plugins

    names = {info.name for info in discover_plugins(EXECUTORS_GROUP) if info.status == "ok"}
    return sorted(names, key=lambda name: (name != "in_process", name))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if _FIXTURE not in metafunc.fixturenames:
        if marker is not None:
            pytest.fail(
                f"{metafunc.definition.nodeid}: @pytest.mark.{MARKER} names the executors to run "
                f"on, but the test uses neither the {_FIXTURE} nor the host_run fixture; take one "
                f"of them as a parameter.",
                pytrace=False,
            )
        return
    if _parametrized_by_the_test(metafunc):
        return
    installed = installed_executors()
    names = [str(name) for name in marker.args] if marker is not None else installed
    if not names:
        pytest.fail(f"@pytest.mark.{MARKER}() names no executor", pytrace=False)
    params = [
        pytest.param(
            name,
            id=name,
            marks=()
            if name in installed
            else pytest.mark.skip(
                reason=f"executor {name!r} is not installed (or switched off); installed: "
                f"{', '.join(installed) or 'none'}"
            ),
        )
        for name in names
    ]
    metafunc.parametrize(_FIXTURE, params, indirect=True)


def _parametrized_by_the_test(metafunc: pytest.Metafunc) -> bool:
    """Whether the test parametrizes ``host_executor`` itself (its values are then used)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if _FIXTURE in argnames:
            return True
    return False


@pytest.fixture
def host_executor(request: pytest.FixtureRequest) -> str:
    """The name of the executor this test runs on (the test runs once per executor).

    The executors are those of ``@pytest.mark.host_executors(...)``, or every installed one.
    """
    name: str = getattr(request, "param", "in_process")
    return name


@pytest.fixture
def host_plugin() -> Iterator[Callable[[Any], Any]]:
    """Register a hook plugin for the rest of the test: ``host_plugin(obj)`` returns ``obj``.

    The plugin applies to ``host_resource``, ``host_resources``, ``host_run`` and
    ``host.testing.open_resource(s)`` called after it in the test.
    """
    from host.testing import register_plugin

    with contextlib.ExitStack() as stack:

        def register(plugin: Any) -> Any:
            return stack.enter_context(register_plugin(plugin))

        yield register


@pytest.fixture
def host_resource() -> Iterator[Callable[..., Any]]:
    """Bring a resource up until the test ends: ``db = host_resource(SQLiteResource(...))``.

    Takes what :func:`host.testing.open_resource` takes (``key``, ``plugins``, ``run_id``) and
    returns what an asset would receive. Resources are torn down when the test ends, the last
    one brought up first; a teardown error is reported as an error of the test's teardown.
    """
    from host.testing import open_resource

    with contextlib.ExitStack() as stack:

        def bring_up(resource: Any, **options: Any) -> Any:
            return stack.enter_context(open_resource(resource, **options))

        yield bring_up


@pytest.fixture
def host_resources() -> Iterator[Callable[..., dict[str, Any]]]:
    """Bring several resources up together until the test ends: ``host_resources({...})``.

    Takes what :func:`host.testing.open_resources` takes and returns the dict it gives.
    """
    from host.testing import open_resources

    with contextlib.ExitStack() as stack:

        def bring_up(resources: Mapping[str, Any], **options: Any) -> dict[str, Any]:
            return stack.enter_context(open_resources(resources, **options))

        yield bring_up


@pytest.fixture
def host_run(host_executor: str) -> Callable[..., RunResult]:
    """``host.run_assets`` on this test's executor, with the test's registered plugins.

    ``host_run(assets, resources=None, **kwargs)`` takes what ``run_assets`` takes; ``executor``
    defaults to ``host_executor``, so a test using ``host_run`` runs once per executor.
    """
    from host import run_assets
    from host._scoped_plugins import with_scoped_plugins

    def run(
        assets: Iterable[Any],
        resources: Mapping[str, Any] | None = None,
        *,
        plugins: Iterable[object] = (),
        **kwargs: Any,
    ) -> RunResult:
        kwargs.setdefault("executor", host_executor)
        return run_assets(list(assets), resources, plugins=with_scoped_plugins(plugins), **kwargs)

    return run


@pytest.fixture(scope="session")
def host_session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """One :class:`host.Session` for the whole test session: ``host_session.run_assets(...)``.

    Runs of every test that uses it share the session's executor (the ``multiprocess``
    executor's worker processes stay warm between tests) and its session-scoped resources (up
    once per process for the whole test session). It closes when the test session ends; a
    session resource that fails to go down then is an error of the last test's teardown.

    The executor is ``--host-session-executor NAME``, else the ini option
    ``host_session_executor``, else ``in_process``; its settings are the JSON object of the ini
    option ``host_session_executor_config``.
    """
    from host._errors import ConfigError
    from host._session import Session

    config = request.config
    name = (
        config.getoption("host_session_executor")
        or str(config.getini("host_session_executor")).strip()
        or DEFAULT_SESSION_EXECUTOR
    )
    raw = str(config.getini("host_session_executor_config")).strip()
    try:
        settings = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"ini option host_session_executor_config is not JSON ({exc.msg} at character "
            f"{exc.pos}); write a JSON object such as {{\"max_workers\": 2}}."
        ) from None
    if not isinstance(settings, dict):
        raise ConfigError(
            f"ini option host_session_executor_config is a JSON {type(settings).__name__}; "
            f"write a JSON object such as {{\"max_workers\": 2}}."
        )
    session = Session(name, settings)
    try:
        yield session
    finally:
        session.close()
