r"""Exact reference: the territory design MIP solved by HiGHS, for small instances.

With binary :math:`y_j` (candidate ``j`` is a center) and :math:`x_{jv}` (area ``v`` goes to
``j``), the model (ALLOC) of Hess et al. with free centers is

.. math::

    \min \sum_{j,v} c_v d_{jv} x_{jv}
    \quad\text{s.t.}\quad \sum_j x_{jv} = 1 \;(5.1), \quad x_{jv} \le y_j, \quad
    \sum_j y_j = p, \quad L_m y_j \le \sum_v w_{vm} x_{jv} \le U_m y_j \;(5.2),

or, in capacity mode, :math:`\sum_v w_{v1} x_{jv} \le Q_j y_j` (the capacitated p-median).
``n_candidates * n`` binaries: meant for tens to a few hundred areas, to certify heuristics in
tests and benchmarks. The MIP's dual bound is reported as the lower bound.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from optimizer.bounds import build_model
from optimizer.exceptions import InfeasibleError, InputError, SolverError
from optimizer.problem import TerritoryProblem
from optimizer.solution import Solution, evaluate
from optimizer.validation import check_allowed_centers, check_time_limit

__all__ = ["solve_exact"]


def solve_exact(
    problem: TerritoryProblem,
    *,
    time_limit: float = 60.0,
    max_variables: int = 200_000,
    mip_rel_gap: float = 1e-6,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    locked: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
) -> Solution:
    """Solve the MIP to optimality (or to the time limit) with HiGHS.

    Parameters
    ----------
    problem
        The territory problem (the model is :func:`optimizer.bounds.build_model`'s).
    time_limit, mip_rel_gap
        HiGHS limits.
    max_variables
        Refuse models larger than this.
    fixed_centers, allowed_centers, locked
        Side constraints: candidates that must be centers, the mask of candidates that may
        be, and the candidate each area is locked to (-1 = free).
    pairs
        ``(n_candidates, n)`` mask restricting the pairs (a restricted MIP for polishing; its
        dual bound is then not reported).

    Returns
    -------
    Solution
        With ``bound_source="mip"``; ``details["status"]`` says whether optimality was proven.

    Raises
    ------
    InfeasibleError
        When no integer solution exists (bounds too tight).
    InputError
        When the model would exceed ``max_variables``.
    """
    t0 = time.perf_counter()
    _nc, n = problem.cost.shape
    p = problem.p
    time_limit = float(check_time_limit(time_limit, allow_none=False) or 0.0)
    may_host = check_allowed_centers(allowed_centers, _nc, p)
    mdl = build_model(
        problem,
        fixed_centers=fixed_centers,
        allowed_centers=may_host,
        locked=locked,
        pairs=pairs,
    )
    nv = mdl.c.size
    if nv > max_variables:
        raise InputError(
            f"exact MIP would have {nv:,} variables (> max_variables={max_variables:,}); use a "
            "heuristic for instances this large"
        )
    if not mdl.feasible:
        raise InfeasibleError(
            "the territory MIP is infeasible: an area has no permitted center that reaches it",
            {"p": p},
        )
    res = milp(
        mdl.c,
        constraints=LinearConstraint(mdl.a, mdl.row_lo, mdl.row_hi),
        integrality=np.ones(nv),
        bounds=Bounds(mdl.lb, mdl.ub),
        options={"time_limit": float(time_limit), "mip_rel_gap": mip_rel_gap, "disp": False},
    )
    if res.status == 2:
        raise InfeasibleError(
            "the territory MIP is infeasible: no assignment meets the balance/capacity bounds "
            f"with p = {p} (try a larger tolerance)",
            {"p": p, "message": res.message},
        )
    if res.x is None:
        spent = time.perf_counter() - t0
        if res.status == 1:  # iteration or time limit reached
            raise SolverError(
                f"HiGHS found no solution within the time limit of {time_limit:g} s "
                f"(stopped after {spent:.1f} s): raise time_limit or use a heuristic"
            )
        raise SolverError(f"HiGHS stopped after {spent:.1f} s without a solution: {res.message}")
    k = mdl.pair_j.size
    xv = res.x[:k]
    centers = np.flatnonzero(np.round(res.x[k:]) > 0.5)
    owner = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((xv, mdl.pair_v))  # by area, largest x last
    pv = mdl.pair_v[order]
    last = np.r_[pv[1:] != pv[:-1], True]
    owner[pv[last]] = mdl.pair_j[order][last]
    pos = {int(j): t for t, j in enumerate(centers)}
    assignment = np.array([pos[int(j)] for j in owner], dtype=np.int64)
    bound = getattr(res, "mip_dual_bound", None)
    status = "optimal" if res.status == 0 else "time-limit"
    # a restricted model's dual bound bounds the restricted model only: no certificate then
    value = None if pairs is not None or bound is None else float(bound)
    certified = value is not None and bool(np.isfinite(value))
    return evaluate(
        problem,
        assignment,
        centers,
        lower_bound=value if certified else None,
        bound_source="mip" if certified else "none",
        bound_relaxes=mdl.relaxed,
        method="exact-mip",
        seconds=time.perf_counter() - t0,
        details={"status": status, "mip_gap": float(getattr(res, "mip_gap", np.nan) or 0.0)},
    )
