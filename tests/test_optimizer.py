"""Location–allocation, TRANSP, the exact MIP and their certificates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

import optimizer
from optimizer import TerritoryProblem, evaluate, solve, solve_exact, solve_transp
from optimizer.exceptions import InfeasibleError, InputError
from tests.support import shared_file


def _instance(n: int, p: int, seed: int, m: int = 1, tol: float = 0.05) -> TerritoryProblem:
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 1000
    w = rng.integers(1, 50, (n, m)).astype(float)
    return TerritoryProblem.from_points(xy, w, p, tolerance=tol)


def _dense_lp(d: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """TRANSP as a dense LP written independently: variables x[i, v] in row-major order."""
    p, n = d.shape
    c = (d * w[None, :, 0]).ravel()
    a_eq = np.zeros((n, p * n))
    for v in range(n):
        a_eq[v, v::n] = 1.0
    a_ub = []
    b_ub = []
    for i in range(p):
        for j in range(w.shape[1]):
            row = np.zeros(p * n)
            row[i * n : (i + 1) * n] = w[:, j]
            a_ub += [row, -row]
            b_ub += [hi[i, j], -lo[i, j]]
    res = linprog(
        c, A_ub=np.array(a_ub), b_ub=np.array(b_ub), A_eq=a_eq, b_eq=np.ones(n), method="highs-ipm"
    )
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("seed", range(6))
def test_transp_value_equals_independent_lp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, p, m = 40, 4, 1 + seed % 2
    xy = rng.random((n, 2))
    w = rng.integers(1, 20, (n, m)).astype(float)
    centers = rng.choice(n, p, replace=False)
    d = np.hypot(*(xy[centers][:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    mu = w.sum(axis=0) / p
    tau = [0.0, 0.05, 0.2][seed % 3]
    lo, hi = np.tile((1 - tau) * mu, (p, 1)), np.tile((1 + tau) * mu, (p, 1))
    full = solve_transp(d, w, lower=lo, upper=hi, k_nearest=None)
    assert full.objective == pytest.approx(_dense_lp(d, w, lo, hi), rel=1e-7)
    assert full.lower_bound == pytest.approx(full.objective, rel=1e-7)
    sparse = solve_transp(d, w, lower=lo, upper=hi, k_nearest=2)
    assert sparse.lower_bound <= full.objective + 1e-7 <= sparse.objective + 2e-7
    x = full.fractions.toarray()
    np.testing.assert_allclose(x.sum(axis=0), 1.0)
    sizes = x @ w
    assert np.all(sizes >= lo - 1e-6) and np.all(sizes <= hi + 1e-6)
    if tau == 0.0 and m == 1:  # a basic solution of (TRANSP): at most p - 1 splits
        assert ((x > 1e-9).sum(axis=0) > 1).sum() <= p - 1


def test_transp_infeasible_capacity_is_explained() -> None:
    d = np.ones((2, 5))
    with pytest.raises(InfeasibleError, match="exceeds the sum of the upper bounds") as exc:
        solve_transp(d, np.full(5, 10.0), upper=np.array([20.0, 20.0]))
    assert exc.value.diagnostics["total"] == 50.0


@pytest.mark.parametrize("method", ["la", "la-assignmax", "la-mindist"])
def test_la_assigns_every_area_once_and_reports_true_numbers(method: str) -> None:
    prob = _instance(300, 15, 1, m=2)
    sol = solve(prob, method, n_starts=2)
    assert sol.assignment.shape == (300,)
    assert set(np.unique(sol.assignment)) == set(range(15))
    again = evaluate(prob, sol.assignment, sol.centers)
    assert sol.cost == pytest.approx(again.cost)
    np.testing.assert_allclose(sol.sizes, again.sizes)
    assert sol.max_deviation == pytest.approx(again.max_deviation)
    # centers lie in their own territory (1-median over the territory's areas)
    assert np.all(sol.assignment[prob.candidates[sol.centers]] == np.arange(15))


def test_la_deterministic_for_a_seed() -> None:
    prob = _instance(200, 10, 2)
    a = solve(prob, "la", seed=7, n_starts=2)
    b = solve(prob, "la", seed=7, n_starts=2)
    np.testing.assert_array_equal(a.assignment, b.assignment)
    np.testing.assert_array_equal(a.centers, b.centers)


def test_transp_balances_better_than_mindist() -> None:
    prob = _instance(400, 20, 3)
    la = solve(prob, "la")
    md = solve(prob, "la-mindist")
    assert la.max_deviation < md.max_deviation
    # Theorem 5.5: deviation after optimal SPRES_inf is at most the largest split weight
    assert la.max_deviation * prob.mean[0] <= prob.weights.max() + 1e-6


def test_bound_certifies_cost_when_within_bounds() -> None:
    prob = _instance(120, 4, 4, tol=0.2)
    sol = solve(prob, "la", n_starts=3)
    assert sol.within_bounds
    assert sol.lower_bound is not None and sol.lower_bound <= sol.cost + 1e-6
    assert sol.optimality_gap is not None and 0 <= sol.optimality_gap < 0.2
    assert sol.allocation_gap is not None and sol.allocation_gap >= 0


def _brute_force(prob: TerritoryProblem) -> float:
    n, p = prob.n, prob.p
    d = prob.cost.rows(np.arange(n))
    lo, hi = prob.bounds()
    best = np.inf
    for centers in itertools.combinations(range(n), p):
        for assign in itertools.product(range(p), repeat=n):
            a = np.array(assign)
            sizes = np.bincount(a, weights=prob.weights[:, 0], minlength=p)
            if np.any(sizes < lo[0] - 1e-9) or np.any(sizes > hi[0] + 1e-9):
                continue
            cost = float((prob.weights[:, 0] * d[np.array(centers)[a], np.arange(n)]).sum())
            best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(3))
def test_exact_mip_equals_brute_force(seed: int) -> None:
    prob = _instance(7, 2, 10 + seed, tol=0.3)
    sol = solve_exact(prob, time_limit=30)
    assert sol.details["status"] == "optimal"
    assert sol.cost == pytest.approx(_brute_force(prob), rel=1e-7)
    assert sol.lower_bound == pytest.approx(sol.cost, rel=1e-6)
    assert sol.within_bounds


def test_la_close_to_mip_on_small_instance() -> None:
    prob = _instance(40, 4, 5, tol=0.15)
    exact = solve_exact(prob, time_limit=60)
    la = solve(prob, "la", n_starts=6)
    assert exact.lower_bound is not None
    assert la.cost >= exact.lower_bound - 1e-6
    if la.within_bounds:
        assert la.cost <= 1.10 * exact.cost


def test_capacity_mode() -> None:
    rng = np.random.default_rng(6)
    xy = rng.random((60, 2))
    w = rng.integers(5, 15, 60).astype(float)
    prob = TerritoryProblem.from_points(xy, w, 5, capacity=w.sum() / 5 * 1.15)
    sol = solve(prob, "la", n_starts=3)
    assert prob.capacity is not None
    load = np.bincount(sol.assignment, weights=w, minlength=5)
    assert sol.within_bounds == bool(np.all(load <= prob.capacity[sol.centers] + 1e-9))
    exact = solve_exact(prob, time_limit=60)
    assert exact.within_bounds
    with pytest.raises(InfeasibleError, match="exceeds"):
        solve(TerritoryProblem.from_points(xy, w, 5, capacity=w.sum() / 10))


def test_cost_matrix_with_unreachable_pairs() -> None:
    """Two islands: inf between them. Territories never mix islands when p covers both."""
    rng = np.random.default_rng(8)
    a = rng.random((20, 2))
    b = rng.random((20, 2)) + 10
    xy = np.vstack([a, b])
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    d[:20, 20:] = np.inf
    d[20:, :20] = np.inf
    prob = TerritoryProblem.from_cost_matrix(d, np.ones(40), 4, tolerance=0.1)
    sol = solve(prob, "la", n_starts=3)
    island = (np.arange(40) >= 20).astype(int)
    for t in range(4):
        assert len(set(island[sol.assignment == t])) == 1
    assert np.isfinite(sol.cost)


def test_input_errors() -> None:
    with pytest.raises(InputError, match="p must be an integer"):
        TerritoryProblem.from_points(np.random.default_rng(0).random((5, 2)), np.ones(5), 6)
    with pytest.raises(InputError, match="finite and >= 0"):
        TerritoryProblem.from_points(np.zeros((3, 2)), np.array([1.0, -1.0, 1.0]), 2)
    with pytest.raises(InputError, match="NaN"):
        TerritoryProblem.from_cost_matrix(np.full((3, 3), np.nan), np.ones(3), 2)
    with pytest.raises(InputError, match="candidates"):
        TerritoryProblem.from_cost_matrix(np.ones((2, 3)), np.ones(3), 2)
    with pytest.raises(InputError, match="unknown method"):
        solve(_instance(10, 2, 0), "magic")
    assert "la" in optimizer.METHODS


def test_ct_zcta_population_straight_line() -> None:
    import geopandas as gpd

    gdf = gpd.read_file(shared_file("areas", "ct_zcta_2010.gpkg")).to_crs("EPSG:5070")
    pts = gdf.geometry.representative_point()
    xy = np.column_stack([pts.x, pts.y])
    w = gdf["population"].to_numpy(float)
    prob = TerritoryProblem.from_points(xy, w, 28, tolerance=0.1)
    sol = solve(prob, "la")
    assert np.bincount(sol.assignment, minlength=28).min() >= 1
    assert sol.lower_bound is not None
    if sol.within_bounds:
        assert sol.lower_bound <= sol.cost
    # populations of single ZCTAs reach ~60k vs a mean of ~127k: the largest split bounds
    # the deviation (Theorem 5.5)
    assert sol.max_deviation * prob.mean[0] <= w.max() + 1e-6


def test_balance_repair_meets_tolerance_and_keeps_centers() -> None:
    from optimizer.repair import repair_balance

    prob = _instance(300, 30, 21, tol=0.05)
    raw = solve(prob, "la", repair=False)
    fixed = solve(prob, "la")
    assert fixed.max_deviation <= raw.max_deviation + 1e-12
    assert fixed.details["repair_moves"] >= 0
    a, moves = repair_balance(prob, raw.assignment, raw.centers)
    again = evaluate(prob, a, raw.centers)
    assert again.max_deviation <= raw.max_deviation + 1e-12
    # centers stay in their own territories; nothing emptied
    assert np.all(a[prob.candidates[raw.centers]] == np.arange(30))
    assert np.bincount(a, minlength=30).min() >= 1
    if moves == 0:
        assert again.max_deviation == raw.max_deviation
