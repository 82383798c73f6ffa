"""Exceptions raised by the territory application (pipeline, outputs, CLI, service).

Each derives from :class:`TerritoryError` and the builtin that matches its meaning. Errors of
the layers below keep their own types (:class:`roadnet.RoadnetError`,
:class:`optimizer.exceptions.OptimizerError`, :class:`cache.CacheError`).
"""

from __future__ import annotations

__all__ = ["OptionError", "OutputError", "TerritoryError"]


class TerritoryError(Exception):
    """Base class of the errors raised by the territory application."""


class OptionError(TerritoryError, ValueError):
    """Options that do not fit together or are out of range (bad input: exit code 2)."""


class OutputError(TerritoryError, OSError):
    """An output file cannot be written (folder missing or read-only, disk full: exit code 1).

    The message names the path and what to do; files written before by the same command are
    left exactly as they were.
    """
