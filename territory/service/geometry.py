"""Geometry of snapped points and routes: WGS84 locations, paths on the road graph, polylines.

A route's geometry is found by a Dijkstra search on the road graph augmented with the two
snapped points (:func:`roadnet.matrix.augment`, the graph the Dijkstra engine of
:func:`roadnet.matrix.drive_time_matrix` runs on), bounded by the leg's time from the table, and
the arcs of the path are laid end to end: the part of the origin's road after the snap, every
arc's full polyline, the part of the destination's road before the snap.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numba
import numpy as np
import pyproj
import shapely
from scipy.sparse.csgraph import dijkstra

from roadnet.graph import CompiledGraph
from roadnet.matrix import augment
from roadnet.snap import SnappedPoints

__all__ = [
    "decode_polyline",
    "encode_polyline",
    "haversine_m",
    "leg_path_xy",
    "point_on_arc",
    "simplify_xy",
    "to_lonlat",
]


@functools.lru_cache(maxsize=8)
def _to_wgs84(crs: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def to_lonlat(graph: CompiledGraph, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(n, 2)`` lon/lat of projected coordinates of ``graph``'s CRS."""
    lon, lat = _to_wgs84(graph.crs).transform(np.asarray(x, float), np.asarray(y, float))
    return np.column_stack([np.atleast_1d(lon), np.atleast_1d(lat)])


def point_on_arc(
    graph: CompiledGraph, arc: np.ndarray, position_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Projected ``x, y`` of the points ``position_m`` metres along each arc's geometry."""
    arc = np.ascontiguousarray(arc, dtype=np.int64)
    pos = np.ascontiguousarray(position_m, dtype=np.float64)
    return _point_on_arc(graph.geom_indptr, graph.geom_m, graph.geom_x, graph.geom_y, arc, pos)


@numba.njit(cache=True)
def _point_on_arc(
    ptr: Any, gm: Any, gx: Any, gy: Any, arc: Any, pos: Any
) -> tuple[Any, Any]:  # pragma: no cover (compiled)
    """Per point: binary search of the arc's geometry for the last point at or before ``pos``
    (the segment starts at most at the last-but-one point), then linear interpolation."""
    n = arc.shape[0]
    x = np.empty(n, np.float64)
    y = np.empty(n, np.float64)
    for i in range(n):
        a = arc[i]
        lo = np.int64(ptr[a])
        hi = np.int64(ptr[a + 1]) - 2
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if np.float64(gm[mid]) <= pos[i]:
                lo = mid
            else:
                hi = mid - 1
        m0 = np.float64(gm[lo])
        m1 = np.float64(gm[lo + 1])
        t = (pos[i] - m0) / (m1 - m0) if m1 > m0 else 0.0
        if not t >= 0.0:  # also NaN, as np.clip would not
            t = 0.0 if t < 0.0 else t
        if t > 1.0:
            t = 1.0
        x0, y0 = np.float64(gx[lo]), np.float64(gy[lo])
        x[i] = x0 + t * (np.float64(gx[lo + 1]) - x0)
        y[i] = y0 + t * (np.float64(gy[lo + 1]) - y0)
    return x, y


def _cut(graph: CompiledGraph, arc: int, m0: float, m1: float) -> tuple[np.ndarray, np.ndarray]:
    """The polyline of ``arc`` from ``m0`` to ``m1`` metres along it (reversed if m0 > m1)."""
    ptr = graph.geom_indptr
    lo, hi = int(ptr[arc]), int(ptr[arc + 1])
    gx, gy = graph.geom_x[lo:hi], graph.geom_y[lo:hi]
    gm = graph.geom_m[lo:hi].astype(np.float64)
    a, b = (m0, m1) if m0 <= m1 else (m1, m0)
    a = min(max(a, 0.0), float(gm[-1]))
    b = min(max(b, 0.0), float(gm[-1]))
    xa, ya = np.interp(a, gm, gx), np.interp(a, gm, gy)
    xb, yb = np.interp(b, gm, gx), np.interp(b, gm, gy)
    inner = (gm > a) & (gm < b)
    xs = np.concatenate([[xa], gx[inner], [xb]])
    ys = np.concatenate([[ya], gy[inner], [yb]])
    if m0 > m1:
        xs, ys = xs[::-1], ys[::-1]
    return xs, ys


def _arc_between(graph: CompiledGraph, u: int, v: int) -> int:
    lo, hi = int(graph.indptr[u]), int(graph.indptr[u + 1])
    j = lo + int(np.flatnonzero(graph.indices[lo:hi] == v)[0])
    return int(graph.csr_arc[j])


def _end_slot(nodes: np.ndarray, costs: np.ndarray, node: int) -> int:
    """Which of a point's two entry/exit slots leads to ``node`` (the cheaper if both)."""
    slots = [k for k in range(2) if nodes[k] == node]
    return min(slots, key=lambda k: costs[k])


def leg_path_xy(
    graph: CompiledGraph, o: SnappedPoints, d: SnappedPoints, seconds: float
) -> tuple[np.ndarray, np.ndarray]:
    """Projected polyline of the fastest trip from the one point ``o`` to the one point ``d``.

    ``seconds`` is the trip's time from the table (the search stops just beyond it).
    """
    ok = np.ones(1, dtype=bool)
    aug = augment(graph, o, d, ok, ok)
    src, dst = int(aug.src[0]), int(aug.dst[0])
    limit = seconds * (1 + 1e-6) + 1e-3
    _, pred = dijkstra(aug.csr, indices=src, return_predecessors=True, limit=limit)
    chain = [dst]
    while chain[-1] != src:
        p = int(pred[chain[-1]])
        if p < 0:
            raise RuntimeError("no path within the table time: graph and table disagree")
        chain.append(p)
    chain.reverse()
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    o_arc, d_arc = int(o.arc[0]), int(d.arc[0])
    o_pos, d_pos = float(o.position_m[0]), float(d.position_m[0])
    if len(chain) == 2:  # along one road piece, never touching a junction
        x, y = _cut(graph, o_arc, o_pos, d_pos)
        return x, y
    nodes = chain[1:-1]
    # from the origin's snap to the first junction
    k = _end_slot(o.out_node[0], o.out_seconds[0], nodes[0])
    end = float(graph.arc_metres[o_arc])
    if k == 0:
        x, y = _cut(graph, o_arc, o_pos, end)
    elif graph.arc_twin[o_arc] >= 0:
        x, y = _cut(graph, o_arc, o_pos, 0.0)
    else:  # at the tail of a one-way road
        x, y = _cut(graph, o_arc, o_pos, o_pos)
    xs.append(x)
    ys.append(y)
    for u, v in itertools.pairwise(nodes):
        a = _arc_between(graph, u, v)
        lo, hi = int(graph.geom_indptr[a]), int(graph.geom_indptr[a + 1])
        xs.append(graph.geom_x[lo:hi])
        ys.append(graph.geom_y[lo:hi])
    # from the last junction to the destination's snap
    k = _end_slot(d.in_node[0], d.in_seconds[0], nodes[-1])
    end = float(graph.arc_metres[d_arc])
    if k == 0:
        x, y = _cut(graph, d_arc, 0.0, d_pos)
    elif graph.arc_twin[d_arc] >= 0:
        x, y = _cut(graph, d_arc, end, d_pos)
    else:  # at the head of a one-way road
        x, y = _cut(graph, d_arc, d_pos, d_pos)
    xs.append(x)
    ys.append(y)
    return _dedupe(np.concatenate(xs), np.concatenate(ys))


def _dedupe(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.shape[0] < 2:
        return x, y
    keep = np.ones(x.shape[0], dtype=bool)
    keep[1:] = (np.diff(x) != 0) | (np.diff(y) != 0)
    return x[keep], y[keep]


def simplify_xy(x: np.ndarray, y: np.ndarray, tolerance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Douglas-Peucker simplification of a projected polyline (end points kept)."""
    if x.shape[0] < 3:
        return x, y
    line = shapely.simplify(shapely.linestrings(np.column_stack([x, y])), tolerance_m)
    c = shapely.get_coordinates(line)
    return c[:, 0], c[:, 1]


def encode_polyline(lonlat: np.ndarray, precision: int) -> str:
    """Google's encoded polyline (``lat,lon`` pairs) with ``precision`` decimal digits."""
    factor = 10**precision
    ints = np.round(np.asarray(lonlat, dtype=np.float64)[:, ::-1] * factor).astype(np.int64)
    deltas = np.diff(ints, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).ravel()
    out: list[str] = []
    for value in deltas.tolist():
        v = ~(value << 1) if value < 0 else value << 1
        while v >= 0x20:
            out.append(chr((0x20 | (v & 0x1F)) + 63))
            v >>= 5
        out.append(chr(v + 63))
    return "".join(out)


def decode_polyline(text: str, precision: int) -> np.ndarray:
    """``(n, 2)`` lon/lat of an encoded polyline; raises ``ValueError`` when malformed."""
    values: list[int] = []
    shift = result = 0
    for ch in text:
        b = ord(ch) - 63
        if b < 0 or b > 0x3F + 0x20:
            raise ValueError(f"character {ch!r} is not part of an encoded polyline")
        result |= (b & 0x1F) << shift
        shift += 5
        if b < 0x20:
            values.append(~(result >> 1) if result & 1 else result >> 1)
            shift = result = 0
    if shift or len(values) % 2:
        raise ValueError("the encoded polyline ends in the middle of a coordinate")
    arr = np.cumsum(np.array(values, dtype=np.int64).reshape(-1, 2), axis=0)
    return (arr[:, ::-1] / 10**precision).astype(np.float64)


def haversine_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Great-circle metres (broadcasting), on a sphere of OSRM's radius 6 372 797.56 m."""
    r = 6372797.560856
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
