"""The host distribution's version: one place, read by ``host.__version__`` and the plugin API."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
