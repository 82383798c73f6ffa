"""Successive dichotomies (optimizer.dichotomy): invariants, Prop. 6.1, bounds and relaxation,
several measures, the split variant of Section 6.5 (Theorem 5.5) and real ZCTA data."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from typing import Literal

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.dichotomy import (
    DichotomyResult,
    _cut_lengths,
    _directions,
    _fractional_plan,
    _Geometry,
    _inherit_order,
    _sorted_projections,
    successive_dichotomies,
    successive_dichotomies_split,
)
from optimizer.exceptions import InputError, OptimizerError

AREAS = Path(__file__).resolve().parents[2] / "shared" / "data" / "areas"
CT_ZCTA = AREAS / "ct_zcta_2010.gpkg"
HAS_SPLIT = importlib.util.find_spec("optimizer.split") is not None
needs_split = pytest.mark.skipif(
    not HAS_SPLIT, reason="optimizer.split (resolve_splits) is not in this checkout yet"
)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def random_instance(
    n: int, m: int = 1, seed: int = 0, low: float = 1.0, high: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Points in general position (uniform in a 10 km square) and uniform weights."""
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 10_000.0
    w = rng.uniform(low, high, (n, m)) if m > 1 else rng.uniform(low, high, n)
    return xy, w


def bounds(weights: np.ndarray, p: int, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    W = weights.reshape(len(weights), -1)
    mu = W.sum(axis=0) / p
    return mu, (1 - tau) * mu, (1 + tau) * mu


def within(sizes: np.ndarray, L: np.ndarray, U: np.ndarray, mu: np.ndarray) -> bool:
    slack = 1e-9 * mu
    return bool(((sizes >= L - slack) & (sizes <= U + slack)).all())


def check_valid(res: DichotomyResult, weights: np.ndarray, p: int) -> None:
    """Every area assigned exactly once to one of p non-empty territories; sizes recomputed."""
    W = weights.reshape(len(weights), -1)
    n, m = W.shape
    a = res.assignment
    assert a.shape == (n,)
    assert np.issubdtype(a.dtype, np.integer)
    assert a.min() >= 0 and a.max() < p
    assert (np.bincount(a, minlength=p) > 0).all(), "a territory is empty"
    expected = np.zeros((p, m))
    np.add.at(expected, a, W)
    np.testing.assert_allclose(res.sizes, expected, rtol=1e-12, atol=1e-9)
    mu = W.sum(axis=0) / p
    dev = float((np.abs(expected - mu) / mu).max())
    assert res.max_deviation == pytest.approx(dev, rel=1e-12, abs=1e-12)
    assert res.final_bounds.shape == (2, m)


def check_disjoint_hulls(xy: np.ndarray, assignment: np.ndarray, p: int) -> None:
    """Prop. 6.1: pairwise disjoint convex hulls (zero-area overlap, no point strictly inside)."""
    hulls = [shapely.convex_hull(shapely.multipoints(xy[assignment == i])) for i in range(p)]
    total = shapely.convex_hull(shapely.multipoints(xy)).area
    for i, j in itertools.combinations(range(p), 2):
        overlap = hulls[i].intersection(hulls[j]).area
        assert overlap <= 1e-9 * total, f"hulls of territories {i} and {j} overlap ({overlap})"
    for i in range(p):
        others = xy[assignment != i]
        inside = shapely.contains_xy(hulls[i], others[:, 0], others[:, 1])
        assert not inside.any(), f"{int(inside.sum())} foreign points inside hull {i}"


# --------------------------------------------------------------------------------------------
# Invariants and Prop. 6.1
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "p"), [(1, 1), (50, 1), (7, 7), (60, 7), (300, 12), (1000, 100)])
def test_every_area_assigned_once_to_p_nonempty_territories(n: int, p: int) -> None:
    xy, w = random_instance(n, seed=n + p)
    res = successive_dichotomies(xy, w, p, tolerance=0.2)
    check_valid(res, w, p)
    assert res.nodes_explored >= 2 * p - 1


@pytest.mark.parametrize(("p", "stripe_threshold"), [(12, 200), (12, 0), (25, 40)])
def test_prop_6_1_disjoint_convex_hulls(p: int, stripe_threshold: int) -> None:
    xy, w = random_instance(600, seed=p)
    res = successive_dichotomies(
        xy, w, p, tolerance=0.1, n_directions=8, stripe_threshold=stripe_threshold
    )
    check_valid(res, w, p)
    check_disjoint_hulls(xy, res.assignment, p)


def test_grid_points_with_ties_stay_separable() -> None:
    """Integer grid: many ties in every rotated coordinate; hulls still do not overlap."""
    gx, gy = np.meshgrid(np.arange(20.0), np.arange(15.0))
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    w = np.ones(len(xy))
    res = successive_dichotomies(xy, w, 10, tolerance=0.0)
    check_valid(res, w, 10)
    assert res.feasible and res.max_deviation == 0.0  # 300 unit areas, 30 per territory
    check_disjoint_hulls(xy, res.assignment, 10)


def test_duplicate_points_stay_together_when_possible() -> None:
    """Identical points cannot be separated by a line: they go to one territory."""
    xy, w = random_instance(200, seed=5)
    xy[100:110] = xy[3]  # eleven copies of one location
    res = successive_dichotomies(xy, w, 8, tolerance=0.25)
    check_valid(res, w, 8)
    assert len(set(res.assignment[[3, *range(100, 110)]].tolist())) == 1


def test_all_points_identical_still_partitions() -> None:
    xy = np.zeros((12, 2))
    w = np.ones(12)
    res = successive_dichotomies(xy, w, 4, tolerance=0.0)
    check_valid(res, w, 4)
    assert res.feasible


def test_hull_chord_and_stripe_lengths() -> None:
    """Unit square corners plus its centre: the chord through the centre has length 1 (axis
    directions) or sqrt(2) (diagonal); a thin stripe sees the centre alone on the axis
    directions (length 0) and two corners on the diagonals (sqrt(2))."""
    P = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5]])
    sin, cos = _directions(4, None)  # 0, 45, 90, 135 degrees
    U, T, _, _ = _sorted_projections(P, sin, cos)
    dirs = np.arange(4)
    u0 = U[4, dirs]  # lines through the centre
    hull = _cut_lengths(P, U, T, u0, dirs, sin, cos, True, 0.05)
    np.testing.assert_allclose(hull, [1.0, np.sqrt(2), 1.0, np.sqrt(2)], atol=1e-12)
    stripe = _cut_lengths(P, U, T, u0, dirs, sin, cos, False, 0.05)
    np.testing.assert_allclose(stripe, [0.0, np.sqrt(2), 0.0, np.sqrt(2)], atol=1e-12)
    wide = _cut_lengths(P, U, T, U[0, dirs], dirs, sin, cos, False, 1.0)
    assert (wide > 0).all()


def test_inherited_order_equals_fresh_sort() -> None:
    rng = np.random.default_rng(3)
    P = rng.random((500, 2))
    sin, cos = _directions(16, None)
    U, _, order, _ = _sorted_projections(P, sin, cos)
    subset = rng.permutation(500)[:137]
    child = _inherit_order(order, subset)
    np.testing.assert_array_equal(child, np.argsort(U[subset], axis=0))


# --------------------------------------------------------------------------------------------
# Balance, the feasible flag and relaxation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "p", "tau"), [(2000, 20, 0.1), (2000, 20, 0.05), (1000, 100, 0.1)])
def test_territories_meet_bounds_when_feasible(n: int, p: int, tau: float) -> None:
    xy, w = random_instance(n, seed=7)
    res = successive_dichotomies(xy, w, p, tolerance=tau)
    check_valid(res, w, p)
    mu, L, U = bounds(w, p, tau)
    assert res.relaxations == 0
    assert res.feasible
    assert within(res.sizes, L, U, mu)
    assert res.max_deviation <= tau + 1e-9
    np.testing.assert_allclose(res.final_bounds, np.vstack([L, U]))


@pytest.mark.parametrize("tau", [0.0, 0.01, 0.03, 0.1, 0.3])
def test_feasible_flag_matches_original_bounds(tau: float) -> None:
    xy, w = random_instance(400, seed=11, low=1.0, high=10.0)
    res = successive_dichotomies(xy, w, 40, tolerance=tau, node_limit=400)
    check_valid(res, w, 40)
    mu, L, U = bounds(w, 40, tau)
    assert res.feasible == within(res.sizes, L, U, mu)


def test_relaxation_path_when_tau_is_too_tight() -> None:
    """101 unit areas into 10 territories with tau = 0: impossible, yet a result comes back."""
    xy, _ = random_instance(101, seed=2)
    w = np.ones(101)
    res = successive_dichotomies(xy, w, 10, tolerance=0.0, node_limit=100, max_relaxations=3)
    check_valid(res, w, 10)
    assert res.relaxations == 4  # three doublings (of 0) and the final L = 0, U = inf
    assert not res.feasible
    np.testing.assert_array_equal(res.final_bounds, [[0.0], [np.inf]])
    assert res.nodes_explored <= 1 + 4 * 101 + 2 * 10


@pytest.mark.parametrize(("node_limit", "max_relaxations"), [(30, 0), (60, 2), (200, 3)])
def test_node_limit_bounds_the_search(node_limit: int, max_relaxations: int) -> None:
    """Integer weights 1..5 and a 0.1 % tolerance: the search hits the node limit, doubles
    tau, finally drops the bounds, and the number of nodes stays bounded."""
    rng = np.random.default_rng(4)
    xy = rng.random((300, 2))
    w = rng.integers(1, 6, 300).astype(float)
    p = 30
    res = successive_dichotomies(
        xy, w, p, tolerance=0.001, node_limit=node_limit, max_relaxations=max_relaxations
    )
    check_valid(res, w, p)
    assert res.relaxations >= 1
    assert res.backtracks > 0 or res.nodes_explored > node_limit
    bound = 1 + (max_relaxations + 1) * (node_limit + 1) + 2 * p
    assert res.nodes_explored <= bound
    mu, L, U = bounds(w, p, 0.001)
    assert res.feasible == within(res.sizes, L, U, mu)
    if res.relaxations > max_relaxations:
        assert np.isinf(res.final_bounds[1]).all() and (res.final_bounds[0] == 0).all()


def test_relaxed_bounds_are_doubled_tau() -> None:
    rng = np.random.default_rng(4)
    xy = rng.random((300, 2))
    w = rng.integers(1, 6, 300).astype(float)
    res = successive_dichotomies(xy, w, 30, tolerance=0.001, node_limit=60, max_relaxations=20)
    mu = w.sum() / 30
    r = res.relaxations
    assert 1 <= r <= 20
    tau = 0.001 * 2.0**r
    np.testing.assert_allclose(res.final_bounds[:, 0], [max(0.0, (1 - tau) * mu), (1 + tau) * mu])


def test_asymmetric_tolerance() -> None:
    xy, w = random_instance(1500, seed=9)
    tol = np.array([[0.02], [0.15]])  # lower row, upper row
    res = successive_dichotomies(xy, w, 15, tolerance=tol)
    mu = w.sum() / 15
    assert res.feasible
    assert res.sizes.min() >= 0.98 * mu - 1e-9 and res.sizes.max() <= 1.15 * mu + 1e-9


# --------------------------------------------------------------------------------------------
# Several measures (Section 8)
# --------------------------------------------------------------------------------------------


def test_multi_measure_bounds() -> None:
    xy, w = random_instance(2000, m=3, seed=13)
    p, tau = 16, 0.1
    res = successive_dichotomies(xy, w, p, tolerance=tau)
    check_valid(res, w, p)
    mu, L, U = bounds(w, p, tau)
    assert res.sizes.shape == (p, 3)
    assert res.feasible and within(res.sizes, L, U, mu)
    check_disjoint_hulls(xy, res.assignment, p)


def test_multi_measure_per_measure_tolerance() -> None:
    """A loose second measure: only the first one's tight bound binds."""
    rng = np.random.default_rng(21)
    xy = rng.random((1500, 2))
    w = np.column_stack([rng.uniform(1, 2, 1500), rng.lognormal(0, 1, 1500)])
    tol = np.array([0.05, 0.5])
    res = successive_dichotomies(xy, w, 12, tolerance=tol)
    check_valid(res, w, 12)
    mu = w.sum(axis=0) / 12
    dev = np.abs(res.sizes - mu) / mu
    assert res.feasible == bool((dev <= tol + 1e-9).all())
    assert res.feasible


def test_single_column_matrix_equals_vector() -> None:
    xy, w = random_instance(500, seed=17)
    a = successive_dichotomies(xy, w, 9, tolerance=0.05)
    b = successive_dichotomies(xy, w[:, None], 9, tolerance=[0.05])
    np.testing.assert_array_equal(a.assignment, b.assignment)


# --------------------------------------------------------------------------------------------
# Determinism and input validation
# --------------------------------------------------------------------------------------------


def test_determinism() -> None:
    xy, w = random_instance(800, seed=19)
    a = successive_dichotomies(xy, w, 25, tolerance=0.05)
    b = successive_dichotomies(xy.copy(), w.copy(), 25, tolerance=0.05)
    np.testing.assert_array_equal(a.assignment, b.assignment)
    np.testing.assert_array_equal(a.sizes, b.sizes)
    assert (a.nodes_explored, a.backtracks, a.relaxations) == (
        b.nodes_explored,
        b.backtracks,
        b.relaxations,
    )
    c = successive_dichotomies(xy, w, 25, tolerance=0.05, seed=123)
    d = successive_dichotomies(xy, w, 25, tolerance=0.05, seed=np.random.default_rng(123))
    np.testing.assert_array_equal(c.assignment, d.assignment)
    check_valid(c, w, 25)


XY5 = np.arange(10.0).reshape(5, 2)
W5 = np.ones(5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p": 0}, r"1 <= p <= n = 5"),
        ({"p": 6}, r"1 <= p <= n = 5"),
        ({"p": 2.5}, r"p must be an integer"),
        ({"p": True}, r"p must be an integer"),
        ({"weights": np.array([1.0, -1.0, 1.0, 1.0, 1.0])}, r"weights must be >= 0"),
        ({"weights": np.array([1.0, np.nan, 1.0, 1.0, 1.0])}, r"finite.*row 1"),
        ({"weights": np.zeros(5)}, r"positive total"),
        ({"weights": np.ones(4)}, r"shape \(5,\) or \(5, m\)"),
        ({"weights": np.ones((5, 2, 1))}, r"shape \(5,\) or \(5, m\)"),
        ({"weights": ["a"] * 5}, r"weights must be a numeric"),
        ({"xy": np.ones((5, 3))}, r"xy must have shape \(n, 2\)"),
        ({"xy": np.ones(10)}, r"xy must have shape \(n, 2\)"),
        ({"xy": np.array([[0, 0], [1, np.inf], [2, 2], [3, 3], [4, 4]])}, r"finite; row 1"),
        ({"tolerance": -0.1}, r"tolerance \(lower\) must be between 0 and 1"),
        ({"tolerance": np.ones(3)}, r"shape \(1,\).*shape \(2, 1\)"),
        ({"n_directions": 0}, r"n_directions must be >= 1"),
        ({"node_limit": 0}, r"node_limit must be >= 1"),
        ({"max_relaxations": -1}, r"max_relaxations must be >= 0"),
        ({"stripe_width": 0.0}, r"stripe_width must be in \(0, 1\]"),
        ({"stripe_threshold": 1.5}, r"stripe_threshold must be an integer"),
    ],
)
def test_input_validation(kwargs: dict, match: str) -> None:
    args = {"xy": XY5, "weights": W5, "p": 2} | kwargs
    xy, weights, p = args.pop("xy"), args.pop("weights"), args.pop("p")
    with pytest.raises(InputError, match=match) as info:
        successive_dichotomies(xy, weights, p, **args)
    assert isinstance(info.value, OptimizerError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p": 0}, r"1 <= p <= n"),
        ({"objective": "median"}, r"objective must be 'max', 'sum' or 'squares'"),
        ({"weights": -W5}, r"weights must be >= 0"),
    ],
)
def test_split_input_validation(kwargs: dict, match: str) -> None:
    args = {"xy": XY5, "weights": W5, "p": 2} | kwargs
    xy, weights, p = args.pop("xy"), args.pop("weights"), args.pop("p")
    with pytest.raises(InputError, match=match):
        successive_dichotomies_split(xy, weights, p, **args)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    data=st.data(),
    tau=st.sampled_from([0.0, 0.05, 0.2]),
    n_directions=st.integers(1, 8),
)
def test_property_valid_partition(
    n: int, data: st.DataObject, tau: float, n_directions: int
) -> None:
    p = data.draw(st.integers(1, n))
    seed = data.draw(st.integers(0, 2**16))
    xy, w = random_instance(n, seed=seed, low=0.0, high=3.0)
    w[0] += 1.0  # positive total
    res = successive_dichotomies(
        xy, w, p, tolerance=tau, n_directions=n_directions, node_limit=20 * p
    )
    check_valid(res, w, p)
    mu, L, U = bounds(w, p, tau)
    assert res.feasible == within(res.sizes, L, U, mu)


# --------------------------------------------------------------------------------------------
# Split variant (Section 6.5)
# --------------------------------------------------------------------------------------------


def _plan(xy: np.ndarray, w: np.ndarray, p: int, n_dir: int = 16):
    W = w.reshape(len(w), -1)
    sin, cos = _directions(n_dir, None)
    geo = _Geometry(xy, W, W.sum(axis=0) / p, sin, cos, 200, 0.05)
    return _fractional_plan(geo, p)


@pytest.mark.parametrize(("n", "p"), [(1, 3), (5, 5), (200, 7), (600, 33)])
def test_fractional_plan_is_exactly_balanced_forest(n: int, p: int) -> None:
    """Each territory gets exactly mu of the primary measure; the territory/split-area graph is
    a forest; column sums are 1."""
    xy, w = random_instance(n, seed=n * p)
    fractions, n_split, explored = _plan(xy, w, p)
    X = fractions.toarray()
    assert X.shape == (p, n) and (X >= 0).all()
    np.testing.assert_allclose(X.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(X @ w, w.sum() / p, rtol=1e-9)
    split_cols = np.flatnonzero((X > 0).sum(axis=0) > 1)
    assert n_split == len(split_cols) <= p - 1  # one split per cut at most
    assert explored == 2 * p - 1
    g = nx.Graph()
    g.add_nodes_from(("t", i) for i in range(p))
    for v in split_cols:
        g.add_edges_from((("t", int(i)), ("v", int(v))) for i in np.flatnonzero(X[:, v] > 0))
    assert nx.is_forest(g)


def test_area_split_by_several_cuts() -> None:
    """One heavy area worth 2.5 territories ends in three territories."""
    xy, w = random_instance(40, seed=1)
    w[0] = 2.5 * (w.sum() - w[0]) / 5.5  # w0 = 2.5 mu with p = 8
    fractions, _, _ = _plan(xy, w, 8)
    X = fractions.toarray()
    assert (X[:, 0] > 0).sum() >= 3
    np.testing.assert_allclose(X @ w, w.sum() / 8, rtol=1e-9)
    np.testing.assert_allclose(X.sum(axis=0), 1.0, atol=1e-12)


@needs_split
@pytest.mark.parametrize("objective", ["max", "sum", "squares"])
@pytest.mark.parametrize(("n", "p", "seed"), [(300, 12, 0), (1000, 100, 1), (500, 37, 2)])
def test_split_variant_theorem_5_5(
    objective: Literal["max", "sum", "squares"], n: int, p: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2))
    w = rng.lognormal(0.0, 0.7, n)
    res = successive_dichotomies_split(xy, w, p, objective=objective)
    assert res.assignment.shape == (n,) and res.assignment.min() >= 0
    assert res.assignment.max() < p
    np.testing.assert_allclose(res.sizes[:, 0], np.bincount(res.assignment, w, minlength=p))
    assert res.fractions is not None
    X = res.fractions.toarray()
    split = np.flatnonzero((X > 0).sum(axis=0) > 1)
    assert res.splits == len(split)
    assert res.backtracks == 0 and res.relaxations == 0
    # a resolved area goes to one of the territories holding a piece of it
    assert (X[res.assignment, np.arange(n)] > 0).all()
    if objective == "max":
        mu = w.sum() / p
        bound = w[split].max() if len(split) else 0.0
        assert np.abs(res.sizes[:, 0] - mu).max() <= bound + 1e-9 * mu  # Theorem 5.5


@needs_split
def test_split_variant_multi_measure_and_feasible_flag() -> None:
    xy, w = random_instance(2000, m=2, seed=23)
    res = successive_dichotomies_split(xy, w, 20, tolerance=0.05)
    assert res.sizes.shape == (20, 2)
    mu, L, U = bounds(w, 20, 0.05)
    assert res.feasible == within(res.sizes, L, U, mu)
    np.testing.assert_allclose(res.final_bounds, np.vstack([L, U]))
    again = successive_dichotomies_split(xy, w, 20, tolerance=0.05)
    np.testing.assert_array_equal(res.assignment, again.assignment)


# --------------------------------------------------------------------------------------------
# Real data: Connecticut ZCTAs (2010), population
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct_zcta() -> tuple[np.ndarray, np.ndarray]:
    if not CT_ZCTA.is_file():
        pytest.skip(f"shared data not available: {CT_ZCTA}")
    gpd = pytest.importorskip("geopandas")
    gdf = gpd.read_file(CT_ZCTA).to_crs(5070)
    pts = gdf.geometry.representative_point()
    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    return xy, gdf["population"].to_numpy(dtype=float)


@pytest.mark.parametrize("tau", [0.1, 0.05])
def test_ct_zcta_population(
    ct_zcta: tuple[np.ndarray, np.ndarray], tau: float, record_property
) -> None:
    xy, pop = ct_zcta
    assert len(xy) == 282
    res = successive_dichotomies(xy, pop, 28, tolerance=tau)
    check_valid(res, pop, 28)
    check_disjoint_hulls(xy, res.assignment, 28)
    record_property("max_deviation", res.max_deviation)
    record_property("nodes_explored", res.nodes_explored)
    assert res.feasible
    assert res.max_deviation <= tau + 1e-9


@needs_split
def test_ct_zcta_split_variant(ct_zcta: tuple[np.ndarray, np.ndarray], record_property) -> None:
    xy, pop = ct_zcta
    res = successive_dichotomies_split(xy, pop, 28)
    assert (np.bincount(res.assignment, minlength=28) > 0).all()
    assert res.fractions is not None
    split = np.flatnonzero((res.fractions.toarray() > 0).sum(axis=0) > 1)
    mu = pop.sum() / 28
    assert np.abs(res.sizes[:, 0] - mu).max() <= pop[split].max() + 1e-9 * mu
    record_property("max_deviation", res.max_deviation)
