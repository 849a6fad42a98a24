"""Run the README's example, the first ```python block of the README, as a user would paste it.

``python tests/readme_example.py README.md`` (or ``python - README.md < tests/readme_example.py``
from another folder, as ``.ci/wheels`` does with the installed wheels): the block runs as the
``__main__`` module of a fresh interpreter; any exception it raises (an undefined name, a failed
``assert``) fails the command.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def example(readme: str) -> str:
    """The first fenced ``python`` code block of ``readme``."""
    found = re.search(r"^```python\n(.*?)^```", readme, flags=re.DOTALL | re.MULTILINE)
    if found is None:
        raise SystemExit("the README has no ```python block")
    return found.group(1)


if __name__ == "__main__":
    source = example(Path(sys.argv[1]).read_text(encoding="utf-8"))
    exec(compile(source, "README.md (the example)", "exec"), {"__name__": "__main__"})
