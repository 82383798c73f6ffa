"""The exact MIP with a warm start and the rooted contiguity model (separator cuts)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from optimizer import TerritoryProblem, solve, solve_exact
from optimizer.contiguity import is_contiguous
from optimizer.exact import in_contiguity_model
from optimizer.exceptions import InputError
from optimizer.local import local_search
from optimizer.polish import polish
from optimizer.problem import CostMatrix
from optimizer.solution import evaluate


def _grid(rows: int, cols: int, rng: np.random.Generator, keep: float = 1.0) -> np.ndarray:
    """Rook adjacency of a grid, each edge kept with probability ``keep`` (islands appear)."""
    xy = np.array([(i, j) for i in range(rows) for j in range(cols)], float)
    n = xy.shape[0]
    adj = np.zeros((n, n), bool)
    for a, b in itertools.combinations(range(n), 2):
        if np.abs(xy[a] - xy[b]).sum() == 1 and rng.random() < keep:
            adj[a, b] = adj[b, a] = True
    return adj


def _random_case(seed: int) -> tuple[TerritoryProblem, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, p = 8, int(rng.integers(2, 4))
    adj = _grid(2, 4, rng, keep=0.8)
    d = rng.uniform(0, 10, (n, n))
    np.fill_diagonal(d, 0.0)
    if seed % 3 == 0:
        d[rng.integers(0, n), rng.integers(0, n)] = np.inf  # an unreachable pair
    w = rng.integers(1, 5, n).astype(float)[:, None]
    prob = TerritoryProblem(
        weights=w,
        p=p,
        cost=CostMatrix(d),
        candidates=np.arange(n),
        tol_lower=np.array([0.5]),
        tol_upper=np.array([0.5]),
    )
    return prob, adj


def _brute_force_contiguous(prob: TerritoryProblem, adj: np.ndarray) -> float:
    """Cheapest plan of the rooted contiguity model within the bounds, by enumeration."""
    n, p = prob.n, prob.p
    d = prob.cost.rows(np.arange(n))
    lo, hi = prob.bounds()
    w = prob.weights[:, 0]
    assigns = np.array(list(itertools.product(range(p), repeat=n)), dtype=np.int64)
    best = np.inf
    for cs in itertools.combinations(range(n), p):
        c = np.array(cs)
        a = assigns[(assigns[:, c] == np.arange(p)).all(axis=1)]
        sizes = np.stack([(a == t) @ w for t in range(p)], axis=1)
        ok = ((sizes >= lo[0] * (1 - 1e-9) - 1e-9) & (sizes <= hi[0] * (1 + 1e-9) + 1e-9)).all(1)
        a = a[ok]
        costs = d[c[a], np.arange(n)[None, :]]
        costs = np.where(np.isfinite(costs), costs, np.inf) @ prob.objective_weights
        for i in np.argsort(costs):
            if not np.isfinite(costs[i]) or costs[i] >= best:
                break
            if in_contiguity_model(prob, a[i], c, adj):
                best = float(costs[i])
                break
    return best


@pytest.mark.parametrize("seed", range(12))
def test_contiguous_mip_equals_brute_force_on_small_grids(seed: int) -> None:
    prob, adj = _random_case(seed)
    best = _brute_force_contiguous(prob, adj)
    if not np.isfinite(best):
        with pytest.raises(Exception, match="infeasible"):
            solve_exact(prob, time_limit=30, adjacency=sp.csr_matrix(adj))
        return
    ex = solve_exact(prob, time_limit=30, adjacency=sp.csr_matrix(adj))
    assert ex.details["status"] == "optimal"
    assert ex.cost == pytest.approx(best, rel=1e-7)
    assert in_contiguity_model(prob, ex.assignment, ex.centers, adj)
    assert ex.bound_source == "mip-contiguous"
    assert ex.lower_bound is not None and ex.lower_bound <= best * (1 + 1e-9)
    assert "contiguity" not in ex.bound_relaxes
    free = solve_exact(prob, time_limit=30)
    assert free.cost <= ex.cost * (1 + 1e-9)  # contiguity only costs


def _ring_problem(n: int = 36, p: int = 4, seed: int = 3) -> tuple[TerritoryProblem, np.ndarray]:
    """Points on a noisy ring with ring adjacency plus a few chords."""
    rng = np.random.default_rng(seed)
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    xy = np.column_stack([np.cos(ang), np.sin(ang)]) * 100 + rng.normal(0, 3, (n, 2))
    w = rng.integers(1, 9, n).astype(float)
    prob = TerritoryProblem.from_points(xy, w, p, tolerance=0.2)
    adj = np.zeros((n, n), bool)
    idx = np.arange(n)
    adj[idx, (idx + 1) % n] = adj[(idx + 1) % n, idx] = True
    for a, b in rng.integers(0, n, (4, 2)):
        if a != b:
            adj[a, b] = adj[b, a] = True
    return prob, adj


def test_contiguous_mip_plans_are_contiguous_and_beat_the_contiguous_heuristic() -> None:
    prob, adj = _ring_problem()
    la = solve(prob, "la", bound="none")
    res = local_search(prob, la.assignment, la.centers, adjacency=adj, require_contiguity=True)
    heur = evaluate(prob, res.assignment, res.centers)
    ex = solve_exact(prob, time_limit=120, adjacency=sp.csr_matrix(adj), initial=heur)
    assert ex.details["status"] == "optimal"
    assert is_contiguous(adj, ex.assignment, prob.p, prob.candidates[ex.centers])
    assert ex.within_bounds
    if heur.within_bounds and in_contiguity_model(prob, heur.assignment, heur.centers, adj):
        assert ex.cost <= heur.cost * (1 + 1e-9)


def test_warm_start_is_never_lost_at_a_short_time_limit() -> None:
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 100, (60, 2))
    prob = TerritoryProblem.from_points(xy, rng.integers(1, 9, 60).astype(float), 6)
    la = solve(prob, "la", bound="none")
    assert la.within_bounds
    ex = solve_exact(prob, time_limit=0.05, initial=la)
    assert ex.details["warm_start"] is True
    assert ex.cost <= la.cost * (1 + 1e-9)
    assert ex.within_bounds


def test_polish_with_contiguity_certifies_against_the_contiguous_optimum() -> None:
    prob, adj = _ring_problem(30, 3, 7)
    la = solve(prob, "la", bound="none")
    res = local_search(prob, la.assignment, la.centers, adjacency=adj, require_contiguity=True)
    start = evaluate(prob, res.assignment, res.centers)
    pol = polish(prob, start, time_limit=120, adjacency=adj, require_contiguity=True)
    opt = solve_exact(prob, time_limit=120, adjacency=sp.csr_matrix(adj))
    assert pol.details["polish"]["mip"] == "contiguous"
    assert is_contiguous(adj, pol.assignment, prob.p)
    assert pol.cost <= start.cost * (1 + 1e-9) or not start.within_bounds
    assert pol.bound_source == "mip-contiguous"
    assert opt.details["status"] == "optimal"
    assert pol.cost == pytest.approx(opt.cost, rel=1e-6)
    # the reported gap is never below the true gap to the contiguous optimum
    assert pol.optimality_gap is not None
    assert pol.optimality_gap >= (pol.cost - opt.cost) / pol.cost - 1e-9


def test_contiguous_mip_refuses_centers_that_are_no_areas() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 10, (6, 2))
    prob = TerritoryProblem.from_points(
        xy, np.ones(6), 2, tolerance=0.5, candidate_coords=rng.uniform(0, 10, (3, 2))
    )
    adj = np.ones((6, 6), bool)
    with pytest.raises(InputError, match="area"):
        solve_exact(prob, time_limit=10, adjacency=adj)


def test_highs_banner_stays_off_stdout() -> None:
    code = (
        "import numpy as np\n"
        "from optimizer import TerritoryProblem, solve_exact\n"
        "xy = np.random.default_rng(0).uniform(0, 9, (8, 2))\n"
        "solve_exact(TerritoryProblem.from_points(xy, np.ones(8), 2, tolerance=0.5))\n"
        "print('done')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout == "done\n"
