r"""Split resolution after a fractional (TRANSP) allocation.

The allocation phase of Hess et al.'s location-allocation method solves the transportation LP
(Kalcsics, Nickel & Schröder, *Towards a unified territory design approach*, §5.1)

.. math::

    \min \sum_{v \in V} \sum_{i \in V_c} w_v d_{iv} x_{iv} \quad \text{(TRANSP)}

    \sum_{i \in V_c} x_{iv} = 1 \quad \forall v \in V \qquad (5.4)

    \sum_{v \in V} w_v x_{iv} = \mu \quad \forall i \in V_c \qquad (5.5)

    x_{iv} \ge 0 \qquad (5.6)

whose optimal solutions are perfectly balanced but not disjoint: a basic area ``v`` with more
than one positive ``x_iv`` is a *split*. A basic solution has at most ``p - 1`` splits. *Split
resolution* (§5.2) rounds every split fully to one of the centers it is shared with, keeping
the territories as balanced as possible, measured by one of

* ``"max"``     -- (SPRES∞) ``max_i |W_i - mu_i|``,
* ``"sum"``     -- (SPRES1) ``sum_i |W_i - mu_i|``,
* ``"squares"`` -- (SPRES2) ``sum_i (W_i - mu_i)**2``,

where ``W_i`` is the size of territory ``i`` after resolution.

Generalisations of the paper made here
--------------------------------------
* ``mu`` is a per-territory target ``mu_i`` (capacities in capacity mode); with all targets
  equal to ``w(V)/p`` this is the paper's model.
* ``m >= 1`` activity measures with optional normalisers ``s_k``: the cost of a territory is
  ``max_k |W_ik - mu_ik| / s_k`` for ``"max"`` and ``"sum"`` and
  ``sum_k ((W_ik - mu_ik) / s_k)**2`` for ``"squares"``; with ``m = 1`` and ``s = 1`` these are
  exactly the paper's ``c(U')``.

Positions, not ids: territories are rows ``0..p-1`` of ``fractions`` (and of ``targets``), basic
areas are its columns ``0..n-1``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, get_args

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.csgraph import breadth_first_order, connected_components

from optimizer.exceptions import InputError

__all__ = [
    "FractionsLike",
    "SplitObjective",
    "SplitResolution",
    "assign_max",
    "resolve_splits",
    "split_areas",
]

log = logging.getLogger(__name__)

SplitObjective = Literal["max", "sum", "squares"]
"""Objective of split resolution: ``"max"`` = SPRES∞, ``"sum"`` = SPRES1, ``"squares"`` =
SPRES2."""

FractionsLike: TypeAlias = Any
"""A ``(p, n)`` scipy.sparse matrix/array, a dense ``(p, n)`` array (ndarray or nested list),
or a ``tuple`` ``(rows, cols, vals)`` of COO triplets (duplicates are summed)."""

#: Absolute tolerance on the column sums ``sum_i x_iv = 1`` (5.4), added to ``p * tol``.
#: LP solvers meet equality constraints to about 1e-7..1e-9.
_SUM_TOL = 1e-6

_Array: TypeAlias = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class SplitResolution:
    """An integral assignment obtained by resolving the splits of a fractional one.

    Attributes
    ----------
    assignment
        ``(n,)`` int: territory position ``0..p-1`` of every basic area.
    sizes
        ``(p, m)`` float: territory sizes per activity measure after resolution.
    objective
        Value of the chosen objective at this solution, recomputed from ``sizes``:
        the aggregate (max or sum) over *all* ``p`` territories of their cost.
    n_splits
        Number of split areas that were resolved.
    method
        ``"optimal-dp"`` when the dynamic programme (5.7)-(5.10) resolved every split (the
        result is optimal); ``"assign-max"`` when AssignMAX resolved all splits, or some of
        them (see ``max_subset_degree`` in :func:`resolve_splits`).
    """

    assignment: np.ndarray
    sizes: np.ndarray
    objective: float
    n_splits: int
    method: str


# --------------------------------------------------------------------------------------------
# Input coercion and validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Entries:
    """Positive fractions (> tol) as COO triplets, duplicates summed."""

    rows: NDArray[np.intp]
    cols: NDArray[np.intp]
    vals: _Array
    p: int
    n: int


def _check_tol(tol: float) -> float:
    tol = float(tol)
    if not np.isfinite(tol) or tol < 0:
        raise InputError(f"tol must be a finite number >= 0, got {tol!r}")
    return tol


def _as_triplets(
    fractions: FractionsLike, p: int | None, n: int | None
) -> tuple[NDArray[np.intp], NDArray[np.intp], _Array, int, int]:
    """Raw COO triplets and the shape ``(p, n)`` of ``fractions``."""
    if isinstance(fractions, tuple):
        if len(fractions) != 3:
            raise InputError(
                "fractions given as a tuple must be (rows, cols, vals) COO triplets, "
                f"got a tuple of length {len(fractions)}"
            )
        rows_in, cols_in, vals_in = (np.asarray(a).ravel() for a in fractions)
        if not (rows_in.shape == cols_in.shape == vals_in.shape):
            raise InputError(
                "fractions (rows, cols, vals) must have equal lengths, got "
                f"{rows_in.size}, {cols_in.size}, {vals_in.size}"
            )
        for name, arr in (("rows", rows_in), ("cols", cols_in)):
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise InputError(f"fractions {name} must be integers, got dtype {arr.dtype}")
            if arr.size and arr.min() < 0:
                raise InputError(f"fractions {name} must be >= 0, got {arr.min()}")
        shape_p = int(rows_in.max()) + 1 if rows_in.size else 0
        shape_n = int(cols_in.max()) + 1 if cols_in.size else 0
        if p is not None:
            if shape_p > p:
                raise InputError(
                    f"fractions rows reference territory {shape_p - 1}, but there are only "
                    f"p = {p} territories (targets)"
                )
            shape_p = p
        if n is not None:
            if shape_n > n:
                raise InputError(
                    f"fractions cols reference area {shape_n - 1}, but there are only "
                    f"n = {n} areas (weights)"
                )
            shape_n = n
        coo = sp.coo_array(
            (vals_in.astype(np.float64), (rows_in, cols_in)), shape=(shape_p, shape_n)
        )
    elif sp.issparse(fractions):
        coo = sp.coo_array(fractions, dtype=np.float64)
    else:
        dense = np.asarray(fractions, dtype=np.float64)
        if dense.ndim != 2:
            raise InputError(f"fractions must be a 2-D (p, n) array, got shape {dense.shape}")
        r, c = np.nonzero(dense)
        coo = sp.coo_array((dense[r, c], (r, c)), shape=dense.shape)
    if coo.ndim != 2:
        raise InputError(f"fractions must be 2-D (p, n), got shape {coo.shape}")
    shape = (int(coo.shape[0]), int(coo.shape[1]))
    if (p is not None and shape[0] != p) or (n is not None and shape[1] != n):
        raise InputError(
            f"fractions must have shape (p, n) = ({p}, {n}) to match targets and weights, "
            f"got {shape}"
        )
    coo.sum_duplicates()
    rows = np.asarray(coo.coords[0], dtype=np.intp)
    cols = np.asarray(coo.coords[1], dtype=np.intp)
    vals = np.asarray(coo.data, dtype=np.float64)
    return rows, cols, vals, shape[0], shape[1]


def _entries(
    fractions: FractionsLike, tol: float, p: int | None = None, n: int | None = None
) -> _Entries:
    """Validate ``fractions`` against (5.4) and (5.6); keep the entries above ``tol``."""
    rows, cols, vals, p_, n_ = _as_triplets(fractions, p, n)
    if p_ < 1:
        raise InputError(f"fractions must have at least one territory (row), got p = {p_}")
    if not np.all(np.isfinite(vals)):
        k = int(np.flatnonzero(~np.isfinite(vals))[0])
        raise InputError(
            f"fractions must be finite, got {vals[k]} for territory {rows[k]}, area {cols[k]}"
        )
    negative = vals < -tol
    if negative.any():
        k = int(np.argmin(vals))
        raise InputError(
            f"fractions must be >= 0 (5.6): {int(negative.sum())} negative entries, the "
            f"smallest {vals[k]:.6g} for territory {rows[k]}, area {cols[k]}"
        )
    sums = np.bincount(cols, weights=vals, minlength=n_)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _SUM_TOL + p_ * tol)
    if bad.size:
        shown = ", ".join(f"area {v}: {sums[v]:.9g}" for v in bad[:5])
        raise InputError(
            "fractions must sum to 1 over the territories of every area (5.4), got "
            f"{bad.size} areas off by more than {_SUM_TOL + p_ * tol:.3g} ({shown}"
            f"{', ...' if bad.size > 5 else ''})"
        )
    keep = vals > tol
    empty = np.flatnonzero(np.bincount(cols[keep], minlength=n_) == 0)
    if empty.size:
        raise InputError(
            f"tol = {tol} leaves {empty.size} areas without a positive fraction (e.g. area "
            f"{empty[0]}); tol must be well below 1/p = {1 / p_:.3g}"
        )
    return _Entries(rows[keep], cols[keep], vals[keep], p_, n_)


def _weights(weights: ArrayLike) -> _Array:
    """``(n, m)`` float64 activity measures, finite and >= 0."""
    W = np.asarray(weights, dtype=np.float64)
    if W.ndim == 1:
        W = W[:, None]
    if W.ndim != 2 or W.shape[1] < 1:
        raise InputError(f"weights must have shape (n,) or (n, m) with m >= 1, got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise InputError("weights must be finite (no NaN or inf)")
    if W.size and W.min() < 0:
        v, k = np.unravel_index(int(np.argmin(W)), W.shape)
        raise InputError(f"weights must be >= 0, got {W[v, k]} for area {v}, measure {k}")
    return W


def _targets(targets: ArrayLike, m: int) -> _Array:
    """``(p, m)`` float64 targets ``mu_i``, finite."""
    mu = np.asarray(targets, dtype=np.float64)
    if mu.ndim == 1:
        mu = mu[:, None]
    if mu.ndim != 2 or mu.shape[0] < 1:
        raise InputError(f"targets must have shape (p,) or (p, m) with p >= 1, got {mu.shape}")
    if mu.shape[1] != m:
        raise InputError(
            f"targets must have one column per activity measure (m = {m} from weights), "
            f"got shape {mu.shape}"
        )
    if not np.all(np.isfinite(mu)):
        raise InputError("targets must be finite (no NaN or inf)")
    return mu


def _inverse_scale(scale: ArrayLike | None, m: int) -> _Array:
    """``(m,)`` float64 ``1 / s_k`` (ones when ``scale`` is None)."""
    if scale is None:
        return np.ones(m)
    s = np.asarray(scale, dtype=np.float64)
    if s.ndim == 0:
        s = np.full(m, float(s))
    if s.shape != (m,):
        raise InputError(f"scale must have shape (m,) = ({m},), got {s.shape}")
    if not np.all(np.isfinite(s)) or s.min() <= 0:
        raise InputError(f"scale must be finite and > 0, got {s.tolist()}")
    return 1.0 / s


def _check_objective(objective: str) -> None:
    if objective not in get_args(SplitObjective):
        raise InputError(
            f"objective must be one of {list(get_args(SplitObjective))}, got {objective!r}"
        )


# --------------------------------------------------------------------------------------------
# Costs
# --------------------------------------------------------------------------------------------


def _costs(W: _Array, mu: _Array, inv_scale: _Array, objective: str) -> _Array:
    """Cost ``c`` of territories of sizes ``W`` (k, m) with targets ``mu`` ((m,) or (k, m)).

    ``max_k |W_k - mu_k| / s_k`` for "max" and "sum", ``sum_k ((W_k - mu_k) / s_k)**2`` for
    "squares".
    """
    dev = (W - mu) * inv_scale
    if objective == "squares":
        return np.einsum("km,km->k", dev, dev)
    return np.abs(dev).max(axis=1)


def _combine(objective: str) -> Callable[[Any, Any], Any]:
    """The generalised sum (+): max for SPRES∞, + for SPRES1 and SPRES2."""
    return np.maximum if objective == "max" else np.add


def _result(
    assignment: NDArray[np.intp],
    W: _Array,
    mu: _Array,
    inv_scale: _Array,
    objective: str,
    n_splits: int,
    method: str,
) -> SplitResolution:
    p, m = mu.shape
    sizes = np.empty((p, m))
    for k in range(m):
        sizes[:, k] = np.bincount(assignment, weights=W[:, k], minlength=p)
    costs = _costs(sizes, mu, inv_scale, objective)
    value = float(costs.max()) if objective == "max" else float(costs.sum())
    return SplitResolution(
        assignment=assignment.astype(np.intp, copy=False),
        sizes=sizes,
        objective=value,
        n_splits=n_splits,
        method=method,
    )


def _argmax_assignment(e: _Entries) -> NDArray[np.intp]:
    """Territory of the largest fraction of every area (ties: lowest territory position)."""
    order = np.lexsort((e.rows, -e.vals, e.cols))
    cols = e.cols[order]
    first = np.ones(cols.size, dtype=bool)
    first[1:] = cols[1:] != cols[:-1]
    assignment = np.full(e.n, -1, dtype=np.intp)
    assignment[cols[first]] = e.rows[order][first]
    return assignment


def _prepare(
    fractions: FractionsLike,
    weights: ArrayLike,
    targets: ArrayLike,
    objective: str,
    scale: ArrayLike | None,
    tol: float,
) -> tuple[_Entries, _Array, _Array, _Array]:
    _check_objective(objective)
    tol = _check_tol(tol)
    W = _weights(weights)
    mu = _targets(targets, W.shape[1])
    inv_scale = _inverse_scale(scale, W.shape[1])
    e = _entries(fractions, tol, p=mu.shape[0], n=W.shape[0])
    return e, W, mu, inv_scale


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def split_areas(fractions: FractionsLike, tol: float = 1e-9) -> NDArray[np.intp]:
    """Positions of the split areas: areas with more than one fraction above ``tol``.

    Parameters
    ----------
    fractions
        ``x_iv``, shape ``(p, n)``: scipy.sparse, dense, or ``(rows, cols, vals)`` triplets;
        ``x_iv >= 0`` and ``sum_i x_iv = 1`` for every area (5.4), (5.6).
    tol
        Entries ``<= tol`` count as 0.

    Returns
    -------
    numpy.ndarray
        Sorted ``(k,)`` int positions of the split areas (columns).

    Raises
    ------
    InputError
        Not 2-D, negative or non-finite entries, column sums different from 1.

    Examples
    --------
    >>> import numpy as np
    >>> split_areas(np.array([[1.0, 0.25, 0.0], [0.0, 0.75, 1.0]])).tolist()
    [1]
    """
    e = _entries(fractions, _check_tol(tol))
    counts = np.bincount(e.cols, minlength=e.n)
    return np.flatnonzero(counts >= 2).astype(np.intp)


def assign_max(
    fractions: FractionsLike,
    weights: ArrayLike,
    targets: ArrayLike,
    *,
    tol: float = 1e-9,
    objective: SplitObjective = "max",
    scale: ArrayLike | None = None,
) -> SplitResolution:
    r"""Resolve every split to the center with its largest fraction (Hess & Samuels' AssignMAX).

    Linear time, and it needs no forest (any fractional solution works). By Theorem 5.1, for
    ``"max"`` with one measure and equal targets ``mu``,

    .. math:: \max_i |W_i - \mu| \le (1 - 1/\bar\delta_V)\, \bar\delta_I\, \bar w

    with ``delta_V`` / ``delta_I`` the largest degree of a split / a center in the split
    adjacency and ``w_bar`` the largest weight of a split; relative to the optimum it has no
    finite guarantee (Schröder 2001), so :func:`resolve_splits` is the default choice.

    Parameters
    ----------
    fractions
        ``x_iv`` of shape ``(p, n)`` (see :func:`split_areas`).
    weights
        ``(n,)`` or ``(n, m)`` activity measures ``w_v >= 0``.
    targets
        ``(p,)`` or ``(p, m)`` targets ``mu_i`` (``w(V)/p`` in the basic model, capacities in
        capacity mode).
    tol
        Entries ``<= tol`` count as 0.
    objective
        Objective reported in :attr:`SplitResolution.objective` (does not change the rule).
    scale
        Optional ``(m,)`` normalisers ``s_k > 0`` of the measures in the cost.

    Returns
    -------
    SplitResolution
        With ``method="assign-max"``; ties go to the lowest territory position.

    Raises
    ------
    InputError
        Invalid shapes or values (see :func:`resolve_splits`).
    """
    e, W, mu, inv_scale = _prepare(fractions, weights, targets, objective, scale, tol)
    counts = np.bincount(e.cols, minlength=e.n)
    assignment = _argmax_assignment(e)
    return _result(
        assignment, W, mu, inv_scale, objective, int(np.count_nonzero(counts >= 2)), "assign-max"
    )


def resolve_splits(
    fractions: FractionsLike,
    weights: ArrayLike,
    targets: ArrayLike,
    *,
    objective: SplitObjective = "max",
    scale: ArrayLike | None = None,
    tol: float = 1e-9,
    max_subset_degree: int = 20,
) -> SplitResolution:
    r"""Optimal split resolution by dynamic programming on the split adjacency (§5.3).

    **Split adjacency.** ``T^S = (U^S, E^S)``: its nodes ``U^S`` are the centers ``V_c`` and
    the splits ``V^S``, its edges ``E^S = {(i, v) : 0 < x_iv < 1}``. For a basic LP solution
    it is a forest. Resolving the splits is partitioning ``T^S`` into subtrees with exactly one
    center each. The weight of a center node is the total weight of the areas uniquely
    assigned to it (``x_iv = 1``), the weight of a split node is ``w_v``. A subtree ``U'``
    containing center ``i`` costs

    .. math::

        c(U') = \max_k |w_k(U') - \mu_{ik}| / s_k \quad \text{("max", "sum")}, \qquad
        c(U') = \sum_k ((w_k(U') - \mu_{ik}) / s_k)^2 \quad \text{("squares")},

    i.e. the paper's ``|w(U') - mu|`` and ``|w(U') - mu|^2`` for one measure, and a partition
    ``pi`` costs ``c(pi) = (+)_i c(T'_i)`` where the generalised sum ``(+)`` is ``max``
    (SPRES∞) or ``+`` (SPRES1, SPRES2).

    **Recursion.** Each connected component of ``T^S`` is rooted at a center of degree 1.
    For a node ``u`` let ``S_u`` be its sons and ``pre(u)`` its father. For a center ``u``,
    ``alpha(u)`` is the optimal cost of ``T_u`` and ``alpha'(u)`` that of
    ``T_u + {pre(u)}``; for a split ``u``, ``beta(u)`` is the optimal cost of ``T_u`` and
    ``beta'(u)`` that of the forest ``T_u - {u}``:

    .. math::

        \alpha(u) &= \min_{S' \subseteq S_u} \Big[ c(\{u\} \cup S')
            \oplus \bigoplus_{u' \in S'} \beta'(u')
            \oplus \bigoplus_{u' \in S_u \setminus S'} \beta(u') \Big]        && (5.7)

        \alpha'(u) &= \min_{S' \subseteq S_u} \Big[ c(\{u, pre(u)\} \cup S')
            \oplus \bigoplus_{u' \in S'} \beta'(u')
            \oplus \bigoplus_{u' \in S_u \setminus S'} \beta(u') \Big]        && (5.8)

        \beta(u) &= \min_{u' \in S_u} \Big[ \alpha'(u')
            \oplus \bigoplus_{u'' \in S_u \setminus \{u'\}} \alpha(u'') \Big] && (5.9)

        \beta'(u) &= \bigoplus_{u' \in S_u} \alpha(u')                        && (5.10)

    (for a leaf center ``alpha(u) = c({u})`` and ``alpha'(u) = c({u, pre(u)})``). The nodes
    are processed in reverse breadth-first order (no recursion, so deep forests are fine);
    ``alpha(root)`` is the optimum of a component, and the optimal partition is recovered by
    backtracking the minimising ``S'`` of (5.7)/(5.8) and ``u'`` of (5.9). The components are
    independent, so the optimum is the ``(+)`` of the components' optima and of the fixed
    costs of the centers without splits (which still count in the objective). The subsets of
    (5.7)/(5.8) are enumerated in ``O(2^d)`` time and memory for a center with ``d`` sons,
    so the running time is ``O(dI 2^dI |V_c| + dV |V^S|)`` with ``dI``, ``dV`` the largest
    center and split degrees (Theorem 5.3): linear for bounded degrees.

    For ``"max"`` with one measure and equal targets, the optimum satisfies
    ``max_i |W_i - mu| <= max{w_v : v split}`` (Theorem 5.5), better than AssignMAX's
    Theorem 5.1 bound.

    Parameters
    ----------
    fractions
        ``x_iv`` of shape ``(p, n)``: a scipy.sparse matrix/array, a dense array, or a tuple
        ``(rows, cols, vals)`` of COO triplets. ``x_iv >= 0`` and ``sum_i x_iv = 1`` for every
        area; an area with a single entry above ``tol`` is uniquely assigned.
    weights
        ``(n,)`` or ``(n, m)`` activity measures ``w_v >= 0``.
    targets
        ``(p,)`` or ``(p, m)`` target size ``mu_i`` of every territory (``w(V)/p`` in the basic
        model; the capacities in capacity mode).
    objective
        ``"max"`` (SPRES∞), ``"sum"`` (SPRES1) or ``"squares"`` (SPRES2).
    scale
        Optional ``(m,)`` normalisers ``s_k > 0``; default 1.
    tol
        Entries ``<= tol`` count as 0; column sums must be 1 within ``1e-6 + p * tol``.
    max_subset_degree
        Largest number of split sons of a center for which the ``2^d`` subsets of (5.7)/(5.8)
        are enumerated. A component of ``T^S`` containing a center with more split sons
        (i.e. adjacent to more than ``max_subset_degree + 1`` splits, since components are
        rooted at a leaf) is resolved by AssignMAX instead, a warning is logged, and the
        result has ``method="assign-max"``; the other components stay optimal.

    Returns
    -------
    SplitResolution
        The assignment, sizes and objective value (recomputed from the sizes), with
        ``method="optimal-dp"`` when every component was solved by (5.7)-(5.10).

    Raises
    ------
    InputError
        Shapes that disagree, negative or non-finite values, column sums different from 1,
        an unknown ``objective``, or a split adjacency with a cycle. A cycle means that the
        fractions are not a basic LP solution (e.g. from an interior-point method without
        crossover); cycles are not broken silently because every way of breaking one forbids
        a split from going to one of its centers. Solve TRANSP with a simplex method
        (``linprog(method="highs-ds")``) or with crossover to obtain a basic solution.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 0.6, 0.0], [0.0, 0.4, 1.0]])
    >>> res = resolve_splits(x, weights=[4.0, 5.0, 6.0], targets=[7.5, 7.5])
    >>> res.assignment.tolist(), res.objective
    ([0, 0, 1], 1.5)
    """
    if isinstance(max_subset_degree, bool) or not isinstance(max_subset_degree, int | np.integer):
        raise InputError(f"max_subset_degree must be an int >= 0, got {max_subset_degree!r}")
    if max_subset_degree < 0:
        raise InputError(f"max_subset_degree must be >= 0, got {max_subset_degree}")
    e, W, mu, inv_scale = _prepare(fractions, weights, targets, objective, scale, tol)
    p, m = mu.shape
    counts = np.bincount(e.cols, minlength=e.n)
    is_split = counts >= 2
    split_pos = np.flatnonzero(is_split).astype(np.intp)
    k = split_pos.size

    # Uniquely assigned areas keep their only center; splits are decided below.
    assignment = np.full(e.n, -1, dtype=np.intp)
    unique = ~is_split[e.cols]
    assignment[e.cols[unique]] = e.rows[unique]
    if k == 0:
        return _result(assignment, W, mu, inv_scale, objective, 0, "optimal-dp")

    # Split adjacency: nodes 0..p-1 are centers, p..p+k-1 splits; edges = fractional x_iv.
    split_index = np.full(e.n, -1, dtype=np.intp)
    split_index[split_pos] = np.arange(k)
    on_split = is_split[e.cols]
    edge_c = e.rows[on_split]
    edge_s = split_index[e.cols[on_split]] + p
    n_nodes = p + k
    adj = sp.csr_array(
        (np.ones(2 * edge_c.size), (np.r_[edge_c, edge_s], np.r_[edge_s, edge_c])),
        shape=(n_nodes, n_nodes),
    )
    n_comp, labels = connected_components(adj, directed=False)
    if edge_c.size != n_nodes - n_comp:
        _raise_cycle(labels, edge_c, edge_s, p, split_pos)

    # Node weights: a center carries its uniquely assigned areas, a split its own weight.
    node_w = np.empty((n_nodes, m))
    for j in range(m):
        node_w[:p, j] = np.bincount(e.rows[unique], weights=W[e.cols[unique], j], minlength=p)
    node_w[p:] = W[split_pos]

    degree = np.bincount(np.r_[edge_c, edge_s], minlength=n_nodes)
    method = "optimal-dp"
    fallback = np.zeros(n_nodes, dtype=bool)
    # Root every component that has a split at a leaf center (degree 1: exists in any tree
    # with an edge, since splits have degree >= 2).
    leaf_centers = np.flatnonzero(degree[:p] == 1)
    _, first = np.unique(labels[leaf_centers], return_index=True)
    dp = _SplitDP(adj, node_w, mu, inv_scale, objective, p, max_subset_degree)
    for root in leaf_centers[first]:
        order, pred = breadth_first_order(adj, int(root), directed=False)
        if not dp.solve(order, pred):
            fallback[order] = True
            continue
        dp.backtrack(order, split_pos, assignment)

    if fallback.any():
        method = "assign-max"
        bad = np.flatnonzero(fallback[:p] & (degree[:p] - 1 > max_subset_degree))
        log.warning(
            "split resolution: centers %s are adjacent to more than max_subset_degree + 1 = %d "
            "splits; their components (%d splits) are resolved by AssignMAX",
            bad[:10].tolist(),
            max_subset_degree + 1,
            int(fallback[p:].sum()),
        )
        by_max = _argmax_assignment(e)
        rescued = split_pos[fallback[p:]]
        assignment[rescued] = by_max[rescued]
    return _result(assignment, W, mu, inv_scale, objective, k, method)


def _raise_cycle(
    labels: NDArray[np.int32],
    edge_c: NDArray[np.intp],
    edge_s: NDArray[np.intp],
    p: int,
    split_pos: NDArray[np.intp],
) -> None:
    """Raise InputError naming a component of the split adjacency that contains a cycle."""
    n_edges = np.bincount(labels[edge_c], minlength=labels.max() + 1)
    n_nodes = np.bincount(labels, minlength=labels.max() + 1)
    comp = int(np.flatnonzero(n_edges > n_nodes - 1)[0])
    members = np.flatnonzero(labels == comp)
    centers = members[members < p]
    areas = split_pos[members[members >= p] - p]
    raise InputError(
        "the split adjacency must be a forest (a basic LP solution), but the component with "
        f"territories {centers[:10].tolist()}{' ...' if centers.size > 10 else ''} and split "
        f"areas {areas[:10].tolist()}{' ...' if areas.size > 10 else ''} has "
        f"{int(n_edges[comp])} fractional entries on {members.size} nodes (a tree has "
        f"{members.size - 1}); solve TRANSP with a simplex method or crossover "
        "(e.g. linprog(method='highs-ds'))"
    )


class _SplitDP:
    """Tables of the recursion (5.7)-(5.10) over the nodes of the split adjacency."""

    def __init__(
        self,
        adj: Any,
        node_w: _Array,
        mu: _Array,
        inv_scale: _Array,
        objective: str,
        p: int,
        max_subset_degree: int,
    ) -> None:
        self.indptr = np.asarray(adj.indptr)
        self.indices = np.asarray(adj.indices)
        self.node_w = node_w
        self.mu = mu
        self.inv_scale = inv_scale
        self.objective = objective
        self.op = _combine(objective)
        self.p = p
        self.limit = max_subset_degree
        n_nodes = node_w.shape[0]
        self.alpha = np.zeros(n_nodes)  # alpha (centers) / beta (splits)
        self.alpha_pre = np.zeros(n_nodes)  # alpha' (centers) / beta' (splits)
        self.mask = np.zeros(n_nodes, dtype=np.int64)  # argmin S' of (5.7), bit j = son j
        self.mask_pre = np.zeros(n_nodes, dtype=np.int64)  # argmin S' of (5.8)
        self.choice = np.full(n_nodes, -1, dtype=np.intp)  # argmin u' of (5.9)
        self.sons: dict[int, NDArray[np.intp]] = {}
        self.parent: dict[int, int] = {}

    def solve(self, order: NDArray[np.int32], pred: NDArray[np.int32]) -> bool:
        """Fill the tables bottom-up for one component; False if a center has too many sons."""
        p, op = self.p, self.op
        for u in order.tolist():
            nbrs = self.indices[self.indptr[u] : self.indptr[u + 1]]
            par = int(pred[u])
            self.parent[u] = par
            sons = nbrs[nbrs != par] if par >= 0 else nbrs
            self.sons[u] = sons
            if u < p and sons.size > self.limit:
                return False
        for u in order[::-1].tolist():
            sons = self.sons[u]
            if u >= p:
                # Split node: sons are centers. (5.10) and (5.9).
                a = self.alpha[sons]
                ap = self.alpha_pre[sons]
                if self.objective == "max":
                    prefix = np.maximum.accumulate(np.r_[0.0, a[:-1]])
                    suffix = np.maximum.accumulate(np.r_[a[1:], 0.0][::-1])[::-1]
                    vals = np.maximum(ap, np.maximum(prefix, suffix))
                    self.alpha_pre[u] = a.max()
                else:
                    total = a.sum()
                    vals = ap + (total - a)
                    self.alpha_pre[u] = total
                j = int(np.argmin(vals))
                self.alpha[u] = vals[j]
                self.choice[u] = sons[j]
                continue
            # Center node: sons are splits. Enumerate the subsets S' of S_u by doubling: bit j
            # of a subset's index = son j is in S'.
            sub_w = np.zeros((1, self.node_w.shape[1]))
            agg = np.zeros(1)  # 0 is the identity of (+) on costs >= 0
            for s in sons.tolist():
                sub_w = np.concatenate([sub_w, sub_w + self.node_w[s]])
                agg = np.concatenate([op(agg, self.alpha[s]), op(agg, self.alpha_pre[s])])
            W = self.node_w[u] + sub_w
            tot = op(_costs(W, self.mu[u], self.inv_scale, self.objective), agg)  # (5.7)
            j = int(np.argmin(tot))
            self.alpha[u] = tot[j]
            self.mask[u] = j
            par = self.parent[u]
            if par >= 0:
                W += self.node_w[par]
                tot = op(_costs(W, self.mu[u], self.inv_scale, self.objective), agg)  # (5.8)
                j = int(np.argmin(tot))
                self.alpha_pre[u] = tot[j]
                self.mask_pre[u] = j
        return True

    def backtrack(
        self, order: NDArray[np.int32], split_pos: NDArray[np.intp], assignment: NDArray[np.intp]
    ) -> None:
        """Top-down recovery of the optimal partition of one solved component."""
        p = self.p
        takes_parent: dict[int, bool] = {
            int(order[0]): False
        }  # True: alpha' (5.8), False: alpha (5.7)
        for u in order.tolist():
            if u >= p:
                continue
            mask = int(self.mask_pre[u] if takes_parent[u] else self.mask[u])
            for bit, s in enumerate(self.sons[u].tolist()):
                # s in S': split s goes to u and its sons use alpha; otherwise beta(s): the
                # son chosen by (5.9) takes s (alpha'), the other sons use alpha.
                owner = u if mask >> bit & 1 else int(self.choice[s])
                assignment[split_pos[s - p]] = owner
                for c in self.sons[s].tolist():
                    takes_parent[c] = c == owner
