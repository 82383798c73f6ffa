"""Contiguity of territories on an adjacency matrix of the basic areas, and its repair.

Territories "have to be geographically connected" (Kalcsics, Nickel & Schröder 2005, §2 and
§8 "Connectedness": with neighbourhood information the heuristics can be made to "always yield
connected territories (if possible)"). The neighbourhood information is an ``(n, n)``
symmetric boolean ``scipy.sparse`` matrix ``adj`` (positions = area rows) that the caller
builds once, e.g. from polygons (``roadnet.adjacency.polygon_adjacency``) merged with road
adjacency; the optimizer only reads the matrix.

Definitions
    A **piece** of territory ``t`` is a connected component of the subgraph of ``adj``
    induced by the areas assigned to ``t``. The **main** piece is the one holding the
    territory's center area; when the center is no area (an extra point) or lies outside the
    territory, the largest piece (most areas, then lowest area index) is main. Every other
    piece is a **fragment**. A territory is contiguous when it has at most one piece.

Repair (:func:`repair_contiguity`)
    Every fragment ``F`` of territory ``s`` is moved whole to a territory ``t`` whose *main*
    piece touches ``F``, choosing the ``t`` that minimises

    .. math::

        \\Delta(F, t) = \\beta\\, [V(W_s - w_F) + V(W_t + w_F) - V(W_s) - V(W_t)]
        + \\gamma\\, \\frac{\\sum_{v \\in F} c_v (d_{t v} - d_{s v})}{\\bar C}

    with :math:`V(W) = \\sum_m \\max(0, W_m - U_m, L_m - W_m) / \\mu_m` the bound violation of
    one territory (as in :mod:`optimizer.repair`; capacity mode: the overflow above the
    center's capacity), :math:`\\bar C = C / p` the current mean territory cost (total
    weighted distance over ``p``), :math:`\\beta` = ``balance_weight`` and :math:`\\gamma` =
    ``cost_weight``. Both terms are in "mean territories" (of size, of cost). Fragments are
    handled smallest first and sizes are updated after every move. Such a move only ever
    joins a fragment to a main piece, so the number of areas in main pieces grows strictly
    (once locked fragments no longer reconnect, see below) and the repair terminates; it
    repeats passes until the design is contiguous or a pass moves nothing.

    A fragment holding a locked area cannot move: instead the fewest areas of other
    territories that join it to its own territory's main piece (breadth-first search, crossing
    no locked area and no other territory's center area) move to its territory. They may cut
    their own territories, whose fragments later passes repair; locked fragments reconnect in
    the first 20 passes only, so the repair terminates. A fragment stays (and is logged) when
    it is locked and no such path exists, when no other territory's main piece touches it (an
    island, or a group of areas no center's piece reaches), or when every touching
    territory's center cannot reach one of its areas (infinite cost).
    :func:`fragments` lists what is left.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from optimizer.exceptions import InputError
from optimizer.problem import TerritoryProblem

__all__ = [
    "fragments",
    "is_contiguous",
    "main_pieces",
    "repair_contiguity",
    "territory_pieces",
]

log = logging.getLogger(__name__)


def _as_adjacency(adj: Any, n: int) -> sp.csr_matrix:
    """``adj`` as a symmetric boolean CSR matrix without diagonal (validated)."""
    if adj is None:
        raise InputError("adjacency is required: an (n, n) symmetric boolean sparse matrix")
    g = sp.csr_matrix(adj, dtype=bool) if not sp.issparse(adj) else adj.tocsr().astype(bool)
    if g.shape != (n, n):
        raise InputError(f"adjacency must have shape ({n}, {n}) (one row per area), got {g.shape}")
    g = (g + g.T).tocsr()  # symmetric even if the caller passed one triangle
    g.setdiag(False)
    g.eliminate_zeros()
    g.sort_indices()
    return g


def _check_assignment(assignment: Any, n: int, p: int) -> np.ndarray:
    a = np.asarray(assignment, dtype=np.int64)
    if a.shape != (n,):
        raise InputError(f"assignment must have one entry per area ({n}), got shape {a.shape}")
    if n and (a.min() < 0 or a.max() >= p):
        raise InputError(f"assignment has territory indices outside 0..{p - 1}")
    return a


def _piece_labels(g: sp.csr_matrix, a: np.ndarray) -> np.ndarray:
    """Piece label of every area (components of ``g`` restricted to same-territory edges)."""
    n = a.shape[0]
    coo = g.tocoo()
    keep = a[coo.row] == a[coo.col]
    sub = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (coo.row[keep], coo.col[keep])), shape=(n, n)
    )
    _, labels = connected_components(sub, directed=False)
    return labels.astype(np.int64)


def _pieces_from_labels(a: np.ndarray, labels: np.ndarray, p: int) -> list[list[np.ndarray]]:
    n = a.shape[0]
    out: list[list[np.ndarray]] = [[] for _ in range(p)]
    if n == 0:
        return out
    order = np.lexsort((np.arange(n), labels))  # by label, then area index
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for piece in np.split(order, bounds):
        out[int(a[piece[0]])].append(piece)
    for lst in out:
        lst.sort(key=lambda x: (-x.shape[0], int(x[0])))
    return out


def territory_pieces(adj: Any, assignment: np.ndarray, p: int) -> list[list[np.ndarray]]:
    """The connected pieces of every territory.

    Parameters
    ----------
    adj
        ``(n, n)`` symmetric boolean adjacency of the areas (scipy.sparse; a dense array is
        accepted too).
    assignment
        ``(n,)`` territory ``0..p-1`` of every area.
    p
        Number of territories.

    Returns
    -------
    list of list of ndarray
        ``pieces[t]``: the pieces of territory ``t`` as sorted arrays of area indices, largest
        first (ties: lowest first area); ``[]`` for an empty territory.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> path = sp.diags([np.ones(3), np.ones(3)], [-1, 1], shape=(4, 4), dtype=bool)
    >>> [[x.tolist() for x in t] for t in territory_pieces(path, np.array([0, 1, 0, 0]), 2)]
    [[[2, 3], [0]], [[1]]]
    """
    a0 = np.asarray(assignment)
    n = int(a0.shape[0]) if a0.ndim == 1 else -1
    a = _check_assignment(assignment, n, p)
    g = _as_adjacency(adj, n)
    return _pieces_from_labels(a, _piece_labels(g, a), p)


def _main_index(pieces: list[np.ndarray], center_area: int, a: np.ndarray, t: int) -> int:
    """Index in ``pieces`` (of territory ``t``) of the main piece."""
    if center_area >= 0 and a[center_area] == t:
        for i, piece in enumerate(pieces):
            if piece[np.searchsorted(piece, center_area).clip(0, piece.size - 1)] == center_area:
                return i
    return 0


def _centers_area(centers_area: Any, p: int, n: int) -> np.ndarray:
    ca = np.asarray(centers_area, dtype=np.int64)
    if ca.shape != (p,):
        raise InputError(f"centers_area must have one entry per territory ({p}), got {ca.shape}")
    if np.any((ca < -1) | (ca >= n)):
        raise InputError(f"centers_area must hold area indices 0..{n - 1} or -1 (no area)")
    return ca


def main_pieces(adj: Any, assignment: np.ndarray, centers_area: np.ndarray) -> list[np.ndarray]:
    """The main piece of every territory (see the module docstring).

    Parameters
    ----------
    adj
        ``(n, n)`` symmetric boolean adjacency.
    assignment
        ``(n,)`` territory of every area.
    centers_area
        ``(p,)`` area index of each territory's center, -1 when the center is no area
        (``problem.candidates[centers]``).

    Returns
    -------
    list of ndarray
        ``main[t]``: sorted area indices of the main piece (empty for an empty territory).
    """
    a0 = np.asarray(assignment)
    n = int(a0.shape[0]) if a0.ndim == 1 else -1
    ca = _centers_area(centers_area, int(np.asarray(centers_area).shape[0]), max(n, 0))
    p = int(ca.shape[0])
    pieces = territory_pieces(adj, assignment, p)
    a = np.asarray(assignment, dtype=np.int64)
    out = []
    for t in range(p):
        if not pieces[t]:
            out.append(np.zeros(0, dtype=np.int64))
        else:
            out.append(pieces[t][_main_index(pieces[t], int(ca[t]), a, t)])
    return out


def fragments(
    adj: Any, assignment: np.ndarray, centers_area: np.ndarray
) -> list[tuple[int, np.ndarray]]:
    """Every fragment (non-main piece) as ``(territory, sorted area indices)``."""
    a0 = np.asarray(assignment)
    n = int(a0.shape[0]) if a0.ndim == 1 else -1
    ca = _centers_area(centers_area, int(np.asarray(centers_area).shape[0]), max(n, 0))
    p = int(ca.shape[0])
    pieces = territory_pieces(adj, assignment, p)
    a = np.asarray(assignment, dtype=np.int64)
    out: list[tuple[int, np.ndarray]] = []
    for t in range(p):
        if len(pieces[t]) > 1:
            k = _main_index(pieces[t], int(ca[t]), a, t)
            out += [(t, piece) for i, piece in enumerate(pieces[t]) if i != k]
    return out


def is_contiguous(
    adj: Any, assignment: np.ndarray, p: int, centers_area: np.ndarray | None = None
) -> bool:
    """Whether every territory is connected in ``adj`` (at most one piece).

    With ``centers_area`` (``(p,)``, -1 = the center is no area) each center area must also
    be assigned to its own territory. Empty territories count as contiguous.
    """
    a0 = np.asarray(assignment)
    n = int(a0.shape[0]) if a0.ndim == 1 else -1
    a = _check_assignment(assignment, n, p)
    g = _as_adjacency(adj, n)
    labels = _piece_labels(g, a)
    first = np.unique(labels, return_index=True)[1]
    if np.bincount(a[first], minlength=p).max(initial=0) > 1:
        return False
    if centers_area is not None:
        ca = _centers_area(centers_area, p, n)
        has = ca >= 0
        if np.any(a[ca[has]] != np.flatnonzero(has)):
            return False
    return True


def _violation(W: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Bound violation per territory: sum over measures of the excess beyond [lo, hi]."""
    return ((np.maximum(0.0, W - hi) + np.maximum(0.0, lo - W)) / scale).sum(axis=-1)


_MAX_RECONNECT_PASSES = 20  # repair passes in which locked fragments may pull a path


def _connecting_path(
    g: sp.csr_matrix,
    a: np.ndarray,
    fragment: np.ndarray,
    s: int,
    in_main: np.ndarray,
    lock: np.ndarray,
    centers_area: np.ndarray,
) -> np.ndarray | None:
    """The fewest areas of other territories that join ``fragment`` (of territory ``s``) to
    the main piece of ``s`` (breadth-first search; locked areas and other territories'
    center areas are not crossed); ``None`` when there is no such path."""
    n = a.shape[0]
    other_center = np.zeros(n, bool)
    others = (centers_area >= 0) & (np.arange(centers_area.shape[0]) != s)
    other_center[centers_area[others]] = True
    passable = (a == s) | (~lock & ~other_center)
    target = in_main & (a == s)
    parent = np.full(n, -2, dtype=np.int64)
    parent[fragment] = -1
    frontier = fragment
    while frontier.size:
        nbr = np.concatenate([g.indices[g.indptr[v] : g.indptr[v + 1]] for v in frontier])
        src = np.repeat(frontier, np.diff(g.indptr)[frontier])
        keep = (parent[nbr] == -2) & passable[nbr]
        nbr, src = nbr[keep], src[keep]
        nbr, first = np.unique(nbr, return_index=True)
        parent[nbr] = src[first]
        hit = nbr[target[nbr]]
        if hit.size:
            path = []
            v = int(parent[hit[0]])
            while parent[v] != -1:
                path.append(v)
                v = int(parent[v])
            out = np.asarray(path, dtype=np.int64)
            return out[a[out] != s]  # areas of s on the way (other fragments) stay
        frontier = nbr
    return None


def _repair(
    problem: TerritoryProblem,
    assignment: np.ndarray,
    centers: np.ndarray,
    g: sp.csr_matrix,
    locked: np.ndarray | None,
    balance_weight: float,
    cost_weight: float,
    cost_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, int, dict[str, int]]:
    """The repair loop; returns ``(assignment, areas moved, stranded fragments by reason)``."""
    p, n, m = problem.p, problem.n, problem.m
    a = assignment.copy()
    ca = problem.candidates[centers]
    w = problem.weights
    cw = problem.objective_weights
    D = problem.cost.rows(centers) if cost_rows is None else cost_rows  # (p, n)
    lo_c, hi = problem.center_bounds(centers)
    lo = np.zeros((p, m)) if lo_c is None else lo_c
    scale = np.where(problem.mean > 0, problem.mean, 1.0)
    lock = np.zeros(n, bool) if locked is None else locked
    indptr, indices = g.indptr, g.indices
    moved = 0
    stranded: dict[str, int] = {}
    passes = 0
    while True:
        passes += 1
        labels = _piece_labels(g, a)
        pieces = _pieces_from_labels(a, labels, p)
        in_main = np.zeros(n, bool)
        frag_list: list[tuple[int, np.ndarray]] = []
        for t in range(p):
            if not pieces[t]:
                continue
            k = _main_index(pieces[t], int(ca[t]), a, t)
            in_main[pieces[t][k]] = True
            frag_list += [(t, pc) for i, pc in enumerate(pieces[t]) if i != k]
        if not frag_list:
            stranded = {}
            break
        frag_list.sort(key=lambda f: (f[1].shape[0], int(f[1][0])))  # smallest first
        W = np.zeros((p, m))
        np.add.at(W, a, w)
        d_now = D[a, np.arange(n)]
        fin = np.isfinite(d_now)
        total = float(np.dot(cw[fin], d_now[fin]))
        cbar = total / p if total > 0 else 1.0
        stranded = {}
        moved_pass = 0
        for s, F in frag_list:
            if lock[F].any():
                # a locked area cannot leave: join its fragment to the main piece instead,
                # through the fewest areas of other territories (they move to s)
                path = (
                    _connecting_path(g, a, F, s, in_main, lock, ca)
                    if passes < _MAX_RECONNECT_PASSES
                    else None
                )
                if path is None:
                    stranded["locked"] = stranded.get("locked", 0) + 1
                    continue
                for v in path.tolist():
                    W[a[v]] -= w[v]
                    W[s] += w[v]
                a[path] = s
                in_main[F] = True
                in_main[path] = True
                moved_pass += int(path.shape[0])
                continue
            nb = indices[np.concatenate([np.arange(indptr[v], indptr[v + 1]) for v in F])]
            nb = nb[(a[nb] != s) & in_main[nb]]
            targets = np.unique(a[nb])
            if targets.size == 0:
                touching = indices[np.concatenate([np.arange(indptr[v], indptr[v + 1]) for v in F])]
                reason = "island" if np.all(a[touching] == s) else "no main piece adjacent"
                stranded[reason] = stranded.get(reason, 0) + 1
                continue
            dt = D[np.ix_(targets, F)]  # (k, |F|)
            ok = np.isfinite(dt).all(axis=1)
            if not ok.any():
                stranded["unreachable"] = stranded.get("unreachable", 0) + 1
                continue
            targets, dt = targets[ok], dt[ok]
            wF = w[F].sum(axis=0)
            ds = np.where(np.isfinite(D[s, F]), D[s, F], 0.0)
            v_s = _violation(W[s] - wF, lo[s], hi[s], scale) - _violation(W[s], lo[s], hi[s], scale)
            v_t = _violation(W[targets] + wF, lo[targets], hi[targets], scale) - _violation(
                W[targets], lo[targets], hi[targets], scale
            )
            dcost = (dt - ds[None, :]) @ cw[F] / cbar
            score = balance_weight * (v_s + v_t) + cost_weight * dcost
            t = int(targets[int(np.argmin(score))])
            a[F] = t
            W[s] -= wF
            W[t] += wF
            in_main[F] = True
            moved_pass += F.shape[0]
        moved += moved_pass
        if moved_pass == 0:
            break
    return a, moved, stranded


def repair_contiguity(
    problem: TerritoryProblem,
    assignment: np.ndarray,
    centers: np.ndarray,
    adj: Any,
    *,
    locked: np.ndarray | None = None,
    balance_weight: float = 100.0,
    cost_weight: float = 1.0,
) -> tuple[np.ndarray, int]:
    """Move every fragment whole to the best adjacent territory (see the module docstring).

    Parameters
    ----------
    problem
        The territory problem (weights, bounds or capacities, costs).
    assignment
        ``(n,)`` territory of every area.
    centers
        ``(p,)`` candidate index of each territory's center.
    adj
        ``(n, n)`` symmetric boolean adjacency (scipy.sparse).
    locked
        ``(n,)`` booleans: areas that must not move (a fragment holding one stays).
    balance_weight, cost_weight
        :math:`\\beta` and :math:`\\gamma` of the move score. The default 100 : 1 matches the
        local search's default (:class:`optimizer.local.LocalSearchWeights`): a bound
        violation of 1 % of a mean territory weighs as much as a whole mean territory's drive
        time, so balance decides and drive time breaks ties.

    Returns
    -------
    tuple of (ndarray, int)
        The repaired assignment and the number of areas moved. Fragments that had to stay
        are logged (warning) and listed by :func:`fragments`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from optimizer.problem import TerritoryProblem
    >>> xy = np.c_[np.arange(6.0), np.zeros(6)]
    >>> path = sp.diags([np.ones(5), np.ones(5)], [-1, 1], dtype=bool)
    >>> prob = TerritoryProblem.from_points(xy, np.ones(6), 2, tolerance=0.0)
    >>> a, moved = repair_contiguity(prob, np.array([0, 0, 1, 0, 1, 1]), np.array([0, 5]), path)
    >>> a.tolist(), moved
    ([0, 0, 0, 1, 1, 1], 2)
    """
    n, p = problem.n, problem.p
    a = _check_assignment(assignment, n, p)
    c = np.asarray(centers, dtype=np.int64)
    if c.shape != (p,):
        raise InputError(f"centers must have {p} entries, got shape {c.shape}")
    g = _as_adjacency(adj, n)
    lock = None
    if locked is not None:
        lock = np.asarray(locked, dtype=bool)
        if lock.shape != (n,):
            raise InputError(f"locked must be an (n,) boolean mask with n = {n}, got {lock.shape}")
    out, moved, stranded = _repair(problem, a, c, g, lock, balance_weight, cost_weight)
    if stranded:
        log.warning(
            "contiguity repair: %d fragment(s) stay where they are (%s)",
            sum(stranded.values()),
            ", ".join(f"{k}: {v}" for k, v in sorted(stranded.items())),
        )
    log.debug("contiguity repair moved %d area(s)", moved)
    return out, moved
