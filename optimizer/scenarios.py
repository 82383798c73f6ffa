"""The three scenarios territory planners run every quarter (eSpatial's "optimize existing",
"consolidate" and "expand", seed 000), on any cost matrix.

Given an existing alignment (``existing[v]`` = territory ``0..P-1`` of area ``v``) and the
new number of territories ``p`` (``problem.p``):

``rebalance`` (``p == P``)
    Keep the territories (centers start at the 1-median of each existing territory, or the
    given ones, and may relocate); move as few areas as possible to bring every territory
    within the tolerance: greedy balance repair (when contiguity is not required), then tabu
    local search with a disruption term (:mod:`optimizer.local`).
``consolidate`` (``p < P``)
    Dissolve the ``P - p`` smallest territories (by the first measure, or the ones named);
    their areas go to the nearest remaining center by cost; then rebalance as above. Remaining
    territories keep their centers.
``expand`` (``p > P``)
    Keep the existing centers; add ``p - P`` centers among the areas, drawn like weighted
    k-means++ away from the existing centers (seeded); each new territory starts with the areas
    closer to its center than to their current one; then rebalance.

Every run reports what changed: areas moved (count and weight), balance and weighted cost
before and after.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from optimizer.exceptions import InputError
from optimizer.location import initial_centers, one_medians
from optimizer.problem import TerritoryProblem
from optimizer.repair import repair_balance
from optimizer.solution import Solution, evaluate

__all__ = ["ScenarioResult", "run_scenario"]


@dataclasses.dataclass
class ScenarioResult:
    """Outcome of a scenario.

    Attributes
    ----------
    kind
        ``"rebalance"``, ``"consolidate"`` or ``"expand"``.
    solution
        The new design (territory ``t`` of the new design).
    origin
        ``(p,)`` existing territory each new territory continues, -1 for a new one.
    dissolved
        Existing territories dissolved (consolidate).
    moved
        ``(n,)`` areas whose territory changed (dissolved territories' areas count as moved).
    before, after
        ``{"max_deviation", "cost", "within_bounds"}`` of the existing and the new design
        (the existing one measured against the new ``p``'s bounds where sizes compare).
    """

    kind: str
    solution: Solution
    origin: np.ndarray
    dissolved: list[int]
    moved: np.ndarray
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def n_moved(self) -> int:
        """Number of areas that changed territory."""
        return int(self.moved.sum())

    def to_dict(self, weights: np.ndarray | None = None) -> dict[str, Any]:
        """JSON-friendly summary of what changed."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "areas_moved": self.n_moved,
            "dissolved": self.dissolved,
            "before": self.before,
            "after": self.after,
        }
        if weights is not None:
            out["weight_moved"] = float(weights[self.moved].sum())
        return out


def _metrics(sol: Solution) -> dict[str, Any]:
    return {
        "max_deviation": sol.max_deviation,
        "cost": sol.cost,
        "within_bounds": sol.within_bounds,
    }


def _existing_centers(problem: TerritoryProblem, existing: np.ndarray, big_p: int) -> np.ndarray:
    start = np.array([int(np.flatnonzero(existing == t)[0]) for t in range(big_p)])
    # area candidates: the first area of each territory, then the 1-median among its areas
    cand_of_area = {int(a): j for j, a in enumerate(problem.candidates) if a >= 0}
    centers = np.array([cand_of_area[int(a)] for a in start], dtype=np.int64)
    shadow = dataclasses.replace(problem, p=big_p)
    return one_medians(shadow, existing, centers)


def run_scenario(
    problem: TerritoryProblem,
    existing: np.ndarray,
    *,
    centers: np.ndarray | None = None,
    dissolve: list[int] | None = None,
    adjacency: Any = None,
    require_contiguity: bool = False,
    locked: np.ndarray | None = None,
    disruption: float = 1.0,
    time_limit: float = 10.0,
    seed: int = 0,
) -> ScenarioResult:
    """Rebalance, consolidate or expand an existing alignment (see the module docstring).

    Parameters
    ----------
    problem
        The problem with the NEW number of territories ``p``; candidates must include the
        areas (default problems do).
    existing
        ``(n,)`` existing territory ``0..P-1`` of every area.
    centers
        ``(P,)`` candidate index of each existing territory's center (default: the 1-median).
    dissolve
        Existing territories to dissolve when consolidating (default: the smallest).
    adjacency, require_contiguity
        Contiguity for the local search (:func:`optimizer.local.local_search`).
    locked
        ``(n,)`` booleans: areas that keep their existing territory.
    disruption
        Weight of the disruption term (share of weight moved) against balance and cost.
    time_limit, seed
        For the local search.
    """
    from optimizer.local import LocalSearchWeights, local_search

    t0 = time.perf_counter()
    ex = np.asarray(existing, dtype=np.int64)
    if ex.shape != (problem.n,) or ex.min() < 0:
        raise InputError("existing must give a territory 0..P-1 for every area")
    big_p = int(ex.max()) + 1
    if np.any(np.bincount(ex, minlength=big_p) == 0):
        raise InputError("existing territories must be numbered 0..P-1 without gaps")
    p = problem.p
    old_centers = (
        _existing_centers(problem, ex, big_p)
        if centers is None
        else np.asarray(centers, dtype=np.int64)
    )
    before_problem = dataclasses.replace(problem, p=big_p)
    before = evaluate(before_problem, ex, old_centers)
    rows = problem.cost.rows(old_centers)  # (P, n)
    dissolved: list[int] = []
    if p == big_p:
        kind = "rebalance"
        origin = np.arange(p)
        assign, cent = ex.copy(), old_centers.copy()
    elif p < big_p:
        kind = "consolidate"
        sizes = np.bincount(ex, weights=problem.weights[:, 0], minlength=big_p)
        dissolved = (
            sorted(dissolve)
            if dissolve is not None
            else sorted(np.argsort(sizes, kind="stable")[: big_p - p].tolist())
        )
        if len(dissolved) != big_p - p:
            raise InputError(
                f"consolidating {big_p} to {p} territories dissolves "
                f"{big_p - p}, got {len(dissolved)}"
            )
        origin = np.array([t for t in range(big_p) if t not in dissolved])
        new_index = np.full(big_p, -1)
        new_index[origin] = np.arange(p)
        assign = new_index[ex]
        orphans = np.flatnonzero(assign < 0)
        keep_rows = rows[origin]
        nearest = np.argmin(np.where(np.isfinite(keep_rows), keep_rows, np.inf)[:, orphans], axis=0)
        assign[orphans] = nearest
        cent = old_centers[origin]
    else:
        kind = "expand"
        origin = np.concatenate([np.arange(big_p), np.full(p - big_p, -1)])
        rng = np.random.default_rng(seed)
        cent = initial_centers(problem, rng, fixed=old_centers)
        assign = ex.copy()
        new_rows = problem.cost.rows(cent[big_p:])  # (p - P, n)
        current = rows[ex, np.arange(problem.n)]
        best_new = np.argmin(new_rows, axis=0)
        closer = new_rows[best_new, np.arange(problem.n)] < current
        if locked is not None:
            closer &= ~np.asarray(locked, bool)
        assign[closer] = big_p + best_new[closer]
        for j in range(p - big_p):  # every new territory holds at least its center's area
            area = int(problem.candidates[cent[big_p + j]])
            if area >= 0:
                assign[area] = big_p + j
    # rebalance: greedy repair, then tabu search that counts moves away from the old design
    existing_new = _existing_in_new(ex, origin)
    lk = None if locked is None else np.asarray(locked, bool)
    if not require_contiguity:  # the greedy repair ignores contiguity
        assign, _ = repair_balance(problem, assign, cent, locked=lk)
    res = local_search(
        problem,
        assign,
        cent,
        adjacency=adjacency,
        require_contiguity=require_contiguity,
        existing=existing_new,
        locked=lk,
        weights=LocalSearchWeights(disruption=disruption),
        time_limit=time_limit,
        seed=seed,
    )
    sol = evaluate(
        problem,
        res.assignment,
        res.centers,
        method=f"scenario-{kind}",
        seed=seed,
        seconds=time.perf_counter() - t0,
        details={"local_search": {"moves": res.moves, "swaps": res.swaps, "stopped": res.stopped}},
    )
    moved = existing_new != sol.assignment
    return ScenarioResult(
        kind=kind,
        solution=sol,
        origin=origin,
        dissolved=dissolved,
        moved=moved,
        before=_metrics(before),
        after=_metrics(sol),
    )


def _existing_in_new(ex: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Existing territories renumbered into the new design's numbering (-1 = dissolved)."""
    big_p = int(ex.max()) + 1
    new_of_old = np.full(big_p, -1)
    cont = np.flatnonzero(origin >= 0)
    new_of_old[origin[cont]] = cont
    return new_of_old[ex]
