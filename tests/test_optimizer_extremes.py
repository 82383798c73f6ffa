"""Property: the optimizer's entry points, fed extreme finite values, inf/NaN patterns and ties,
return a valid solution or raise the optimizer's own error — nothing else.

Nothing else includes numpy warnings (pytest turns them into errors), NaN probabilities,
assertion errors and scipy's own exceptions. A valid solution assigns every area to one of
``p`` territories whose centers are distinct candidates allowed to host one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optimizer
from optimizer.exceptions import OptimizerError
from optimizer.pmedian import solve_capacitated_pmedian, solve_pmedian

# ordinary values with ties, and the values that break naive code: subnormal, huge finite,
# inf (unreachable) and NaN; a case mixes a few extreme cells into ordinary ones so that most
# cases reach the solvers
_COSTS = [0.0, 1.0, 1.0, 2.0, 3.5, 7.0, 1e6]
_EXTREME_COSTS = [1e-300, 5e-324, 1e12, 1e15, 1e16, 1e200, 1.7e308, np.inf, np.inf, np.nan]
_WEIGHTS = [0.0, 1.0, 1.0, 2.0, 5.0, 1e3]
_EXTREME_WEIGHTS = [1e-300, 5e-324, 1e9, 1e15, 1e16, 1e300, 1.7e308]

_METHODS = ["la", "la-mindist", "la-assignmax", "interchange", "exact", "dichotomies"]


def _sprinkle(draw: st.DrawFn, values: np.ndarray, extremes: list[float]) -> None:
    """Overwrite up to three random cells of ``values`` with extreme values (often none)."""
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))):
        values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(extremes))


@st.composite
def _problems(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 7))
    p = draw(st.integers(1, n))
    cost = np.array(draw(st.lists(st.sampled_from(_COSTS), min_size=n * n, max_size=n * n)))
    cost = cost.reshape(n, n)
    if draw(st.booleans()):
        np.fill_diagonal(cost, 0.0)  # an area is at distance 0 from itself
    _sprinkle(draw, cost, _EXTREME_COSTS)
    weights = np.array(draw(st.lists(st.sampled_from(_WEIGHTS), min_size=n, max_size=n)))
    _sprinkle(draw, weights, _EXTREME_WEIGHTS)
    coords = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.0, 1.0, 2.0, 1e3]), min_size=2 * n, max_size=2 * n))
    ).reshape(n, 2)
    if draw(st.integers(0, 4)) == 0:
        _sprinkle(draw, coords, [1e-300, 1e12, 1e200])
    allowed = None
    if draw(st.booleans()):
        allowed = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return {
        "cost": cost,
        "weights": weights,
        "p": p,
        "coords": coords,
        "allowed": allowed,
        "tolerance": draw(st.sampled_from([0.0, 0.05, 0.5, 1.0])),
        "method": draw(st.sampled_from(_METHODS)),
    }


def _assert_valid(sol: optimizer.Solution, n: int, p: int, allowed: np.ndarray | None) -> None:
    assert sol.assignment.shape == (n,)
    assert sol.centers.shape == (p,)
    assert np.unique(sol.centers).shape == (p,)
    assert ((sol.assignment >= 0) & (sol.assignment < p)).all()
    if allowed is not None:
        assert allowed[sol.centers].all()
    assert not np.isnan(sol.cost)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(case=_problems())
def test_solve_gives_a_solution_or_its_own_error(case: dict[str, Any]) -> None:
    n, p = case["cost"].shape[0], case["p"]
    options: dict[str, Any] = {}
    if case["allowed"] is not None and case["method"] != "dichotomies":
        options["allowed_centers"] = case["allowed"]
    if case["method"] == "exact":
        options["time_limit"] = 10.0
    try:
        prob = optimizer.TerritoryProblem.from_cost_matrix(
            case["cost"], case["weights"], p, tolerance=case["tolerance"], coords=case["coords"]
        )
        sol = optimizer.solve(prob, case["method"], seed=0, **options)
    except OptimizerError:
        return
    _assert_valid(sol, n, p, options.get("allowed_centers"))


@settings(max_examples=80, deadline=None, derandomize=True)
@given(case=_problems())
def test_from_points_gives_a_solution_or_its_own_error(case: dict[str, Any]) -> None:
    n, p = case["coords"].shape[0], case["p"]
    try:
        prob = optimizer.TerritoryProblem.from_points(
            case["coords"], case["weights"], p, tolerance=case["tolerance"]
        )
        sol = optimizer.solve(prob, "la", seed=0)
    except OptimizerError:
        return
    _assert_valid(sol, n, p, None)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(case=_problems())
def test_pmedian_gives_a_solution_or_its_own_error(case: dict[str, Any]) -> None:
    p = case["p"]
    try:
        res = solve_pmedian(case["cost"], case["weights"], p, n_starts=2, n_perturbations=3)
    except OptimizerError:
        return
    centers = np.asarray(res.centers)
    assert centers.shape == (p,) and np.unique(centers).shape == (p,)
    assert not np.isnan(res.objective)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(case=_problems(), capacity=st.sampled_from([1.0, 3.0, 1e9, 1e300]))
def test_capacitated_pmedian_gives_a_solution_or_its_own_error(
    case: dict[str, Any], capacity: float
) -> None:
    p = case["p"]
    try:
        res = solve_capacitated_pmedian(
            case["cost"], case["weights"], p, capacity, time_limit=5.0, exact_below=None
        )
    except OptimizerError:
        return
    assert np.asarray(res.centers).shape == (p,)
    assert (np.asarray(res.loads) <= capacity * (1 + 1e-9)).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_non_finite_weights_are_input_errors(bad: float) -> None:
    w = np.ones(4)
    w[2] = bad
    with pytest.raises(optimizer.InputError, match="weights"):
        optimizer.TerritoryProblem.from_cost_matrix(np.ones((4, 4)), w, 2)
