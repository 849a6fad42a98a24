"""MkDocs hooks of the docs site: the specs become pages, the run-config schema is generated.

- Every ``specs/*.md`` is added as a page at the site's root, read in place (``specs/`` is the
  source of truth and is not copied into ``docs/``), so the specs' links to each other resolve;
  so is every ``specs/*.png`` the pages show.
- ``reference/run-config-schema.md`` is made at build time from the code,
  :func:`host._config_schema.run_config_schema`: the JSON Schema a run config is validated by.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PAGE = "reference/run-config-schema.md"


def on_files(files: Files, config: Any, **_: Any) -> Files:
    specs = ROOT / "specs"
    for spec in sorted([*specs.glob("*.md"), *specs.glob("*.png")]):
        files.append(File.generated(config, spec.name, abs_src_path=str(spec)))
    files.append(File.generated(config, SCHEMA_PAGE, content=_schema_page()))
    return files


def _schema_page() -> str:
    from host._config_schema import run_config_schema

    schema = json.dumps(run_config_schema(), indent=2)
    return (
        "# Run-config schema\n\n"
        "The JSON Schema of a run config file (`host run FILE.toml`, `host check`), generated "
        "from the code (`host._config_schema.run_config_schema()`) when this site is built. "
        "[run-config.md](../run-config.md) explains each table.\n\n"
        "::: host._config_schema.run_config_schema\n"
        "    options:\n"
        "      heading_level: 2\n\n"
        "## The schema\n\n"
        f"```json\n{schema}\n```\n"
    )
