"""On multiprocess, an asset of an importable module travels by reference: the worker imports
its module (module-level set-up runs there) and a traceback shows the real file and line; a
closure or a function of ``__main__`` travels by value, as before."""

from __future__ import annotations

import os
import types
from typing import Any

import pytest

from host import asset, run_assets
from host.executors._shipping import _asset_fn, asset_by_reference, dumps, loads

#: The process that imported this module (a worker, when the asset travelled by reference).
IMPORTED_IN = os.getpid()


@asset
def imported_where() -> int:
    return IMPORTED_IN


@asset
def raises_here() -> int:
    raise ValueError("raised in the asset's own line")  # the line the traceback must show


def _factory() -> Any:
    @asset
    def made_inside() -> int:
        raise ValueError("a closure's error")

    return made_inside


def _line_of(text: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        return next(n for n, line in enumerate(source, 1) if text in line)


def test_a_module_asset_runs_from_its_module_in_the_worker() -> None:
    result = run_assets(
        [imported_where], executor="multiprocess", executor_config={"max_workers": 1}
    )
    assert result.success
    assert result.outputs[imported_where.key] != os.getpid()  # the worker imported the module


@pytest.mark.parametrize("how", ["reference", "value"])
def test_a_worker_s_traceback_names_the_asset_s_file_and_line(how: str) -> None:
    definition = raises_here if how == "reference" else _factory()
    result = run_assets(
        [definition], executor="multiprocess", executor_config={"max_workers": 1},
        raise_on_error=False,
    )
    trace = result.failures[definition.key].traceback
    if how == "reference":
        assert f'File "{__file__}", line {_line_of("the line the traceback must show")}' in trace
    else:
        assert 'File "<dynamic-code>"' in trace  # cloudpickle's name for code sent by value


def test_what_goes_by_reference() -> None:
    assert asset_by_reference(raises_here.fn) == (__name__, "raises_here")
    assert asset_by_reference(_factory().fn) is None  # a closure
    main = types.FunctionType(raises_here.fn.__code__, {}, "raises_here")
    main.__module__ = "__main__"
    assert asset_by_reference(main) is None
    assert asset_by_reference(len) is None
    # The value travels with the reference, and is used where the module cannot be imported.
    blob = dumps(raises_here.fn, assets_by_reference=True)
    assert loads(blob) is raises_here.fn
    assert b"raises_here" in blob
    fallback = _asset_fn("no_module_of_that_name", "raises_here", dumps(raises_here.fn))
    assert fallback.__code__.co_code == raises_here.fn.__code__.co_code
