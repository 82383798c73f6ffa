"""The territory design problem on arrays, and the cost providers it reads distances from.

A :class:`TerritoryProblem` holds ``n`` basic areas with ``m`` activity measures, the number of
territories ``p``, a balance tolerance per measure (asymmetric allowed) or a capacity per
candidate center (capacity mode: the capacitated p-median), and a cost provider giving the
distance :math:`d_{jv}` from candidate center ``j`` to area ``v``.

Cost providers share one small interface (``shape``, ``rows(idx)``, ``block(rows, cols)``) so
that solvers never need the full ``n_candidates x n`` matrix in memory:

* :class:`CostMatrix`: a given matrix, e.g. drive times from roadnet (memory-mapped from the
  cache is fine); ``inf`` = unreachable;
* :class:`EuclideanCost`: straight lines between projected coordinates (metres);
* :class:`HaversineCost`: great-circle metres between lon/lat degrees.

Candidates are all areas by default (``candidates[j] = j``); a subset of areas or extra
points (offices, reps' homes; ``candidates[j] = -1``) can be given.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from optimizer.exceptions import InputError
from optimizer.tolerance import parse_tolerance
from optimizer.validation import as_cost_array, as_weight_array, check_magnitudes, check_p

__all__ = [
    "CostMatrix",
    "CostProvider",
    "EuclideanCost",
    "HaversineCost",
    "TerritoryProblem",
]

_EARTH_RADIUS_M = 6_371_008.8


class CostProvider(Protocol):
    """Distances from candidate centers (rows) to basic areas (columns)."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_candidates, n_areas)``."""
        ...

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """``(len(idx), n_areas)`` float64 distances from the candidates ``idx``."""
        ...

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``(len(rows), len(cols))`` float64 distances."""
        ...


@dataclasses.dataclass(frozen=True, eq=False)
class CostMatrix:
    """A given cost matrix ``(n_candidates, n_areas)``; ``inf`` marks impossible pairs."""

    matrix: np.ndarray

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2:
            raise InputError(f"cost matrix must be 2-D, got shape {self.matrix.shape}")

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.matrix.shape[0]), int(self.matrix.shape[1]))

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[np.asarray(idx)], dtype=np.float64)

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[np.ix_(np.asarray(rows), np.asarray(cols))], dtype=np.float64)


@dataclasses.dataclass(frozen=True, eq=False)
class EuclideanCost:
    """Straight-line distances between projected coordinates (same unit as the inputs)."""

    candidates_xy: np.ndarray
    areas_xy: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.candidates_xy.shape[0]), int(self.areas_xy.shape[0]))

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return self.block(np.asarray(idx), np.arange(self.areas_xy.shape[0]))

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        a = self.candidates_xy[np.asarray(rows)]
        b = self.areas_xy[np.asarray(cols)]
        return np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])


@dataclasses.dataclass(frozen=True, eq=False)
class HaversineCost:
    """Great-circle metres between lon/lat degrees."""

    candidates_lonlat: np.ndarray
    areas_lonlat: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.candidates_lonlat.shape[0]), int(self.areas_lonlat.shape[0]))

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return self.block(np.asarray(idx), np.arange(self.areas_lonlat.shape[0]))

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        a = np.radians(self.candidates_lonlat[np.asarray(rows)])
        b = np.radians(self.areas_lonlat[np.asarray(cols)])
        dlon = a[:, None, 0] - b[None, :, 0]
        dlat = a[:, None, 1] - b[None, :, 1]
        h = (
            np.sin(dlat / 2) ** 2
            + np.cos(a[:, None, 1]) * np.cos(b[None, :, 1]) * np.sin(dlon / 2) ** 2
        )
        return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


@dataclasses.dataclass(frozen=True, eq=False)
class TerritoryProblem:
    """Basic areas, activity measures, ``p``, balance tolerances or capacities, and costs.

    Attributes
    ----------
    weights
        ``(n, m)`` activity measures (>= 0).
    p
        Number of territories.
    cost
        Distances from candidate centers to areas.
    candidates
        ``(n_candidates,)`` area index of each candidate, or -1 for a point that is no area.
    tol_lower, tol_upper
        ``(m,)`` relative tolerances: a territory's size must lie in
        ``[(1 - tol_lower) mu, (1 + tol_upper) mu]`` with ``mu`` the mean size.
    capacity
        ``(n_candidates,)`` capacities of the first measure (capacity mode), or ``None``.
    cost_weights
        ``(n,)`` weights of the distances in the objective (default: the first measure).
    measure_names
        Names of the measures (for reports).
    coords
        ``(n, 2)`` planar coordinates of the areas (metres), for the geometric solvers
        (successive dichotomies); ``None`` when unknown.
    candidate_coords
        ``(n_candidates, 2)`` planar coordinates of candidates that are no area (rows with
        ``candidates == -1``); area candidates use ``coords``.
    target_share
        ``(n_candidates,)`` share of the total each candidate's territory should get (e.g. a
        part-time rep 0.5 of a full one's); ``NaN`` = an equal part of what the given shares
        leave. ``None`` = every territory targets the mean.
    """

    weights: np.ndarray
    p: int
    cost: CostProvider
    candidates: np.ndarray
    tol_lower: np.ndarray
    tol_upper: np.ndarray
    capacity: np.ndarray | None = None
    cost_weights: np.ndarray | None = None
    measure_names: tuple[str, ...] = ()
    coords: np.ndarray | None = None
    target_share: np.ndarray | None = None
    candidate_coords: np.ndarray | None = None

    def __post_init__(self) -> None:
        w = self.weights
        if w.ndim != 2 or w.shape[0] == 0:
            raise InputError(f"weights must be an (n, m) array with n >= 1, got {w.shape}")
        if np.any(~np.isfinite(w)) or np.any(w < 0):
            bad = np.flatnonzero(~np.isfinite(w).all(axis=1) | (w < 0).any(axis=1))
            raise InputError(f"weights must be finite and >= 0 (bad rows {bad[:10].tolist()})")
        check_magnitudes(0.0, float(w.max()))  # before any sum can overflow
        n = w.shape[0]
        nc, na = self.cost.shape
        if na != n:
            raise InputError(f"cost has {na} area columns but weights have {n} rows (areas)")
        if not isinstance(self.p, int | np.integer) or isinstance(self.p, bool):
            raise InputError(f"p must be a whole number of territories, got {self.p!r}")
        check_p(self.p, n)
        if self.candidates.shape != (nc,):
            raise InputError(f"candidates must have shape ({nc},), got {self.candidates.shape}")
        if nc < self.p:
            raise InputError(f"only {nc} candidate centers for p = {self.p} territories")
        if self.capacity is not None and self.capacity.shape != (nc,):
            raise InputError(f"capacity must have shape ({nc},), got {self.capacity.shape}")
        if self.cost_weights is not None and self.cost_weights.shape != (n,):
            raise InputError(f"cost_weights must have shape ({n},)")
        if np.all(w.sum(axis=0) == 0):
            raise InputError("every activity measure is 0 for all areas")
        if self.coords is not None and self.coords.shape != (n, 2):
            raise InputError(f"coords must have shape ({n}, 2), got {self.coords.shape}")
        if self.target_share is not None:
            ts = self.target_share
            if ts.shape != (nc,):
                raise InputError(f"target_share must have shape ({nc},), got {ts.shape}")
            given = ts[np.isfinite(ts)]
            if np.any(given <= 0) or given.sum() > 1 + 1e-9:
                raise InputError("target shares must be > 0 and add up to at most 1")
        check_magnitudes(_max_finite_cost(self.cost), float(self.objective_weights.max(initial=0)))
        if self.cost_weights is not None:
            check_magnitudes(0.0, float(w.max(initial=0.0)))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_cost_matrix(
        cls,
        cost: np.ndarray,
        weights: np.ndarray,
        p: int,
        *,
        tolerance: Any = 0.05,
        candidates: np.ndarray | None = None,
        capacity: np.ndarray | float | None = None,
        cost_weights: np.ndarray | None = None,
        measure_names: tuple[str, ...] = (),
        coords: np.ndarray | None = None,
    ) -> TerritoryProblem:
        """A problem on a given ``(n_candidates, n)`` cost matrix (drive times or any cost).

        ``candidates`` gives the area index of each row (default: row ``j`` is area ``j``,
        which needs a square matrix); -1 marks a row that is no area.
        """
        mat = as_cost_array(cost)
        w = as_weight_array(weights, mat.shape[1])
        cand = _candidates(candidates, mat.shape[0], w.shape[0])
        xy = None if coords is None else _as_float_array_2(coords, "coords")
        return cls._build(
            CostMatrix(mat), w, p, cand, tolerance, capacity, cost_weights, measure_names, xy
        )

    @classmethod
    def from_points(
        cls,
        coords: np.ndarray,
        weights: np.ndarray,
        p: int,
        *,
        metric: str = "euclidean",
        tolerance: Any = 0.05,
        candidate_coords: np.ndarray | None = None,
        capacity: np.ndarray | float | None = None,
        cost_weights: np.ndarray | None = None,
        measure_names: tuple[str, ...] = (),
    ) -> TerritoryProblem:
        """A straight-line problem: ``metric="euclidean"`` on projected x/y (metres) or
        ``"haversine"`` on lon/lat degrees. Candidates are the areas, or ``candidate_coords``
        (extra points, candidates -1)."""
        xy = _as_float_array_2(coords, "coords")
        w = as_weight_array(weights, xy.shape[0])
        cxy = (
            xy
            if candidate_coords is None
            else _as_float_array_2(candidate_coords, "candidate_coords")
        )
        cand = (
            np.arange(xy.shape[0])
            if candidate_coords is None
            else np.full(cxy.shape[0], -1, dtype=np.int64)
        )
        if metric == "euclidean":
            cost: CostProvider = EuclideanCost(cxy, xy)
            planar = xy
        elif metric == "haversine":
            if np.any(np.abs(xy[:, 0]) > 180) or np.any(np.abs(xy[:, 1]) > 90):
                raise InputError("haversine needs lon/lat degrees; coordinates look projected")
            cost = HaversineCost(cxy, xy)
            planar = _equirectangular(xy)
        else:
            raise InputError(f"metric must be 'euclidean' or 'haversine', got {metric!r}")
        return cls._build(
            cost, w, p, cand, tolerance, capacity, cost_weights, measure_names, planar
        )

    @classmethod
    def _build(
        cls,
        cost: CostProvider,
        w: np.ndarray,
        p: int,
        cand: np.ndarray,
        tolerance: Any,
        capacity: Any,
        cost_weights: Any,
        measure_names: tuple[str, ...],
        coords: np.ndarray | None = None,
    ) -> TerritoryProblem:
        check_p(p, w.shape[0])
        lo, hi = parse_tolerance(tolerance, w.shape[1])
        cap = None
        if capacity is not None:
            cap = np.broadcast_to(np.asarray(capacity, dtype=np.float64), (cost.shape[0],)).copy()
            if np.any(~np.isfinite(cap)) or np.any(cap <= 0):
                raise InputError("capacities must be finite and > 0")
        cwt = None if cost_weights is None else np.asarray(cost_weights, dtype=np.float64)
        return cls(
            weights=w,
            p=int(p),
            cost=cost,
            candidates=cand,
            tol_lower=lo,
            tol_upper=hi,
            capacity=cap,
            cost_weights=cwt,
            measure_names=tuple(measure_names),
            coords=coords,
        )

    # ------------------------------------------------------------------ derived
    @property
    def n(self) -> int:
        """Number of basic areas."""
        return int(self.weights.shape[0])

    @property
    def m(self) -> int:
        """Number of activity measures."""
        return int(self.weights.shape[1])

    @property
    def mean(self) -> np.ndarray:
        """``(m,)`` mean territory size per measure, w(V) / p."""
        return self.weights.sum(axis=0) / self.p

    @property
    def objective_weights(self) -> np.ndarray:
        """``(n,)`` weights of the distances in the objective."""
        return self.weights[:, 0] if self.cost_weights is None else self.cost_weights

    @property
    def capacity_mode(self) -> bool:
        """Whether sizes are bounded by capacities (upper bounds only)."""
        return self.capacity is not None

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(L, U)``: ``(m,)`` lower and upper territory sizes from the tolerances."""
        mu = self.mean
        return (1.0 - self.tol_lower) * mu, (1.0 + self.tol_upper) * mu

    def center_xy(self, centers: np.ndarray) -> np.ndarray | None:
        """``(p, 2)`` planar coordinates of the centers, or ``None`` when unknown."""
        c = np.asarray(centers)
        out = np.full((c.shape[0], 2), np.nan)
        area = self.candidates[c]
        if self.coords is not None:
            out[area >= 0] = self.coords[area[area >= 0]]
        if self.candidate_coords is not None:
            out[area < 0] = self.candidate_coords[c[area < 0]]
        return None if np.isnan(out).any() else out

    def center_targets(self, centers: np.ndarray) -> np.ndarray:
        """``(p, m)`` target size of each center's territory (the mean, or its share)."""
        p = centers.shape[0]
        if self.target_share is None:
            return np.tile(self.mean, (p, 1))
        share = self.target_share[np.asarray(centers)].astype(float)
        free = ~np.isfinite(share)
        if free.any():
            rest = max(0.0, 1.0 - float(share[~free].sum()))
            share[free] = rest / free.sum()
        elif share.sum() > 0:
            share = share / share.sum()  # the chosen centers' shares make the whole
        return share[:, None] * self.weights.sum(axis=0)[None, :]

    def center_bounds(self, centers: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """``(lower (p, m) or None, upper (p, m))`` size bounds of the given centers."""
        p = centers.shape[0]
        if self.capacity is not None:
            upper = np.full((p, self.m), np.inf)
            upper[:, 0] = self.capacity[centers]
            return None, upper
        target = self.center_targets(centers)
        return (1.0 - self.tol_lower) * target, (1.0 + self.tol_upper) * target


def _equirectangular(lonlat: np.ndarray) -> np.ndarray:
    """Planar metres around the data's mean latitude (for geometric solvers only)."""
    lat0 = np.radians(np.mean(lonlat[:, 1]))
    x = np.radians(lonlat[:, 0]) * np.cos(lat0) * _EARTH_RADIUS_M
    y = np.radians(lonlat[:, 1]) * _EARTH_RADIUS_M
    return np.column_stack([x, y])


def _candidates(candidates: np.ndarray | None, n_rows: int, n: int) -> np.ndarray:
    if candidates is None:
        if n_rows != n:
            raise InputError(
                f"cost has {n_rows} rows and {n} columns: give `candidates` (the area index "
                "of each row, -1 for a point that is no area) for a non-square matrix"
            )
        return np.arange(n, dtype=np.int64)
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.shape != (n_rows,):
        raise InputError(f"candidates must have one entry per cost row ({n_rows})")
    if np.any((cand < -1) | (cand >= n)):
        raise InputError(f"candidates must be area indices 0..{n - 1} or -1")
    used = cand[cand >= 0]
    if np.unique(used).shape[0] != used.shape[0]:
        raise InputError("an area appears twice among the candidates")
    return cand


def _as_float_array_2(value: Any, name: str) -> np.ndarray:
    """Finite ``(n, 2)`` coordinates whose distances stay within the solvers' range."""
    from optimizer.validation import MAX_MAGNITUDE

    try:
        xy = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an (n, 2) array of numbers") from None
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] == 0 or not np.isfinite(xy).all():
        raise InputError(f"{name} must be a finite (n, 2) array, got shape {xy.shape}")
    if np.abs(xy).max() > MAX_MAGNITUDE / 4:
        raise InputError(
            f"{name} go up to {float(np.abs(xy).max()):.3g}; coordinates above "
            f"{MAX_MAGNITUDE / 4:.1e} cannot be optimized exactly: rescale them"
        )
    return xy


def _max_finite_cost(cost: CostProvider) -> float:
    """Largest finite distance of a cost provider (bounded from coordinates when computed)."""
    if isinstance(cost, CostMatrix):
        m = cost.matrix
        top = 0.0
        step = max(1, 4_000_000 // max(1, m.shape[1]))  # row blocks: no full-size temporary
        for r in range(0, m.shape[0], step):
            block = np.asarray(m[r : r + step], dtype=np.float64)
            fin = block[np.isfinite(block)]
            if fin.size:
                top = max(top, float(fin.max()))
        return top
    if isinstance(cost, EuclideanCost):
        both = np.vstack([cost.candidates_xy, cost.areas_xy])
        fin = both[np.isfinite(both)]
        return float(2.0 * np.abs(fin).max()) if fin.size else 0.0
    return 2.1e7  # great-circle metres: at most half the Earth's circumference
