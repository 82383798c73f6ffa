"""optimizer: territory design on any cost matrix (drive time or straight line).

Arrays in, arrays out; it never imports :mod:`roadnet`. A :class:`TerritoryProblem` holds the
basic areas' activity measures, ``p``, the balance tolerance (or capacities) and a cost
provider; :func:`solve` runs one of the methods of Kalcsics, Nickel & Schröder (2005):

============================  ===============================================================
``method``                    what it runs
============================  ===============================================================
``"la"`` (default)            location–allocation, TRANSP + optimal split resolution (§5)
``"la-assignmax"``            location–allocation, TRANSP + AssignMAX
``"la-mindist"``              location–allocation with AllocMinDist (nearest center)
``"interchange"``             AllocMinDist + Teitz–Bart vertex substitution ("Inter", §7)
``"dichotomies"``             successive dichotomies (§6), needs ``problem.coords``
``"dichotomies-split"``       successive dichotomies with one split per cut, resolved
                              optimally (§6.5)
``"exact"``                   the MIP (HiGHS) for small instances, with its dual bound
============================  ===============================================================

Every method returns a :class:`Solution` with the assignment, centers, sizes, deviations and
cost, and two certificates: ``lower_bound`` / ``optimality_gap``, a bound on the whole problem
(:mod:`optimizer.bounds`: the MIP's dual bound, the LP relaxation or a Lagrangian bound;
``bound="none"`` skips it), and, for location–allocation, ``allocation_bound`` /
``allocation_gap``, the TRANSP bound for the chosen centers only (no optimality certificate).

:func:`optimizer.polish.polish` spends a time budget on a (restricted) exact MIP after any
heuristic, with the MIP neighbourhood search of :mod:`optimizer.lns` when the MIP stalls, and
attaches the certificates; it is what the application's default runs.

After any of them, :func:`optimizer.local.local_search` improves balance, drive time and
(against an existing alignment) disruption, keeping contiguity when required
(:mod:`optimizer.contiguity`); :func:`optimizer.scenarios.run_scenario` rebalances,
consolidates or expands an existing alignment.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from optimizer.exact import solve_exact
from optimizer.exceptions import InfeasibleError, InputError, OptimizerError, SolverError
from optimizer.la import allocate, location_allocation
from optimizer.location import one_medians
from optimizer.problem import (
    CostMatrix,
    EuclideanCost,
    HaversineCost,
    TerritoryProblem,
)
from optimizer.solution import Solution, evaluate, with_lower_bound
from optimizer.transp import TranspResult, solve_transp

__all__ = [
    "METHODS",
    "CostMatrix",
    "EuclideanCost",
    "HaversineCost",
    "InfeasibleError",
    "InputError",
    "OptimizerError",
    "Solution",
    "SolverError",
    "TerritoryProblem",
    "TranspResult",
    "allocate",
    "evaluate",
    "location_allocation",
    "solve",
    "solve_exact",
    "solve_transp",
]

METHODS = (
    "la",
    "la-assignmax",
    "la-mindist",
    "interchange",
    "dichotomies",
    "dichotomies-split",
    "exact",
)


def solve(
    problem: TerritoryProblem,
    method: str = "la",
    *,
    seed: int | None = 0,
    bound: str = "auto",
    bound_time_limit: float = 2.0,
    **options: Any,
) -> Solution:
    """Solve ``problem`` with ``method`` (see the module docstring); options go to the solver.

    ``bound`` (``"auto"``, ``"lp"``, ``"lagrangian"`` or ``"none"``) selects the bound on the
    whole problem attached to the result (:func:`optimizer.bounds.global_lower_bound`, within
    ``bound_time_limit`` seconds) when the method has none of its own; it respects the
    options ``fixed_centers``, ``allowed_centers`` and ``locked``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> prob = TerritoryProblem.from_points(rng.random((60, 2)), np.ones(60), 3, tolerance=0.1)
    >>> sol = solve(prob, "la")
    >>> sol.sizes[:, 0].tolist()
    [20.0, 20.0, 20.0]
    >>> sol.lower_bound <= sol.cost
    True
    """
    sol = _solve(problem, method, seed=seed, **options)
    if bound == "none" or sol.lower_bound is not None:
        return sol
    from optimizer.bounds import global_lower_bound

    side = {k: options.get(k) for k in ("fixed_centers", "allowed_centers", "locked")}
    glob = global_lower_bound(
        problem, method=bound, upper=sol.cost, time_limit=bound_time_limit, **side
    )
    if glob.value is None:
        return sol
    return with_lower_bound(sol, glob.value, glob.source, glob.relaxed)


def _solve(problem: TerritoryProblem, method: str, *, seed: int | None, **options: Any) -> Solution:
    if method == "la":
        return location_allocation(problem, seed=seed, **options)
    if method == "la-assignmax":
        return location_allocation(problem, split="assignmax", seed=seed, **options)
    if method == "la-mindist":
        return location_allocation(problem, allocation="mindist", seed=seed, **options)
    if method == "interchange":
        return _interchange(problem, seed=seed, **options)
    if method in ("dichotomies", "dichotomies-split"):
        _no_center_options(method, options)
        return _dichotomies(problem, split=method.endswith("split"), seed=seed, **options)
    if method == "exact":
        return solve_exact(problem, **options)
    raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _no_center_options(method: str, options: dict[str, Any]) -> None:
    """Refuse center options a method cannot honour (with what to use instead)."""
    given = [k for k in ("allowed_centers", "fixed_centers", "locked") if k in options]
    if given:
        raise InputError(
            f"method {method!r} draws territories first and cannot honour {', '.join(given)} "
            "(forbidden, given or locked centers); use la, la-assignmax, la-mindist"
            + (", interchange or exact" if given == ["allowed_centers"] else "")
        )


def _interchange(problem: TerritoryProblem, *, seed: int | None, **options: Any) -> Solution:
    from optimizer.pmedian import solve_pmedian
    from optimizer.validation import check_allowed_centers

    _no_center_options("interchange", {k: v for k, v in options.items() if k != "allowed_centers"})
    t0 = time.perf_counter()
    nc = problem.cost.shape[0]
    allowed = check_allowed_centers(options.pop("allowed_centers", None), nc, problem.p)
    rows = np.arange(nc) if allowed is None else np.flatnonzero(allowed)
    dist = problem.cost.rows(np.arange(nc))
    res = solve_pmedian(
        dist[rows],
        problem.objective_weights,
        problem.p,
        seed=0 if seed is None else seed,
        **options,
    )
    centers = rows[np.asarray(res.centers, dtype=np.int64)]
    assignment = np.argmin(dist[centers], axis=0).astype(np.int64)
    sol = evaluate(
        problem,
        assignment,
        centers,
        method="interchange",
        seed=seed,
        iterations=int(res.iterations),
        seconds=time.perf_counter() - t0,
    )
    return sol


def _dichotomies(
    problem: TerritoryProblem, *, split: bool, seed: int | None, **options: Any
) -> Solution:
    from optimizer.dichotomy import successive_dichotomies, successive_dichotomies_split

    if problem.coords is None:
        raise InputError(
            "successive dichotomies need planar coordinates (problem.coords); "
            "build the problem with from_points or give coords="
        )
    t0 = time.perf_counter()
    solve_dichotomies = successive_dichotomies_split if split else successive_dichotomies
    tol = np.vstack([problem.tol_lower, problem.tol_upper])
    res = solve_dichotomies(
        problem.coords,
        problem.weights,
        problem.p,
        tolerance=options.pop("tolerance", tol),
        seed=seed,
        **options,
    )
    assignment = np.asarray(res.assignment, dtype=np.int64)
    # centers: the 1-median of each territory (for the cost and the reports)
    start = np.array([_first_candidate(problem, assignment, t) for t in range(problem.p)])
    centers = one_medians(problem, assignment, start)
    return evaluate(
        problem,
        assignment,
        centers,
        method="dichotomies" + ("-split" if split else ""),
        seed=seed,
        seconds=time.perf_counter() - t0,
        details={
            "nodes_explored": int(res.nodes_explored),
            "backtracks": int(res.backtracks),
            "relaxations": int(res.relaxations),
            "splits": int(res.splits),
        },
    )


def _first_candidate(problem: TerritoryProblem, assignment: np.ndarray, t: int) -> int:
    members = np.flatnonzero(assignment == t)
    pos = np.flatnonzero(np.isin(problem.candidates, members))
    if pos.size:
        return int(pos[0])
    return int(np.argmin(problem.cost.block(np.arange(problem.cost.shape[0]), members).sum(1)))
