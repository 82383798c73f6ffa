r"""Successive dichotomies: territory design by recursive straight-line cuts.

This module implements the computational-geometry heuristic of Kalcsics, Nickel and Schröder,
"Towards a unified territorial design approach" (TOP 13(1), 2005), Section 6, with the
several-measures extension of Section 8 and the split variant of Section 6.5.

Basic areas are points :math:`v \in V` in a projected plane with activity measures
:math:`w_{v,j} \ge 0`, :math:`j = 1..m`. With :math:`\mu_j = w_j(V)/p` the bounds of (6.1) are

.. math::

    L_j = \max\{0, (1 - \tau^-_j)\,\mu_j\}, \qquad U_j = (1 + \tau^+_j)\,\mu_j,

(:math:`\tau^- = \tau^+ = \tau` unless a lower and an upper tolerance are given), and a
territory :math:`B` is feasible when :math:`L_j \le w_j(B) \le U_j` for every measure.

Basic problem (Section 6.2)
    Given :math:`V' \subseteq V` and :math:`p' \ge 2`, choose :math:`p'_l + p'_r = p'`
    (:math:`p'/2` each when :math:`p'` is even; both
    :math:`(\lceil p'/2\rceil, \lfloor p'/2\rfloor)` and
    :math:`(\lfloor p'/2\rfloor, \lceil p'/2\rceil)` when it is odd) and a line. For the
    :math:`N` directions :math:`\alpha_i = i\pi/N`, :math:`i = 0..N-1` (the paper prints
    :math:`\pi/i`, a typo), the points are sorted by the rotated coordinate
    :math:`u_v = x_v \sin\alpha_i + y_v \cos\alpha_i` (the lines :math:`u = \text{const}`
    make the angle :math:`\pi - \alpha_i` with the x-axis: the same fan of directions),
    giving :math:`v_1, \dots, v_s`; the cut
    :math:`V'_l = \{v_1..v_k\}` is taken at the balance index of (6.2),

    .. math::

        w(\{v_1..v_{k-1}\}) < \tfrac{p'_l}{p'}\,w(V') \le w(\{v_1..v_k\}).

    The partition is feasible when :math:`k \ge p'_l`, :math:`s - k \ge p'_r` and
    :math:`w(V'_l)/p'_l,\ w(V'_r)/p'_r \in [L, U]`.

Compactness (Section 6.2)
    Feasible partitions are ranked by the length of the cutting line "inside" :math:`V'`: the
    chord of the convex hull of :math:`V'` when :math:`|V'|` is at most ``stripe_threshold``,
    otherwise the extent of the projections onto the line of the points in a stripe around it
    (total width ``stripe_width`` times the width of the hull measured across the line). Ties
    are broken by balance, then by direction.

Search tree (Sections 6.3, 6.4)
    Nodes are basic problems; an active node implements its best unused partition and becomes
    inactive, a node with no partition left reactivates its father and deletes the father's
    descendants (backtracking). When the number of nodes generated since the last relaxation
    reaches ``node_limit``, or the root runs out of partitions, :math:`\tau` is doubled; after
    ``max_relaxations`` doublings :math:`L = 0`, :math:`U = \infty` and the search ends without
    further backtracking.

Implementation choices (documented deviations or precisions)
    * **Several measures (Section 8).** With one measure :math:`k` is exactly (6.2). With
      :math:`m > 1` measures :math:`k` minimises the largest relative imbalance
      :math:`\max_j |w_j(\{v_1..v_k\}) - \tfrac{p'_l}{p'} w_j(V')| / \mu_j` over all admissible
      :math:`k`, which is the quantity the bounds :math:`[L_j, U_j]` test.
    * **Admissible k.** The balance index is clamped to :math:`[p'_l, s - p'_r]` instead of
      discarding the direction; the clamped cut is the best balanced cut of that direction that
      leaves one area per territory, and it must still meet :math:`[L, U]`.
    * **Ties and points on the line.** Ties in :math:`u` are broken by the coordinate along the
      line, i.e. the cutting line is turned by an infinitesimal angle, which keeps the
      separation a straight line (Prop. 6.1). Exact duplicates of :math:`v_k` stay with
      :math:`v_k` on the left (points on the line go left); if that breaks the counts the whole
      duplicate group goes right instead, and if that breaks them too the group is split (no
      line separates identical points).
    * **Lazy candidates.** A node's partitions are computed when it is first selected, with the
      bounds in force then; a node that runs out of partitions computed under older bounds
      recomputes them once under the relaxed bounds before backtracking. With the clamped
      :math:`k` every subproblem with :math:`s \ge p' \ge 2` has a partition once
      :math:`L = 0, U = \infty`, so the final phase never backtracks.

Split variant (Section 6.5)
    :func:`successive_dichotomies_split` splits the area :math:`v_k` of (6.2) so that the
    primary measure satisfies :math:`w(V'_l) = \tfrac{p'_l}{p'} w(V')` exactly. An area can be
    cut again in later steps, so each territory receives fractions :math:`x_{iv}` with
    :math:`\sum_i x_{iv} = 1`; the territory/split-area adjacency is a forest, and
    :func:`optimizer.split.resolve_splits` rounds the fractions optimally, so Theorem 5.5 bounds
    the result by :math:`\max_i |W_i - \mu| \le \max\{w_v : v \text{ split}\}` (objective
    ``"max"``). Cuts are ranked by compactness alone (every cut is exactly balanced in the
    primary measure; secondary measures follow the fractions and are balanced only by the
    resolution, whose targets are :math:`\mu_j` for every measure). There is no search tree.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> xy = rng.random((400, 2))
>>> w = rng.uniform(1.0, 2.0, 400)
>>> res = successive_dichotomies(xy, w, 8, tolerance=0.1)
>>> res.assignment.shape, res.sizes.shape, bool(res.feasible)
((400,), (8, 1), True)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import shapely
from scipy import sparse

from optimizer.exceptions import InputError, SolverError
from optimizer.tolerance import parse_tolerance

__all__ = ["DichotomyResult", "successive_dichotomies", "successive_dichotomies_split"]

logger = logging.getLogger(__name__)

#: Relative slack (times mu) when comparing a size with a bound, so that exact fits survive
#: floating-point summation.
_BOUND_RTOL = 1e-9
#: A split piece smaller than this fraction of the item is not created (rounding noise).
_PIECE_EPS = 1e-9
_NO_AREAS: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)

Objective = Literal["max", "sum", "squares"]
#: A sort order ``(s, N)`` and the columns that may hold ties ``(N,)``.
_Sorted = tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]


@dataclass(frozen=True, eq=False)
class DichotomyResult:
    """Territory plan produced by successive dichotomies.

    Attributes
    ----------
    assignment
        ``(n,)`` territory index ``0..p-1`` of every basic area.
    sizes
        ``(p, m)`` size of every territory in every activity measure.
    max_deviation
        :math:`\\max_{i,j} |W_{ij} - \\mu_j| / \\mu_j` over territories and measures.
    nodes_explored
        Search-tree nodes generated, the root included.
    backtracks
        Backtracking operations (a node with no partition left reactivated its father).
    relaxations
        Times the bounds were relaxed: each doubling of :math:`\\tau` counts one, and the last
        step to :math:`L = 0, U = \\infty` counts one more (see ``final_bounds``).
    final_bounds
        ``(2, m)``: row 0 the lower bounds :math:`L_j`, row 1 the upper bounds :math:`U_j` in
        force at the end of the search (``0`` and ``inf`` once fully relaxed).
    feasible
        Every territory lies within the *original* bounds in every measure (up to a relative
        slack of ``1e-9 * mu``).
    splits
        Split variant only: basic areas that the fractional solution split across two or more
        territories before the splits were resolved.
    fractions
        Split variant only: ``(p, n)`` sparse matrix of the fractional solution, :math:`x_{iv}`
        the share of area :math:`v` in territory :math:`i` (column sums 1).
    """

    assignment: npt.NDArray[np.intp]
    sizes: npt.NDArray[np.float64]
    max_deviation: float
    nodes_explored: int
    backtracks: int
    relaxations: int
    final_bounds: npt.NDArray[np.float64]
    feasible: bool
    splits: int = 0
    fractions: sparse.csr_array | None = field(default=None, repr=False)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _as_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _validate_points(
    xy: npt.ArrayLike, weights: npt.ArrayLike, p: Any
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]:
    try:
        P = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"xy must be a numeric (n, 2) array: {exc}") from exc
    if P.ndim != 2 or P.shape[1] != 2 or P.shape[0] == 0:
        raise InputError(f"xy must have shape (n, 2) with n >= 1, got shape {P.shape}")
    if not np.isfinite(P).all():
        bad = int(np.flatnonzero(~np.isfinite(P).all(axis=1))[0])
        raise InputError(f"xy must be finite; row {bad} is {P[bad].tolist()}")
    n = P.shape[0]
    try:
        W = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"weights must be a numeric (n,) or (n, m) array: {exc}") from exc
    if W.ndim == 1:
        W = W[:, None]
    if W.ndim != 2 or W.shape[0] != n or W.shape[1] == 0:
        raise InputError(
            f"weights must have shape ({n},) or ({n}, m) to match xy, got shape {np.shape(weights)}"
        )
    if not np.isfinite(W).all():
        bad = int(np.flatnonzero(~np.isfinite(W).all(axis=1))[0])
        raise InputError(f"weights must be finite (no NaN/inf); row {bad} is {W[bad].tolist()}")
    if (W < 0).any():
        row, col = np.argwhere(W < 0)[0]
        raise InputError(
            f"weights must be >= 0; weights[{row}, {col}] = {W[row, col]} (measure {col})"
        )
    totals = W.sum(axis=0)
    if (totals <= 0).any():
        col = int(np.flatnonzero(totals <= 0)[0])
        raise InputError(
            f"every activity measure needs a positive total; measure {col} sums to {totals[col]}"
        )
    if isinstance(p, bool) or not isinstance(p, int | np.integer):
        raise InputError(f"p must be an integer number of territories, got {p!r}")
    if not 1 <= p <= n:
        raise InputError(f"p must satisfy 1 <= p <= n = {n} (one area per territory), got {p}")
    return P, W, int(p)


def _validate_tolerance(tolerance: Any, m: int) -> npt.NDArray[np.float64]:
    """Return ``(2, m)`` lower/upper relative tolerances (finite: the cuts need both bounds)."""
    lo, hi = parse_tolerance(tolerance, m)
    if not np.isfinite(hi).all():
        raise InputError(f"successive dichotomies need a finite upper tolerance, got {hi.tolist()}")
    return np.vstack([lo, hi])


def _validate_geometry_options(
    n_directions: Any, stripe_threshold: Any, stripe_width: Any
) -> tuple[int, int, float]:
    n_dir = _as_int(n_directions, "n_directions", 1)
    thr = _as_int(stripe_threshold, "stripe_threshold", 0)
    try:
        width = float(stripe_width)
    except (TypeError, ValueError) as exc:
        raise InputError(f"stripe_width must be a number in (0, 1], got {stripe_width!r}") from exc
    if not 0.0 < width <= 1.0:
        raise InputError(
            f"stripe_width must be in (0, 1] (a fraction of the hull width), got {width}"
        )
    return n_dir, thr, width


def _directions(n_dir: int, seed: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``sin`` and ``cos`` of the directions :math:`\\alpha_i = (i + \\delta)\\pi/N`.

    :math:`\\delta = 0` unless a seed is given, then :math:`\\delta \\sim U[0, 1)`.
    """
    offset = 0.0
    if seed is not None:
        offset = float(np.random.default_rng(seed).random())
    alpha = (np.arange(n_dir, dtype=np.float64) + offset) * (math.pi / n_dir)
    return np.sin(alpha), np.cos(alpha)


# --------------------------------------------------------------------------------------------
# Geometry kernels
# --------------------------------------------------------------------------------------------


def _sorted_projections(
    P: npt.NDArray[np.float64],
    sin: npt.NDArray[np.float64],
    cos: npt.NDArray[np.float64],
    inherited: _Sorted | None = None,
) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.intp], npt.NDArray[np.bool_]
]:
    """Rotated coordinates ``u`` (across the line), ``t`` (along it) and the sort order.

    Returns ``U (s, N)``, ``T (s, N)``, ``order (s, N)`` (ascending ``u``, ties by ``t``, then by
    position) and ``tied (N,)`` (the column may have ties in ``u``). A subproblem passes the
    order ``inherited`` from its father (restricted to its own points), which is already sorted.
    """
    x = P[:, 0:1]
    y = P[:, 1:2]
    U = x * sin + y * cos
    T = x * cos - y * sin
    if inherited is not None:
        return U, T, inherited[0], inherited[1]
    order = np.argsort(U, axis=0)
    Us = np.take_along_axis(U, order, axis=0)
    tied = (Us[1:] == Us[:-1]).any(axis=0) if len(P) > 1 else np.zeros(len(sin), dtype=bool)
    for j in np.flatnonzero(tied):
        order[:, j] = np.lexsort((T[:, j], U[:, j]))
    return U, T, order, tied


def _inherit_order(
    parent_order: npt.NDArray[np.intp], positions: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """Sort order of a subset, read off the father's order in ``O(s N)`` instead of a sort.

    ``positions[i]`` is the father's position of the child's item ``i``; a subsequence of a
    sorted sequence is sorted, so no comparison is needed.
    """
    s_parent, n_dir = parent_order.shape
    pos = np.full(s_parent, -1, dtype=np.intp)
    pos[positions] = np.arange(len(positions), dtype=np.intp)
    mapped = pos[parent_order].T  # (N, S)
    return mapped[mapped >= 0].reshape(n_dir, len(positions)).T


def _snap_duplicates(
    Usj: npt.NDArray[np.float64], Tsj: npt.NDArray[np.float64], k: int, lo: int, hi: int
) -> int:
    """Move cut ``k`` off a run of identical points (they cannot be separated by a line).

    The run containing position ``k - 1`` goes left when ``k`` may grow, else right; when
    neither respects ``lo <= k <= hi`` the run is split at ``k`` (no line separates it).
    """
    if k >= len(Usj) or Usj[k] != Usj[k - 1] or Tsj[k] != Tsj[k - 1]:
        return k
    same = (Usj == Usj[k - 1]) & (Tsj == Tsj[k - 1])
    run = np.flatnonzero(same)
    end = int(run[-1]) + 1
    start = int(run[0])
    if end <= hi:
        return end
    if start >= lo:
        return start
    return k


def _hull_ring(P: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Vertices of the convex hull of ``P`` as a closed ring ``(h + 1, 2)``."""
    hull = shapely.convex_hull(shapely.multipoints(P))
    coords = shapely.get_coordinates(hull)
    if len(coords) == 1:  # a single point
        return np.vstack([coords, coords])
    if not np.array_equal(coords[0], coords[-1]):  # a segment: close it
        coords = np.vstack([coords, coords[:1]])
    return np.asarray(coords, dtype=np.float64)


def _cut_lengths(
    P: npt.NDArray[np.float64],
    U: npt.NDArray[np.float64],
    T: npt.NDArray[np.float64],
    u0: npt.NDArray[np.float64],
    dirs: npt.NDArray[np.intp],
    sin: npt.NDArray[np.float64],
    cos: npt.NDArray[np.float64],
    use_hull: bool,
    stripe_width: float,
) -> npt.NDArray[np.float64]:
    """Length of each candidate line ``u = u0[c]`` in direction ``dirs[c]`` "within" ``P``.

    Hull method: the chord of the convex hull (crossings of the line with the hull's edges,
    projected onto the line, max minus min). Stripe method: extent along the line of the points
    with ``|u - u0| <= stripe_width * (max u - min u) / 2``.
    """
    if len(dirs) == 0:
        return np.zeros(0)
    if use_hull:
        H = _hull_ring(P)
        sc, cc = sin[dirs], cos[dirs]
        hx, hy = H[:, 0:1], H[:, 1:2]
        f = hx * sc + hy * cc - u0  # signed offsets of hull vertices, (h + 1, C)
        t = hx * cc - hy * sc
        on = f == 0
        f0, f1, t0, t1 = f[:-1], f[1:], t[:-1], t[1:]
        cross = (f0 * f1) < 0
        ratio = np.divide(f0, f0 - f1, out=np.zeros_like(f0), where=cross)
        tc = t0 + ratio * (t1 - t0)
        hi = np.maximum(
            np.where(on, t, -np.inf).max(axis=0), np.where(cross, tc, -np.inf).max(axis=0)
        )
        lo = np.minimum(
            np.where(on, t, np.inf).min(axis=0), np.where(cross, tc, np.inf).min(axis=0)
        )
        return np.where(hi >= lo, hi - lo, 0.0)
    Uc = U[:, dirs]
    Tc = T[:, dirs]
    half = 0.5 * stripe_width * (Uc.max(axis=0) - Uc.min(axis=0))
    inside = np.abs(Uc - u0) <= half
    hi = np.where(inside, Tc, -np.inf).max(axis=0)
    lo = np.where(inside, Tc, np.inf).min(axis=0)
    return np.where(hi >= lo, hi - lo, 0.0)


def _splits_of(p_node: int) -> list[int]:
    """Values of :math:`p'_l` to try (Section 6.2)."""
    if p_node % 2 == 0:
        return [p_node // 2]
    return [(p_node + 1) // 2, p_node // 2]


# --------------------------------------------------------------------------------------------
# Basic problem with bounds (Section 6.2)
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Node:
    idx: npt.NDArray[np.intp]
    p: int
    parent: int
    src: npt.NDArray[np.intp] | None = None  # positions of idx in the father's idx
    children: tuple[int, int] | None = None
    order: npt.NDArray[np.intp] | None = None
    tied: npt.NDArray[np.bool_] | None = None
    cands: npt.NDArray[np.intp] | None = None  # (c, 3): direction, k, p_l; ranked
    next_cand: int = 0
    version: int = -1
    deleted: bool = False


@dataclass(slots=True)
class _Geometry:
    P: npt.NDArray[np.float64]
    W: npt.NDArray[np.float64]
    mu: npt.NDArray[np.float64]
    sin: npt.NDArray[np.float64]
    cos: npt.NDArray[np.float64]
    stripe_threshold: int
    stripe_width: float


def _ranked_partitions(
    geo: _Geometry,
    idx: npt.NDArray[np.intp],
    p_node: int,
    L: npt.NDArray[np.float64],
    U_b: npt.NDArray[np.float64],
    inherited: _Sorted | None = None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """Feasible partitions of the basic problem ``(idx, p_node)``, best first.

    Returns the ``(s, N)`` sort order per direction, the columns that may hold ties and a
    ``(c, 3)`` array of ``(direction, k, p_l)``; the left part of a candidate is
    ``idx[order[:k, direction]]``.
    """
    P = geo.P[idx]
    Wn = geo.W[idx]
    s = len(idx)
    n_dir = len(geo.sin)
    m = Wn.shape[1]
    U, T, order, tied = _sorted_projections(P, geo.sin, geo.cos, inherited)
    cum = np.cumsum(Wn[order], axis=0)  # (s, N, m)
    total = cum[-1]  # (N, m)
    cols = np.arange(n_dir)
    slack = _BOUND_RTOL * geo.mu
    found_dir: list[npt.NDArray[np.intp]] = []
    found_k: list[npt.NDArray[np.intp]] = []
    found_pl: list[npt.NDArray[np.intp]] = []
    found_imb: list[npt.NDArray[np.float64]] = []
    for p_l in _splits_of(p_node):
        p_r = p_node - p_l
        target = (p_l / p_node) * total  # (N, m)
        if m == 1:
            # (6.2): first k with w(v_1..v_k) >= target.
            k = (cum[:, :, 0] < target[:, 0]).sum(axis=0) + 1
        else:
            imb = (np.abs(cum - target) / geo.mu).max(axis=2)  # (s, N)
            k = np.argmin(imb[p_l - 1 : s - p_r], axis=0) + p_l
        k = np.clip(k, p_l, s - p_r)
        if tied.any():
            Us = np.take_along_axis(U, order, axis=0)
            Ts = np.take_along_axis(T, order, axis=0)
            for j in np.flatnonzero(tied):
                k[j] = _snap_duplicates(Us[:, j], Ts[:, j], int(k[j]), p_l, s - p_r)
        left = cum[k - 1, cols]  # (N, m)
        right = total - left
        ok = (
            (left / p_l >= L - slack).all(axis=1)
            & (left / p_l <= U_b + slack).all(axis=1)
            & (right / p_r >= L - slack).all(axis=1)
            & (right / p_r <= U_b + slack).all(axis=1)
        )
        dirs = np.flatnonzero(ok)
        found_dir.append(dirs)
        found_k.append(k[dirs])
        found_pl.append(np.full(len(dirs), p_l, dtype=np.intp))
        found_imb.append((np.abs(left[dirs] - target[dirs]) / geo.mu).max(axis=1))
    dirs = np.concatenate(found_dir)
    if len(dirs) == 0:
        return order, tied, np.zeros((0, 3), dtype=np.intp)
    ks = np.concatenate(found_k)
    pls = np.concatenate(found_pl)
    imbs = np.concatenate(found_imb)
    u0 = U[order[ks - 1, dirs], dirs]
    lengths = _cut_lengths(
        P, U, T, u0, dirs, geo.sin, geo.cos, s <= geo.stripe_threshold, geo.stripe_width
    )
    rank = np.lexsort((pls, dirs, imbs, lengths))
    cands = np.stack([dirs[rank], ks[rank], pls[rank]], axis=1).astype(np.intp)
    return order, tied, cands


def _finish(
    assignment: npt.NDArray[np.intp],
    W: npt.NDArray[np.float64],
    p: int,
    L0: npt.NDArray[np.float64],
    U0: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], float, bool]:
    """Sizes, max relative deviation and the feasibility flag against the original bounds."""
    m = W.shape[1]
    sizes = np.zeros((p, m))
    np.add.at(sizes, assignment, W)
    mu = W.sum(axis=0) / p
    max_dev = float((np.abs(sizes - mu) / mu).max())
    slack = _BOUND_RTOL * mu
    feasible = bool(((sizes >= L0 - slack) & (sizes <= U0 + slack)).all())
    return sizes, max_dev, feasible


def successive_dichotomies(
    xy: npt.ArrayLike,
    weights: npt.ArrayLike,
    p: int,
    *,
    tolerance: float | npt.ArrayLike = 0.05,
    n_directions: int = 16,
    node_limit: int | None = None,
    max_relaxations: int = 3,
    stripe_threshold: int = 200,
    stripe_width: float = 0.05,
    seed: int | np.random.Generator | None = None,
) -> DichotomyResult:
    r"""Partition points into ``p`` balanced, compact territories by successive line cuts.

    Implements Section 6 of Kalcsics, Nickel and Schröder (2005); the model and the documented
    implementation choices are in the module docstring. Territories have pairwise disjoint
    convex hulls (Prop. 6.1).

    Parameters
    ----------
    xy
        ``(n, 2)`` projected coordinates (metres, or any planar unit) of the basic areas.
    weights
        ``(n,)`` or ``(n, m)`` activity measures, finite and ``>= 0``; every measure needs a
        positive total. With several measures the first is the primary one.
    p
        Number of territories, ``1 <= p <= n``.
    tolerance
        Relative deviation :math:`\tau` of (6.1): a scalar, one value per measure ``(m,)``, or
        ``(2, m)`` with the lower tolerances in row 0 and the upper ones in row 1, giving
        :math:`L_j = \max(0, (1 - \tau^-_j)\mu_j)` and :math:`U_j = (1 + \tau^+_j)\mu_j`.
    n_directions
        Number :math:`N` of line directions :math:`\alpha_i = i\pi/N` (the paper recommends 8
        or 16).
    node_limit
        Search-tree nodes generated between two relaxations of the bounds; default ``50 * p``.
    max_relaxations
        Doublings of :math:`\tau` before the final step to :math:`L = 0, U = \infty` (with
        :math:`\tau = 0` the doublings change nothing, so the search reaches that step after
        ``max_relaxations`` useless rounds, each ended by the node limit or an exhausted root).
    stripe_threshold
        Subproblems with at most this many areas rank cuts by the convex-hull chord, larger
        ones by the stripe method.
    stripe_width
        Width of the stripe as a fraction of the hull's width across the line.
    seed
        ``None`` (default) uses the directions :math:`i\pi/N` exactly and the result is fully
        deterministic. An integer or a :class:`numpy.random.Generator` turns the whole fan of
        directions by a random angle in :math:`[0, \pi/N)`, e.g. to keep the best of several
        runs; the same seed gives the same result.

    Returns
    -------
    DichotomyResult
        The assignment, sizes and search statistics. ``feasible`` is ``False`` when the bounds
        had to be relaxed and some territory ended outside the original ``[L, U]``.

    Raises
    ------
    InputError
        For malformed coordinates or weights, ``p`` outside ``1..n`` or invalid options.

    Notes
    -----
    Active nodes are selected depth first, left before right, and territories are numbered
    in that order. The root is sorted once per direction; every subproblem reads its order
    off its father's in :math:`O(sN)`, so a search without backtracking costs about
    :math:`O(nN \log p)` plus a convex hull per small subproblem. In the worst case about
    ``(max_relaxations + 1) * node_limit + 2p`` nodes are generated.
    """
    P, W, p = _validate_points(xy, weights, p)
    n, m = W.shape
    tau = _validate_tolerance(tolerance, m)
    n_dir, thr, width = _validate_geometry_options(n_directions, stripe_threshold, stripe_width)
    limit = 50 * p if node_limit is None else _as_int(node_limit, "node_limit", 1)
    max_relax = _as_int(max_relaxations, "max_relaxations", 0)
    sin, cos = _directions(n_dir, seed)

    mu = W.sum(axis=0) / p
    L0 = np.maximum(0.0, (1.0 - tau[0]) * mu)
    U0 = (1.0 + tau[1]) * mu
    geo = _Geometry(P, W, mu, sin, cos, thr, width)

    tau_now = tau.copy()
    L, U_b = L0.copy(), U0.copy()
    version = 0
    relaxations = 0
    final = False
    since = 1
    explored = 1
    backtracks = 0

    def relax(reason: str) -> None:
        nonlocal L, U_b, version, relaxations, final, since, tau_now
        relaxations += 1
        version += 1
        since = 0
        if relaxations <= max_relax:
            tau_now = 2.0 * tau_now
            L = np.maximum(0.0, (1.0 - tau_now[0]) * mu)
            U_b = (1.0 + tau_now[1]) * mu
        else:
            final = True
            L = np.zeros(m)
            U_b = np.full(m, np.inf)
        logger.debug(
            "relaxation %d (%s): L=%s U=%s after %d nodes",
            relaxations,
            reason,
            L.tolist(),
            U_b.tolist(),
            explored,
        )

    nodes: list[_Node] = [_Node(idx=np.arange(n, dtype=np.intp), p=p, parent=-1)]
    stack = [0]

    def delete_descendants(nid: int) -> None:
        todo = list(nodes[nid].children or ())
        nodes[nid].children = None
        while todo:
            node = nodes[todo.pop()]
            node.deleted = True
            node.idx = _NO_AREAS
            node.order = node.tied = node.cands = node.src = None
            if node.children is not None:
                todo.extend(node.children)
                node.children = None

    while stack:
        nid = stack.pop()
        node = nodes[nid]
        if node.deleted or node.p == 1:
            continue
        cands = node.cands
        if cands is None or (node.next_cand >= len(cands) and node.version < version):
            inherited: _Sorted | None = None
            if node.order is not None and node.tied is not None:
                inherited = (node.order, node.tied)  # stale candidates, same points
            elif node.src is not None:
                father = nodes[node.parent]
                if father.order is not None and father.tied is not None:
                    inherited = (_inherit_order(father.order, node.src), father.tied)
            node.order, node.tied, node.cands = _ranked_partitions(
                geo, node.idx, node.p, L, U_b, inherited
            )
            node.next_cand = 0
            node.version = version
            cands = node.cands
        if node.next_cand >= len(cands):
            if nid == 0:
                if final:  # cannot happen: without bounds every node has a partition
                    raise SolverError("successive dichotomies: no partition of the root")
                relax("root exhausted")
                stack.append(0)
                continue
            node.order = node.tied = node.cands = None
            parent = node.parent
            delete_descendants(parent)
            stack.append(parent)
            backtracks += 1
            continue
        j, k, p_l = (int(v) for v in cands[node.next_cand])
        node.next_cand += 1
        assert node.order is not None
        col = node.order[:, j]
        left = _Node(idx=node.idx[col[:k]], p=p_l, parent=nid, src=col[:k])
        right = _Node(idx=node.idx[col[k:]], p=node.p - p_l, parent=nid, src=col[k:])
        nodes.append(left)
        nodes.append(right)
        node.children = (len(nodes) - 2, len(nodes) - 1)
        stack.append(len(nodes) - 1)
        stack.append(len(nodes) - 2)
        explored += 2
        since += 2
        if not final and since >= limit:
            relax("node limit")

    assignment = np.full(n, -1, dtype=np.intp)
    territory = 0
    todo = [0]
    while todo:  # left-to-right leaves of the final tree
        node = nodes[todo.pop()]
        if node.children is None:
            assignment[node.idx] = territory
            territory += 1
        else:
            todo.extend(node.children[::-1])
    if territory != p or (assignment < 0).any():  # pragma: no cover - internal invariant
        raise SolverError(f"successive dichotomies produced {territory} territories, not {p}")
    sizes, max_dev, feasible = _finish(assignment, W, p, L0, U0)
    logger.debug(
        "successive dichotomies: n=%d p=%d nodes=%d backtracks=%d relaxations=%d dev=%.4f",
        n,
        p,
        explored,
        backtracks,
        relaxations,
        max_dev,
    )
    return DichotomyResult(
        assignment=assignment,
        sizes=sizes,
        max_deviation=max_dev,
        nodes_explored=explored,
        backtracks=backtracks,
        relaxations=relaxations,
        final_bounds=np.vstack([L, U_b]),
        feasible=feasible,
    )


# --------------------------------------------------------------------------------------------
# Split variant (Section 6.5)
# --------------------------------------------------------------------------------------------


_Items = tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.intp]]


def _split_cut(
    geo: _Geometry,
    idx: npt.NDArray[np.intp],
    frac: npt.NDArray[np.float64],
    p_node: int,
    inherited: _Sorted | None,
) -> tuple[_Sorted, _Items, _Items, int]:
    """Most compact exactly balanced cut of the items ``(idx, frac)`` (Section 6.5).

    Returns the node's sort order, the left and right items as ``(idx, frac, positions)``
    (``positions`` in this node) and :math:`p'_l`.
    """
    P = geo.P[idx]
    w = geo.W[idx, 0] * frac
    s = len(idx)
    n_dir = len(geo.sin)
    U, T, order, tied = _sorted_projections(P, geo.sin, geo.cos, inherited)
    cum = np.cumsum(w[order], axis=0)  # (s, N)
    total = cum[-1]
    dirs_l: list[npt.NDArray[np.intp]] = []
    k_l: list[npt.NDArray[np.intp]] = []
    pl_l: list[int] = []
    cols = np.arange(n_dir)
    for p_l in _splits_of(p_node):
        target = (p_l / p_node) * total
        k = np.minimum((cum < target).sum(axis=0) + 1, s)  # (6.2)
        dirs_l.append(cols)
        k_l.append(k)
        pl_l.extend([p_l] * n_dir)
    dirs = np.concatenate(dirs_l)
    ks = np.concatenate(k_l)
    pls = np.asarray(pl_l, dtype=np.intp)
    u0 = U[order[ks - 1, dirs], dirs]
    lengths = _cut_lengths(
        P, U, T, u0, dirs, geo.sin, geo.cos, s <= geo.stripe_threshold, geo.stripe_width
    )
    best = int(np.lexsort((pls, dirs, lengths))[0])
    j, k, p_l = int(dirs[best]), int(ks[best]), int(pls[best])
    col = order[:, j]
    target = (p_l / p_node) * total[j]
    before = cum[k - 2, j] if k >= 2 else 0.0
    item = col[k - 1]
    theta = (target - before) / w[item] if w[item] > 0 else 1.0
    theta = min(max(theta, 0.0), 1.0)
    if theta <= _PIECE_EPS and k >= 2:  # v_k stays whole on the right
        lp, rp = col[: k - 1], col[k - 1 :]
        left_frac, right_frac = frac[lp], frac[rp]
    elif theta >= 1.0 - _PIECE_EPS and k < s:  # v_k whole on the left
        lp, rp = col[:k], col[k:]
        left_frac, right_frac = frac[lp], frac[rp]
    else:  # v_k is split: theta of it on the left, the rest on the right
        lp, rp = col[:k], col[k - 1 :]
        left_frac = frac[lp].copy()
        right_frac = frac[rp].copy()
        left_frac[-1] = frac[item] * theta
        right_frac[0] = frac[item] * (1.0 - theta)
    return (order, tied), (idx[lp], left_frac, lp), (idx[rp], right_frac, rp), p_l


def _fractional_plan(geo: _Geometry, p: int) -> tuple[sparse.csr_array, int, int]:
    """Fractional plan of the split variant: ``(p, n)`` fractions, split areas, nodes."""
    n = len(geo.P)
    rows: list[npt.NDArray[np.intp]] = []
    areas: list[npt.NDArray[np.intp]] = []
    shares: list[npt.NDArray[np.float64]] = []
    territory = 0
    explored = 1
    stack: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], int, _Sorted | None]] = [
        (np.arange(n, dtype=np.intp), np.ones(n), p, None)
    ]
    while stack:  # depth first, left before right: territories numbered left to right
        idx, frac, p_node, inherited = stack.pop()
        if p_node == 1:
            rows.append(np.full(len(idx), territory, dtype=np.intp))
            areas.append(idx)
            shares.append(frac)
            territory += 1
            continue
        (order, tied), (li, lf, lp), (ri, rf, rp), p_l = _split_cut(
            geo, idx, frac, p_node, inherited
        )
        p_r = p_node - p_l
        r_sorted = (_inherit_order(order, rp), tied) if p_r > 1 else None
        l_sorted = (_inherit_order(order, lp), tied) if p_l > 1 else None
        stack.append((ri, rf, p_r, r_sorted))
        stack.append((li, lf, p_l, l_sorted))
        explored += 2
    all_areas = np.concatenate(areas)
    fractions = sparse.csr_array(
        (np.concatenate(shares), (np.concatenate(rows), all_areas)), shape=(p, n)
    )
    n_split = int((np.bincount(all_areas, minlength=n) > 1).sum())
    return fractions, n_split, explored


def successive_dichotomies_split(
    xy: npt.ArrayLike,
    weights: npt.ArrayLike,
    p: int,
    *,
    n_directions: int = 16,
    objective: Objective = "max",
    tolerance: float | npt.ArrayLike = 0.05,
    stripe_threshold: int = 200,
    stripe_width: float = 0.05,
    seed: int | np.random.Generator | None = None,
) -> DichotomyResult:
    r"""Successive dichotomies with split areas and optimal split resolution (Section 6.5).

    Every basic problem is cut so that the primary measure is exactly balanced,
    :math:`w_1(V'_l) = \tfrac{p'_l}{p'} w_1(V')`, by splitting the area :math:`v_k` of (6.2)
    (areas already split by an earlier cut may be split again, so an area can end in several
    territories). Among the :math:`N` directions and the two choices of :math:`p'_l` for odd
    :math:`p'` the shortest cut (hull chord or stripe, as in :func:`successive_dichotomies`)
    wins; there is no backtracking. The fractional plan :math:`x_{iv}` has a cycle-free
    territory/split-area adjacency, so :func:`optimizer.split.resolve_splits` rounds it
    optimally and, for ``objective="max"``, Theorem 5.5 gives
    :math:`\max_i |W_{i1} - \mu_1| \le \max\{w_{v1} : v \text{ split}\}`.

    Parameters
    ----------
    xy, weights, p, n_directions, stripe_threshold, stripe_width, seed
        As in :func:`successive_dichotomies`. Secondary measures follow the fractions of the
        primary one.
    objective
        Objective of the split resolution: ``"max"`` (largest deviation), ``"sum"`` or
        ``"squares"``.
    tolerance
        Only used to report ``feasible`` and ``final_bounds``; the cuts are exact.

    Returns
    -------
    DichotomyResult
        With ``splits`` the number of split areas of the fractional plan and ``fractions`` the
        ``(p, n)`` fractional plan. A territory can end empty when one area outweighs
        :math:`\mu`.

    Raises
    ------
    InputError
        For malformed inputs or an unknown ``objective``.
    """
    P, W, p = _validate_points(xy, weights, p)
    n, m = W.shape
    tau = _validate_tolerance(tolerance, m)
    n_dir, thr, width = _validate_geometry_options(n_directions, stripe_threshold, stripe_width)
    if objective not in ("max", "sum", "squares"):
        raise InputError(f"objective must be 'max', 'sum' or 'squares', got {objective!r}")
    sin, cos = _directions(n_dir, seed)
    mu = W.sum(axis=0) / p
    L0 = np.maximum(0.0, (1.0 - tau[0]) * mu)
    U0 = (1.0 + tau[1]) * mu
    geo = _Geometry(P, W, mu, sin, cos, thr, width)

    fractions, n_split, explored = _fractional_plan(geo, p)
    targets = np.broadcast_to(mu, (p, m)).copy()

    from optimizer.split import resolve_splits  # written alongside; imported when needed

    resolution = resolve_splits(fractions, W, targets, objective=objective)
    assignment = np.asarray(resolution.assignment, dtype=np.intp)
    if assignment.shape != (n,) or (assignment < 0).any() or (assignment >= p).any():
        raise SolverError(
            f"resolve_splits returned an invalid assignment (shape {assignment.shape}, "
            f"range {assignment.min() if n else 0}..{assignment.max() if n else 0}, p={p})"
        )
    sizes, max_dev, feasible = _finish(assignment, W, p, L0, U0)
    logger.debug(
        "split dichotomies: n=%d p=%d split areas=%d method=%s dev=%.4f",
        n,
        p,
        n_split,
        getattr(resolution, "method", "?"),
        max_dev,
    )
    return DichotomyResult(
        assignment=assignment,
        sizes=sizes,
        max_deviation=max_dev,
        nodes_explored=explored,
        backtracks=0,
        relaxations=0,
        final_bounds=np.vstack([L0, U0]),
        feasible=feasible,
        splits=n_split,
        fractions=fractions,
    )
