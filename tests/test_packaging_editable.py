"""A resource's distribution is named in its errors however the distribution is installed.

A wheel install lists the package's files in ``RECORD``; an editable install made with a
``.pth`` file (hatchling's, which ``.ci/setup`` uses) lists none, and the package is found from
the distribution's entry points instead. Both are real installed distributions here, on
``PYTHONPATH`` of a fresh interpreter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dists import make_dist, python

RESOURCE = """
from host import ConfigurableResource

class Thing(ConfigurableResource):
    def setup_for_execution(self, context):
        raise RuntimeError("cannot come up")
"""


@pytest.mark.parametrize("install", ["wheel", "editable"])
def test_a_failing_resource_names_its_distribution(tmp_path: Path, install: str) -> None:
    site = tmp_path / "site"
    modules = {"edprobe/__init__.py": RESOURCE}
    dist_info = make_dist(
        site,
        "host-plugin-edprobe",
        "1.2",
        entry_points={"host.resources": {"edprobe": "edprobe:Thing"}},
        modules=modules,
    )
    if install == "wheel":  # the package beside its dist-info, its files in RECORD
        files = [*modules, f"{dist_info.name}/METADATA", f"{dist_info.name}/RECORD"]
        (dist_info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    path = str(site)
    if install == "editable":  # the package lives in a checkout, on a path entry of its own
        source = tmp_path / "checkout"
        (source / "edprobe").mkdir(parents=True)
        (site / "edprobe" / "__init__.py").rename(source / "edprobe" / "__init__.py")
        (site / "edprobe").rmdir()
        path = f"{site}:{source}"
        (dist_info / "RECORD").write_text(f"_editable_edprobe.pth,,\n{dist_info.name}/RECORD,,\n")
    got = python(
        """
        import json
        from host import asset, run_assets
        from edprobe import Thing

        @asset
        def uses(thing: Thing) -> int:
            return 1

        result = run_assets([uses], {"thing": Thing()}, raise_on_error=False)
        print(json.dumps(result.failures["uses"].message))
        """,
        site=site,
        env={"PYTHONPATH": path},
    )
    assert "from host-plugin-edprobe 1.2" in got
