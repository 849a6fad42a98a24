"""``EnvVar``: a configuration value read from an environment variable when a resource comes up."""

from __future__ import annotations

import builtins
import os
from typing import Any

from host._errors import EnvVarNotReadError

__all__ = ["EnvVar", "IntEnvVar"]


class EnvVar(str):
    """A configuration value read from an environment variable when the resource comes up.

    The variable is read in the process that brings the resource up (a worker, for the process
    executors), never when the resource is constructed. Its value is treated as a secret: it is
    masked in ``repr``, events, logs and error messages. ``EnvVar`` works for a field of any type;
    the value is validated against the field when it is read. ``EnvVar.int("NAME")`` reads an
    integer.

    As in Dagster, an ``EnvVar`` is not a plain string: ``str(EnvVar("X"))``, an f-string or
    ``%s`` raises :class:`host.EnvVarNotReadError` (a ``RuntimeError``), since its text would be
    the variable's name and not its value. Use :meth:`get_value` to read it yourself, or
    :attr:`name` for the name.

    Example::

        CredentialsResource(username="ann", password=EnvVar("ACME_PASSWORD"))
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        """The name of the environment variable."""
        return str.__str__(self)

    @property
    def env_var_name(self) -> str:
        """The name of the environment variable (Dagster's spelling)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __str__(self) -> str:
        raise self._not_read()

    def __format__(self, spec: str) -> str:
        raise self._not_read()

    def _not_read(self) -> EnvVarNotReadError:
        return EnvVarNotReadError(
            f"{self!r} was used as a string before it was read: its text is the variable's "
            f"name, not its value. Give it as a resource field's value (it is read where the "
            f"resource comes up), call .get_value() to read it now, or use .name for the name."
        )

    def convert(self, text: str) -> Any:
        """The configuration value for the variable's text (the text itself).

        Raises:
            ValueError: the text is not a value of this kind (see :class:`IntEnvVar`).
        """
        return text

    def get_value(self, default: Any = None) -> Any:
        """The variable's current value in this process (converted, for ``EnvVar.int``), or
        ``default`` when it is not set.

        Raises:
            ValueError: ``EnvVar.int``: the value is not an integer (the message does not
                quote it).
        """
        text = os.environ.get(self.name)
        return default if text is None else self.convert(text)

    def __reduce__(self) -> tuple[type[EnvVar], tuple[str]]:
        return (type(self), (self.name,))

    def __deepcopy__(self, memo: dict[builtins.int, Any]) -> EnvVar:
        return self

    def __copy__(self) -> EnvVar:
        return self

    # Last in the class body: within it, ``int`` is this method from here on.
    @classmethod
    def int(cls, name: str) -> IntEnvVar:
        """An ``EnvVar`` whose value is an integer (Dagster's ``EnvVar.int``)."""
        return IntEnvVar(name)


class IntEnvVar(EnvVar):
    """An :class:`EnvVar` read as an integer: ``EnvVar.int("PORT")``."""

    __slots__ = ()

    def convert(self, text: str) -> Any:
        try:
            return builtins.int(text.strip())
        except ValueError:
            raise ValueError(
                f"environment variable {self.name!r} is not an integer"
            ) from None
