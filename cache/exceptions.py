"""Exceptions and warnings raised by :mod:`cache`.

Every error derives from :class:`CacheError`; each subclass also inherits the builtin that
matches its meaning, so ``except OSError`` or ``except ValueError`` keeps working for callers
that do not know this package. Messages name the argument, the offending value and what would
be valid; write errors name the cache folder.

A corrupt entry found while *reading* is not an error for the caller: the entry is quarantined,
a :class:`CacheCorruptWarning` is emitted and the read reports a miss so the caller recomputes.
:class:`CacheCorruptError` is raised only where no miss can be reported, e.g. while reading the
row blocks of an already opened matrix.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CacheCorruptError",
    "CacheCorruptWarning",
    "CacheError",
    "CacheLockTimeout",
    "CacheWriteError",
    "IncompleteMatrixError",
    "InvalidKeyError",
    "InvalidSizeError",
    "MatrixError",
    "PartialMismatchError",
    "UnsupportedInputError",
]


class CacheError(Exception):
    """Base class of every error raised by the cache."""


class CacheWriteError(CacheError, OSError):
    """An entry could not be written: read-only folder, disk full, permission denied.

    Parameters
    ----------
    message
        Full message; it names the folder.
    folder
        The cache folder (or sub-folder) that could not be written.
    errno
        ``errno`` of the underlying :class:`OSError`, if any.
    """

    def __init__(self, message: str, folder: Path | str, errno: int | None = None) -> None:
        super().__init__(message)
        self.folder = Path(folder)
        self.errno = errno

    def __str__(self) -> str:
        return str(self.args[0])


class CacheCorruptError(CacheError, ValueError):
    """Stored data fail their checksum, or an entry's files are missing or unreadable."""


# N818: the public name is fixed by the API callers use (mirrors filelock.Timeout).
class CacheLockTimeout(CacheError, TimeoutError):  # noqa: N818
    """The lock of a cache key was not acquired within the given timeout."""


class InvalidKeyError(CacheError, ValueError):
    """A cache key, kind or array name is not usable as a folder or file name."""


class UnsupportedInputError(CacheError, TypeError):
    """A value cannot be hashed into a key or stored without pickle (e.g. an object array)."""


class InvalidSizeError(CacheError, ValueError):
    """A size such as ``"5GB"`` cannot be parsed."""


class MatrixError(CacheError, ValueError):
    """A matrix, its blocks or its labels have inconsistent shapes, or an entry is no matrix."""


class PartialMismatchError(MatrixError):
    """A resumable matrix already exists for this key with another shape, dtype or labels."""


class IncompleteMatrixError(MatrixError):
    """A resumable matrix was finished while some of its row blocks are still missing."""


class CacheCorruptWarning(UserWarning):
    """A corrupt cache entry was found, quarantined and reported as a miss."""
