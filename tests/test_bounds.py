"""Global lower bounds, honest certificates and the polishing MIP."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import TerritoryProblem, evaluate, solve, solve_exact
from optimizer.bounds import global_lower_bound, lagrangian_bound, lp_bound
from optimizer.contiguity import is_contiguous
from optimizer.exceptions import InputError
from optimizer.polish import polish


def _brute_force(
    prob: TerritoryProblem,
    fixed: tuple[int, ...] = (),
    forbidden: tuple[int, ...] = (),
    locked: np.ndarray | None = None,
) -> float:
    """Optimum of the model by enumeration: every center set, every assignment over
    reachable pairs, the balance (or capacity) bounds as evaluate() checks them."""
    n, p = prob.n, prob.p
    d = prob.cost.rows(np.arange(n))
    cw = prob.objective_weights
    assigns = np.array(list(itertools.product(range(p), repeat=n)), dtype=np.int64)
    best = np.inf
    for centers in itertools.combinations(range(n), p):
        c = np.array(centers)
        if not set(fixed) <= set(centers) or set(forbidden) & set(centers):
            continue
        cost_rows = d[c[assigns], np.arange(n)[None, :]]  # (k, n)
        ok = np.isfinite(cost_rows).all(axis=1)
        if locked is not None:
            for v in np.flatnonzero(locked >= 0):
                ok &= c[assigns[:, v]] == locked[v]
        for mm in range(prob.m):
            sizes = np.zeros((assigns.shape[0], p))
            for t in range(p):
                sizes[:, t] = ((assigns == t) * prob.weights[None, :, mm]).sum(axis=1)
            if prob.capacity is not None:
                if mm == 0:
                    ok &= (sizes <= prob.capacity[c][None, :] * (1 + 1e-9)).all(axis=1)
                continue
            lo, hi = prob.bounds()
            ok &= (sizes >= lo[mm] * (1 - 1e-9) - 1e-9).all(axis=1)
            ok &= (sizes <= hi[mm] * (1 + 1e-9) + 1e-9).all(axis=1)
        if ok.any():
            total = np.where(np.isfinite(cost_rows), cost_rows, 0.0) @ cw
            best = min(best, float(total[ok].min()))
    return best


@st.composite
def _instances(draw: st.DrawFn) -> tuple[TerritoryProblem, dict]:
    n = draw(st.integers(3, 6))
    p = draw(st.integers(1, min(3, n)))
    m = draw(st.integers(1, 2))
    # small integers: many ties in costs and weights, some zero weights
    d = np.array(draw(st.lists(st.integers(0, 6), min_size=n * n, max_size=n * n)), float)
    d = d.reshape(n, n)
    holes = np.array(draw(st.lists(st.booleans(), min_size=n * n, max_size=n * n))).reshape(n, n)
    d[holes & draw(st.booleans())] = np.inf  # unreachable pairs in about half the instances
    np.fill_diagonal(d, 0.0)
    w = np.array(draw(st.lists(st.integers(0, 4), min_size=n * m, max_size=n * m)), float)
    w = w.reshape(n, m)
    w[0] += 1  # not all zero
    capacity = None
    tol = draw(st.sampled_from([0.0, 0.1, 0.3, 1.0]))
    if draw(st.integers(0, 4)) == 0:
        capacity = float(w[:, 0].sum()) / p * draw(st.sampled_from([1.0, 1.3]))
    prob = TerritoryProblem.from_cost_matrix(d, w, p, tolerance=tol, capacity=capacity)
    side: dict = {}
    if draw(st.booleans()):
        f = draw(st.integers(0, n - 1))
        side["fixed_centers"] = np.array([f])
        if draw(st.booleans()):
            lk = np.full(n, -1)
            lk[draw(st.integers(0, n - 1))] = f
            side["locked"] = lk
    if draw(st.booleans()):
        forb = draw(st.integers(0, n - 1))
        if forb not in side.get("fixed_centers", []):
            allowed = np.ones(n, bool)
            allowed[forb] = False
            side["allowed_centers"] = allowed
    return prob, side


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_instances())
def test_lp_and_lagrangian_bounds_never_exceed_the_optimum(case: tuple) -> None:
    prob, side = case
    fixed = tuple(side.get("fixed_centers", ()))
    allowed = side.get("allowed_centers")
    forbidden = () if allowed is None else tuple(np.flatnonzero(~allowed))
    opt = _brute_force(prob, fixed, forbidden, side.get("locked"))
    lp = lp_bound(prob, **side)
    lag = lagrangian_bound(prob, max_iter=300, **side)
    for b in (lp, lag):
        if b.value is not None and np.isfinite(opt):
            assert b.value <= opt + 1e-6 * max(1.0, opt)
    if np.isfinite(opt):  # a plan exists: both bounds exist
        assert lp.value is not None and lag.value is not None
        # the Lagrangian dual never beats the LP relaxation (one measure: it equals it)
        assert lag.value <= lp.value + 1e-5 * max(1.0, abs(lp.value))


@pytest.mark.parametrize("seed", range(4))
def test_bounds_below_the_proved_mip_optimum_with_side_constraints(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, p = 24, 3
    xy = rng.random((n, 2)) * 100
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    d[rng.random((n, n)) < 0.1] = np.inf  # no road for some pairs
    np.fill_diagonal(d, 0.0)
    w = rng.integers(1, 6, (n, 2)).astype(float)
    prob = TerritoryProblem.from_cost_matrix(d, w, p, tolerance=0.2)
    lk = np.full(n, -1)
    lk[5] = 2
    allowed = np.ones(n, bool)
    allowed[7] = False
    side = {"fixed_centers": np.array([2]), "locked": lk, "allowed_centers": allowed}
    ex = solve_exact(prob, time_limit=60, **side)
    assert ex.details["status"] == "optimal"
    assert 2 in ex.centers and 7 not in ex.centers
    assert ex.centers[ex.assignment[5]] == 2
    for b in (lp_bound(prob, **side), lagrangian_bound(prob, upper=ex.cost, **side)):
        assert b.value is not None and b.value <= ex.cost + 1e-6
        assert "contiguity" in b.relaxed
    # two measures: the Lagrangian keeps the first only and says so
    assert "balance of measures 2..m" in lagrangian_bound(prob, max_iter=5).relaxed


def _points(n: int, p: int, seed: int, tol: float = 0.05) -> TerritoryProblem:
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 1000
    w = rng.integers(1, 30, n).astype(float)
    return TerritoryProblem.from_points(xy, w, p, tolerance=tol)


@pytest.mark.parametrize(("n", "p", "seed"), [(20, 2, 0), (24, 3, 1), (30, 3, 2), (30, 4, 3)])
def test_reported_optimality_gaps_never_understate_the_true_gap(n: int, p: int, seed: int) -> None:
    prob = _points(n, p, seed, tol=0.1)
    opt = solve_exact(prob, time_limit=120)
    assert opt.details["status"] == "optimal"
    la = solve(prob, "la")  # the default certificate: LP relaxation at this size
    lag = solve(prob, "la", bound="lagrangian")
    pol = polish(prob, la, time_limit=60, exact_max_n=0)  # certificate only, no MIP
    for sol in (la, lag, pol):
        assert sol.bound_source in ("lp-relaxation", "lagrangian")
        assert sol.optimality_gap is not None
        true_gap = (sol.cost - opt.cost) / sol.cost
        assert sol.optimality_gap >= true_gap - 1e-9
    # the allocation bound concerns LA's centers: it is reported apart, never as the gap
    assert la.allocation_bound is not None and la.allocation_gap is not None
    assert "allocation gap for these centers" in la.certificate()
    assert la.to_dict()["optimality_gap"] == la.optimality_gap


def test_allocation_bound_is_no_optimality_certificate() -> None:
    prob = _points(12, 2, 5)
    la = solve(prob, "la", bound="none")
    assert la.lower_bound is None and la.optimality_gap is None
    assert la.bound_source == "none" and la.allocation_bound is not None
    assert "no optimality gap" in la.certificate()
    with pytest.raises(InputError, match="allocation_bound"):
        evaluate(prob, la.assignment, la.centers, lower_bound=1.0, bound_source="transp-lp")


def test_polish_reaches_the_proved_optimum_and_keeps_side_constraints() -> None:
    prob = _points(40, 4, 7)
    lk = np.full(prob.n, -1)
    lk[[3, 11]] = 0
    side = {"fixed_centers": np.array([0]), "locked": lk}
    la = solve(prob, "la", bound="none", **side)
    pol = polish(prob, la, time_limit=120, **side)
    ex = solve_exact(prob, time_limit=120, **side)
    assert ex.details["status"] == "optimal"
    assert pol.within_bounds
    assert pol.cost <= la.cost + 1e-9
    assert pol.cost == pytest.approx(ex.cost, rel=1e-6)
    assert pol.bound_source == "mip" and pol.optimality_gap is not None
    assert pol.optimality_gap <= 1e-5
    assert 0 in pol.centers and np.all(pol.centers[pol.assignment[[3, 11]]] == 0)


def test_polish_keeps_contiguity_when_required() -> None:
    # a ring of areas: the MIP's plan (no contiguity in the model) must be contiguous too
    n, p = 30, 3
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    xy = np.column_stack([np.cos(ang), np.sin(ang)]) * 100
    rng = np.random.default_rng(0)
    w = rng.integers(1, 9, n).astype(float)
    prob = TerritoryProblem.from_points(xy, w, p, tolerance=0.3)
    adj = np.zeros((n, n), bool)
    idx = np.arange(n)
    adj[idx, (idx + 1) % n] = adj[(idx + 1) % n, idx] = True
    la = solve(prob, "la", bound="none")
    if not is_contiguous(adj, la.assignment, p):
        pytest.skip("the heuristic start is not contiguous")
    pol = polish(prob, la, time_limit=60, adjacency=adj, require_contiguity=True)
    assert is_contiguous(adj, pol.assignment, p)
    assert pol.cost <= la.cost + 1e-9


def test_restricted_mip_beyond_the_exact_size_never_worsens() -> None:
    prob = _points(90, 6, 11)
    la = solve(prob, "la", bound="none")
    pol = polish(prob, la, time_limit=30, exact_max_n=10)
    assert pol.details["polish"]["mip"] == "restricted"
    assert pol.within_bounds and pol.cost <= la.cost + 1e-9
    assert pol.lower_bound is not None and pol.lower_bound <= pol.cost
    assert pol.bound_source in ("lp-relaxation", "lagrangian")


def test_global_bound_lagrangian_with_target_shares_relaxes_balance() -> None:
    prob = _points(20, 2, 3)
    nc = prob.cost.shape[0]
    share = np.full(nc, np.nan)
    share[0] = 0.7
    shared = TerritoryProblem(
        weights=prob.weights,
        p=2,
        cost=prob.cost,
        candidates=prob.candidates,
        tol_lower=prob.tol_lower,
        tol_upper=prob.tol_upper,
        target_share=share,
        coords=prob.coords,
    )
    b = global_lower_bound(shared, method="lagrangian", time_limit=5)
    assert "balance (target shares)" in b.relaxed
    assert b.value is not None
    sol = solve(shared, "la", bound="lp", fixed_centers=np.array([0]))
    assert sol.lower_bound is not None and sol.lower_bound <= sol.cost + 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_knapsack_prefix_sort_equals_full_sort_and_an_lp(seed: int) -> None:
    from scipy.optimize import linprog

    from optimizer.bounds import _knapsack_values

    rng = np.random.default_rng(seed)
    nc, n = 30, 200
    r = rng.normal(0.0, 1.0, (nc, n)) + rng.uniform(-0.5, 1.5, (nc, 1))
    r[rng.random((nc, n)) < 0.05] = np.inf  # forbidden pairs
    w = rng.integers(0, 5, n).astype(float)  # zero weights too
    lo = rng.uniform(0, 60, nc)
    hi = lo + rng.uniform(0, 40, nc)
    full, _ = _knapsack_values(r, w, lo, hi)
    part, _ = _knapsack_values(r, w, lo, hi, prefix=20)
    np.testing.assert_allclose(part, full, rtol=1e-9, atol=1e-9)
    for j in range(0, nc, 7):
        ok = np.isfinite(r[j])
        res = linprog(
            r[j, ok],
            A_ub=np.vstack([w[ok], -w[ok]]),
            b_ub=[hi[j], -lo[j]],
            bounds=(0, 1),
            method="highs",
        )
        assert res.status == 0
        assert full[j] == pytest.approx(res.fun, rel=1e-7, abs=1e-7)
