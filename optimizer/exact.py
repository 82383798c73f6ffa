r"""Exact reference: the territory design MIP solved by HiGHS, for small instances.

With binary :math:`y_j` (candidate ``j`` is a center) and :math:`x_{jv}` (area ``v`` goes to
``j``), the model (ALLOC) of Hess et al. with free centers is

.. math::

    \min \sum_{j,v} c_v d_{jv} x_{jv}
    \quad\text{s.t.}\quad \sum_j x_{jv} = 1 \;(5.1), \quad x_{jv} \le y_j, \quad
    \sum_j y_j = p, \quad L_m y_j \le \sum_v w_{vm} x_{jv} \le U_m y_j \;(5.2),

or, in capacity mode, :math:`\sum_v w_{v1} x_{jv} \le Q_j y_j` (the capacitated p-median).
``n_candidates * n`` binaries: meant for tens to a few hundred areas, to certify heuristics in
tests and benchmarks and to polish them (:mod:`optimizer.polish`). The MIP's dual bound is
reported as the lower bound.

The model is solved by HiGHS through its own Python API (``highspy``), which, unlike
``scipy.optimize.milp``, takes a starting solution: a heuristic plan passed as ``initial`` is
HiGHS's first incumbent, so the branch and bound prunes with its cost from the start and a
time-limited run never ends with a plan worse than it.

Contiguity (:func:`solve_exact` with ``adjacency``)
    The *rooted* contiguity model (Validi & Buchanan 2022; Oehrlein & Haunert 2017): every
    candidate that may be a center is an area ``a_j``, which belongs to its own territory
    (:math:`x_{j a_j} = y_j`), and every area ``v`` of territory ``j`` in the component of the
    adjacency that holds ``a_j`` is joined to ``a_j`` inside the territory. Areas in other
    components (islands) go to ``j`` only as whole components (:math:`x_{ju} = x_{jv}` for
    ``u``, ``v`` of one such component): a whole island is the piece that
    :func:`optimizer.contiguity.repair_contiguity` and the local search leave alone, so the
    model's plans have no fragment that could be joined. Connectivity is imposed by
    vertex-separator inequalities

    .. math::

        x_{jv} \le \sum_{c \in C} x_{jc}

    for every set ``C`` separating ``v`` from ``a_j`` (``v`` not in ``C``, ``a_j`` not in
    ``C``): the neighbours of ``v`` a priori, and, lazily, ``C = N(S)`` for every piece ``S``
    of a MIP plan that is cut off from its center (for every candidate whose center area is
    beyond ``S \cup N(S)``). The MIP is solved again with the new cuts (the best contiguous
    plan so far as its start) until its plan is contiguous; every round's dual bound bounds
    the contiguous optimum from below, because each round relaxes the contiguous model.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import sys
import threading
import time
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from optimizer.bounds import Model, build_model
from optimizer.exceptions import InfeasibleError, InputError, SolverError
from optimizer.problem import TerritoryProblem
from optimizer.solution import Solution, evaluate
from optimizer.validation import check_allowed_centers, check_time_limit

__all__ = ["in_contiguity_model", "solve_exact"]

log = logging.getLogger(__name__)

_BANNER_LOCK = threading.Lock()
_banner_done = False
#: HiGHS options for every run. HiGHS 1.16's presolve spends 13 s on the 29k-binary Porto
#: model (170 areas) without removing a row or a column, a large part of a polishing budget;
#: the (ALLOC) model has nothing for it to remove (measured in scripts/bench_exact.py)
_OPTIONS: dict[str, Any] = {"presolve": "off"}
#: relative MIP gap of the contiguity rounds whose plans still get cut off (a round only
#: needs a plan to separate; the last round proves at the caller's gap)
_LOOSE_GAP = 0.005
#: rounds of the contiguity cut loop at most
_MAX_ROUNDS = 200


def _new_highs() -> highspy.Highs:
    """A quiet HiGHS instance. The C++ library prints a banner to the process's stdout on
    the first construction in a process (before any option can be set): that one
    construction runs with file descriptor 1 pointed at /dev/null, so command-line output
    (JSON on stdout) stays clean."""
    global _banner_done
    with _BANNER_LOCK:
        if not _banner_done:
            sys.stdout.flush()
            saved = os.dup(1)
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, 1)
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(null)
            _banner_done = True
        else:
            h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


@dataclasses.dataclass
class _Run:
    status: str  # "optimal", "time-limit", "infeasible", "no-solution"
    x: np.ndarray | None
    dual_bound: float | None
    gap: float
    message: str


def _run_highs(
    c: np.ndarray,
    a: sp.csr_matrix,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    *,
    time_limit: float,
    mip_rel_gap: float,
    start: np.ndarray | None,
    options: dict[str, Any] | None = None,
    soft_time_limit: float | None = None,
    soft_stall: float = 0.0,
    soft_min_gap: float = 0.0,
) -> _Run:
    """Solve the all-integer MIP ``min c z, row_lo <= a z <= row_hi, lb <= z <= ub``
    (``soft_time_limit``: interrupt once past it with a plan, see :func:`solve_exact`)."""
    nv = c.size
    a = sp.csc_matrix(a)  # column-wise, as HiGHS stores it (and scipy's milp passes it)
    a.sort_indices()
    lp = highspy.HighsLp()
    lp.num_col_ = nv
    lp.num_row_ = a.shape[0]
    lp.col_cost_ = np.asarray(c, dtype=float)
    lp.col_lower_ = np.asarray(lb, dtype=float)
    lp.col_upper_ = np.asarray(ub, dtype=float)
    lp.row_lower_ = np.asarray(row_lo, dtype=float)
    lp.row_upper_ = np.asarray(row_hi, dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = nv
    lp.a_matrix_.num_row_ = a.shape[0]
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(float)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * nv
    h = _new_highs()
    h.setOptionValue("time_limit", float(max(time_limit, 0.0)))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    for key, val in {**_OPTIONS, **(options or {})}.items():
        h.setOptionValue(key, val)
    if h.passModel(lp) == highspy.HighsStatus.kError:
        raise SolverError("HiGHS rejected the territory MIP (passModel failed)")
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = np.asarray(start, dtype=float)
        sol.value_valid = True
        h.setSolution(sol)
    if soft_time_limit is not None:
        soft = float(soft_time_limit)
        last = [np.inf, 0.0]  # the incumbent's cost and when it was found

        def _stop_with_a_plan(event: Any) -> None:
            out = event.data_out
            now, primal = float(out.running_time), float(out.mip_primal_bound)
            if primal < last[0]:
                last[0], last[1] = primal, now
            if (
                now >= soft
                and np.isfinite(primal)
                and now - last[1] >= soft_stall
                and float(out.mip_gap) >= soft_min_gap
            ):
                event.interrupt()

        h.cbMipInterrupt.subscribe(_stop_with_a_plan)
    h.run()
    ms = h.getModelStatus()
    info = h.getInfo()
    has_x = info.primal_solution_status == 2  # kSolutionStatusFeasible
    x = np.asarray(h.getSolution().col_value, dtype=float) if has_x else None
    bound = float(info.mip_dual_bound)
    dual = bound if np.isfinite(bound) else None
    msg = h.modelStatusToString(ms)
    if ms == highspy.HighsModelStatus.kOptimal:
        status = "optimal"
    elif ms == highspy.HighsModelStatus.kInfeasible:
        status = "infeasible"
    elif x is not None and ms == highspy.HighsModelStatus.kInterrupt:
        status = "soft-limit"
    elif x is not None:
        status = "time-limit"
    else:
        status = "no-solution"
    return _Run(status, x, dual, float(info.mip_gap), msg)


def _pair_index(mdl: Model) -> np.ndarray:
    """``(n_candidates, n)`` index of each pair variable, -1 where there is none."""
    idx = np.full((mdl.n_candidates, mdl.n), -1, dtype=np.int64)
    idx[mdl.pair_j, mdl.pair_v] = np.arange(mdl.pair_j.size)
    return idx


def _start_vector(
    mdl: Model, idx: np.ndarray, initial: Solution | None, lb: np.ndarray, ub: np.ndarray
) -> np.ndarray | None:
    """The plan ``initial`` as a vector of the model, ``None`` when it is not one."""
    if initial is None:
        return None
    k = mdl.pair_j.size
    centers = np.asarray(initial.centers, dtype=np.int64)
    a = np.asarray(initial.assignment, dtype=np.int64)
    if centers.size == 0 or a.shape != (mdl.n,):
        return None
    cols = idx[centers[a], np.arange(mdl.n)]
    if np.any(cols < 0):
        return None
    z = np.zeros(k + mdl.n_candidates)
    z[cols] = 1.0
    z[k + centers] = 1.0
    if np.any(z < lb - 1e-9) or np.any(z > ub + 1e-9):
        return None
    return z


def _decode(mdl: Model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(assignment, centers) of a MIP vector."""
    k = mdl.pair_j.size
    xv = x[:k]
    centers = np.flatnonzero(np.round(x[k:]) > 0.5)
    owner = np.full(mdl.n, -1, dtype=np.int64)
    order = np.lexsort((xv, mdl.pair_v))  # by area, largest x last
    pv = mdl.pair_v[order]
    last = np.r_[pv[1:] != pv[:-1], True]
    owner[pv[last]] = mdl.pair_j[order][last]
    pos = {int(j): t for t, j in enumerate(centers)}
    assignment = np.array([pos.get(int(j), -1) for j in owner], dtype=np.int64)
    if np.any(assignment < 0):
        raise SolverError("HiGHS returned a plan that assigns an area to a closed center")
    return assignment, centers


def _as_graph(adjacency: Any, n: int) -> sp.csr_matrix:
    from optimizer.contiguity import _as_adjacency

    return _as_adjacency(adjacency, n)


def in_contiguity_model(
    problem: TerritoryProblem, assignment: np.ndarray, centers: np.ndarray, adjacency: Any
) -> bool:
    """Whether a plan is a solution of the rooted contiguity model (module docstring).

    Every center is an area in its own territory; in the component of the adjacency that
    holds a territory's center area, the territory is connected; elsewhere it holds whole
    components only. The contiguous MIP's optimum is at most the cost of every such plan
    within the balance bounds.
    """
    n = problem.n
    g = _as_graph(adjacency, n)
    a = np.asarray(assignment, dtype=np.int64)
    c = np.asarray(centers, dtype=np.int64)
    ca = problem.candidates[c]
    if np.any(ca < 0) or np.any(a[ca] != np.arange(c.size)):
        return False
    _, comp = connected_components(g, directed=False)
    from optimizer.contiguity import territory_pieces

    for t, pieces in enumerate(territory_pieces(g, a, c.size)):
        home = comp[ca[t]]
        at_home = [x for x in pieces if comp[x[0]] == home]
        if len(at_home) != 1:
            return False
        for x in pieces:
            if comp[x[0]] != home and x.size != int(np.sum(comp == comp[x[0]])):
                return False
    return True


def _contiguity_rows(
    problem: TerritoryProblem, mdl: Model, idx: np.ndarray, g: sp.csr_matrix
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The a-priori rows of the rooted model: center in its territory, whole islands,
    neighbour cuts. Returns ``(rows, lo, hi, comp, center_area)``."""
    nc = mdl.n_candidates
    k = mdl.pair_j.size
    ca = problem.candidates[:nc]
    _, comp = connected_components(g, directed=False)
    r_idx: list[np.ndarray] = []
    c_idx: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lo: list[float] = []
    hi: list[float] = []
    r = 0

    def add(cols: np.ndarray, coef: np.ndarray, low: float, high: float) -> None:
        nonlocal r
        keep = cols >= 0
        r_idx.append(np.full(int(keep.sum()), r))
        c_idx.append(cols[keep])
        vals.append(coef[keep])
        lo.append(low)
        hi.append(high)
        r += 1

    comps = [np.flatnonzero(comp == q) for q in range(int(comp.max(initial=-1)) + 1)]
    indptr, indices = g.indptr, g.indices
    for j in range(nc):
        if mdl.ub[k + j] < 0.5:
            continue
        aj = int(ca[j])
        # the center area in its own territory: x_{j a_j} = y_j
        add(np.array([idx[j, aj], k + j]), np.array([1.0, -1.0]), 0.0, 0.0)
        home = comp[aj]
        for q, members in enumerate(comps):
            if q == home or members.size < 2:
                continue
            cols = idx[j, members]
            if np.all(cols < 0):
                continue
            for u, v in itertools.pairwise(members):
                add(np.array([idx[j, u], idx[j, v]]), np.array([1.0, -1.0]), 0.0, 0.0)
        # neighbour cuts: an area of j other than a_j has a neighbour in j
        for v in comps[home]:
            if v == aj or idx[j, v] < 0:
                continue
            nb = indices[indptr[v] : indptr[v + 1]]
            cols = np.r_[idx[j, v], idx[j, nb]]
            add(cols, np.r_[1.0, -np.ones(nb.size)], -np.inf, 0.0)
    m = sp.csr_matrix(
        (
            np.concatenate(vals) if vals else np.zeros(0),
            (
                np.concatenate(r_idx) if r_idx else np.zeros(0, int),
                np.concatenate(c_idx) if c_idx else np.zeros(0, int),
            ),
        ),
        shape=(r, mdl.c.size),
    )
    return m, np.asarray(lo), np.asarray(hi), comp, ca


def _repaired(
    problem: TerritoryProblem,
    mdl: Model,
    assignment: np.ndarray,
    centers: np.ndarray,
    g: sp.csr_matrix,
    left: float,
) -> tuple[float, np.ndarray, np.ndarray] | None:
    """A round's plan made contiguous by the local search (repair, then moves that keep
    contiguity and balance), when it is then a plan of the model within the bounds."""
    from optimizer.local import local_search

    if left < 1.0:
        return None
    res = local_search(
        problem,
        assignment,
        centers,
        adjacency=g,
        require_contiguity=True,
        time_limit=min(2.0, 0.1 * left),
    )
    sol = evaluate(problem, res.assignment, res.centers)
    if not sol.within_bounds or not in_contiguity_model(problem, sol.assignment, sol.centers, g):
        return None
    k = mdl.pair_j.size
    cols = _pair_index(mdl)[sol.centers[sol.assignment], np.arange(mdl.n)]
    forced = np.flatnonzero(mdl.lb[k:] > 0.5)
    if (
        np.any(cols < 0)
        or np.any(mdl.ub[k + sol.centers] < 0.5)
        or not np.isin(forced, sol.centers).all()
    ):
        return None  # the moves broke a lock, a forbidden or a fixed center
    return float(sol.cost), np.asarray(sol.assignment), np.asarray(sol.centers)


def _separate(
    g: sp.csr_matrix,
    comp: np.ndarray,
    ca: np.ndarray,
    idx: np.ndarray,
    open_j: np.ndarray,
    assignment: np.ndarray,
    centers: np.ndarray,
    n_vars: int,
) -> tuple[sp.csr_matrix, int]:
    """Separator cuts for the pieces of a plan cut off from their center (rows ``<= 0``);
    returns ``(rows, pieces found)``."""
    from optimizer.contiguity import territory_pieces

    n = g.shape[0]
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    r = 0
    found = 0
    for t, pieces in enumerate(territory_pieces(g, assignment, centers.size)):
        home = comp[ca[centers[t]]]
        for piece in pieces:
            if comp[piece[0]] != home or np.isin(ca[centers[t]], piece):
                continue
            found += 1
            in_s = np.zeros(n, bool)
            in_s[piece] = True
            nbr = np.unique(
                np.concatenate([g.indices[g.indptr[v] : g.indptr[v + 1]] for v in piece])
            )
            sep = nbr[~in_s[nbr]]
            blocked = in_s.copy()
            blocked[sep] = True
            # every open-able candidate whose center area is in this component beyond S + N(S)
            for j in open_j:
                aj = ca[j]
                if comp[aj] != home or blocked[aj]:
                    continue
                sep_cols = idx[j, sep]
                sep_cols = sep_cols[sep_cols >= 0]
                for v in piece:
                    cv = idx[j, v]
                    if cv < 0:
                        continue
                    rows.append(np.full(1 + sep_cols.size, r))
                    cols.append(np.r_[cv, sep_cols])
                    vals.append(np.r_[1.0, -np.ones(sep_cols.size)])
                    r += 1
    if not rows:
        return sp.csr_matrix((0, n_vars)), found
    m = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, n_vars)
    )
    return m, found


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
    initial: Solution | None = None,
    adjacency: Any = None,
    soft_time_limit: float | None = None,
    soft_stall: float = 0.0,
    soft_min_gap: float = 0.0,
) -> Solution:
    """Solve the MIP to optimality (or to the time limit) with HiGHS.

    Parameters
    ----------
    problem
        The territory problem (the model is :func:`optimizer.bounds.build_model`'s).
    time_limit, mip_rel_gap
        HiGHS limits (the time limit covers every round of the contiguity loop).
    max_variables
        Refuse models larger than this.
    fixed_centers, allowed_centers, locked
        Side constraints: candidates that must be centers, the mask of candidates that may
        be, and the candidate each area is locked to (-1 = free).
    pairs
        ``(n_candidates, n)`` mask restricting the pairs (a restricted MIP for polishing; its
        dual bound is then not reported).
    initial
        A plan to start from (HiGHS's first incumbent); ignored when it is no solution of
        the model (e.g. outside the balance bounds or, with ``adjacency``, not in the
        contiguity model, see :func:`in_contiguity_model`).
    adjacency
        ``(n, n)`` symmetric boolean adjacency of the areas: solve the rooted contiguity
        model of the module docstring instead (every candidate that may be a center must
        be an area). Its dual bound bounds the cost of every plan of that model.

    Returns
    -------
    Solution
        With ``bound_source="mip"`` (``"mip-contiguous"`` with ``adjacency``);
        ``details["status"]`` says whether optimality was proven (``"optimal"``) or the
        time limit stopped HiGHS (``"time-limit"``: the best plan found and the dual bound;
        ``"soft-limit"`` when ``soft_time_limit`` stopped it with a plan).

    Raises
    ------
    InfeasibleError
        When no integer solution exists (bounds too tight).
    InputError
        When the model would exceed ``max_variables``, or ``adjacency`` is given and a
        candidate that may be a center is no area.
    SolverError
        When HiGHS finds no plan within the time limit.
    """
    t0 = time.perf_counter()
    nc = problem.cost.shape[0]
    p = problem.p
    time_limit = float(check_time_limit(time_limit, allow_none=False) or 0.0)
    may_host = check_allowed_centers(allowed_centers, nc, p)
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
    idx = _pair_index(mdl)
    lb, ub = mdl.lb.copy(), mdl.ub.copy()
    if soft_time_limit is not None:
        soft_time_limit = float(
            check_time_limit(soft_time_limit, "soft_time_limit", allow_none=False) or 0.0
        )
        if adjacency is not None:
            raise InputError("soft_time_limit cannot be combined with adjacency")
        soft_stall = float(check_time_limit(soft_stall, "soft_stall", allow_none=False) or 0.0)
        if not 0.0 <= float(soft_min_gap) < 1.0:
            raise InputError(f"soft_min_gap must be in [0, 1), got {soft_min_gap!r}")
    if adjacency is not None:
        return _solve_contiguous(
            problem, mdl, idx, lb, ub, adjacency, initial, time_limit, mip_rel_gap, pairs, t0
        )
    start = _start_vector(mdl, idx, initial, lb, ub)
    run = _run_highs(
        mdl.c,
        mdl.a,
        mdl.row_lo,
        mdl.row_hi,
        lb,
        ub,
        time_limit=time_limit,
        mip_rel_gap=mip_rel_gap,
        start=start,
        soft_time_limit=soft_time_limit,
        soft_stall=soft_stall,
        soft_min_gap=float(soft_min_gap),
    )
    _raise_for(run, p, time_limit, t0)
    assert run.x is not None
    assignment, centers = _decode(mdl, run.x)
    # a restricted model's dual bound bounds the restricted model only: no certificate then
    value = None if pairs is not None else run.dual_bound
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
        details={
            "status": run.status,
            "mip_gap": run.gap if np.isfinite(run.gap) else None,
            "warm_start": start is not None,
        },
    )


def _raise_for(run: _Run, p: int, time_limit: float, t0: float) -> None:
    if run.status == "infeasible":
        raise InfeasibleError(
            "the territory MIP is infeasible: no assignment meets the balance/capacity bounds "
            f"with p = {p} (try a larger tolerance)",
            {"p": p, "message": run.message},
        )
    if run.x is None:
        spent = time.perf_counter() - t0
        raise SolverError(
            f"HiGHS found no solution within the time limit of {time_limit:g} s "
            f"(stopped after {spent:.1f} s, {run.message}): raise time_limit or use a heuristic"
        )


def _solve_contiguous(
    problem: TerritoryProblem,
    mdl: Model,
    idx: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    adjacency: Any,
    initial: Solution | None,
    time_limit: float,
    mip_rel_gap: float,
    pairs: np.ndarray | None,
    t0: float,
) -> Solution:
    """The cut loop of the rooted contiguity model (module docstring)."""
    n = mdl.n
    k = mdl.pair_j.size
    g = _as_graph(adjacency, n)
    may = np.flatnonzero(ub[k:] > 0.5)
    if np.any(problem.candidates[may] < 0):
        raise InputError(
            "adjacency (the contiguity model) needs every candidate that may be a center to "
            "be an area; forbid the extra candidates with allowed_centers"
        )
    rows, rlo, rhi, comp, ca = _contiguity_rows(problem, mdl, idx, g)
    a_all = sp.vstack([mdl.a, rows]).tocsr()
    lo_all = np.r_[mdl.row_lo, rlo]
    hi_all = np.r_[mdl.row_hi, rhi]
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    if initial is not None and in_contiguity_model(problem, initial.assignment, initial.centers, g):
        z0 = _start_vector(mdl, idx, initial, lb, ub)
        if z0 is not None and initial.within_bounds:
            best = (float(mdl.c @ z0), np.asarray(initial.assignment), np.asarray(initial.centers))
    dual = -np.inf
    status = "time-limit"
    rounds = cuts = repaired = 0
    gap = max(mip_rel_gap, _LOOSE_GAP)  # loose while the plans still need cuts
    while rounds < _MAX_ROUNDS:
        left = time_limit - (time.perf_counter() - t0)
        if left <= 0.05:
            break
        start = None
        if best is not None:
            z = np.zeros(mdl.c.size)
            z[idx[best[2][best[1]], np.arange(n)]] = 1.0
            z[k + best[2]] = 1.0
            start = z
        run = _run_highs(
            mdl.c,
            a_all,
            lo_all,
            hi_all,
            lb,
            ub,
            time_limit=left,
            mip_rel_gap=gap,
            start=start,
        )
        rounds += 1
        if run.status == "infeasible":
            if best is None:
                raise InfeasibleError(
                    "the contiguous territory MIP is infeasible: no contiguous plan meets the "
                    f"balance/capacity bounds with p = {problem.p}",
                    {"p": problem.p, "message": run.message},
                )
            break  # cannot happen with a feasible start; keep it
        if run.dual_bound is not None and pairs is None:
            dual = max(dual, run.dual_bound)
        if run.x is None:
            break
        assignment, centers = _decode(mdl, run.x)
        new, found = _separate(g, comp, ca, idx, may, assignment, centers, mdl.c.size)
        obj = float(mdl.c @ run.x)
        if found == 0:
            if best is None or obj < best[0]:
                best = (obj, assignment, centers)
            if run.status == "optimal" and gap <= mip_rel_gap:
                status = "optimal"
                break
            if run.status != "optimal":
                break  # the time limit stopped this round
            gap = mip_rel_gap  # contiguous at the loose gap: now prove it
            continue
        fixed = _repaired(problem, mdl, assignment, centers, g, left)
        if fixed is not None and (best is None or fixed[0] < best[0]):
            best = fixed
            repaired += 1
        cuts += new.shape[0]
        a_all = sp.vstack([a_all, new]).tocsr()
        lo_all = np.r_[lo_all, np.full(new.shape[0], -np.inf)]
        hi_all = np.r_[hi_all, np.zeros(new.shape[0])]
        if run.status != "optimal":
            break  # the time limit stopped this round
    if best is None:
        spent = time.perf_counter() - t0
        raise SolverError(
            f"the contiguous MIP found no contiguous plan within {time_limit:g} s "
            f"(stopped after {spent:.1f} s, {rounds} round(s)): raise time_limit"
        )
    value = float(dual) if np.isfinite(dual) else None
    if value is not None and status == "optimal":
        value = min(value, best[0])
    relaxed = tuple(x for x in mdl.relaxed if x != "contiguity")
    return evaluate(
        problem,
        best[1],
        best[2],
        lower_bound=value,
        bound_source="mip-contiguous" if value is not None else "none",
        bound_relaxes=relaxed,
        method="exact-mip-contiguous",
        seconds=time.perf_counter() - t0,
        details={
            "status": status,
            "rounds": rounds,
            "cuts": cuts,
            "repaired_plans": repaired,
            "warm_start": initial is not None,
        },
    )
