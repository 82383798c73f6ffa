"""Location–allocation (Hess et al. 1965) with TRANSP and optimal split resolution.

Kalcsics, Nickel & Schröder (2005), §5: alternate

* **allocation**: the fractional allocation LP (TRANSP, eqs. 5.4–5.6, or its tolerance /
  capacity versions, :mod:`optimizer.transp`), whose at most ``p - 1`` split areas are then
  resolved **optimally** by the dynamic programme of eqs. 5.7–5.10 (:mod:`optimizer.split`,
  objective SPRES∞/SPRES1/SPRES2) or by AssignMAX; or simply **AllocMinDist** (nearest center,
  no balance);
* **location**: the exact 1-median of every territory (:func:`optimizer.location.one_medians`);

until the centers repeat, from several seeded k-means++ starts; the best start wins (within the
bounds first, then lowest cost).

Certificate: for the final centers, the dual of the allocation LP (made feasible for the pairs
that sparsification left out) bounds the cost of *any* allocation to these centers that meets
the same bounds; the solution reports it as ``allocation_bound`` / ``allocation_gap`` (other
centers may do better: it is no optimality certificate). A bound on the whole problem comes
from :mod:`optimizer.bounds` (:func:`optimizer.solve` attaches one by default).

Balance repair: when the resolved splits leave territories outside the bounds (the deviation
is only bounded by the largest split area, Theorem 5.5), single boundary areas are moved
greedily (:mod:`optimizer.repair`) until the bounds hold or no move helps.

Targets of split resolution: the mean size ``mu`` (the paper's model); in capacity mode the
loads of the fractional LP solution (each at most its capacity), so that rounding moves them as
little as possible.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

import numpy as np
import scipy.sparse as sp

from optimizer.exceptions import InfeasibleError, InputError
from optimizer.location import initial_centers, one_medians
from optimizer.problem import TerritoryProblem
from optimizer.solution import Solution, evaluate
from optimizer.transp import solve_transp
from optimizer.validation import check_allowed_centers, check_count, check_time_limit

__all__ = ["allocate", "location_allocation"]

log = logging.getLogger(__name__)

Allocation = Literal["transp", "mindist"]
SplitMethod = Literal["optimal", "assignmax"]


def allocate(
    problem: TerritoryProblem,
    centers: np.ndarray,
    *,
    allocation: Allocation = "transp",
    split: SplitMethod = "optimal",
    split_objective: str = "max",
    k_nearest: int | None = 10,
    cost_rows: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Assign every area to one of ``centers``; returns ``(assignment, facts)``.

    ``facts`` has ``lp_bound`` (TRANSP) and ``n_splits``.
    """
    rows = problem.cost.rows(centers) if cost_rows is None else cost_rows
    rows, stranded = _reach_stranded(problem, centers, rows, allowed)
    if allocation == "mindist":
        masked = rows if allowed is None else np.where(allowed, rows, np.inf)
        return np.argmin(masked, axis=0).astype(np.int64), {"n_splits": 0.0}
    if allocation != "transp":
        raise InputError(f"allocation must be 'transp' or 'mindist', got {allocation!r}")
    from optimizer.split import assign_max, resolve_splits

    lo, hi = problem.center_bounds(centers)
    elastic = False
    try:
        tr = solve_transp(
            rows,
            problem.weights,
            lower=lo,
            upper=hi,
            cost_weights=problem.objective_weights,
            k_nearest=k_nearest,
            allowed=allowed,
        )
    except InfeasibleError as exc:
        # these centers cannot meet the bounds (e.g. one center for a whole island): soften
        # the bounds so the allocation still exists; the solution reports the violation
        log.info("allocation infeasible for these centers (%s); using soft bounds", exc)
        tr = solve_transp(
            rows,
            problem.weights,
            lower=lo,
            upper=hi,
            cost_weights=problem.objective_weights,
            k_nearest=k_nearest,
            allowed=allowed,
            elastic=_penalty(problem, rows),
        )
        elastic = True
    fractions = tr.fractions if problem.m == 1 else _spanning_forest(tr.fractions)
    if problem.capacity_mode:
        targets = np.asarray(fractions @ problem.weights)
    else:
        targets = problem.center_targets(centers)
    if split == "optimal":
        res = resolve_splits(fractions, problem.weights, targets, objective=split_objective)  # type: ignore[arg-type]
    elif split == "assignmax":
        res = assign_max(fractions, problem.weights, targets)
    else:
        raise InputError(f"split must be 'optimal' or 'assignmax', got {split!r}")
    return res.assignment.astype(np.int64), {
        "stranded": float(stranded.size),
        "elastic": float(elastic),
        "lp_bound": tr.lower_bound,
        "lp_value": tr.objective,
        "n_splits": float(res.n_splits),
        "k_used": float(tr.k_used),
    }


def _reach_stranded(
    problem: TerritoryProblem,
    centers: np.ndarray,
    rows: np.ndarray,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Documented rule for areas no center reaches (no road from any center, e.g. an island
    without a center of its own): such an area goes to the center nearest in a straight line
    (planar coordinates), or to the first permitted center when coordinates are unknown, at a
    cost ten times the largest finite cost (so nothing else is displaced for it). The
    solution lists these areas in ``details["unreachable_areas"]``; nothing is hidden."""
    ok = np.isfinite(rows) if allowed is None else np.isfinite(rows) & allowed
    stranded = np.flatnonzero(~ok.any(axis=0))
    if stranded.size == 0:
        return rows, stranded
    rows = rows.copy()
    fin = rows[np.isfinite(rows)]
    big = 10.0 * (float(fin.max()) if fin.size else 1.0) + 1.0
    cxy = problem.center_xy(centers)
    for v in stranded:
        perm = np.ones(centers.shape[0], bool) if allowed is None else allowed[:, v]
        if not perm.any():
            perm[:] = True
        if cxy is not None and problem.coords is not None:
            dist = np.hypot(*(cxy - problem.coords[v]).T)
            t = int(np.argmin(np.where(perm, dist, np.inf)))
        else:
            t = int(np.flatnonzero(perm)[0])
        rows[t, v] = big
    log.warning(
        "%d area(s) unreachable from every center; assigned to the nearest center in "
        "a straight line and reported",
        stranded.size,
    )
    return rows, stranded


def _locked_mask(locked: np.ndarray | None, centers: np.ndarray) -> np.ndarray | None:
    """``(p, n)`` permitted pairs: an area locked to candidate ``c`` may only go to ``c``."""
    if locked is None:
        return None
    lk = np.asarray(locked, dtype=np.int64)
    allowed = np.ones((centers.shape[0], lk.shape[0]), bool)
    cols = np.flatnonzero(lk >= 0)
    allowed[:, cols] = centers[:, None] == lk[None, cols]
    return allowed


def _penalty(problem: TerritoryProblem, rows: np.ndarray) -> float:
    """Cost of one unit of size violation: dearer than any reassignment could save."""
    fin = rows[np.isfinite(rows)]
    span = float(fin.max()) if fin.size else 1.0
    w = problem.weights[:, 0]
    top = float(w.max())
    # weights below a 1e-9 share of the largest count as that share (no overflow from
    # subnormal weights); HiGHS treats costs from 1e20 up as infinite, so stay below
    unit = max(float(w[w > 0].min()), 1e-9 * top) if top > 0 else 1.0
    return min(10.0 * span * float(problem.objective_weights.max()) / unit + 1.0, 1e19)


def _spanning_forest(fractions: sp.csr_matrix) -> sp.csr_matrix:
    """Make the split adjacency a forest (needed by the split DP) for several measures.

    With one measure a basic TRANSP solution has a forest split adjacency; with ``m`` size
    rows per center a basis may contain cycles. Kruskal on the fractional entries, largest
    first, keeps a maximum spanning forest; the fraction of every dropped entry moves to the
    area's largest kept entry (each area keeps at least its largest one). The sizes move by at
    most the dropped fractions' weights; split resolution then works on the forest.
    """
    coo = fractions.tocoo()
    frac_entry = (coo.data > 1e-12) & (coo.data < 1 - 1e-12)
    if not frac_entry.any():
        return fractions
    p, n = fractions.shape
    parent = np.arange(p + n)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    rows, cols, data = coo.row.copy(), coo.col.copy(), coo.data.copy()
    order = np.argsort(-data, kind="stable")
    keep = np.ones(data.shape[0], bool)
    for e in order:
        if not frac_entry[e]:
            continue
        a, b = find(int(rows[e])), find(p + int(cols[e]))
        if a == b:
            keep[e] = False
        else:
            parent[a] = b
    if keep.all():
        return fractions
    moved = np.zeros(n)
    np.add.at(moved, cols[~keep], data[~keep])
    kept = sp.csr_matrix((data[keep], (rows[keep], cols[keep])), shape=(p, n))
    best = np.asarray(kept.argmax(axis=0)).ravel()
    extra = np.flatnonzero(moved)
    out = kept + sp.csr_matrix((moved[extra], (best[extra], extra)), shape=(p, n))
    log.debug("split adjacency: %d cycle edge(s) folded into a spanning forest", int((~keep).sum()))
    return out.tocsr()


def location_allocation(
    problem: TerritoryProblem,
    *,
    allocation: Allocation = "transp",
    split: SplitMethod = "optimal",
    split_objective: str = "max",
    n_starts: int = 1,
    max_iter: int = 30,
    k_nearest: int | None = 10,
    seed: int | None = 0,
    initial: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    time_limit: float | None = None,
    repair: bool = True,
    fixed_centers: np.ndarray | None = None,
    locked: np.ndarray | None = None,
) -> Solution:
    """Location–allocation from several starts (see the module docstring).

    Parameters
    ----------
    problem
        The territory problem.
    allocation
        ``"transp"`` (balanced, with split resolution) or ``"mindist"`` (AllocMinDist).
    split
        ``"optimal"`` (dynamic programme, eqs. 5.7–5.10) or ``"assignmax"``.
    split_objective
        ``"max"`` (SPRES∞), ``"sum"`` (SPRES1) or ``"squares"`` (SPRES2).
    n_starts, max_iter
        Multi-start count (default 1: one run is the interactive case; more starts find
        lower costs) and location–allocation rounds per start.
    k_nearest
        Sparsification of TRANSP (``None`` = all centers).
    seed
        Seed of the initial centers (deterministic for a seed).
    initial
        ``(p,)`` candidate indices to start from (one start).
    fixed
        ``(p,)`` booleans: territories whose center (from ``initial``) never moves.
    allowed_centers
        ``(n_candidates,)`` mask of candidates that may become centers.
    time_limit
        Seconds; no new start begins after it.
    fixed_centers
        Candidate indices that must be centers (reps' homes, offices); they never move and
        hold the first territories; the optimizer chooses the other ``p - len`` centers.
    locked
        ``(n,)`` candidate index each area is locked to (it must be a fixed center), -1 for
        free areas. Locked areas never move.
    repair
        With TRANSP allocation, finish with the greedy balance repair
        (:func:`optimizer.repair.repair_balance`) when split resolution leaves territories
        outside the bounds.

    Returns
    -------
    Solution
    """
    t0 = time.perf_counter()
    _check_capacity(problem)
    n_starts = check_count(n_starts, "n_starts")
    max_iter = check_count(max_iter, "max_iter")
    time_limit = check_time_limit(time_limit)
    allowed_centers = check_allowed_centers(
        allowed_centers, problem.cost.shape[0], problem.p, fixed=fixed_centers
    )
    rng = np.random.default_rng(seed)
    if fixed is not None and initial is None:
        raise InputError("fixed centers need `initial` to say which candidates they are")
    fixed_list = None if fixed_centers is None else np.asarray(fixed_centers, dtype=np.int64)
    if locked is not None:
        lk = np.asarray(locked, dtype=np.int64)
        bad = np.setdiff1d(lk[lk >= 0], fixed_list if fixed_list is not None else [])
        if bad.size:
            raise InputError(
                f"areas are locked to candidates {bad[:10].tolist()} that are not "
                "fixed centers; lock areas only to fixed centers"
            )
    starts = 1 if initial is not None else n_starts
    if fixed_list is not None and fixed_list.size == problem.p:
        starts = 1  # every center is given: nothing to draw
    best: Solution | None = None
    total_iter = 0

    def run_allocation(centers: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        assignment, facts = allocate(
            problem,
            centers,
            allocation=allocation,
            split=split,
            split_objective=split_objective,
            k_nearest=k_nearest,
            allowed=_locked_mask(locked, centers),
        )
        return _fill_empty(problem, assignment, centers), facts

    for s in range(starts):
        if time_limit is not None and s > 0 and time.perf_counter() - t0 > time_limit:
            break
        centers = (
            np.asarray(initial, dtype=np.int64).copy()
            if initial is not None
            else initial_centers(problem, rng, fixed=fixed_list, allowed=allowed_centers)
        )
        if fixed_list is not None:
            fixed = np.isin(centers, fixed_list)
        facts: dict[str, float] = {}
        assignment = np.zeros(problem.n, dtype=np.int64)
        seen: set[tuple[int, ...]] = set()
        for _ in range(max_iter):
            total_iter += 1
            assignment, facts = run_allocation(centers)
            new = one_medians(problem, assignment, centers, fixed=fixed, allowed=allowed_centers)
            key = tuple(sorted(new.tolist()))
            if np.array_equal(new, centers) or key in seen:
                break
            seen.add(key)
            centers = new
        else:
            assignment, facts = run_allocation(centers)
        moves = 0
        if repair and allocation == "transp":
            from optimizer.repair import repair_balance

            locked_areas = None if locked is None else np.asarray(locked) >= 0
            assignment, moves = repair_balance(problem, assignment, centers, locked=locked_areas)
        sol = evaluate(
            problem,
            assignment,
            centers,
            # the TRANSP bound holds for these centers only: an allocation bound, never a
            # bound on the problem; with soft bounds the LP value holds penalties: none then
            allocation_bound=None if facts.get("elastic") else facts.get("lp_bound"),
            method=f"la-{allocation}" + (f"-{split}" if allocation == "transp" else ""),
            seed=seed,
            details={
                "n_splits": int(facts.get("n_splits", 0)),
                "start": s,
                "repair_moves": moves,
                "soft_bounds": bool(facts.get("elastic", 0)),
            },
        )
        if best is None or _better(sol, best):
            best = sol
    assert best is not None
    best.iterations = total_iter
    best.starts = starts
    best.seconds = time.perf_counter() - t0
    log.info(
        "location-allocation: cost %.6g, max deviation %.3f, %d iterations, %.2f s",
        best.cost,
        best.max_deviation,
        total_iter,
        best.seconds,
    )
    return best


def _check_capacity(problem: TerritoryProblem) -> None:
    """Capacity mode: the ``p`` largest capacities must hold the total weight."""
    if problem.capacity is None:
        return
    total = float(problem.weights[:, 0].sum())
    best = float(np.sort(problem.capacity)[-problem.p :].sum())
    if best < total - 1e-9:
        raise InfeasibleError(
            f"total weight {total:g} exceeds the {problem.p} largest capacities together "
            f"({best:g}): no allocation can respect the capacities",
            {"total": total, "capacity_of_best_p": best},
        )


def _better(a: Solution, b: Solution) -> bool:
    if a.within_bounds != b.within_bounds:
        return a.within_bounds
    if not a.within_bounds and abs(a.max_deviation - b.max_deviation) > 1e-12:
        return a.max_deviation < b.max_deviation
    return a.cost < b.cost - 1e-9 * max(1.0, abs(b.cost))


def _fill_empty(
    problem: TerritoryProblem, assignment: np.ndarray, centers: np.ndarray
) -> np.ndarray:
    """Give an empty territory its own center's area (AllocMinDist can leave one empty)."""
    counts = np.bincount(assignment, minlength=problem.p)
    if np.all(counts > 0):
        return assignment
    out = assignment.copy()
    for t in np.flatnonzero(counts == 0):
        area = int(problem.candidates[centers[t]])
        if area >= 0 and np.bincount(out, minlength=problem.p)[out[area]] > 1:
            out[area] = t
    return out
