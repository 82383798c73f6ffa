r"""MIP-based large neighbourhood search: re-solve a few neighbouring territories exactly.

A plan with ``p`` territories is improved by *destroy and repair* steps (Shaw 1998; Pisinger &
Ropke 2010; in districting, re-optimising subsets of neighbouring districts, e.g. Ríos-Mercado
& Fernández 2009): pick a territory and its nearest territories ``S`` (until they hold about
``target_areas`` areas), keep every other territory as it is (its center fixed, its areas
locked to it), and solve the MIP of :mod:`optimizer.exact` on the rest exactly: the areas of
``S`` may go to any candidate near them, ``|S|`` of those candidates become centers, with the
same balance bounds. The sub-MIP has a few hundred variables and HiGHS solves it in a fraction
of a second; it starts from the plan itself, so a step never makes the plan worse.

Why: with many small territories and a tight tolerance (RI ZCTAs, ``p = 20``, four areas per
territory, 5 %) the full MIP's branch and bound spends tens of seconds between incumbents,
while the balance constraints couple only neighbouring territories; exact moves of several
centers and areas at once within such a group find what single swaps and the tree search miss
(measured in ``docs/benchmarks.md``, "Solution quality with the MIP neighbourhood search").

:func:`repair_balance` uses the same sub-MIP to bring a plan that breaks the balance bounds
within them: ``S`` = the territories out of bounds and their nearest neighbours.

A sub-MIP proves nothing about the whole problem: no bound comes from here (the caller's
certificate comes from :mod:`optimizer.bounds` or the full MIP).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from optimizer.exact import solve_exact
from optimizer.exceptions import InfeasibleError, InputError, SolverError
from optimizer.problem import TerritoryProblem
from optimizer.solution import Solution, evaluate
from optimizer.validation import check_time_limit

__all__ = ["NeighbourhoodResult", "neighbourhood_search", "repair_balance"]

log = logging.getLogger(__name__)

#: default number of areas a neighbourhood holds (measured: RI ZCTAs p = 20, 12-30 areas reach
#: the same plan; 20 areas take 0.1-0.4 s per sub-MIP)
TARGET_AREAS = 20
#: a sub-MIP gets at most this share of the time left (and at least a second)
_SUB_SHARE = 0.25


@dataclasses.dataclass
class NeighbourhoodResult:
    """What :func:`neighbourhood_search` or :func:`repair_balance` did.

    Attributes
    ----------
    solution
        The plan (the input itself when nothing improved it).
    sub_mips
        Sub-MIPs solved.
    improvements
        Sub-MIPs that made the plan cheaper (or, in :func:`repair_balance`, balanced).
    converged
        A whole pass over the territories found nothing better (``False``: time ran out).
    seconds
        Time spent.
    """

    solution: Solution
    sub_mips: int = 0
    improvements: int = 0
    converged: bool = False
    seconds: float = 0.0


class _Context:
    """The run's side constraints and the per-candidate data every sub-MIP needs."""

    def __init__(
        self,
        problem: TerritoryProblem,
        fixed_centers: np.ndarray | None,
        allowed_centers: np.ndarray | None,
        locked: np.ndarray | None,
    ) -> None:
        nc, n = problem.cost.shape
        self.problem = problem
        self.nc, self.n = nc, n
        self.fixed = (
            np.zeros(0, np.int64)
            if fixed_centers is None
            else np.asarray(fixed_centers, dtype=np.int64).ravel()
        )
        self.may = (
            np.ones(nc, bool) if allowed_centers is None else np.asarray(allowed_centers, bool)
        )
        if self.may.shape != (nc,):
            raise InputError(f"allowed_centers must have shape ({nc},), got {self.may.shape}")
        self.locked = None if locked is None else np.asarray(locked, dtype=np.int64)
        # the area each candidate stands at (itself, or the nearest area for extra points)
        cand = problem.candidates
        home = np.array(cand, dtype=np.int64, copy=True)
        extra = np.flatnonzero(home < 0)
        if extra.size:
            d = problem.cost.rows(extra)
            home[extra] = np.argmin(np.where(np.isfinite(d), d, np.inf), axis=1)
        self.home = home

    def territory_distances(self, sol: Solution) -> np.ndarray:
        """``(p, p)``: the least cost from one territory's center to an area of the other
        (symmetrised by the minimum); the diagonal is 0."""
        p = sol.p
        d = self.problem.cost.rows(np.asarray(sol.centers))
        t = np.full((p, p), np.inf)
        for u in range(p):
            mine = sol.assignment == u
            if mine.any():
                t[:, u] = d[:, mine].min(axis=1)
        t = np.minimum(t, t.T)
        np.fill_diagonal(t, 0.0)
        return t

    def group(self, sol: Solution, seeds: np.ndarray, dist: np.ndarray, target: int) -> np.ndarray:
        """The territories of the neighbourhood around ``seeds``: each seed with its nearest
        territories until the group holds ``target`` areas."""
        counts = np.bincount(sol.assignment, minlength=sol.p)
        chosen = np.zeros(sol.p, bool)
        for s in seeds:
            chosen[s] = True  # the seed first, even when another territory is as near
            held = int(counts[s])
            if held >= target:
                continue
            for u in np.argsort(dist[s], kind="stable"):
                if u == s:
                    continue
                if not np.isfinite(dist[s, u]):
                    break
                chosen[u] = True
                held += int(counts[u])
                if held >= target:
                    break
        return np.flatnonzero(chosen)

    def sub_mip(
        self, sol: Solution, group: np.ndarray, time_limit: float, start: bool
    ) -> Solution | None:
        """The plan with the territories ``group`` re-solved exactly (``None``: no plan)."""
        n, nc = self.n, self.nc
        cen = np.asarray(sol.centers, dtype=np.int64)
        a = np.asarray(sol.assignment, dtype=np.int64)
        in_s = np.isin(a, group)
        areas = np.flatnonzero(in_s)
        outside = np.setdiff1d(np.arange(sol.p), group)
        out_cen = cen[outside]
        # candidates standing in the group's areas, the group's centers, the run's fixed
        # centers and lock targets among them; never another territory's center
        sub = np.isin(self.home, areas) & self.may
        sub[cen[group]] = True
        if self.locked is not None:
            lk = self.locked[areas]
            sub[lk[lk >= 0]] = True
        fx = self.fixed[np.isin(self.fixed, cen[group])]
        sub[fx] = True
        sub[out_cen] = False
        allowed = sub.copy()
        allowed[out_cen] = True
        locked = np.where(in_s, -1, cen[a])
        if self.locked is not None:
            locked = np.where(in_s, self.locked, locked)
        pairs = np.zeros((nc, n), bool)
        pairs[np.ix_(np.flatnonzero(sub), areas)] = True
        pairs[cen[a[~in_s]], np.flatnonzero(~in_s)] = True
        try:
            out = solve_exact(
                self.problem,
                time_limit=time_limit,
                max_variables=10**8,
                fixed_centers=np.union1d(out_cen, fx),
                allowed_centers=allowed,
                locked=locked,
                pairs=pairs,
                initial=sol if start else None,
            )
        except (InfeasibleError, SolverError, InputError) as exc:
            # InputError: a sub-plan that leaves a territory empty (no lower size bound)
            log.debug("sub-MIP on territories %s gave no plan: %s", group.tolist(), exc)
            return None
        return out


def _better(cand: Solution | None, best: Solution) -> bool:
    return (
        cand is not None
        and cand.within_bounds
        and not cand.details.get("unreachable_areas")
        and cand.cost < best.cost - 1e-9 * max(1.0, abs(best.cost))
    )


def _finish(problem: TerritoryProblem, start: Solution, best: Solution, method: str) -> Solution:
    """``best`` without the sub-MIP's (meaningless) certificate, named after the input."""
    if best is start:
        return start
    return evaluate(
        problem,
        best.assignment,
        best.centers,
        method=start.method + method,
        seed=start.seed,
        iterations=start.iterations,
        starts=start.starts,
        seconds=start.seconds,
        details=dict(start.details),
    )


def neighbourhood_search(
    problem: TerritoryProblem,
    solution: Solution,
    *,
    time_limit: float = 10.0,
    target_areas: int = TARGET_AREAS,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    locked: np.ndarray | None = None,
    seed: int | None = 0,
) -> NeighbourhoodResult:
    """Improve a balanced plan by re-solving groups of neighbouring territories exactly.

    Passes over the territories in a random order (``seed``); each territory with its
    nearest territories (about ``target_areas`` areas) is re-solved by a sub-MIP (module
    docstring) started from the plan; an improvement is kept and a new pass begins. Stops
    when a whole pass improves nothing or the time is up.

    Parameters
    ----------
    problem
        The territory problem.
    solution
        A plan within the balance bounds (otherwise it is returned unchanged: see
        :func:`repair_balance`).
    time_limit
        Seconds in all.
    target_areas
        Areas per neighbourhood (at least two territories are always re-solved together).
    fixed_centers, allowed_centers, locked
        The run's side constraints (candidate indices that must be centers, mask of
        candidates that may be, candidate each area is locked to or -1); every plan keeps
        them.
    seed
        Order of the territories.

    Returns
    -------
    NeighbourhoodResult
        The plan is never worse than ``solution`` and never carries a bound from here.
    """
    t0 = time.perf_counter()
    time_limit = float(check_time_limit(time_limit, allow_none=False) or 0.0)
    if target_areas < 1:
        raise InputError(f"target_areas must be >= 1, got {target_areas}")
    res = NeighbourhoodResult(solution)
    if not solution.within_bounds or solution.p < 2 or solution.p >= problem.n:
        res.converged = True
        res.seconds = time.perf_counter() - t0
        return res
    ctx = _Context(problem, fixed_centers, allowed_centers, locked)
    rng = np.random.default_rng(seed)
    best = solution
    improved = True
    while improved:
        improved = False
        dist = ctx.territory_distances(best)
        for t in rng.permutation(best.p):
            left = time_limit - (time.perf_counter() - t0)
            if left < 0.05:
                res.solution = _finish(problem, solution, best, "+lns")
                res.seconds = time.perf_counter() - t0
                return res
            group = ctx.group(best, np.array([t]), dist, max(target_areas, 1))
            if group.size < 2:
                group = np.argsort(dist[t], kind="stable")[:2]
            cand = ctx.sub_mip(best, group, max(min(left, max(1.0, _SUB_SHARE * left)), 0.05), True)
            res.sub_mips += 1
            if _better(cand, best):
                assert cand is not None
                log.debug("neighbourhood %s: %.6g -> %.6g", group.tolist(), best.cost, cand.cost)
                best = cand
                res.improvements += 1
                improved = True
                break
    res.converged = True
    res.solution = _finish(problem, solution, best, "+lns")
    res.seconds = time.perf_counter() - t0
    return res


def repair_balance(
    problem: TerritoryProblem,
    solution: Solution,
    *,
    time_limit: float = 5.0,
    target_areas: int = TARGET_AREAS,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    locked: np.ndarray | None = None,
) -> NeighbourhoodResult:
    """Bring a plan within the balance bounds by re-solving the territories out of bounds
    together with their nearest neighbours (one sub-MIP; the group doubles while the sub-MIP
    has no plan, up to all territories).

    Returns
    -------
    NeighbourhoodResult
        ``solution`` is a plan within the bounds (``improvements == 1``), or the input when
        none was found in time (``improvements == 0``).
    """
    t0 = time.perf_counter()
    time_limit = float(check_time_limit(time_limit, allow_none=False) or 0.0)
    res = NeighbourhoodResult(solution)
    if solution.within_bounds or solution.p < 1:
        res.converged = True
        return res
    ctx = _Context(problem, fixed_centers, allowed_centers, locked)
    lo, hi = problem.center_bounds(np.asarray(solution.centers))
    sizes = np.asarray(solution.sizes)
    # the test of optimizer.solution.evaluate
    bad = np.any(sizes > hi * (1 + 1e-9) + 1e-9, axis=1)
    if lo is not None:
        bad |= np.any(sizes < lo * (1 - 1e-9) - 1e-9, axis=1)
    seeds = np.flatnonzero(bad)
    if seeds.size == 0:  # out of bounds for another reason (e.g. an unreachable area)
        res.seconds = time.perf_counter() - t0
        return res
    dist = ctx.territory_distances(solution)
    target = max(target_areas, 1)
    while True:
        left = time_limit - (time.perf_counter() - t0)
        if left < 0.05:
            break
        group = ctx.group(solution, seeds, dist, target)
        cand = ctx.sub_mip(solution, group, left, False)
        res.sub_mips += 1
        if cand is not None and cand.within_bounds and not cand.details.get("unreachable_areas"):
            res.solution = _finish(problem, solution, cand, "+repair")
            res.improvements = 1
            break
        if group.size >= solution.p:
            break
        target *= 2
    res.converged = True
    res.seconds = time.perf_counter() - t0
    return res
