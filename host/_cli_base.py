"""What the modules of the ``host`` command share: its exit codes.

The command is :mod:`host._cli` (``main``, the parser, errors), with one module per command
group: :mod:`host._cli_run` (``run``, ``check``) and :mod:`host._cli_info` (``plugins``,
``resources``, ``executors``); the ``--json`` documents are :mod:`host._cli_json`'s.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_SIGHUP",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
]

#: The run succeeded (or the command did what was asked).
EXIT_OK = 0
#: The run failed: an asset or a resource phase failed, a worker died, the timeout passed.
EXIT_FAILED = 1
#: Invalid input (run config, definitions, plugins, command line); nothing was brought up.
EXIT_INVALID = 2
#: Interrupted by SIGINT (128 + 2), after every resource that came up was torn down.
EXIT_SIGINT = 130
#: Terminated by SIGTERM (128 + 15), after every resource that came up was torn down.
EXIT_SIGTERM = 143
#: Terminated by SIGHUP (128 + 1: the terminal went away), after every resource that came up
#: was torn down.
EXIT_SIGHUP = 129
