"""Human-readable byte sizes for limits such as ``cache prune --max-size 5GB``."""

from __future__ import annotations

import math
import re

from cache.exceptions import InvalidSizeError

__all__ = ["format_size", "parse_size"]

_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "p": 1000**5,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(size: str | int) -> int:
    """Number of bytes in a size such as ``"5GB"``, ``"500 MB"``, ``"1.5GiB"`` or ``1000``.

    Decimal units (kB, MB, GB, TB, PB and the bare letters K, M, G, T, P) are powers of 1000;
    binary units (KiB, MiB, GiB, TiB, PiB) are powers of 1024. Units are case-insensitive.
    Fractions of a byte are rounded down.

    Parameters
    ----------
    size
        A non-negative int, or a number followed by an optional unit.

    Returns
    -------
    int
        The size in bytes.

    Raises
    ------
    InvalidSizeError
        ``size`` is negative, not a number or has an unknown unit (a :class:`ValueError`).

    Examples
    --------
    >>> parse_size("5GB"), parse_size("1.5 KiB"), parse_size(1000)
    (5000000000, 1536, 1000)
    """
    if isinstance(size, bool) or not isinstance(size, int | str):
        raise InvalidSizeError(
            f"size must be an int or a str such as '5GB', got {type(size).__name__} {size!r}"
        )
    if isinstance(size, int):
        if size < 0:
            raise InvalidSizeError(f"size must be >= 0 bytes, got {size}")
        return size
    match = _SIZE_RE.match(size)
    if match is None or match.group(2).lower() not in _UNITS:
        raise InvalidSizeError(
            f"cannot read the size {size!r}; write a number and an optional unit, e.g. '5GB', "
            "'500 MB', '1.5GiB' (units: B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)"
        )
    number, unit = match.group(1), match.group(2).lower()
    value = float(number) * _UNITS[unit]
    if not math.isfinite(value):
        raise InvalidSizeError(f"size {size!r} is too large")
    return math.floor(value)


def format_size(n_bytes: int) -> str:
    """Short decimal rendering of a byte count, e.g. ``1.6 GB``.

    Parameters
    ----------
    n_bytes
        Number of bytes (>= 0).

    Returns
    -------
    str
        The size with three significant digits and a decimal unit.
    """
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
