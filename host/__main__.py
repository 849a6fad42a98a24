"""``python -m host``: the ``host`` command (see ``host._cli``)."""

import sys

from host._cli import main

sys.exit(main())
