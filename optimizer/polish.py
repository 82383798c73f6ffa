"""Polish a heuristic plan towards the optimum and certify it with a global bound.

After a constructive solver (and the local search), :func:`polish` spends what is left of a
time budget on the true objective (weighted distance) with the balance bounds kept as hard
constraints:

* up to :data:`EXACT_MAX_N` areas (where HiGHS usually proves the optimum within seconds to
  a minute; measured by ``scripts/bench_quality.py``): the exact MIP
  (:func:`optimizer.exact.solve_exact`) with the run's fixed centers, forbidden centers and
  locked areas, started from the heuristic plan (HiGHS's first incumbent, through
  ``highspy``), so it never ends with a worse plan. Without contiguity, from
  :data:`LNS_MIN_P` territories on and with at most :data:`LNS_MAX_AREAS_PER_TERRITORY`
  areas per territory on average, the MIP has a soft limit: once past 40 % of its time with
  a plan that has not improved for 5 % of it and a gap of 1 % or more, HiGHS is
  interrupted and the MIP
  neighbourhood search (:func:`optimizer.lns.neighbourhood_search`: groups of neighbouring
  territories re-solved exactly, the groups growing each time a pass converges) improves
  its plan; the full MIP then runs again from the result with the time left (its dual bound,
  or the first run's if larger, is the certificate). When the MIP's plan comes too late for
  the soft limit, the neighbourhood search gets the time kept for the bound instead (the
  MIP's dual bound is the certificate). With many small territories and a
  tight tolerance (RI ZCTAs, p = 20) the tree search stalls for tens of seconds between
  plans while the neighbourhood search moves several centers at once within a group;
* when contiguity is required, up to :data:`CONTIGUOUS_MAX_N` areas (and every candidate
  that may be a center is an area): the *contiguous* MIP instead (the rooted model of
  :mod:`optimizer.exact`: territories connected around their center areas, islands whole),
  started from the heuristic plan; its dual bound certifies the plan against the best
  contiguous plan (``bound_source="mip-contiguous"``) when the plan is of that model;
* beyond: a restricted MIP around the incumbent: the candidates near its centers may become
  centers, and each area may go to its few nearest of them (or stay where it is, so the
  incumbent is a solution of the restricted model).

A MIP plan replaces the incumbent only when it is cheaper, within the balance bounds, and,
when contiguity is required, with no more fragments than the incumbent (whole islands of the
adjacency, which nothing can join, do not count). The MIP without contiguity (beyond
:data:`CONTIGUOUS_MAX_N`): a plan with more fragments is first repaired and searched by
:func:`optimizer.local.local_search` with contiguity kept, and then compared.

The certificate attached to the result is a bound on the whole problem
(:mod:`optimizer.bounds`): the MIP's dual bound when the full MIP ran, else the LP relaxation
or the Lagrangian bound; and, for the final centers, the allocation bound (TRANSP).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from optimizer.bounds import Bound, global_lower_bound
from optimizer.exact import in_contiguity_model, solve_exact
from optimizer.exceptions import InfeasibleError, InputError, SolverError
from optimizer.lns import TARGET_AREAS, neighbourhood_search, repair_balance
from optimizer.problem import TerritoryProblem
from optimizer.solution import Solution, evaluate
from optimizer.transp import solve_transp

__all__ = [
    "CONTIGUOUS_MAX_N",
    "EXACT_MAX_N",
    "LNS_MAX_AREAS_PER_TERRITORY",
    "LNS_MIN_P",
    "allocation_bound",
    "polish",
]

log = logging.getLogger(__name__)

#: the full MIP runs up to this many areas (see the module docstring)
EXACT_MAX_N = 250
#: with contiguity required, the contiguous MIP (rooted model, separator cuts) runs instead
#: up to this many areas (see the module docstring)
CONTIGUOUS_MAX_N = 100
#: restricted MIP: candidates per incumbent center, centers per area
_NEAR_CANDIDATES = 25
_NEAR_CENTERS = 8
#: at most this many restricted MIPs, each around the previous one's plan
_ROUNDS = 4
#: share of the budget the polishing MIP may use (the rest is for the bound)
_MIP_SHARE = 0.8
#: the neighbourhood search (:mod:`optimizer.lns`) runs before the full MIP from this many
#: territories on (fewer: a neighbourhood of two territories is most of the problem)
LNS_MIN_P = 5
#: ... and only while territories average at most this many areas (half a neighbourhood of
#: :data:`optimizer.lns.TARGET_AREAS`: a neighbourhood then spans several territories; with
#: larger territories it holds two and the full MIP does better: measured on Porto parishes
#: p = 12, 14 areas per territory, in docs/benchmarks.md)
LNS_MAX_AREAS_PER_TERRITORY = TARGET_AREAS / 2
#: the full MIP's soft limit (share of the MIP time): past it, HiGHS is stopped as soon as it
#: has a plan that has not improved for ``_STALL_SHARE`` of the MIP time, and the
#: neighbourhood search takes over
_FIRST_SHARE = 0.4
_STALL_SHARE = 0.05
#: ... and only while its gap is at least this (a MIP closer to its proof keeps its time:
#: measured on RI ZCTAs p = 8 and 12, proved in 6-11 s on a loaded machine)
_SOFT_MIN_GAP = 0.01
#: seconds left for the full MIP after the neighbourhood search (at the end of the budget)
_FINAL_MIP_SECONDS = 3.0
#: neighbourhoods grow by this factor each time a pass converges (up to half the areas)
_LNS_GROWTH = 1.5


def allocation_bound(
    problem: TerritoryProblem, centers: np.ndarray, locked: np.ndarray | None = None
) -> float | None:
    """The TRANSP bound for ``centers``: no allocation to them within the bounds costs less.

    ``None`` when no such allocation exists or an area no center reaches.
    """
    rows = problem.cost.rows(centers)
    allowed = None
    if locked is not None:
        lk = np.asarray(locked, dtype=np.int64)
        allowed = np.ones(rows.shape, bool)
        cols = np.flatnonzero(lk >= 0)
        allowed[:, cols] = centers[:, None] == lk[None, cols]
    ok = np.isfinite(rows) if allowed is None else np.isfinite(rows) & allowed
    if not ok.any(axis=0).all():
        return None
    lo, hi = problem.center_bounds(centers)
    try:
        tr = solve_transp(
            rows,
            problem.weights,
            lower=lo,
            upper=hi,
            cost_weights=problem.objective_weights,
            k_nearest=None,
            allowed=allowed,
        )
    except (InfeasibleError, SolverError):
        return None
    return float(tr.lower_bound)


def _all_areas(
    problem: TerritoryProblem, allowed: np.ndarray | None, fixed: np.ndarray | None
) -> bool:
    """Whether every candidate that may be a center is an area (the contiguous MIP's need)."""
    nc = problem.cost.shape[0]
    may = np.ones(nc, bool) if allowed is None else np.asarray(allowed, bool).copy()
    if fixed is not None:
        may[np.asarray(fixed, dtype=np.int64)] = True
    return bool(np.all(problem.candidates[may] >= 0))


def _restricted_pairs(
    problem: TerritoryProblem, sol: Solution, allowed_centers: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(pairs mask (nc, n), candidate mask (nc,)) of the restricted MIP around ``sol``."""
    nc, n = problem.cost.shape
    cand_area = problem.candidates
    area_cands = np.flatnonzero(cand_area >= 0)
    may = np.ones(nc, bool) if allowed_centers is None else np.asarray(allowed_centers, bool)
    keep = np.zeros(nc, bool)
    keep[sol.centers] = True
    if area_cands.size:
        d = problem.cost.block(sol.centers, cand_area[area_cands])  # center -> candidate area
        d = np.where(may[area_cands][None, :], d, np.inf)
        k = min(_NEAR_CANDIDATES, area_cands.size)
        near = np.argpartition(d, k - 1, axis=1)[:, :k]
        sel = area_cands[near.ravel()]
        keep[sel[np.isfinite(d[np.repeat(np.arange(d.shape[0]), k), near.ravel()])]] = True
    cands = np.flatnonzero(keep)
    rows = problem.cost.rows(cands)
    kk = min(_NEAR_CENTERS, cands.size)
    near_c = np.argpartition(rows, kk - 1, axis=0)[:kk]
    pairs = np.zeros((nc, n), bool)
    pairs[cands[near_c], np.arange(n)[None, :]] = True
    pairs[sol.centers[sol.assignment], np.arange(n)] = True  # the incumbent stays feasible
    return pairs, keep


def _mip_bound(ex: Solution, current: Bound | None) -> Bound | None:
    """The larger of ``current`` and the full MIP run ``ex``'s dual bound. HiGHS reports 0
    when the time limit came before the root LP: then the LP or Lagrangian bound does
    better."""
    if ex.lower_bound is None or not (ex.lower_bound > 0 or ex.cost <= 0):
        return current
    if current is not None and current.value is not None and current.value >= ex.lower_bound:
        return current
    return Bound(ex.lower_bound, "mip", ex.bound_relaxes)


def _neighbourhood_phase(
    problem: TerritoryProblem,
    start: Solution,
    end: float,
    facts: dict[str, Any],
    side: dict[str, Any],
) -> Solution:
    """The neighbourhood search (:mod:`optimizer.lns`) from ``start`` until ``end``
    (``time.perf_counter()``), its neighbourhoods growing each time a pass converges (up to
    half the areas). A plan outside the balance bounds is first repaired
    (:func:`optimizer.lns.repair_balance`). Never returns a worse plan than ``start``
    within the bounds."""
    if not start.within_bounds:
        rep = repair_balance(
            problem, start, time_limit=max(0.1, 0.3 * (end - time.perf_counter())), **side
        )
        facts["repair"] = {"repaired": rep.improvements > 0, "seconds": rep.seconds}
        if not rep.solution.within_bounds:
            return start
        start = rep.solution
    target = TARGET_AREAS
    seed = start.seed if start.seed is not None else 0
    stats: dict[str, Any] = {"sub_mips": 0, "improvements": 0, "from": start.cost, "targets": []}
    t0 = time.perf_counter()
    while True:
        left = end - time.perf_counter()
        if left < 0.2:
            break
        res = neighbourhood_search(
            problem, start, time_limit=left, target_areas=target, seed=seed, **side
        )
        start = res.solution
        stats["sub_mips"] += res.sub_mips
        stats["improvements"] += res.improvements
        stats["targets"].append(target)
        if not res.converged or 2 * target >= problem.n:
            break
        target = int(np.ceil(target * _LNS_GROWTH))
    stats["cost"] = start.cost
    stats["seconds"] = time.perf_counter() - t0
    facts["lns"] = stats
    return start


_T = TypeVar("_T")


def _kept(fallback: _T, step: Callable[[], _T], facts: dict[str, Any]) -> _T:
    """``step()``, or ``fallback`` (a plan already in hand) when the step's solver fails."""
    try:
        return step()
    except (SolverError, InfeasibleError, InputError) as exc:
        facts.setdefault("later_steps_failed", []).append(str(exc))
        log.info("a polishing step gave no plan, the plan before it is kept: %s", exc)
        return fallback


def polish(
    problem: TerritoryProblem,
    solution: Solution,
    *,
    time_limit: float = 30.0,
    adjacency: Any = None,
    require_contiguity: bool = False,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    locked: np.ndarray | None = None,
    exact_max_n: int = EXACT_MAX_N,
    bound: str = "auto",
    contiguous_max_n: int | None = None,
    neighbourhood: bool = True,
) -> Solution:
    """Improve ``solution`` with a (restricted) MIP and certify it (module docstring).

    Parameters
    ----------
    problem
        The territory problem.
    solution
        The incumbent plan (e.g. location–allocation + local search).
    time_limit
        Seconds for the MIP and the bound together.
    adjacency, require_contiguity
        A MIP plan must be contiguous in ``adjacency`` when contiguity is required.
    fixed_centers, allowed_centers, locked
        The run's side constraints (candidate indices that must be centers, mask of
        candidates that may be, candidate each area is locked to or -1).
    exact_max_n
        Largest ``n`` for the full MIP; 0 disables the MIP (certificate only).
    contiguous_max_n
        Largest ``n`` for the contiguous MIP when contiguity is required (default
        :data:`CONTIGUOUS_MAX_N`; 0: the MIP without contiguity, then repair).
    bound
        ``"auto"``, ``"lp"``, ``"lagrangian"`` (see :func:`optimizer.bounds.global_lower_bound`)
        or ``"none"``.
    neighbourhood
        Let the neighbourhood search (:mod:`optimizer.lns`) take over from a stalled full
        MIP (from :data:`LNS_MIN_P` territories on, up to
        :data:`LNS_MAX_AREAS_PER_TERRITORY` areas per territory, without contiguity);
        ``False``: the full MIP alone (the behaviour before it existed).

    Returns
    -------
    Solution
        The better plan with ``lower_bound`` / ``optimality_gap`` (whole problem) and
        ``allocation_bound`` / ``allocation_gap`` (its centers); ``details["polish"]`` says
        what ran.
    """
    if require_contiguity and adjacency is None:
        raise InputError("require_contiguity needs the adjacency of the areas")
    if contiguous_max_n is None:
        contiguous_max_n = CONTIGUOUS_MAX_N
    t0 = time.perf_counter()
    side: dict[str, Any] = {
        "fixed_centers": fixed_centers,
        "allowed_centers": allowed_centers,
        "locked": locked,
    }
    best = solution
    facts: dict[str, Any] = {}
    mip_bound: Bound | None = None
    n = problem.n
    shares = problem.target_share is not None
    mip_time = _MIP_SHARE * time_limit

    comp_size: np.ndarray | None = None
    comp: np.ndarray | None = None
    if require_contiguity:
        from scipy.sparse import csgraph, csr_matrix

        _, comp = csgraph.connected_components(csr_matrix(adjacency), directed=False)
        comp_size = np.bincount(comp)

    def n_fragments(assignment: np.ndarray) -> int:
        """Pieces beyond one per territory, not counting whole islands (components of the
        adjacency, which no plan can join to anything)."""
        from optimizer.contiguity import territory_pieces

        assert comp is not None
        assert comp_size is not None
        total = 0
        for pieces in territory_pieces(adjacency, assignment, problem.p):
            joinable = [x for x in pieces if x.size < comp_size[comp[x[0]]]]
            total += max(0, len(joinable) - 1)
        return total

    # a plan must not have more (joinable) fragments than the incumbent
    max_fragments = n_fragments(solution.assignment) if require_contiguity else 0

    def acceptable(cand: Solution) -> bool:
        if not cand.within_bounds or cand.details.get("unreachable_areas"):
            return False
        if require_contiguity and n_fragments(cand.assignment) > max_fragments:
            return False
        if not best.within_bounds:
            return True
        return cand.cost < best.cost - 1e-9 * max(1.0, abs(best.cost))

    def made_contiguous(cand: Solution) -> Solution | None:
        """The MIP plan repaired and searched with contiguity kept (local search)."""
        from optimizer.local import local_search

        if n_fragments(cand.assignment) <= max_fragments:
            return None
        facts["mip_plan_contiguous"] = False
        left = time_limit - (time.perf_counter() - t0)
        if left < 1.0:
            return None
        res = local_search(
            problem,
            cand.assignment,
            cand.centers,
            adjacency=adjacency,
            require_contiguity=True,
            locked=None if locked is None else np.asarray(locked) >= 0,
            fixed_centers=None if fixed_centers is None else np.isin(cand.centers, fixed_centers),
            allowed_centers=allowed_centers,
            time_limit=min(left * 0.5, 10.0),
        )
        return evaluate(problem, res.assignment, res.centers, method=cand.method + "+contiguity")

    contig_mip = (
        require_contiguity
        and 0 < n <= min(contiguous_max_n, exact_max_n)
        and _all_areas(problem, allowed_centers, fixed_centers)
    )
    if not shares and exact_max_n > 0 and mip_time > 0.5 and contig_mip:
        # the contiguity model itself: its plans need no repair, its bound is for them
        try:
            ex = solve_exact(
                problem,
                time_limit=mip_time,
                max_variables=10**8,
                initial=best,
                adjacency=adjacency,
                **side,
            )
            facts["mip"] = "contiguous"
            facts["mip_status"] = ex.details.get("status")
            facts["mip_rounds"] = ex.details.get("rounds")
            facts["mip_cost"] = ex.cost
            if acceptable(ex):
                facts["improved_from"] = best.cost
                best = ex
            if (
                ex.lower_bound is not None
                and ex.lower_bound > 0
                and in_contiguity_model(problem, best.assignment, best.centers, adjacency)
            ):
                mip_bound = Bound(ex.lower_bound, "mip-contiguous", ex.bound_relaxes)
        except (SolverError, InfeasibleError, InputError) as exc:
            facts["mip"] = f"no plan: {exc}"
            log.info("contiguous polishing MIP gave no plan: %s", exc)
    elif not shares and exact_max_n > 0 and mip_time > 0.5:
        full = n <= exact_max_n
        try:
            if full:
                # the full MIP; when it has not proved the optimum by the soft limit, the
                # neighbourhood search from its plan, then the full MIP again from that plan
                lns = (
                    neighbourhood
                    and not require_contiguity
                    and problem.p >= LNS_MIN_P
                    and n <= LNS_MAX_AREAS_PER_TERRITORY * problem.p
                )
                ex = solve_exact(
                    problem,
                    time_limit=mip_time,
                    max_variables=10**8,
                    initial=best,
                    soft_time_limit=_FIRST_SHARE * mip_time if lns else None,
                    soft_stall=_STALL_SHARE * mip_time,
                    soft_min_gap=_SOFT_MIN_GAP,
                    **side,
                )
                mip_bound = _mip_bound(ex, mip_bound)
                late = (
                    lns
                    and ex.details.get("status") == "time-limit"
                    and mip_bound is not None
                    and time_limit - (time.perf_counter() - t0) >= 1.5
                )
                if late:
                    # the MIP's first plan came too late for the soft limit (a loaded
                    # machine): the time kept for the bound, which the MIP gave, goes to the
                    # neighbourhood search from its plan
                    facts["first_mip"] = {"cost": ex.cost, "seconds": ex.seconds}
                    ex = _kept(
                        ex,
                        lambda: _neighbourhood_phase(
                            problem, ex, t0 + time_limit - 0.5, facts, side
                        ),
                        facts,
                    )
                elif ex.details.get("status") == "soft-limit":
                    facts["first_mip"] = {"cost": ex.cost, "seconds": ex.seconds}
                    first = ex if ex.within_bounds or not best.within_bounds else best
                    # with the MIP's bound in hand, the time kept for the bound is free too
                    end = t0 + (time_limit - 0.5 if mip_bound is not None else mip_time)
                    left = end - time.perf_counter()
                    reserve = _FINAL_MIP_SECONDS if left > 3 * _FINAL_MIP_SECONDS else 0.0
                    ex = _kept(
                        first,
                        lambda: _neighbourhood_phase(problem, first, end - reserve, facts, side),
                        facts,
                    )
                    left = end - time.perf_counter()
                    if left >= 1.0:
                        plan = ex
                        again = _kept(
                            None,
                            lambda: solve_exact(
                                problem, time_limit=left, max_variables=10**8, initial=plan, **side
                            ),
                            facts,
                        )
                        if again is not None:
                            mip_bound = _mip_bound(again, mip_bound)
                            if again.within_bounds and again.cost <= ex.cost:
                                ex = again
            else:
                # rounds around the latest plan while it improves and time is left
                ex = best
                for rnd in range(_ROUNDS):
                    left = mip_time - (time.perf_counter() - t0)
                    if left < 0.5:
                        break
                    pairs, cand_mask = _restricted_pairs(problem, ex, allowed_centers)
                    may = cand_mask if allowed_centers is None else cand_mask & allowed_centers
                    nxt = solve_exact(
                        problem,
                        time_limit=left,
                        max_variables=10**8,
                        fixed_centers=fixed_centers,
                        allowed_centers=may,
                        locked=locked,
                        pairs=pairs,
                        initial=ex,
                    )
                    facts["rounds"] = rnd + 1
                    if rnd > 0 and nxt.cost >= ex.cost - 1e-9 * max(1.0, abs(ex.cost)):
                        break
                    ex = nxt
            facts["mip"] = "full" if full else "restricted"
            facts["mip_status"] = ex.details.get("status")
            facts["mip_cost"] = ex.cost
            if require_contiguity and ex.within_bounds:
                fixed_up = made_contiguous(ex)
                if fixed_up is not None:
                    facts["contiguous_cost"] = fixed_up.cost
                    ex = fixed_up
            if acceptable(ex):
                facts["improved_from"] = best.cost
                best = ex
        except (SolverError, InfeasibleError, InputError) as exc:
            facts["mip"] = f"no plan: {exc}"
            log.info("polishing MIP gave no plan: %s", exc)
    # the certificate: a bound valid for every plan (any source), or, when the contiguous
    # MIP ran and the plan is of its model, the larger contiguous bound
    glob = mip_bound
    if solution.lower_bound is not None and (
        glob is None or glob.value is None or solution.lower_bound > glob.value
    ):
        glob = Bound(solution.lower_bound, solution.bound_source, solution.bound_relaxes)
    left = time_limit - (time.perf_counter() - t0)
    if glob is None and bound != "none":
        try:
            glob = global_lower_bound(
                problem, method=bound, upper=best.cost, time_limit=max(2.0, left), **side
            )
        except SolverError as exc:
            facts["bound_error"] = str(exc)
    centers = np.asarray(best.centers)
    out = evaluate(
        problem,
        best.assignment,
        centers,
        lower_bound=None if glob is None else glob.value,
        bound_source="none" if glob is None or glob.value is None else glob.source,
        bound_relaxes=() if glob is None else glob.relaxed,
        allocation_bound=allocation_bound(problem, centers, locked),
        method=solution.method + ("+mip" if best is not solution else "") + "+polish",
        seed=solution.seed,
        iterations=solution.iterations,
        starts=solution.starts,
        seconds=solution.seconds + (time.perf_counter() - t0),
        details={
            **solution.details,
            "polish": {
                **facts,
                "seconds": time.perf_counter() - t0,
                "bound_seconds": None if glob is None else glob.seconds,
            },
        },
    )
    log.info(
        "polish: cost %.6g (from %.6g), bound %s (%s), %.2f s",
        out.cost,
        solution.cost,
        out.lower_bound,
        out.bound_source,
        time.perf_counter() - t0,
    )
    return out
