"""Split resolution (optimizer.split): optimal DP vs brute force, Theorems 5.1 and 5.5 on real
TRANSP solutions, invariants of the assignment, input validation."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from optimizer.exceptions import InputError, OptimizerError
from optimizer.split import (
    SplitObjective,
    SplitResolution,
    assign_max,
    resolve_splits,
    split_areas,
)

OBJECTIVES: tuple[SplitObjective, ...] = ("max", "sum", "squares")


# --------------------------------------------------------------------------------------------
# Helpers: random split forests, an independent objective, brute force
# --------------------------------------------------------------------------------------------


@dataclass
class Problem:
    fractions: np.ndarray  # (p, n)
    weights: np.ndarray  # (n,) or (n, m)
    targets: np.ndarray  # (p,) or (p, m)
    split_centers: dict[int, list[int]]  # split area -> adjacent centers
    home: dict[int, int]  # uniquely assigned area -> its center

    @property
    def p(self) -> int:
        return self.fractions.shape[0]


def _find(parent: list[int], a: int) -> int:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def build_problem(
    p: int,
    splits: list[list[int]],
    shares: list[np.ndarray],
    unique_centers: list[int],
    weights: np.ndarray,
    targets: np.ndarray,
    order: np.ndarray | None = None,
) -> Problem:
    """Fractions for the given splits (centers, shares) and uniquely assigned areas."""
    n = len(splits) + len(unique_centers)
    order = np.arange(n) if order is None else order
    x = np.zeros((p, n))
    split_centers: dict[int, list[int]] = {}
    home: dict[int, int] = {}
    for k, (centers, share) in enumerate(zip(splits, shares, strict=True)):
        v = int(order[k])
        x[centers, v] = share / share.sum()
        split_centers[v] = list(centers)
    for k, c in enumerate(unique_centers):
        v = int(order[len(splits) + k])
        x[c, v] = 1.0
        home[v] = c
    return Problem(x, weights, targets, split_centers, home)


def random_forest_problem(rng: np.random.Generator, m: int = 1) -> Problem:
    """A random acyclic split adjacency: p in 2..6, splits adjacent to 2-3 centers.

    Every split joins centers of distinct components (union-find), so the bipartite graph
    stays a forest; the number of splits is random, so there are often several components and
    centers without splits.
    """
    p = int(rng.integers(2, 7))
    parent = list(range(p))
    # Sometimes split the centers into two groups that no split joins: several components.
    group = rng.integers(0, 2, size=p) if rng.random() < 0.5 else np.zeros(p, dtype=int)
    splits: list[list[int]] = []
    n_target = int(rng.integers(0 if rng.random() < 0.1 else 1, p))
    for _ in range(4 * p):
        if len(splits) == n_target:
            break
        g = int(group[rng.integers(p)])
        roots = sorted({_find(parent, c) for c in range(p) if group[c] == g})
        if len(roots) < 2:
            continue
        d = int(rng.integers(2, min(3, len(roots)) + 1))
        comps = rng.choice(roots, size=d, replace=False)
        centers = [int(rng.choice([c for c in range(p) if _find(parent, c) == r])) for r in comps]
        for c in centers[1:]:
            parent[_find(parent, c)] = _find(parent, centers[0])
        splits.append(centers)
    shares = [rng.uniform(0.05, 1.0, size=len(c)) for c in splits]
    unique_centers = [int(c) for c in rng.integers(0, p, size=int(rng.integers(0, 7)))]
    n = len(splits) + len(unique_centers)
    shape = (n,) if m == 1 else (n, m)
    if rng.random() < 0.3:  # integer weights: many ties
        weights = rng.integers(0, 6, size=shape).astype(float)
    else:
        weights = rng.uniform(0.0, 10.0, size=shape)
    total = weights.sum(axis=0)
    if rng.random() < 0.5:  # the paper's model: mu = w(V) / p for every territory
        targets = np.broadcast_to(total / p, (p,) if m == 1 else (p, m)).copy()
    else:
        targets = rng.uniform(0.0, 2.0, size=(p,) if m == 1 else (p, m)) * total / p
    return build_problem(
        p, splits, shares, unique_centers, weights, targets, order=rng.permutation(n)
    )


def objective_value(
    assignment: np.ndarray,
    weights: np.ndarray,
    targets: np.ndarray,
    objective: SplitObjective,
    scale: np.ndarray | None = None,
) -> float:
    """The objective of an assignment, computed independently of the module."""
    mu = targets.reshape(len(targets), -1)
    W = weights.reshape(len(weights), mu.shape[1])
    sizes = np.zeros(mu.shape)
    np.add.at(sizes, assignment, W)
    dev = (sizes - mu) / (1.0 if scale is None else scale)
    cost = (dev**2).sum(axis=1) if objective == "squares" else np.abs(dev).max(axis=1)
    return float(cost.max() if objective == "max" else cost.sum())


def brute_force(prob: Problem, objective: SplitObjective, scale: np.ndarray | None = None) -> float:
    """Minimum objective over every assignment of each split to one of its centers."""
    mu = prob.targets.reshape(prob.p, -1)
    W = prob.weights.reshape(len(prob.weights), mu.shape[1])
    base = np.zeros(mu.shape)
    for v, c in prob.home.items():
        base[c] += W[v]
    split_list = sorted(prob.split_centers)
    combos = (
        np.array(
            list(itertools.product(*(prob.split_centers[v] for v in split_list))), dtype=int
        ).reshape(-1, len(split_list))
        if split_list
        else np.zeros((1, 0), dtype=int)
    )
    sizes = np.repeat(base[None], len(combos), axis=0)
    rows = np.arange(len(combos))
    for j, v in enumerate(split_list):
        sizes[rows, combos[:, j]] += W[v]
    dev = (sizes - mu) / (1.0 if scale is None else scale)
    cost = (dev**2).sum(axis=2) if objective == "squares" else np.abs(dev).max(axis=2)
    totals = cost.max(axis=1) if objective == "max" else cost.sum(axis=1)
    return float(totals.min())


def check_assignment(res: SplitResolution, prob: Problem) -> None:
    """Every area assigned once; unique areas keep their center; splits go to a neighbour."""
    n = prob.fractions.shape[1]
    assert res.assignment.shape == (n,)
    assert np.issubdtype(res.assignment.dtype, np.integer)
    assert ((res.assignment >= 0) & (res.assignment < prob.p)).all()
    for v, c in prob.home.items():
        assert res.assignment[v] == c
    for v, centers in prob.split_centers.items():
        assert res.assignment[v] in centers
    assert res.n_splits == len(prob.split_centers)
    W = prob.weights.reshape(n, res.sizes.shape[1])
    expected = np.zeros((prob.p, W.shape[1]))
    np.add.at(expected, res.assignment, W)
    np.testing.assert_allclose(res.sizes, expected, atol=1e-12)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


# --------------------------------------------------------------------------------------------
# Optimal DP equals brute force
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_dp_equals_brute_force(objective: SplitObjective) -> None:
    rng = np.random.default_rng(20010501)
    n_forests = n_multi_component = n_isolated_center = n_three_splits = 0
    for trial in range(300):
        prob = random_forest_problem(rng)
        res = resolve_splits(prob.fractions, prob.weights, prob.targets, objective=objective)
        assert res.method == "optimal-dp"
        check_assignment(res, prob)
        recomputed = objective_value(res.assignment, prob.weights, prob.targets, objective)
        assert close(res.objective, recomputed), (trial, res.objective, recomputed)
        best = brute_force(prob, objective)
        assert close(res.objective, best), (trial, res.objective, best)
        centers_with_splits = {c for cs in prob.split_centers.values() for c in cs}
        n_isolated_center += len(centers_with_splits) < prob.p
        graph = nx.Graph((c, ("split", v)) for v, cs in prob.split_centers.items() for c in cs)
        n_multi_component += nx.number_connected_components(graph) >= 2
        n_forests += len(prob.split_centers) >= 1
        n_three_splits += len(prob.split_centers) >= 3
    # The generator really produced >= 200 non-trivial forests, some with several components,
    # some with centers without splits.
    assert n_forests >= 200 and n_three_splits >= 50
    assert n_multi_component >= 30 and n_isolated_center >= 50


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_dp_equals_brute_force_two_measures(objective: SplitObjective) -> None:
    rng = np.random.default_rng(7)
    for trial in range(120):
        prob = random_forest_problem(rng, m=2)
        scale = None if trial % 2 else rng.uniform(0.5, 3.0, size=2)
        res = resolve_splits(
            prob.fractions, prob.weights, prob.targets, objective=objective, scale=scale
        )
        assert res.sizes.shape == (prob.p, 2)
        check_assignment(res, prob)
        recomputed = objective_value(res.assignment, prob.weights, prob.targets, objective, scale)
        assert close(res.objective, recomputed), (trial, res.objective, recomputed)
        best = brute_force(prob, objective, scale)
        assert close(res.objective, best), (trial, res.objective, best)


def test_paper_cost_for_one_measure() -> None:
    # One split of weight 5 between two territories with mu = 7.5: sizes 9 / 6 or 4 / 11.
    x = np.array([[1.0, 0.6, 0.0], [0.0, 0.4, 1.0]])
    w = np.array([4.0, 5.0, 6.0])
    res = resolve_splits(x, w, [7.5, 7.5], objective="max")
    assert res.assignment.tolist() == [0, 0, 1]
    assert res.objective == pytest.approx(1.5)
    assert resolve_splits(x, w, [7.5, 7.5], objective="sum").objective == pytest.approx(3.0)
    assert resolve_splits(x, w, [7.5, 7.5], objective="squares").objective == pytest.approx(4.5)


def test_dp_beats_assign_max_on_schroeder_style_star() -> None:
    # A center shares d splits of weight 1 with d leaf centers, each holding ~0.6 of its split.
    # AssignMAX moves every split to the leaves; the optimum keeps the deviation <= 1.
    d = 6
    p = d + 1
    x = np.zeros((p, d + p))
    for k in range(d):
        x[0, k], x[k + 1, k] = 0.4, 0.6
    x[np.arange(p), d + np.arange(p)] = 1.0
    w = np.r_[np.ones(d), np.zeros(p)]
    mu = np.r_[0.4 * d, np.full(d, 0.6)]
    am = assign_max(x, w, mu)
    dp = resolve_splits(x, w, mu)
    assert am.objective == pytest.approx(0.4 * d)
    assert dp.objective <= 1.0 + 1e-12
    assert dp.objective < am.objective


# --------------------------------------------------------------------------------------------
# Real TRANSP solutions: Theorems 5.1 and 5.5
# --------------------------------------------------------------------------------------------


def solve_transp(
    rng: np.random.Generator, n: int, p: int
) -> tuple[sp.csr_array, np.ndarray, float]:
    """TRANSP (5.4)-(5.6) with tau = 0 on random points, solved by dual simplex."""
    pts = rng.random((n, 2))
    w = rng.uniform(1.0, 10.0, size=n)
    centers = rng.choice(n, size=p, replace=False)
    d = np.linalg.norm(pts[centers][:, None, :] - pts[None, :, :], axis=2)  # (p, n)
    mu = w.sum() / p
    cost = (d * w[None, :]).ravel()  # variable i * n + v
    cols = np.arange(p * n)
    one_each = sp.csr_array((np.ones(p * n), (cols % n, cols)), shape=(n, p * n))  # (5.4)
    balance = sp.csr_array((np.tile(w, p), (cols // n, cols)), shape=(p, p * n))  # (5.5)
    a_eq = sp.vstack([one_each, balance]).tocsr()
    b_eq = np.r_[np.ones(n), np.full(p, mu)]
    lp = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs-ds")
    assert lp.status == 0, lp.message
    x = lp.x.reshape(p, n)
    x[np.abs(x) < 1e-12] = 0.0
    return sp.csr_array(x), w, mu


def split_adjacency(fractions: sp.csr_array, tol: float = 1e-9) -> nx.Graph:
    dense = fractions.toarray()
    graph = nx.Graph()
    graph.add_nodes_from(("center", i) for i in range(dense.shape[0]))
    for v in split_areas(fractions, tol=tol):
        for i in np.flatnonzero(dense[:, v] > tol):
            graph.add_edge(("center", int(i)), ("split", int(v)))
    return graph


@pytest.mark.parametrize("seed", range(16))
def test_theorems_on_transp_solutions(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(30, 201))
    p = int(rng.integers(3, 13))
    x, w, mu = solve_transp(rng, n, p)
    targets = np.full(p, mu)

    splits = split_areas(x)
    assert len(splits) <= p - 1
    graph = split_adjacency(x)
    assert nx.is_forest(graph)

    dp = resolve_splits(x, w, targets, objective="max")
    am = assign_max(x, w, targets)
    assert dp.method == "optimal-dp" and am.method == "assign-max"
    assert dp.n_splits == am.n_splits == len(splits)
    for res in (dp, am):
        dense = x.toarray()
        assert (dense[res.assignment, np.arange(n)] > 1e-9).all()  # a center it was shared with
        unique = np.setdiff1d(np.arange(n), splits)
        assert (res.assignment[unique] == dense[:, unique].argmax(axis=0)).all()
        np.testing.assert_allclose(res.sizes[:, 0], np.bincount(res.assignment, w, minlength=p))

    dev_dp = np.abs(dp.sizes[:, 0] - mu).max()
    dev_am = np.abs(am.sizes[:, 0] - mu).max()
    assert dp.objective == pytest.approx(dev_dp)
    assert am.objective == pytest.approx(dev_am)
    if len(splits) == 0:
        assert dev_dp <= 1e-6 and dev_am <= 1e-6
        return
    w_bar = w[splits].max()
    # Theorem 5.5: the optimal (SPRES∞) resolution deviates by at most the largest split.
    assert dev_dp <= w_bar + 1e-9
    # Theorem 5.1: AssignMAX deviates by at most (1 - 1/deg_V) deg_I w_bar.
    deg_v = max(graph.degree(("split", int(v))) for v in splits)
    deg_i = max(graph.degree(("center", i)) for i in range(p))
    assert dev_am <= (1 - 1 / deg_v) * deg_i * w_bar + 1e-9
    assert dp.objective <= am.objective + 1e-9
    sums: tuple[SplitObjective, ...] = ("sum", "squares")
    for objective in sums:
        assert (
            resolve_splits(x, w, targets, objective=objective).objective
            <= assign_max(x, w, targets, objective=objective).objective + 1e-9
        )


# --------------------------------------------------------------------------------------------
# Input forms, structure, fallback
# --------------------------------------------------------------------------------------------


def test_input_forms_agree() -> None:
    rng = np.random.default_rng(3)
    prob = random_forest_problem(rng)
    while len(prob.split_centers) < 2 or not prob.home:
        prob = random_forest_problem(rng)
    x = prob.fractions
    r, c = np.nonzero(x)
    # Duplicated triplets are summed: split every entry in two halves.
    triplets = (np.r_[r, r], np.r_[c, c], np.r_[x[r, c], x[r, c]] / 2)
    forms = [x, x.tolist(), sp.csr_array(x), sp.coo_matrix(x), sp.csc_matrix(x), triplets]
    results = [resolve_splits(f, prob.weights, prob.targets) for f in forms]
    for res in results[1:]:
        np.testing.assert_array_equal(res.assignment, results[0].assignment)
        assert res.objective == results[0].objective
    assert split_areas(triplets).tolist() == sorted(prob.split_centers)
    assert split_areas(sp.csr_array(x)).tolist() == sorted(prob.split_centers)


def test_no_splits_and_lone_centers_count() -> None:
    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    w = np.array([1.0, 2.0, 6.0])
    cases: tuple[tuple[SplitObjective, float], ...] = (
        ("max", 3.0),
        ("sum", 2 + 1 + 3),
        ("squares", 4 + 1 + 9),
    )
    for objective, expected in cases:
        res = resolve_splits(x, w, [3.0, 3.0, 3.0], objective=objective)
        assert res.assignment.tolist() == [0, 1, 2]
        assert res.n_splits == 0 and res.method == "optimal-dp"
        assert res.objective == pytest.approx(expected)
    assert split_areas(x).size == 0


def test_entries_below_tol_are_zero() -> None:
    x = np.array([[1.0 - 1e-11, 0.5], [1e-11, 0.5]])
    assert split_areas(x).tolist() == [1]
    res = resolve_splits(x, [1.0, 1.0], [1.0, 1.0])
    assert res.assignment[0] == 0 and res.n_splits == 1
    assert split_areas(x, tol=0.0).tolist() == [0, 1]


def test_deep_chain_needs_no_recursion() -> None:
    # centers 0..p-1 and splits between consecutive centers: a path of 2p - 1 nodes.
    p = 6000
    n = p - 1
    rows = np.r_[np.arange(n), np.arange(1, p)]
    cols = np.r_[np.arange(n), np.arange(n)]
    vals = np.r_[np.full(n, 0.5), np.full(n, 0.5)]
    w = np.ones(n)
    mu = np.full(p, n / p)
    res = resolve_splits((rows, cols, vals), w, mu, objective="sum")
    assert res.n_splits == n and res.method == "optimal-dp"
    # Optimal for SPRES1: every center but one gets one split.
    assert res.objective == pytest.approx(objective_value(res.assignment, w, mu, "sum"))
    assert res.objective == pytest.approx(2 * (p - 1) / p)


def test_degree_limit_falls_back_to_assign_max(caplog: pytest.LogCaptureFixture) -> None:
    # Component A: center 0 shares 5 splits with centers 1..5 (a star); component B: centers
    # 6, 7 share one split. With max_subset_degree = 2, A is resolved by AssignMAX, B by DP.
    x = np.zeros((8, 8))
    for k in range(5):
        x[0, k], x[k + 1, k] = 0.3, 0.7
    x[6, 5], x[7, 5] = 0.9, 0.1
    x[6, 6] = x[7, 7] = 1.0
    w = np.r_[np.ones(5), 4.0, 1.0, 3.0]
    mu = np.r_[1.5, np.full(5, 0.7), 1.4, 6.6]
    with caplog.at_level(logging.WARNING, logger="optimizer.split"):
        res = resolve_splits(x, w, mu, max_subset_degree=2)
    assert res.method == "assign-max"
    assert "AssignMAX" in caplog.text
    assert res.assignment[:5].tolist() == [1, 2, 3, 4, 5]  # AssignMAX in component A
    assert res.assignment[5] == 7  # DP in component B (AssignMAX would give 6)
    assert assign_max(x, w, mu).assignment[5] == 6
    exact = resolve_splits(x, w, mu)
    assert exact.method == "optimal-dp" and exact.objective <= res.objective


def test_cycle_is_rejected() -> None:
    # Two areas both split between centers 0 and 1: a 4-cycle, not a basic solution.
    x = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 1.0]])
    with pytest.raises(InputError, match="forest"):
        resolve_splits(x, [1.0, 1.0, 1.0], [1.5, 1.5])
    assign_max(x, [1.0, 1.0, 1.0], [1.5, 1.5])  # AssignMAX needs no forest


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fractions": np.array([[0.5, 1.0], [0.4, 0.0]])}, "sum to 1"),
        ({"fractions": np.array([[1.2, 1.0], [-0.2, 0.0]])}, ">= 0"),
        ({"fractions": np.array([[np.nan, 1.0], [0.0, 0.0]])}, "finite"),
        ({"fractions": np.ones((3, 2)) / 3}, r"shape \(p, n\)"),
        ({"fractions": np.ones(2)}, "2-D"),
        ({"fractions": (np.array([0, 1]), np.array([0, 1]))}, "triplets"),
        ({"fractions": (np.array([0, 5]), np.array([0, 1]), np.ones(2))}, "territory 5"),
        ({"weights": np.array([1.0, 2.0, 3.0])}, r"shape \(p, n\)"),
        ({"weights": np.array([1.0, -2.0])}, ">= 0"),
        ({"weights": np.ones((2, 2))}, "one column per activity measure"),
        ({"targets": np.ones((2, 1, 1))}, "targets must have shape"),
        ({"targets": np.array([1.0, np.inf])}, "finite"),
        ({"objective": "median"}, "objective must be one of"),
        ({"scale": np.array([0.0])}, "scale must be finite and > 0"),
        ({"scale": np.ones(2)}, r"scale must have shape"),
        ({"tol": -1.0}, "tol"),
        ({"tol": 0.7}, "without a positive fraction"),
        ({"max_subset_degree": -1}, "max_subset_degree"),
    ],
)
def test_validation(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {
        "fractions": np.array([[0.5, 1.0], [0.5, 0.0]]),
        "weights": np.array([1.0, 2.0]),
        "targets": np.array([1.5, 1.5]),
    }
    args.update(kwargs)
    with pytest.raises(InputError, match=match) as info:
        resolve_splits(**args)
    assert isinstance(info.value, OptimizerError) and isinstance(info.value, ValueError)


def test_validation_of_split_areas_and_assign_max() -> None:
    with pytest.raises(InputError, match="sum to 1"):
        split_areas(np.array([[0.5], [0.4]]))
    with pytest.raises(InputError, match=">= 0"):
        assign_max(np.array([[1.5], [-0.5]]), [1.0], [0.5, 0.5])
    with pytest.raises(InputError, match="objective"):
        assign_max(np.array([[1.0], [0.0]]), [1.0], [0.5, 0.5], objective="l2")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------------------------


@st.composite
def split_problems(draw: st.DrawFn, m: int = 1) -> Problem:
    """Random split forests drawn structurally (so hypothesis can shrink them)."""
    p = draw(st.integers(2, 6))
    parent = list(range(p))
    splits: list[list[int]] = []
    for _ in range(draw(st.integers(0, p - 1))):
        roots = sorted({_find(parent, c) for c in range(p)})
        if len(roots) < 2:
            break
        d = draw(st.integers(2, min(3, len(roots))))
        comps = draw(st.permutations(roots))[:d]
        centers = [
            draw(st.sampled_from([c for c in range(p) if _find(parent, c) == r])) for r in comps
        ]
        for c in centers[1:]:
            parent[_find(parent, c)] = _find(parent, centers[0])
        splits.append(centers)
    shares = [
        np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=len(c), max_size=len(c))))
        for c in splits
    ]
    unique_centers = draw(st.lists(st.integers(0, p - 1), max_size=5))
    n = len(splits) + len(unique_centers)
    weights = np.array(draw(st.lists(st.floats(0.0, 20.0), min_size=n * m, max_size=n * m)))
    weights = weights.reshape(n, m) if m > 1 else weights
    targets = np.array(draw(st.lists(st.floats(0.0, 30.0), min_size=p * m, max_size=p * m)))
    targets = targets.reshape(p, m) if m > 1 else targets
    return build_problem(p, splits, shares, unique_centers, weights, targets)


@settings(max_examples=150, deadline=None)
@given(prob=split_problems(), objective=st.sampled_from(OBJECTIVES))
def test_property_dp_is_optimal_and_valid(prob: Problem, objective: SplitObjective) -> None:
    res = resolve_splits(prob.fractions, prob.weights, prob.targets, objective=objective)
    check_assignment(res, prob)
    assert close(res.objective, brute_force(prob, objective))
    am = assign_max(prob.fractions, prob.weights, prob.targets, objective=objective)
    check_assignment(am, prob)
    assert res.objective <= am.objective + 1e-9 * max(1.0, am.objective)


@settings(max_examples=60, deadline=None)
@given(
    prob=split_problems(m=2),
    objective=st.sampled_from(OBJECTIVES),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_relabelling_invariance(
    prob: Problem, objective: SplitObjective, seed: int
) -> None:
    """Permuting territories and areas permutes the solution; the optimum is unchanged."""
    rng = np.random.default_rng(seed)
    perm_p = rng.permutation(prob.p)
    perm_n = rng.permutation(prob.fractions.shape[1])
    base = resolve_splits(prob.fractions, prob.weights, prob.targets, objective=objective)
    moved = resolve_splits(
        prob.fractions[perm_p][:, perm_n],
        prob.weights[perm_n],
        prob.targets[perm_p],
        objective=objective,
    )
    assert close(base.objective, moved.objective)
    np.testing.assert_allclose(moved.sizes.sum(axis=0), prob.weights.sum(axis=0), atol=1e-9)
