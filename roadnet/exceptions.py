"""Exceptions raised by :mod:`roadnet`.

Every error derives from :class:`RoadnetError`; each subclass also inherits the builtin that
matches its meaning, so ``except ValueError`` keeps working for callers that do not know roadnet.
Messages name the argument, the offending value and what would be valid.
"""

from __future__ import annotations

__all__ = [
    "AreaDataError",
    "CRSError",
    "ClipError",
    "CorruptChunkError",
    "DownloadUnavailableError",
    "GraphFormatError",
    "GraphSourceError",
    "InvalidArgumentError",
    "MatrixStoreError",
    "MatrixStoreMismatchError",
    "PlaceNotFoundError",
    "RoadnetError",
    "SnapError",
    "SpeedProfileError",
    "UnknownReaderError",
]


class RoadnetError(Exception):
    """Base class of every error raised by roadnet."""


class InvalidArgumentError(RoadnetError, ValueError):
    """An argument is out of range or of the wrong kind (a cutoff, ``n_jobs``, an engine)."""


class GraphSourceError(RoadnetError, OSError):
    """A road-data source cannot be read: missing, empty or corrupt file, failed download."""


class DownloadUnavailableError(GraphSourceError, ConnectionError):
    """The download service (Overpass) cannot be reached: the environment, not the input."""


class UnknownReaderError(GraphSourceError, ValueError):
    """A PBF reader name that roadnet does not know (valid: auto, osmium, pyrosm)."""


class ClipError(RoadnetError, ValueError):
    """A clip region or buffer is unusable: negative or absurd buffer, empty geometry."""


class PlaceNotFoundError(GraphSourceError, LookupError):
    """A place name could not be geocoded, or its area holds no drivable road."""


class GraphFormatError(RoadnetError, ValueError):
    """A saved compiled graph is not readable: wrong format, version or damaged arrays."""


class SpeedProfileError(RoadnetError, ValueError):
    """A speed profile is invalid: unknown key, non-positive or non-numeric speed."""


class AreaDataError(RoadnetError, ValueError):
    """Basic areas or points are unusable: empty, invalid geometry, duplicate or missing ids."""


class CRSError(AreaDataError):
    """Coordinates have no CRS, or their values contradict the declared CRS."""


class SnapError(RoadnetError, ValueError):
    """Points cannot be attached to the road network (e.g. all lie far outside it)."""


class MatrixStoreError(RoadnetError, OSError):
    """A Zarr matrix store cannot be created, opened or written (path, format, permissions)."""


class MatrixStoreMismatchError(MatrixStoreError, ValueError):
    """An existing matrix store holds another table (shape, points, graph, cutoff, blocks)."""


class CorruptChunkError(MatrixStoreError, ValueError):
    """Chunks of a matrix store are missing or fail their checksum.

    Attributes
    ----------
    blocks
        ``(row_block, col_block)`` pairs of the bad chunks (sorted).
    """

    def __init__(self, message: str, blocks: list[tuple[int, int]]) -> None:
        super().__init__(message)
        self.blocks = blocks
