"""Bucket-based many-to-many tables on a contraction hierarchy (Knopp et al. 2007).

The alternative to the RPHAST sweeps of :meth:`roadnet.ch.Hierarchy.table`, on the same
:class:`~roadnet.ch.Hierarchy` and with the same answers. A shortest path in a contraction
hierarchy climbs to its most important node ``v`` and descends from there, so

.. math::

    d(s, t) = \\min_v \\; d^{\\uparrow}_s(v) + d^{\\downarrow}_t(v),

where :math:`d^{\\uparrow}_s` are the distances of the *upward* Dijkstra from ``s`` (over
``up``) and :math:`d^{\\downarrow}_t` those of the backward upward Dijkstra from ``t`` (over
``down``, arcs ``p -> q`` followed from ``q`` to ``p``). Knopp, Sanders, Schultes, Schulz &
Wagner ("Computing many-to-many shortest paths using highway hierarchies", ALENEX 2007), as
in OSRM's table service:

1. *bucket phase*: one backward search per target; every node ``v`` it settles gets the entry
   ``(t, d_t(v), metres)`` in its bucket. The buckets are stored as one CSR array by node
   (a counting sort), each bucket ordered by target;
2. *scan phase*: one forward search per source; at every node ``v`` it settles, each entry of
   the bucket of ``v`` offers ``d_s(v) + d_t(v)`` for the cell ``(s, t)``.

Both searches use *stall-on-demand* (Schultes & Sanders 2007): a settled node ``v`` is
stalled, neither relaxed nor bucketed nor scanned, when a more important node ``u`` already
reached gives ``d(u) + w(u, v) < d(v)`` over an arc the search does not follow; such a ``v``
is never the top node of a shortest path. Both searches are pruned at the cutoff. The side
with fewer points fills the buckets (less memory; the work is symmetric), so with many
sources and few targets the sources are bucketed and the targets scan. Searches run in
parallel on numba threads, each thread with its own workspace.

Two refinements of the scan: buckets holding entries for at least a quarter of the bucketed
points (the top of the hierarchy, where most of the scan work is) are stored as dense rows
(``inf`` = no entry) and scanned in one vectorised pass; and a scanning search stops as soon as
its smallest label is no shorter than every cell of its row (no later meeting node can improve
one), which ends the searches of one-to-many tables early. Cell updates are branch-free, ties
keep the first meeting node found; values are summed in float64 and stored as float32.

RPHAST does ``O(|selection|)`` work per source where this does work proportional to the two
search spaces and their bucket overlaps; which is faster depends on the table's shape
(``scripts/bench_ch_query.py`` measures both).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numba
import numpy as np
from numba import prange

from roadnet.ch_kernels import HierarchyArrays, heap_pop, heap_set, resolve_threads
from roadnet.exceptions import InvalidArgumentError

__all__ = ["bucket_node_table", "bucket_table"]

log = logging.getLogger(__name__)

_Arcs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""A CSR arc set of the hierarchy: row pointers, heads, seconds, metres."""

_SAMPLE = 64
"""Bucketed points whose search spaces are counted first to size the bucket arrays."""

_DENSE_SHARE = 0.25
"""Buckets with entries for at least this share of the bucketed points are stored dense."""

_DENSE_CELLS = 1 << 24
"""At most this many cells of dense buckets (128 MiB of float64; twice with metres)."""


# ------------------------------------------------------------------------- kernels
@numba.njit(cache=True)
def _search(
    ptr: Any,
    idx: Any,
    w: Any,
    m: Any,
    st_ptr: Any,
    st_idx: Any,
    st_w: Any,
    e_pos: Any,
    e_sec: Any,
    e_met: Any,
    i: int,
    limit: float,
    stall: bool,
    distances: bool,
    dist: Any,
    dm: Any,
    hk: Any,
    hv: Any,
    hpos: Any,
    touched: Any,
    settled: Any,
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Upward Dijkstra from the entry nodes of point ``i`` (their offsets as start labels).

    ``(ptr, idx, w, m)`` are the arcs followed, ``(st_ptr, st_idx, st_w)`` the arcs that
    stall. Returns ``(k, r)``: ``settled[:k]`` are the settled, unstalled positions (labels in
    ``dist``/``dm``); ``touched[:r]`` the positions whose ``dist`` the caller must reset.
    """
    size = 0
    r = 0
    k = 0
    for a in range(e_pos.shape[1]):
        p = e_pos[i, a]
        if p < 0:
            continue
        d0 = e_sec[i, a]
        if d0 < dist[p] and d0 <= limit:
            if dist[p] == np.inf:
                touched[r] = p
                r += 1
            dist[p] = d0
            if distances:
                dm[p] = e_met[i, a]
            size = heap_set(hk, hv, hpos, size, p, d0)
    while size > 0:
        v, dv, size = heap_pop(hk, hv, hpos, size)
        if stall:
            stalled = False
            for e in range(st_ptr[v], st_ptr[v + 1]):
                if dist[st_idx[e]] + st_w[e] < dv:
                    stalled = True
                    break
            if stalled:
                continue
        settled[k] = v
        k += 1
        for e in range(ptr[v], ptr[v + 1]):
            u = idx[e]
            nd = dv + w[e]
            if nd < dist[u] and nd <= limit:
                if dist[u] == np.inf:
                    touched[r] = u
                    r += 1
                dist[u] = nd
                if distances:
                    dm[u] = dm[v] + m[e]
                size = heap_set(hk, hv, hpos, size, u, nd)
    return k, r


@numba.njit(cache=True)
def _count_spaces(
    ptr: Any,
    idx: Any,
    w: Any,
    m: Any,
    st_ptr: Any,
    st_idx: Any,
    st_w: Any,
    e_pos: Any,
    e_sec: Any,
    e_met: Any,
    items: Any,
    limit: float,
    stall: bool,
) -> Any:  # pragma: no cover - compiled
    """Bucket entries (settled, unstalled nodes) of the searches of ``items``."""
    n = ptr.shape[0] - 1
    dist = np.full(n, np.inf)
    dm = np.zeros(0)
    hk = np.empty(n)
    hv = np.empty(n, np.int64)
    hpos = np.full(n, -1, np.int64)
    touched = np.empty(n, np.int64)
    settled = np.empty(n, np.int64)
    out = np.empty(items.shape[0], np.int64)
    for j in range(items.shape[0]):
        k, r = _search(
            ptr, idx, w, m, st_ptr, st_idx, st_w, e_pos, e_sec, e_met, items[j],
            limit, stall, False, dist, dm, hk, hv, hpos, touched, settled,
        )  # fmt: skip
        out[j] = k
        for a in range(r):
            dist[touched[a]] = np.inf
    return out


@numba.njit(cache=True, parallel=True)
def _fill_buckets(
    ptr: Any,
    idx: Any,
    w: Any,
    m: Any,
    st_ptr: Any,
    st_idx: Any,
    st_w: Any,
    e_pos: Any,
    e_sec: Any,
    e_met: Any,
    limit: float,
    stall: bool,
    distances: bool,
    start: Any,
    cap: Any,
    ent_node: Any,
    ent_item: Any,
    ent_dist: Any,
    ent_met: Any,
    used: Any,
) -> None:  # pragma: no cover - compiled
    """Bucket entries of every point, chunk ``c`` writing from ``start[c]``.

    A chunk writes at most ``cap[c]`` entries and reports in ``used[c]`` how many it has
    (more than ``cap[c]`` means the arrays were too small and the call must be repeated).
    """
    n = ptr.shape[0] - 1
    nb = e_pos.shape[0]
    n_chunks = start.shape[0]
    for c in prange(n_chunks):
        j0 = c * nb // n_chunks
        j1 = (c + 1) * nb // n_chunks
        dist = np.full(n, np.inf)
        dm = np.zeros(n if distances else 0)
        hk = np.empty(n)
        hv = np.empty(n, np.int64)
        hpos = np.full(n, -1, np.int64)
        touched = np.empty(n, np.int64)
        settled = np.empty(n, np.int64)
        pos = start[c]
        end = start[c] + cap[c]
        for j in range(j0, j1):
            k, r = _search(
                ptr, idx, w, m, st_ptr, st_idx, st_w, e_pos, e_sec, e_met, j,
                limit, stall, distances, dist, dm, hk, hv, hpos, touched, settled,
            )  # fmt: skip
            for a in range(k):
                if pos < end:
                    v = settled[a]
                    ent_node[pos] = v
                    ent_item[pos] = j
                    ent_dist[pos] = dist[v]
                    if distances:
                        ent_met[pos] = dm[v]
                pos += 1
            for a in range(r):
                dist[touched[a]] = np.inf
        used[c] = pos - start[c]


@numba.njit(cache=True)
def _bucket_csr(
    n: int,
    start: Any,
    used: Any,
    ent_node: Any,
    ent_item: Any,
    ent_dist: Any,
    ent_met: Any,
    distances: bool,
) -> tuple[Any, Any, Any, Any]:  # pragma: no cover - compiled
    """Counting sort of the entries by node; each bucket keeps the order of the points."""
    ptr = np.zeros(n + 1, np.int64)
    for c in range(start.shape[0]):
        for e in range(start[c], start[c] + used[c]):
            ptr[ent_node[e] + 1] += 1
    for v in range(n):
        ptr[v + 1] += ptr[v]
    total = ptr[n]
    item = np.empty(total, np.int32)
    bd = np.empty(total)
    bm = np.empty(total if distances else 0)
    fill = ptr[:n].copy()
    for c in range(start.shape[0]):
        for e in range(start[c], start[c] + used[c]):
            v = ent_node[e]
            f = fill[v]
            item[f] = ent_item[e]
            bd[f] = ent_dist[e]
            if distances:
                bm[f] = ent_met[e]
            fill[v] = f + 1
    return ptr, item, bd, bm


@numba.njit(cache=True)
def _densify(
    b_ptr: Any, b_item: Any, b_dist: Any, b_met: Any, heavy: Any, nb: int, distances: bool
) -> tuple[Any, Any]:  # pragma: no cover - compiled
    """The buckets of the ``heavy`` nodes as ``(len(heavy), nb)`` rows (``inf`` = no entry)."""
    dense = np.full((heavy.shape[0], nb), np.inf)
    dense_met = np.full((heavy.shape[0] if distances else 0, nb), np.inf)
    for k in range(heavy.shape[0]):
        v = heavy[k]
        for e in range(b_ptr[v], b_ptr[v + 1]):
            dense[k, b_item[e]] = b_dist[e]
            if distances:
                dense_met[k, b_item[e]] = b_met[e]
    return dense, dense_met


@numba.njit(cache=True)
def _scan_search(
    ptr: Any,
    idx: Any,
    w: Any,
    m: Any,
    st_ptr: Any,
    st_idx: Any,
    st_w: Any,
    e_pos: Any,
    e_sec: Any,
    e_met: Any,
    i: int,
    b_ptr: Any,
    b_item: Any,
    b_dist: Any,
    b_met: Any,
    dense_id: Any,
    dense: Any,
    dense_met: Any,
    limit: float,
    stall: bool,
    distances: bool,
    dist: Any,
    dm: Any,
    hk: Any,
    hv: Any,
    hpos: Any,
    touched: Any,
    row: Any,
    rowm: Any,
) -> int:  # pragma: no cover - compiled
    """The search of point ``i`` scanning buckets into ``row``/``rowm`` (set to ``inf`` first).

    It stops once the smallest label left is no shorter than every cell of the row (no later
    meeting node can improve one). Returns how many positions of ``touched`` to reset.
    """
    nb = row.shape[0]
    row[:] = np.inf
    worst = np.inf  # an upper bound of the row's maximum (cells only decrease)
    work = 0  # bucket entries scanned since ``worst`` was computed
    size = 0
    r = 0
    for a in range(e_pos.shape[1]):
        p = e_pos[i, a]
        if p < 0:
            continue
        d0 = e_sec[i, a]
        if d0 < dist[p] and d0 <= limit:
            if dist[p] == np.inf:
                touched[r] = p
                r += 1
            dist[p] = d0
            if distances:
                dm[p] = e_met[i, a]
            size = heap_set(hk, hv, hpos, size, p, d0)
    while size > 0:
        v, dv, size = heap_pop(hk, hv, hpos, size)
        if work >= nb:  # refresh the bound, amortised over the entries scanned
            worst = row.max()
            work = 0
        if dv >= worst:
            break
        if stall:
            stalled = False
            for e in range(st_ptr[v], st_ptr[v + 1]):
                if dist[st_idx[e]] + st_w[e] < dv:
                    stalled = True
                    break
            if stalled:
                continue
        k = dense_id[v]
        if k >= 0:  # a dense bucket: one vectorised pass over the row
            work += nb
            if distances:
                mv = dm[v]
                for j in range(nb):
                    val = dv + dense[k, j]
                    old = row[j]
                    rowm[j] = mv + dense_met[k, j] if val < old else rowm[j]
                    row[j] = min(old, val)
            else:
                for j in range(nb):
                    row[j] = min(row[j], dv + dense[k, j])
            b0 = b1 = 0
        else:
            b0 = b_ptr[v]
            b1 = b_ptr[v + 1]
        work += b1 - b0
        # branch-free updates: whether an entry improves its cell is unpredictable
        if distances:
            mv = dm[v]
            for e in range(b0, b1):
                j = b_item[e]
                val = dv + b_dist[e]
                old = row[j]
                rowm[j] = mv + b_met[e] if val < old else rowm[j]
                row[j] = min(old, val)
        else:
            for e in range(b0, b1):
                j = b_item[e]
                row[j] = min(row[j], dv + b_dist[e])
        for e in range(ptr[v], ptr[v + 1]):
            u = idx[e]
            nd = dv + w[e]
            if nd < dist[u] and nd <= limit:
                if dist[u] == np.inf:
                    touched[r] = u
                    r += 1
                dist[u] = nd
                if distances:
                    dm[u] = dm[v] + m[e]
                size = heap_set(hk, hv, hpos, size, u, nd)
    for a in range(size):
        hpos[hv[a]] = -1
    return r


@numba.njit(cache=True, parallel=True)
def _scan_all(
    ptr: Any,
    idx: Any,
    w: Any,
    m: Any,
    st_ptr: Any,
    st_idx: Any,
    st_w: Any,
    e_pos: Any,
    e_sec: Any,
    e_met: Any,
    b_ptr: Any,
    b_item: Any,
    b_dist: Any,
    b_met: Any,
    dense_id: Any,
    dense: Any,
    dense_met: Any,
    n_items: int,
    limit: float,
    stall: bool,
    distances: bool,
    n_chunks: int,
) -> tuple[Any, Any]:  # pragma: no cover - compiled
    """One search per point, scanning the buckets of the nodes it settles: one row each."""
    n = ptr.shape[0] - 1
    ns = e_pos.shape[0]
    out = np.full((ns, n_items), np.inf, np.float32)
    outm = np.full((ns, n_items) if distances else (0, 0), np.inf, np.float32)
    for c in prange(n_chunks):
        i0 = c * ns // n_chunks
        i1 = (c + 1) * ns // n_chunks
        dist = np.full(n, np.inf)
        dm = np.zeros(n if distances else 0)
        hk = np.empty(n)
        hv = np.empty(n, np.int64)
        hpos = np.full(n, -1, np.int64)
        touched = np.empty(n, np.int64)
        row = np.empty(n_items)
        rowm = np.empty(n_items if distances else 0)
        for i in range(i0, i1):
            r = _scan_search(
                ptr, idx, w, m, st_ptr, st_idx, st_w, e_pos, e_sec, e_met, i,
                b_ptr, b_item, b_dist, b_met, dense_id, dense, dense_met, limit, stall, distances,
                dist, dm, hk, hv, hpos, touched, row, rowm,
            )  # fmt: skip
            for a in range(r):
                dist[touched[a]] = np.inf
            for j in range(n_items):
                if row[j] <= limit:
                    out[i, j] = row[j]
                    if distances:
                        outm[i, j] = rowm[j]
    return out, outm


# ------------------------------------------------------------------------- driver
def _entries(h: HierarchyArrays, name: str, node: np.ndarray, *offsets: np.ndarray) -> Any:
    """Entry positions (``-1`` = none) and float64 offsets of one side, validated."""
    node = np.asarray(node)
    if node.ndim != 2:
        raise InvalidArgumentError(
            f"{name}_node must be a 2-d array (points x entry nodes), got {node.shape}"
        )
    if node.size and node.max() >= h.n_nodes:
        raise InvalidArgumentError(f"{name}_node must be graph nodes in [0, {h.n_nodes}) or -1")
    pos = np.where(node >= 0, h.pos[np.clip(node, 0, None)], -1).astype(np.int64)
    out = []
    for label, arr in zip(("seconds", "metres"), offsets, strict=True):
        a = np.ascontiguousarray(arr, dtype=np.float64)
        if a.shape != node.shape:
            raise InvalidArgumentError(
                f"{name}_{label} must have the shape of {name}_node {node.shape}, got {a.shape}"
            )
        out.append(a)
    return pos, out[0], out[1]


def bucket_table(
    h: HierarchyArrays,
    s_node: np.ndarray,
    s_seconds: np.ndarray,
    s_metres: np.ndarray,
    t_node: np.ndarray,
    t_seconds: np.ndarray,
    t_metres: np.ndarray,
    *,
    cutoff: float | None = None,
    distances: bool = False,
    n_jobs: int | None = None,
    stall: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Table between points entering/leaving the graph at up to ``k`` nodes, by buckets.

    The same inputs and answers as :meth:`roadnet.ch.Hierarchy.table`: ``s_node[i, a]`` is a
    graph node source ``i`` reaches after ``s_seconds[i, a]`` seconds and ``s_metres[i, a]``
    metres (``-1`` = none), ``t_node[j, b]`` a node target ``j`` is reached from, plus
    ``t_seconds[j, b]``; the result is ``min_ab s_seconds + d(s_node, t_node) + t_seconds``.

    Parameters
    ----------
    h
        The contraction hierarchy.
    s_node, s_seconds, s_metres
        ``(ns, k)`` entry nodes of the sources and the offsets to reach them.
    t_node, t_seconds, t_metres
        ``(nt, k')`` nodes the targets are reached from and the offsets from them.
    cutoff
        Seconds; longer times are ``inf``.
    distances
        Also return metres along the fastest routes.
    n_jobs
        Threads (-1 or ``None`` = all cores).
    stall
        Stall-on-demand in both searches (the answers are the same either way).

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray or None)
        ``(ns, nt)`` float32 seconds (``inf`` = no route) and metres (or ``None``).

    Examples
    --------
    >>> h = build_hierarchy(graph)  # doctest: +SKIP
    >>> node = np.array([[0, -1], [1, 2]])  # doctest: +SKIP
    >>> off = np.array([[0.0, np.nan], [3.5, 1.0]])  # doctest: +SKIP
    >>> sec, _ = bucket_table(h, node, off, off, node, off, off)  # doctest: +SKIP
    """
    threads = resolve_threads(n_jobs)
    sp, s_sec, s_met = _entries(h, "s", s_node, s_seconds, s_metres)
    tp, t_sec, t_met = _entries(h, "t", t_node, t_seconds, t_metres)
    ns, nt = sp.shape[0], tp.shape[0]
    if ns == 0 or nt == 0:
        empty = np.full((ns, nt), np.inf, np.float32)
        return empty, (empty.copy() if distances else None)
    limit = np.inf if cutoff is None else float(cutoff)
    up = (h.up_indptr, h.up_indices, h.up_seconds, h.up_metres)
    down = (h.down_indptr, h.down_indices, h.down_seconds, h.down_metres)
    t0 = time.perf_counter()
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, threads))
    try:
        if nt <= ns:  # targets fill the buckets (backward searches), sources scan
            sec, met, entries = _bucket_query(
                down, up, (tp, t_sec, t_met), (sp, s_sec, s_met), limit, distances, stall,
                threads, h.n_nodes,
            )  # fmt: skip
        else:  # the sources fill the buckets, the targets scan backwards
            sec_t, met_t, entries = _bucket_query(
                up, down, (sp, s_sec, s_met), (tp, t_sec, t_met), limit, distances, stall,
                threads, h.n_nodes,
            )  # fmt: skip
            sec = np.ascontiguousarray(sec_t.T)
            met = np.ascontiguousarray(met_t.T)
    finally:
        numba.set_num_threads(previous)
    log.debug(
        "CH bucket table %dx%d (%s bucketed, %d entries) in %.3f s",
        ns,
        nt,
        "targets" if nt <= ns else "sources",
        entries,
        time.perf_counter() - t0,
    )
    return sec, (met if distances else None)


def _bucket_query(
    fill: _Arcs,
    scan: _Arcs,
    bucketed: tuple[np.ndarray, np.ndarray, np.ndarray],
    scanning: tuple[np.ndarray, np.ndarray, np.ndarray],
    limit: float,
    distances: bool,
    stall: bool,
    threads: int,
    n: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Buckets of ``bucketed`` searched over ``fill``, then rows of ``scanning`` over ``scan``.

    The stall arcs of a search are the arcs of the other direction. Returns the
    ``(len(scanning), len(bucketed))`` seconds and metres and the number of bucket entries.
    """
    b_pos, b_sec, b_met = bucketed
    nb = b_pos.shape[0]
    n_chunks = max(1, min(nb, threads * 4))
    # size the entry arrays from a sample of search spaces (refilled when too small)
    rng = np.random.default_rng(0)
    sample = rng.choice(nb, min(nb, _SAMPLE), replace=False).astype(np.int64)
    f_ptr, f_idx, f_w, f_m = fill
    c_ptr, c_idx, c_w, c_m = scan
    sizes = _count_spaces(
        f_ptr, f_idx, f_w, f_m, c_ptr, c_idx, c_w, b_pos, b_sec, b_met, sample, limit, stall
    )
    per_point = 1.25 * float(sizes.mean()) + 8.0
    bounds = np.arange(n_chunks + 1) * nb // n_chunks
    cap = (np.diff(bounds) * per_point).astype(np.int64) + int(sizes.max())
    used = np.zeros(n_chunks, np.int64)
    for _attempt in range(2):
        start = np.concatenate([[0], np.cumsum(cap)[:-1]]).astype(np.int64)
        total = int(cap.sum())
        ent_node = np.empty(total, np.int32)
        ent_item = np.empty(total, np.int32)
        ent_dist = np.empty(total)
        ent_met = np.empty(total if distances else 0)
        _fill_buckets(
            f_ptr, f_idx, f_w, f_m, c_ptr, c_idx, c_w, b_pos, b_sec, b_met,
            limit, stall, distances, start, cap, ent_node, ent_item, ent_dist, ent_met, used,
        )  # fmt: skip
        if (used <= cap).all():
            break
        log.debug("bucket arrays too small (%d > %d entries): refilled", used.sum(), total)
        cap = used.copy()
    b_ptr, b_item, b_dist, b_mm = _bucket_csr(
        n, start, used, ent_node, ent_item, ent_dist, ent_met, distances
    )
    del ent_node, ent_item, ent_dist, ent_met
    # the largest buckets (the top of the hierarchy) as dense rows
    counts = np.diff(b_ptr)
    heavy = np.flatnonzero(counts >= max(2.0, _DENSE_SHARE * nb))
    if heavy.shape[0] * nb > _DENSE_CELLS:
        heavy = np.sort(heavy[np.argsort(counts[heavy])[::-1][: _DENSE_CELLS // nb]])
    dense_id = np.full(n, -1, np.int64)
    dense_id[heavy] = np.arange(heavy.shape[0])
    dense, dense_met = _densify(b_ptr, b_item, b_dist, b_mm, heavy, nb, distances)
    s_pos, s_sec, s_met = scanning
    n_scan_chunks = max(1, min(s_pos.shape[0], threads * 4))
    sec, met = _scan_all(
        c_ptr, c_idx, c_w, c_m, f_ptr, f_idx, f_w, s_pos, s_sec, s_met,
        b_ptr, b_item, b_dist, b_mm, dense_id, dense, dense_met, nb,
        limit, stall, distances, n_scan_chunks,
    )  # fmt: skip
    return sec, met, int(b_ptr[-1])


def bucket_node_table(
    h: HierarchyArrays,
    sources: np.ndarray,
    targets: np.ndarray,
    *,
    cutoff: float | None = None,
    distances: bool = False,
    n_jobs: int | None = None,
    stall: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fastest times between graph nodes by buckets, like :meth:`Hierarchy.node_table`.

    Parameters
    ----------
    h
        The contraction hierarchy.
    sources, targets
        Graph node indices.
    cutoff
        Seconds; longer times are ``inf``.
    distances
        Also return metres along the fastest routes.
    n_jobs
        Threads (-1 or ``None`` = all cores).
    stall
        Stall-on-demand in both searches.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray or None)
        ``(len(sources), len(targets))`` float32 seconds and metres (or ``None``).

    Examples
    --------
    >>> h = build_hierarchy(graph)  # doctest: +SKIP
    >>> seconds, _ = bucket_node_table(h, np.array([0, 1]), np.array([2, 3]))  # doctest: +SKIP
    """
    src = np.asarray(sources, dtype=np.int64)
    tgt = np.asarray(targets, dtype=np.int64)
    for name, arr in (("sources", src), ("targets", tgt)):
        if arr.ndim != 1 or (arr.size and (arr.min() < 0 or arr.max() >= h.n_nodes)):
            raise InvalidArgumentError(f"{name} must be node indices in [0, {h.n_nodes})")
    zeros_s = np.zeros((src.shape[0], 1))
    zeros_t = np.zeros((tgt.shape[0], 1))
    return bucket_table(
        h,
        src[:, None],
        zeros_s,
        zeros_s,
        tgt[:, None],
        zeros_t,
        zeros_t,
        cutoff=cutoff,
        distances=distances,
        n_jobs=n_jobs,
        stall=stall,
    )
