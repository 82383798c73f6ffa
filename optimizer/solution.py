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

__all__ = ["Solution", "evaluate"]


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
        A lower bound on the cost (see ``bound_source``), or ``None``.
    bound_source
        ``"transp-lp"``: the allocation LP for these centers with the same bounds (a bound for
        the allocation given the centers); ``"mip"``: the MIP's dual bound (a bound for the
        whole problem); ``"lp-relaxation"``; ``"none"``.
    gap
        ``(cost - lower_bound) / cost`` when a bound is known and applies (a TRANSP bound
        certifies only solutions within the bounds, so a solution outside them has no gap).
    within_bounds
        All territories meet the tolerance (or capacity) bounds.
    method, iterations, starts, seconds, seed
        How it was obtained.
    details
        Method-specific facts (splits resolved, nodes explored, ...).
    """

    assignment: np.ndarray
    centers: np.ndarray
    sizes: np.ndarray
    deviation: np.ndarray
    max_deviation: float
    cost: float
    lower_bound: float | None
    bound_source: str
    gap: float | None
    within_bounds: bool
    method: str = ""
    iterations: int = 0
    starts: int = 1
    seconds: float = 0.0
    seed: int | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def p(self) -> int:
        """Number of territories."""
        return int(self.centers.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no per-area arrays)."""
        return {
            "method": self.method,
            "p": self.p,
            "cost": self.cost,
            "lower_bound": self.lower_bound,
            "bound_source": self.bound_source,
            "gap": self.gap,
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
    **info: Any,
) -> Solution:
    """Recompute all metrics of an assignment to centers.

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
    gap = None
    # a TRANSP bound only holds for allocations that meet the bounds: no gap otherwise
    certifies = within or bound_source != "transp-lp"
    if lower_bound is not None and certifies and np.isfinite(cost) and cost > 0:
        gap = max(0.0, (cost - lower_bound) / cost)
    return Solution(
        assignment=a,
        centers=c,
        sizes=sizes,
        deviation=dev,
        max_deviation=max_dev,
        cost=cost,
        lower_bound=lower_bound,
        bound_source=bound_source,
        gap=gap,
        within_bounds=within,
        **info,
    )
