"""The three scenarios territory planners run every quarter (eSpatial's "optimize existing",
"consolidate" and "expand", seed 000), on any cost matrix.

Given an existing alignment (``existing[v]`` = territory ``0..P-1`` of area ``v``) and the
new number of territories ``p`` (``problem.p``):

``rebalance`` (``p == P``)
    Keep the territories: their centers start at the 1-median of each existing territory (or
    at the given ones) and may relocate unless fixed; bring every territory within the
    tolerance while trading moved areas against drive time (see *Objective*).
``consolidate`` (``p < P``)
    Dissolve the ``P - p`` smallest territories (by the first measure, or the ones named);
    the remaining territories keep their centers; their areas are free (moving them costs
    nothing), then rebalance as above.
``expand`` (``p > P``)
    Keep the existing centers; add ``p - P`` centers among the areas, drawn like weighted
    k-means++ away from the existing centers (seeded); then rebalance.

Objective
---------
The same as the local search's (:mod:`optimizer.local`), with :math:`C_0` the weighted cost
of the existing alignment (existing territories, their centers):

.. math::

    F(a) = B(a) + \\frac{C(a)}{C_0} + \\omega_D\\, \\frac{\\sum_v \\delta_v [a_v \\ne e_v]}
    {\\sum_v \\delta_v}

with :math:`\\omega_D` = ``disruption`` and :math:`\\delta_v` the distance weights
:math:`c_v` (the first measure by default). Multiplied by :math:`C_0`, moving area ``v`` out
of its existing territory costs :math:`\\lambda_v = \\omega_D\\, C_0\\, \\delta_v / \\sum \\delta`
in units of weighted distance: with the default :math:`\\delta = c`,
:math:`\\lambda_v = c_v\\, \\omega_D\\, \\bar d` where :math:`\\bar d = C_0 / \\sum_v c_v` is the
existing alignment's mean distance to the center. So ``disruption = 1`` prices a move like
serving the area one average trip farther away; 0 ignores moves (a redesign that only keeps
the territories' identities); large values keep the alignment unless balance forces a move.

Method (``start="best"``, the default, runs both starts and keeps the better result)
------------------------------------------------------------------------------------
``"allocation"``: **disruption-aware location–allocation.** Alternate (at most ``max_rounds``
times, until the centers repeat)

* allocation: TRANSP (:mod:`optimizer.transp`, the balance bounds as constraints) on the
  costs :math:`c_v d_{tv} + \\lambda_v [t \\ne e_v]` (areas new to the design, e.g. of a
  dissolved territory, have no :math:`\\lambda` term; locked areas may only stay), then the
  optimal split resolution (:mod:`optimizer.split`);
* location: the 1-median of every territory whose center is not fixed;

then the greedy balance repair (:mod:`optimizer.repair`, when contiguity is not required),
and the tabu local search with the disruption term, the same :math:`C_0` and, when required,
contiguity (it first repairs fragments the allocation left).

``"existing"``: the local search (same objective) straight from the existing alignment
(greedy balance repair first when contiguity is not required): few moves, but a poor start
keeps much of its travel.

The better result is the contiguous one (when contiguity is required: the allocation can
strand a locked area away from its territory, and the repair moves no locked area), then the
one within the tolerance, then the one with the lower :math:`F`.
The local search's band penalty is raised with the disruption weight,
:math:`\\kappa = 100 \\max(1, \\omega_D)`: at the default :math:`\\kappa = 100` a weight of 4
already prefers a territory 0.04 % over its bound to moving a small area back in, and the
tolerance is meant as a constraint, not as a price.

Every run reports what changed: areas moved (count and weight), balance and weighted cost
before and after, the objective of both starts.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Literal

import numpy as np

from optimizer.exceptions import InputError
from optimizer.location import initial_centers, one_medians
from optimizer.problem import TerritoryProblem
from optimizer.repair import repair_balance
from optimizer.solution import Solution, evaluate
from optimizer.validation import check_time_limit

__all__ = ["ScenarioResult", "disruption_costs", "run_scenario"]

log = logging.getLogger(__name__)

Start = Literal["best", "allocation", "existing"]

_BAND = 100.0  # the local search's default band penalty, at disruption <= 1


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
    start
        The start the result comes from (``"allocation"`` or ``"existing"``).
    objective
        :math:`F` of the result of each start that ran (lower is better).
    allocation
        The disruption-aware allocation before the local search (``None`` when that start
        did not run): its metrics and areas moved, to compare with the local search's.
    """

    kind: str
    solution: Solution
    origin: np.ndarray
    dissolved: list[int]
    moved: np.ndarray
    before: dict[str, Any]
    after: dict[str, Any]
    start: str = "existing"
    objective: dict[str, float] = dataclasses.field(default_factory=dict)
    allocation: dict[str, Any] | None = None

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
            "start": self.start,
            "objective": self.objective,
        }
        if self.allocation is not None:
            out["allocation"] = self.allocation
        if weights is not None:
            out["weight_moved"] = float(weights[self.moved].sum())
        return out


def _metrics(sol: Solution) -> dict[str, Any]:
    return {
        "max_deviation": sol.max_deviation,
        "cost": sol.cost,
        "within_bounds": sol.within_bounds,
    }


def _existing_centers(
    problem: TerritoryProblem,
    existing: np.ndarray,
    big_p: int,
    given: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Each existing territory's center: the given one where ``fixed``, else its 1-median
    (over the permitted candidates) started from the candidate of its first area."""
    fx = np.zeros(big_p, bool) if fixed is None else np.asarray(fixed, bool)
    cand_of_area = {int(a): j for j, a in enumerate(problem.candidates) if a >= 0}
    start = np.empty(big_p, dtype=np.int64)
    for t in range(big_p):
        if fx[t]:
            assert given is not None
            start[t] = int(given[t])
            continue
        first = int(np.flatnonzero(existing == t)[0])
        if first not in cand_of_area:
            raise InputError(
                f"existing territory {t} has no given center and the areas are not "
                "candidates: give every territory a center, or let areas host centers"
            )
        start[t] = cand_of_area[first]
    if np.unique(start).shape[0] != big_p:  # a free territory starts on a fixed center
        taken = set(start[fx].tolist())
        for u in np.flatnonzero(~fx).tolist():
            if int(start[u]) in taken:
                members = np.flatnonzero(existing == u).tolist()
                free = [cand_of_area[v] for v in members if v in cand_of_area]
                free = [j for j in free if j not in taken]
                if free:
                    start[u] = free[0]
            taken.add(int(start[u]))
    shadow = dataclasses.replace(problem, p=big_p)
    return one_medians(shadow, existing, start, fixed=fx, allowed=allowed)


def disruption_costs(
    problem: TerritoryProblem,
    existing: np.ndarray,
    disruption: float,
    reference_cost: float,
) -> np.ndarray:
    """``(n,)`` :math:`\\lambda_v`: the price of moving area ``v`` out of its existing
    territory, in units of weighted distance (see the module docstring); 0 for areas new to
    the design (``existing[v] == -1``)."""
    cw = problem.objective_weights
    delta = cw if cw.sum() > 0 else np.ones(problem.n)
    lam = float(disruption) * float(reference_cost) * delta / float(delta.sum())
    return np.where(np.asarray(existing) >= 0, lam, 0.0)


def _allocate_with_disruption(
    problem: TerritoryProblem,
    existing_new: np.ndarray,
    centers: np.ndarray,
    fixed: np.ndarray,
    lam: np.ndarray,
    locked: np.ndarray | None,
    allowed_centers: np.ndarray | None,
    max_rounds: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Location–allocation on the costs ``c_v d_tv + lam_v [t != e_v]`` (module docstring).

    Returns the assignment, the centers and the rounds made.
    """
    from optimizer.la import _fill_empty, allocate

    p, n = problem.p, problem.n
    cw = problem.objective_weights
    # TRANSP multiplies the cost rows by the cost weights: give it the weighted rows
    unit = dataclasses.replace(problem, cost_weights=np.ones(n))
    stay = np.zeros((p, n), bool)
    has = existing_new >= 0
    stay[existing_new[has], np.flatnonzero(has)] = True
    allowed = None
    if locked is not None and np.any(locked & has):
        allowed = np.ones((p, n), bool)
        cols = np.flatnonzero(locked & has)
        allowed[:, cols] = stay[:, cols]
    cent = centers.copy()
    assign = existing_new.copy()
    seen: set[tuple[int, ...]] = set()
    rounds = 0
    for _ in range(max_rounds):
        rounds += 1
        rows = problem.cost.rows(cent)
        with np.errstate(invalid="ignore"):  # 0 * inf for areas without weight
            eff = np.where(np.isfinite(rows), cw[None, :] * rows, np.inf)
        eff = eff + np.where(stay, 0.0, lam[None, :])
        assign, _ = allocate(unit, cent, cost_rows=eff, allowed=allowed)
        assign = _fill_empty(problem, assign, cent)
        new = one_medians(problem, assign, cent, fixed=fixed, allowed=allowed_centers)
        key = tuple(sorted(new.tolist()))
        if np.array_equal(new, cent) or key in seen:
            break
        seen.add(key)
        cent = new
    return assign, cent, rounds


def run_scenario(
    problem: TerritoryProblem,
    existing: np.ndarray,
    *,
    centers: np.ndarray | None = None,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    dissolve: list[int] | None = None,
    adjacency: Any = None,
    require_contiguity: bool = False,
    locked: np.ndarray | None = None,
    disruption: float = 1.0,
    start: Start = "best",
    max_rounds: int = 10,
    time_limit: float = 10.0,
    seed: int = 0,
) -> ScenarioResult:
    """Rebalance, consolidate or expand an existing alignment (see the module docstring).

    Parameters
    ----------
    problem
        The problem with the NEW number of territories ``p``. Candidates must include the
        areas unless every existing territory's center is given and fixed (and ``p <= P``).
    existing
        ``(n,)`` existing territory ``0..P-1`` of every area.
    centers
        ``(P,)`` candidate index of each existing territory's center (default: the 1-median).
        With ``fixed_centers`` only the fixed entries are read.
    fixed_centers
        ``(P,)`` booleans: existing territories whose given center never moves (reps' homes,
        offices); the other centers start at their 1-median and may relocate.
    allowed_centers
        ``(n_candidates,)`` mask of candidates that may host a center.
    dissolve
        Existing territories to dissolve when consolidating (default: the smallest).
    adjacency, require_contiguity
        Contiguity for the local search (:func:`optimizer.local.local_search`).
    locked
        ``(n,)`` booleans: areas that keep their existing territory.
    disruption
        :math:`\\omega_D`, the weight of moved areas (module docstring; >= 0).
    start
        ``"allocation"``, ``"existing"`` or ``"best"`` (both; the contiguous result, then
        the one within the tolerance, then the lower objective wins).
    max_rounds
        Location–allocation rounds of the ``"allocation"`` start.
    time_limit
        Seconds for the local search (shared by the starts).
    seed
        Seed of the new centers (expand) and of the local search.
    """
    from optimizer.local import LocalSearchWeights, local_search, objective_terms

    t0 = time.perf_counter()
    ex = np.asarray(existing, dtype=np.int64)
    if ex.shape != (problem.n,) or ex.min() < 0:
        raise InputError("existing must give a territory 0..P-1 for every area")
    big_p = int(ex.max()) + 1
    if np.any(np.bincount(ex, minlength=big_p) == 0):
        raise InputError("existing territories must be numbered 0..P-1 without gaps")
    if not (np.isfinite(disruption) and disruption >= 0):
        raise InputError(f"disruption must be finite and >= 0, got {disruption!r}")
    if start not in ("best", "allocation", "existing"):
        raise InputError(f"start must be 'best', 'allocation' or 'existing', got {start!r}")
    p = problem.p
    fixed_old = np.zeros(big_p, bool)
    if fixed_centers is not None:
        fixed_old = np.asarray(fixed_centers, bool)
        if fixed_old.shape != (big_p,):
            raise InputError(f"fixed_centers must be a ({big_p},) boolean mask")
        if centers is None:
            raise InputError("fixed_centers needs centers (the fixed territories' candidates)")
    if centers is not None and np.asarray(centers).shape != (big_p,):
        raise InputError(f"centers must give one candidate per existing territory ({big_p})")
    if centers is None:
        old_centers = _existing_centers(problem, ex, big_p, allowed=allowed_centers)
    elif fixed_centers is None:
        old_centers = np.asarray(centers, dtype=np.int64)
        fixed_old[:] = False
    else:
        old_centers = _existing_centers(
            problem, ex, big_p, np.asarray(centers, np.int64), fixed_old, allowed_centers
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
        cent = initial_centers(problem, rng, fixed=old_centers, allowed=allowed_centers)
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
    existing_new = _existing_in_new(ex, origin)
    fixed = np.array([bool(o >= 0 and fixed_old[o]) for o in origin])
    lk = None if locked is None else np.asarray(locked, bool)
    wts = LocalSearchWeights(disruption=disruption, band_penalty=_BAND * max(1.0, disruption))
    c0 = before.cost if np.isfinite(before.cost) and before.cost > 0 else 1.0
    starts: list[str] = ["allocation", "existing"] if start == "best" else [start]
    deadline = t0 + float(check_time_limit(time_limit, allow_none=False) or 0.0)
    results: dict[str, Any] = {}
    objective: dict[str, float] = {}
    within: dict[str, bool] = {}
    joined: dict[str, bool] = {}
    alloc_facts: dict[str, Any] | None = None
    for i, name in enumerate(starts):
        if name == "allocation":
            lam = disruption_costs(problem, existing_new, disruption, c0)
            a0, c_start, n_rounds = _allocate_with_disruption(
                problem, existing_new, cent, fixed, lam, lk, allowed_centers, max_rounds
            )
            ev = evaluate(problem, a0, c_start)
            alloc_facts = {
                **_metrics(ev),
                "areas_moved": int(np.count_nonzero(a0 != existing_new)),
                "rounds": n_rounds,
            }
        else:
            a0, c_start = assign, cent
        if not require_contiguity:  # the greedy repair ignores contiguity
            a0, _ = repair_balance(problem, a0, c_start, locked=lk)
        share = max(0.0, deadline - time.perf_counter()) / (len(starts) - i)
        res = local_search(
            problem,
            a0,
            c_start,
            adjacency=adjacency,
            require_contiguity=require_contiguity,
            existing=existing_new,
            locked=lk,
            fixed_centers=fixed,
            allowed_centers=allowed_centers,
            weights=wts,
            reference_cost=c0,
            time_limit=share,
            seed=seed,
        )
        f, _ = objective_terms(
            problem,
            res.assignment,
            res.centers,
            reference_cost=c0,
            existing=existing_new,
            weights=wts,
        )
        results[name] = res
        objective[name] = f
        within[name] = evaluate(problem, res.assignment, res.centers).within_bounds
        joined[name] = not require_contiguity or bool(res.contiguous)
        log.info(
            "scenario %s, start %s: F = %.6g, within bounds: %s, contiguous: %s",
            kind,
            name,
            f,
            within[name],
            joined[name],
        )
    # contiguous when required, then within the bounds (constraints), then the lower objective
    chosen = min(
        objective, key=lambda k: (not joined[k], not within[k], objective[k], starts.index(k))
    )
    res = results[chosen]
    sol = evaluate(
        problem,
        res.assignment,
        res.centers,
        method=f"scenario-{kind}",
        seed=seed,
        seconds=time.perf_counter() - t0,
        details={
            "start": chosen,
            "objective": objective,
            "local_search": {
                "moves": res.moves,
                "swaps": res.swaps,
                "chains": res.chains,
                "kicks": res.kicks,
                "stopped": res.stopped,
            },
        },
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
        start=chosen,
        objective=objective,
        allocation=alloc_facts,
    )


def _existing_in_new(ex: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Existing territories renumbered into the new design's numbering (-1 = dissolved)."""
    big_p = int(ex.max()) + 1
    new_of_old = np.full(big_p, -1)
    cont = np.flatnonzero(origin >= 0)
    new_of_old[origin[cont]] = cont
    return new_of_old[ex]
