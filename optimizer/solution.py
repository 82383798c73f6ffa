"""Solutions with their metrics and certificates, recomputed from the arrays.

Every solver returns a :class:`Solution`; :func:`evaluate` recomputes the metrics from an
assignment and centers so that reported numbers always equal recomputed ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from optimizer.exceptions import InputError
from optimizer.problem import TerritoryProblem

__all__ = ["Solution", "evaluate", "with_lower_bound"]


@dataclasses.dataclass
class Solution:
    """A territory design with metrics and a lower-bound certificate.

    Attributes
    ----------
    assignment
        ``(n,)`` territory index ``0..p-1`` of every area.
    centers
        ``(p,)`` candidate index of each territory's center.
    sizes
        ``(p, m)`` territory sizes per measure.
    deviation
        ``(p, m)`` relative deviation of each size from the mean (capacity mode: from the
        capacity, as load / capacity - 1).
    max_deviation
        Largest absolute relative deviation over territories and measures.
    cost
        Total weighted distance ``sum_v c_v d(center(v), v)``.
    lower_bound
        A lower bound on the cost of **every** plan of the problem (all centers, all
        assignments over reachable pairs, the same balance bounds; see ``bound_source`` and
        ``bound_relaxes``), or ``None``.
    bound_source
        Where ``lower_bound`` comes from: ``"mip"`` (a MIP's dual bound), ``"lp-relaxation"``,
        ``"lagrangian"`` (:mod:`optimizer.bounds`), ``"mip-contiguous"`` (the dual bound of
        the contiguous MIP, :func:`optimizer.exact.solve_exact` with an adjacency: it bounds
        every plan whose territories are connected around their own center areas, islands
        whole, within the same balance bounds, and nothing else) or ``"none"``.
    optimality_gap
        ``(cost - lower_bound) / cost``: the plan is at most this far above the optimum. Only
        when the plan meets the balance bounds and serves every area from a center that
        reaches it (otherwise its cost is not comparable and there is no gap).
    within_bounds
        All territories meet the tolerance (or capacity) bounds.
    method, iterations, starts, seconds, seed
        How it was obtained.
    details
        Method-specific facts (splits resolved, nodes explored, ...).
    allocation_bound
        A lower bound on the cost of any allocation **to these centers** that meets the
        bounds (the TRANSP LP, ``"transp-lp"``); no bound on the problem: other centers may do
        better.
    allocation_gap
        ``(cost - allocation_bound) / cost``: how far the allocation could still improve with
        the centers kept. Not an optimality gap.
    bound_relaxes
        Constraints ``lower_bound`` leaves out (it bounds a relaxation, still a valid lower
        bound): ``"contiguity"``, ``"balance (target shares)"``, ...
    """

    assignment: np.ndarray
    centers: np.ndarray
    sizes: np.ndarray
    deviation: np.ndarray
    max_deviation: float
    cost: float
    lower_bound: float | None
    bound_source: str
    optimality_gap: float | None
    within_bounds: bool
    method: str = ""
    iterations: int = 0
    starts: int = 1
    seconds: float = 0.0
    seed: int | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    allocation_bound: float | None = None
    allocation_gap: float | None = None
    bound_relaxes: tuple[str, ...] = ()

    @property
    def p(self) -> int:
        """Number of territories."""
        return int(self.centers.shape[0])

    def certificate(self) -> str:
        """One honest line on the certificates, e.g. for a CLI or a report.

        Examples: "at most 0.42 % above the optimum (optimality gap; lower bound 123 from
        the LP relaxation, without contiguity); allocation gap for these centers 0.10 %".
        """
        names = {"mip": "the MIP's dual bound", "lp-relaxation": "the LP relaxation"}
        names["lagrangian"] = "a Lagrangian bound"
        names["mip-contiguous"] = (
            "the contiguous MIP's dual bound (plans with territories connected around their "
            "center areas)"
        )
        if self.optimality_gap is not None and self.lower_bound is not None:
            without = list(self.bound_relaxes)
            note = f", without {' and '.join(without)}" if without else ""
            text = (
                f"at most {self.optimality_gap:.2%} above the optimum (optimality gap; lower "
                f"bound {self.lower_bound:,.6g} from {names.get(self.bound_source, 'a bound')}"
                f"{note})"
            )
        elif self.lower_bound is not None:
            text = (
                f"no optimality gap (lower bound {self.lower_bound:,.6g}, but the plan breaks "
                "the balance bounds or uses unreachable pairs)"
            )
        else:
            text = "no optimality gap (no bound on the whole problem)"
        if self.allocation_gap is not None:
            text += f"; allocation gap for these centers {self.allocation_gap:.2%}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no per-area arrays)."""
        return {
            "method": self.method,
            "p": self.p,
            "cost": self.cost,
            "lower_bound": self.lower_bound,
            "bound_source": self.bound_source,
            "bound_relaxes": list(self.bound_relaxes),
            "optimality_gap": self.optimality_gap,
            "allocation_bound": self.allocation_bound,
            "allocation_gap": self.allocation_gap,
            "max_deviation": self.max_deviation,
            "within_bounds": self.within_bounds,
            "sizes": self.sizes.tolist(),
            "iterations": self.iterations,
            "starts": self.starts,
            "seconds": round(self.seconds, 4),
            "seed": self.seed,
            "details": self.details,
        }


def evaluate(
    problem: TerritoryProblem,
    assignment: np.ndarray,
    centers: np.ndarray,
    *,
    lower_bound: float | None = None,
    bound_source: str = "none",
    bound_relaxes: tuple[str, ...] = (),
    allocation_bound: float | None = None,
    **info: Any,
) -> Solution:
    """Recompute all metrics of an assignment to centers.

    ``lower_bound`` must bound the whole problem (``bound_source`` says how it was
    obtained); ``allocation_bound`` bounds the allocations to ``centers`` only. Each gap is
    reported only for a plan within the balance bounds that uses reachable pairs only.

    Raises
    ------
    InputError
        When an area is unassigned, an index is out of range, a territory is empty or a
        center is used twice.
    """
    a = np.asarray(assignment, dtype=np.int64)
    c = np.asarray(centers, dtype=np.int64)
    p, n = problem.p, problem.n
    if a.shape != (n,):
        raise InputError(f"assignment must have one entry per area ({n}), got {a.shape}")
    if c.shape != (p,):
        raise InputError(f"centers must have {p} entries, got {c.shape}")
    if np.any((a < 0) | (a >= p)):
        raise InputError(f"assignment has territory indices outside 0..{p - 1}")
    if np.unique(c).shape[0] != p:
        raise InputError("a candidate is the center of two territories")
    sizes = np.zeros((p, problem.m))
    np.add.at(sizes, a, problem.weights)
    counts = np.bincount(a, minlength=p)
    if np.any(counts == 0):
        raise InputError(f"territories {np.flatnonzero(counts == 0).tolist()} are empty")
    d = np.empty(n)
    for t in range(p):
        members = np.flatnonzero(a == t)
        d[members] = problem.cost.block(c[t : t + 1], members)[0]
    unreachable = ~np.isfinite(d)
    # areas no road reaches from their center add nothing to the cost; they are reported
    cost = float(np.dot(problem.objective_weights, np.where(unreachable, 0.0, d)))
    if unreachable.any():
        info.setdefault("details", {})
        info["details"] = {
            **info["details"],
            "unreachable_areas": np.flatnonzero(unreachable).tolist(),
        }
    if problem.capacity is not None:
        cap = problem.capacity[c]
        dev = np.zeros_like(sizes)
        dev[:, 0] = sizes[:, 0] / cap - 1.0
        within = bool(np.all(sizes[:, 0] <= cap * (1 + 1e-9)))
        max_dev = float(np.max(dev[:, 0]))
    else:
        mu = problem.center_targets(c)
        with np.errstate(invalid="ignore", divide="ignore"):
            dev = np.where(mu > 0, sizes / np.where(mu > 0, mu, 1.0) - 1.0, 0.0)
        lo, hi = problem.center_bounds(c)
        assert lo is not None
        within = bool(
            np.all(sizes >= lo * (1 - 1e-9) - 1e-9) and np.all(sizes <= hi * (1 + 1e-9) + 1e-9)
        )
        max_dev = float(np.max(np.abs(dev)))
    if bound_source not in _GLOBAL_SOURCES:
        raise InputError(
            f"bound_source must be one of {sorted(_GLOBAL_SOURCES)} (a bound on the whole "
            f"problem), got {bound_source!r}; pass a bound for given centers as allocation_bound"
        )
    # both bounds hold for plans within the balance bounds over reachable pairs only
    comparable = within and not unreachable.any() and np.isfinite(cost)
    gap = _gap(cost, lower_bound) if comparable else None
    alloc_gap = _gap(cost, allocation_bound) if comparable else None
    return Solution(
        assignment=a,
        centers=c,
        sizes=sizes,
        deviation=dev,
        max_deviation=max_dev,
        cost=cost,
        lower_bound=lower_bound,
        bound_source=bound_source if lower_bound is not None else "none",
        optimality_gap=gap,
        within_bounds=within,
        allocation_bound=allocation_bound,
        allocation_gap=alloc_gap,
        bound_relaxes=tuple(bound_relaxes) if lower_bound is not None else (),
        **info,
    )


#: sources of bounds on the whole problem (``Solution.lower_bound``)
_GLOBAL_SOURCES = frozenset({"mip", "mip-contiguous", "lp-relaxation", "lagrangian", "none"})


def _gap(cost: float, bound: float | None) -> float | None:
    """``(cost - bound) / cost`` (0 for a zero-cost plan at a zero bound), or ``None``."""
    if bound is None or not np.isfinite(bound):
        return None
    if cost <= 0:
        return 0.0 if bound <= cost else None
    return max(0.0, (cost - bound) / cost)


def with_lower_bound(
    solution: Solution, value: float | None, source: str, relaxes: tuple[str, ...] = ()
) -> Solution:
    """``solution`` with a bound on the whole problem attached (and its optimality gap).

    Raises
    ------
    InputError
        When ``source`` is no source of a bound on the whole problem.
    """
    if source not in _GLOBAL_SOURCES:
        raise InputError(f"source must be one of {sorted(_GLOBAL_SOURCES)}, got {source!r}")
    comparable = (
        solution.within_bounds
        and not solution.details.get("unreachable_areas")
        and bool(np.isfinite(solution.cost))
    )
    return dataclasses.replace(
        solution,
        lower_bound=value,
        bound_source=source if value is not None else "none",
        bound_relaxes=tuple(relaxes) if value is not None else (),
        optimality_gap=_gap(solution.cost, value) if comparable else None,
    )
