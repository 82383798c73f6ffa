"""The balance tolerance: one parser for every entry point (library, CLI, service)."""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.exceptions import InputError

__all__ = ["parse_tolerance"]


def parse_tolerance(tolerance: Any, m: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper relative tolerances per measure.

    A territory's size for measure ``k`` must lie in ``[(1 - lo[k]) mu_k, (1 + hi[k]) mu_k]``
    (``mu_k`` the mean size).

    Parameters
    ----------
    tolerance
        A scalar (the same both ways for every measure), an ``(m,)`` sequence (one per measure),
        a pair ``(lower, upper)`` of scalars or ``(m,)`` sequences, or a ``(2, m)`` array.
    m
        Number of measures.

    Returns
    -------
    tuple of ndarray
        ``(lo, hi)``, each ``(m,)`` float64; ``lo`` in ``[0, 1]``, ``hi >= 0`` (``inf`` = no upper
        bound).

    Raises
    ------
    InputError
        When the value is not numeric, has the wrong shape, is negative or NaN, or the lower
        tolerance exceeds 1.
    """
    if isinstance(tolerance, bool):
        raise InputError(f"tolerance must be a number such as 0.05, got {tolerance!r}")
    try:
        if isinstance(tolerance, tuple) and len(tolerance) == 2:
            lo = np.broadcast_to(np.asarray(tolerance[0], dtype=float), (m,)).copy()
            hi = np.broadcast_to(np.asarray(tolerance[1], dtype=float), (m,)).copy()
        else:
            tau = np.asarray(tolerance, dtype=float)
            if tau.ndim == 2 and tau.shape == (2, m):
                lo, hi = tau[0].copy(), tau[1].copy()
            else:
                lo = np.broadcast_to(tau, (m,)).copy()
                hi = lo.copy()
    except (TypeError, ValueError) as exc:
        shape = getattr(np.asarray(tolerance, dtype=object), "shape", None)
        raise InputError(
            f"tolerance must be a number (e.g. 0.05), shape ({m},) (one per measure), a "
            f"(lower, upper) pair or shape (2, {m}) (lower row, upper row); got {tolerance!r}"
            + (f" of shape {shape}" if shape else "")
        ) from exc
    if np.any(~np.isfinite(lo)) or np.any(lo < 0) or np.any(lo > 1):
        raise InputError(
            f"tolerance (lower) must be between 0 and 1 (e.g. 0.05 = 5 %), got {lo.tolist()}"
        )
    if np.any(np.isnan(hi)) or np.any(hi < 0):
        raise InputError(f"tolerance (upper) must be >= 0, got {hi.tolist()}")
    return lo, hi
