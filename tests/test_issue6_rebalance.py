"""Issue 6: the rebalance scenario (disruption-aware allocation + local search) on CT ZCTAs,
the disruption price, and the local search's kicks, reference cost and forbidden centers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from optimizer import TerritoryProblem, evaluate
from optimizer.contiguity import is_contiguous
from optimizer.exceptions import InputError
from optimizer.local import LocalSearchWeights, local_search, objective_terms
from optimizer.scenarios import disruption_costs, run_scenario
from tests.conftest import shared_file
from tests.test_local import grid_problem, grid_xy, grow_regions, reference_contiguous


def grown_alignment(adj: sp.csr_matrix, p: int, seed: int) -> np.ndarray:
    """The bench's poor start: territories grown breadth-first from random seed areas."""
    rng = np.random.default_rng(seed)
    n = adj.shape[0]
    lab = np.full(n, -1)
    seeds = rng.choice(n, p, replace=False)
    lab[seeds] = np.arange(p)
    frontier = list(seeds)
    while frontier:
        nxt = []
        for v in rng.permutation(frontier):
            for u in adj[v].indices:
                if lab[u] < 0:
                    lab[u] = lab[v]
                    nxt.append(u)
        frontier = nxt
    lab[lab < 0] = 0
    return lab


@pytest.fixture(scope="module")
def ct() -> tuple[TerritoryProblem, sp.csr_matrix]:
    gpd = pytest.importorskip("geopandas")
    from roadnet.adjacency import polygon_adjacency

    gdf = gpd.read_file(shared_file("areas", "ct_zcta_2010.gpkg"))
    gdf = gdf.to_crs(gdf.estimate_utm_crs())
    gdf["geometry"] = gdf.geometry.make_valid()
    pts = gdf.geometry.representative_point()
    xy = np.column_stack([pts.x, pts.y])
    prob = TerritoryProblem.from_points(xy, gdf["population"].to_numpy(float), 28, tolerance=0.1)
    return prob, polygon_adjacency(gdf)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ct_rebalance_meets_the_tolerance_contiguous_and_cuts_travel(ct, seed: int) -> None:
    prob, adj = ct
    existing = grown_alignment(adj, prob.p, seed)
    assert is_contiguous(adj, existing, prob.p)
    res = run_scenario(prob, existing, adjacency=adj, require_contiguity=True, seed=seed)
    sol = res.solution
    a = sol.assignment
    # every area in exactly one territory, none empty
    assert a.shape == (prob.n,) and a.min() >= 0 and a.max() < prob.p
    assert np.bincount(a, minlength=prob.p).min() >= 1
    assert res.kind == "rebalance" and res.before["max_deviation"] > 1.0
    assert sol.within_bounds and res.after["max_deviation"] <= 0.1 + 1e-9
    assert is_contiguous(adj, a, prob.p) and reference_contiguous(adj, a, prob.p)
    assert res.after["cost"] < 0.91 * res.before["cost"]  # 10-25 % less weighted travel
    assert res.n_moved == int(np.count_nonzero(a != existing)) < prob.n
    assert res.start in res.objective and set(res.objective) == {"allocation", "existing"}
    # the reported objective is the local search's formula with C0 = the existing cost
    f, _ = objective_terms(
        prob,
        a,
        sol.centers,
        reference_cost=res.before["cost"],
        existing=existing,
        weights=LocalSearchWeights(disruption=1.0, band_penalty=100.0),
    )
    assert f == pytest.approx(res.objective[res.start])


def test_ct_disruption_weight_trades_moves_for_travel(ct) -> None:
    prob, adj = ct
    existing = grown_alignment(adj, prob.p, 1)
    eager = run_scenario(prob, existing, adjacency=adj, require_contiguity=True, disruption=0.0)
    careful = run_scenario(prob, existing, adjacency=adj, require_contiguity=True, disruption=8.0)
    assert eager.solution.within_bounds and careful.solution.within_bounds
    assert careful.n_moved < eager.n_moved
    assert eager.after["cost"] < careful.after["cost"] < careful.before["cost"]
    # the allocation alone (before the local search) is neither balanced nor contiguous here
    assert eager.allocation is not None and not eager.allocation["within_bounds"]


def test_ct_locked_areas_stay_with_fixed_and_forbidden_centers(ct) -> None:
    prob, adj = ct
    existing = grown_alignment(adj, prob.p, 2)
    rng = np.random.default_rng(0)
    locked = np.zeros(prob.n, bool)
    locked[rng.choice(prob.n, 25, replace=False)] = True
    forbidden = np.zeros(prob.n, bool)
    forbidden[rng.choice(prob.n, 60, replace=False)] = True
    centers = np.zeros(prob.p, dtype=np.int64)
    fixed = np.zeros(prob.p, bool)
    for t in (0, 5):  # two territories keep a given center (an area of theirs)
        centers[t] = int(np.flatnonzero((existing == t) & ~forbidden)[0])
        fixed[t] = True
    res = run_scenario(
        prob,
        existing,
        centers=centers,
        fixed_centers=fixed,
        allowed_centers=~forbidden | np.isin(np.arange(prob.n), centers[fixed]),
        adjacency=adj,
        require_contiguity=True,
        locked=locked,
        seed=0,
    )
    sol = res.solution
    assert np.array_equal(sol.assignment[locked], existing[locked])
    assert sol.centers[0] == centers[0] and sol.centers[5] == centers[5]
    free = np.setdiff1d(sol.centers, centers[fixed])
    assert not forbidden[free].any()
    assert sol.within_bounds and is_contiguous(adj, sol.assignment, prob.p)


def test_disruption_costs_price_a_move_in_distance_units() -> None:
    xy = np.c_[np.arange(6.0), np.zeros(6)]
    w = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 1.0])
    prob = TerritoryProblem.from_points(xy, w, 2, tolerance=0.2)
    existing = np.array([0, 0, 0, 1, 1, -1])
    lam = disruption_costs(prob, existing, 2.0, reference_cost=50.0)
    # lambda_v = w_D * C0 * delta_v / sum(delta), delta = the distance weights; 0 for new areas
    assert lam == pytest.approx(np.r_[2.0 * 50.0 * w[:5] / w.sum(), 0.0])
    assert disruption_costs(prob, existing, 0.0, 50.0).sum() == 0.0
    with pytest.raises(InputError, match="disruption"):
        run_scenario(prob, np.array([0, 0, 0, 1, 1, 1]), disruption=-1.0)
    with pytest.raises(InputError, match="start"):
        run_scenario(prob, np.array([0, 0, 0, 1, 1, 1]), start="nowhere")  # type: ignore[arg-type]


def test_high_disruption_keeps_a_balanced_alignment_as_it_is() -> None:
    _, adj = grid_problem(6, 6, 4, 0)
    prob = TerritoryProblem.from_points(grid_xy(6, 6), np.ones(36), 4, tolerance=0.1)
    existing = np.arange(36) // 9  # four contiguous bands of 9 cells: balanced, not compact
    kept = run_scenario(prob, existing, adjacency=adj, require_contiguity=True, disruption=50.0)
    assert kept.n_moved == 0 and kept.solution.within_bounds
    redrawn = run_scenario(prob, existing, adjacency=adj, require_contiguity=True, disruption=0.0)
    assert redrawn.n_moved > 0 and redrawn.after["cost"] < kept.after["cost"]


@pytest.mark.parametrize("seed", [0, 1])
def test_kicks_reach_the_bounds_deterministically(seed: int) -> None:
    prob, adj = grid_problem(9, 9, 6, seed, tol=0.03)
    a0, seeds = grow_regions(adj, 6, np.random.default_rng(seed))
    runs = [
        local_search(
            prob,
            a0,
            seeds,
            adjacency=adj,
            require_contiguity=True,
            seed=seed,
            time_limit=None,
            kicks=k,
        )
        for k in (0, 30, 30)
    ]
    plain, kicked, again = runs
    assert np.array_equal(kicked.assignment, again.assignment)  # deterministic for a seed
    assert kicked.kicks == again.kicks <= 30
    ok = [evaluate(prob, r.assignment, r.centers).within_bounds for r in runs]
    assert ok[1] >= ok[0]  # kicks never lose the bounds the plain search reached
    if not ok[0]:
        assert kicked.kicks > 0
    if ok[0]:
        assert kicked.kicks == 0 and np.array_equal(plain.assignment, kicked.assignment)
    for r in runs:
        assert reference_contiguous(adj, r.assignment, 6)


def test_reference_cost_and_allowed_centers() -> None:
    prob, adj = grid_problem(6, 6, 3, 4)
    a0, seeds = grow_regions(adj, 3, np.random.default_rng(4))
    c0 = 2.0 * evaluate(prob, a0, seeds).cost
    res = local_search(prob, a0, seeds, adjacency=adj, reference_cost=c0, seed=0)
    f, _ = objective_terms(prob, a0, seeds, reference_cost=c0)
    assert res.objective_before == pytest.approx(f)
    assert res.terms_before["compactness"] == pytest.approx(0.5)
    allowed = np.zeros(36, bool)
    allowed[seeds] = True  # no other area may host a center: the centers cannot move
    fixed_res = local_search(prob, a0, seeds, adjacency=adj, allowed_centers=allowed, seed=0)
    assert np.array_equal(np.sort(fixed_res.centers), np.sort(seeds))
    with pytest.raises(InputError, match="allowed_centers"):
        local_search(prob, a0, seeds, allowed_centers=np.ones(3, bool))
    with pytest.raises(InputError, match="kicks"):
        local_search(prob, a0, seeds, kicks=-1)
