"""``specs/coming-from-dagster.md`` names only what exists: every ``host...`` name in its "host"
column imports, and every Dagster-API name host exports is in the table."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

import host

DOC = Path(__file__).resolve().parents[2] / "specs" / "coming-from-dagster.md"


def _host_column() -> list[str]:
    """Every backticked ``host...`` name of the tables' second column, in order."""
    names: list[str] = []
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("Dagster", "---"):
            continue
        names += re.findall(r"`(host(?:\.\w+)+)", cells[1])
    return names


def _resolve(dotted: str) -> Any:
    """The object ``dotted`` names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ImportError(dotted)


def test_the_page_has_its_tables() -> None:
    assert len(_host_column()) >= 40


@pytest.mark.parametrize("dotted", sorted(set(_host_column())))
def test_every_host_name_the_page_lists_exists(dotted: str) -> None:
    try:
        _resolve(dotted)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"specs/coming-from-dagster.md names {dotted}, which does not exist: {exc}")


#: host's exports that are Dagster's resource API under the same name.
DAGSTER_NAMES = [
    "AssetExecutionContext",
    "Config",
    "ConfigurableResource",
    "ConfigurableResourceFactory",
    "EnvVar",
    "IAttachDifferentObjectToOpContext",
    "InitResourceContext",
    "ResourceDefinition",
    "ResourceDependency",
    "ResourceParam",
    "asset",
    "build_asset_context",
    "build_init_resource_context",
    "build_resources",
    "configured",
    "resource",
    "with_resources",
]


@pytest.mark.parametrize("name", DAGSTER_NAMES)
def test_every_dagster_name_host_exports_is_on_the_page(name: str) -> None:
    assert name in host.__all__
    assert f"host.{name}`" in DOC.read_text() or f"host.{name}." in DOC.read_text()
