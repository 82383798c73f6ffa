"""Balance repair: move boundary areas until every territory meets its size bounds.

Optimal split resolution bounds the deviation by the largest split area (Theorem 5.5), which
with ~10 areas per territory is often more than the user's tolerance. This greedy repair
moves single areas between territories, each time the move that most reduces the total bound
violation

.. math::  V(W) = \\sum_t \\sum_m \\max(0,\\, W_{tm} - U_m,\\, L_m - W_{tm}) / \\mu_m

(capacity mode: the overflow above each capacity), breaking ties by the smallest increase of
the weighted cost. An area may only move to one of its ``k`` nearest centers with a finite
cost, centers never move, and a territory is never emptied. It stops when all bounds hold or
no move reduces :math:`V`; a move never increases :math:`V`, so it terminates.
"""

from __future__ import annotations

import numpy as np

from optimizer.problem import TerritoryProblem

__all__ = ["repair_balance"]


def _violation(sizes: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per-territory violation (sum over measures), sizes (p, m), bounds (p, m)."""
    over = np.maximum(0.0, sizes - hi)
    under = np.maximum(0.0, lo - sizes)
    return ((over + under) / scale).sum(axis=-1)


def repair_balance(
    problem: TerritoryProblem,
    assignment: np.ndarray,
    centers: np.ndarray,
    *,
    k_nearest: int = 6,
    max_moves: int | None = None,
    locked: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Greedy single-area moves that reduce the bound violation (see module docstring).

    Parameters
    ----------
    problem
        The territory problem (its bounds or capacities).
    assignment, centers
        Current solution.
    k_nearest
        Territories considered per area (by cost from their centers).
    max_moves
        Upper bound on moves (default ``4 n``).
    locked
        ``(n,)`` booleans: areas that must not move.

    Returns
    -------
    tuple of (ndarray, int)
        The new assignment and the number of moves made.
    """
    p, n, m = problem.p, problem.n, problem.m
    a = np.asarray(assignment, dtype=np.int64).copy()
    w = problem.weights
    lo_c, hi_c = problem.center_bounds(centers)
    lo = np.zeros((p, m)) if lo_c is None else lo_c
    hi = hi_c
    scale = np.where(problem.mean > 0, problem.mean, 1.0)[None, :]
    cost = problem.cost.rows(centers)  # (p, n)
    cw = problem.objective_weights
    k = min(k_nearest, p)
    near = np.argsort(np.where(np.isfinite(cost), cost, np.inf), axis=0)[:k].T  # (n, k)
    reach = np.isfinite(cost[near, np.arange(n)[:, None]])
    movable = np.ones(n, bool)
    center_area = problem.candidates[centers]
    movable[center_area[center_area >= 0]] = False
    if locked is not None:
        movable &= ~np.asarray(locked, bool)
    sizes = np.zeros((p, m))
    np.add.at(sizes, a, w)
    counts = np.bincount(a, minlength=p)
    limit = 4 * n if max_moves is None else int(max_moves)
    moves = 0
    while moves < limit:
        viol = _violation(sizes, lo, hi, scale)
        if viol.sum() <= 1e-12:
            break
        src = a  # (n,)
        # violation change when area v leaves src[v] and joins near[v, j]
        s_src = sizes[src]  # (n, m)
        before_src = viol[src]
        after_src = _violation(s_src - w, lo[src], hi[src], scale)
        dst = near  # (n, k)
        s_dst = sizes[dst]  # (n, k, m)
        before_dst = viol[dst]
        after_dst = _violation(s_dst + w[:, None, :], lo[dst], hi[dst], scale)
        delta = (after_src - before_src)[:, None] + (after_dst - before_dst)
        ok = movable[:, None] & reach & (dst != src[:, None]) & (counts[src] > 1)[:, None]
        delta = np.where(ok, delta, np.inf)
        best = delta.min()
        if not best < -1e-12:
            break
        cand = np.argwhere(delta <= best + 1e-12)
        dcost = cw[cand[:, 0]] * (
            cost[dst[cand[:, 0], cand[:, 1]], cand[:, 0]] - cost[src[cand[:, 0]], cand[:, 0]]
        )
        v, j = cand[int(np.argmin(dcost))]
        t_from, t_to = int(a[v]), int(dst[v, j])
        sizes[t_from] -= w[v]
        sizes[t_to] += w[v]
        counts[t_from] -= 1
        counts[t_to] += 1
        a[v] = t_to
        moves += 1
    return a, moves
