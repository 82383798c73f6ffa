"""Contraction hierarchies (CH) and many-to-many drive-time tables on them.

Preprocessing (Geisberger et al. 2008) contracts the nodes of a
:class:`~roadnet.graph.CompiledGraph` one by one in the order of a priority that is kept up to
date lazily: ``2 x edge quotient + original-edge quotient + level`` (added / removed arcs,
added / removed original arcs they stand for, and the node's depth in the hierarchy, as in
OSRM). Contracting ``v`` adds a shortcut ``u -> w`` for every pair of its neighbours whose
fastest connection runs through ``v``, decided by a bounded *witness search* (a Dijkstra from
``u`` that avoids ``v`` and settles at most ``settle_limit`` nodes; when it gives up, the
shortcut is added, which is never wrong, only superfluous). Shortcuts carry travel seconds
*and* metres of the two arcs they replace, so road distances come out of the same query.
That is the sequential build (``parallel=False``); the default contracts rounds of independent
nodes on all threads, on an adjacency array with slack, with priorities estimated by
hop-limited witnesses (:mod:`roadnet.ch_contract`).

Nodes are stored by *position* = ``n - 1 - rank`` (the most important node first), which
turns the downward sweep below into a forward scan of memory. Two CSR graphs are kept:

* ``up``: for position ``p``, the arcs ``p -> q`` to more important nodes (``q < p``);
* ``down``: for position ``q``, the arcs ``p -> q`` *from* more important nodes (``p < q``).

Many-to-many queries use RPHAST (Delling, Goldberg & Werneck 2011): the targets select the
part of the hierarchy that leads down to them (everything reachable from them over ``down``
backwards), and each source then runs a small upward Dijkstra over ``up`` followed by one
linear sweep over the selection in position order that relaxes the downward arcs. Sources are
swept in batches of ``batch`` at once (one pass over the arcs updates a row of ``batch``
labels, which the compiler vectorises) and batches run on all cores (numba threads). When
there are far more sources than targets, the roles swap: the sources select and each target
sweeps backwards. The bucket-based alternative (Knopp et al. 2007, OSRM's table) is in
:mod:`roadnet.ch_bucket`; both were measured (``scripts/bench_ch_query.py``) and neither wins
everywhere: RPHAST for small and one-sided tables, buckets for large square ones, so
:meth:`Hierarchy.table` picks by shape (:func:`bucket_pays`). Small tables of seconds (up to
:data:`SWEEP_MAX_CELLS` cells, e.g. a routing service's requests) run in
:mod:`roadnet.ch_sweep`: the same RPHAST with the upward Dijkstras replaced by a batched upward
sweep, in one serial call, with the same values bit for bit.

Results equal Dijkstra's on the original graph up to float rounding of sums taken in a
different order (float64 inside, float32 out); ``inf`` = no route.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import numba
import numpy as np
from numba import prange

from roadnet.ch_bucket import bucket_table
from roadnet.ch_contract import contract_rounds
from roadnet.ch_kernels import heap_pop, heap_set, node_priority, resolve_threads
from roadnet.ch_sweep import sweep_table
from roadnet.exceptions import InvalidArgumentError

__all__ = [
    "CH_FORMAT",
    "SWEEP_MAX_CELLS",
    "Hierarchy",
    "RoutingGraph",
    "bucket_pays",
    "build_hierarchy",
]

log = logging.getLogger(__name__)

CH_FORMAT = 1
"""Version of the stored hierarchy layout (part of its cache key)."""

ProgressCallback = Callable[[int, int], None]


class RoutingGraph(Protocol):
    """What a hierarchy is built from: a CSR graph of travel seconds and metres.

    :class:`~roadnet.graph.CompiledGraph` is one.
    """

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""

    @property
    def indptr(self) -> np.ndarray:
        """CSR row pointers."""

    @property
    def indices(self) -> np.ndarray:
        """Head node of each arc."""

    @property
    def seconds(self) -> np.ndarray:
        """Travel seconds of each arc."""

    @property
    def metres(self) -> np.ndarray:
        """Length of each arc in metres."""


_INF = np.inf


# ------------------------------------------------------------------------- contraction
@numba.njit(cache=True)
def _add_edge(
    u: int,
    v: int,
    w: float,
    m: float,
    h: int,
    ne: int,
    eu: Any,
    ev: Any,
    ew: Any,
    em: Any,
    eh: Any,
    onext: Any,
    ohead: Any,
    inext: Any,
    ihead: Any,
) -> int:  # pragma: no cover - compiled
    """Add arc ``u -> v`` or lower the existing one; returns the new arc count."""
    e = ohead[u]
    while e >= 0:
        if ev[e] == v:
            if w < ew[e]:
                ew[e] = w
                em[e] = m
                eh[e] = h
            return ne
        e = onext[e, 0]
    eu[ne] = u
    ev[ne] = v
    ew[ne] = w
    em[ne] = m
    eh[ne] = h
    onext[ne, 0] = ohead[u]
    onext[ne, 1] = -1
    if ohead[u] >= 0:
        onext[ohead[u], 1] = ne
    ohead[u] = ne
    inext[ne, 0] = ihead[v]
    inext[ne, 1] = -1
    if ihead[v] >= 0:
        inext[ihead[v], 1] = ne
    ihead[v] = ne
    return ne + 1


@numba.njit(cache=True)
def _unlink(e: int, node: int, nxt: Any, head: Any) -> None:  # pragma: no cover - compiled
    """Remove arc ``e`` from the (doubly linked) arc list of ``node``."""
    prev = nxt[e, 1]
    after = nxt[e, 0]
    if prev >= 0:
        nxt[prev, 0] = after
    else:
        head[node] = after
    if after >= 0:
        nxt[after, 1] = prev


@numba.njit(cache=True)
def _detach(v: int, eu: Any, ev: Any, onext: Any, ohead: Any, inext: Any, ihead: Any) -> None:
    """Take the arcs of a contracted node out of its neighbours' lists (its own stay)."""
    e = ohead[v]
    while e >= 0:
        _unlink(e, ev[e], inext, ihead)
        e = onext[e, 0]
    e = ihead[v]
    while e >= 0:
        _unlink(e, eu[e], onext, ohead)
        e = inext[e, 0]


@numba.njit(cache=True)
def _process(
    v: int,
    mode: int,
    limit: int,
    ne: int,
    eu: Any,
    ev: Any,
    ew: Any,
    em: Any,
    eh: Any,
    onext: Any,
    ohead: Any,
    inext: Any,
    ihead: Any,
    done: Any,
    dist: Any,
    hk: Any,
    hv: Any,
    hpos: Any,
    touched: Any,
    is_t: Any,
    su: Any,
    sv: Any,
    sw: Any,
    sm: Any,
    sh: Any,
    ridx: Any,
    lim: int,
) -> tuple[int, int, int, int, int]:  # pragma: no cover - compiled
    """Simulate (``mode=0``), perform (``mode=1``) or record (``mode=2``) the contraction of
    ``v``. Witness searches avoid ``v`` and every ``done`` node.

    ``mode=1`` adds the shortcuts to the arc lists; ``mode=2`` writes them to ``su, sv, sw,
    sm, sh`` from index ``ne`` on (read-only on the graph, so several nodes may be recorded
    at once by different threads with their own workspaces). Returns ``(shortcuts, shortcut
    hops, removed arcs, removed hops, new arc count or record end)``.

    With ``lim > 0`` the witness searches also avoid the nodes ``b`` with
    ``0 <= ridx[b] < lim``: the nodes of the same parallel round that come before ``v``.
    """
    # live neighbours
    n_out = 0
    e = ohead[v]
    while e >= 0:
        if not done[ev[e]] and ev[e] != v:
            n_out += 1
        e = onext[e, 0]
    out_x = np.empty(n_out, np.int64)
    out_w = np.empty(n_out, np.float64)
    out_m = np.empty(n_out, np.float64)
    out_h = np.empty(n_out, np.int64)
    k = 0
    removed = 0
    removed_h = 0
    e = ohead[v]
    while e >= 0:
        x = ev[e]
        if not done[x] and x != v:
            out_x[k] = x
            out_w[k] = ew[e]
            out_m[k] = em[e]
            out_h[k] = eh[e]
            removed += 1
            removed_h += eh[e]
            k += 1
        e = onext[e, 0]
    added = 0
    added_h = 0
    e_in = ihead[v]
    while e_in >= 0:
        u = eu[e_in]
        if done[u] or u == v:
            e_in = inext[e_in, 0]
            continue
        removed += 1
        removed_h += eh[e_in]
        w_uv = ew[e_in]
        # bound of the witness search
        bound = -1.0
        for j in range(n_out):
            if out_x[j] != u and w_uv + out_w[j] > bound:
                bound = w_uv + out_w[j]
        if bound < 0:
            e_in = inext[e_in, 0]
            continue
        # the targets: the search may stop once all are settled
        remaining = 0
        for j in range(n_out):
            x = out_x[j]
            if x != u and not is_t[x]:
                is_t[x] = True
                remaining += 1
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
            if settled > limit:
                break
            f = ohead[a]
            while f >= 0:
                b = ev[f]
                if b != v and not done[b] and not (lim > 0 and 0 <= ridx[b] < lim):
                    nd = da + ew[f]
                    if nd < dist[b]:
                        if dist[b] == _INF:
                            touched[nt] = b
                            nt += 1
                        dist[b] = nd
                        size = heap_set(hk, hv, hpos, size, b, nd)
                f = onext[f, 0]
        for j in range(n_out):
            x = out_x[j]
            if x == u:
                continue
            via = w_uv + out_w[j]
            if dist[x] > via:
                added += 1
                added_h += eh[e_in] + out_h[j]
                if mode == 1:
                    ne = _add_edge(
                        u, x, via, em[e_in] + out_m[j], eh[e_in] + out_h[j],
                        ne, eu, ev, ew, em, eh, onext, ohead, inext, ihead,
                    )  # fmt: skip
                elif mode == 2:
                    su[ne] = u
                    sv[ne] = x
                    sw[ne] = via
                    sm[ne] = em[e_in] + out_m[j]
                    sh[ne] = eh[e_in] + out_h[j]
                    ne += 1
        # reset the workspace
        for j in range(n_out):
            is_t[out_x[j]] = False
        for t in range(nt):
            dist[touched[t]] = _INF
        for t in range(size):
            hpos[hv[t]] = -1
        e_in = inext[e_in, 0]
    return added, added_h, removed, removed_h, ne


@numba.njit(cache=True)
def _degree_product(
    v: int, ev: Any, eu: Any, onext: Any, ohead: Any, inext: Any, ihead: Any, done: Any
) -> int:  # pragma: no cover
    n_out = 0
    e = ohead[v]
    while e >= 0:
        if not done[ev[e]]:
            n_out += 1
        e = onext[e, 0]
    n_in = 0
    e = ihead[v]
    while e >= 0:
        if not done[eu[e]]:
            n_in += 1
        e = inext[e, 0]
    return n_in * n_out


@numba.njit(cache=True)
def _contract_steps(
    max_steps: int,
    sim_limit: int,
    limit: int,
    ne: int,
    r: int,
    eu: Any,
    ev: Any,
    ew: Any,
    em: Any,
    eh: Any,
    onext: Any,
    ohead: Any,
    inext: Any,
    ihead: Any,
    done: Any,
    level: Any,
    rank: Any,
    qk: Any,
    qv: Any,
    qpos: Any,
    qsize: int,
    dist: Any,
    hk: Any,
    hv: Any,
    hpos: Any,
    touched: Any,
    is_t: Any,
) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """Contract up to ``max_steps`` nodes; returns ``(ne, r, qsize, status)``.

    ``status`` is 0 when the queue is empty, 1 when ``max_steps`` were done, 2 when the arc
    arrays need to grow before the next node (the node is back in the queue).
    """
    cap = eu.shape[0]
    steps = 0
    no_round = np.empty(0, np.int64)
    while qsize > 0:
        if steps >= max_steps:
            return ne, r, qsize, 1
        v, key, qsize = heap_pop(qk, qv, qpos, qsize)
        a, ah, rm, rh, _ = _process(
            v, 0, sim_limit, ne, eu, ev, ew, em, eh, onext, ohead, inext, ihead,
            done, dist, hk, hv, hpos, touched, is_t, eu, ev, ew, em, eh, no_round, 0,
        )  # fmt: skip
        prio = node_priority(a, ah, rm, rh, level[v])
        if qsize > 0 and prio > qk[0]:
            qsize = heap_set(qk, qv, qpos, qsize, v, prio)
            continue
        if ne + _degree_product(v, ev, eu, onext, ohead, inext, ihead, done) > cap:
            qsize = heap_set(qk, qv, qpos, qsize, v, key)
            return ne, r, qsize, 2
        _, _, _, _, ne = _process(
            v, 1, limit, ne, eu, ev, ew, em, eh, onext, ohead, inext, ihead,
            done, dist, hk, hv, hpos, touched, is_t, eu, ev, ew, em, eh, no_round, 0,
        )  # fmt: skip
        done[v] = True
        _detach(v, eu, ev, onext, ohead, inext, ihead)
        rank[v] = r
        r += 1
        steps += 1
        # neighbours: deeper level, fresh priority
        for side in range(2):
            e = ohead[v] if side == 0 else ihead[v]
            while e >= 0:
                x = ev[e] if side == 0 else eu[e]
                if not done[x] and qpos[x] >= 0:
                    if level[x] < level[v] + 1:
                        level[x] = level[v] + 1
                    a, ah, rm, rh, _ = _process(
                        x, 0, sim_limit, ne, eu, ev, ew, em, eh, onext, ohead, inext,
                        ihead, done, dist, hk, hv, hpos, touched, is_t, eu, ev, ew, em, eh,
                        no_round, 0,
                    )  # fmt: skip
                    qsize = heap_set(qk, qv, qpos, qsize, x, node_priority(a, ah, rm, rh, level[x]))
                e = onext[e, 0] if side == 0 else inext[e, 0]
    return ne, r, qsize, 0


@numba.njit(cache=True)
def _initial_queue(
    n: int,
    sim_limit: int,
    ne: int,
    eu: Any,
    ev: Any,
    ew: Any,
    em: Any,
    eh: Any,
    onext: Any,
    ohead: Any,
    inext: Any,
    ihead: Any,
    done: Any,
    qk: Any,
    qv: Any,
    qpos: Any,
    dist: Any,
    hk: Any,
    hv: Any,
    hpos: Any,
    touched: Any,
    is_t: Any,
) -> int:  # pragma: no cover - compiled
    qsize = 0
    no_round = np.empty(0, np.int64)
    for v in range(n):
        a, ah, rm, rh, _ = _process(
            v, 0, sim_limit, ne, eu, ev, ew, em, eh, onext, ohead, inext, ihead,
            done, dist, hk, hv, hpos, touched, is_t, eu, ev, ew, em, eh, no_round, 0,
        )  # fmt: skip
        qsize = heap_set(qk, qv, qpos, qsize, v, node_priority(a, ah, rm, rh, 0))
    return qsize


@numba.njit(cache=True)
def _load_arcs(
    indptr: Any,
    indices: Any,
    seconds: Any,
    metres: Any,
    eu: Any,
    ev: Any,
    ew: Any,
    em: Any,
    eh: Any,
    onext: Any,
    ohead: Any,
    inext: Any,
    ihead: Any,
) -> int:  # pragma: no cover - compiled
    ne = 0
    for u in range(indptr.shape[0] - 1):
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if v != u:
                ne = _add_edge(
                    u, v, float(seconds[e]), float(metres[e]), 1,
                    ne, eu, ev, ew, em, eh, onext, ohead, inext, ihead,
                )  # fmt: skip
    return ne


# ------------------------------------------------------------------------- the hierarchy
@dataclasses.dataclass(frozen=True, eq=False)
class Hierarchy:
    """A contraction hierarchy of a road graph, ready for many-to-many queries.

    Attributes
    ----------
    n_nodes
        Nodes of the graph.
    pos
        ``(n,)`` position of each graph node in the hierarchy (0 = most important).
    up_indptr, up_indices, up_seconds, up_metres
        Upward arcs by position: ``p -> q`` with ``q < p``, grouped by ``p``.
    down_indptr, down_indices, down_seconds, down_metres
        Downward arcs grouped by their head: for ``q``, the ``p < q`` with an arc ``p -> q``.
    meta
        Graph key, build parameters, counts and build seconds.
    """

    n_nodes: int
    pos: np.ndarray
    up_indptr: np.ndarray
    up_indices: np.ndarray
    up_seconds: np.ndarray
    up_metres: np.ndarray
    down_indptr: np.ndarray
    down_indices: np.ndarray
    down_seconds: np.ndarray
    down_metres: np.ndarray
    meta: dict[str, Any]

    _ARRAYS = (
        "pos",
        "up_indptr",
        "up_indices",
        "up_seconds",
        "up_metres",
        "down_indptr",
        "down_indices",
        "down_seconds",
        "down_metres",
    )

    @property
    def n_arcs(self) -> int:
        """Arcs of the hierarchy (original arcs and shortcuts)."""
        return int(self.up_indices.shape[0] + self.down_indices.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store (see :meth:`from_arrays`)."""
        return {name: getattr(self, name) for name in self._ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Hierarchy:
        """Rebuild a hierarchy from :meth:`arrays` and its ``meta``."""
        fields = {name: np.ascontiguousarray(arrays[name]) for name in cls._ARRAYS}
        return cls(n_nodes=int(fields["pos"].shape[0]), meta=dict(meta), **fields)

    def node_table(
        self,
        sources: np.ndarray,
        targets: np.ndarray,
        *,
        cutoff: float | None = None,
        distances: bool = False,
        n_jobs: int | None = None,
        batch: int = 16,
        method: str = "auto",
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Fastest times between graph nodes, ``(len(sources), len(targets))`` float32.

        Parameters
        ----------
        sources, targets
            Graph node indices.
        cutoff
            Seconds; longer times are ``inf``.
        distances
            Also return metres along the fastest routes.
        n_jobs
            Threads (-1 or ``None`` = all cores).
        batch
            Sources swept together.
        method
            ``"rphast"``, ``"bucket"`` or ``"auto"`` (see :meth:`table`).

        Returns
        -------
        tuple of (numpy.ndarray, numpy.ndarray or None)
            Seconds and metres (or ``None``).
        """
        src = np.asarray(sources, dtype=np.int64)
        tgt = np.asarray(targets, dtype=np.int64)
        for name, arr in (("sources", src), ("targets", tgt)):
            if arr.ndim != 1 or (arr.size and (arr.min() < 0 or arr.max() >= self.n_nodes)):
                raise InvalidArgumentError(f"{name} must be node indices in [0, {self.n_nodes})")
        zeros_s = np.zeros((src.shape[0], 2))
        zeros_t = np.zeros((tgt.shape[0], 2))
        s_node = np.full((src.shape[0], 2), -1, np.int64)
        t_node = np.full((tgt.shape[0], 2), -1, np.int64)
        s_node[:, 0] = src
        t_node[:, 0] = tgt
        return self.table(
            s_node,
            zeros_s,
            zeros_s,
            t_node,
            zeros_t,
            zeros_t,
            cutoff=cutoff,
            distances=distances,
            n_jobs=n_jobs,
            batch=batch,
            method=method,
        )

    def table(
        self,
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
        batch: int = 16,
        method: str = "auto",
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Table between points that enter/leave the graph at up to ``k`` nodes each.

        ``s_node[i, a]`` is a graph node source ``i`` reaches after ``s_seconds[i, a]``
        (``-1`` = none); ``t_node[j, b]`` a node target ``j`` is reached from, plus
        ``t_seconds[j, b]``. The result is ``min_ab s_seconds + d(s_node, t_node) +
        t_seconds``, as with virtual source/target nodes in Dijkstra.

        ``method``: ``"rphast"`` (the sweeps of the module docstring), ``"bucket"``
        (:func:`roadnet.ch_bucket.bucket_table`) or ``"auto"``: buckets when both sides are
        large (:func:`bucket_pays`), RPHAST otherwise. Both give the same answers.
        """
        if method not in ("auto", "rphast", "bucket"):
            raise InvalidArgumentError(
                f"method must be 'auto', 'rphast' or 'bucket', got {method!r}"
            )
        for name, nodes in (("s_node", s_node), ("t_node", t_node)):
            # the compiled kernels do no bounds checks: a node id out of range must not reach them
            if np.ndim(nodes) != 2:
                raise InvalidArgumentError(
                    f"{name} must be a 2-d array (points x entry nodes), got shape "
                    f"{np.shape(nodes)}"
                )
            if nodes.size and (nodes.max() >= self.n_nodes or nodes.min() < -1):
                raise InvalidArgumentError(
                    f"{name} holds node ids outside 0..{self.n_nodes - 1} (-1 = none): "
                    f"min {nodes.min()}, max {nodes.max()}"
                )
        ns, nt = s_node.shape[0], t_node.shape[0]
        if method == "bucket" or (
            method == "auto" and bucket_pays(ns, nt, self.n_nodes, distances)
        ):
            return bucket_table(
                self,
                s_node,
                s_seconds,
                s_metres,
                t_node,
                t_seconds,
                t_metres,
                cutoff=cutoff,
                distances=distances,
                n_jobs=n_jobs,
            )
        limit = _INF if cutoff is None else float(cutoff)
        threads = resolve_threads(n_jobs)
        if ns == 0 or nt == 0:
            empty = np.full((ns, nt), np.inf, np.float32)
            return empty, (empty.copy() if distances else None)
        if not distances and ns * nt <= SWEEP_MAX_CELLS:
            # small tables of seconds: one serial call, the same values (roadnet.ch_sweep)
            return sweep_table(self, s_node, s_seconds, t_node, t_seconds, limit), None
        sp = np.where(s_node >= 0, self.pos[np.maximum(s_node, 0)], -1).astype(np.int64)
        tp = np.where(t_node >= 0, self.pos[np.maximum(t_node, 0)], -1).astype(np.int64)
        fwd = (self.up_indptr, self.up_indices, self.up_seconds, self.up_metres)
        bwd = (self.down_indptr, self.down_indices, self.down_seconds, self.down_metres)
        # forward: targets select over `down`, sources sweep; backward: the reverse
        sel_t = _select(self.down_indptr, self.down_indices, tp.ravel(), self.n_nodes)
        sel_s = _select(self.up_indptr, self.up_indices, sp.ravel(), self.n_nodes)
        forward = ns * sel_t.shape[0] <= nt * sel_s.shape[0]
        t0 = time.perf_counter()
        if forward:
            sec, met = _rphast(
                fwd, bwd, sel_t, sp, s_seconds, s_metres, tp, t_seconds, t_metres,
                limit, distances, batch, threads, self.n_nodes,
            )  # fmt: skip
        else:
            sec_t, met_t = _rphast(
                bwd, fwd, sel_s, tp, t_seconds, t_metres, sp, s_seconds, s_metres,
                limit, distances, batch, threads, self.n_nodes,
            )  # fmt: skip
            sec = np.ascontiguousarray(sec_t.T)
            met = np.ascontiguousarray(met_t.T)
        log.debug(
            "CH table %dx%d (%s sweep over %d nodes) in %.3f s",
            ns,
            nt,
            "forward" if forward else "backward",
            (sel_t if forward else sel_s).shape[0],
            time.perf_counter() - t0,
        )
        return sec, (met if distances else None)


SWEEP_MAX_CELLS = 250_000
"""Tables of seconds up to this many cells (500 x 500) run serially in
:func:`roadnet.ch_sweep.sweep_table`: the same values as the sweeps below at less CPU (on Porto
10 x 10 0.15 ms instead of 0.4, 100 x 100 1.1-1.4 ms instead of 3-3.6 ms, 1000 x 1000 26 ms
instead of 37 ms on one thread); larger ones run on all threads below."""


def bucket_pays(n_sources: int, n_targets: int, n_nodes: int, distances: bool = False) -> bool:
    """Whether the bucket query beats RPHAST for a table of this shape (measured).

    ``scripts/bench_ch_query.py`` (``docs/benchmarks.md``): on Porto (51k nodes) RPHAST wins
    up to 1000 x 1000 and is 24-47x faster on one-sided tables (1 x 10,000); the two tie near
    5000 x 5000 and buckets win at 10,000 x 10,000 (0.63x the time) and with metres from
    5000 x 5000 (0.58x); on the 1M-node synthetic graph buckets win at 2000 x 2000 (0.46x).
    """
    small = min(n_sources, n_targets)
    if n_nodes >= 250_000:
        return small >= 1000
    return small >= (4000 if distances else 8000)


def _rphast(
    search: tuple[np.ndarray, ...],
    sweep: tuple[np.ndarray, ...],
    sel: np.ndarray,
    s_pos: np.ndarray,
    s_sec: np.ndarray,
    s_met: np.ndarray,
    t_pos: np.ndarray,
    t_sec: np.ndarray,
    t_met: np.ndarray,
    limit: float,
    distances: bool,
    batch: int,
    threads: int,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    local = np.full(n, -1, np.int64)
    local[sel] = np.arange(sel.shape[0])
    l_ptr, l_idx, l_w, l_m = _restrict(sel, local, *sweep)
    t_loc = np.where(t_pos >= 0, local[np.maximum(t_pos, 0)], -1)
    ns = s_pos.shape[0]
    n_batches = (ns + batch - 1) // batch
    n_chunks = max(1, min(n_batches, threads * 4))
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, threads))
    try:
        return _sweep_all(
            search[0], search[1], search[2], search[3],
            l_ptr, l_idx, l_w, l_m, local,
            s_pos, np.asarray(s_sec, np.float64), np.asarray(s_met, np.float64),
            t_loc, np.asarray(t_sec, np.float64), np.asarray(t_met, np.float64),
            limit, distances, batch, n_chunks,
        )  # fmt: skip
    finally:
        numba.set_num_threads(previous)


@numba.njit(cache=True)
def _select(indptr: Any, indices: Any, seeds: Any, n: int) -> Any:  # pragma: no cover
    """Positions reachable from ``seeds`` over the arcs (all lead to smaller positions), sorted."""
    seen = np.zeros(n, np.bool_)
    stack = np.empty(n, np.int64)
    top = 0
    for s in seeds:
        if s >= 0 and not seen[s]:
            seen[s] = True
            stack[top] = s
            top += 1
    count = top
    while top > 0:
        top -= 1
        v = stack[top]
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            if not seen[u]:
                seen[u] = True
                stack[top] = u
                top += 1
                count += 1
    out = np.empty(count, np.int64)
    k = 0
    for v in range(n):
        if seen[v]:
            out[k] = v
            k += 1
    return out


@numba.njit(cache=True)
def _restrict(sel: Any, local: Any, indptr: Any, indices: Any, w: Any, m: Any) -> Any:
    """The sweep arcs of the selected positions, renumbered to local indices."""
    r = sel.shape[0]
    ptr = np.zeros(r + 1, np.int64)
    for i in range(r):
        v = sel[i]
        ptr[i + 1] = ptr[i] + indptr[v + 1] - indptr[v]
    idx = np.empty(ptr[r], np.int64)
    lw = np.empty(ptr[r], np.float64)
    lm = np.empty(ptr[r], np.float64)
    for i in range(r):
        v = sel[i]
        k = ptr[i]
        for e in range(indptr[v], indptr[v + 1]):
            idx[k] = local[indices[e]]
            lw[k] = w[e]
            lm[k] = m[e]
            k += 1
    return ptr, idx, lw, lm


@numba.njit(cache=True, parallel=True)
def _sweep_all(
    up_ptr: Any,
    up_idx: Any,
    up_w: Any,
    up_m: Any,
    l_ptr: Any,
    l_idx: Any,
    l_w: Any,
    l_m: Any,
    local: Any,
    s_pos: Any,
    s_sec: Any,
    s_met: Any,
    t_loc: Any,
    t_sec: Any,
    t_met: Any,
    limit: float,
    distances: bool,
    batch: int,
    n_chunks: int,
) -> tuple[Any, Any]:  # pragma: no cover - compiled
    n = local.shape[0]
    ns = s_pos.shape[0]
    nt = t_loc.shape[0]
    r = l_ptr.shape[0] - 1
    out = np.full((ns, nt), np.inf, np.float32)
    outm = np.full((ns, nt) if distances else (0, 0), np.inf, np.float32)
    n_batches = (ns + batch - 1) // batch
    for c in prange(n_chunks):
        b0 = c * n_batches // n_chunks
        b1 = (c + 1) * n_batches // n_chunks
        dist = np.full(n, np.inf)
        dm = np.zeros(n)
        hk = np.empty(n)
        hv = np.empty(n, np.int64)
        hpos = np.full(n, -1, np.int64)
        touched = np.empty(n, np.int64)
        lab = np.empty((r, batch))
        labm = np.empty((r, batch) if distances else (0, batch))
        for b in range(b0, b1):
            s0 = b * batch
            k_n = min(batch, ns - s0)
            lab[:, :] = np.inf
            if distances:
                labm[:, :] = np.inf
            for k in range(k_n):
                # upward Dijkstra from the source's entry nodes
                size = 0
                nt_ = 0
                for a in range(s_pos.shape[1]):
                    p = s_pos[s0 + k, a]
                    if p < 0:
                        continue
                    d0 = s_sec[s0 + k, a]
                    if d0 < dist[p] and d0 <= limit:
                        if dist[p] == np.inf:
                            touched[nt_] = p
                            nt_ += 1
                        dist[p] = d0
                        dm[p] = s_met[s0 + k, a]
                        size = heap_set(hk, hv, hpos, size, p, d0)
                while size > 0:
                    v, dv, size = heap_pop(hk, hv, hpos, size)
                    lv = local[v]
                    if lv >= 0:
                        lab[lv, k] = dv
                        if distances:
                            labm[lv, k] = dm[v]
                    for e in range(up_ptr[v], up_ptr[v + 1]):
                        u = up_idx[e]
                        nd = dv + up_w[e]
                        if nd < dist[u] and nd <= limit:
                            if dist[u] == np.inf:
                                touched[nt_] = u
                                nt_ += 1
                            dist[u] = nd
                            dm[u] = dm[v] + up_m[e]
                            size = heap_set(hk, hv, hpos, size, u, nd)
                for t in range(nt_):
                    dist[touched[t]] = np.inf
            # downward sweep over the selection, in position order
            if distances:
                for i in range(r):
                    for e in range(l_ptr[i], l_ptr[i + 1]):
                        u = l_idx[e]
                        w = l_w[e]
                        mm = l_m[e]
                        for k in range(k_n):
                            val = lab[u, k] + w
                            if val < lab[i, k]:
                                lab[i, k] = val
                                labm[i, k] = labm[u, k] + mm
            else:
                for i in range(r):
                    for e in range(l_ptr[i], l_ptr[i + 1]):
                        u = l_idx[e]
                        w = l_w[e]
                        for k in range(batch):
                            lab[i, k] = min(lab[i, k], lab[u, k] + w)
            # read the targets
            for j in range(nt):
                for a in range(t_loc.shape[1]):
                    lj = t_loc[j, a]
                    if lj < 0:
                        continue
                    tw = t_sec[j, a]
                    for k in range(k_n):
                        val = lab[lj, k] + tw
                        if val <= limit and val < out[s0 + k, j]:
                            out[s0 + k, j] = val
                            if distances:
                                outm[s0 + k, j] = labm[lj, k] + t_met[j, a]
    return out, outm


# ------------------------------------------------------------------------- building
def _contract_serial(
    graph: RoutingGraph,
    sim_limit: int,
    settle_limit: int,
    level: np.ndarray,
    rank: np.ndarray,
    progress: ProgressCallback | None,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One node at a time with lazy priority updates (arcs in doubly linked lists); returns
    the arc count and the arc arrays ``eu, ev, ew, em``."""
    n = graph.n_nodes
    cap = max(2 * int(graph.indices.shape[0]), 64)
    eu = np.empty(cap, np.int32)
    ev = np.empty(cap, np.int32)
    ew = np.empty(cap, np.float64)
    em = np.empty(cap, np.float64)
    eh = np.empty(cap, np.int32)
    onext = np.empty((cap, 2), np.int64)  # next and previous arc of the tail's list
    inext = np.empty((cap, 2), np.int64)  # the same for the head's list
    ohead = np.full(n, -1, np.int64)
    ihead = np.full(n, -1, np.int64)
    ne = _load_arcs(
        graph.indptr, graph.indices, graph.seconds, graph.metres,
        eu, ev, ew, em, eh, onext, ohead, inext, ihead,
    )  # fmt: skip
    done = np.zeros(n, np.bool_)
    qk = np.empty(n)
    qv = np.empty(n, np.int64)
    qpos = np.full(n, -1, np.int64)
    dist = np.full(n, np.inf)
    hk = np.empty(n)
    hv = np.empty(n, np.int64)
    hpos = np.full(n, -1, np.int64)
    touched = np.empty(n, np.int64)
    is_t = np.zeros(n, np.bool_)
    qsize = _initial_queue(
        n, sim_limit, ne, eu, ev, ew, em, eh, onext, ohead, inext, ihead,
        done, qk, qv, qpos, dist, hk, hv, hpos, touched, is_t,
    )  # fmt: skip
    r = 0
    step = max(1000, n // 100)
    while True:
        ne, r, qsize, status = _contract_steps(
            step, sim_limit, settle_limit, ne, r, eu, ev, ew, em, eh, onext, ohead, inext,
            ihead, done, level, rank, qk, qv, qpos, qsize, dist, hk, hv, hpos, touched, is_t,
        )  # fmt: skip
        if status == 2:
            grow = max(eu.shape[0], 1 << 16)
            eu, ev, eh = (np.concatenate([a, np.empty(grow, a.dtype)]) for a in (eu, ev, eh))
            ew, em = (np.concatenate([a, np.empty(grow)]) for a in (ew, em))
            onext, inext = (
                np.concatenate([a, np.empty((grow, 2), np.int64)]) for a in (onext, inext)
            )
        if progress:
            progress(r, n)
        if status == 0:
            break
    return ne, eu, ev, ew, em


def build_hierarchy(
    graph: RoutingGraph,
    *,
    settle_limit: int = 500,
    sim_limit: int = 10,
    progress: ProgressCallback | None = None,
    parallel: bool = True,
    n_jobs: int | None = None,
    sim_hops: int = 3,
) -> Hierarchy:
    """Contract ``graph`` into a :class:`Hierarchy`.

    With ``parallel`` (the default) nodes are contracted in rounds of independent local
    minima of the priority on all threads (see :mod:`roadnet.ch_contract`); otherwise one at
    a time in a lazily updated priority queue. Both give exact tables; the orders differ.

    Parameters
    ----------
    graph
        The compiled road graph (or any :class:`RoutingGraph`).
    settle_limit
        Nodes a witness search may settle when contracting (more = fewer shortcuts).
    sim_limit
        The same while estimating priorities in the sequential build, and in the parallel one
        with ``sim_hops=0`` (10: measured on a 200k-node synthetic graph, 30 cost 40 % more
        build time for 8 % fewer arcs and the same query time).
    progress
        Optional callback ``(nodes_contracted, n_nodes)``.
    parallel
        Contract in parallel rounds (``True``) or one node at a time.
    n_jobs
        Threads for the parallel rounds (``None``/-1 = numba's thread count).
    sim_hops
        The parallel build estimates priorities with witnesses of at most this many arcs,
        found without a heap (2 or 3; 0 = Dijkstra searches bounded by ``sim_limit``). 3
        (the default), measured on the 200k-node synthetic graph: half the build CPU of
        ``sim_limit=10`` searches, 3 % fewer shortcuts, the same query time
        (``docs/benchmarks.md``).

    Returns
    -------
    Hierarchy

    Examples
    --------
    >>> h = build_hierarchy(graph)  # doctest: +SKIP
    >>> seconds, _ = h.node_table(np.array([0, 1]), np.array([2, 3]))  # doctest: +SKIP
    """
    if settle_limit < 1 or sim_limit < 1:
        raise InvalidArgumentError(
            f"settle_limit and sim_limit must be >= 1, got settle_limit={settle_limit!r}, "
            f"sim_limit={sim_limit!r}"
        )
    if sim_hops not in (0, 2, 3):
        raise InvalidArgumentError(f"sim_hops must be 0, 2 or 3, got {sim_hops!r}")
    t0 = time.perf_counter()
    n = graph.n_nodes
    m0 = int(graph.indices.shape[0])
    if progress:
        progress(0, n)
    rounds = 0
    if parallel:
        threads = resolve_threads(n_jobs)
        prev_threads = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            eu, ev, ew, em, rank, level, rounds = contract_rounds(
                graph.indptr, graph.indices, graph.seconds, graph.metres,
                sim_limit, settle_limit, threads, progress, sim_hops=sim_hops,
            )  # fmt: skip
        finally:
            numba.set_num_threads(prev_threads)
        ne = int(eu.shape[0])
    else:
        level = np.zeros(n, np.int64)
        rank = np.full(n, -1, np.int64)
        ne, eu, ev, ew, em = _contract_serial(graph, sim_limit, settle_limit, level, rank, progress)
    pos = (n - 1 - rank).astype(np.int64)
    (up_indptr, up_indices, up_w, up_m, down_indptr, down_indices, down_w, down_m) = _split_csr(
        n, pos, eu[:ne], ev[:ne], ew[:ne], em[:ne]
    )
    seconds = time.perf_counter() - t0
    shortcuts = ne - int(
        np.count_nonzero(graph.indices != np.repeat(np.arange(n), np.diff(graph.indptr)))
    )
    meta = {
        "format": CH_FORMAT,
        "settle_limit": settle_limit,
        "sim_limit": sim_limit,
        "sim_hops": sim_hops if parallel else 0,
        "n_nodes": n,
        "n_graph_arcs": m0,
        "n_arcs": ne,
        "n_shortcuts": shortcuts,
        "max_level": int(level.max()) if n else 0,
        "parallel": bool(parallel),
        "rounds": int(rounds),
        "build_seconds": round(seconds, 3),
    }
    log.info(
        "contraction hierarchy: %d nodes, %d arcs (%d shortcuts) in %.2f s",
        n,
        ne,
        shortcuts,
        seconds,
    )
    return Hierarchy(
        n_nodes=n,
        pos=pos,
        up_indptr=up_indptr,
        up_indices=up_indices,
        up_seconds=up_w,
        up_metres=up_m,
        down_indptr=down_indptr,
        down_indices=down_indices,
        down_seconds=down_w,
        down_metres=down_m,
        meta=meta,
    )


@numba.njit(cache=True)
def _split_csr(
    n: int, pos: Any, eu: Any, ev: Any, ew: Any, em: Any
) -> tuple[Any, ...]:  # pragma: no cover - compiled
    """The upward arcs grouped by tail position and the downward ones by head position, each
    group sorted by the other end (a counting sort, then insertion sort of the small groups);
    ``(up_indptr, up_indices, up_w, up_m, down_indptr, down_indices, down_w, down_m)``."""
    m = eu.shape[0]
    up_ptr = np.zeros(n + 1, np.int64)
    dn_ptr = np.zeros(n + 1, np.int64)
    for e in range(m):
        pu = pos[eu[e]]
        pv = pos[ev[e]]
        if pv < pu:
            up_ptr[pu + 1] += 1
        else:
            dn_ptr[pv + 1] += 1
    for i in range(n):
        up_ptr[i + 1] += up_ptr[i]
        dn_ptr[i + 1] += dn_ptr[i]
    up_idx = np.empty(up_ptr[n], np.int64)
    up_w = np.empty(up_ptr[n])
    up_m = np.empty(up_ptr[n])
    dn_idx = np.empty(dn_ptr[n], np.int64)
    dn_w = np.empty(dn_ptr[n])
    dn_m = np.empty(dn_ptr[n])
    up_fill = up_ptr[:-1].copy()
    dn_fill = dn_ptr[:-1].copy()
    for e in range(m):
        pu = pos[eu[e]]
        pv = pos[ev[e]]
        if pv < pu:
            k = up_fill[pu]
            up_fill[pu] += 1
            up_idx[k] = pv
            up_w[k] = ew[e]
            up_m[k] = em[e]
        else:
            k = dn_fill[pv]
            dn_fill[pv] += 1
            dn_idx[k] = pu
            dn_w[k] = ew[e]
            dn_m[k] = em[e]
    for ptr, idx, w, mm in ((up_ptr, up_idx, up_w, up_m), (dn_ptr, dn_idx, dn_w, dn_m)):
        for i in range(n):
            for a in range(ptr[i] + 1, ptr[i + 1]):
                key = idx[a]
                kw = w[a]
                km = mm[a]
                b = a - 1
                while b >= ptr[i] and idx[b] > key:
                    idx[b + 1] = idx[b]
                    w[b + 1] = w[b]
                    mm[b + 1] = mm[b]
                    b -= 1
                idx[b + 1] = key
                w[b + 1] = kw
                mm[b + 1] = km
    return up_ptr, up_idx, up_w, up_m, dn_ptr, dn_idx, dn_w, dn_m
