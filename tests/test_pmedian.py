"""p-median solvers and the OR-Library / Lorena–Senne readers (issue 4).

Invariants on synthetic instances (fast interchange = brute-force objective change, heuristic
= brute force on tiny instances, MIP = brute force, capacities hold, reported cost = recomputed
cost) plus one real OR-Library instance of each kind from ../shared (skipped when absent).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import optimizer.pmedian as pmedian_module
from optimizer.exceptions import InfeasibleError, InputError
from optimizer.orlib import (
    cpmp_format,
    euclidean_distances,
    read_lorena_senne,
    read_pmed,
    read_pmedcap,
    read_pmedopt,
)
from optimizer.pmedian import (
    _lagrangian,
    _lagrangian_bound,
    _prepare_cap,
    _reduced_mip,
    _trivial_bound,
    capacitated_pmedian_mip,
    interchange_deltas,
    solve_capacitated_pmedian,
    solve_pmedian,
)

BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"


def _bench(*parts: str) -> Path:
    path = BENCH.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"shared benchmark data not available: {path}")
    return path


def _objective(dist: np.ndarray, w: np.ndarray, centers) -> float:
    return float(dist[list(centers)].min(axis=0) @ w)


def _random_instance(seed: int, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.random((m, 2)) * 100
    b = rng.random((n, 2)) * 100
    dist = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    return dist, rng.integers(0, 5, n).astype(float)


# ----------------------------------------------------------------------------- readers


def test_read_pmed_last_duplicate_edge_wins(tmp_path: Path) -> None:
    f = tmp_path / "pmedX.txt"
    # edge 1-2 listed twice: 10, then 3 (the last wins); 2-3 listed as 3-2 later with 7
    f.write_text(" 4 5 2 \n 1 2 10 \n 2 3 4 \n 3 4 1 \n 2 1 3 \n 3 2 7 \n")
    dist, p, n = read_pmed(f)
    assert (n, p) == (4, 2)
    expected = np.array([[0, 3, 10, 11], [3, 0, 7, 8], [10, 7, 0, 1], [11, 8, 1, 0]], dtype=float)
    np.testing.assert_array_equal(dist, expected)
    assert dist.dtype == np.float64


def test_read_pmed_disconnected_gives_inf(tmp_path: Path) -> None:
    f = tmp_path / "pmedY.txt"
    f.write_text("4 2 1\n1 2 5\n3 4 0\n")
    dist, _, _ = read_pmed(f)
    assert dist[0, 1] == 5 and dist[2, 3] == 0  # a zero-cost edge is still an edge
    assert np.isinf(dist[0, 2])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("3 2 1\n1 2 5\n2 x 4\n", "line 3"),
        ("3 2 1\n1 2 5\n2 3\n", "line 3"),
        ("3 2 1\n1 2 5\n2 4 1\n", "line 3"),
        ("3 3 1\n1 2 5\n2 3 1\n", "announces 3 edges"),
        ("3 2 4\n1 2 5\n2 3 1\n", "line 1"),
        ("", "empty"),
    ],
)
def test_read_pmed_malformed(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(InputError, match=needle):
        read_pmed(f)


def test_read_pmedopt(tmp_path: Path) -> None:
    f = tmp_path / "pmedopt.txt"
    f.write_text("Data file   Optimal solution value\r\npmed1 5819\r\npmed2 4093\r\n")
    assert read_pmedopt(f) == {"pmed1": 5819.0, "pmed2": 4093.0}
    f.write_text("Data file   Optimal solution value\npmed1 5819\npmed2 oops\n")
    with pytest.raises(InputError, match="line 3"):
        read_pmedopt(f)


def test_read_pmedcap_and_floor_distances(tmp_path: Path) -> None:
    f = tmp_path / "pmedcap99.txt"
    f.write_text(" 1 7\r\n 3 1 10\r\n 1 0 0 2\r\n 2 1 1 3\r\n 3 3 4 5\r\n")
    xy, demand, p, capacity, optimum = read_pmedcap(f)
    np.testing.assert_array_equal(xy, [[0, 0], [1, 1], [3, 4]])
    np.testing.assert_array_equal(demand, [2, 3, 5])
    assert (p, capacity, optimum) == (1, 10.0, 7.0)
    d = euclidean_distances(xy, floor=True)
    # sqrt(2) -> 1, exactly 5 stays 5, sqrt(13) -> 3
    np.testing.assert_array_equal(d, [[0, 1, 5], [1, 0, 3], [5, 3, 0]])
    assert euclidean_distances(xy)[0, 1] == pytest.approx(np.sqrt(2))
    assert cpmp_format(f) == "pmedcap"
    f.write_text(" 1\n 3 1 10\n 1 0 0 2\n 2 1 1 3\n 3 3 4 5\n")
    assert read_pmedcap(f)[4] is None
    f.write_text(" 1 7\n 3 1 10\n 1 0 0 2\n 3 1 1 3\n 3 3 4 5\n")
    with pytest.raises(InputError, match="line 4"):
        read_pmedcap(f)


def _write_lorena_senne(path: Path, xy, capacity, demand, p: int) -> None:
    lines = [f"{len(xy)} {p}"]
    lines += [f"{x} {y} {c} {d}" for (x, y), c, d in zip(xy, capacity, demand, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def test_read_lorena_senne(tmp_path: Path) -> None:
    f = tmp_path / "SJCx.txt"
    _write_lorena_senne(f, [(0.5, 1.0), (2.0, 3.0)], [10, 12], [4, 5], 1)
    xy, capacity, demand, p = read_lorena_senne(f)
    np.testing.assert_array_equal(xy, [[0.5, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(capacity, [10, 12])
    np.testing.assert_array_equal(demand, [4, 5])
    assert p == 1
    assert cpmp_format(f) == "lorena_senne"
    f.write_text("2 1\n0 0 10 4\n")
    with pytest.raises(InputError, match="announces 2 points"):
        read_lorena_senne(f)
    f.write_text("2 1\n0 0 10 4\n1 1 -3 4\n")
    with pytest.raises(InputError, match="line 3"):
        read_lorena_senne(f)


def test_real_files_parse() -> None:
    dist, p, n = read_pmed(_bench("pmed", "pmed1.txt"))
    assert (n, p) == (100, 5) and np.isfinite(dist).all()
    np.testing.assert_array_equal(dist, dist.T)
    assert read_pmedopt(_bench("pmed", "pmedopt.txt"))["pmed1"] == 5819
    xy, demand, p, capacity, optimum = read_pmedcap(_bench("pmedcap", "pmedcap01.txt"))
    assert xy.shape == (50, 2) and (p, capacity, optimum) == (5, 120.0, 713.0)
    assert demand.sum() <= p * capacity


# ----------------------------------------------------------------------------- uncapacitated


@pytest.mark.parametrize("seed", range(6))
def test_interchange_deltas_equal_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, n, p = 9, 11, int(rng.integers(1, 5))
    dist, w = _random_instance(seed, m, n)
    if seed % 2:  # ties and zero distances
        dist = np.round(dist / 20)
    centers = rng.choice(m, size=p, replace=False)
    deltas = interchange_deltas(dist, w, centers)
    base = _objective(dist, w, centers)
    for c in range(m):
        for r in range(p):
            if c in centers:
                assert np.isinf(deltas[c, r])
                continue
            swapped = centers.copy()
            swapped[r] = c
            assert deltas[c, r] == pytest.approx(_objective(dist, w, swapped) - base, abs=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_pmedian_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(6, 13))
    m = n if seed % 2 == 0 else n - 2
    p = int(rng.integers(1, 4))
    dist, w = _random_instance(seed, m, n)
    best = min(_objective(dist, w, c) for c in itertools.combinations(range(m), p))
    res = solve_pmedian(dist, w, p, n_starts=3, n_perturbations=5, seed=seed)
    assert res.objective == pytest.approx(best, rel=1e-12)
    # reported objective = recomputed objective; assignment = nearest center
    cost = dist[res.centers[res.assignment], np.arange(n)]
    assert float(cost @ w) == pytest.approx(res.objective, rel=1e-12)
    np.testing.assert_allclose(cost, dist[res.centers].min(axis=0))
    assert np.all(np.diff(res.centers) > 0) and res.centers.size == p


def test_pmedian_deterministic_and_validates() -> None:
    dist, w = _random_instance(7, 40, 40)
    a = solve_pmedian(dist, w, 5, seed=3)
    b = solve_pmedian(dist, w, 5, seed=3)
    np.testing.assert_array_equal(a.centers, b.centers)
    np.testing.assert_array_equal(a.assignment, b.assignment)
    with pytest.raises(InputError, match="p must be"):
        solve_pmedian(dist, w, 41)
    with pytest.raises(InputError, match="NaN"):
        solve_pmedian(np.full((3, 3), np.nan), None, 1)
    with pytest.raises(InputError, match="weights"):
        solve_pmedian(dist, -w - 1, 2)


def test_pmedian_unreachable_pairs() -> None:
    # two "islands" {0, 1, 2} and {3, 4}: with p = 2 each gets a center, objective finite
    x = np.array([0.0, 1, 2, 10, 11])
    dist = np.abs(x[:, None] - x[None, :])
    island = np.array([0, 0, 0, 1, 1])
    dist[island[:, None] != island[None, :]] = np.inf
    res = solve_pmedian(dist, None, 2, seed=0)
    assert res.objective == 3.0 and res.centers.tolist() in ([1, 3], [1, 4])
    res1 = solve_pmedian(dist, None, 1, seed=0)
    assert np.isinf(res1.objective)


def test_pmed1_reaches_optimum() -> None:
    dist, p, _ = read_pmed(_bench("pmed", "pmed1.txt"))
    optimum = read_pmedopt(_bench("pmed", "pmedopt.txt"))["pmed1"]
    res = solve_pmedian(dist, None, p, seed=0)
    assert (res.objective - optimum) / optimum <= 0.005


def _tricky_instance(seed: int) -> tuple[np.ndarray, np.ndarray, int, float]:
    """A small instance with ties (rounded distances), zero weights and, for some seeds,
    unreachable pairs; returns (dist, weights, p, brute-force optimum)."""
    rng = np.random.default_rng(500 + seed)
    n = int(rng.integers(5, 12))
    m = n if seed % 3 else n - 1
    p = int(rng.integers(1, min(m, 5) + 1))
    dist, w = _random_instance(seed, m, n)
    if seed % 2:
        dist = np.round(dist / 15)  # ties and zero distances
    if seed % 5 == 4:  # a few unreachable pairs, every area keeps a finite candidate
        w = w + 1.0  # (an unreachable area of weight 0 would make the objective inf x 0)
        far = rng.random(dist.shape) < 0.15
        far[np.argmin(dist, axis=0), np.arange(n)] = False
        dist = np.where(far, np.inf, dist)
    best = min(_objective(dist, w, c) for c in itertools.combinations(range(m), p))
    return dist, w, p, best


@pytest.mark.parametrize("seed", range(40))
def test_pmedian_bound_never_above_optimum_and_optimal_flag_is_proved(seed: int) -> None:
    dist, w, p, best = _tricky_instance(seed)
    res = solve_pmedian(dist, w, p, n_starts=2, n_perturbations=3, seed=seed)
    assert res.objective == pytest.approx(best, rel=1e-12)
    assert res.lower_bound <= best + 1e-9 * max(1.0, abs(best))
    assert res.gap >= (res.objective - best) / max(res.objective, 1e-300) - 1e-12
    if res.optimal:
        assert res.bound in ("lagrangian", "mip", "complete")
        assert res.objective <= best + 1e-9 * max(1.0, abs(best))


@pytest.mark.parametrize("seed", range(12))
def test_lagrangian_bound_and_reduced_mip_against_brute_force(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the size gate (variables per area) is a speed rule; here every reduced MIP runs
    monkeypatch.setattr(pmedian_module, "_MIP_VARIABLES_PER_AREA", 10**6)
    rng = np.random.default_rng(900 + seed)
    n = int(rng.integers(7, 12))
    p = int(rng.integers(2, 5))
    dist, w = _random_instance(seed, n, n)
    w = w + 1.0
    C = np.round(dist) * w[None, :] if seed % 2 else dist * w[None, :]
    integral = seed % 2 == 1
    values = sorted(
        float(C[list(c)].min(axis=0).sum()) for c in itertools.combinations(range(n), p)
    )
    best = values[0]
    worse = next((v for v in values if v > best + 1.5), None)
    for upper in (best, 2.0 * best + 10.0):  # a tight and a loose target
        value, lam, steps = _lagrangian(C, p, upper, deadline=np.inf)
        assert value <= best + 1e-9 * best and steps >= 1
    if worse is None:
        return
    # from a worse incumbent: the reduced MIP finds an optimal solution or a bound below it
    value, lam, _ = _lagrangian(C, p, worse, deadline=np.inf)
    red = _reduced_mip(C, p, worse, value, lam, integral, time_limit=30.0)
    assert red is not None and red.optimal
    assert red.centers is not None
    assert float(C[red.centers].min(axis=0).sum()) == pytest.approx(best, rel=1e-9)
    assert red.bound <= best + 1e-9 * best
    # at the optimum: nothing is better, the bound proves it
    value, lam, _ = _lagrangian(C, p, best, deadline=np.inf)
    red = _reduced_mip(C, p, best, value, lam, integral, time_limit=30.0)
    assert red is not None and red.bound <= best + 1e-9 * best
    assert red.bound >= best - 1e-6 * best
    if red.centers is not None:
        assert float(C[red.centers].min(axis=0).sum()) >= best - 1e-9 * best


def test_pmedian_exact_switch_and_complete_case() -> None:
    dist, w = _random_instance(3, 30, 30)
    off = solve_pmedian(dist, w, 4, seed=1, exact=False)
    assert off.bound == "none" and off.lower_bound == -np.inf and not off.optimal
    assert off.gap == np.inf and off.starts == 60  # every start and perturbation ran
    on = solve_pmedian(dist, w, 4, seed=1, exact=True)
    assert on.objective <= off.objective + 1e-9 and on.lower_bound <= on.objective
    every = solve_pmedian(dist, w, 30, seed=0)
    assert every.optimal and every.bound == "complete" and every.gap == 0.0
    with pytest.raises(InputError, match="exact must be"):
        solve_pmedian(dist, w, 4, exact="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "seeds"), [("pmed10", [3]), ("pmed15", range(5)), ("pmed20", [0])]
)
def test_pmed_many_medians_proved_optimal(name: str, seeds) -> None:
    """pmed10 (seed 3 ended 0.56 % above with the interchange alone), pmed15 (n = 300,
    p = 100) and pmed20 (n = 400, p = 133; the interchange alone never reached their optimum;
    pmed20 seed 0 needs the reduced MIP): the Lagrangian bound, its start and the reduced MIP
    reach the optimum and prove it."""
    dist, p, _ = read_pmed(_bench("pmed", f"{name}.txt"))
    optimum = read_pmedopt(_bench("pmed", "pmedopt.txt"))[name]
    for seed in seeds:
        res = solve_pmedian(dist, None, p, seed=seed)
        assert res.objective == optimum and res.optimal and res.lower_bound == optimum


def test_pmed_small_p_bound_is_honest() -> None:
    """pmed6 (p = 5): the LP bound is 0.5 % below the optimum, so the reduced MIP would be
    large; the interchange still finds the optimum and the reported gap is the true one's
    upper bound, not a claim of optimality."""
    dist, p, _ = read_pmed(_bench("pmed", "pmed6.txt"))
    optimum = read_pmedopt(_bench("pmed", "pmedopt.txt"))["pmed6"]
    res = solve_pmedian(dist, None, p, seed=0)
    assert res.objective == optimum
    assert res.bound == "lagrangian" and res.lower_bound < optimum and not res.optimal
    assert 0.0 < res.gap < 0.01


# ----------------------------------------------------------------------------- capacitated


def _cap_brute_force(dist, demand, p, capacity) -> float:
    """Enumerate center sets and every assignment of the areas to them (the MIP's model:
    any area may use any open center)."""
    n = dist.shape[0]
    cap = np.broadcast_to(np.asarray(capacity, dtype=float), (n,))
    choice = np.array(list(itertools.product(range(p), repeat=n)))  # (p^n, n)
    best = np.inf
    for centers in itertools.combinations(range(n), p):
        c = np.array(centers)
        loads = np.stack([(choice == t) @ demand for t in range(p)], axis=1)
        ok = (loads <= cap[c][None, :] + 1e-9).all(axis=1)
        if ok.any():
            cost = dist[c[choice[ok]], np.arange(n)].sum(axis=1)
            best = min(best, float(cost.min()))
    return best


def _tiny_cap(seed: int) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 9))
    p = int(rng.integers(2, 4))
    xy = rng.integers(0, 30, (n, 2)).astype(float)
    demand = rng.integers(1, 10, n).astype(float)
    capacity = np.full(n, np.ceil(demand.sum() / p * rng.uniform(1.05, 1.4)))
    if seed % 2:
        capacity = capacity * rng.uniform(0.9, 1.3, n)
    return euclidean_distances(xy, floor=True), demand, p, capacity


def _check_capacitated(res, dist, demand, p, capacity) -> None:
    n = dist.shape[0]
    cap = np.broadcast_to(np.asarray(capacity, dtype=float), (n,))
    assert res.centers.shape == (p,) and np.unique(res.centers).size == p
    assert res.assignment.shape == (n,)
    assert res.assignment.min() >= 0 and res.assignment.max() < p  # each area exactly once
    loads = np.bincount(res.assignment, weights=demand, minlength=p)
    np.testing.assert_allclose(res.loads, loads)
    assert np.all(loads <= cap[res.centers] + 1e-9)
    recomputed = dist[res.centers[res.assignment], np.arange(n)].sum()
    assert res.objective == pytest.approx(recomputed, rel=1e-12)
    assert res.lower_bound <= res.objective + 1e-9
    assert res.gap == pytest.approx((res.objective - res.lower_bound) / res.objective, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_capacitated_mip_and_heuristic_equal_brute_force(seed: int) -> None:
    dist, demand, p, capacity = _tiny_cap(seed)
    best = _cap_brute_force(dist, demand, p, capacity)
    mip = capacitated_pmedian_mip(dist, demand, p, capacity)
    assert mip.objective == pytest.approx(best, abs=1e-6)
    assert mip.gap <= 1e-4
    _check_capacitated(mip, dist, demand, p, capacity)
    heur = solve_capacitated_pmedian(
        dist, demand, p, capacity, exact_below=None, time_limit=1.0, seed=seed
    )
    _check_capacitated(heur, dist, demand, p, capacity)
    assert heur.objective == pytest.approx(best, abs=1e-6)
    both = solve_capacitated_pmedian(dist, demand, p, capacity, time_limit=2.0, seed=seed)
    assert both.objective == pytest.approx(best, abs=1e-6)
    # the Lagrangian bound is valid (<= optimum) and no weaker than the trivial one
    inst = _prepare_cap(dist, demand, p, capacity, None)
    lag = _lagrangian_bound(inst, best, deadline=np.inf, max_iter=200)
    assert _trivial_bound(inst) - 1e-9 <= lag <= best + 1e-6


def test_capacitated_invariants_medium() -> None:
    rng = np.random.default_rng(5)
    n, p = 120, 8
    xy = rng.random((n, 2)) * 1000
    demand = rng.integers(1, 20, n).astype(float)
    capacity = rng.uniform(0.95, 1.3, n) * demand.sum() / p
    dist = euclidean_distances(xy)
    res = solve_capacitated_pmedian(dist, demand, p, capacity, time_limit=2.0, seed=1)
    _check_capacitated(res, dist, demand, p, capacity)
    assert res.bound in ("lp", "lagrangian") and res.gap < 0.05


def test_capacitated_infeasible_and_invalid() -> None:
    dist, demand, _, _ = _tiny_cap(0)
    with pytest.raises(InfeasibleError, match="total demand") as info:
        solve_capacitated_pmedian(dist, demand, 2, demand.sum() / 3)
    assert info.value.diagnostics["p"] == 2
    with pytest.raises(InfeasibleError, match="above every capacity"):
        solve_capacitated_pmedian(dist, demand, dist.shape[0], demand.max() - 0.5)
    with pytest.raises(InputError, match="square"):
        solve_capacitated_pmedian(dist[:-1], demand, 2, 100.0)
    with pytest.raises(InputError, match="capacity"):
        solve_capacitated_pmedian(dist, demand, 2, np.ones(3))


def test_lorena_senne_file_end_to_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    n, p = 30, 3
    xy = rng.integers(0, 100, (n, 2))
    demand = rng.integers(1, 15, n)
    capacity = (demand.sum() / p * rng.uniform(1.05, 1.5, n)).astype(int)
    f = tmp_path / "ls30.txt"
    _write_lorena_senne(f, xy, capacity, demand, p)
    assert cpmp_format(f) == "lorena_senne"
    xy_r, cap_r, dem_r, p_r = read_lorena_senne(f)
    dist = euclidean_distances(xy_r)  # exact Euclidean for Lorena-Senne
    res = solve_capacitated_pmedian(dist, dem_r, p_r, cap_r, time_limit=3.0, seed=0)
    _check_capacitated(res, dist, dem_r, p_r, cap_r)
    exact = capacitated_pmedian_mip(dist, dem_r, p_r, cap_r)
    assert res.objective == pytest.approx(exact.objective, rel=1e-6)


def test_pmedcap01_small_gap() -> None:
    xy, demand, p, capacity, optimum = read_pmedcap(_bench("pmedcap", "pmedcap01.txt"))
    assert optimum is not None
    dist = euclidean_distances(xy, floor=True)
    res = solve_capacitated_pmedian(dist, demand, p, capacity, time_limit=3.0, seed=0)
    _check_capacitated(res, dist, demand, p, capacity)
    assert (res.objective - optimum) / optimum <= 0.005
    assert res.lower_bound <= optimum + 1e-6
