"""host-plugin-faults: inject faults at chosen resource and asset phases of a run.

A test builds a :class:`Faults` plan and passes it to a run (``run_assets(plugins=[...])``,
``host.testing.register_plugin``); it is pickled to worker processes with the run and fires in
whichever process reaches a fault's phase. Installed, the package also registers the hook
plugin ``faults`` (:data:`environment_faults`), which reads a plan from the environment
variable ``HOST_FAULTS`` (JSON) each time a hook runs, for ``host run`` in a subprocess, and
does nothing while the variable is unset or empty. See the README.
"""

from host_plugin_faults._faults import (
    ASSET_PHASES,
    ENV_VAR,
    PHASES,
    RESOURCE_PHASES,
    Fault,
    FaultConfigError,
    Faults,
    InjectedFault,
    environment_faults,
    read_log,
)

__all__ = [
    "ASSET_PHASES",
    "ENV_VAR",
    "PHASES",
    "RESOURCE_PHASES",
    "Fault",
    "FaultConfigError",
    "Faults",
    "InjectedFault",
    "environment_faults",
    "read_log",
]
