"""Assets made by a factory, for behaviour-contract tests on every executor.

``make_asset`` builds an asset with any parameter names (upstream assets and resource keys), so
property-based tests can generate whole graphs. The functions are closures: process executors
ship them by value.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import Any

from host import AssetDefinition, asset


def make_asset(
    name: str,
    upstream: Sequence[str] = (),
    resources: Sequence[str] = (),
    *,
    fail: bool = False,
) -> AssetDefinition:
    """An asset ``name`` taking ``upstream`` outputs and ``resources``; raises if ``fail``.

    Its output is the sorted list of every asset key it (transitively) depends on, plus its own,
    so tests can check that each asset saw its inputs. Each resource's ``use()`` is called,
    which fails unless the resource is up.
    """

    def compute(**kwargs: Any) -> list[str]:
        seen = {name}
        for up in upstream:
            seen.update(kwargs[up])
        for key in resources:
            kwargs[key].use()
        if fail:
            raise ValueError(f"asset {name} failed on purpose")
        return sorted(seen)

    compute.__name__ = compute.__qualname__ = name
    compute.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY)
            for p in dict.fromkeys([*upstream, *resources])
        ]
    )
    return asset(compute)


@asset
def forever() -> None:
    """Hangs in Python code (a deadline stops it). Here, not in a test module, so that a worker
    importing its module (multiprocess ships it by reference) starts as fast as it can."""
    while True:
        time.sleep(0.01)
