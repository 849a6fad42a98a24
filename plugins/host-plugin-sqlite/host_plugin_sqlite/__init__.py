"""host-plugin-sqlite: a ``host`` resource holding one SQLite connection open for a run.

Registered as the resource type ``sqlite`` (entry-point group ``host.resources``)::

    [resources.db]
    type = "sqlite"
    [resources.db.config]
    path = "warehouse.db"
    pragmas = { journal_mode = "WAL", foreign_keys = 1 }

See :class:`SQLiteResource` for the configuration and the transaction contract.
"""

from host_plugin_sqlite._resource import MEMORY, Parameters, SQLiteReadOnlyError, SQLiteResource

__all__ = ["MEMORY", "Parameters", "SQLiteReadOnlyError", "SQLiteResource"]
