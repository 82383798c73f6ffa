"""Exceptions raised by the territory application (pipeline, outputs, CLI, service).

Each derives from :class:`TerritoryError` and the builtin that matches its meaning. Errors of
the layers below keep their own types (:class:`roadnet.RoadnetError`,
:class:`optimizer.exceptions.OptimizerError`, :class:`cache.CacheError`).
"""

from __future__ import annotations

__all__ = ["OptionError", "OutputError", "RequestError", "TerritoryError"]


class TerritoryError(Exception):
    """Base class of the errors raised by the territory application."""


class OptionError(TerritoryError, ValueError):
    """Options that do not fit together or are out of range (bad input: exit code 2)."""


class OutputError(TerritoryError, OSError):
    """An output file cannot be written (folder missing or read-only, disk full: exit code 1).

    The message names the path and what to do; files written before by the same command are
    left exactly as they were.
    """


class RequestError(TerritoryError, ValueError):
    """A service request that cannot be answered, with what the client is told.

    Parameters
    ----------
    code
        The OSRM error code (``"InvalidQuery"``, ``"InvalidOptions"``, ``"InvalidValue"``,
        ``"InvalidUrl"``, ``"NoSegment"``, ``"NoRoute"``, ``"TooBig"``, ...) or one of the native
        API's (``"NotFound"``, ``"Unauthorized"``, ``"Busy"``, ``"Timeout"``, ...).
    message
        What is wrong: the argument, the value and what would be valid.
    status
        HTTP status (400 unless said otherwise).
    headers
        Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self, code: str, message: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}
