"""Local search after any constructive solver: tabu search over boundary moves and swaps.

Starting from an assignment and centers (from location–allocation, dichotomies, an existing
alignment, ...), :func:`local_search` moves single boundary areas to a neighbouring territory
and swaps pairs of adjacent areas between two territories, under a tabu list, to lower the
weighted objective below. Locked areas and center areas never move, no territory is emptied,
and with ``require_contiguity`` no move splits a territory. Between rounds, ejection chains
carry surpluses across several territories and the centers are relocated to the 1-median of
their territory.

Objective
---------
For an assignment :math:`a` with territory sizes :math:`W_{tm}` (``p`` territories, ``m``
measures), mean size :math:`\\mu_m`, bounds :math:`[L_{tm}, U_{tm}]` (the balance tolerance,
or the center's capacity in capacity mode), distances :math:`d_{tv}` from center ``t`` to area
``v`` and distance weights :math:`c_v` (``problem.objective_weights``):

.. math::

    F(a) = \\omega_B\\, B(a) + \\omega_C\\, K(a) + \\omega_D\\, D(a)

    B(a) = \\frac1p \\sum_t \\sum_m \\Big[\\kappa\\, e_{tm} + r_{tm}^2\\Big], \\quad
    e_{tm} = \\frac{\\max(0,\\ W_{tm} - U_{tm},\\ L_{tm} - W_{tm})}{\\mu_m}, \\quad
    r_{tm} = \\frac{W_{tm} - \\mu_m}{\\mu_m}

    K(a) = \\frac{\\sum_v c_v\\, d_{a_v v}}{C_0}, \\qquad
    D(a) = \\frac{\\sum_{v:\\ e_v \\ge 0} \\delta_v\\, [a_v \\ne e_v]}{\\sum_v \\delta_v}

* :math:`B` (balance): the excess beyond the tolerance band, in mean territories, weighted by
  :math:`\\kappa` = ``band_penalty`` (default 100), plus a small quadratic pull towards the
  mean (:math:`r^2`; a territory 5 % off the mean adds 0.0025). In capacity mode there is no
  lower bound and no pull (only the overflow above the center's capacity counts). Measures
  with :math:`\\mu_m = 0` are ignored.
* :math:`K` (compactness): total weighted drive time relative to :math:`C_0`, the cost of
  the solution the search was given (so :math:`K = 1` at the start). An area its center cannot
  reach counts ten times the largest finite distance.
* :math:`D` (disruption): the share of weight :math:`\\delta_v` (the distance weights
  :math:`c_v`; the area count when they are all 0) of the areas whose territory differs from
  ``existing`` (:math:`e_v = -1` = a new area, never counted). 0 without ``existing``.

Why the defaults (:class:`LocalSearchWeights`: :math:`\\omega = (1, 1, 0)`,
:math:`\\kappa = 100`) are sane across instances: :math:`B` and :math:`K` are both averages
over territories, so a move between two territories trades
:math:`\\Delta K = \\Delta c / (p \\bar c)` (:math:`\\bar c` the mean territory cost)
against :math:`\\Delta B = \\Delta(\\kappa e + r^2) / p`, and ``p`` cancels:

* 1 % of a mean territory's size beyond the band costs as much as a whole mean territory's
  drive time: the tolerance acts as a constraint that the search may cross, not as a wish;
* inside the band drive time dominates: bringing two territories from +5 % and -5 % to the
  mean lowers the pull by 0.005/p, worth only 0.5 % of a mean territory's drive time;
* with ``disruption = 1``, reassigning 1 % of the total weight costs as much as 1 % of the
  total drive time; raise it (e.g. 10) to keep an existing alignment nearly as it is.

Search
------
Tabu search (Glover 1986) in the spirit of the local improvement of Ríos-Mercado & Fernández
(2009): each iteration evaluates every admissible neighbour and applies the best one, even when
it worsens :math:`F` (escaping local optima):

* **moves**: area ``v`` of territory ``s`` to a territory ``t`` holding a neighbour of ``v``
  in ``adjacency``; without adjacency, to one of its ``k_nearest`` centers by cost. Under
  ``require_contiguity``, when ``v`` is a cut area of ``s`` (its removal would disconnect
  ``s``) it moves together with the **branch** it would cut off from the center of ``s`` (the
  same rule as the contiguity repair);
* **swaps**: two adjacent areas ``u`` in ``s`` and ``v`` in ``t`` exchange territories
  (adjacent in ``adjacency``; without it in a k-nearest-neighbour graph of ``problem.coords``
  or of the cost matrix when the candidates are the areas; no swaps otherwise).

Moving ``v`` out of ``s`` makes "``v`` back into ``s``" tabu for ``tabu_tenure`` (+ a seeded
random 0..tenure/2) iterations; a tabu neighbour is allowed when it gives a new best objective
(aspiration). Moves never touch locked areas or center areas, never empty a territory, and
never enter a territory whose center cannot reach the area (infinite cost). With
``require_contiguity`` a move of ``v`` out of ``s`` keeps ``s`` connected when ``v``'s
neighbours in ``s`` stay connected within ``s`` without ``v``: first a test among the
neighbours themselves, then a breadth-first search restricted to ``s`` that stops as soon as
all of them are reached (the answer is cached per area until its territory changes); a swap
checks both sides the same way. So the number of pieces of a territory never grows (a
contiguous start stays contiguous; a non-contiguous start is first repaired by
:func:`optimizer.contiguity.repair_contiguity`).

All deltas are incremental (:math:`O(m)` per neighbour) in a compiled (numba) kernel. A round
ends after ``patience`` iterations without a new best and keeps the best solution. Then:

* **ejection chains** (``chains=True``), for territories still outside their bounds: a
  territory over its upper bound passes one move (single area or branch) to a neighbouring
  territory, which passes one on while it is now over its own bound, and so on (at most 6
  territories, none twice; a territory that overshot below its lower bound turns round and
  pulls); a territory under its lower bound pulls the same way. A depth-first search tries,
  at every step, the 3 moves that lower :math:`F` most given the moves before them, and the
  chain with the lowest total change is applied when it lowers :math:`F`. Tabu search cannot
  find these: every intermediate state is worse, and moving a region's surplus across several
  territories in lumps of whole areas is what a poor start needs;
* the centers are relocated (``relocate_centers``): each territory's candidate (among its own
  areas' candidates and unused extra points) with the least weighted cost, never worse,
  ``fixed_centers`` excepted;

and a new round starts, until neither changes anything (a **descent**). When a descent ends
with a territory still outside its bounds (lumpy areas and contiguity can leave a surplus no
chain of the above shape moves), the search **kicks** (iterated local search, Lourenço, Martin
& Stützle 2003): from the best solution so far, 4, 8, 16 or 32 (in turn) random admissible
moves among the areas of the territory farthest outside its bounds and of the territories
within two steps of it, then a new descent; at most ``kicks`` times, stopping at the first
descent whose best solution is within all bounds. The search also stops at ``max_iter`` tabu
iterations in total or at ``time_limit`` seconds. The result is the best solution over all
descents, a solution within all bounds ranking before any outside them, then by :math:`F`.
So :math:`F` never increases, unless the given solution was outside its bounds and the result
is within them (kicks may buy that with some drive time): every round starts from the best
solution of its descent, and chains and relocations are only applied when they lower
:math:`F`.

Determinism: the scan order, the swap order, the tenure jitter and the kicks come from
``seed`` only, and compilation happens before the clock starts, so the result is a function of
the inputs and the seed when the search ends by convergence or ``max_iter``. The time limit is
checked between batches of iterations and between chains; it only cuts the same trajectory
short, so a run stopped by ``time_limit`` depends on the machine's speed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from optimizer.contiguity import _as_adjacency, _repair, is_contiguous
from optimizer.exceptions import InputError
from optimizer.problem import TerritoryProblem
from optimizer.validation import check_time_limit

__all__ = ["LocalSearchResult", "LocalSearchWeights", "local_search", "objective_terms"]

log = logging.getLogger(__name__)

_BATCH = 256  # iterations per compiled call between time-limit checks
_MAX_ROUNDS = 50
_CHAIN_HOPS = 6  # territories an ejection chain may pass through
_CHAIN_WIDTH = 3  # moves tried at every step of a chain
_KICK_MOVES = (4, 8, 16, 32)  # random moves of the kicks, in turn


@dataclasses.dataclass(frozen=True)
class LocalSearchWeights:
    """Weights of the local search objective (see the module docstring for the formula).

    Attributes
    ----------
    balance
        :math:`\\omega_B`, weight of the balance term :math:`B`.
    compactness
        :math:`\\omega_C`, weight of the drive-time term :math:`K = C / C_0`.
    disruption
        :math:`\\omega_D`, weight of the disruption term :math:`D` (share of weight that
        changes territory relative to ``existing``).
    band_penalty
        :math:`\\kappa`, weight of the excess beyond the tolerance band relative to the
        quadratic pull towards the mean inside :math:`B`.
    """

    balance: float = 1.0
    compactness: float = 1.0
    disruption: float = 0.0
    band_penalty: float = 100.0

    def __post_init__(self) -> None:
        for name in ("balance", "compactness", "disruption", "band_penalty"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"weights.{name} must be finite and >= 0, got {value!r}")


@dataclasses.dataclass
class LocalSearchResult:
    """Outcome of :func:`local_search`.

    Attributes
    ----------
    assignment
        ``(n,)`` territory of every area.
    centers
        ``(p,)`` candidate index of each territory's center.
    objective_before, objective_after
        :math:`F` of the given solution and of the result (same weights, same :math:`C_0`).
    iterations
        Tabu iterations made (over all rounds).
    moves, swaps
        Moves (branch moves included) and swaps applied along the search trajectory,
        non-improving ones included.
    seconds
        Wall time (compilation excluded).
    contiguous
        Whether every territory of the result is connected (``None`` without adjacency).
    terms_before, terms_after
        The unweighted terms ``{"balance": B, "compactness": K, "disruption": D}``.
    repaired
        Areas moved by the contiguity repair before the search (``require_contiguity``).
    changed
        Areas whose territory differs from the given assignment.
    rounds
        Tabu rounds (a new one after chains or center relocations that changed something).
    chains
        Ejection chains applied between rounds.
    branch_moves
        Moves that carried a branch along (``require_contiguity``).
    kicks
        Perturbations applied because a territory stayed outside its bounds.
    stopped
        ``"converged"``, ``"max_iter"``, ``"time_limit"``, ``"max_rounds"`` (50 rounds), or
        ``"no_move"`` (the last round found no admissible neighbour at all).
    """

    assignment: np.ndarray
    centers: np.ndarray
    objective_before: float
    objective_after: float
    iterations: int
    moves: int
    swaps: int
    seconds: float
    contiguous: bool | None
    terms_before: dict[str, float] = dataclasses.field(default_factory=dict)
    terms_after: dict[str, float] = dataclasses.field(default_factory=dict)
    repaired: int = 0
    changed: int = 0
    rounds: int = 0
    chains: int = 0
    branch_moves: int = 0
    kicks: int = 0
    stopped: str = ""


# --------------------------------------------------------------------------- compiled kernel
#
# The kernels share four tuples (numba types them once):
#   gr = (indptr, indices, near, anchor, movable, flags)  graph, targets, who may move;
#        flags = [use_near, require_contiguity]
#   md = (w, D, cw, ex, dw, L, U, mu, scale, coef)         the model;
#        coef = [balance / p, compactness / C0, disruption, band_penalty, pull, big]
#   st = (a, W, counts, fcur)                              the current solution
#   sc = (inset, seen, queue, nbuf, tok)                   scratch for the searches


@numba.njit(cache=True)
def _bal(W: Any, t: int, dx: Any, sign: float, md: Any) -> float:  # pragma: no cover
    """The bracket of B for territory ``t`` with sizes ``W[t] + sign * dx``."""
    L, U, mu, scale, coef = md[5], md[6], md[7], md[8], md[9]
    val = 0.0
    for k in range(W.shape[1]):
        x = W[t, k] + sign * dx[k]
        e = 0.0
        if x > U[t, k]:
            e = x - U[t, k]
        elif x < L[t, k]:
            e = L[t, k] - x
        e = e / scale[k]
        val += coef[3] * e
        if coef[4] > 0 and mu[k] > 0:
            r = (x - mu[k]) / scale[k]
            val += coef[4] * r * r
    return val


@numba.njit(cache=True)
def _reaches_all(
    gr: Any, a: Any, s: int, out: int, inn: int, start: int, nt: int, sc: Any
) -> bool:  # pragma: no cover - compiled
    """Whether a BFS from ``start`` over territory ``s`` without ``out`` (plus ``inn``, -1 =
    none) reaches all ``nbuf[:nt]``: first among those areas alone (cheap and sufficient),
    then over the whole territory (stopping as soon as all are found)."""
    indptr, indices = gr[0], gr[1]
    inset, seen, queue, targets, tok = sc
    tok[0] += 1
    mark = tok[0]
    for i in range(nt):
        inset[targets[i]] = mark
    for phase in range(2):
        tok[0] += 1
        vis = tok[0]
        head = 0
        tail = 1
        queue[0] = start
        seen[start] = vis
        found = 1 if inset[start] == mark else 0
        if found >= nt:
            return True
        while head < tail:
            x = queue[head]
            head += 1
            for e in range(indptr[x], indptr[x + 1]):
                y = indices[e]
                if seen[y] == vis or y == out:
                    continue
                if phase == 0:
                    if inset[y] != mark:
                        continue
                elif a[y] != s and y != inn:
                    continue
                seen[y] = vis
                if inset[y] == mark:
                    found += 1
                    if found == nt:
                        return True
                queue[tail] = y
                tail += 1
    return False


@numba.njit(cache=True)
def _side_ok(gr: Any, a: Any, s: int, out: int, inn: int, sc: Any) -> bool:  # pragma: no cover
    """Territory ``s`` loses ``out`` (and gains ``inn``, -1 = none): do ``out``'s neighbours in
    ``s`` stay connected (to each other and to ``inn``)? Then no new piece appears."""
    indptr, indices = gr[0], gr[1]
    nbuf = sc[3]
    nt = 0
    for e in range(indptr[out], indptr[out + 1]):
        y = indices[e]
        if a[y] == s and y != out:
            nbuf[nt] = y
            nt += 1
    if nt == 0:
        return True
    if inn < 0:
        if nt == 1:
            return True
        return _reaches_all(gr, a, s, out, inn, nbuf[0], nt, sc)
    return _reaches_all(gr, a, s, out, inn, inn, nt, sc)


@numba.njit(cache=True)
def _branch(gr: Any, a: Any, s: int, v: int, sc: Any, out: Any) -> int:  # pragma: no cover
    """``v`` and the areas of ``s`` that removing ``v`` cuts off from the center area of
    ``s``, written to ``out``; returns their number."""
    indptr, indices, anchor = gr[0], gr[1], gr[3]
    seen, queue, tok = sc[1], sc[2], sc[4]
    tok[0] += 1
    vis = tok[0]
    seen[anchor[s]] = vis
    seen[v] = vis
    queue[0] = anchor[s]
    head = 0
    tail = 1
    while head < tail:
        x = queue[head]
        head += 1
        for e in range(indptr[x], indptr[x + 1]):
            y = indices[e]
            if seen[y] != vis and a[y] == s:
                seen[y] = vis
                queue[tail] = y
                tail += 1
    out[0] = v
    cnt = 1
    i = 0
    while i < cnt:
        x = out[i]
        i += 1
        for e in range(indptr[x], indptr[x + 1]):
            y = indices[e]
            if seen[y] != vis and a[y] == s:
                seen[y] = vis
                out[cnt] = y
                cnt += 1
    return cnt


@numba.njit(cache=True)
def _moving_set(
    gr: Any, md: Any, st: Any, v: int, sc: Any, bset: Any, dx: Any
) -> int:  # pragma: no cover - compiled
    """The areas that leave ``a[v]`` with ``v`` (``v`` alone, or ``v`` and the branch it
    would cut off when contiguity is required); 0 when ``v`` cannot leave. Fills ``dx`` with
    their total weight."""
    movable, flags = gr[4], gr[5]
    a, counts = st[0], st[2]
    w = md[0]
    s = a[v]
    nb = 1
    bset[0] = v
    if flags[1] and not _side_ok(gr, a, s, v, -1, sc):
        nb = 0
        if gr[3][s] >= 0:
            nb = _branch(gr, a, s, v, sc, bset)
            for i in range(nb):
                if not movable[bset[i]]:
                    nb = 0
                    break
            if nb >= counts[s]:
                nb = 0
    for k in range(dx.shape[0]):
        dx[k] = 0.0
    for i in range(nb):
        for k in range(dx.shape[0]):
            dx[k] += w[bset[i], k]
    return nb


@numba.njit(cache=True)
def _set_delta(
    md: Any, st: Any, s: int, t: int, bset: Any, nb: int, dx: Any
) -> float:  # pragma: no cover - compiled
    """Change of F when ``bset[:nb]`` (total weight ``dx``) moves from ``s`` to ``t``;
    ``inf`` when ``t``'s center cannot reach one of them."""
    D, cw, ex, dw, coef = md[1], md[2], md[3], md[4], md[9]
    W, fcur = st[1], st[3]
    dcost = 0.0
    ddis = 0.0
    for i in range(nb):
        x = bset[i]
        dtx = D[t, x]
        if not np.isfinite(dtx):
            return np.inf
        dsx = D[s, x]
        if not np.isfinite(dsx):
            dsx = coef[5]
        dcost += cw[x] * (dtx - dsx)
        if ex[x] >= 0:
            ddis += dw[x] * ((1.0 if t != ex[x] else 0.0) - (1.0 if s != ex[x] else 0.0))
    dbal = _bal(W, s, dx, -1.0, md) - fcur[s] + _bal(W, t, dx, 1.0, md) - fcur[t]
    return coef[0] * dbal + coef[1] * dcost + coef[2] * ddis


@numba.njit(cache=True)
def _apply_set(md: Any, st: Any, t: int, bset: Any, nb: int, dx: Any) -> int:  # pragma: no cover
    """Move ``bset[:nb]`` (all in one territory) to ``t``; returns the territory they left."""
    w = md[0]
    a, W, counts, fcur = st
    s = a[bset[0]]
    for i in range(nb):
        x = bset[i]
        a[x] = t
        for k in range(W.shape[1]):
            W[s, k] -= w[x, k]
            W[t, k] += w[x, k]
    counts[s] -= nb
    counts[t] += nb
    for k in range(dx.shape[0]):
        dx[k] = 0.0
    fcur[s] = _bal(W, s, dx, 0.0, md)
    fcur[t] = _bal(W, t, dx, 0.0, md)
    return s


@numba.njit(cache=True)
def _is_target(gr: Any, a: Any, v: int, t: int) -> bool:  # pragma: no cover - compiled
    indptr, indices, near, flags = gr[0], gr[1], gr[2], gr[5]
    # explicit loops: numba compiles no generator expressions inside any()
    if flags[0]:
        for j in range(near.shape[1]):  # noqa: SIM110
            if near[v, j] == t:
                return True
        return False
    for e in range(indptr[v], indptr[v + 1]):  # noqa: SIM110
        if a[indices[e]] == t:
            return True
    return False


@numba.njit(cache=True)
def _keep_top(d: float, v: int, t: int, cnt: int, out_v: Any, out_t: Any, out_d: Any) -> int:
    """Insert ``(d, v, t)`` into the sorted top list (length ``out_v.shape[0]``)."""
    width = out_v.shape[0]
    if cnt == width and not d < out_d[cnt - 1]:
        return cnt
    i = cnt if cnt < width else width - 1
    while i > 0 and d < out_d[i - 1]:
        out_v[i] = out_v[i - 1]
        out_t[i] = out_t[i - 1]
        out_d[i] = out_d[i - 1]
        i -= 1
    out_v[i] = v
    out_t[i] = t
    out_d[i] = d
    return cnt + 1 if cnt < width else cnt


@numba.njit(cache=True)
def _top_moves(
    gr: Any,
    md: Any,
    st: Any,
    x: int,
    pull: bool,
    blocked: Any,
    tstamp: Any,
    sc: Any,
    bset: Any,
    dx: Any,
    out_v: Any,
    out_t: Any,
    out_d: Any,
) -> int:  # pragma: no cover - compiled
    """The ``out_v.shape[0]`` admissible moves that lower F most (sorted, with their F
    changes in ``out_d``): out of territory ``x`` into a territory not ``blocked``
    (``pull=False``), or into ``x`` out of a territory not ``blocked`` (``pull=True``).
    ``out_v`` holds the area (its moving set is implied), ``out_t`` the other territory
    (destination of a push, source of a pull). Returns how many were found."""
    indptr, indices, near, movable, flags = gr[0], gr[1], gr[2], gr[4], gr[5]
    D = md[1]
    a, counts = st[0], st[2]
    n = a.shape[0]
    use_near = flags[0] != 0
    cnt = 0
    for v in range(n):
        if not movable[v]:
            continue
        s = a[v]
        if counts[s] <= 1:
            continue
        if pull:
            if s == x or blocked[s] or not np.isfinite(D[x, v]) or not _is_target(gr, a, v, x):
                continue
            nb = _moving_set(gr, md, st, v, sc, bset, dx)
            if nb == 0:
                continue
            d = _set_delta(md, st, s, x, bset, nb, dx)
            if np.isfinite(d):
                cnt = _keep_top(d, v, s, cnt, out_v, out_t, out_d)
            continue
        if s != x:
            continue
        tstamp[0] += 1
        stamp = tstamp[0]
        nb = -1
        lo = 0
        hi = near.shape[1]
        if not use_near:
            lo = indptr[v]
            hi = indptr[v + 1]
        for jj in range(lo, hi):
            t = near[v, jj] if use_near else a[indices[jj]]
            if t == s or blocked[t] or tstamp[1 + t] == stamp or not np.isfinite(D[t, v]):
                continue
            tstamp[1 + t] = stamp
            if nb < 0:
                nb = _moving_set(gr, md, st, v, sc, bset, dx)
            if nb == 0:
                break
            d = _set_delta(md, st, s, t, bset, nb, dx)
            if np.isfinite(d):
                cnt = _keep_top(d, v, t, cnt, out_v, out_t, out_d)
    return cnt


@numba.njit(cache=True)
def _tabu(
    gr: Any,
    md: Any,
    st: Any,
    sw_u: Any,
    sw_v: Any,
    tabu_until: Any,
    order: Any,
    jitter: Any,
    tenure: int,
    n_iter: int,
    patience: int,
    istate: Any,
    fstate: Any,
    best_a: Any,
) -> int:  # pragma: no cover - compiled
    """Run up to ``n_iter`` tabu iterations; returns 0 (budget used), 1 (patience reached) or
    2 (no admissible neighbour).

    ``istate = [iteration, since_best, moves, swaps, token, branch moves]``;
    ``fstate = [current objective, best objective]``.
    """
    indptr, indices, near, movable, flags = gr[0], gr[1], gr[2], gr[4], gr[5]
    w, D, cw, ex, dw, coef = md[0], md[1], md[2], md[3], md[4], md[9]
    a, W, counts, fcur = st
    n = a.shape[0]
    p = W.shape[0]
    m = W.shape[1]
    use_near = flags[0] != 0
    require = flags[1] != 0
    big = coef[5]
    sc = (
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.int64),
        np.full(1, istate[4], dtype=np.int64),
    )
    tstamp = np.zeros(p, dtype=np.int64)
    bset = np.empty(n, dtype=np.int64)  # the set that moves with the area under evaluation
    best_set = np.empty(n, dtype=np.int64)  # the areas of the best move so far
    dx = np.empty(m, dtype=np.float64)
    stamp = 0
    nj = jitter.shape[0]
    kn = near.shape[1]
    # who may leave its territory (0 no, 1 alone, 2 with its branch) only changes when the
    # territory does: cached per area, valid while c_ver[v] equals its territory's version
    tver = np.zeros(p, dtype=np.int64)
    c_ver = np.full(n, -1, dtype=np.int64)
    c_kind = np.zeros(n, dtype=np.int64)
    for _ in range(n_iter):
        it = istate[0]
        cur = fstate[0]
        best = fstate[1]
        best_delta = np.inf
        kind = -1
        n_best = 0
        bu = -1
        bv = -1
        bt = -1
        # ---- moves: v (with the branch it cuts off, under contiguity) to a neighbouring t
        for ii in range(n):
            v = order[ii]
            if not movable[v]:
                continue
            s = a[v]
            if counts[s] <= 1:
                continue
            stamp += 1
            tstamp[s] = stamp
            nb = -1  # size of the set that moves with v: not computed yet
            lo = 0
            hi = kn
            if not use_near:
                lo = indptr[v]
                hi = indptr[v + 1]
            for jj in range(lo, hi):
                t = near[v, jj] if use_near else a[indices[jj]]
                if tstamp[t] == stamp:
                    continue
                tstamp[t] = stamp
                if not np.isfinite(D[t, v]):
                    continue
                if nb < 0:
                    if not require:
                        nb = 1
                        bset[0] = v
                        for k in range(m):
                            dx[k] = w[v, k]
                    elif c_ver[v] == tver[s] and c_kind[v] == 0:
                        nb = 0
                    elif c_ver[v] == tver[s] and c_kind[v] == 1:
                        nb = 1
                        bset[0] = v
                        for k in range(m):
                            dx[k] = w[v, k]
                    else:
                        nb = _moving_set(gr, md, st, v, sc, bset, dx)
                        c_ver[v] = tver[s]
                        c_kind[v] = min(nb, 2)
                if nb == 0:
                    break  # v cannot leave s
                delta = _set_delta(md, st, s, t, bset, nb, dx)
                if not delta < best_delta:
                    continue
                if tabu_until[v, t] > it and not cur + delta < best - 1e-12:
                    continue
                best_delta = delta
                kind = 0
                bt = t
                n_best = nb
                best_set[:nb] = bset[:nb]
        # ---- swaps of two adjacent areas
        for e in range(sw_u.shape[0]):
            u = sw_u[e]
            v = sw_v[e]
            s = a[u]
            t = a[v]
            if s == t or not movable[u] or not movable[v]:
                continue
            dtu = D[t, u]
            dsv = D[s, v]
            if not (np.isfinite(dtu) and np.isfinite(dsv)):
                continue
            dsu = D[s, u]
            if not np.isfinite(dsu):
                dsu = big
            dtv = D[t, v]
            if not np.isfinite(dtv):
                dtv = big
            for k in range(m):
                dx[k] = w[v, k] - w[u, k]
            delta = coef[0] * (
                _bal(W, s, dx, 1.0, md) - fcur[s] + _bal(W, t, dx, -1.0, md) - fcur[t]
            ) + coef[1] * (cw[u] * (dtu - dsu) + cw[v] * (dsv - dtv))
            if ex[u] >= 0:
                delta += (
                    coef[2] * dw[u] * ((1.0 if t != ex[u] else 0.0) - (1.0 if s != ex[u] else 0.0))
                )
            if ex[v] >= 0:
                delta += (
                    coef[2] * dw[v] * ((1.0 if s != ex[v] else 0.0) - (1.0 if t != ex[v] else 0.0))
                )
            if not delta < best_delta:
                continue
            if (tabu_until[u, t] > it or tabu_until[v, s] > it) and not cur + delta < best - 1e-12:
                continue
            if require:
                if not _side_ok(gr, a, s, u, v, sc):
                    continue
                if not _side_ok(gr, a, t, v, u, sc):
                    continue
            best_delta = delta
            kind = 1
            bu = u
            bv = v
        if kind < 0:
            istate[4] = sc[4][0]
            return 2
        # ---- apply
        ten = tenure + jitter[it % nj]
        if kind == 0:
            s = _apply_set(md, st, bt, best_set, n_best, dx)
            tver[s] += 1
            tver[bt] += 1
            for i in range(n_best):
                tabu_until[best_set[i], s] = it + ten
            istate[2] += 1
            if n_best > 1:
                istate[5] += 1
        else:
            s = a[bu]
            t = a[bv]
            best_set[0] = bu
            _apply_set(md, st, t, best_set, 1, dx)
            best_set[0] = bv
            _apply_set(md, st, s, best_set, 1, dx)
            tver[s] += 1
            tver[t] += 1
            tabu_until[bu, s] = it + ten
            tabu_until[bv, t] = it + ten
            istate[3] += 1
        cur += best_delta
        fstate[0] = cur
        istate[0] = it + 1
        if cur < best - 1e-12 * max(1.0, abs(best)):
            fstate[1] = cur
            best_a[:] = a
            istate[1] = 0
        else:
            istate[1] += 1
            if istate[1] >= patience:
                istate[4] = sc[4][0]
                return 1
    istate[4] = sc[4][0]
    return 0


# --------------------------------------------------------------------------- Python side


@dataclasses.dataclass
class _Ctx:
    """Everything the objective needs that does not change during the search."""

    w: np.ndarray
    cw: np.ndarray
    L: np.ndarray
    U: np.ndarray
    mu: np.ndarray
    scale: np.ndarray
    pull: bool
    big: float
    c0: float
    ex: np.ndarray
    dw: np.ndarray
    weights: LocalSearchWeights


def _bounds(problem: TerritoryProblem, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = problem.center_bounds(centers)
    L = np.zeros((problem.p, problem.m)) if lo is None else np.asarray(lo, dtype=np.float64)
    return np.ascontiguousarray(L), np.ascontiguousarray(np.asarray(hi, dtype=np.float64))


def _balance_rows(W: np.ndarray, ctx: _Ctx) -> np.ndarray:
    """``f_t`` of every territory (the bracket of :math:`B` summed over measures)."""
    e = (np.maximum(0.0, W - ctx.U) + np.maximum(0.0, ctx.L - W)) / ctx.scale
    val = ctx.weights.band_penalty * e.sum(axis=1)
    if ctx.pull:
        r = np.where(ctx.mu > 0, (W - ctx.mu) / ctx.scale, 0.0)
        val = val + (r * r).sum(axis=1)
    return val


def _raw_cost(a: np.ndarray, D: np.ndarray, cw: np.ndarray, big: float) -> float:
    d = D[a, np.arange(a.shape[0])]
    return float(np.dot(cw, np.where(np.isfinite(d), d, big)))


def _terms(a: np.ndarray, D: np.ndarray, ctx: _Ctx, p: int) -> dict[str, float]:
    W = np.zeros((p, ctx.w.shape[1]))
    np.add.at(W, a, ctx.w)
    bal = float(_balance_rows(W, ctx).sum() / p)
    comp = _raw_cost(a, D, ctx.cw, ctx.big) / ctx.c0
    has = ctx.ex >= 0
    dis = float(np.dot(ctx.dw[has], a[has] != ctx.ex[has]))
    return {"balance": bal, "compactness": comp, "disruption": dis}


def _total(terms: dict[str, float], wts: LocalSearchWeights) -> float:
    return (
        wts.balance * terms["balance"]
        + wts.compactness * terms["compactness"]
        + wts.disruption * terms["disruption"]
    )


def _context(
    problem: TerritoryProblem,
    a: np.ndarray,
    centers: np.ndarray,
    D: np.ndarray,
    existing: np.ndarray | None,
    wts: LocalSearchWeights,
) -> _Ctx:
    n = problem.n
    cw = np.array(problem.objective_weights, dtype=np.float64, order="C")
    fin = D[np.isfinite(D)]
    big = 10.0 * float(fin.max()) if fin.size and fin.max() > 0 else 1.0
    L, U = _bounds(problem, centers)
    mu = problem.mean.astype(np.float64)
    scale = np.where(mu > 0, mu, 1.0)
    c0 = _raw_cost(a, D, cw, big)
    c0 = c0 if np.isfinite(c0) and c0 > 0 else 1.0
    ex = np.full(n, -1, dtype=np.int64) if existing is None else np.array(existing, np.int64)
    delta = cw if cw.sum() > 0 else np.ones(n)
    dw = delta / delta.sum()
    return _Ctx(
        w=np.array(problem.weights, dtype=np.float64, order="C"),
        cw=cw,
        L=L,
        U=U,
        mu=mu,
        scale=scale,
        pull=not problem.capacity_mode,
        big=big,
        c0=c0,
        ex=ex,
        dw=np.ascontiguousarray(dw),
        weights=wts,
    )


def objective_terms(
    problem: TerritoryProblem,
    assignment: np.ndarray,
    centers: np.ndarray,
    *,
    reference_cost: float,
    existing: np.ndarray | None = None,
    weights: LocalSearchWeights | None = None,
) -> tuple[float, dict[str, float]]:
    """:math:`F` and its terms for a solution, with :math:`C_0` = ``reference_cost``.

    Returns
    -------
    tuple of (float, dict)
        The weighted objective and ``{"balance": B, "compactness": K, "disruption": D}``.
    """
    wts = LocalSearchWeights() if weights is None else weights
    a = np.asarray(assignment, dtype=np.int64)
    c = np.asarray(centers, dtype=np.int64)
    D = problem.cost.rows(c)
    ex = None if existing is None else np.asarray(existing, dtype=np.int64)
    ctx = _context(problem, a, c, D, ex, wts)
    ctx.c0 = float(reference_cost) if reference_cost > 0 else 1.0
    terms = _terms(a, D, ctx, problem.p)
    return _total(terms, wts), terms


def _near_territories(D: np.ndarray, k: int) -> np.ndarray:
    """``(n, k)`` the ``k`` nearest centers of every area (unreachable ones are skipped)."""
    k = max(1, min(k, D.shape[0]))
    order = np.argsort(np.where(np.isfinite(D), D, np.inf), axis=0, kind="stable")[:k]
    return np.ascontiguousarray(order.T.astype(np.int64))


def _proximity_graph(problem: TerritoryProblem, k: int = 6) -> sp.csr_matrix | None:
    """A symmetric k-nearest-neighbour graph of the areas (for swaps without adjacency)."""
    n = problem.n
    if n < 2:
        return None
    k = min(k, n - 1)
    if problem.coords is not None:
        from scipy.spatial import cKDTree

        _, idx = cKDTree(problem.coords).query(problem.coords, k=k + 1)
        nbr = idx[:, 1:]
    elif problem.cost.shape[0] == n and np.array_equal(problem.candidates, np.arange(n)):
        nbr = np.empty((n, k), dtype=np.int64)
        for start in range(0, n, 256):
            rows = np.arange(start, min(n, start + 256))
            d = problem.cost.rows(rows)
            d[np.arange(rows.size), rows] = np.inf
            nbr[rows] = np.argsort(d, axis=1, kind="stable")[:, :k]
    else:
        return None
    rows = np.repeat(np.arange(n), nbr.shape[1])
    g = sp.csr_matrix((np.ones(rows.size, dtype=bool), (rows, nbr.ravel())), shape=(n, n))
    return _as_adjacency(g, n)


def _edge_list(g: sp.csr_matrix | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if g is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    coo = sp.triu(g, k=1).tocoo()
    perm = rng.permutation(coo.nnz)
    return (
        np.ascontiguousarray(coo.row[perm].astype(np.int64)),
        np.ascontiguousarray(coo.col[perm].astype(np.int64)),
    )


def _chains(
    gr: tuple[Any, ...],
    md: tuple[Any, ...],
    st: tuple[Any, ...],
    deadline: float,
    *,
    hops: int = _CHAIN_HOPS,
    width: int = _CHAIN_WIDTH,
) -> int:
    """Ejection chains for territories outside their bounds; returns the chains applied.

    For a territory ``t_0`` over an upper bound, a depth-first search builds chains
    ``t_0 -> t_1 -> ... -> t_h`` (``h <= hops``, no territory twice): at every step the
    ``width`` admissible moves (single area or branch) out of the current territory into any
    neighbouring territory that lower F most, given the moves before them, are tried; the
    chain goes on from the receiving territory only while that one is now over an upper
    bound itself, or from the same territory, pulling, when it overshot below its lower bound.
    A territory under a lower bound pulls in the same way (moves into it, and on from the
    giving territory while it is under a lower bound). The chain with the lowest
    total change of F is applied when it lowers F; everything tried is undone exactly. The
    tabu search cannot find these: each intermediate state is worse, and moving a region's
    surplus across several territories, in lumps of whole areas, is what a poor start needs.
    """
    a, W = st[0], st[1]
    L, U, scale = md[5], md[6], md[8]
    n, p, m = a.shape[0], W.shape[0], W.shape[1]
    buf = _ChainBuffers.make(n, p, m, width, hops)
    applied = 0
    failed: set[int] = set()
    while time.perf_counter() < deadline:
        over = (W - U) / scale
        under = (L - W) / scale
        worst = np.maximum(over, under).max(axis=1)
        todo = [int(t) for t in np.argsort(-worst, kind="stable") if worst[t] > 1e-12]
        todo = [t for t in todo if t not in failed]
        if not todo:
            break
        for s in todo:
            if time.perf_counter() >= deadline:
                break
            pull = bool(under[s].max() > over[s].max())
            chain = _chain_search(gr, md, st, s, pull, hops, buf, deadline)
            if chain:
                for v, dest in chain:
                    nb = _moving_set(gr, md, st, v, buf.sc, buf.bset, buf.dx)
                    _apply_set(md, st, dest, buf.bset[:nb].copy(), nb, buf.dx)
                applied += 1
                failed.clear()
                break
            failed.add(s)
        else:
            break
    return applied


@dataclasses.dataclass
class _ChainBuffers:
    """Scratch arrays of the chain search (one set per call of :func:`_chains`)."""

    sc: tuple[np.ndarray, ...]
    bset: np.ndarray
    dx: np.ndarray
    blocked: np.ndarray
    tstamp: np.ndarray
    out_v: list[np.ndarray]
    out_t: list[np.ndarray]
    out_d: list[np.ndarray]

    @classmethod
    def make(cls, n: int, p: int, m: int, width: int, hops: int) -> _ChainBuffers:
        return cls(
            sc=(
                np.zeros(n, dtype=np.int64),
                np.zeros(n, dtype=np.int64),
                np.empty(n, dtype=np.int64),
                np.empty(n, dtype=np.int64),
                np.ones(1, dtype=np.int64),
            ),
            bset=np.empty(n, dtype=np.int64),
            dx=np.empty(m, dtype=np.float64),
            blocked=np.zeros(p, dtype=np.bool_),
            tstamp=np.zeros(p + 1, dtype=np.int64),
            out_v=[np.empty(width, dtype=np.int64) for _ in range(hops)],
            out_t=[np.empty(width, dtype=np.int64) for _ in range(hops)],
            out_d=[np.empty(width, dtype=np.float64) for _ in range(hops)],
        )


def _chain_search(
    gr: tuple[Any, ...],
    md: tuple[Any, ...],
    st: tuple[Any, ...],
    s: int,
    pull: bool,
    hops: int,
    buf: _ChainBuffers,
    deadline: float,
) -> list[tuple[int, int]]:
    """The best chain from ``s`` (see :func:`_chains`) as ``[(area, destination), ...]``;
    empty when no chain lowers F. The state is left as it was."""
    W = st[1]
    L, U = md[5], md[6]
    best: list[Any] = [-1e-12, []]
    chosen: list[tuple[int, int]] = []
    buf.blocked[:] = False
    buf.blocked[s] = True

    def off(t: int, under: bool) -> bool:
        return bool((W[t] < L[t] - 1e-9).any()) if under else bool((W[t] > U[t] + 1e-9).any())

    def dfs(x: int, pull: bool, depth: int, total: float) -> None:
        ov, ot, od = buf.out_v[depth], buf.out_t[depth], buf.out_d[depth]
        cnt = _top_moves(
            gr, md, st, x, pull, buf.blocked, buf.tstamp, buf.sc, buf.bset, buf.dx, ov, ot, od
        )
        for v, y, d in zip(ov[:cnt].tolist(), ot[:cnt].tolist(), od[:cnt].tolist(), strict=True):
            if time.perf_counter() >= deadline:
                return
            src, dest = (y, x) if pull else (x, y)
            nb = _moving_set(gr, md, st, v, buf.sc, buf.bset, buf.dx)
            moved = buf.bset[:nb].copy()
            _apply_set(md, st, dest, moved, nb, buf.dx)
            chosen.append((v, dest))
            if total + d < best[0]:
                best[0], best[1] = total + d, list(chosen)
            if depth + 1 < hops:
                buf.blocked[y] = True
                if off(y, pull):  # the partner is now off in the same direction: pass it on
                    dfs(y, pull, depth + 1, total + d)
                elif off(x, not pull):  # x overshot: it turns round (never back to y)
                    dfs(x, not pull, depth + 1, total + d)
                buf.blocked[y] = False
            chosen.pop()
            _apply_set(md, st, src, moved, nb, buf.dx)

    dfs(s, pull, 0, 0.0)
    buf.blocked[:] = False
    return list(best[1])


def _state(
    problem: TerritoryProblem,
    a: np.ndarray,
    c: np.ndarray,
    lock: np.ndarray,
    D: np.ndarray,
    ctx: _Ctx,
    coef: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    flags: np.ndarray,
    k_nearest: int,
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    """The kernels' tuples ``gr``, ``md``, ``st`` for assignment ``a`` (shared, not copied)
    and centers ``c``."""
    n, p = a.shape[0], c.shape[0]
    ca = problem.candidates[c]
    movable = ~lock
    movable[ca[ca >= 0]] = False
    anchor = np.where((ca >= 0) & (a[np.clip(ca, 0, None)] == np.arange(p)), ca, -1)
    near = _near_territories(D, k_nearest + 1) if flags[0] else np.zeros((n, 1), dtype=np.int64)
    W = np.zeros((p, problem.m))
    np.add.at(W, a, ctx.w)
    counts = np.bincount(a, minlength=p).astype(np.int64)
    fcur = _balance_rows(W, ctx)
    gr = (indptr, indices, near, anchor.astype(np.int64), movable, flags)
    md = (ctx.w, D, ctx.cw, ctx.ex, ctx.dw, ctx.L, ctx.U, ctx.mu, ctx.scale, coef)
    return gr, md, (a, W, counts, fcur)


def _better(x: tuple[bool, float], y: tuple[bool, float]) -> bool:
    """Whether ``(within, F)`` ``x`` beats ``y``: within all bounds first, then lower F."""
    if x[0] != y[0]:
        return x[0]
    return x[1] < y[1] - 1e-9 * max(1.0, abs(y[1]))


def _within(a: np.ndarray, ctx: _Ctx, p: int) -> bool:
    """Whether every territory of ``a`` is inside its bounds."""
    W = np.zeros((p, ctx.w.shape[1]))
    np.add.at(W, a, ctx.w)
    excess = (np.maximum(0.0, W - ctx.U) + np.maximum(0.0, ctx.L - W)) / ctx.scale
    return bool(excess.max(initial=0.0) <= 1e-12)


def _use_centers(
    problem: TerritoryProblem, c: np.ndarray, new: np.ndarray, D: np.ndarray, ctx: _Ctx
) -> np.ndarray:
    """Switch to centers ``new``: the rows of ``D`` (and capacity bounds) follow."""
    changed = np.flatnonzero(new != c)
    if changed.size:
        D[changed] = problem.cost.rows(new[changed])
        if problem.capacity_mode:
            ctx.L[:], ctx.U[:] = _bounds(problem, new)
    return new.copy()


def _kick(
    gr: tuple[Any, ...],
    md: tuple[Any, ...],
    st: tuple[Any, ...],
    g: sp.csr_matrix | None,
    rng: np.random.Generator,
    n_moves: int,
) -> int:
    """Perturb the solution around the territory farthest outside its bounds: ``n_moves``
    random admissible moves (contiguity kept when required) of areas of that territory and of
    the territories within two steps of it. Returns the moves made."""
    a, W, counts = st[0], st[1], st[2]
    L, U, scale = md[5], md[6], md[8]
    near, movable = gr[2], gr[4]
    use_near = bool(gr[5][0])
    D = md[1]
    p = W.shape[0]
    viol = ((np.maximum(0.0, W - U) + np.maximum(0.0, L - W)) / scale).sum(axis=1)
    region = np.zeros(p, dtype=bool)
    region[int(np.argmax(viol))] = True
    for _ in range(2):
        members = np.flatnonzero(region[a])
        nbr = near[members].ravel() if use_near or g is None else a[g[members].indices]
        region[nbr] = True
    pool = np.flatnonzero(region[a] & movable)
    if pool.size == 0:
        return 0
    n = a.shape[0]
    sc = (
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.int64),
        np.ones(1, dtype=np.int64),
    )
    bset = np.empty(n, dtype=np.int64)
    dx = np.empty(W.shape[1], dtype=np.float64)
    done = 0
    for _ in range(20 * n_moves):
        if done >= n_moves:
            break
        v = int(pool[rng.integers(pool.size)])
        s = int(a[v])
        nbr_t = near[v] if use_near or g is None else a[g.indices[g.indptr[v] : g.indptr[v + 1]]]
        targets = np.unique(nbr_t[(nbr_t != s) & np.isfinite(D[nbr_t, v])])
        if targets.size == 0 or counts[s] <= 1:
            continue
        nb = _moving_set(gr, md, st, v, sc, bset, dx)
        if nb == 0 or nb >= counts[s]:
            continue
        t = int(targets[rng.integers(targets.size)])
        if not np.isfinite(D[t, bset[:nb]]).all():
            continue
        _apply_set(md, st, t, bset[:nb].copy(), nb, dx)
        done += 1
    return done


def _recenter(
    problem: TerritoryProblem,
    a: np.ndarray,
    centers: np.ndarray,
    ctx: _Ctx,
    fixed: np.ndarray,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Relocate every free center to its territory's best candidate (never worse in F).

    Candidates of territory ``t``: the candidates located at its own areas and the extra
    points (candidates -1) that no other territory uses. Score: the territory's weighted
    cost (plus, in capacity mode, its balance term with the candidate's capacity).
    """
    p = problem.p
    new = centers.copy()
    cand = problem.candidates
    extra = np.flatnonzero(cand < 0)
    cand_of_area = np.full(problem.n, -1, dtype=np.int64)
    cand_of_area[cand[cand >= 0]] = np.flatnonzero(cand >= 0)
    wts = ctx.weights
    cc = wts.compactness / ctx.c0
    cb = wts.balance / p
    for t in range(p):
        if fixed[t]:
            continue
        members = np.flatnonzero(a == t)
        own = cand_of_area[members]
        used = np.zeros(cand.shape[0], bool)
        used[new] = True
        used[new[t]] = False
        options = np.concatenate([own[own >= 0], extra])
        if allowed is not None:
            options = options[allowed[options]]
        options = np.union1d(options[~used[options]], [new[t]])
        if options.size <= 1:
            continue
        d = problem.cost.block(options, members)
        d = np.where(np.isfinite(d), d, ctx.big)
        score = cc * (d @ ctx.cw[members])
        if problem.capacity_mode:
            lo, hi = problem.center_bounds(options)
            Wt = ctx.w[members].sum(axis=0)
            L = np.zeros_like(hi) if lo is None else lo
            e = (np.maximum(0.0, Wt - hi) + np.maximum(0.0, L - Wt)) / ctx.scale
            score = score + cb * wts.band_penalty * e.sum(axis=1)
        cur = score[int(np.searchsorted(options, new[t]))]
        j = int(np.argmin(score))
        if score[j] < cur - 1e-12 * max(1.0, abs(cur)):
            new[t] = options[j]
    return new


def local_search(
    problem: TerritoryProblem,
    assignment: np.ndarray,
    centers: np.ndarray,
    *,
    adjacency: Any = None,
    require_contiguity: bool = False,
    existing: np.ndarray | None = None,
    locked: np.ndarray | None = None,
    fixed_centers: np.ndarray | None = None,
    allowed_centers: np.ndarray | None = None,
    weights: LocalSearchWeights | None = None,
    time_limit: float | None = 10.0,
    max_iter: int | None = None,
    patience: int | None = None,
    tabu_tenure: int = 7,
    k_nearest: int = 4,
    seed: int = 0,
    relocate_centers: bool = True,
    chains: bool = True,
    kicks: int = 50,
    reference_cost: float | None = None,
) -> LocalSearchResult:
    """Improve a territory design by tabu search (see the module docstring).

    Parameters
    ----------
    problem
        The territory problem.
    assignment
        ``(n,)`` territory ``0..p-1`` of every area; no territory may be empty.
    centers
        ``(p,)`` candidate index of each territory's center.
    adjacency
        ``(n, n)`` symmetric boolean adjacency of the areas (scipy.sparse). Moves go to
        territories holding a neighbour; swaps exchange adjacent areas.
    require_contiguity
        Keep every territory connected in ``adjacency`` (needs it). A non-contiguous start
        is repaired first (:func:`optimizer.contiguity.repair_contiguity`); fragments that
        cannot be repaired (islands, locked) stay, and no move creates a new one.
    existing
        ``(n,)`` territory of every area in the current alignment (-1 = new area), for the
        disruption term; territory numbers must mean the same as in ``assignment``.
    locked
        ``(n,)`` booleans: areas that keep their territory from ``assignment``.
    fixed_centers
        ``(p,)`` booleans: territories whose center is not relocated.
    allowed_centers
        ``(n_candidates,)`` booleans: candidates a center may be relocated to (default all;
        forbidden centers).
    weights
        Objective weights (default :class:`LocalSearchWeights` ``()``).
    time_limit
        Seconds (``None`` = no limit); checked every few hundred iterations.
    max_iter
        Total tabu iterations (``None`` = no limit).
    patience
        Iterations without a new best that end a round (default ``clip(n // 2, 50, 500)``).
    tabu_tenure
        Base tenure of the tabu list (a seeded random 0..tenure/2 is added per move).
    k_nearest
        Without adjacency: the nearest centers an area may move to.
    seed
        Seed of the scan order, the swap order and the tenure jitter.
    relocate_centers
        Relocate the centers (1-median over each territory's candidates) between rounds.
    chains
        Try ejection chains between rounds for territories outside their bounds.
    kicks
        When a descent ends with a territory still outside its bounds: at most this many
        perturbations of the best solution so far, each followed by a new descent (iterated
        local search; the best solution is kept).
    reference_cost
        :math:`C_0` of the compactness term (default: the cost of the given solution). Give
        the same value to compare objectives across calls (a scenario uses the existing
        alignment's cost).

    Returns
    -------
    LocalSearchResult
        ``objective_after <= objective_before`` unless a contiguity repair was needed first
        (its price is then included) or the result is within all bounds and the given
        solution was not.

    Raises
    ------
    InputError
        On inconsistent shapes or values, an empty territory, or ``require_contiguity``
        without ``adjacency``.

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.array([[x, 0.0] for x in range(8)])
    >>> prob = TerritoryProblem.from_points(xy, np.ones(8), 2, tolerance=0.0)
    >>> res = local_search(prob, np.array([0, 0, 0, 0, 0, 0, 1, 1]), np.array([0, 7]))
    >>> res.assignment.tolist(), res.objective_after < res.objective_before
    ([0, 0, 0, 0, 1, 1, 1, 1], True)
    """
    time_limit = check_time_limit(time_limit)
    _warm_up()
    t0 = time.perf_counter()
    deadline = np.inf if time_limit is None else t0 + float(time_limit)
    wts = LocalSearchWeights() if weights is None else weights
    n, p = problem.n, problem.p
    a_in, c, lock, fixed, ex = _validate(
        problem, assignment, centers, locked, fixed_centers, existing
    )
    allowed = None
    if allowed_centers is not None:
        allowed = np.asarray(allowed_centers, dtype=bool)
        if allowed.shape != (problem.cost.shape[0],):
            raise InputError(
                f"allowed_centers must be a ({problem.cost.shape[0]},) boolean mask, "
                f"got shape {allowed.shape}"
            )
    if require_contiguity and adjacency is None:
        raise InputError("require_contiguity=True needs the adjacency matrix (adjacency=...)")
    if tabu_tenure < 0:
        raise InputError(f"tabu_tenure must be >= 0, got {tabu_tenure}")
    if max_iter is not None and max_iter < 0:
        raise InputError(f"max_iter must be >= 0 or None, got {max_iter}")
    if kicks < 0:
        raise InputError(f"kicks must be >= 0, got {kicks}")
    if reference_cost is not None and not np.isfinite(reference_cost):
        raise InputError(f"reference_cost must be finite, got {reference_cost!r}")
    g = None if adjacency is None else _as_adjacency(adjacency, n)
    rng = np.random.default_rng(seed)

    D = np.array(problem.cost.rows(c), dtype=np.float64, order="C")  # (p, n), writable
    ctx = _context(problem, a_in, c, D, ex, wts)
    if reference_cost is not None:
        ctx.c0 = float(reference_cost) if reference_cost > 0 else 1.0
    terms_before = _terms(a_in, D, ctx, p)
    f_before = _total(terms_before, wts)

    a = a_in.copy()
    repaired = 0
    if require_contiguity and g is not None and not is_contiguous(g, a, p):
        a, repaired, stranded = _repair(
            problem, a, c, g, lock, wts.band_penalty * wts.balance, wts.compactness, cost_rows=D
        )
        log.info("local search: contiguity repair moved %d area(s) first", repaired)
        if stranded:
            log.warning(
                "local search: %d fragment(s) cannot be joined to a neighbour (%s); they stay "
                "and no move creates new ones",
                sum(stranded.values()),
                ", ".join(f"{k}: {v}" for k, v in sorted(stranded.items())),
            )
    terms_start = _terms(a, D, ctx, p)
    f_start = _total(terms_start, wts)
    a_start, c_start = a.copy(), c.copy()

    if g is None:
        indptr = np.zeros(n + 1, dtype=np.int64)
        indices = np.zeros(0, dtype=np.int64)
        sw_u, sw_v = _edge_list(_proximity_graph(problem), rng)
    else:
        indptr = g.indptr.astype(np.int64)
        indices = g.indices.astype(np.int64)
        sw_u, sw_v = _edge_list(g, rng)
    flags = np.array([int(g is None), int(require_contiguity)], dtype=np.int64)
    pat = int(np.clip(n // 2, 50, 500)) if patience is None else max(1, int(patience))
    coef = np.array(
        [
            wts.balance / p,
            wts.compactness / ctx.c0,
            wts.disruption,
            wts.band_penalty,
            1.0 if ctx.pull else 0.0,
            ctx.big,
        ]
    )
    center_area = problem.candidates

    total_iter = moves = swaps = branches = n_chains = rounds = n_kicks = 0
    descent_rounds = 0
    best: tuple[bool, float] | None = None  # (within all bounds, F) of the best descent
    best_a_all, best_c_all = a.copy(), c.copy()
    stopped = "converged"
    while True:
        rounds += 1
        descent_rounds += 1
        stopped = "converged"
        gr, md, st = _state(problem, a, c, lock, D, ctx, coef, indptr, indices, flags, k_nearest)
        W, counts, fcur = st[1], st[2], st[3]
        f0 = _total(_terms(a, D, ctx, p), wts)
        fstate = np.array([f0, f0])
        istate = np.zeros(6, dtype=np.int64)
        tabu_until = np.zeros((n, p), dtype=np.int64)
        order = rng.permutation(n).astype(np.int64)
        jitter = rng.integers(0, tabu_tenure // 2 + 1, size=1024).astype(np.int64)
        best_a = a.copy()
        halt = False
        while True:
            budget = _BATCH if max_iter is None else min(_BATCH, max_iter - total_iter)
            if budget <= 0:
                stopped, halt = "max_iter", True
                break
            before = int(istate[0])
            status = _tabu(
                gr, md, st, sw_u, sw_v, tabu_until, order, jitter,
                int(tabu_tenure), int(budget), pat, istate, fstate, best_a,
            )  # fmt: skip
            total_iter += int(istate[0]) - before
            if status != 0:
                if status == 2:
                    stopped = "no_move"
                break
            if time.perf_counter() >= deadline:
                stopped, halt = "time_limit", True
                break
        moves += int(istate[2])
        swaps += int(istate[3])
        branches += int(istate[5])
        a[:] = best_a  # st shares a: the chains below start from the best solution
        if halt:
            break
        if descent_rounds >= _MAX_ROUNDS:
            stopped = "max_rounds"
            break
        applied = 0
        if chains:
            W[:] = 0.0
            np.add.at(W, a, ctx.w)
            counts[:] = np.bincount(a, minlength=p)
            fcur[:] = _balance_rows(W, ctx)
            applied = _chains(gr, md, st, deadline)
            n_chains += applied
        changed = False
        if relocate_centers:
            new_c = _recenter(problem, a, c, ctx, fixed, allowed)
            changed_t = np.flatnonzero(new_c != c)
            if changed_t.size:
                D[changed_t] = problem.cost.rows(new_c[changed_t])
                c = new_c
                changed = True
                if problem.capacity_mode:
                    ctx.L[:], ctx.U[:] = _bounds(problem, c)
        if time.perf_counter() >= deadline:
            stopped = "time_limit"
            break
        if applied or changed:
            continue
        # this descent has converged: keep its result if it is the best so far, and kick
        # the best solution when a territory is still outside its bounds
        now = (_within(a, ctx, p), _total(_terms(a, D, ctx, p), wts))
        if best is None or _better(now, best):
            best, best_a_all, best_c_all = now, a.copy(), c.copy()
        if n_kicks >= kicks or best[0]:
            break
        a[:] = best_a_all
        c = _use_centers(problem, c, best_c_all, D, ctx)
        gr, md, st = _state(problem, a, c, lock, D, ctx, coef, indptr, indices, flags, k_nearest)
        _kick(gr, md, st, g, rng, _KICK_MOVES[n_kicks % len(_KICK_MOVES)])
        n_kicks += 1
        descent_rounds = 0
    if best is not None and _better(best, (_within(a, ctx, p), _total(_terms(a, D, ctx, p), wts))):
        a[:] = best_a_all
        c = _use_centers(problem, c, best_c_all, D, ctx)
    # the same weights and C0, recomputed from scratch
    terms_after = _terms(a, D, ctx, p)
    f_after = _total(terms_after, wts)
    start_key = (_within(a_start, ctx, p), f_start)
    if _better(start_key, (_within(a, ctx, p), f_after)):  # pragma: no cover - safety net
        log.warning("local search: rounding made the result worse; returning the start")
        a, c, terms_after, f_after = a_start, c_start, terms_start, f_start
    contiguous = None if g is None else is_contiguous(g, a, p, center_area[c])
    seconds = time.perf_counter() - t0
    log.info(
        "local search: F %.6g -> %.6g in %d iterations (%d moves, %d branch moves, %d swaps, "
        "%d chains, %d rounds, %d kicks, %s) %.2fs",
        f_before,
        f_after,
        total_iter,
        moves,
        branches,
        swaps,
        n_chains,
        rounds,
        n_kicks,
        stopped,
        seconds,
    )
    return LocalSearchResult(
        assignment=a,
        centers=c,
        objective_before=f_before,
        objective_after=f_after,
        iterations=total_iter,
        moves=moves,
        swaps=swaps,
        seconds=seconds,
        contiguous=contiguous,
        terms_before=terms_before,
        terms_after=terms_after,
        repaired=repaired,
        changed=int(np.count_nonzero(a != a_in)),
        rounds=rounds,
        chains=n_chains,
        branch_moves=branches,
        kicks=n_kicks,
        stopped=stopped,
    )


_WARM = [False]


def _warm_up() -> None:
    """Compile the kernels (or load them from numba's cache) once per process, on a toy
    instance with the same argument types, so that compilation never eats the time limit."""
    if _WARM[0]:
        return
    _WARM[0] = True
    xy = np.c_[np.arange(4.0), np.zeros(4)]
    toy = TerritoryProblem.from_points(xy, np.array([1.0, 1.0, 1.0, 5.0]), 2, tolerance=0.0)
    path = sp.diags([np.ones(3), np.ones(3)], [-1, 1], shape=(4, 4), format="csr", dtype=bool)
    start = np.array([0, 0, 0, 1])
    local_search(toy, start, np.array([0, 3]), adjacency=path, require_contiguity=True)
    local_search(toy, start, np.array([0, 3]))


def _validate(
    problem: TerritoryProblem,
    assignment: Any,
    centers: Any,
    locked: Any,
    fixed_centers: Any,
    existing: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    n, p, nc = problem.n, problem.p, problem.cost.shape[0]
    a = np.asarray(assignment, dtype=np.int64)
    c = np.asarray(centers, dtype=np.int64).copy()
    if a.shape != (n,):
        raise InputError(f"assignment must have one entry per area ({n}), got shape {a.shape}")
    if np.any((a < 0) | (a >= p)):
        raise InputError(f"assignment has territory indices outside 0..{p - 1}")
    if c.shape != (p,) or np.any((c < 0) | (c >= nc)):
        raise InputError(f"centers must be {p} candidate indices in 0..{nc - 1}, got {c!r}")
    if np.unique(c).shape[0] != p:
        raise InputError("a candidate is the center of two territories")
    counts = np.bincount(a, minlength=p)
    if np.any(counts == 0):
        raise InputError(f"territories {np.flatnonzero(counts == 0).tolist()} are empty")
    lock = np.zeros(n, bool)
    if locked is not None:
        lock = np.asarray(locked, dtype=bool)
        if lock.shape != (n,):
            raise InputError(f"locked must be an (n,) boolean mask with n = {n}, got {lock.shape}")
    fixed = np.zeros(p, bool)
    if fixed_centers is not None:
        fixed = np.asarray(fixed_centers, dtype=bool)
        if fixed.shape != (p,):
            raise InputError(f"fixed_centers must be a ({p},) boolean mask, got {fixed.shape}")
    ex = None
    if existing is not None:
        ex = np.asarray(existing, dtype=np.int64)
        if ex.shape != (n,) or np.any((ex < -1) | (ex >= p)):
            raise InputError(f"existing must be ({n},) territory indices in -1..{p - 1}")
    return a, c, lock, fixed, ex
