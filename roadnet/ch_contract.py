"""Parallel node contraction for :func:`roadnet.ch.build_hierarchy`, on a block adjacency.

The graph being contracted is kept as an *adjacency array with slack* (the dynamic graph of
OSRM and RoutingKit): every node owns one contiguous block of its outgoing arcs and one of its
incoming arcs in two pools (head or tail, seconds, metres, hops per arc; ``start``, ``len``
and ``cap`` per node). A witness search reads a settled node's arcs as one sequential run of
memory instead of chasing a linked list through arrays of millions of arcs, which is where the
build spent its time (priority simulation and witness searches are nearly all arc scans).

* Adding an arc appends to the tail's out block and the head's in block; a full block moves to
  the end of its pool with twice the capacity. When a pool is full, the blocks of the live
  nodes are copied, in node order and with fresh slack, into a new pool (which also restores
  locality).
* Contracting ``v`` writes its remaining arcs (all to more important nodes) to the output and
  removes ``v`` from its neighbours' blocks, keeping their order, so the blocks of live nodes
  only ever hold live nodes and no search has to skip contracted ones.
* Blocks are read newest arc first, and removal keeps the order, which is the order of the
  linked lists this replaced: with the same priority estimate (``sim_hops=0``) the build makes
  the same choices, shortcuts and hierarchy as they did.

Priorities (OSRM's ``2 x edge quotient + original-edge quotient + depth``) are estimated by
simulating each contraction with *hop-limited* witnesses (Geisberger et al. 2008 limit the hops
of the witness searches while estimating priorities): for an in-neighbour ``u`` the nodes one and
two arcs away are labelled without a heap, and a target ``x`` is witnessed when one of them plus
one arc into ``x`` is no longer than the path via the node (``sim_hops=3``). That is about half
the build's CPU of settle-limited Dijkstra searches, for slightly fewer shortcuts (measured,
``docs/benchmarks.md``). The contraction itself still runs full witness searches (Dijkstra,
``settle_limit`` nodes), which alone decide the shortcuts: a priority only orders the nodes, so
exactness does not depend on how it is estimated.

Rounds (Vetter 2009, "Parallel time-dependent contraction hierarchies"): each round takes the
live nodes whose priority is lower than that of each live neighbour (an independent set), runs
their witness searches on all threads, adds the shortcuts serially, retires the nodes and
re-simulates their neighbours' priorities on all threads. A round stands for contracting its
nodes one after the other in their order: no two are adjacent, so contracting one changes
neither the neighbours nor the arcs of another, and the witness search of the i-th avoids the
first i - 1 (removed by then) and may use the others. Every shortcut the sequential contraction
would need is added, so every distance between the remaining nodes is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba import prange

from roadnet.ch_kernels import heap_pop, heap_set, node_priority, tie

__all__ = ["contract_rounds"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

_INF = np.inf
_MIN_CAP = 4
_POOL_FACTOR = 2
"""A pool starts with this many times the slots of the initial blocks (plus ``_POOL_EXTRA``)."""
_POOL_EXTRA = 1024

# A side of the graph (out or in) is the tuple (start, len, cap, nbr, seconds, metres, hops):
# per node the first slot, arc count and capacity of its block; per pool slot the other end of
# the arc, its travel seconds, metres and the number of original arcs it stands for.


# ----------------------------------------------------------------------- block adjacency
@numba.njit(cache=True, inline="always")
def _find(start: Any, ln: Any, nbr: Any, node: int, x: int) -> int:  # pragma: no cover
    """Pool slot of the arc between ``node`` and ``x`` in ``node``'s block, or -1."""
    s = start[node]
    for k in range(s, s + ln[node]):
        if nbr[k] == x:
            return k
    return -1


@numba.njit(cache=True)
def _move(node: int, side: Any, end: int) -> int:  # pragma: no cover - compiled
    """Move ``node``'s full block to ``end`` with twice the capacity; returns the new end."""
    start, ln, cap, nbr, sec, met, hop = side
    s = start[node]
    for k in range(ln[node]):
        nbr[end + k] = nbr[s + k]
        sec[end + k] = sec[s + k]
        met[end + k] = met[s + k]
        hop[end + k] = hop[s + k]
    start[node] = end
    nc = max(_MIN_CAP, 2 * cap[node])
    cap[node] = nc
    return end + nc


@numba.njit(cache=True, inline="always")
def _append(node: int, x: int, w: float, m: float, h: int, side: Any) -> None:  # pragma: no cover
    start, ln, _, nbr, sec, met, hop = side
    k = start[node] + ln[node]
    nbr[k] = x
    sec[k] = w
    met[k] = m
    hop[k] = h
    ln[node] += 1


@numba.njit(cache=True)
def _add_arc(
    u: int, x: int, w: float, m: float, h: int, out: Any, inc: Any, o_end: int, i_end: int
) -> tuple[bool, int, int]:  # pragma: no cover - compiled
    """Add arc ``u -> x`` or lower the existing one: ``(done, out pool end, in pool end)``;
    ``done`` is False (and nothing changed) when a pool has no room for a moved block."""
    k = _find(out[0], out[1], out[3], u, x)
    if k >= 0:
        if w < out[4][k]:
            out[4][k] = w
            out[5][k] = m
            out[6][k] = h
            j = _find(inc[0], inc[1], inc[3], x, u)
            inc[4][j] = w
            inc[5][j] = m
            inc[6][j] = h
        return True, o_end, i_end
    move_o = out[1][u] == out[2][u]
    move_i = inc[1][x] == inc[2][x]
    if move_o and o_end + max(_MIN_CAP, 2 * out[2][u]) > out[3].shape[0]:
        return False, o_end, i_end
    if move_i and i_end + max(_MIN_CAP, 2 * inc[2][x]) > inc[3].shape[0]:
        return False, o_end, i_end
    if move_o:
        o_end = _move(u, out, o_end)
    if move_i:
        i_end = _move(x, inc, i_end)
    _append(u, x, w, m, h, out)
    _append(x, u, w, m, h, inc)
    return True, o_end, i_end


@numba.njit(cache=True)
def _remove(node: int, x: int, side: Any) -> None:  # pragma: no cover - compiled
    """Take the arc between ``node`` and ``x`` out of ``node``'s block, keeping the order."""
    start, ln, _, nbr, sec, met, hop = side
    k = _find(start, ln, nbr, node, x)
    last = start[node] + ln[node] - 1
    for j in range(k, last):
        nbr[j] = nbr[j + 1]
        sec[j] = sec[j + 1]
        met[j] = met[j + 1]
        hop[j] = hop[j + 1]
    ln[node] -= 1


@numba.njit(cache=True)
def _compact(side: Any, keep: Any) -> tuple[Any, int]:  # pragma: no cover - compiled
    """The blocks of the ``keep`` nodes copied in node order into a new pool with slack
    (half the arc count, at least two), the pool twice their total; ``(side, end)``."""
    start, ln, _, nbr, sec, met, hop = side
    n = start.shape[0]
    total = 0
    for u in range(n):
        if keep[u]:
            total += max(_MIN_CAP, ln[u] + max(2, ln[u] >> 1))
    size = 2 * total + 1024
    n_start = np.zeros(n, np.int64)
    n_ln = np.zeros(n, np.int64)
    n_cap = np.zeros(n, np.int64)
    n_nbr = np.empty(size, np.int32)
    n_sec = np.empty(size, np.float64)
    n_met = np.empty(size, np.float64)
    n_hop = np.empty(size, np.int32)
    end = 0
    for u in range(n):
        if not keep[u]:
            continue
        s = start[u]
        c = ln[u]
        for k in range(c):
            n_nbr[end + k] = nbr[s + k]
            n_sec[end + k] = sec[s + k]
            n_met[end + k] = met[s + k]
            n_hop[end + k] = hop[s + k]
        n_start[u] = end
        n_ln[u] = c
        n_cap[u] = max(_MIN_CAP, c + max(2, c >> 1))
        end += n_cap[u]
    return (n_start, n_ln, n_cap, n_nbr, n_sec, n_met, n_hop), end


def _empty_side(n: int, size: int) -> tuple[np.ndarray, ...]:
    return (
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.empty(size, np.int32),
        np.empty(size, np.float64),
        np.empty(size, np.float64),
        np.empty(size, np.int32),
    )


@numba.njit(cache=True)
def _load(
    indptr: Any, indices: Any, seconds: Any, metres: Any, out: Any, inc: Any
) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """The graph's arcs into blocks sized by degree (self-loops dropped, parallel arcs merged
    into the fastest); ``(arcs, out pool end, in pool end)``."""
    n = indptr.shape[0] - 1
    o_end = 0
    for u in range(n):
        out[0][u] = o_end
        out[2][u] = max(_MIN_CAP, 2 * (indptr[u + 1] - indptr[u]))
        o_end += out[2][u]
    deg = np.zeros(n, np.int64)
    for e in range(indices.shape[0]):
        deg[indices[e]] += 1
    i_end = 0
    for u in range(n):
        inc[0][u] = i_end
        inc[2][u] = max(_MIN_CAP, 2 * deg[u])
        i_end += inc[2][u]
    ne = 0
    for u in range(n):
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if v != u:
                before = out[1][u]
                _, o_end, i_end = _add_arc(
                    u, v, float(seconds[e]), float(metres[e]), 1, out, inc, o_end, i_end
                )
                ne += out[1][u] - before
    return ne, o_end, i_end


# ----------------------------------------------------------------------- witness searches
@numba.njit(cache=True)
def _process(
    v: int,
    record: bool,
    limit: int,
    out: Any,
    inc: Any,
    dist: Any,
    hk: Any,
    hv: Any,
    hpos: Any,
    touched: Any,
    is_t: Any,
    short: Any,
    at: int,
    ridx: Any,
    lim: int,
) -> tuple[int, int, int, int, int]:  # pragma: no cover - compiled
    """Simulate (``record=False``) or record the contraction of ``v``: witness searches from
    each in-neighbour ``u`` that avoid ``v`` and settle at most ``limit`` nodes; a shortcut
    ``u -> x`` wherever the search found nothing shorter than ``u -> v -> x``.

    Recording writes the shortcuts to ``short`` (tail, head, seconds, metres, hops) from
    index ``at`` on (read-only on the graph, so threads may record different nodes at once).
    With ``lim > 0`` the searches also avoid the nodes ``b`` with ``0 <= ridx[b] < lim`` (the
    nodes of the same round that come before ``v``). Returns ``(shortcuts, shortcut hops,
    removed arcs, removed hops, record end)``.
    """
    o_start, o_len, _, o_nbr, o_sec, o_met, o_hop = out
    i_start, i_len, _, i_nbr, i_sec, i_met, i_hop = inc
    su, sv, sw, sm, sh = short
    ne = at
    o_first = o_start[v]
    o_last = o_first + o_len[v] - 1
    removed = 0
    removed_h = 0
    for k in range(o_first, o_last + 1):
        removed += 1
        removed_h += o_hop[k]
    added = 0
    added_h = 0
    for kin in range(i_start[v] + i_len[v] - 1, i_start[v] - 1, -1):
        u = i_nbr[kin]
        removed += 1
        removed_h += i_hop[kin]
        w_uv = i_sec[kin]
        # bound of the witness search and its targets (it may stop once all are settled)
        bound = -1.0
        remaining = 0
        for k in range(o_last, o_first - 1, -1):
            x = o_nbr[k]
            if x != u:
                if w_uv + o_sec[k] > bound:
                    bound = w_uv + o_sec[k]
                if not is_t[x]:
                    is_t[x] = True
                    remaining += 1
        if bound < 0:
            continue
        # witness Dijkstra from u avoiding v
        nt = 0
        size = 0
        dist[u] = 0.0
        touched[nt] = u
        nt += 1
        size = heap_set(hk, hv, hpos, size, u, 0.0)
        settled = 0
        while size > 0:
            a, da, size = heap_pop(hk, hv, hpos, size)
            if da > bound:
                break
            settled += 1
            if is_t[a]:
                remaining -= 1
                if remaining == 0:
                    break
                # only the targets left matter, up to the longest of their paths via v
                is_t[a] = False
                bound = -1.0
                for k in range(o_first, o_last + 1):
                    if is_t[o_nbr[k]] and w_uv + o_sec[k] > bound:
                        bound = w_uv + o_sec[k]
            if settled > limit:
                break
            for f in range(o_start[a] + o_len[a] - 1, o_start[a] - 1, -1):
                b = o_nbr[f]
                if b != v and not (lim > 0 and 0 <= ridx[b] < lim):
                    nd = da + o_sec[f]
                    if nd < dist[b] and nd <= bound:
                        if dist[b] == _INF:
                            touched[nt] = b
                            nt += 1
                        dist[b] = nd
                        size = heap_set(hk, hv, hpos, size, b, nd)
        for k in range(o_last, o_first - 1, -1):
            x = o_nbr[k]
            if x == u:
                continue
            via = w_uv + o_sec[k]
            if dist[x] > via:
                added += 1
                added_h += i_hop[kin] + o_hop[k]
                if record:
                    su[ne] = u
                    sv[ne] = x
                    sw[ne] = via
                    sm[ne] = i_met[kin] + o_met[k]
                    sh[ne] = i_hop[kin] + o_hop[k]
                    ne += 1
        # reset the workspace
        for k in range(o_first, o_last + 1):
            is_t[o_nbr[k]] = False
        for t in range(nt):
            dist[touched[t]] = _INF
        for t in range(size):
            hpos[hv[t]] = -1
    return added, added_h, removed, removed_h, ne


@numba.njit(cache=True)
def _simulate_hops(
    v: int, hops: int, out: Any, inc: Any, dist: Any, touched: Any
) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """The contraction of ``v`` simulated with hop-limited witnesses: ``(shortcuts, shortcut
    hops, removed arcs, removed hops)``.

    For each in-neighbour ``u``, the nodes one arc (with ``hops=3`` also two arcs) from ``u``
    are labelled without a heap; a target ``x`` is witnessed when a labelled node plus at most
    one arc into ``x`` is no longer than ``u -> v -> x``. Every witness of at most ``hops``
    arcs is found (and some longer ones)."""
    o_start, o_len, _, o_nbr, o_sec, _, o_hop = out
    i_start, i_len, _, i_nbr, i_sec, _, i_hop = inc
    o_first = o_start[v]
    o_last = o_first + o_len[v] - 1
    removed = o_len[v] + i_len[v]
    removed_h = 0
    for k in range(o_first, o_last + 1):
        removed_h += o_hop[k]
    added = 0
    added_h = 0
    for kin in range(i_start[v], i_start[v] + i_len[v]):
        u = i_nbr[kin]
        removed_h += i_hop[kin]
        w_uv = i_sec[kin]
        bound = -1.0
        for k in range(o_first, o_last + 1):
            if o_nbr[k] != u and w_uv + o_sec[k] > bound:
                bound = w_uv + o_sec[k]
        if bound < 0:
            continue
        nt = 0
        for f in range(o_start[u], o_start[u] + o_len[u]):
            y = o_nbr[f]
            if y != v and o_sec[f] < dist[y]:
                if dist[y] == _INF:
                    touched[nt] = y
                    nt += 1
                dist[y] = o_sec[f]
        if hops >= 3:
            n1 = nt
            for t in range(n1):
                y = touched[t]
                dy = dist[y]
                if dy > bound:
                    continue
                for f in range(o_start[y], o_start[y] + o_len[y]):
                    z = o_nbr[f]
                    nd = dy + o_sec[f]
                    if z != v and z != u and nd < dist[z]:
                        if dist[z] == _INF:
                            touched[nt] = z
                            nt += 1
                        dist[z] = nd
        for k in range(o_first, o_last + 1):
            x = o_nbr[k]
            if x == u:
                continue
            via = w_uv + o_sec[k]
            best = dist[x]
            if best > via:
                for g in range(i_start[x], i_start[x] + i_len[x]):
                    y = i_nbr[g]
                    d = i_sec[g] if y == u else dist[y] + i_sec[g]
                    if d <= via:
                        best = d
                        break
            if best > via:
                added += 1
                added_h += i_hop[kin] + o_hop[k]
        for t in range(nt):
            dist[touched[t]] = _INF
    return added, added_h, removed, removed_h


@numba.njit(cache=True, parallel=True)
def _simulate_many(
    nodes: Any,
    sim_limit: int,
    sim_hops: int,
    out: Any,
    inc: Any,
    level: Any,
    prio: Any,
    ws: Any,
    short: Any,
) -> None:  # pragma: no cover - compiled
    """``prio[v]`` of every ``v`` in ``nodes``, on all threads (one workspace row each), with
    hop-limited witnesses (``sim_hops`` > 0) or searches settling ``sim_limit`` nodes."""
    dist, hk, hv, hpos, touched, is_t = ws
    no_round = np.empty(0, np.int64)
    n_threads = dist.shape[0]
    k = nodes.shape[0]
    for t in prange(n_threads):
        for i in range(t, k, n_threads):
            v = nodes[i]
            if sim_hops > 0:
                a, ah, rm, rh = _simulate_hops(v, sim_hops, out, inc, dist[t], touched[t])
            else:
                a, ah, rm, rh, _ = _process(
                    v, False, sim_limit, out, inc, dist[t], hk[t], hv[t], hpos[t], touched[t],
                    is_t[t], short, 0, no_round, 0,
                )  # fmt: skip
            prio[v] = node_priority(a, ah, rm, rh, level[v])


@numba.njit(cache=True, parallel=True)
def _independent_minima(
    live: Any, prio: Any, out: Any, inc: Any, sel: Any, work: Any
) -> None:  # pragma: no cover - compiled
    """``sel[i]``: ``live[i]`` has a lower ``(priority, tie)`` than every live neighbour (so no
    two selected nodes are adjacent, and the minimum is always selected); ``work[i]`` is its
    degree product (the most shortcuts contracting it can add)."""
    o_start, o_len, _, o_nbr, _, _, _ = out
    i_start, i_len, _, i_nbr, _, _, _ = inc
    for i in prange(live.shape[0]):
        v = live[i]
        pv = prio[v]
        tv = tie(v)
        ok = True
        for k in range(o_start[v], o_start[v] + o_len[v]):
            x = o_nbr[k]
            if prio[x] < pv or (prio[x] == pv and tie(x) < tv):
                ok = False
                break
        if ok:
            for k in range(i_start[v], i_start[v] + i_len[v]):
                x = i_nbr[k]
                if prio[x] < pv or (prio[x] == pv and tie(x) < tv):
                    ok = False
                    break
        sel[i] = ok
        work[i] = o_len[v] * i_len[v]


@numba.njit(cache=True, parallel=True)
def _record_shortcuts(
    chosen: Any,
    offs: Any,
    limit: int,
    out: Any,
    inc: Any,
    ws: Any,
    short: Any,
    count: Any,
    ridx: Any,
) -> None:  # pragma: no cover - compiled
    """Shortcuts of every ``chosen`` node into its slice ``offs[i]:`` of ``short``, as if the
    chosen nodes were contracted one after the other in their order: the witness searches of
    ``chosen[i]`` avoid ``chosen[:i]`` (``ridx`` holds each chosen node's index)."""
    dist, hk, hv, hpos, touched, is_t = ws
    n_threads = dist.shape[0]
    k = chosen.shape[0]
    for t in prange(n_threads):
        for i in range(t, k, n_threads):
            _, _, _, _, end = _process(
                chosen[i], True, limit, out, inc, dist[t], hk[t], hv[t], hpos[t], touched[t],
                is_t[t], short, offs[i], ridx, i,
            )  # fmt: skip
            count[i] = end - offs[i]


@numba.njit(cache=True)
def _add_shortcuts(
    offs: Any,
    count: Any,
    short: Any,
    i0: int,
    j0: int,
    out: Any,
    inc: Any,
    o_end: int,
    i_end: int,
) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """Add the recorded shortcuts from chosen node ``i0``'s ``j0``-th on: ``(i, j, out pool
    end, in pool end)``, ``i`` = the number of chosen nodes when all are in, else the place
    where a pool ran out of room (to resume there after compaction)."""
    su, sv, sw, sm, sh = short
    for i in range(i0, offs.shape[0] - 1):
        first = offs[i] + (j0 if i == i0 else 0)
        for j in range(first, offs[i] + count[i]):
            ok, o_end, i_end = _add_arc(su[j], sv[j], sw[j], sm[j], sh[j], out, inc, o_end, i_end)
            if not ok:
                return i, j - offs[i], o_end, i_end
    return offs.shape[0] - 1, 0, o_end, i_end


@numba.njit(cache=True)
def _retire(
    chosen: Any,
    r: int,
    out: Any,
    inc: Any,
    level: Any,
    rank: Any,
    flag: Any,
    nbrs: Any,
    arcs: Any,
    na: int,
) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Write the chosen nodes' arcs to ``arcs`` (tail, head, seconds, metres) from ``na`` on,
    take the nodes out of their neighbours' blocks, rank them and deepen their neighbours;
    returns ``(next rank, neighbours written to nbrs, arcs written)``."""
    o_start, o_len, _, o_nbr, o_sec, o_met, _ = out
    i_start, i_len, _, i_nbr, i_sec, i_met, _ = inc
    au, av, aw, am = arcs
    k = 0
    for i in range(chosen.shape[0]):
        v = chosen[i]
        for e in range(o_start[v], o_start[v] + o_len[v]):
            au[na] = v
            av[na] = o_nbr[e]
            aw[na] = o_sec[e]
            am[na] = o_met[e]
            na += 1
            _remove(o_nbr[e], v, inc)
        for e in range(i_start[v], i_start[v] + i_len[v]):
            au[na] = i_nbr[e]
            av[na] = v
            aw[na] = i_sec[e]
            am[na] = i_met[e]
            na += 1
            _remove(i_nbr[e], v, out)
        rank[v] = r
        r += 1
        for side in range(2):
            first = o_start[v] if side == 0 else i_start[v]
            last = first + (o_len[v] if side == 0 else i_len[v]) - 1
            for e in range(last, first - 1, -1):
                x = o_nbr[e] if side == 0 else i_nbr[e]
                if level[x] < level[v] + 1:
                    level[x] = level[v] + 1
                if not flag[x]:
                    flag[x] = True
                    nbrs[k] = x
                    k += 1
        o_len[v] = 0
        i_len[v] = 0
    for i in range(k):
        flag[nbrs[i]] = False
    return r, k, na


# ----------------------------------------------------------------------- driver
def contract_rounds(
    indptr: np.ndarray,
    indices: np.ndarray,
    seconds: np.ndarray,
    metres: np.ndarray,
    sim_limit: int,
    limit: int,
    n_threads: int,
    progress: ProgressCallback | None = None,
    sim_hops: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Contract a CSR graph in parallel rounds of independent priority minima.

    Parameters
    ----------
    indptr, indices, seconds, metres
        The graph: CSR row pointers, arc heads, travel seconds and metres.
    sim_limit
        Nodes a witness search may settle while estimating a priority (when ``sim_hops``
        is 0).
    limit
        Nodes a witness search may settle when contracting.
    n_threads
        Workspaces (one per numba thread; the caller sets numba's thread count).
    progress
        Optional callback ``(nodes_contracted, n_nodes)`` after each round.
    sim_hops
        Estimate priorities with witnesses of at most this many arcs (2 or 3; no heap, see
        :func:`_simulate_hops`), or 0 for Dijkstra searches bounded by ``sim_limit``.

    Returns
    -------
    tail, head, arc_seconds, arc_metres : numpy.ndarray
        Every arc of the hierarchy (original arcs and shortcuts, each once).
    rank, level : numpy.ndarray
        Contraction order of each node (0 = first) and its depth in the hierarchy.
    rounds : int
        Rounds taken.
    """
    n = indptr.shape[0] - 1
    m0 = int(indices.shape[0])
    deg_in = np.bincount(indices, minlength=n)
    slots_o = int(np.maximum(_MIN_CAP, 2 * np.diff(indptr)).sum())
    slots_i = int(np.maximum(_MIN_CAP, 2 * deg_in).sum())
    out = _empty_side(n, _POOL_FACTOR * slots_o + _POOL_EXTRA)
    inc = _empty_side(n, _POOL_FACTOR * slots_i + _POOL_EXTRA)
    _, o_end, i_end = _load(indptr, indices, seconds, metres, out, inc)

    ws = (
        np.full((n_threads, n), np.inf),
        np.empty((n_threads, n)),
        np.empty((n_threads, n), np.int64),
        np.full((n_threads, n), -1, np.int64),
        np.empty((n_threads, n), np.int64),
        np.zeros((n_threads, n), np.bool_),
    )
    level = np.zeros(n, np.int64)
    rank = np.full(n, -1, np.int64)
    done = np.zeros(n, np.bool_)
    prio = np.empty(n)
    flag = np.zeros(n, np.bool_)
    nbrs = np.empty(n, np.int64)
    ridx = np.full(n, -1, np.int64)
    live = np.arange(n, dtype=np.int64)
    short_cap = 1 << 16
    short = _shortcut_buffers(short_cap)
    arcs_cap = max(2 * m0, 1024)
    arcs: tuple[np.ndarray, ...] = (
        np.empty(arcs_cap, np.int32),
        np.empty(arcs_cap, np.int32),
        np.empty(arcs_cap),
        np.empty(arcs_cap),
    )
    na = 0
    _simulate_many(live, sim_limit, sim_hops, out, inc, level, prio, ws, short)
    r = 0
    rounds = 0
    simulations = n
    while live.size:
        sel = np.empty(live.size, np.bool_)
        work = np.empty(live.size, np.int64)
        _independent_minima(live, prio, out, inc, sel, work)
        chosen = live[sel]
        rounds += 1
        offs = np.zeros(chosen.size + 1, np.int64)
        np.cumsum(work[sel], out=offs[1:])
        if int(offs[-1]) > short_cap:
            short_cap = max(int(offs[-1]), 2 * short_cap)
            short = _shortcut_buffers(short_cap)
        count = np.zeros(chosen.size, np.int64)
        ridx[chosen] = np.arange(chosen.size)
        _record_shortcuts(chosen, offs, limit, out, inc, ws, short, count, ridx)
        ridx[chosen] = -1
        i, j = 0, 0
        while True:
            i, j, o_end, i_end = _add_shortcuts(offs, count, short, i, j, out, inc, o_end, i_end)
            if i == chosen.size:
                break
            out, o_end = _compact(out, ~done)
            inc, i_end = _compact(inc, ~done)
        need = na + int(out[1][chosen].sum() + inc[1][chosen].sum())
        if need > arcs_cap:
            arcs_cap = max(need, 2 * arcs_cap)
            arcs = tuple(np.concatenate([a[:na], np.empty(arcs_cap - na, a.dtype)]) for a in arcs)
        r, k, na = _retire(chosen, r, out, inc, level, rank, flag, nbrs, arcs, na)
        done[chosen] = True
        _simulate_many(nbrs[:k], sim_limit, sim_hops, out, inc, level, prio, ws, short)
        simulations += k
        live = live[~done[live]]
        if progress:
            progress(r, n)
    log.debug("contraction: %d rounds, %d priority simulations", rounds, simulations)
    return arcs[0][:na], arcs[1][:na], arcs[2][:na], arcs[3][:na], rank, level, rounds


def _shortcut_buffers(size: int) -> tuple[np.ndarray, ...]:
    return (
        np.empty(size, np.int32),
        np.empty(size, np.int32),
        np.empty(size),
        np.empty(size),
        np.empty(size, np.int32),
    )
