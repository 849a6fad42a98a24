"""``EnvVar``: a configuration value read from an environment variable when a resource comes up."""

from __future__ import annotations

import os

__all__ = ["EnvVar"]


class EnvVar(str):
    """A configuration value read from an environment variable when the resource comes up.

    The variable is read in the process that brings the resource up (a worker, for the process
    executors), never when the resource is constructed. Its value is treated as a secret: it is
    masked in ``repr``, events, logs and error messages. ``EnvVar`` works for a field of any type;
    the value is validated against the field when it is read.

    Example::

        CredentialsResource(username="ann", password=EnvVar("ACME_PASSWORD"))
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        """The name of the environment variable."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"EnvVar({self.name!r})"

    def get_value(self, default: str | None = None) -> str | None:
        """Return the variable's current value in this process, or ``default``."""
        return os.environ.get(self.name, default)
