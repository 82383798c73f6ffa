"""Exact drive-time matrices between snapped points.

The engine runs ``scipy.sparse.csgraph.dijkstra`` from every origin over the road graph
*augmented* with one virtual node per origin and per destination:

* origin ``i`` -> the nodes its road leads to, cost = connector + remaining arc time;
* the nodes a destination's road comes from -> destination ``j``, cost = partial arc time +
  connector;
* origin ``i`` -> destination ``j`` directly when both lie on the same road piece and ``j`` is
  ahead of ``i`` in a permitted direction.

Destination nodes have no outgoing arc and origin nodes no incoming arc, so no route passes
through them, and the result equals Dijkstra on the road graph with the snapping offsets.
Sources are processed in chunks (``settings.chunk_size`` rows at a time), so memory stays
O(chunk x nodes + output) and the output is float32; chunks are spread over worker processes
(``n_jobs``; scipy's Dijkstra holds the GIL, so threads would not help).

Semantics
    ``seconds[i, j]`` is ``inf`` when no route exists (another island, a one-way trap) or the
    time exceeds ``cutoff``. A point to itself (same coordinates) is 0. With
    ``distances=True`` the metres along the fastest route (road metres; the straight connectors
    are not counted) come too.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Literal

import numba
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from roadnet.ch import Hierarchy
from roadnet.engine import EngineChoice, resolve_engine
from roadnet.exceptions import InvalidArgumentError, SnapError
from roadnet.graph import CompiledGraph, csr_keep_min
from roadnet.graph_cache import ProgressCallback
from roadnet.settings import check_n_jobs, settings
from roadnet.snap import SnappedPoints, snap_points

__all__ = ["DriveTimeMatrix", "drive_time_matrix"]

log = logging.getLogger(__name__)

FarPolicy = Literal["flag", "exclude", "error"]


@dataclasses.dataclass(frozen=True, eq=False)
class DriveTimeMatrix:
    """A drive-time matrix with the points it was computed for.

    Attributes
    ----------
    seconds
        ``(n_origins, n_destinations)`` float32 travel seconds; ``inf`` = unreachable or
        beyond ``cutoff``.
    metres
        Road metres along the fastest route (same shape) or ``None`` when not requested.
    origins, destinations
        The snapped points (``destinations is origins`` for a square matrix of one set).
    cutoff
        The cutoff in seconds, or ``None``.
    engine
        Name of the engine that computed it.
    """

    seconds: np.ndarray
    metres: np.ndarray | None
    origins: SnappedPoints
    destinations: SnappedPoints
    cutoff: float | None
    engine: str = "scipy-dijkstra"

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_origins, n_destinations)``."""
        return (int(self.seconds.shape[0]), int(self.seconds.shape[1]))

    def unreachable(self) -> np.ndarray:
        """``(k, 2)`` array of (origin, destination) positions with no route at all.

        Pairs beyond the cutoff but in the same strongly connected component are *not*
        listed; pairs in different components are (whatever the cutoff).
        """
        inf = ~np.isfinite(self.seconds)
        if self.cutoff is not None:
            same = self.origins.component[:, None] == self.destinations.component[None, :]
            inf &= ~same
        return np.argwhere(inf)

    def report(self) -> dict[str, Any]:
        """Readable summary: shape, finite share, unreachable pairs, flagged snaps."""
        finite = np.isfinite(self.seconds)
        unreach = self.unreachable()
        return {
            "shape": list(self.shape),
            "engine": self.engine,
            "cutoff_s": self.cutoff,
            "finite_pairs": int(finite.sum()),
            "inf_pairs": int((~finite).sum()),
            "unreachable_pairs": int(unreach.shape[0]),
            "origins_with_unreachable": int(np.unique(unreach[:, 0]).shape[0]),
            "destinations_with_unreachable": int(np.unique(unreach[:, 1]).shape[0]),
            "origin_components": _counts(self.origins.component),
            "destination_components": _counts(self.destinations.component),
            "flagged_origins": np.flatnonzero(self.origins.flagged).tolist(),
            "flagged_destinations": np.flatnonzero(self.destinations.flagged).tolist(),
            "max_seconds": float(self.seconds[finite].max()) if finite.any() else None,
        }


def zero_same_points(
    seconds: np.ndarray, metres: np.ndarray | None, o_labels: np.ndarray, d_labels: np.ndarray
) -> None:
    """Set the time (and metres) of every pair of identical points to 0, in place."""
    if o_labels.shape[0] == 0 or d_labels.shape[0] == 0:
        return
    _zero_same(
        seconds,
        metres if metres is not None else np.zeros((0, 0), seconds.dtype),
        np.ascontiguousarray(o_labels, dtype=np.int64),
        np.ascontiguousarray(d_labels, dtype=np.int64),
    )


@numba.njit(cache=True)
def _zero_same(
    seconds: np.ndarray, metres: np.ndarray, o_labels: np.ndarray, d_labels: np.ndarray
) -> None:  # pragma: no cover - compiled
    """All (origin, destination) pairs with equal labels (duplicates included) to 0."""
    d_order = np.argsort(d_labels, kind="mergesort")
    d_sorted = d_labels[d_order]
    lo = np.searchsorted(d_sorted, o_labels, side="left")
    hi = np.searchsorted(d_sorted, o_labels, side="right")
    with_metres = metres.shape[0] > 0
    for i in range(o_labels.shape[0]):
        for q in range(lo[i], hi[i]):
            j = d_order[q]
            seconds[i, j] = 0.0
            if with_metres:
                metres[i, j] = 0.0


def _counts(labels: np.ndarray) -> dict[str, int]:
    vals, cnt = np.unique(labels, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(vals, cnt, strict=True)}


# ------------------------------------------------------------------------ augmented graph
@dataclasses.dataclass
class _Augmented:
    csr: sp.csr_matrix
    metres: np.ndarray  # per CSR entry, aligned with csr.data
    src: np.ndarray  # virtual node of each origin
    dst: np.ndarray  # virtual node of each destination
    csr_t: sp.csr_matrix | None = None  # reversed graph, for destination columns
    metres_t: np.ndarray | None = None

    def reverse(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """The transposed graph and its metres (built on first use)."""
        if self.csr_t is None or self.metres_t is None:
            n = self.csr.shape[0]
            pos = sp.csr_matrix(
                (
                    np.arange(1, self.csr.nnz + 1, dtype=np.float64),
                    self.csr.indices,
                    self.csr.indptr,
                ),
                shape=(n, n),
            ).T.tocsr()
            perm = pos.data.astype(np.int64) - 1
            self.csr_t = sp.csr_matrix((self.csr.data[perm], pos.indices, pos.indptr), shape=(n, n))
            self.metres_t = self.metres[perm]
        return self.csr_t, self.metres_t


def _direct_pairs(
    o: SnappedPoints, d: SnappedPoints, o_ok: np.ndarray, d_ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trips that stay on one road piece: ``(origin, destination, seconds, metres)``.

    Destination ``j`` is reachable directly from origin ``i`` when both are snapped onto the
    same arc and ``j`` lies ahead of ``i`` along the arc (or along its reverse twin). The trips
    along the arcs come first, then those along the twins, each by origin and then by
    destination position.
    """
    if len(o) == 0 or len(d) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty.copy(), np.zeros(0), np.zeros(0)
    return _direct_kernel(
        np.ascontiguousarray(o.arc), np.ascontiguousarray(d.arc),
        np.ascontiguousarray(o_ok, dtype=np.bool_), np.ascontiguousarray(d_ok, dtype=np.bool_),
        np.ascontiguousarray(o.in_seconds, dtype=np.float64),
        np.ascontiguousarray(o.in_metres, dtype=np.float64),
        np.ascontiguousarray(d.in_seconds, dtype=np.float64),
        np.ascontiguousarray(d.in_metres, dtype=np.float64),
        np.ascontiguousarray(o.connector_seconds, dtype=np.float64),
        np.ascontiguousarray(d.connector_seconds, dtype=np.float64),
    )  # fmt: skip


@numba.njit(cache=True)
def _direct_kernel(
    o_arc: np.ndarray,
    d_arc: np.ndarray,
    o_ok: np.ndarray,
    d_ok: np.ndarray,
    o_in_s: np.ndarray,
    o_in_m: np.ndarray,
    d_in_s: np.ndarray,
    d_in_m: np.ndarray,
    o_conn: np.ndarray,
    d_conn: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """:func:`_direct_pairs` on the arrays (one compiled call: a table request makes one)."""
    d_order = np.argsort(d_arc, kind="mergesort")  # stable
    d_sorted = d_arc[d_order]
    lo = np.searchsorted(d_sorted, o_arc, side="left")
    hi = np.searchsorted(d_sorted, o_arc, side="right")
    total = 0
    for i in range(o_arc.shape[0]):
        total += hi[i] - lo[i]
    pi = np.empty(total, np.int64)
    pj = np.empty(total, np.int64)
    c = 0
    for i in range(o_arc.shape[0]):
        for q in range(lo[i], hi[i]):
            j = d_order[q]
            if o_ok[i] and d_ok[j]:
                pi[c] = i
                pj[c] = j
                c += 1
    out_o = np.empty(2 * c, np.int64)
    out_d = np.empty(2 * c, np.int64)
    out_w = np.empty(2 * c)
    out_m = np.empty(2 * c)
    n = 0
    for k in range(2):  # along the arc (k=0) or its reverse twin (k=1): j must be ahead of i
        for p in range(c):
            i = pi[p]
            j = pj[p]
            ds = d_in_s[j, k] - o_in_s[i, k]  # inf - inf = nan where there is no twin
            dm = d_in_m[j, k] - o_in_m[i, k]
            if np.isfinite(ds) and dm >= 0 and ds >= 0:
                out_o[n] = i
                out_d[n] = j
                out_w[n] = o_conn[i] + ds + d_conn[j]
                out_m[n] = dm
                n += 1
    return out_o[:n], out_d[:n], out_w[:n], out_m[:n]


def augment(
    graph: CompiledGraph, o: SnappedPoints, d: SnappedPoints, o_ok: np.ndarray, d_ok: np.ndarray
) -> _Augmented:
    n = graph.n_nodes
    no, nd = len(o), len(d)
    src = n + np.arange(no)
    dst = n + no + np.arange(nd)
    # road arcs
    base_u = np.repeat(np.arange(n), np.diff(graph.indptr))
    parts_u = [base_u]
    parts_v = [graph.indices.astype(np.int64)]
    parts_w = [graph.seconds.astype(np.float64)]
    parts_m = [graph.metres.astype(np.float64)]
    for k in range(2):
        ok = o_ok & (o.out_node[:, k] >= 0)
        parts_u.append(src[ok])
        parts_v.append(o.out_node[ok, k].astype(np.int64))
        parts_w.append(o.connector_seconds[ok] + o.out_seconds[ok, k])
        parts_m.append(o.out_metres[ok, k])
        ok = d_ok & (d.in_node[:, k] >= 0)
        parts_u.append(d.in_node[ok, k].astype(np.int64))
        parts_v.append(dst[ok])
        parts_w.append(d.in_seconds[ok, k] + d.connector_seconds[ok])
        parts_m.append(d.in_metres[ok, k])
    oi, dj, direct_s, direct_m = _direct_pairs(o, d, o_ok, d_ok)
    parts_u.append(src[oi])
    parts_v.append(dst[dj])
    parts_w.append(direct_s)
    parts_m.append(direct_m)
    total = n + no + nd
    indptr, indices, w, (m,), _ = csr_keep_min(
        total,
        np.concatenate(parts_u),
        np.concatenate(parts_v),
        np.concatenate(parts_w),
        np.concatenate(parts_m),
    )
    csr = sp.csr_matrix((w, indices.astype(np.int32), indptr), shape=(total, total))
    return _Augmented(csr=csr, metres=m, src=src, dst=dst)


@numba.njit(cache=True)
def _path_metres(
    pred: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    reached: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    metres: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    """Metres along the predecessor tree from each ``src`` row to each ``dst`` column."""
    r, nd = src.shape[0], dst.shape[0]
    out = np.full((r, nd), np.inf, dtype=np.float32)
    for i in range(r):
        for j in range(nd):
            if not reached[i, j]:
                continue
            node = dst[j]
            total = 0.0
            while node != src[i]:
                p = pred[i, node]
                if p < 0:
                    total = np.inf
                    break
                w = np.inf
                for e in range(indptr[p], indptr[p + 1]):
                    if indices[e] == node:
                        w = metres[e]
                        break
                total += w
                node = p
            out[i, j] = total
    return out


_STATE: dict[str, Any] = {}


def _init_worker(aug: _Augmented, cutoff: float | None, distances: bool) -> None:
    _STATE.update(aug=aug, cutoff=cutoff, distances=distances)


def _run_chunk(task: tuple[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """One block in a worker process (state from :func:`_init_worker`)."""
    return _chunk(_STATE, task)


def _chunk(
    state: dict[str, Any], task: tuple[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """One block: ``("rows", origin positions)`` or ``("cols", destination positions)``.

    Rows run Dijkstra forward from origin nodes; columns run it on the reversed graph from
    destination nodes. Both return ``(len(idx), n_other)`` blocks (columns transposed later).
    """
    kind, idx = task
    aug: _Augmented = state["aug"]
    cutoff = state["cutoff"]
    limit = np.inf if cutoff is None else float(cutoff)
    if kind == "rows":
        csr, metres, start, targets = aug.csr, aug.metres, aug.src[idx], aug.dst
    else:
        csr, metres = aug.reverse()
        start, targets = aug.dst[idx], aug.src
    if state["distances"]:
        dist, pred = dijkstra(csr, indices=start, limit=limit, return_predecessors=True)
        sec = dist[:, targets]
        met = _path_metres(pred, start, targets, np.isfinite(sec), csr.indptr, csr.indices, metres)
    else:
        sec = dijkstra(csr, indices=start, limit=limit)[:, targets]
        met = None
    if cutoff is not None:
        sec[sec > cutoff] = np.inf
        if met is not None:
            met[~np.isfinite(sec)] = np.inf
    return sec.astype(np.float32), met


CH_BLOCK = 2048
"""Sources per block on the contraction hierarchy (progress and memory granularity)."""
CH_BLOCK_CELLS = 32_000_000
"""At most this many cells per hierarchy block (128 MB of float32 seconds)."""


def ch_block_rows(n_cols: int) -> int:
    """Rows per hierarchy block for a table with ``n_cols`` columns."""
    return max(1, min(CH_BLOCK, CH_BLOCK_CELLS // max(n_cols, 1)))


@dataclasses.dataclass
class CHJob:
    """Blocks of a matrix between snapped points computed on a contraction hierarchy."""

    hierarchy: Hierarchy
    o: SnappedPoints
    d: SnappedPoints
    o_ok: np.ndarray
    d_ok: np.ndarray
    n_jobs: int | None

    def __post_init__(self) -> None:
        self.direct = _direct_pairs(self.o, self.d, self.o_ok, self.d_ok)

    def block(
        self, o_idx: np.ndarray, d_idx: np.ndarray, cutoff: float | None, distances: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(len(o_idx), len(d_idx))`` seconds (and metres) as the Dijkstra engine gives."""
        o, d = self.o, self.d
        s_node = np.where(self.o_ok[o_idx, None], o.out_node[o_idx], -1)
        t_node = np.where(self.d_ok[d_idx, None], d.in_node[d_idx], -1)
        with np.errstate(invalid="ignore"):
            s_sec = o.connector_seconds[o_idx, None] + o.out_seconds[o_idx]
            t_sec = d.in_seconds[d_idx] + d.connector_seconds[d_idx, None]
        sec, met = self.hierarchy.table(
            s_node,
            s_sec,
            o.out_metres[o_idx],
            t_node,
            t_sec,
            d.in_metres[d_idx],
            cutoff=cutoff,
            distances=distances,
            n_jobs=self.n_jobs,
        )
        # trips along one road piece, which never touch a node
        oi, dj, w, m = self.direct
        if oi.shape[0] == 0:
            return sec, met
        if _is_all(o_idx, len(o)) and _is_all(d_idx, len(d)):  # the whole table: one block
            a, b = oi, dj
        else:
            o_map = np.full(len(o), -1, np.int64)
            o_map[o_idx] = np.arange(o_idx.shape[0])
            d_map = np.full(len(d), -1, np.int64)
            d_map[d_idx] = np.arange(d_idx.shape[0])
            a, b = o_map[oi], d_map[dj]
        _place_direct(
            sec,
            met if met is not None else np.zeros((0, 0), sec.dtype),
            a, b, w, m,
            np.inf if cutoff is None else float(cutoff),
        )  # fmt: skip
        return sec, met


@numba.njit(cache=True)
def _place_direct(
    sec: np.ndarray,
    met: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    w: np.ndarray,
    m: np.ndarray,
    limit: float,
) -> None:  # pragma: no cover - compiled
    """Write the direct trips ``(a, b, w, m)`` (``a``/``b`` = -1: not in this block) that are
    within ``limit`` and faster than the table's value; of two for one cell the faster wins,
    of two as fast the later one."""
    sel = np.empty(a.shape[0], np.int64)
    c = 0
    for p in range(a.shape[0]):
        if a[p] >= 0 and b[p] >= 0 and w[p] <= limit and w[p] < sec[a[p], b[p]]:
            sel[c] = p
            c += 1
    neg = np.empty(c)
    for q in range(c):
        neg[q] = -w[sel[q]]
    with_metres = met.shape[0] > 0
    for q in np.argsort(neg, kind="mergesort"):  # stable: the fastest written last
        p = sel[q]
        sec[a[p], b[p]] = w[p]
        if with_metres:
            met[a[p], b[p]] = m[p]


def _is_all(idx: np.ndarray, n: int) -> bool:
    """Whether ``idx`` is ``0, 1, ..., n - 1``."""
    return idx.shape[0] == n and (n == 0 or (idx[0] == 0 and bool((np.diff(idx) == 1).all())))


def _mp_context() -> multiprocessing.context.BaseContext:
    """fork on Linux (the workers inherit the augmented graph without pickling), else spawn.

    The forked workers run scipy's Dijkstra only and take no lock another thread could hold,
    so forking a process that has other threads (numba, pyogrio) is safe here.
    """
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def block_tasks(
    kind: str,
    idx: np.ndarray,
    chunk_size: int | None = None,
) -> list[tuple[str, np.ndarray]]:
    """Split origin rows (``"rows"``) or destination columns (``"cols"``) into blocks."""
    chunk = int(chunk_size or settings.chunk_size)
    return [(kind, idx[s : s + chunk]) for s in range(0, idx.shape[0], chunk)]


def run_blocks(
    aug: _Augmented | None,
    tasks: list[tuple[str, np.ndarray]],
    *,
    cutoff: float | None,
    distances: bool,
    n_jobs: int | None,
    on_block: Callable[[str, np.ndarray, np.ndarray, np.ndarray | None], None],
    progress: ProgressCallback | None = None,
    ch: CHJob | None = None,
) -> None:
    """Run blocks on a contraction hierarchy (``ch``) or Dijkstra blocks, in order.

    Dijkstra blocks run serially or over worker processes. ``on_block(kind, idx, seconds,
    metres)`` receives each finished block in task order (columns already transposed to
    ``(n_origins, len(idx))``).
    """
    total = sum(int(t[1].shape[0]) for t in tasks)
    if ch is not None:
        done_ch = 0
        if progress:
            progress(0, total)
        all_o = np.arange(len(ch.o))
        all_d = np.arange(len(ch.d))
        for kind, idx in tasks:
            if kind == "rows":
                sec, met = ch.block(idx, all_d, cutoff, distances)
            else:
                sec, met = ch.block(all_o, idx, cutoff, distances)
            on_block(kind, idx, sec, met)
            done_ch += int(idx.shape[0])
            if progress:
                progress(done_ch, total)
        return
    if aug is None:
        raise InvalidArgumentError("run_blocks needs the augmented graph or a hierarchy job")
    jobs = settings.effective_n_jobs() if n_jobs is None else _resolve_jobs(n_jobs)
    jobs = min(jobs, len(tasks))
    if total * aug.csr.shape[0] < 2_000_000:
        jobs = 1  # a process pool costs more than it saves on small matrices
    log.info(
        "drive-time blocks: %d block(s), %d searches over %d nodes, %d process(es)",
        len(tasks),
        total,
        aug.csr.shape[0],
        jobs,
    )
    done = 0
    if progress:
        progress(0, total)

    def deliver(task: tuple[str, np.ndarray], sec: np.ndarray, met: np.ndarray | None) -> None:
        nonlocal done
        kind, idx = task
        if kind == "cols":
            sec, met = sec.T, (met.T if met is not None else None)
        on_block(kind, idx, sec, met)
        done += int(idx.shape[0])
        if progress:
            progress(done, total)

    if jobs <= 1:  # in this process: local state, so that threads may compute at once
        state = {"aug": aug, "cutoff": cutoff, "distances": distances}
        for task in tasks:
            deliver(task, *_chunk(state, task))
        return
    with warnings.catch_warnings():
        # Python >= 3.12 warns on fork() in a multi-threaded process; see _mp_context
        warnings.filterwarnings(
            "ignore",
            message=".*use of fork\\(\\) may lead to deadlocks",
            category=DeprecationWarning,
        )
        pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(aug, cutoff, distances),
        )
    with pool:
        for task, (sec, met) in zip(tasks, pool.map(_run_chunk, tasks), strict=True):
            deliver(task, sec, met)


def drive_time_matrix(
    graph: CompiledGraph,
    origins: SnappedPoints | np.ndarray,
    destinations: SnappedPoints | np.ndarray | None = None,
    *,
    cutoff: float | None = None,
    distances: bool = False,
    far: FarPolicy = "flag",
    n_jobs: int | None = None,
    chunk_size: int | None = None,
    progress: ProgressCallback | None = None,
    engine: str | EngineChoice | None = None,
    build_progress: ProgressCallback | None = None,
) -> DriveTimeMatrix:
    """Exact drive-time matrix (seconds, float32) from ``origins`` to ``destinations``.

    Parameters
    ----------
    graph
        The compiled road graph.
    origins, destinations
        :class:`SnappedPoints`, or ``(n, 2)`` arrays of lon/lat in degrees (snapped with the
        default settings). ``destinations=None`` means the origins (square matrix, 0 diagonal).
    cutoff
        Seconds; pairs farther than this are ``inf`` (and the search stops there: faster).
    distances
        Also return metres along the fastest route.
    far
        What to do with points whose snap distance exceeds the limit: ``"flag"`` (route them
        and report them), ``"exclude"`` (their rows/columns are ``inf``) or ``"error"``.
    n_jobs
        Worker processes (-1 = all cores, 1 = none); default ``settings.n_jobs``.
    chunk_size
        Sources per Dijkstra block; default ``settings.chunk_size``.
    progress
        Optional callback ``(origins_done, n_origins)``.
    engine
        ``"auto"`` (default ``settings.engine``), ``"ch"`` (contraction hierarchy, built and
        cached on first use), ``"scipy"`` (Dijkstra from every origin) or an
        :class:`EngineChoice`. ``"auto"`` takes the hierarchy when one is in memory or in the
        cache, or when the matrix needs at least ``settings.ch_min_searches`` searches; see
        :func:`roadnet.cached.choose_engine`. Both give the same answers.
    build_progress
        Optional callback ``(nodes_contracted, n_nodes)`` while a hierarchy is built.

    Returns
    -------
    DriveTimeMatrix

    Examples
    --------
    >>> m = drive_time_matrix(graph, np.array([[24.94, 60.17], [24.95, 60.16]]))  # doctest: +SKIP
    >>> m.seconds.shape  # doctest: +SKIP
    (2, 2)
    """
    o = origins if isinstance(origins, SnappedPoints) else _snap_array(graph, origins, "origins")
    if destinations is None:
        d = o
    else:
        d = (
            destinations
            if isinstance(destinations, SnappedPoints)
            else _snap_array(graph, destinations, "destinations")
        )
    if cutoff is not None and not cutoff > 0:
        raise InvalidArgumentError(f"cutoff must be > 0 seconds or None, got {cutoff!r}")
    if far not in ("flag", "exclude", "error"):
        raise InvalidArgumentError(f"far must be 'flag', 'exclude' or 'error', got {far!r}")
    if far == "error" and (o.flagged.any() or d.flagged.any()):
        raise SnapError(
            f"{int(o.flagged.sum())} origin(s) and {int(d.flagged.sum())} destination(s) lie "
            f"farther than {o.max_distance_m:g} m from any road (origin rows "
            f"{np.flatnonzero(o.flagged)[:10].tolist()})"
        )
    o_ok = ~o.flagged if far == "exclude" else np.ones(len(o), bool)
    d_ok = ~d.flagged if far == "exclude" else np.ones(len(d), bool)
    no, nd = len(o), len(d)
    choice = resolve_engine(graph, engine, no, build_progress)
    ch = CHJob(choice.hierarchy, o, d, o_ok, d_ok, n_jobs) if choice.hierarchy is not None else None
    aug = augment(graph, o, d, o_ok, d_ok) if ch is None else None
    seconds = np.full((no, nd), np.inf, dtype=np.float32)
    metres = np.full((no, nd), np.inf, dtype=np.float32) if distances else None

    def store(kind: str, idx: np.ndarray, sec: np.ndarray, met: np.ndarray | None) -> None:
        seconds[idx] = sec
        if metres is not None and met is not None:
            metres[idx] = met

    tasks = block_tasks("rows", np.arange(no), chunk_size if ch is None else ch_block_rows(nd))
    run_blocks(
        aug,
        tasks,
        cutoff=cutoff,
        distances=distances,
        n_jobs=n_jobs,
        on_block=store,
        progress=progress,
        ch=ch,
    )
    o_labels = o.labels
    zero_same_points(seconds, metres, o_labels, o_labels if d is o else d.labels)
    result = DriveTimeMatrix(
        seconds=seconds,
        metres=metres,
        origins=o,
        destinations=d,
        cutoff=cutoff,
        engine=choice.name,
    )
    unreach = result.unreachable()
    if unreach.shape[0]:
        log.warning(
            "%d origin-destination pairs have no route (different road components: %s -> %s)",
            unreach.shape[0],
            _counts(o.component),
            _counts(d.component),
        )
    return result


def _resolve_jobs(n_jobs: int) -> int:
    n_jobs = int(check_n_jobs(n_jobs) or -1)
    cpus = os.cpu_count() or 1
    return cpus if n_jobs < 0 else min(n_jobs, cpus)


def _snap_array(graph: CompiledGraph, pts: np.ndarray, name: str) -> SnappedPoints:
    arr = np.asarray(pts, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise SnapError(
            f"{name} must be SnappedPoints or an (n, 2) array of lon/lat, got shape {arr.shape}"
        )
    return snap_points(graph, arr[:, 0], arr[:, 1])
