"""The MIP neighbourhood search (optimizer.lns) and the polish that runs it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import optimizer.polish as polish_mod
from optimizer import TerritoryProblem, evaluate, solve, solve_exact
from optimizer.exceptions import InputError
from optimizer.lns import neighbourhood_search, repair_balance
from optimizer.polish import polish


def _points(n: int, p: int, seed: int, tol: float = 0.05) -> TerritoryProblem:
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 1000
    w = rng.integers(1, 30, n).astype(float)
    return TerritoryProblem.from_points(xy, w, p, tolerance=tol)


def _brute_force(prob: TerritoryProblem, fixed: tuple[int, ...] = ()) -> float:
    """Optimum by enumeration of every center set and every assignment (balance bounds as
    evaluate() checks them)."""
    n, p = prob.n, prob.p
    d = prob.cost.rows(np.arange(n))
    assigns = np.array(list(itertools.product(range(p), repeat=n)), dtype=np.int64)
    lo, hi = prob.bounds()
    sizes = np.zeros((assigns.shape[0], p))
    for t in range(p):
        sizes[:, t] = ((assigns == t) * prob.weights[None, :, 0]).sum(axis=1)
    ok = (sizes >= lo[0] * (1 - 1e-9) - 1e-9).all(axis=1)
    ok &= (sizes <= hi[0] * (1 + 1e-9) + 1e-9).all(axis=1)
    best = np.inf
    for centers in itertools.combinations(range(n), p):
        if not set(fixed) <= set(centers):
            continue
        c = np.array(centers)
        total = d[c[assigns], np.arange(n)[None, :]] @ prob.objective_weights
        if ok.any():
            best = min(best, float(total[ok].min()))
    return best


@pytest.mark.parametrize("seed", range(3))
def test_neighbourhood_search_never_worsens_and_keeps_side_constraints(seed: int) -> None:
    prob = _points(40, 8, seed, tol=0.1)
    la = solve(prob, "la", bound="none")
    start = la if la.within_bounds else solve_exact(prob, time_limit=60, soft_time_limit=0.0)
    assert start.within_bounds
    fixed = np.array([int(start.centers[0])])
    lk = np.full(prob.n, -1)
    member = int(np.flatnonzero(start.assignment == 0)[0])
    lk[member] = fixed[0]
    allowed = np.ones(prob.n, bool)
    forbidden = int(np.setdiff1d(np.arange(prob.n), start.centers)[0])
    allowed[forbidden] = False
    res = neighbourhood_search(
        prob,
        start,
        time_limit=60,
        target_areas=12,
        fixed_centers=fixed,
        allowed_centers=allowed,
        locked=lk,
        seed=seed,
    )
    sol = res.solution
    assert res.converged and res.sub_mips >= prob.p
    assert sol.within_bounds
    assert sol.cost <= start.cost + 1e-9 * start.cost
    assert (sol.cost < start.cost) == (res.improvements > 0)
    # the reported cost is the plan's cost
    again = evaluate(prob, sol.assignment, sol.centers)
    assert again.cost == pytest.approx(sol.cost, rel=1e-12)
    assert np.bincount(sol.assignment, minlength=prob.p).min() >= 1
    assert fixed[0] in sol.centers and forbidden not in sol.centers
    assert sol.centers[sol.assignment[member]] == fixed[0]
    # a sub-MIP proves nothing about the whole problem: no certificate from here
    assert sol.lower_bound is None and sol.optimality_gap is None


def test_neighbourhood_search_reaches_a_cheaper_plan_than_the_first_mip_plan() -> None:
    prob = _points(45, 9, 5, tol=0.05)
    first = solve_exact(prob, time_limit=60, soft_time_limit=0.0)
    res = neighbourhood_search(prob, first, time_limit=60, target_areas=12, seed=0)
    assert res.converged
    assert res.improvements >= 1 and res.solution.cost < first.cost
    assert res.solution.within_bounds


def test_neighbourhood_search_leaves_an_unbalanced_plan_alone() -> None:
    prob = _points(30, 5, 2, tol=0.0)
    la = solve(prob, "la-mindist", bound="none")
    assert not la.within_bounds
    res = neighbourhood_search(prob, la, time_limit=10)
    assert res.solution is la and res.sub_mips == 0


def test_repair_balance_brings_a_plan_within_the_bounds() -> None:
    prob = _points(36, 6, 3, tol=0.1)
    near = solve(prob, "la-mindist", bound="none")  # nearest center: unbalanced
    assert not near.within_bounds
    res = repair_balance(prob, near, time_limit=60, target_areas=10)
    assert res.improvements == 1
    assert res.solution.within_bounds
    assert set(np.unique(res.solution.assignment)) == set(range(prob.p))


def test_neighbourhood_search_rejects_a_bad_target() -> None:
    prob = _points(20, 4, 0)
    la = solve(prob, "la", bound="none")
    with pytest.raises(InputError, match="target_areas"):
        neighbourhood_search(prob, la, target_areas=0)


def test_soft_time_limit_stops_the_mip_at_a_plan() -> None:
    prob = _points(30, 6, 5, tol=0.05)
    first = solve_exact(prob, time_limit=60, soft_time_limit=0.0)
    assert first.within_bounds
    assert first.details["status"] in ("soft-limit", "optimal")
    # the dual bound of the stopped MIP still bounds the whole problem
    full = solve_exact(prob, time_limit=120)
    if full.details["status"] == "optimal":
        assert first.lower_bound is not None and first.lower_bound <= full.cost + 1e-6
        assert first.cost >= full.cost - 1e-6
    with pytest.raises(InputError, match="soft_time_limit"):
        solve_exact(prob, soft_time_limit=-1.0)
    with pytest.raises(InputError, match="soft_min_gap"):
        solve_exact(prob, soft_time_limit=1.0, soft_min_gap=1.5)


@pytest.mark.parametrize("seed", range(8))
def test_polish_with_the_neighbourhood_phase_is_feasible_and_bounded(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # force the path: the full MIP stops at its first plan, the neighbourhood search runs
    # on every size, then the full MIP again; the certificate must still bound the optimum
    monkeypatch.setattr(polish_mod, "_FIRST_SHARE", 0.0)
    monkeypatch.setattr(polish_mod, "_STALL_SHARE", 0.0)
    monkeypatch.setattr(polish_mod, "_SOFT_MIN_GAP", 0.0)
    monkeypatch.setattr(polish_mod, "LNS_MIN_P", 2)
    monkeypatch.setattr(polish_mod, "LNS_MAX_AREAS_PER_TERRITORY", 100)
    monkeypatch.setattr(polish_mod, "_FINAL_MIP_SECONDS", 0.0)
    rng = np.random.default_rng(seed)
    n, p = 8, int(rng.integers(2, 4))
    xy = rng.integers(0, 5, (n, 2)).astype(float)  # a grid: many ties
    w = rng.integers(1, 5, n).astype(float)
    prob = TerritoryProblem.from_points(xy, w, p, tolerance=float(rng.choice([0.2, 0.5])))
    fixed = (int(rng.integers(0, n)),) if seed % 2 else ()
    opt = _brute_force(prob, fixed)
    side = {"fixed_centers": np.array(fixed, dtype=np.int64)} if fixed else {}
    start = solve(prob, "la", bound="none", **side)
    pol = polish(prob, start, time_limit=10, **side)
    if not np.isfinite(opt):
        assert not pol.within_bounds
        return
    assert pol.within_bounds
    if start.within_bounds:
        assert pol.cost <= start.cost + 1e-9 * max(1.0, start.cost)
    assert pol.cost >= opt - 1e-6
    assert pol.lower_bound is not None and pol.lower_bound <= opt + 1e-6 * max(1.0, opt)
    assert set(fixed) <= set(pol.centers.tolist())
    assert pol.optimality_gap is not None
    assert pol.optimality_gap >= (pol.cost - opt) / pol.cost - 1e-9


def test_polish_keeps_the_first_mip_plan_when_a_later_step_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the full MIP stops at its first plan; the neighbourhood search then fails: the polish
    # still returns a plan at least as good as the MIP's, with a valid bound
    from optimizer.exceptions import SolverError

    monkeypatch.setattr(polish_mod, "_FIRST_SHARE", 0.0)
    monkeypatch.setattr(polish_mod, "_STALL_SHARE", 0.0)
    monkeypatch.setattr(polish_mod, "_SOFT_MIN_GAP", 0.0)
    monkeypatch.setattr(polish_mod, "LNS_MIN_P", 2)
    monkeypatch.setattr(polish_mod, "LNS_MAX_AREAS_PER_TERRITORY", 100)

    def failing(*args: object, **kwargs: object) -> None:
        raise SolverError("sub-MIP failed (test)")

    monkeypatch.setattr(polish_mod, "_neighbourhood_phase", failing)
    prob = _points(8, 3, 1, tol=0.3)
    opt = _brute_force(prob)
    start = solve(prob, "la", bound="none")
    pol = polish(prob, start, time_limit=10)
    facts = pol.details["polish"]
    assert facts["later_steps_failed"] == ["sub-MIP failed (test)"]
    assert facts["mip"] == "full"  # the step's failure did not discard the MIP's plan
    assert pol.within_bounds
    assert pol.cost <= facts["first_mip"]["cost"] + 1e-9 * max(1.0, pol.cost)
    if start.within_bounds:
        assert pol.cost <= start.cost + 1e-9 * max(1.0, start.cost)
    assert pol.cost >= opt - 1e-6
    assert pol.lower_bound is not None and pol.lower_bound <= opt + 1e-6 * max(1.0, opt)


def test_neighbourhood_group_starts_with_its_seed() -> None:
    """A territory as near as the seed (distance 0) does not crowd the seed out."""
    from optimizer.lns import _Context

    prob = _points(12, 3, 0, tol=0.5)
    sol = solve(prob, "la", bound="none")
    ctx = _Context(prob, None, None, None)
    dist = np.zeros((3, 3))  # every territory at distance 0 from every other
    sizes = np.bincount(sol.assignment, minlength=3)
    target = int(sizes[0])  # territory 0 alone fills the target
    for seed in (1, 2):
        group = ctx.group(sol, np.array([seed]), dist, target)
        assert seed in group.tolist()
        if sizes[seed] >= target:
            assert group.tolist() == [seed]
