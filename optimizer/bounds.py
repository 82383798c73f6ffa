r"""Global lower bounds for the balanced location–allocation problem.

The model is the one :func:`optimizer.exact.solve_exact` solves (ALLOC of Hess et al. with
free centers, Kalcsics, Nickel & Schröder 2005, §4): binary :math:`y_j` (candidate ``j`` is a
center) and :math:`x_{jv}` (area ``v`` is served by ``j``) for the reachable pairs only,

.. math::

    \min \sum_{j,v} c_v d_{jv} x_{jv} \quad\text{s.t.}\quad
    \sum_j x_{jv} = 1, \quad x_{jv} \le y_j, \quad \sum_j y_j = p, \quad
    L_m y_j \le \sum_v w_{vm} x_{jv} \le U_m y_j

(capacity mode: :math:`\sum_v w_{v1} x_{jv} \le Q_j y_j`), plus the side constraints a run
may have: fixed centers (:math:`y_j = 1`), forbidden centers (:math:`y_j = 0`) and locked
areas (:math:`x_{jv} = 1` for the area's center). A bound on it bounds the cost of **every**
plan that meets the same balance bounds and serves each area from a center that reaches it,
whatever centers it uses.

Two bounds, both valid (``bound <= optimum``) and equal in value when both finish:

* :func:`lp_bound`: the LP relaxation with the strengthening :math:`x_{jv} \le y_j`, solved by
  HiGHS (``scipy.optimize.linprog``); ``n_candidates * n`` variables, meant for up to about
  a thousand areas (measured in ``docs/benchmarks.md``);
* :func:`lagrangian_bound`: the assignment constraints relaxed with multipliers
  :math:`\lambda_v`; for each candidate the remaining problem is a continuous knapsack with a
  lower and an upper size (first measure; the other measures are dropped, which only weakens
  the bound) solved exactly by a ratio sort; the ``p`` cheapest candidates (fixed ones
  first) are opened. Every :math:`\lambda` gives a valid bound; subgradient steps (Polyak,
  Held & Karp 1971) raise it towards the LP value. Anytime, ``O(n_candidates * n)`` memory.

What the bounds leave out (so they bound a relaxation, which is still a valid lower bound):
**contiguity** (never modelled), and with **target shares** the balance bounds (the share of a
free center depends on which centers are chosen). The :class:`Bound` lists what it relaxed.

Numerical safety: an LP value from HiGHS meets its tolerances only approximately, so the
LP bound is lowered by ``1e-7`` relative (plus ``1e-9`` absolute); the model's size bounds are
widened by the same slack :func:`optimizer.solution.evaluate` allows when it checks balance,
so a plan that counts as balanced there is feasible here.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from optimizer.exceptions import InputError, SolverError
from optimizer.problem import TerritoryProblem

__all__ = [
    "LP_MAX_VARIABLES",
    "Bound",
    "Model",
    "build_model",
    "global_lower_bound",
    "lagrangian_bound",
    "lp_bound",
]

log = logging.getLogger(__name__)

#: the LP relaxation is used up to this many variables (pairs + candidates); beyond, the
#: Lagrangian bound. HiGHS' simplex on the strong LP (random points, tolerance 5 %, shared
#: 2-core machine): n = 100 0.5 s, n = 200 9 s, n = 300 34 s (interior point: slower)
LP_MAX_VARIABLES = 25_000
#: relative safety margin subtracted from LP values (solver tolerances)
_LP_SAFETY = 1e-7
#: the slack :func:`optimizer.solution.evaluate` allows on the size bounds
_REL_SLACK = 1e-9
_ABS_SLACK = 1e-9
_LP_METHOD = "highs"
#: the Lagrangian stops after this many steps without a relative gain of 1e-6
_STALL_ITER = 300


@dataclasses.dataclass(frozen=True)
class Bound:
    """A lower bound on the optimum of the whole problem.

    Attributes
    ----------
    value
        The bound, or ``None`` when none could be computed (e.g. an area no allowed center
        reaches: the model has no plan at all).
    source
        ``"lp-relaxation"``, ``"lagrangian"``, ``"mip"`` (a MIP's dual bound) or ``"none"``.
    relaxed
        Constraints of the user's problem the bound leaves out (``"contiguity"`` is always
        listed; ``"balance (target shares)"``, ``"balance of measures 2..m"``).
    seconds
        Time spent.
    details
        Source-specific facts (iterations, LP status, ...).
    """

    value: float | None
    source: str
    relaxed: tuple[str, ...] = ("contiguity",)
    seconds: float = 0.0
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Model:
    """The (ALLOC) model as sparse arrays (variables: pair ``x`` first, then ``y``).

    Attributes
    ----------
    c
        ``(k + nc,)`` objective.
    a
        CSR constraint matrix; ``row_lo <= a @ z <= row_hi``.
    lb, ub
        Variable bounds.
    pair_j, pair_v
        ``(k,)`` candidate and area of each pair variable.
    n_candidates, n
        Sizes.
    relaxed
        Constraints left out (see :class:`Bound`).
    feasible
        ``False`` when an area has no permitted pair (the model has no solution).
    """

    c: np.ndarray
    a: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    pair_j: np.ndarray
    pair_v: np.ndarray
    n_candidates: int
    n: int
    relaxed: tuple[str, ...]
    feasible: bool


def _candidate_bounds(
    problem: TerritoryProblem, measures: str = "all"
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(L, U)`` of shape ``(nc, m)`` valid for every candidate, and what was relaxed."""
    nc = problem.cost.shape[0]
    m = problem.m
    relaxed: list[str] = ["contiguity"]
    lo = np.zeros((nc, m))
    hi = np.full((nc, m), np.inf)
    if problem.capacity is not None:
        hi[:, 0] = problem.capacity
    elif problem.target_share is not None:
        relaxed.append("balance (target shares)")
    else:
        low, high = problem.bounds()
        lo[:] = low[None, :]
        hi[:] = high[None, :]
    lo = np.maximum(lo * (1 - _REL_SLACK) - _ABS_SLACK, 0.0)
    hi = hi * (1 + _REL_SLACK) + _ABS_SLACK
    if measures == "first" and m > 1:
        lo[:, 1:] = 0.0
        hi[:, 1:] = np.inf
        if problem.capacity is None and problem.target_share is None:
            relaxed.append("balance of measures 2..m")
    return lo, hi, tuple(relaxed)


def _side_masks(
    problem: TerritoryProblem,
    fixed_centers: np.ndarray | None,
    allowed_centers: np.ndarray | None,
    locked: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(permitted pairs (nc, n), forced-open (nc,), permitted-open (nc,))."""
    nc, n = problem.cost.shape
    d = problem.cost.rows(np.arange(nc))
    allowed_pairs = np.isfinite(d)
    forced = np.zeros(nc, bool)
    if fixed_centers is not None:
        fc = np.asarray(fixed_centers, dtype=np.int64)
        if fc.size and (fc.min() < 0 or fc.max() >= nc):
            raise InputError(f"fixed_centers must be candidate indices 0..{nc - 1}")
        forced[fc] = True
    may_open = np.ones(nc, bool)
    if allowed_centers is not None:
        ac = np.asarray(allowed_centers, dtype=bool)
        if ac.shape != (nc,):
            raise InputError(f"allowed_centers must have shape ({nc},), got {ac.shape}")
        may_open &= ac
    may_open |= forced
    allowed_pairs &= may_open[:, None]
    if locked is not None:
        lk = np.asarray(locked, dtype=np.int64)
        if lk.shape != (n,):
            raise InputError(f"locked must have one entry per area ({n}), got {lk.shape}")
        cols = np.flatnonzero(lk >= 0)
        keep = np.arange(nc)[:, None] == lk[None, cols]
        allowed_pairs[:, cols] &= keep
    return allowed_pairs, forced, may_open


def build_model(
    problem: TerritoryProblem,
    *,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    locked: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
    strengthen: bool = True,
) -> Model:
    """The (ALLOC) model of the module docstring as sparse arrays.

    Parameters
    ----------
    problem
        The territory problem.
    fixed_centers
        Candidate indices that must be centers.
    allowed_centers
        ``(n_candidates,)`` mask of candidates that may be centers.
    locked
        ``(n,)`` candidate index each area is locked to, -1 = free.
    pairs
        Optional ``(n_candidates, n)`` mask restricting the pair variables further (a
        restricted model for a polishing MIP; its optimum is then no bound).
    strengthen
        Add :math:`x_{jv} \\le y_j` (the strong formulation).
    """
    nc, n = problem.cost.shape
    m = problem.m
    d = problem.cost.rows(np.arange(nc))
    allowed, forced, may_open = _side_masks(problem, fixed_centers, allowed_centers, locked)
    if pairs is not None:
        allowed &= pairs
    lo_b, hi_b, relaxed = _candidate_bounds(problem)
    feasible = bool(allowed.any(axis=0).all())
    jj, vv = np.nonzero(allowed)
    k = jj.size
    cw = problem.objective_weights
    c = np.concatenate([d[jj, vv] * cw[vv], np.zeros(nc)])
    yi = k + np.arange(nc)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    rlo: list[np.ndarray] = []
    rhi: list[np.ndarray] = []
    r = 0
    # each area exactly once
    rows.append(vv.astype(np.int64))
    cols.append(np.arange(k))
    vals.append(np.ones(k))
    rlo.append(np.ones(n))
    rhi.append(np.ones(n))
    r += n
    if strengthen:
        rr = r + np.arange(k)
        rows += [rr, rr]
        cols += [np.arange(k), yi[jj]]
        vals += [np.ones(k), -np.ones(k)]
        rlo.append(np.full(k, -np.inf))
        rhi.append(np.zeros(k))
        r += k
    # sum y = p
    rows.append(np.full(nc, r))
    cols.append(yi)
    vals.append(np.ones(nc))
    rlo.append(np.array([float(problem.p)]))
    rhi.append(np.array([float(problem.p)]))
    r += 1
    # size bounds: L y_j <= sum_v w_vm x_jv <= U y_j
    for mm in range(m):
        w = problem.weights[vv, mm]
        for side in ("upper", "lower"):
            bnd = hi_b[:, mm] if side == "upper" else lo_b[:, mm]
            active = np.isfinite(bnd) if side == "upper" else bnd > 0
            if not active.any():
                continue
            rid = np.full(nc, -1)
            rid[active] = r + np.arange(int(active.sum()))
            sel = active[jj]
            rows += [rid[jj[sel]], rid[active]]
            cols += [np.flatnonzero(sel), yi[active]]
            vals += [w[sel], -bnd[active]]
            cnt = int(active.sum())
            if side == "upper":
                rlo.append(np.full(cnt, -np.inf))
                rhi.append(np.zeros(cnt))
            else:
                rlo.append(np.zeros(cnt))
                rhi.append(np.full(cnt, np.inf))
            r += cnt
    a = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(r, k + nc),
    )
    lb = np.concatenate([np.zeros(k), forced.astype(float)])
    ub = np.concatenate([np.ones(k), may_open.astype(float)])
    return Model(
        c=c,
        a=a,
        row_lo=np.concatenate(rlo),
        row_hi=np.concatenate(rhi),
        lb=lb,
        ub=ub,
        pair_j=jj.astype(np.int64),
        pair_v=vv.astype(np.int64),
        n_candidates=nc,
        n=n,
        relaxed=relaxed,
        feasible=feasible,
    )


def lp_bound(
    problem: TerritoryProblem,
    *,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    locked: np.ndarray | None = None,
    time_limit: float = 60.0,
) -> Bound:
    """The LP relaxation of the strong (ALLOC) model, solved by HiGHS.

    Returns
    -------
    Bound
        ``source="lp-relaxation"``; ``value`` is ``None`` when the model has no solution
        (then no plan meets the bounds with reachable pairs).

    Raises
    ------
    SolverError
        When HiGHS stops without an optimal LP (time limit, numerics).
    """
    t0 = time.perf_counter()
    mdl = build_model(
        problem, fixed_centers=fixed_centers, allowed_centers=allowed_centers, locked=locked
    )
    if not mdl.feasible:
        return Bound(None, "none", mdl.relaxed, time.perf_counter() - t0, {"reason": "no pair"})
    eq = mdl.row_lo == mdl.row_hi
    a_ub_parts, b_ub_parts = [], []
    up = np.isfinite(mdl.row_hi) & ~eq
    lo = np.isfinite(mdl.row_lo) & ~eq
    if up.any():
        a_ub_parts.append(mdl.a[np.flatnonzero(up)])
        b_ub_parts.append(mdl.row_hi[up])
    if lo.any():
        a_ub_parts.append(-mdl.a[np.flatnonzero(lo)])
        b_ub_parts.append(-mdl.row_lo[lo])
    res = linprog(
        mdl.c,
        A_ub=sp.vstack(a_ub_parts).tocsr() if a_ub_parts else None,
        b_ub=np.concatenate(b_ub_parts) if b_ub_parts else None,
        A_eq=mdl.a[np.flatnonzero(eq)],
        b_eq=mdl.row_lo[eq],
        bounds=np.column_stack([mdl.lb, mdl.ub]),
        method=_LP_METHOD,
        options={"time_limit": float(time_limit), "presolve": True},
    )
    secs = time.perf_counter() - t0
    if res.status == 2:  # infeasible LP: no integer plan either
        return Bound(None, "none", mdl.relaxed, secs, {"reason": "LP infeasible"})
    if res.status != 0:
        raise SolverError(f"LP relaxation not solved within {time_limit} s: {res.message}")
    value = float(res.fun)
    value -= _LP_SAFETY * abs(value) + 1e-9
    return Bound(
        value,
        "lp-relaxation",
        mdl.relaxed,
        secs,
        {"variables": int(mdl.c.size), "constraints": int(mdl.a.shape[0])},
    )


def _knapsack_values(
    r: np.ndarray,
    w: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    prefix: int | None = None,
    want_x: bool = False,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per row ``j``: min ``sum_v r_jv x_v`` s.t. ``lo_j <= sum_v w_v x_v <= hi_j``,
    ``0 <= x <= 1`` (``inf`` entries of ``r`` are forbidden items).

    The optimum takes items in ascending ratio ``r / w`` up to a target weight (the weight
    of the negative-ratio items, clipped to ``[lo, hi]``), the last one fractionally. With
    ``prefix`` only that many smallest ratios are sorted (``argpartition``); rows whose
    target lies beyond them are redone with a full sort.

    Returns ``(values (nc,), x (nc, n) or None)`` (``inf`` value when ``lo_j`` is out of
    reach).
    """
    nc, n = r.shape
    vals = np.empty(nc)
    xs = np.zeros((nc, n)) if want_x else None
    pos = w > 0
    wdiv = np.where(pos, w, 1.0)
    k = n if prefix is None or want_x else max(1, min(n, int(prefix)))
    for s in range(0, nc, chunk):
        rr = r[s : s + chunk]
        q = rr.shape[0]
        ok = np.isfinite(rr)
        take0 = ~pos[None, :] & ok & (rr < 0)  # items of weight 0: free when r < 0
        base0 = np.where(take0, rr, 0.0).sum(axis=1)
        ratio = np.where(ok & pos[None, :], rr / wdiv[None, :], np.inf)
        fin = np.isfinite(ratio)
        total = np.where(fin, w[None, :], 0.0).sum(axis=1)
        neg_w = np.where(ratio < 0, w[None, :], 0.0).sum(axis=1)
        row_lo, row_hi = lo[s : s + chunk], hi[s : s + chunk]
        feasible = total >= row_lo - 1e-12
        target = np.minimum(np.clip(neg_w, row_lo, row_hi), total)
        if k < n:
            part = np.argpartition(ratio, k - 1, axis=1)[:, :k]
            sub = np.take_along_axis(ratio, part, axis=1)
            order = np.take_along_axis(part, np.argsort(sub, axis=1, kind="stable"), axis=1)
        else:
            order = np.argsort(ratio, axis=1, kind="stable")
        sr = np.take_along_axis(ratio, order, axis=1)
        rv = np.take_along_axis(rr, order, axis=1)
        sfin = np.isfinite(sr)
        sw = np.where(sfin, w[order], 0.0)
        cw = np.cumsum(sw, axis=1)
        full = (cw <= target[:, None] * (1 + 1e-15)) & sfin
        n_full = full.sum(axis=1)
        prev = np.where(
            n_full > 0, np.take_along_axis(cw, np.maximum(n_full - 1, 0)[:, None], 1)[:, 0], 0.0
        )
        rest = np.maximum(target - prev, 0.0)
        idx = np.minimum(n_full, k - 1)
        wi = np.take_along_axis(sw, idx[:, None], 1)[:, 0]
        has = (n_full < k) & (wi > 0) & (rest > 0)
        frac = np.where(has, np.minimum(rest / np.where(wi > 0, wi, 1.0), 1.0), 0.0)
        ri = np.take_along_axis(rv, idx[:, None], 1)[:, 0]
        val = (
            base0
            + np.where(full, rv, 0.0).sum(axis=1)
            + np.where(frac > 0, frac * np.where(np.isfinite(ri), ri, 0.0), 0.0)
        )
        val = np.where(feasible, val, np.inf)
        if k < n:
            short = (n_full >= k) & (rest > 1e-12 * np.maximum(1.0, target)) & feasible
            if short.any():
                rows = np.flatnonzero(short)
                redo, _ = _knapsack_values(rr[rows], w, row_lo[rows], row_hi[rows])
                val[rows] = redo
        vals[s : s + chunk] = val
        if xs is not None:
            xsorted = full.astype(float)
            xsorted[np.arange(q), idx] += frac
            np.minimum(xsorted, 1.0, out=xsorted)
            xrow = np.zeros((q, n))
            np.put_along_axis(xrow, order, xsorted, axis=1)
            xrow[take0] = 1.0
            xs[s : s + chunk] = xrow
    return vals, xs


def lagrangian_bound(
    problem: TerritoryProblem,
    *,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    locked: np.ndarray | None = None,
    upper: float | None = None,
    time_limit: float = 10.0,
    max_iter: int = 5000,
) -> Bound:
    """Lagrangian bound: the assignment constraints relaxed (see the module docstring).

    Parameters
    ----------
    upper
        The cost of a known plan (the Polyak step's target); ``None`` = estimated.
    time_limit, max_iter
        Stop after this many seconds or subgradient steps (every step's value is a valid
        bound; the best is returned).
    """
    t0 = time.perf_counter()
    nc, _n = problem.cost.shape
    p = problem.p
    allowed, forced, may_open = _side_masks(problem, fixed_centers, allowed_centers, locked)
    lo_b, hi_b, relaxed = _candidate_bounds(problem, measures="first")
    if not allowed.any(axis=0).all() or forced.sum() > p or may_open.sum() < p:
        return Bound(None, "none", relaxed, time.perf_counter() - t0, {"reason": "no plan"})
    d = problem.cost.rows(np.arange(nc))
    cost = np.where(allowed, np.where(allowed, d, 0.0) * problem.objective_weights[None, :], np.inf)
    w = problem.weights[:, 0]
    lo, hi = lo_b[:, 0], hi_b[:, 0]
    # start: every area's cheapest permitted cost (a bound already: the "trivial" one)
    lam = np.min(cost, axis=0)
    ub = upper
    best = -np.inf
    best_it = 0
    theta = 2.0
    stall = 0
    it = 0
    n_forced = int(forced.sum())
    prefix = max(32, int(4 * problem.n / p))
    sig_it = 0
    while it < max_iter and time.perf_counter() - t0 < time_limit:
        it += 1
        red = cost - lam[None, :]
        vals, _ = _knapsack_values(red, w, lo, hi, prefix=prefix)
        # open the forced candidates, then the p - |forced| cheapest of the others
        vals_open = np.where(may_open & ~forced, vals, np.inf)
        chosen = np.flatnonzero(forced)
        rest = p - n_forced
        if rest > 0:
            cand = np.argpartition(vals_open, rest - 1)[:rest] if rest < nc else np.arange(nc)
            chosen = np.concatenate([chosen, cand])
        total = float(lam.sum() + vals[chosen].sum())
        if not np.isfinite(total):
            break  # fewer than p candidates can meet the lower size bound: no plan
        if not np.isfinite(best) or total > best + 1e-6 * max(1.0, abs(best)):
            sig_it = it
        elif it - sig_it > _STALL_ITER:
            break  # converged: no gain of 1e-6 relative for many steps
        if not np.isfinite(best) or total > best + 1e-12 * max(1.0, abs(best)):
            best, best_it, stall = total, it, 0
        else:
            stall += 1
            if stall >= 40:
                theta /= 2.0
                stall = 0
                if theta < 1e-4:
                    break
        _, xs = _knapsack_values(red[chosen], w, lo[chosen], hi[chosen], want_x=True)
        assert xs is not None
        g = 1.0 - xs.sum(axis=0)
        norm = float(g @ g)
        if norm < 1e-12:
            break  # the relaxed solution is feasible: the bound is the optimum
        ub_eff = best + max(abs(best), 1.0) * 0.05 if ub is None or ub <= best else ub
        lam = lam + theta * (ub_eff - total) / norm * g
    secs = time.perf_counter() - t0
    if not np.isfinite(best):
        return Bound(None, "none", relaxed, secs, {"reason": "no plan"})
    # the subproblem values are computed in floating point: a relative margin keeps it safe
    best -= 1e-9 * abs(best) + 1e-9
    return Bound(best, "lagrangian", relaxed, secs, {"iterations": it, "best_iteration": best_it})


def global_lower_bound(
    problem: TerritoryProblem,
    *,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    locked: np.ndarray | None = None,
    method: str = "auto",
    upper: float | None = None,
    time_limit: float = 30.0,
) -> Bound:
    """A lower bound on the optimum of the whole problem (see the module docstring).

    Parameters
    ----------
    method
        ``"lp"``, ``"lagrangian"`` or ``"auto"`` (the LP up to :data:`LP_MAX_VARIABLES`
        variables, else the Lagrangian; the Lagrangian also when the LP hits the time limit).
    upper
        Cost of a known plan (helps the Lagrangian's steps).
    time_limit
        Seconds.
    """
    if method not in ("auto", "lp", "lagrangian"):
        raise InputError(f"method must be 'auto', 'lp' or 'lagrangian', got {method!r}")
    nc, n = problem.cost.shape
    kw: dict[str, Any] = {
        "fixed_centers": fixed_centers,
        "allowed_centers": allowed_centers,
        "locked": locked,
    }
    t0 = time.perf_counter()
    if method == "lp" or (method == "auto" and nc * n + nc <= LP_MAX_VARIABLES):
        try:
            return lp_bound(problem, time_limit=time_limit, **kw)
        except SolverError as exc:
            if method == "lp":
                raise
            log.info("LP bound failed (%s); using the Lagrangian bound", exc)
    left = max(1.0, time_limit - (time.perf_counter() - t0))
    return lagrangian_bound(problem, upper=upper, time_limit=left, **kw)
