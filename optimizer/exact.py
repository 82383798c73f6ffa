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
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

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
    allowed_centers: np.ndarray | None = None,
) -> Solution:
    """Solve the MIP to optimality (or to the time limit) with HiGHS.

    ``allowed_centers`` (``(n_candidates,)`` booleans, optional) restricts the candidates
    that may become centers.

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
    nc, n = problem.cost.shape
    p, m = problem.p, problem.m
    time_limit = float(check_time_limit(time_limit, allow_none=False) or 0.0)
    may_host = check_allowed_centers(allowed_centers, nc, p)
    nv = nc * n + nc
    if nv > max_variables:
        raise InputError(
            f"exact MIP would have {nv:,} variables (> max_variables={max_variables:,}); use a "
            "heuristic for instances this large"
        )
    d = problem.cost.rows(np.arange(nc))  # (nc, n)
    allowed = np.isfinite(d)
    cw = problem.objective_weights
    big = np.where(allowed, d * cw[None, :], 0.0)
    c = np.concatenate([big.ravel(), np.zeros(nc)])
    ub = np.concatenate(
        [allowed.ravel().astype(float), np.ones(nc) if may_host is None else may_host * 1.0]
    )
    xi = np.arange(nc * n).reshape(nc, n)  # variable index of x_jv
    yi = nc * n + np.arange(nc)
    rows, cols, vals, lo_b, hi_b = [], [], [], [], []
    r = 0
    # (5.1): each area exactly once
    for v in range(n):
        rows += [r] * nc
        cols += xi[:, v].tolist()
        vals += [1.0] * nc
        lo_b.append(1.0)
        hi_b.append(1.0)
        r += 1
    # x_jv <= y_j
    jj, vv = np.nonzero(allowed)
    k = jj.size
    rr = r + np.arange(k)
    rows += np.repeat(rr, 2).tolist()
    cols += np.column_stack([xi[jj, vv], yi[jj]]).ravel().tolist()
    vals += [1.0, -1.0] * k
    lo_b += [-np.inf] * k
    hi_b += [0.0] * k
    r += k
    # sum y = p
    rows += [r] * nc
    cols += yi.tolist()
    vals += [1.0] * nc
    lo_b.append(float(p))
    hi_b.append(float(p))
    r += 1
    # size bounds
    if problem.capacity is not None:
        for j in range(nc):
            rows += [r] * (n + 1)
            cols += [*xi[j].tolist(), int(yi[j])]
            vals += [*problem.weights[:, 0].tolist(), -float(problem.capacity[j])]
            lo_b.append(-np.inf)
            hi_b.append(0.0)
            r += 1
    else:
        low, high = problem.bounds()
        for j in range(nc):
            for mm in range(m):
                for bound, sign in ((high[mm], 1.0), (low[mm], -1.0)):
                    if sign < 0 and bound <= 0:
                        continue
                    rows += [r] * (n + 1)
                    cols += [*xi[j].tolist(), int(yi[j])]
                    vals += [*(sign * problem.weights[:, mm]).tolist(), -sign * float(bound)]
                    lo_b.append(-np.inf)
                    hi_b.append(0.0)
                    r += 1
    a = sp.csr_matrix((vals, (rows, cols)), shape=(r, nv))
    res = milp(
        c,
        constraints=LinearConstraint(a, np.asarray(lo_b), np.asarray(hi_b)),
        integrality=np.ones(nv),
        bounds=Bounds(np.zeros(nv), ub),
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
    x = np.round(res.x[: nc * n].reshape(nc, n)).astype(bool)
    centers = np.flatnonzero(np.round(res.x[nc * n :]) > 0.5)
    owner = np.argmax(x, axis=0)
    pos = {int(j): t for t, j in enumerate(centers)}
    assignment = np.array([pos[int(j)] for j in owner], dtype=np.int64)
    bound = getattr(res, "mip_dual_bound", None)
    status = "optimal" if res.status == 0 else "time-limit"
    return evaluate(
        problem,
        assignment,
        centers,
        lower_bound=float(bound) if bound is not None else None,
        bound_source="mip",
        method="exact-mip",
        seconds=time.perf_counter() - t0,
        details={"status": status, "mip_gap": float(getattr(res, "mip_gap", np.nan) or 0.0)},
    )
