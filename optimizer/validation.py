"""One validator per concept, shared by the library, the CLI and the service.

Every function checks one kind of argument (the number of territories ``p``, a time limit, a
count such as ``n_starts``, a cost matrix, weights, the candidates allowed to host a center)
and raises :class:`~optimizer.exceptions.InputError` (a :class:`ValueError`) with a message
that names the argument, the offending value and what would be valid. The CLI passes the
option's name (``"-p"``, ``"--time-limit"``) as ``name`` so the message names what the user
typed.

Magnitudes: finite costs and weights above :data:`MAX_MAGNITUDE`, or whose products exceed
:data:`MAX_PRODUCT`, are refused. The LP/MIP solver (HiGHS) treats coefficients of ``1e20``
as infinite and the heuristics square distances, so such values would turn into NaN
probabilities or solver failures deep inside; rescaling the units (seconds to hours, money to
thousands) keeps every solution the same.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from optimizer.exceptions import InfeasibleError, InputError

__all__ = [
    "MAX_MAGNITUDE",
    "MAX_PRODUCT",
    "as_cost_array",
    "as_weight_array",
    "check_allowed_centers",
    "check_count",
    "check_magnitudes",
    "check_p",
    "check_time_limit",
]

MAX_MAGNITUDE = 1e15
"""Largest finite cost or weight accepted."""

MAX_PRODUCT = 1e18
"""Largest accepted product of the largest finite cost and the largest weight."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_p(p: Any, n: int, *, name: str = "p", what: str = "number of areas") -> int:
    """``p`` as an ``int`` in ``1..n``.

    Parameters
    ----------
    p
        Number of territories (or centers).
    n
        Its upper bound (the number of areas or candidates).
    name
        How the caller calls it in messages (``"p"``, ``"-p"``).
    what
        What ``n`` counts, for the message.

    Raises
    ------
    InputError
        ``p`` is no integer (``2.7``, ``True``, ``"3"``) or out of range.
    """
    if not _is_int(p):
        if isinstance(p, float | np.floating) and float(p).is_integer():
            p = int(p)
        else:
            raise InputError(f"{name} must be an integer in 1..{n} ({what}), got {p!r}")
    if not 1 <= int(p) <= n:
        raise InputError(f"{name} must be an integer in 1..{n} ({what}), got {int(p)}")
    return int(p)


def check_time_limit(
    value: Any, name: str = "time_limit", *, allow_none: bool = True
) -> float | None:
    """A time limit in seconds: finite and ``>= 0`` (``None`` = no limit when allowed).

    Raises
    ------
    InputError
        Negative, NaN, infinite or not a number.
    """
    if value is None and allow_none:
        return None
    try:
        val = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number of seconds >= 0, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(val) or val < 0:
        raise InputError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return val


def check_count(value: Any, name: str, *, minimum: int = 1) -> int:
    """A whole count ``>= minimum`` (``n_starts``, ``max_iter``...).

    Raises
    ------
    InputError
        Not a whole number, or below ``minimum``.
    """
    if not _is_int(value):
        raise InputError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {int(value)}")
    return int(value)


def _as_float_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return np.asarray(value, dtype=np.float64)
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged nested lists
        raise InputError(
            f"{name} must be a rectangular array of numbers (its rows have different lengths)"
        ) from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputError(
            f"{name} must hold numbers, got an array of {arr.dtype} "
            f"({'ragged rows or mixed values' if arr.dtype == object else 'text'})"
        )
    return arr.astype(np.float64, copy=False)


def as_cost_array(value: Any, name: str = "cost") -> np.ndarray:
    """A cost matrix as a 2-D float64 array: no NaN, no negative entry (``inf`` = impossible).

    Memory-mapped arrays are not copied. Magnitudes are checked by :func:`check_magnitudes`.

    Raises
    ------
    InputError
        Text, ragged rows, not 2-D, empty, NaN or negative entries.
    """
    arr = value if isinstance(value, np.memmap) else _as_float_array(value, name)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} must be a non-empty 2-D matrix, got shape {np.shape(arr)}")
    if np.isnan(arr).any():
        rows = np.flatnonzero(np.isnan(arr).any(axis=1))[:10].tolist()
        raise InputError(f"{name} has NaN entries (rows {rows}); use inf for impossible pairs")
    if (arr < 0).any():
        raise InputError(f"{name} has negative entries (minimum {float(arr.min()):g})")
    return arr


def as_weight_array(value: Any, n: int | None = None, name: str = "weights") -> np.ndarray:
    """Weights as an ``(n, m)`` float64 array: finite, ``>= 0`` (a 1-D array is one measure).

    Raises
    ------
    InputError
        Text, ragged rows, wrong length, non-finite or negative values.
    """
    w = _as_float_array(value, name)
    w = w[:, None] if w.ndim == 1 else w
    if w.ndim != 2 or w.shape[0] == 0:
        raise InputError(f"{name} must be an (n,) or (n, m) array with n >= 1, got {w.shape}")
    if n is not None and w.shape[0] != n:
        raise InputError(f"{name} has {w.shape[0]} rows but there are {n} areas (cost columns)")
    bad = ~np.isfinite(w).all(axis=1) | (w < 0).any(axis=1)
    if bad.any():
        raise InputError(
            f"{name} must be finite and >= 0 (bad rows {np.flatnonzero(bad)[:10].tolist()})"
        )
    return w


def check_magnitudes(max_cost: float, max_weight: float, *, cost_name: str = "cost") -> None:
    """Refuse finite costs or weights so large that the solvers lose them (see module doc).

    Parameters
    ----------
    max_cost
        Largest finite cost (distance).
    max_weight
        Largest weight in the objective or the balance.

    Raises
    ------
    InputError
        Above :data:`MAX_MAGNITUDE` or product above :data:`MAX_PRODUCT`.
    """
    if max_cost > MAX_MAGNITUDE:
        raise InputError(
            f"{cost_name} has finite values up to {max_cost:.3g}; values above "
            f"{MAX_MAGNITUDE:.0e} cannot be optimized exactly: rescale the unit "
            "(e.g. seconds to hours) or use inf for impossible pairs"
        )
    if max_weight > MAX_MAGNITUDE:
        raise InputError(
            f"weights go up to {max_weight:.3g}; values above {MAX_MAGNITUDE:.0e} cannot be "
            "optimized exactly: rescale the measure (e.g. to thousands)"
        )
    if max_cost * max_weight > MAX_PRODUCT:
        raise InputError(
            f"{cost_name} (up to {max_cost:.3g}) times weight (up to {max_weight:.3g}) exceeds "
            f"{MAX_PRODUCT:.0e}: rescale the costs or the weights"
        )


def check_allowed_centers(
    allowed: Any, n_candidates: int, p: int, *, fixed: Any = None
) -> np.ndarray | None:
    """The ``allowed_centers`` mask as booleans, with enough candidates left for ``p``.

    Parameters
    ----------
    allowed
        ``(n_candidates,)`` mask, or ``None`` (every candidate allowed).
    n_candidates
        Number of candidate centers.
    p
        Number of territories.
    fixed
        Candidate indices of centers already given (they need not be allowed).

    Raises
    ------
    InputError
        Wrong shape.
    InfeasibleError
        Fewer allowed candidates than centers to choose.
    """
    if allowed is None:
        return None
    mask = np.asarray(allowed)
    if mask.shape != (n_candidates,):
        raise InputError(
            f"allowed_centers must have one entry per candidate ({n_candidates}), "
            f"got shape {mask.shape}"
        )
    mask = mask.astype(bool)
    free = mask.copy()
    given = np.unique(np.asarray([] if fixed is None else fixed, dtype=np.int64))
    free[given] = False
    need = p - given.size
    have = int(free.sum())
    if have < need:
        raise InfeasibleError(
            f"only {have} of {n_candidates} candidates may host a center (the others are "
            f"forbidden or given) but {need} center(s) must be chosen for p = {p} "
            "territories: allow more candidates or lower p",
            {"allowed": have, "needed": need},
        )
    return mask
