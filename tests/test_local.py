"""Contiguity (pieces, repair) and the tabu local search: invariants on grids and CT ZCTAs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components

from optimizer import TerritoryProblem, evaluate
from optimizer.contiguity import (
    fragments,
    is_contiguous,
    main_pieces,
    repair_contiguity,
    territory_pieces,
)
from optimizer.exceptions import InputError
from optimizer.local import LocalSearchWeights, local_search, objective_terms
from tests.support import shared_file
from tests.support.grids import (
    grid_adjacency,
    grid_problem,
    grid_xy,
    grow_regions,
    reference_contiguous,
)

# --------------------------------------------------------------------------- helpers


def independent_objective(
    prob: TerritoryProblem,
    a: np.ndarray,
    centers: np.ndarray,
    c0: float,
    wts: LocalSearchWeights,
    existing: np.ndarray | None = None,
) -> float:
    """F written out from the module docstring (non-capacity mode, finite costs)."""
    p = prob.p
    W = np.array([prob.weights[a == t].sum(axis=0) for t in range(p)])
    lo, hi = prob.bounds()
    mu = prob.mean
    e = (np.maximum(0, W - hi) + np.maximum(0, lo - W)) / mu
    r = (W - mu) / mu
    balance = (wts.band_penalty * e + r**2).sum() / p
    d = np.array(
        [prob.cost.block(centers[a[v] : a[v] + 1], np.array([v]))[0, 0] for v in range(prob.n)]
    )
    compact = float(prob.objective_weights @ d) / c0
    dis = 0.0
    if existing is not None:
        share = prob.objective_weights / prob.objective_weights.sum()
        dis = float(share[(existing >= 0) & (a != existing)].sum())
    return wts.balance * balance + wts.compactness * compact + wts.disruption * dis


# --------------------------------------------------------------------------- contiguity


def test_pieces_on_a_path() -> None:
    path = sp.diags([np.ones(5), np.ones(5)], [-1, 1], shape=(6, 6), format="csr", dtype=bool)
    a = np.array([0, 0, 1, 0, 1, 1])
    pieces = territory_pieces(path, a, 2)
    assert [[x.tolist() for x in t] for t in pieces] == [[[0, 1], [3]], [[4, 5], [2]]]
    # the center decides which piece is main, not the size
    main = main_pieces(path, a, np.array([3, 5]))
    assert [x.tolist() for x in main] == [[3], [4, 5]]
    assert [(t, f.tolist()) for t, f in fragments(path, a, np.array([3, 5]))] == [
        (0, [0, 1]),
        (1, [2]),
    ]
    assert not is_contiguous(path, a, 2)
    assert is_contiguous(path, np.array([0, 0, 0, 1, 1, 1]), 2)
    # a center area assigned to another territory breaks contiguity "with centers"
    assert not is_contiguous(path, np.array([0, 0, 0, 1, 1, 1]), 2, np.array([3, 5]))


@settings(max_examples=40, deadline=None)
@given(
    r=st.integers(1, 6),
    c=st.integers(1, 6),
    p=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_pieces_partition_and_match_scipy(r: int, c: int, p: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    adj = grid_adjacency(r, c)
    a = rng.integers(0, p, r * c)
    pieces = territory_pieces(adj, a, p)
    allp = np.concatenate([x for t in pieces for x in t])
    assert np.array_equal(np.sort(allp), np.arange(r * c))  # a partition
    for t, plist in enumerate(pieces):
        sizes = [x.size for x in plist]
        assert sizes == sorted(sizes, reverse=True)
        for x in plist:
            assert np.all(a[x] == t)
            assert connected_components(adj[x][:, x], directed=False)[0] == 1
        members = np.flatnonzero(a == t)
        k = connected_components(adj[members][:, members])[0] if members.size else 0
        assert len(plist) == k
    assert is_contiguous(adj, a, p) == reference_contiguous(adj, a, p)


@pytest.mark.parametrize("seed", range(12))
def test_repair_makes_territories_contiguous(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r, c, p = 8 + seed % 3, 9, 4 + seed % 4
    prob, adj = grid_problem(r, c, p, seed)
    a, seeds = grow_regions(adj, p, rng)
    # scatter: 15 % of the non-center areas go to a random territory
    flip = rng.choice(np.setdiff1d(np.arange(r * c), seeds), size=int(0.15 * r * c), replace=False)
    a[flip] = rng.integers(0, p, flip.size)
    repaired, moved = repair_contiguity(prob, a, seeds, adj)
    assert repaired.shape == (r * c,) and repaired.min() >= 0 and repaired.max() < p
    assert reference_contiguous(adj, repaired, p)
    assert is_contiguous(adj, repaired, p, seeds)
    assert moved == int(np.count_nonzero(repaired != a))
    assert np.all(repaired[seeds] == np.arange(p))  # centers stay


def test_repair_reconnects_a_locked_fragment_or_reports(caplog: pytest.LogCaptureFixture) -> None:
    # 3 x 3 grid: territory 1 = {4, 8} with its center at 8, so {4} (enclosed by 0) is a fragment
    adj = grid_adjacency(3, 3)
    prob = TerritoryProblem.from_points(grid_xy(3, 3), np.ones(9), 2)
    a = np.array([0, 0, 0, 0, 1, 0, 0, 0, 1])
    centers = np.array([0, 8])
    locked = np.zeros(9, bool)
    locked[4] = True
    out, moved = repair_contiguity(prob, a, centers, adj, locked=locked)
    # the locked area stays; one area (5 or 7) joins it to its center's piece
    assert out[4] == 1 and moved == 1 and (out[5] == 1) != (out[7] == 1)
    assert is_contiguous(adj, out, 2, centers)
    locked[[5, 7]] = True  # the only ways through are locked to territory 0: no path
    with caplog.at_level(logging.WARNING, logger="optimizer.contiguity"):
        out, moved = repair_contiguity(prob, a, centers, adj, locked=locked)
    assert out[4] == 1 and moved == 0  # the locked fragment stays
    assert "locked: 1" in caplog.text
    assert [(t, f.tolist()) for t, f in fragments(adj, out, centers)] == [(1, [4])]
    out, moved = repair_contiguity(prob, a, centers, adj)
    assert out[4] == 0 and moved == 1


def test_repair_leaves_islands(caplog: pytest.LogCaptureFixture) -> None:
    adj = grid_adjacency(3, 3).tolil()
    adj[8, :] = False
    adj[:, 8] = False  # area 8 has no neighbour
    prob = TerritoryProblem.from_points(grid_xy(3, 3), np.ones(9), 2)
    a = np.array([0, 0, 1, 0, 1, 1, 0, 1, 0])  # 8 belongs to 0 but touches nothing
    with caplog.at_level(logging.WARNING, logger="optimizer.contiguity"):
        out, _ = repair_contiguity(prob, a, np.array([0, 5]), adj.tocsr())
    assert out[8] == 0
    assert "island: 1" in caplog.text


def test_repair_prefers_the_territory_that_needs_weight() -> None:
    # a path 0-1-2-3-4-5: territory 1 = {2, 5} with its center at 5, so {2} is a fragment
    # touching territory 0 (area 1, heavy) and territory 2 (area 3, light), at equal distance
    path = sp.diags([np.ones(5), np.ones(5)], [-1, 1], shape=(6, 6), format="csr", dtype=bool)
    w = np.array([10, 10, 5, 1, 1, 3], dtype=float)
    prob = TerritoryProblem.from_points(np.c_[np.arange(6.0), np.zeros(6)], w, 3, tolerance=0.1)
    a = np.array([0, 0, 1, 2, 2, 1])
    out, moved = repair_contiguity(prob, a, np.array([0, 5, 4]), path)
    assert moved == 1 and out[2] == 2
    # with balance ignored, drive time decides: area 2 is nearer to center 0 (area 1 is 1 away)
    prob_far = TerritoryProblem.from_points(
        np.array([[1.5, 0], [1.8, 0], [2, 0], [5, 0], [6, 0], [7, 0]]), w, 3, tolerance=0.1
    )
    out, _ = repair_contiguity(prob_far, a, np.array([0, 5, 4]), path, balance_weight=0.0)
    assert out[2] == 0


def test_contiguity_input_errors() -> None:
    prob = TerritoryProblem.from_points(grid_xy(2, 2), np.ones(4), 2)
    with pytest.raises(InputError, match="shape"):
        is_contiguous(grid_adjacency(3, 3), np.zeros(4, dtype=int), 2)
    with pytest.raises(InputError, match="outside"):
        is_contiguous(grid_adjacency(2, 2), np.array([0, 1, 2, 0]), 2)
    with pytest.raises(InputError, match="locked"):
        repair_contiguity(
            prob,
            np.array([0, 0, 1, 1]),
            np.array([0, 3]),
            grid_adjacency(2, 2),
            locked=np.ones(1, bool),
        )


# --------------------------------------------------------------------------- local search


@settings(max_examples=25, deadline=None)
@given(
    r=st.integers(4, 9),
    c=st.integers(4, 9),
    p=st.integers(2, 7),
    m=st.integers(1, 2),
    seed=st.integers(0, 10_000),
    contiguity=st.booleans(),
    n_locked=st.integers(0, 6),
)
def test_local_search_invariants(
    r: int, c: int, p: int, m: int, seed: int, contiguity: bool, n_locked: int
) -> None:
    rng = np.random.default_rng(seed)
    prob, adj = grid_problem(r, c, p, seed, m=m)
    a0, seeds = grow_regions(adj, p, rng)
    locked = np.zeros(r * c, bool)
    locked[rng.choice(r * c, n_locked, replace=False)] = True
    res = local_search(
        prob,
        a0,
        seeds,
        adjacency=adj,
        require_contiguity=contiguity,
        locked=locked,
        max_iter=400,
        seed=seed,
    )
    a = res.assignment
    assert a.shape == (r * c,) and a.dtype == np.int64
    assert a.min() >= 0 and a.max() < p  # every area in exactly one territory
    assert np.all(np.bincount(a, minlength=p) > 0)
    assert np.array_equal(a[locked], a0[locked])  # locked areas never move
    center_area = prob.candidates[res.centers]
    assert np.all(a[center_area] == np.arange(p))  # centers stay in their territory
    assert np.unique(res.centers).size == p
    # F never increases, unless the result is within all bounds and the start was not
    assert res.objective_after <= res.objective_before + 1e-9 or (
        evaluate(prob, a, res.centers).within_bounds and not evaluate(prob, a0, seeds).within_bounds
    )
    if contiguity:
        assert reference_contiguous(adj, a, p) and res.contiguous
    # reported objective = the documented formula, recomputed independently
    c0 = evaluate(prob, a0, seeds).cost
    wts = LocalSearchWeights()
    assert res.objective_before == pytest.approx(independent_objective(prob, a0, seeds, c0, wts))
    assert res.objective_after == pytest.approx(
        independent_objective(prob, a, res.centers, c0, wts)
    )
    f, terms = objective_terms(prob, a, res.centers, reference_cost=c0)
    assert f == pytest.approx(res.objective_after) and terms == pytest.approx(res.terms_after)
    assert res.changed == int(np.count_nonzero(a != a0))


@pytest.mark.parametrize("seed", range(4))
def test_balance_improves_from_a_deliberately_unbalanced_start(seed: int) -> None:
    rng = np.random.default_rng(seed)
    prob, adj = grid_problem(12, 12, 8, seed)
    a0, seeds = grow_regions(adj, 8, rng)
    before = evaluate(prob, a0, seeds)
    assert before.max_deviation > 0.3  # the start is poor
    for contiguity in (False, True):
        res = local_search(prob, a0, seeds, adjacency=adj, require_contiguity=contiguity, seed=0)
        after = evaluate(prob, res.assignment, res.centers)
        assert after.max_deviation < 0.5 * before.max_deviation
        assert after.max_deviation < 0.2
        assert res.terms_after["balance"] < 0.1 * res.terms_before["balance"]
        assert after.cost < before.cost  # also more compact than random regions


@pytest.mark.parametrize("seed", range(3))
def test_high_disruption_weight_keeps_the_existing_alignment(seed: int) -> None:
    # a wide tolerance: only drive time (and the pull to the mean) argue for changes
    prob, adj = grid_problem(10, 12, 6, seed, tol=1.0)
    a0, seeds = grow_regions(adj, 6, np.random.default_rng(seed))
    changed = {}
    for dis in (0.0, 1.0, 50.0):
        res = local_search(
            prob,
            a0,
            seeds,
            adjacency=adj,
            require_contiguity=True,
            existing=a0,
            weights=LocalSearchWeights(disruption=dis),
        )
        changed[dis] = res.changed
        assert res.terms_after["disruption"] == pytest.approx(
            prob.weights[res.assignment != a0, 0].sum() / prob.weights[:, 0].sum()
        )
    assert changed[0.0] > 20
    assert changed[50.0] <= changed[1.0] < 0.5 * changed[0.0]
    assert changed[50.0] <= 2


def test_disruption_ignores_new_areas() -> None:
    prob, adj = grid_problem(6, 6, 3, 1)
    a0, seeds = grow_regions(adj, 3, np.random.default_rng(1))
    existing = a0.copy()
    existing[::2] = -1  # new areas: moving them is free
    res = local_search(
        prob, a0, seeds, adjacency=adj, existing=existing, weights=LocalSearchWeights(disruption=5)
    )
    moved = res.assignment != a0
    assert res.terms_after["disruption"] == pytest.approx(
        prob.weights[moved & (existing >= 0), 0].sum() / prob.weights[:, 0].sum()
    )


@pytest.mark.parametrize("contiguity", [False, True])
def test_deterministic_for_a_seed_with_max_iter(contiguity: bool) -> None:
    prob, adj = grid_problem(12, 14, 10, 3, m=2)
    a0, seeds = grow_regions(adj, 10, np.random.default_rng(3))
    runs = [
        local_search(
            prob,
            a0,
            seeds,
            adjacency=adj,
            require_contiguity=contiguity,
            max_iter=700,
            seed=11,
            time_limit=None,
        )
        for _ in range(2)
    ]
    assert np.array_equal(runs[0].assignment, runs[1].assignment)
    assert np.array_equal(runs[0].centers, runs[1].centers)
    assert runs[0].objective_after == runs[1].objective_after
    assert (runs[0].iterations, runs[0].moves, runs[0].swaps) == (
        runs[1].iterations,
        runs[1].moves,
        runs[1].swaps,
    )
    assert runs[0].iterations <= 700


def test_contiguity_required_repairs_a_scattered_start_first() -> None:
    rng = np.random.default_rng(5)
    prob, adj = grid_problem(10, 10, 5, 5)
    a0, seeds = grow_regions(adj, 5, rng)
    flip = rng.choice(np.setdiff1d(np.arange(100), seeds), 12, replace=False)
    a0[flip] = (a0[flip] + 1) % 5
    assert not reference_contiguous(adj, a0, 5)
    res = local_search(prob, a0, seeds, adjacency=adj, require_contiguity=True)
    assert res.repaired > 0
    assert res.contiguous and reference_contiguous(adj, res.assignment, 5)


def test_without_adjacency_moves_to_nearest_centers() -> None:
    rng = np.random.default_rng(2)
    xy = rng.random((150, 2)) * 100
    w = rng.integers(1, 30, 150).astype(float)
    prob = TerritoryProblem.from_points(xy, w, 6, tolerance=0.05)
    start = rng.integers(0, 6, 150)
    centers = np.array([int(np.flatnonzero(start == t)[0]) for t in range(6)])
    res = local_search(prob, start, centers, k_nearest=3, seed=1)
    assert res.contiguous is None
    assert res.objective_after < 0.5 * res.objective_before
    after = evaluate(prob, res.assignment, res.centers)
    assert after.max_deviation < evaluate(prob, start, centers).max_deviation
    assert np.all(res.assignment[prob.candidates[res.centers]] == np.arange(6))


def test_fixed_centers_stay_and_others_move() -> None:
    prob, adj = grid_problem(10, 10, 4, 9)
    a0, seeds = grow_regions(adj, 4, np.random.default_rng(9))
    fixed = np.array([True, False, True, False])
    res = local_search(prob, a0, seeds, adjacency=adj, fixed_centers=fixed)
    assert np.array_equal(res.centers[fixed], seeds[fixed])
    free = local_search(prob, a0, seeds, adjacency=adj)
    assert not np.array_equal(free.centers, seeds)  # relocation does happen when allowed
    assert free.objective_after <= res.objective_after + 1e-9


def test_extra_point_candidates_and_capacity_mode() -> None:
    rng = np.random.default_rng(4)
    xy = rng.random((80, 2)) * 50
    offices = rng.random((10, 2)) * 50
    w = rng.integers(1, 20, 80).astype(float)
    prob = TerritoryProblem.from_points(
        xy, w, 4, candidate_coords=offices, capacity=w.sum() / 4 * 1.1
    )
    start = np.repeat(np.arange(4), 20)
    res = local_search(prob, start, np.array([0, 1, 2, 3]), seed=3)
    assert np.unique(res.centers).size == 4
    assert res.objective_after <= res.objective_before
    before = evaluate(prob, start, np.array([0, 1, 2, 3]))
    after = evaluate(prob, res.assignment, res.centers)
    assert after.cost < before.cost
    cap = prob.capacity
    assert cap is not None
    overflow = np.maximum(0, after.sizes[:, 0] - cap[res.centers]).sum()
    assert overflow <= np.maximum(0, before.sizes[:, 0] - cap[:4]).sum() + 1e-9


def test_time_limit_zero_still_returns_a_valid_design() -> None:
    prob, adj = grid_problem(10, 10, 5, 0)
    a0, seeds = grow_regions(adj, 5, np.random.default_rng(0))
    res = local_search(prob, a0, seeds, adjacency=adj, require_contiguity=True, time_limit=0.0)
    assert res.stopped == "time_limit"
    assert res.objective_after <= res.objective_before
    assert reference_contiguous(adj, res.assignment, 5)


def test_local_search_input_errors() -> None:
    prob, _ = grid_problem(4, 4, 2, 0)
    a = np.repeat([0, 1], 8)
    c = np.array([0, 15])
    with pytest.raises(InputError, match="adjacency"):
        local_search(prob, a, c, require_contiguity=True)
    with pytest.raises(InputError, match="empty"):
        local_search(prob, np.zeros(16, dtype=int), c)
    with pytest.raises(InputError, match="locked"):
        local_search(prob, a, c, locked=np.zeros(3, bool))
    with pytest.raises(InputError, match="two territories"):
        local_search(prob, a, np.array([0, 0]))
    with pytest.raises(InputError, match="existing"):
        local_search(prob, a, c, existing=np.full(16, 5))
    with pytest.raises(InputError, match="band_penalty"):
        LocalSearchWeights(band_penalty=-1.0)


# ------------------------------------------------ kicks, reference cost, allowed centers


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


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def ct() -> tuple[TerritoryProblem, sp.csr_matrix]:
    gpd = pytest.importorskip("geopandas")
    from roadnet.adjacency import polygon_adjacency  # tests may use roadnet; the optimizer not

    gdf = gpd.read_file(shared_file("areas", "ct_zcta_2010.gpkg"))
    adj = polygon_adjacency(gdf, kind="rook")
    centroids = gdf.to_crs(gdf.estimate_utm_crs()).geometry.centroid
    xy = np.c_[centroids.x, centroids.y]
    pop = gdf["population"].to_numpy(dtype=float)
    return TerritoryProblem.from_points(xy, pop, 28, tolerance=0.05), adj


@pytest.mark.parametrize("seed", range(3))
def test_ct_zctas_from_random_contiguous_regions(
    ct: tuple[TerritoryProblem, sp.csr_matrix], seed: int
) -> None:
    prob, adj = ct
    assert prob.n == 282
    a0, seeds = grow_regions(adj, prob.p, np.random.default_rng(seed))
    before = evaluate(prob, a0, seeds)
    res = local_search(prob, a0, seeds, adjacency=adj, require_contiguity=True, seed=0)
    after = evaluate(prob, res.assignment, res.centers)
    print(
        f"\nCT seed {seed}: max deviation {before.max_deviation:.3f} -> {after.max_deviation:.3f}"
        f", territories outside +-5 %: "
        f"{int((np.abs(before.deviation) > 0.05 + 1e-9).sum())} -> "
        f"{int((np.abs(after.deviation) > 0.05 + 1e-9).sum())}"
        f", weighted cost (person-m) {before.cost:.4g} -> {after.cost:.4g} "
        f"({100 * (after.cost / before.cost - 1):+.1f} %), {res.seconds:.2f} s, "
        f"{res.iterations} it, {res.chains} chains"
    )
    assert res.contiguous and reference_contiguous(adj, res.assignment, prob.p)
    assert after.max_deviation < 0.25 * before.max_deviation
    assert after.cost < 0.9 * before.cost
    assert res.objective_after < res.objective_before


def test_ct_zctas_after_location_allocation(ct: tuple[TerritoryProblem, sp.csr_matrix]) -> None:
    from optimizer import solve

    prob, adj = ct
    la = solve(prob, "la", seed=0)
    res = local_search(prob, la.assignment, la.centers, adjacency=adj, require_contiguity=True)
    after = evaluate(prob, res.assignment, res.centers)
    print(
        f"\nCT LA -> contiguity repair + local search: contiguous "
        f"{reference_contiguous(adj, la.assignment, prob.p)} -> {res.contiguous} "
        f"({res.repaired} areas repaired), max deviation {la.max_deviation:.3f} -> "
        f"{after.max_deviation:.3f}, cost {la.cost:.4g} -> {after.cost:.4g}"
    )
    assert res.contiguous and reference_contiguous(adj, res.assignment, prob.p)
    assert after.max_deviation < 0.15
    assert after.cost < 1.05 * la.cost
