"""No user object loses a run's results, whatever its ``__str__``/``__repr__``/``__reduce__`` do.

The whole class is drawn: which dunder misbehaves (``__str__``, ``__repr__``, ``__reduce__``,
``__reduce_ex__``), how (raises ``ValueError``, ``RuntimeError``, a custom ``Exception``, an
exception whose own ``__str__`` raises, or returns a non-str), and where the object is (the
exception an asset raises, its ``__cause__``, an asset's output, the exception a resource's
setup or teardown raises). Every run finishes, every independent asset runs, teardown is
complete (from the records the resources write themselves), and where the text of the object
could not be had the report says ``<unprintable TypeName>``. ``in_process`` runs in the
hypothesis loop; ``multiprocess`` and a real Dask ``LocalCluster`` run a fixed sample (all of
the class under ``-m slow``), and ``host run`` in a subprocess prints its summary and exits 1
(0 when only an output's ``repr`` misbehaves).

Then ``sys.exit()`` in an asset (any code, 143 included) fails that asset on every executor,
and the summary's text: outputs shown with a bounded ``repr``, every text masked before it is
cut.
"""

from __future__ import annotations

import io
import os
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host import (
    AssetFailed,
    ConfigurableResource,
    ErrorInfo,
    InitResourceContext,
    RunFailure,
    RunResult,
    asset,
    run_assets,
)
from host._discovery import RESOURCES_GROUP
from host._events import describe_exception, format_exception, safe_repr, safe_str
from host._output import Output
from host._progress import Progress, event_line
from host._summary import OUTPUT_WIDTH, output_repr, summary
from tests.dists import HOST, make_dist, run
from tests.recording import Recorded, read, write

ROOT = Path(__file__).resolve().parent.parent

DUNDERS = ("__str__", "__repr__", "__reduce__", "__reduce_ex__")
HOWS = ("ValueError", "RuntimeError", "custom", "non-str", "unprintable-error")
WHERES = ("raised", "cause", "output", "setup", "teardown")

Executor = tuple[str, dict[str, Any]]


# -- objects that misbehave (module level: they travel to worker processes by reference) -----


class CustomError(Exception):
    """A user's own exception class."""


class UnprintableError(Exception):
    """An exception whose own ``__str__`` raises."""

    def __str__(self) -> str:
        raise ValueError("the error about the error cannot be printed either")


def misbehave(how: str) -> Any:
    """What a misbehaving dunder does: raise (in one of several ways) or return a non-str."""
    if how == "ValueError":
        raise ValueError("misbehaving on purpose")
    if how == "RuntimeError":
        raise RuntimeError("misbehaving on purpose")
    if how == "custom":
        raise CustomError("misbehaving on purpose")
    if how == "unprintable-error":
        raise UnprintableError()
    return 42  # not a str (nor a tuple, for __reduce__)


class _Misbehaves:
    """The dunder ``self.dunder`` misbehaves as ``self.how``; the others behave."""

    dunder: str
    how: str

    def __str__(self) -> str:
        if self.dunder == "__str__":
            return misbehave(self.how)  # type: ignore[no-any-return]
        return f"a {type(self).__name__} that behaves in {self.dunder}"

    def __repr__(self) -> str:
        if self.dunder == "__repr__":
            return misbehave(self.how)  # type: ignore[no-any-return]
        return f"{type(self).__name__}({self.dunder!r}, {self.how!r})"

    def __reduce__(self) -> Any:
        if self.dunder == "__reduce__":
            return misbehave(self.how)
        return (type(self), (self.dunder, self.how))

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self.dunder == "__reduce_ex__":
            return misbehave(self.how)
        return self.__reduce__()


class Misbehaving(_Misbehaves, Exception):
    """An exception with one misbehaving dunder."""

    def __init__(self, dunder: str, how: str) -> None:
        super().__init__(dunder, how)
        self.dunder = dunder
        self.how = how


class Thing(_Misbehaves):
    """An asset output with one misbehaving dunder."""

    def __init__(self, dunder: str, how: str) -> None:
        self.dunder = dunder
        self.how = how


class Flaky(ConfigurableResource):
    """Records its lifecycle; raises a :class:`Misbehaving` in setup or teardown if told to.

    It also tells the asset ``bad`` what to do (``where``), so one set of assets serves every
    case on every executor, and through ``host run``.
    """

    record: str
    where: str = "raised"
    dunder: str = "__str__"
    how: str = "ValueError"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label="flaky")
        if self.where == "setup":
            raise Misbehaving(self.dunder, self.how)
        write(self.record, event="up", key=context.resource_key, label="flaky")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label="flaky")
        if self.where == "teardown":
            raise Misbehaving(self.dunder, self.how)


@asset
def bad(flaky: Flaky) -> Any:
    if flaky.where == "raised":
        raise Misbehaving(flaky.dunder, flaky.how)
    if flaky.where == "cause":
        raise RuntimeError("the asset failed") from Misbehaving(flaky.dunder, flaky.how)
    if flaky.where == "output":
        return Thing(flaky.dunder, flaky.how)
    return "bad ran"


@asset
def after_bad(bad: Any) -> str:
    return "after bad ran"


@asset
def alone(rec: Recorded) -> str:
    return rec.use()


@asset
def after_alone(alone: str) -> str:
    return alone + " and after"


ASSETS = [bad, after_bad, alone, after_alone]


def resources(record: str, where: str, dunder: str, how: str) -> dict[str, Any]:
    return {
        "flaky": Flaky(record=record, where=where, dunder=dunder, how=how),
        "rec": Recorded(record=record, label="rec"),
    }


# -- what must hold ----------------------------------------------------------------------------


def output_fails(executor: str, where: str, dunder: str) -> bool:
    """Whether ``bad``'s output cannot reach the caller (it must be pickled, and cannot be)."""
    return where == "output" and executor != "in_process" and dunder.startswith("__reduce")


def check_run(executor: str, case: tuple[str, str, str], record: str, result: RunResult) -> None:
    """Every independent asset ran, teardown is complete, and unprintable text is described."""
    where, dunder, _how = case
    assert result.outputs["alone"] == "rec"
    assert result.outputs["after_alone"] == "rec and after"
    fails = where in ("raised", "cause", "setup") or output_fails(executor, where, dunder)
    if fails:
        assert set(result.failures) == {"bad"}, result.failures
        assert result.skipped == ("after_bad",)
    else:
        assert not result.failures, result.failures
        assert result.outputs["after_bad"] == "after bad ran"
    if where == "teardown":
        assert [e.resource_key for e in result.resource_errors] == ["flaky"]
    else:
        assert result.resource_errors == ()
    assert result.success == (not fails and where != "teardown")

    # Teardown complete, per process, from the resources' own records.
    records = read(record)
    ups = Counter((r["label"], r["pid"]) for r in records if r["event"] == "up")
    downs = Counter((r["label"], r["pid"]) for r in records if r["event"] == "teardown")
    assert ups == downs, records
    assert ups[("rec", next(r["pid"] for r in records if r["label"] == "rec"))] == 1

    # Text that could not be had is described, never lost.
    unprintable = "<unprintable Misbehaving>"
    if dunder == "__str__":
        if where == "raised":
            assert result.failures["bad"].message == unprintable
            assert f"Misbehaving: {unprintable}" in result.failures["bad"].traceback
        elif where == "cause":
            assert result.failures["bad"].message == "the asset failed"
            assert f"Misbehaving: {unprintable}" in result.failures["bad"].traceback
        elif where == "setup":
            assert f"Misbehaving: {unprintable}" in result.failures["bad"].message
        elif where == "teardown":
            assert f"Misbehaving: {unprintable}" in result.resource_errors[0].message
    for event in result.events_of(AssetFailed):
        assert isinstance(event.error.message, str)
    text = summary(result, {}, [a.key for a in ASSETS])
    if where == "output" and dunder == "__repr__" and not fails:
        assert output_repr(result.outputs["bad"]) == "<unprintable Thing>"
        assert "<unprintable Thing>" in text


def run_case(executor: Executor, case: tuple[str, str, str], record: str) -> RunResult:
    """Run the case with ``raise_on_error=True``: a failed run raises RunFailure, nothing else."""
    name, config = executor
    where, dunder, how = case
    try:
        result = run_assets(
            ASSETS, resources(record, where, dunder, how), executor=name, executor_config=config
        )
    except RunFailure as failure:
        assert str(failure).startswith(f"run {failure.result.run_id} failed:")
        assert failure.__cause__ is not None
        format_exception(failure)  # the whole chain can be shown
        result = failure.result
        assert not result.success
    else:
        assert result.success
    check_run(name, case, record, result)
    return result


cases = st.tuples(st.sampled_from(WHERES), st.sampled_from(DUNDERS), st.sampled_from(HOWS))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases)
def test_no_misbehaving_object_loses_a_run_in_process(
    case: tuple[str, str, str], tmp_path: Path
) -> None:
    record = tmp_path / f"records-{'-'.join(case)}.jsonl"
    record.unlink(missing_ok=True)
    run_case(("in_process", {}), case, str(record))


#: A fixed sample for the process executors: every dunder, every way, every place at least once.
SAMPLE = [
    ("raised", "__str__", "unprintable-error"),
    ("raised", "__reduce__", "ValueError"),
    ("cause", "__reduce_ex__", "non-str"),
    ("output", "__repr__", "custom"),
    ("output", "__reduce__", "RuntimeError"),
    ("setup", "__str__", "non-str"),
    ("teardown", "__str__", "RuntimeError"),
    ("teardown", "__reduce_ex__", "custom"),
]


@pytest.fixture(params=["multiprocess", "dask"])
def process_executor(request: pytest.FixtureRequest) -> Executor:
    if request.param == "dask":
        return "dask", {"address": request.getfixturevalue("host_dask_address")}
    return "multiprocess", {"max_workers": 2}


@pytest.mark.parametrize("case", SAMPLE, ids=["-".join(case) for case in SAMPLE])
def test_no_misbehaving_object_loses_a_run_in_worker_processes(
    process_executor: Executor, case: tuple[str, str, str], record: str, no_child_left: None
) -> None:
    run_case(process_executor, case, record)


@pytest.mark.slow
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases)
def test_no_misbehaving_object_loses_a_run_on_any_executor_slow(
    executor: Executor, case: tuple[str, str, str], tmp_path: Path
) -> None:
    record = tmp_path / f"records-{'-'.join(case)}.jsonl"
    record.unlink(missing_ok=True)
    run_case(executor, case, str(record))


# -- the helpers themselves, over every way a dunder misbehaves --------------------------------


@settings(max_examples=50, deadline=None)
@given(dunder=st.sampled_from(DUNDERS), how=st.sampled_from(HOWS))
def test_describing_never_raises(dunder: str, how: str) -> None:
    exc, thing = Misbehaving(dunder, how), Thing(dunder, how)
    chained = RuntimeError("outer")
    chained.__cause__ = exc
    for text in (safe_str(exc), safe_repr(thing), describe_exception(exc)):
        assert isinstance(text, str) and type(text) is str
    info = ErrorInfo.from_exception(chained)
    assert info.message == "outer"
    if dunder == "__str__":
        assert safe_str(exc) == "<unprintable Misbehaving>"
        assert describe_exception(exc) == "Misbehaving: <unprintable Misbehaving>"
        assert "Misbehaving: <unprintable Misbehaving>" in info.traceback
        assert "str() failed" not in info.traceback
    if dunder == "__repr__":
        assert safe_repr(thing) == "<unprintable Thing>"
        assert output_repr([thing]) == "[<unprintable Thing>]"


class _Str(str):
    def __str__(self) -> str:
        raise ValueError("a str subclass that cannot be printed")


class _GivesStrSubclass:
    def __str__(self) -> str:
        return _Str("almost")


def test_a_str_subclass_returned_by_str_is_a_plain_str() -> None:
    text = safe_str(_GivesStrSubclass())
    assert text == "almost" and type(text) is str


# -- sys.exit() in an asset --------------------------------------------------------------------


class ExitCode(ConfigurableResource):
    """Tells the asset ``exits`` what to call ``sys.exit`` with: digits, ``none`` or ``msg``."""

    code: str

    def value(self) -> Any:
        if self.code.isdigit():
            return int(self.code)
        return {"none": None, "msg": "a message"}[self.code]


@asset
def exits(exit_code: ExitCode) -> None:
    raise SystemExit(exit_code.value())


@asset
def after_exit(exits: Any) -> str:
    return "never"


EXIT_ASSETS = [exits, after_exit, alone, after_alone]
EXIT_CODES = ["0", "1", "3", "143", "none", "msg"]


def check_exit(executor: Executor, code: str, record: str) -> None:
    name, config = executor
    result = run_assets(
        EXIT_ASSETS,
        {"exit_code": ExitCode(code=code), "rec": Recorded(record=record, label="rec")},
        executor=name,
        executor_config=config,
        raise_on_error=False,
    )
    assert set(result.failures) == {"exits"}
    error = result.failures["exits"]
    assert error.type == "builtins.SystemExit"
    shown = {"none": "None", "msg": "'a message'"}.get(code, code)
    assert f"sys.exit({shown}) was called while asset 'exits' ran" in error.message
    assert result.skipped == ("after_exit",)
    assert result.outputs == {"alone": "rec", "after_alone": "rec and after"}
    records = read(record)
    assert [r["event"] for r in records if r["event"] != "use"] == ["setup", "up", "teardown"]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(code=st.sampled_from(EXIT_CODES))
def test_sys_exit_in_an_asset_fails_that_asset_in_process(code: str, tmp_path: Path) -> None:
    record = tmp_path / f"exit-{code}.jsonl"
    record.unlink(missing_ok=True)
    check_exit(("in_process", {}), code, str(record))


@pytest.mark.parametrize("code", ["0", "143"])
def test_sys_exit_in_an_asset_fails_that_asset_in_worker_processes(
    process_executor: Executor, code: str, record: str, no_child_left: None
) -> None:
    check_exit(process_executor, code, record)


# -- the summary: bounded repr, masked before it is cut --------------------------------------


def test_a_huge_output_is_shown_shortened() -> None:
    huge = list(range(10**6))
    result = RunResult("r", True, {"huge": huge, "text": "x" * 10**6}, {})
    text = summary(result, {}, ["huge", "text"])
    row = next(line for line in text.splitlines() if line.strip().startswith("huge"))
    assert "[0, 1, 2, 3, 4, 5, 6, 7, ...]" in row
    assert all(len(line) < 2 * OUTPUT_WIDTH + 40 for line in text.splitlines())
    assert "999999" not in text


def test_an_int_too_long_for_str_is_described() -> None:
    assert output_repr(10**5000) == "<int of 16610 bits>"
    assert output_repr(10**100) == "1" + "0" * 17 + "..." + "0" * 19


#: Secret characters the summary's own text never has three of in a row.
SECRET_ALPHABET = "QXZJKV\\'\n "
secrets = st.text(alphabet="QXZJKV", min_size=8, max_size=24).flatmap(
    lambda core: st.text(alphabet=SECRET_ALPHABET, max_size=3).map(lambda extra: core + extra)
)
filler = st.text(alphabet="abc def\n", max_size=200)


class Holder:
    """An object whose repr quotes what it holds."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Holder(value={self.value})"


def _placed(secret: str, before: str, after: str, shape: int) -> Any:
    text = before + secret + after
    return [
        text,
        [before, text, after],
        {text: before},
        (before, {"k": [text]}),
        Holder(text),
        {before[:3] + str(i): i for i in range(20)} | {"z": text},
    ][shape]


def _leaks(secret: str, shown: str) -> bool:
    core = secret.rstrip(SECRET_ALPHABET[6:])
    return any(core[i : i + 3] in shown for i in range(len(core) - 2))


@settings(max_examples=200, deadline=None)
@given(
    secret=secrets,
    before=filler,
    after=filler,
    shape=st.integers(0, 5),
    message_before=filler,
)
def test_the_summary_masks_before_it_shortens(
    secret: str, before: str, after: str, shape: int, message_before: str
) -> None:
    out = Output(io.StringIO(), io.StringIO())
    out.secrets = [secret]
    value = _placed(secret, before, after, shape)
    message = message_before + secret + after
    error = ErrorInfo("builtins.ValueError", message, "Traceback ...\n" + message)
    result = RunResult("r", False, {"out": value}, {"failed": error})
    text = summary(result, {}, ["out", "failed"], out.mask)
    assert not _leaks(secret, text), text
    line = event_line(AssetFailed("r", asset_key="failed", duration=0.1, error=error), out.mask)
    assert line is not None and not _leaks(secret, line), line
    assert not _leaks(secret, output_repr(value, out.mask))


# -- output that cannot be written -------------------------------------------------------------


@pytest.fixture
def closed_pipe() -> Iterator[io.TextIOWrapper]:
    """A text stream on the write end of a real pipe whose read end is closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = io.TextIOWrapper(io.FileIO(write_end, "w"), write_through=True)
    yield stream
    stream.close()


def test_output_to_a_closed_pipe_is_dropped_and_stderr_goes_on(
    closed_pipe: io.TextIOWrapper,
) -> None:
    err = io.StringIO()
    out = Output(closed_pipe, err)
    out.write("first")
    out.write("second")
    out.write("on stderr", err=True)
    assert out.lost == ["stdout"]
    assert err.getvalue() == "on stderr\n"
    os.write(closed_pipe.fileno(), b"now /dev/null")  # its descriptor no longer fails


def test_progress_never_fails_the_run_on_a_closed_stdout(
    closed_pipe: io.TextIOWrapper, record: str
) -> None:
    out = Output(closed_pipe, io.StringIO())
    progress = Progress(out, len(ASSETS), live=False)
    result = run_assets(
        ASSETS,
        resources(record, "none", "__str__", "ValueError"),
        plugins=[progress],
    )
    assert result.success and progress.failure is None and out.lost == ["stdout"]
    assert [r["event"] for r in read(record) if r["label"] == "rec"] == [
        "setup", "up", "use", "teardown"
    ]


# -- host run ----------------------------------------------------------------------------------

RUN = """
[run]
assets = ["tests.test_bad_objects:ASSETS"]
executor = "EXECUTOR"

[resources.flaky]
type = "genobj.flaky"
[resources.flaky.config]
record = "RECORD"
where = "WHERE"
dunder = "DUNDER"
how = "HOW"

[resources.rec]
type = "genobj.recorded"
[resources.rec.config]
record = "RECORD"
label = "rec"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("objects-site")
    make_dist(
        site,
        "gen-objects",
        entry_points={
            RESOURCES_GROUP: {
                "genobj.flaky": "tests.test_bad_objects:Flaky",
                "genobj.recorded": "tests.recording:Recorded",
            }
        },
    )
    return site


CLI_SAMPLE = [
    ("in_process", ("raised", "__str__", "unprintable-error")),
    ("in_process", ("output", "__repr__", "ValueError")),
    ("in_process", ("output", "__repr__", "non-str")),
    ("in_process", ("teardown", "__str__", "custom")),
    ("multiprocess", ("cause", "__reduce__", "RuntimeError")),
    ("multiprocess", ("output", "__repr__", "unprintable-error")),
]


def _host_run(site: Path, tmp_path: Path, executor: str, case: tuple[str, str, str]) -> Any:
    where, dunder, how = case
    record = tmp_path / "records.jsonl"
    text = textwrap.dedent(RUN)
    for old, new in (("EXECUTOR", executor), ("RECORD", str(record)), ("WHERE", where),
                     ("DUNDER", dunder), ("HOW", how)):
        text = text.replace(old, new)
    path = tmp_path / "run.toml"
    path.write_text(text)
    done = run(
        [HOST, "run", str(path), "--plain"],
        site=site,
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])},
    )
    return done, read(record)


@pytest.mark.parametrize(
    ("executor", "case"), CLI_SAMPLE, ids=[f"{e}-{'-'.join(c)}" for e, c in CLI_SAMPLE]
)
def test_host_run_prints_a_summary_whatever_an_object_does(
    site: Path, tmp_path: Path, executor: str, case: tuple[str, str, str]
) -> None:
    done, records = _host_run(site, tmp_path, executor, case)
    where, dunder, _how = case
    only_output_repr = where == "output" and dunder == "__repr__"
    assert done.returncode == (0 if only_output_repr else 1), (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr, done.stderr
    assert "Assets" in done.stdout and "Resources" in done.stdout
    final = done.stdout.strip().splitlines()[-1]
    assert final.startswith("Run ") and ("succeeded" if only_output_repr else "FAILED") in final
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert " ok " in rows["alone"] and " ok " in rows["after_alone"]
    if only_output_repr:
        assert "<unprintable Thing>" in rows["bad"]
    if dunder == "__str__" and where in ("raised", "teardown"):
        assert "<unprintable Misbehaving>" in done.stderr
    ups = Counter((r["label"], r["pid"]) for r in records if r["event"] == "up")
    downs = Counter((r["label"], r["pid"]) for r in records if r["event"] == "teardown")
    assert ups == downs and ups, records

