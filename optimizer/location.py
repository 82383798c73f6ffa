"""Location phase: initial centers and the exact 1-median of each territory.

Initial centers are drawn like weighted k-means++ (Arthur & Vassilvitskii 2007) on the cost
provider: the first center with probability proportional to the areas' weight, each next one
with probability proportional to ``w_v * D(v)^2``, ``D(v)`` the distance to the nearest chosen
center. Seeded; deterministic for a seed.

The location step of Hess et al. (§5, "in each territory ... a 1-median problem is solved")
picks, for every territory ``B``, the candidate ``j`` minimising ``sum_{v in B} c_v d_{jv}``.
When the candidates are the areas themselves, only the territory's own areas are considered
(one ``|B| x |B|`` block per territory); otherwise all permitted candidates are scored against
each territory and conflicts (one candidate best for two territories) are resolved greedily by
the loss of the runner-up.
"""

from __future__ import annotations

import numpy as np

from optimizer.problem import TerritoryProblem

__all__ = ["center_quotas", "cost_components", "initial_centers", "one_medians"]


def _finite(d: np.ndarray) -> np.ndarray:
    """Replace inf by 10x the largest finite value (for sampling only)."""
    fin = np.isfinite(d)
    if fin.all():
        return d
    big = 10.0 * (d[fin].max() if fin.any() else 1.0)
    return np.where(fin, d, big)


def cost_components(problem: TerritoryProblem) -> np.ndarray:
    """Label the areas by the groups that finite costs connect (islands, road components).

    Two areas are in one group when a candidate located at one of them reaches the other at
    finite cost (in either direction). Straight-line costs give one group.
    """
    from optimizer.problem import EuclideanCost, HaversineCost

    n = problem.n
    if isinstance(problem.cost, EuclideanCost | HaversineCost):
        return np.zeros(n, dtype=np.int64)
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    cand = np.flatnonzero(problem.candidates >= 0)
    rows, cols = [], []
    for start in range(0, cand.size, 512):
        blk = cand[start : start + 512]
        fin = np.isfinite(problem.cost.rows(blk))
        r, c = np.nonzero(fin)
        rows.append(problem.candidates[blk][r])
        cols.append(c)
    if not rows:
        return np.zeros(n, dtype=np.int64)
    g = sp.csr_matrix(
        (np.ones(sum(len(r) for r in rows)), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
    )
    _, labels = connected_components(g, directed=True, connection="weak")
    return labels.astype(np.int64)


def center_quotas(weights: np.ndarray, labels: np.ndarray, p: int) -> np.ndarray:
    """Centers per group: proportional to the group's weight, at least one each
    (largest-remainder rounding); raises when ``p`` is smaller than the number of groups."""
    from optimizer.exceptions import InfeasibleError

    groups = int(labels.max()) + 1
    if groups > p:
        sizes = np.bincount(labels, minlength=groups)
        raise InfeasibleError(
            f"the areas fall into {groups} groups that no route connects (e.g. islands; sizes "
            f"{sorted(sizes.tolist(), reverse=True)[:10]}), but only p = {p} territories: "
            "each group needs its own territory",
            {"groups": groups, "group_sizes": sizes.tolist()},
        )
    share = np.bincount(labels, weights=weights, minlength=groups)
    share = share / share.sum() * p if share.sum() > 0 else np.full(groups, p / groups)
    quota = np.maximum(1, np.floor(share)).astype(np.int64)
    while quota.sum() > p:
        j = int(np.argmax(np.where(quota > 1, quota - share, -np.inf)))
        quota[j] -= 1
    while quota.sum() < p:
        quota[int(np.argmax(share - quota))] += 1
    return quota


def initial_centers(
    problem: TerritoryProblem,
    rng: np.random.Generator,
    *,
    fixed: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """``p`` distinct candidate indices by weighted k-means++ sampling.

    Parameters
    ----------
    fixed
        Candidate indices that must be centers (kept first, in order).
    allowed
        ``(n_candidates,)`` mask of candidates that may be chosen.
    """
    nc = problem.cost.shape[0]
    fixed_list = [int(c) for c in (fixed if fixed is not None else [])]
    labels = cost_components(problem)
    if labels.max() > 0:
        # several groups no route joins (islands): each group gets its quota of centers,
        # fixed centers counting for the group they reach
        quota = center_quotas(problem.objective_weights, labels, problem.p)
        have = np.zeros_like(quota)
        for c in fixed_list:
            row = np.isfinite(problem.cost.rows(np.array([c]))[0])
            if row.any():
                have[np.bincount(labels[row], minlength=quota.size).argmax()] += 1
        need = np.maximum(quota - have, 0)
        rest = problem.p - len(fixed_list)
        while need.sum() > rest:
            need[int(np.argmax(need))] -= 1
        while need.sum() < rest:
            need[int(np.argmax(quota - have - need))] += 1
        cand_group = np.where(
            problem.candidates >= 0, labels[np.clip(problem.candidates, 0, None)], -1
        )
        chosen_all: list[int] = list(fixed_list)
        for g, q in enumerate(need):
            if q <= 0:
                continue
            mask = cand_group == g
            if allowed is not None:
                mask &= np.asarray(allowed, bool)
            mask[chosen_all] = False
            chosen_all += _kmeanspp(problem, rng, int(q), mask, [])
        return np.asarray(chosen_all, dtype=np.int64)
    ok = np.ones(nc, bool) if allowed is None else np.asarray(allowed, bool).copy()
    return np.asarray(
        _kmeanspp(problem, rng, problem.p - len(fixed_list), ok, fixed_list), dtype=np.int64
    )


def _kmeanspp(
    problem: TerritoryProblem,
    rng: np.random.Generator,
    count: int,
    ok: np.ndarray,
    chosen: list[int],
) -> list[int]:
    """Weighted k-means++ draws until ``chosen`` has ``count`` more candidates."""
    nc = problem.cost.shape[0]
    ok = ok.copy()
    target = len(chosen) + count
    w = problem.objective_weights
    w = w if w.sum() > 0 else np.ones_like(w)
    ok[chosen] = False
    cand_area = problem.candidates
    # no center yet: the first one is drawn by weight alone
    dmin = _finite(problem.cost.rows(np.asarray(chosen))).min(axis=0) if chosen else None
    while len(chosen) < target:
        if dmin is None:
            probs_area = w / w.sum()
        else:
            score = w * dmin**2
            probs_area = score / score.sum() if score.sum() > 0 else w / w.sum()
        # candidate score: an area-candidate inherits its area's probability; extra points
        # (candidate -1) get the mean, so they can be drawn too
        cp = np.where(cand_area >= 0, probs_area[np.clip(cand_area, 0, None)], probs_area.mean())
        cp = np.where(ok, cp, 0.0)
        if cp.sum() <= 0:
            cp = ok.astype(float)
        j = int(rng.choice(nc, p=cp / cp.sum()))
        chosen.append(j)
        ok[j] = False
        row = _finite(problem.cost.rows(np.array([j]))[0])
        dmin = row if dmin is None else np.minimum(dmin, row)
    return chosen


def _weighted(d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``d @ w`` where an unreachable pair (``inf``) of an area of weight 0 costs nothing."""
    return np.where(w[None, :] > 0, d, 0.0) @ w


def one_medians(
    problem: TerritoryProblem,
    assignment: np.ndarray,
    centers: np.ndarray,
    *,
    fixed: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """The 1-median candidate of every territory (fixed territories keep their center)."""
    p = problem.p
    new = centers.copy()
    is_fixed = np.zeros(p, bool) if fixed is None else np.asarray(fixed, bool)
    if is_fixed.all():
        return new
    w = problem.objective_weights
    nc = problem.cost.shape[0]
    ok = np.ones(nc, bool) if allowed is None else np.asarray(allowed, bool)
    cap = problem.capacity
    areas_are_candidates = nc == problem.n and np.array_equal(
        problem.candidates, np.arange(problem.n)
    )
    if areas_are_candidates:
        for t in range(p):
            if is_fixed[t]:
                continue
            members = np.flatnonzero(assignment == t)
            cands = members[ok[members]]
            if cap is not None:
                load = problem.weights[members, 0].sum()
                cands = cands[cap[cands] >= load - 1e-9]
            if cands.size == 0:
                continue
            score = _weighted(problem.cost.block(cands, members), w[members])
            new[t] = cands[int(np.argmin(score))]
        return _dedupe(new, centers)
    # general candidates: score every permitted candidate against every territory
    cand = np.flatnonzero(ok)
    scores = np.empty((cand.size, p))
    for t in range(p):
        members = np.flatnonzero(assignment == t)
        scores[:, t] = _weighted(problem.cost.block(cand, members), w[members])
        if cap is not None:
            load = problem.weights[members, 0].sum()
            scores[cap[cand] < load - 1e-9, t] = np.inf
    taken: set[int] = {int(c) for c, f in zip(centers, is_fixed, strict=True) if f}
    with np.errstate(invalid="ignore"):  # inf - inf for territories no one reaches
        order = np.argsort(
            -(np.partition(scores, 1, axis=0)[1] - scores.min(axis=0))
            if cand.size > 1
            else np.zeros(p)
        )
    for t in order:
        if is_fixed[t]:
            continue
        for idx in np.argsort(scores[:, t]):
            j = int(cand[idx])
            if j not in taken and np.isfinite(scores[idx, t]):
                new[t] = j
                taken.add(j)
                break
        else:
            taken.add(int(centers[t]))
    return new


def _dedupe(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Keep the old center where two territories picked the same one."""
    _, first = np.unique(new, return_index=True)
    dup = np.ones(new.shape[0], bool)
    dup[first] = False
    out = new.copy()
    out[dup] = old[dup]
    return out
