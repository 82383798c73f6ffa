"""Compile raw directed road arcs into a :class:`~roadnet.graph.CompiledGraph`.

Every source (pyrosm's PBF segments, osmnx graphs from XML or Overpass, a user's networkx graph)
is first turned into :class:`RawArcs`: directed arcs with a polyline, a length and a travel time.
:func:`compile_arcs` then

1. contracts interior nodes (a node that only continues one road: one way in and one way out to
   two distinct neighbours, or both directions of a two-way road) so that arcs run from
   junction to junction, as ``osmnx.simplify_graph`` does, but on arrays (a 256k-node extract is
   simplified in well under a second instead of minutes) while keeping the exact geometry and
   the cumulative seconds and metres along each merged arc;
2. projects coordinates to the local UTM zone;
3. pairs each arc with its reverse twin on two-way roads (used by snapping);
4. builds the routing CSR keeping only the fastest of parallel arcs, without self-loops;
5. labels strongly connected components.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, cast

import numba
import numpy as np
import pyproj

from roadnet.exceptions import GraphSourceError
from roadnet.graph import CompiledGraph, strong_components
from roadnet.speed import MIN_TRAVEL_SECONDS

__all__ = [
    "LARGE_ALLOCATION_BYTES",
    "RawArcs",
    "compile_arcs",
    "map_large_allocations",
    "release_free_heap",
    "utm_crs_for",
]

log = logging.getLogger(__name__)

#: Raw nodes and raw arcs are numbered with int32 during the build (half the memory of int64).
_MAX_INT32 = 2**31 - 1


@functools.cache
def _glibc_function(name: str, argtypes: tuple[Any, ...]) -> Callable[..., int] | None:
    """A function of glibc by name (returning a C int), or ``None`` where glibc is not the C
    library (not Linux, or e.g. musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return cast("Callable[..., int]", fn)


def release_free_heap() -> None:
    """Give the C heap's free pages back to the operating system (glibc ``malloc_trim``).

    Arrays of up to 32 MB come from the heap once glibc has raised its mmap threshold, and
    the pages of freed ones stay in the process until trimmed, so the stages of a large
    build would otherwise add up. A no-op where glibc is not the C library.
    """
    trim = _glibc_function("malloc_trim", (ctypes.c_size_t,))
    if trim is not None:
        trim(0)


#: glibc ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (malloc.h).
_M_MMAP_THRESHOLD = -3
#: Allocations of at least this many bytes get their own memory mapping during a graph build
#: (:func:`map_large_allocations`).
LARGE_ALLOCATION_BYTES = 4 << 20


@functools.cache
def map_large_allocations(threshold: int = LARGE_ALLOCATION_BYTES) -> bool:
    """Have glibc serve allocations of at least ``threshold`` bytes with their own mapping.

    glibc raises its mmap threshold as large blocks are freed (up to 32 MB), after which the
    arrays of a country-size build (10-60 MB each, one after another) come from the heap and
    their pages stay with the process when freed: at K = 64 tiles of Malta that kept the
    peak ~50 MB higher. With a fixed threshold every array of ``threshold`` bytes or more is
    unmapped as soon as it is freed. The setting is process-wide and stays for the life of
    the process (glibc cannot return to its dynamic threshold): after a build, smaller blocks
    still come from the heap, but every later allocation of ``threshold`` bytes or more (e.g.
    a 1000 x 1000 table of float32) gets a fresh mapping, which costs page faults each time.
    Returns whether it was applied (``False`` where the C library is not glibc).
    """
    mallopt = _glibc_function("mallopt", (ctypes.c_int, ctypes.c_int))
    return bool(mallopt is not None and mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1)


@dataclasses.dataclass
class RawArcs:
    """Directed road arcs before contraction (positions index the node arrays).

    Attributes
    ----------
    node_ids, lon, lat
        OSM id and WGS84 coordinates of every node referenced by the arcs.
    u, v
        Tail and head node position of each arc.
    metres, seconds
        Length and travel time of each arc (seconds > 0).
    highway, highway_classes
        Class code of each arc and the class names the codes index.
    osmid
        OSM way id of each arc (-1 when unknown).
    geom_indptr, geom_lon, geom_lat
        Polyline of each arc from tail to head, endpoints included (at least 2 points);
        ``None`` for straight arcs (the polyline is the tail and head node), which
        :meth:`straight` makes without storing two points per arc.
    """

    node_ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    u: np.ndarray
    v: np.ndarray
    metres: np.ndarray
    seconds: np.ndarray
    highway: np.ndarray
    highway_classes: list[str]
    osmid: np.ndarray
    geom_indptr: np.ndarray | None
    geom_lon: np.ndarray | None
    geom_lat: np.ndarray | None

    @classmethod
    def straight(
        cls,
        node_ids: np.ndarray,
        lon: np.ndarray,
        lat: np.ndarray,
        u: np.ndarray,
        v: np.ndarray,
        metres: np.ndarray,
        seconds: np.ndarray,
        highway: np.ndarray,
        highway_classes: list[str],
        osmid: np.ndarray,
    ) -> RawArcs:
        """Arcs whose geometry is the straight segment between their end nodes (no polyline
        is stored: :func:`compile_arcs` takes the points from the nodes). Node positions are
        int32 when the nodes fit (half the memory of int64 on country-size inputs)."""
        pos_type = np.int32 if len(node_ids) < 2**31 else np.int64
        return cls(
            node_ids=np.asarray(node_ids, dtype=np.int64),
            lon=np.asarray(lon, dtype=np.float64),
            lat=np.asarray(lat, dtype=np.float64),
            u=np.asarray(u, dtype=pos_type),
            v=np.asarray(v, dtype=pos_type),
            metres=np.asarray(metres, dtype=np.float64),
            seconds=np.asarray(seconds, dtype=np.float64),
            highway=np.asarray(highway, dtype=np.int16),
            highway_classes=list(highway_classes),
            osmid=np.asarray(osmid, dtype=np.int64),
            geom_indptr=None,
            geom_lon=None,
            geom_lat=None,
        )

    @property
    def is_straight(self) -> bool:
        """Whether every arc's polyline is its tail and head node (no stored geometry, or a
        stored one of exactly those two points per arc)."""
        if self.geom_indptr is None or self.geom_lon is None or self.geom_lat is None:
            return True
        return bool((np.diff(self.geom_indptr) == 2).all()) and _ends_are_nodes(self)


def utm_crs_for(lon: np.ndarray, lat: np.ndarray) -> str:
    """EPSG code (``"EPSG:326xx"``/``"EPSG:327xx"``) of the UTM zone at the data's centre."""
    if lon.size == 0:
        return "EPSG:3857"
    clon = float(np.clip((np.nanmin(lon) + np.nanmax(lon)) / 2, -179.999, 179.999))
    clat = float(np.clip((np.nanmin(lat) + np.nanmax(lat)) / 2, -80.0, 84.0))
    zone = int((clon + 180.0) // 6.0) + 1
    return f"EPSG:{32600 + zone if clat >= 0 else 32700 + zone}"


@numba.njit(cache=True)
def _removable_nodes(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Nodes that only continue one road (see module docstring); self-loop nodes are kept."""
    a = u.shape[0]
    # int32 counts and positions (n and a < 2**31, checked by the caller): half the memory
    indeg = np.zeros(n, np.int32)
    outdeg = np.zeros(n, np.int32)
    # up to two distinct in- and out-neighbours per node; -2 marks "more than two"
    in_nb = np.full((n, 2), -1, np.int32)
    out_nb = np.full((n, 2), -1, np.int32)
    loop = np.zeros(n, np.bool_)
    for k in range(a):
        s, t = u[k], v[k]
        if s == t:
            loop[s] = True
            continue
        outdeg[s] += 1
        indeg[t] += 1
        # record up to two distinct out-neighbours of s and in-neighbours of t
        if out_nb[s, 0] == -1:
            out_nb[s, 0] = t
        elif out_nb[s, 0] != t and out_nb[s, 1] == -1:
            out_nb[s, 1] = t
        elif out_nb[s, 0] != t and out_nb[s, 1] != t:
            out_nb[s, 1] = -2
        if in_nb[t, 0] == -1:
            in_nb[t, 0] = s
        elif in_nb[t, 0] != s and in_nb[t, 1] == -1:
            in_nb[t, 1] = s
        elif in_nb[t, 0] != s and in_nb[t, 1] != s:
            in_nb[t, 1] = -2
    rem = np.zeros(n, np.bool_)
    for i in range(n):
        if loop[i]:
            continue
        if indeg[i] == 1 and outdeg[i] == 1:
            rem[i] = in_nb[i, 0] != out_nb[i, 0]
        elif indeg[i] == 2 and outdeg[i] == 2:
            a0, a1, b0, b1 = in_nb[i, 0], in_nb[i, 1], out_nb[i, 0], out_nb[i, 1]
            rem[i] = a1 >= 0 and b1 >= 0 and ((a0 == b0 and a1 == b1) or (a0 == b1 and a1 == b0))
    return rem


@numba.njit(cache=True)
def _chains(
    n: int, u: np.ndarray, v: np.ndarray, rem: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Walk arcs from kept nodes through removable ones; returns (chain_ptr, chain_arcs).

    Positions are int32 (``n`` and the arc count ``a`` < 2**31, checked by the caller) and
    ``chain_ptr`` is cut to the chains found, so that a country-size build does not hold
    four int64 arrays of the raw arcs.
    """
    a = u.shape[0]
    outptr = np.zeros(n + 1, np.int32)
    for k in range(a):
        outptr[u[k] + 1] += 1
    for i in range(n):
        outptr[i + 1] += outptr[i]
    fill = outptr[:-1].copy()
    out = np.empty(a, np.int32)
    for k in range(a):
        out[fill[u[k]]] = k
        fill[u[k]] += 1
    visited = np.zeros(a, np.bool_)
    chain_arcs = np.empty(a, np.int32)
    chain_ptr = np.empty(a + 1, np.int32)
    chain_ptr[0] = 0
    nc = 0
    pos = 0
    for sweep in range(2):
        for k0 in range(a):
            if visited[k0]:
                continue
            if sweep == 0 and rem[u[k0]]:
                continue
            if sweep == 1:
                # an unvisited arc after the first sweep lies on a ring of removable nodes:
                # keep its tail so the ring becomes one closed arc
                rem[u[k0]] = False
            k = k0
            prev = u[k]
            while True:
                visited[k] = True
                chain_arcs[pos] = k
                pos += 1
                cur = v[k]
                if not rem[cur]:
                    break
                nxt = -1
                for j in range(outptr[cur], outptr[cur + 1]):
                    kk = out[j]
                    if outptr[cur + 1] - outptr[cur] == 1 or v[kk] != prev:
                        nxt = kk
                        break
                if nxt < 0 or visited[nxt]:
                    break
                prev = cur
                k = nxt
            nc += 1
            chain_ptr[nc] = pos
    return chain_ptr[: nc + 1].copy(), chain_arcs[:pos]


def _chain_sums(
    values: np.ndarray, chain_ptr: np.ndarray, chain_arcs: np.ndarray, block: int = 1 << 19
) -> np.ndarray:
    """``np.add.reduceat(values[chain_arcs], chain_ptr[:-1])`` for non-empty chains, taken
    over blocks of ``block`` chains so that the gathered values stay small (each chain's sum
    is reduced from the same values in the same order: the same floats)."""
    n_chain = chain_ptr.shape[0] - 1
    out = np.empty(n_chain, dtype=values.dtype)
    for c0 in range(0, n_chain, block):
        c1 = min(c0 + block, n_chain)
        p0, p1 = int(chain_ptr[c0]), int(chain_ptr[c1])
        out[c0:c1] = np.add.reduceat(values[chain_arcs[p0:p1]], chain_ptr[c0:c1] - p0)
    return out


def _project_points(
    to_xy: pyproj.Transformer,
    lon: np.ndarray,
    lat: np.ndarray,
    pts: np.ndarray,
    block: int = 1 << 18,
) -> tuple[np.ndarray, np.ndarray]:
    """Projected coordinates of the nodes ``pts`` (repeats allowed), in blocks of ``block``
    points so that no node-sized projected copy is held (a point projects alone: the same
    values as projecting every node and gathering)."""
    gx = np.empty(pts.shape[0], np.float64)
    gy = np.empty(pts.shape[0], np.float64)
    for i in range(0, pts.shape[0], block):
        sel = pts[i : i + block]
        px, py = to_xy.transform(lon[sel], lat[sel])
        gx[i : i + block] = px
        gy[i : i + block] = py
    return gx, gy


def _point_fractions(raw: RawArcs, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Cumulative length fraction (0..1) of every raw geometry point along its arc."""
    ptr = raw.geom_indptr
    assert ptr is not None
    npts = np.diff(ptr)
    if npts.size and bool((npts == 2).all()):  # straight arcs (PBF readers): tail 0, head 1
        frac = np.zeros(gx.shape[0])
        frac[1::2] = 1.0
        return frac
    seg = np.hypot(np.diff(gx), np.diff(gy))
    # zero the "segments" that join the last point of one arc to the first of the next
    is_join = np.zeros(gx.shape[0] - 1 if gx.size else 0, dtype=bool)
    is_join[ptr[1:-1] - 1] = True
    seg[is_join] = 0.0
    cum = np.concatenate([[0.0], np.cumsum(seg)]) if gx.size else np.zeros(0)
    start = np.repeat(cum[ptr[:-1]], npts)
    total = np.repeat(cum[ptr[1:] - 1] - cum[ptr[:-1]], npts)
    local = cum - start
    idx_in_arc = np.arange(gx.shape[0]) - np.repeat(ptr[:-1], npts)
    uniform = idx_in_arc / np.repeat(np.maximum(npts - 1, 1), npts)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, local / np.where(total > 0, total, 1.0), uniform)
    return np.clip(frac, 0.0, 1.0)


@numba.njit(cache=True)
def _straight_chain_cumulative(
    chain_ptr: np.ndarray, chain_arcs: np.ndarray, values: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """Cumulative ``values`` (seconds or metres of the raw arcs; float32) at the points of
    merged straight arcs.

    Chain ``c`` is raw arcs ``chain_arcs[chain_ptr[c]:chain_ptr[c + 1]]``; its polyline is
    the first arc's tail, then every arc's head. The values are computed with the
    operations, in the order, of the array version this replaces (a running sum over all
    chains, the offset of each raw arc ``(sum - own) - chain start``, then ``fraction x own
    + offset`` with fraction 0 at a tail, 1 at a head), so they are the same floats. Called
    once for seconds and once for metres, so that each raw array can go after its call.
    """
    n_chain = chain_ptr.shape[0] - 1
    n_pts = chain_arcs.shape[0] + n_chain
    out = np.empty(n_pts, np.float32)
    cum = 0.0
    p = 0
    for c in range(n_chain):
        start = cum
        for j in range(chain_ptr[c], chain_ptr[c + 1]):
            k = chain_arcs[j]
            own = values[k]
            cum = cum + own
            off = (cum - own) - start
            if j == chain_ptr[c]:
                out[p] = np.float32(0.0 * own + off)
                p += 1
            out[p] = np.float32(1.0 * own + off)
            p += 1
    return out


@numba.njit(cache=True)
def _straight_chain_nodes(
    chain_ptr: np.ndarray, chain_arcs: np.ndarray, u: np.ndarray, v: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """Raw node position of every point of the merged straight arcs (same layout as
    :func:`_straight_chain_cumulative`): the first arc's tail, then every arc's head."""
    n_chain = chain_ptr.shape[0] - 1
    pts = np.empty(chain_arcs.shape[0] + n_chain, u.dtype)
    p = 0
    for c in range(n_chain):
        for j in range(chain_ptr[c], chain_ptr[c + 1]):
            k = chain_arcs[j]
            if j == chain_ptr[c]:
                pts[p] = u[k]
                p += 1
            pts[p] = v[k]
            p += 1
    return pts


@numba.njit(cache=True)
def _fastest_per_pair(order: np.ndarray, key: np.ndarray, w: np.ndarray) -> np.ndarray:
    """For each run of equal ``key`` along ``order`` (arcs by index inside a run), the arc of
    least ``w``, the first one on ties; a NaN weight loses to any number."""
    m = order.shape[0]
    chosen = np.empty(m, np.int64)
    nc = 0
    i = 0
    while i < m:
        best = order[i]
        j = i + 1
        while j < m and key[order[j]] == key[order[i]]:
            k = order[j]
            if w[k] < w[best] or (np.isnan(w[best]) and not np.isnan(w[k])):
                best = k
            j += 1
        chosen[nc] = best
        nc += 1
        i = j
    return chosen[:nc].copy()


def _routing_csr(
    n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Routing CSR over arcs ``u -> v``: no self-loops and, of parallel arcs, the one of least
    ``w`` (the first on ties). Returns ``indptr`` (int64), ``indices`` (int32) and the arc of
    each CSR entry (int32): what :func:`~roadnet.graph.csr_keep_min` gives on the arcs that
    are not self-loops, with one int64 sort key instead of a three-key sort."""
    key = u.astype(np.int64)
    key *= n
    key += v
    loops = u == v
    key[loops] = -1  # self-loops sort first and are dropped
    order = np.argsort(key, kind="stable")[int(np.count_nonzero(loops)) :]
    del loops
    chosen = _fastest_per_pair(order, key, w)
    del order, key
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(u[chosen], minlength=n), out=indptr[1:])
    return indptr, v[chosen].astype(np.int32), chosen.astype(np.int32)


@numba.njit(cache=True)
def _pair_twins(
    order: np.ndarray,
    key: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    metres: np.ndarray,
    gptr: np.ndarray,
    gx: np.ndarray,
    gy: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    """Pair each arc with the latest unpaired reverse arc of its class (see :func:`_find_twins`).

    ``order`` lists the arcs grouped by ``key`` (their unordered node pair), by index inside
    a group. Inside a group, the unpaired arcs of one class are all of one direction at any
    time (an arc of the other direction pairs with one of them), so the latest unpaired arc
    of the class and the other direction is the one a stack per class and direction would
    give.
    """
    a = u.shape[0]
    twin = np.full(a, -1, np.int32)
    m = order.shape[0]
    i = 0
    while i < m:
        j = i + 1
        while j < m and key[order[j]] == key[order[i]]:
            j += 1
        for p in range(i + 1, j):
            k = order[p]
            fk = u[k] < v[k]
            s, e = gptr[k], gptr[k + 1]
            npts = e - s
            mk = np.rint(metres[k] * 10)
            xk = np.rint((gx[s + 1] if fk else gx[e - 2]) * 100)
            yk = np.rint((gy[s + 1] if fk else gy[e - 2]) * 100)
            for q in range(p - 1, i - 1, -1):
                c = order[q]
                if twin[c] >= 0 or (u[c] < v[c]) == fk:
                    continue
                sc, ec = gptr[c], gptr[c + 1]
                fc = not fk
                if (
                    ec - sc == npts
                    and np.rint(metres[c] * 10) == mk
                    and np.rint((gx[sc + 1] if fc else gx[ec - 2]) * 100) == xk
                    and np.rint((gy[sc + 1] if fc else gy[ec - 2]) * 100) == yk
                ):
                    twin[k] = c
                    twin[c] = k
                    break
        i = j
    return twin


def _find_twins(
    u: np.ndarray,
    v: np.ndarray,
    metres: np.ndarray,
    gptr: np.ndarray,
    gx: np.ndarray,
    gy: np.ndarray,
) -> np.ndarray:
    """Reverse arc with the same geometry for each arc, else -1.

    Arc ``k`` is the twin of ``j`` when ``j`` runs ``v -> u`` with as many points, the same
    length (to 0.1 m) and its second-last point where ``k``'s second point is (to 1 cm).
    Going through the arcs in order, an arc pairs with the latest unpaired arc it matches.
    Self-loops have no twin. Arcs are grouped by their unordered node pair with one int64 key
    and the rest of the class is compared inside each (small) group, so the temporaries are
    two arc-sized int64 arrays.
    """
    a = u.shape[0]
    if a == 0:
        return np.full(0, -1, dtype=np.int32)
    n = int(max(u.max(), v.max())) + 1
    key = np.minimum(u, v).astype(np.int64)
    key *= n
    key += np.maximum(u, v)
    key[u == v] = -1  # self-loops: one group, skipped below
    order = np.argsort(key, kind="stable")
    start = int(np.count_nonzero(u == v))
    return _pair_twins(order[start:], key, u, v, np.asarray(metres, np.float64), gptr, gx, gy)


def _ends_are_nodes(raw: RawArcs) -> bool:
    """Whether each arc's two polyline points are exactly its tail's and head's coordinates."""
    assert raw.geom_lon is not None
    assert raw.geom_lat is not None
    return bool(
        np.array_equal(raw.geom_lon[0::2], raw.lon[raw.u])
        and np.array_equal(raw.geom_lon[1::2], raw.lon[raw.v])
        and np.array_equal(raw.geom_lat[0::2], raw.lat[raw.u])
        and np.array_equal(raw.geom_lat[1::2], raw.lat[raw.v])
    )


def compile_arcs(raw: RawArcs, meta: dict[str, Any], *, consume: bool = False) -> CompiledGraph:
    """Contract, project and index raw arcs into a routable :class:`CompiledGraph`.

    Parameters
    ----------
    raw
        Directed arcs of the road network with geometry and travel times.
    meta
        Metadata of the source (kept and completed with counts, bbox and CRS).
    consume
        Release ``raw``'s arrays (its fields become ``None``) as soon as the build has used
        them, so that country-size inputs do not keep every raw array until the end. The
        caller must not use ``raw`` afterwards.

    Raises
    ------
    GraphSourceError
        When there is no arc at all.
    """
    a_raw = raw.u.shape[0]
    if a_raw == 0:
        raise GraphSourceError(
            f"the road source {meta.get('source', {})} holds no drivable road segment"
        )

    def release(*names: str) -> None:
        if consume:
            for name in names:
                setattr(raw, name, None)

    n_raw = raw.node_ids.shape[0]
    if max(n_raw, a_raw) >= _MAX_INT32:
        raise GraphSourceError(
            f"the road source {meta.get('source', {})} has {n_raw} raw nodes and {a_raw} raw "
            f"arcs; compile_arcs handles fewer than {_MAX_INT32} of each (int32 positions)"
        )
    crs = utm_crs_for(raw.lon, raw.lat)
    to_xy = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    # straight arcs (the PBF readers' RawArcs.straight): every polyline is its two end nodes,
    # so no per-arc polyline is stored; the points of merged arcs are projected at the end
    straight = raw.is_straight
    if not straight:
        assert raw.geom_lon is not None
        assert raw.geom_lat is not None
        rgx, rgy = to_xy.transform(raw.geom_lon, raw.geom_lat)
        rgx, rgy = np.asarray(rgx, dtype=np.float64), np.asarray(rgy, dtype=np.float64)
        frac = _point_fractions(raw, rgx, rgy)
    release("geom_lon", "geom_lat")

    # 1. contraction of interior nodes
    rem = _removable_nodes(n_raw, raw.u, raw.v)
    chain_ptr, chain_arcs = _chains(n_raw, raw.u, raw.v, rem)
    del rem
    n_chain = chain_ptr.shape[0] - 1
    first = chain_arcs[chain_ptr[:-1]]
    last = chain_arcs[chain_ptr[1:] - 1]
    au_raw, av_raw = raw.u[first], raw.v[last]
    arc_highway = np.asarray(raw.highway[first], dtype=np.int16)
    arc_osmid = np.asarray(raw.osmid[first], dtype=np.int64)
    release("highway", "osmid")
    del first, last

    # 2. keep nodes that end an arc; renumber (before the geometry: the raw nodes go early)
    used = np.zeros(n_raw, dtype=bool)
    used[au_raw] = True
    used[av_raw] = True
    new_pos = np.cumsum(used, dtype=np.int32)  # n_raw < 2**31 (checked above)
    new_pos -= 1
    keep = np.flatnonzero(used)
    del used
    arc_u = new_pos[au_raw]
    arc_v = new_pos[av_raw]
    del new_pos, au_raw, av_raw
    lon, lat = raw.lon[keep], raw.lat[keep]
    node_ids = np.asarray(raw.node_ids[keep], dtype=np.int64)
    x, y = to_xy.transform(lon, lat)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = keep.shape[0]
    del keep
    release("node_ids")
    if not straight:
        release("lon", "lat")
    release_free_heap()
    if straight:
        arc_seconds = _chain_sums(raw.seconds, chain_ptr, chain_arcs)
        arc_metres = _chain_sums(raw.metres, chain_ptr, chain_arcs)
        geom_s = _straight_chain_cumulative(chain_ptr, chain_arcs, raw.seconds)
        release("seconds")
        geom_m = _straight_chain_cumulative(chain_ptr, chain_arcs, raw.metres)
        release("metres")
        release_free_heap()
        pts = _straight_chain_nodes(chain_ptr, chain_arcs, raw.u, raw.v)
        geom_indptr = np.zeros(n_chain + 1, np.int64)
        np.cumsum(np.diff(chain_ptr) + 1, out=geom_indptr[1:])
        del chain_arcs, chain_ptr
        release("u", "v")
        release_free_heap()
        gx, gy = _project_points(to_xy, raw.lon, raw.lat, pts)
        del pts
        release("lon", "lat")
    else:
        chain_id = np.repeat(np.arange(n_chain), np.diff(chain_ptr))
        sec_c = raw.seconds[chain_arcs]
        met_c = raw.metres[chain_arcs]
        cum_s = np.cumsum(sec_c)
        cum_m = np.cumsum(met_c)
        chain_start_s = np.concatenate([[0.0], cum_s])[chain_ptr[:-1]]
        chain_start_m = np.concatenate([[0.0], cum_m])[chain_ptr[:-1]]
        cum_s -= sec_c  # seconds before this raw arc in its chain, in place
        cum_s -= chain_start_s[chain_id]
        off_s = cum_s
        cum_m -= met_c
        cum_m -= chain_start_m[chain_id]
        off_m = cum_m
        arc_seconds = np.add.reduceat(sec_c, chain_ptr[:-1]) if n_chain else np.zeros(0)
        arc_metres = np.add.reduceat(met_c, chain_ptr[:-1]) if n_chain else np.zeros(0)
        # the per-raw-arc work arrays go as soon as they are used (country-size inputs)
        del sec_c, met_c, chain_start_s, chain_start_m

        # geometry of merged arcs: raw polylines in chain order, the joint point kept once
        pos_in_chain = np.arange(chain_arcs.shape[0]) - chain_ptr[chain_id]
        rptr = raw.geom_indptr
        assert rptr is not None
        starts = rptr[chain_arcs] + (pos_in_chain > 0)
        counts = rptr[chain_arcs + 1] - starts
        del pos_in_chain
        per_chain_pts = np.bincount(chain_id, weights=counts, minlength=n_chain).astype(np.int64)
        geom_indptr = np.concatenate([[0], np.cumsum(per_chain_pts)])
        del chain_id, per_chain_pts
        pt_idx = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        pt_idx += np.arange(pt_idx.shape[0])
        del starts
        pt_arc = np.repeat(np.arange(chain_arcs.shape[0]), counts)  # position in chain_arcs
        del counts
        ra = chain_arcs[pt_arc]
        del chain_arcs, chain_ptr
        # cumulative seconds/metres at each point: offset + fraction x raw arc (in place)
        part = frac[pt_idx]
        part *= raw.seconds[ra]
        part += off_s[pt_arc]
        geom_s = part.astype(np.float32)
        part = frac[pt_idx]
        part *= raw.metres[ra]
        part += off_m[pt_arc]
        geom_m = part.astype(np.float32)
        del part, off_s, off_m, pt_arc, ra, frac
        gx, gy = rgx[pt_idx], rgy[pt_idx]
        del rgx, rgy, pt_idx
        release("seconds", "metres")

    np.maximum(arc_seconds, MIN_TRAVEL_SECONDS, out=arc_seconds)

    release("u", "v", "geom_indptr")
    release_free_heap()
    twin = _find_twins(arc_u, arc_v, arc_metres, geom_indptr, gx, gy)
    arc_metres = arc_metres.astype(np.float32)  # stored as float32; the float64 is done

    # 3. routing CSR: no self-loops, fastest of parallel arcs
    n_cand = int(np.count_nonzero(arc_u != arc_v))
    indptr, indices, csr_arc = _routing_csr(n, arc_u, arc_v, arc_seconds)
    arc_seconds = arc_seconds.astype(np.float32)  # chosen by float64; stored as float32
    scc = strong_components(indptr, indices, n)

    meta = dict(meta)
    meta.update(
        crs=crs,
        bbox=[float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())],
        highway_classes=list(raw.highway_classes),
        counts={
            "raw_nodes": int(n_raw),
            "raw_arcs": int(a_raw),
            "nodes": int(n),
            "arcs": int(n_chain),
            "routing_arcs": int(csr_arc.shape[0]),
            "parallel_arcs_merged": int(n_cand - csr_arc.shape[0]),
            "self_loops": int(n_chain - n_cand),
            "two_way_pairs": int((twin >= 0).sum() // 2),
        },
    )
    graph = CompiledGraph(
        node_ids=node_ids,
        lon=lon,
        lat=lat,
        x=x,
        y=y,
        indptr=indptr,
        indices=indices,
        seconds=arc_seconds[csr_arc],
        metres=arc_metres[csr_arc],
        csr_arc=csr_arc,
        arc_u=arc_u,
        arc_v=arc_v,
        arc_seconds=arc_seconds,
        arc_metres=arc_metres,
        arc_highway=arc_highway,
        arc_osmid=arc_osmid,
        arc_twin=twin,
        geom_indptr=np.asarray(geom_indptr, dtype=np.int64),
        geom_x=gx,
        geom_y=gy,
        geom_s=geom_s,
        geom_m=geom_m,
        scc=scc,
        meta=meta,
    )
    graph._check()
    log.info(
        "compiled graph: %d raw nodes -> %d nodes, %d arcs (%d routing arcs), %d components",
        n_raw,
        n,
        n_chain,
        csr_arc.shape[0],
        graph.components().n_components,
    )
    return graph
