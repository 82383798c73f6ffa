"""Small drive-time tables on a contraction hierarchy in one compiled call, without a heap.

A routing service answers many small tables (10 x 10 to a few hundred points a side), one per
request; each must cost as little CPU as possible, and a table's answer must not depend on the
method. :meth:`roadnet.ch.Hierarchy.table` answers them here, in one serial numba call that
allocates nothing of the graph's size (the per-node scratch arrays live in a :class:`Workspace`
that is reused from call to call and left clean), for tables of seconds only.

The method is RPHAST (Delling, Goldberg & Werneck 2011, see :mod:`roadnet.ch`) with its
per-source upward *Dijkstra* replaced by an upward *sweep*, as in the downward phase:

1. select ``S``, every position reachable from the sources' entry positions over ``up`` arcs
   (all lead to smaller positions), and ``T``, every position from which a target's exit
   position is reached over ``down`` arcs;
2. for a batch of ``batch`` sources at once, seed each source's labels with its entry seconds
   and sweep ``S`` in *decreasing* position order, relaxing the upward arcs:
   ``d(q) = min(d(q), d(p) + w(p, q))`` for ``p -> q``, ``q < p``; a label above ``limit`` is
   never set (the Dijkstra's pruning);
3. copy the labels of ``S`` ∩ ``T`` to the downward labels and sweep ``T`` in *increasing*
   position order over the downward arcs (exactly the downward phase of :mod:`roadnet.ch`);
4. read each target's label (plus its exit seconds) at its exit positions.

Every arc into a position comes from a larger position (upward arcs) or a smaller one
(downward arcs), so each sweep sees a label only after all arcs into it were relaxed: a node's
upward label is the minimum over the same sums ``d(p) + w`` that the Dijkstra takes, computed in
the same order of additions, so the seconds are **bit-for-bit those of the Dijkstra-based
sweep** (a minimum does not depend on the order it is taken in). Road metres along the
fastest route are not computed here: on a tie of seconds the Dijkstra keeps the metres of the
first path it settles, which a sweep cannot reproduce, so tables with metres stay on the
Dijkstra-based kernel.

Per source the heap-based upward search settled ~160 nodes at ~200 ns each on Porto (35 µs);
the sweep relaxes the same arcs for ``batch`` sources at once, vectorised.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numba
import numpy as np

from roadnet.ch_kernels import HierarchyArrays

__all__ = ["Workspace", "sweep_table", "workspace"]


class Workspace:
    """Per-node scratch arrays of one query thread (left clean between calls).

    Parameters
    ----------
    n_nodes
        Nodes of the hierarchy the workspace serves.
    """

    def __init__(self, n_nodes: int) -> None:
        self.n_nodes = int(n_nodes)
        self.seen = np.zeros(-(-self.n_nodes // 8) * 8, np.uint8)  # whole 8-byte words
        self.local_s = np.full(self.n_nodes, -1, np.int64)
        self.local_t = np.full(self.n_nodes, -1, np.int64)
        self.stack = np.empty(self.n_nodes, np.int64)
        self.sel_s = np.empty(self.n_nodes, np.int64)
        self.sel_t = np.empty(self.n_nodes, np.int64)


_FREE: dict[int, list[Workspace]] = {}
_FREE_LOCK = threading.Lock()


@contextlib.contextmanager
def workspace(n_nodes: int) -> Iterator[Workspace]:
    """A clean :class:`Workspace` for ``n_nodes`` nodes, taken from a free list and put back
    afterwards (so there are never more than threads that query at the same time)."""
    with _FREE_LOCK:
        free = _FREE.get(n_nodes)
        ws = free.pop() if free else None
    if ws is None:
        ws = Workspace(n_nodes)
    yield ws  # after an error the arrays may not be clean: not put back
    with _FREE_LOCK:
        _FREE.setdefault(n_nodes, []).append(ws)


def sweep_table(
    h: HierarchyArrays,
    s_node: np.ndarray,
    s_seconds: np.ndarray,
    t_node: np.ndarray,
    t_seconds: np.ndarray,
    limit: float,
    batch: int = 32,
) -> np.ndarray:
    """Seconds between points that enter/leave the graph at up to ``k`` nodes each.

    The arguments are those of :meth:`roadnet.ch.Hierarchy.table` (``-1`` = no node);
    ``limit`` is the cutoff in seconds (``inf`` for none).

    Returns
    -------
    numpy.ndarray
        ``(len(s_node), len(t_node))`` float32 seconds, ``inf`` where there is no route within
        ``limit``; the values of the Dijkstra-based RPHAST of :mod:`roadnet.ch`, bit for bit.
    """
    s_node = np.ascontiguousarray(s_node, dtype=np.int64)
    t_node = np.ascontiguousarray(t_node, dtype=np.int64)
    s_sec = np.ascontiguousarray(s_seconds, dtype=np.float64)
    t_sec = np.ascontiguousarray(t_seconds, dtype=np.float64)
    with workspace(h.n_nodes) as ws:
        return _sweep_table(
            h.pos, h.up_indptr, h.up_indices, h.up_seconds,
            h.down_indptr, h.down_indices, h.down_seconds,
            s_node, s_sec, t_node, t_sec, float(limit), int(batch),
            ws.seen, ws.local_s, ws.local_t, ws.stack, ws.sel_s, ws.sel_t,
        )  # fmt: skip


@numba.njit(cache=True)
def _positions(pos: Any, node: Any) -> Any:  # pragma: no cover - compiled
    out = np.empty(node.shape, np.int64)
    for i in range(node.shape[0]):
        for a in range(node.shape[1]):
            v = node[i, a]
            out[i, a] = pos[v] if v >= 0 else -1
    return out


@numba.njit(cache=True)
def _select(
    indptr: Any, indices: Any, seeds: Any, seen: Any, local: Any, stack: Any, sel: Any
) -> int:  # pragma: no cover - compiled
    """List every position reachable from ``seeds`` over the arcs in ``sel``, in increasing
    order, and set ``local[sel[i]] = i``; returns their number. ``seen`` (all 0 before) is
    left all 0."""
    n = local.shape[0]
    count = 0
    top = 0
    for i in range(seeds.shape[0]):
        for a in range(seeds.shape[1]):
            s = seeds[i, a]
            if s >= 0 and seen[s] == 0:
                seen[s] = 1
                stack[top] = s
                top += 1
                count += 1
    while top > 0:
        top -= 1
        v = stack[top]
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            if seen[u] == 0:
                seen[u] = 1
                stack[top] = u
                top += 1
                count += 1
    # in increasing order: one pass over the marks, 8 at a time (`seen` is padded to a
    # multiple of 8 bytes), or sorting the few found on a large graph
    k = 0
    if count * 256 < n:
        top = 0
        for i in range(seeds.shape[0]):
            for a in range(seeds.shape[1]):
                s = seeds[i, a]
                if s >= 0 and seen[s] == 1:
                    seen[s] = 2
                    stack[top] = s
                    top += 1
        while top > 0:
            top -= 1
            v = stack[top]
            sel[k] = v
            k += 1
            for e in range(indptr[v], indptr[v + 1]):
                u = indices[e]
                if seen[u] == 1:
                    seen[u] = 2
                    stack[top] = u
                    top += 1
        sel[:count].sort()
        for i in range(count):
            seen[sel[i]] = 0
    else:
        words = seen.view(np.uint64)
        for w in range(words.shape[0]):
            if words[w] != 0:
                for v in range(8 * w, 8 * w + 8):
                    if seen[v] != 0:
                        sel[k] = v
                        k += 1
                words[w] = 0
    for i in range(count):
        local[sel[i]] = i
    return count


@numba.njit(cache=True)
def _restrict(
    sel: Any, r: int, local: Any, indptr: Any, indices: Any, w: Any
) -> Any:  # pragma: no cover - compiled
    """The arcs of the selected positions, heads renumbered to local indices."""
    ptr = np.zeros(r + 1, np.int64)
    for i in range(r):
        v = sel[i]
        ptr[i + 1] = ptr[i] + indptr[v + 1] - indptr[v]
    idx = np.empty(ptr[r], np.int64)
    lw = np.empty(ptr[r], np.float64)
    for i in range(r):
        v = sel[i]
        k = ptr[i]
        for e in range(indptr[v], indptr[v + 1]):
            idx[k] = local[indices[e]]
            lw[k] = w[e]
            k += 1
    return ptr, idx, lw


@numba.njit(cache=True)
def _sweeps(
    a_ptr: Any,
    a_idx: Any,
    a_w: Any,
    ra: int,
    b_ptr: Any,
    b_idx: Any,
    b_w: Any,
    rb: int,
    a_to_b: Any,
    seed_loc: Any,
    seed_sec: Any,
    read_loc: Any,
    read_sec: Any,
    limit: float,
    batch: int,
) -> Any:  # pragma: no cover - compiled
    """Steps 2-4 of the module docstring on local indices: search arcs ``a`` (pushed in
    decreasing order), sweep arcs ``b`` (pulled in increasing order)."""
    ns = seed_loc.shape[0]
    nt = read_loc.shape[0]
    out = np.full((ns, nt), np.inf, np.float32)
    # batches of equal width (a multiple of 4 lanes), at most `batch` sources each
    n_batches = (ns + batch - 1) // batch
    batch = ((ns + n_batches - 1) // n_batches + 3) // 4 * 4
    up = np.empty((ra, batch))
    lab = np.empty((rb, batch))
    bounded = limit < np.inf
    for s0 in range(0, ns, batch):
        k_n = min(batch, ns - s0)
        up[:, :] = np.inf
        lab[:, :] = np.inf
        for k in range(k_n):
            for a in range(seed_loc.shape[1]):
                p = seed_loc[s0 + k, a]
                if p < 0:
                    continue
                d0 = seed_sec[s0 + k, a]
                if d0 <= limit and d0 < up[p, k]:
                    up[p, k] = d0
        # upward: every arc into a position comes from a larger one
        for i in range(ra - 1, -1, -1):
            for e in range(a_ptr[i], a_ptr[i + 1]):
                u = a_idx[e]
                w = a_w[e]
                if bounded:
                    for k in range(batch):
                        val = up[i, k] + w
                        if val <= limit and val < up[u, k]:
                            up[u, k] = val
                else:
                    for k in range(batch):
                        up[u, k] = min(up[u, k], up[i, k] + w)
        for i in range(ra):
            j = a_to_b[i]
            if j >= 0:
                for k in range(batch):
                    lab[j, k] = up[i, k]
        # downward: every arc into a position comes from a smaller one
        for i in range(rb):
            for e in range(b_ptr[i], b_ptr[i + 1]):
                u = b_idx[e]
                w = b_w[e]
                for k in range(batch):
                    lab[i, k] = min(lab[i, k], lab[u, k] + w)
        for j in range(nt):
            for a in range(read_loc.shape[1]):
                lj = read_loc[j, a]
                if lj < 0:
                    continue
                tw = read_sec[j, a]
                for k in range(k_n):
                    val = lab[lj, k] + tw
                    if val <= limit and val < out[s0 + k, j]:
                        out[s0 + k, j] = val
    return out


@numba.njit(cache=True)
def _localise(local: Any, p: Any) -> Any:  # pragma: no cover - compiled
    out = np.empty(p.shape, np.int64)
    for i in range(p.shape[0]):
        for a in range(p.shape[1]):
            out[i, a] = local[p[i, a]] if p[i, a] >= 0 else -1
    return out


@numba.njit(cache=True, nogil=True)  # other threads run meanwhile
def _sweep_table(
    pos: Any,
    up_ptr: Any,
    up_idx: Any,
    up_w: Any,
    down_ptr: Any,
    down_idx: Any,
    down_w: Any,
    s_node: Any,
    s_sec: Any,
    t_node: Any,
    t_sec: Any,
    limit: float,
    batch: int,
    seen: Any,
    local_s: Any,
    local_t: Any,
    stack: Any,
    sel_s: Any,
    sel_t: Any,
) -> Any:  # pragma: no cover - compiled
    ns = s_node.shape[0]
    nt = t_node.shape[0]
    if ns == 0 or nt == 0:
        return np.full((ns, nt), np.inf, np.float32)
    sp = _positions(pos, s_node)
    tp = _positions(pos, t_node)
    rs = _select(up_ptr, up_idx, sp, seen, local_s, stack, sel_s)
    rt = _select(down_ptr, down_idx, tp, seen, local_t, stack, sel_t)
    # the direction of roadnet.ch's RPHAST: sweep the smaller total
    if ns * rt <= nt * rs:
        a_ptr, a_idx, a_w = _restrict(sel_s, rs, local_s, up_ptr, up_idx, up_w)
        b_ptr, b_idx, b_w = _restrict(sel_t, rt, local_t, down_ptr, down_idx, down_w)
        a_to_b = np.empty(rs, np.int64)
        for i in range(rs):
            a_to_b[i] = local_t[sel_s[i]]
        out = _sweeps(
            a_ptr, a_idx, a_w, rs, b_ptr, b_idx, b_w, rt, a_to_b,
            _localise(local_s, sp), s_sec, _localise(local_t, tp), t_sec, limit, batch,
        )  # fmt: skip
    else:  # from the targets backwards: down arcs upwards, then up arcs downwards
        a_ptr, a_idx, a_w = _restrict(sel_t, rt, local_t, down_ptr, down_idx, down_w)
        b_ptr, b_idx, b_w = _restrict(sel_s, rs, local_s, up_ptr, up_idx, up_w)
        a_to_b = np.empty(rt, np.int64)
        for i in range(rt):
            a_to_b[i] = local_s[sel_t[i]]
        out = np.ascontiguousarray(
            _sweeps(
                a_ptr, a_idx, a_w, rt, b_ptr, b_idx, b_w, rs, a_to_b,
                _localise(local_t, tp), t_sec, _localise(local_s, sp), s_sec, limit, batch,
            ).T
        )  # fmt: skip
    for i in range(rs):
        local_s[sel_s[i]] = -1
    for i in range(rt):
        local_t[sel_t[i]] = -1
    return out
