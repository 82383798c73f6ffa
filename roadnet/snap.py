"""Attach points (basic-area centroids, reps' homes, offices) to the nearest road **edge**.

A point P is projected onto the closest piece of road (not merely the closest junction). The
cost of a trip from P is

``connector + remaining time along the arc to its head``

and, on a two-way road, ``connector + time back along the reverse arc to the tail``; the cost
of arriving at P is the partial time from the arc's tail (and, on a two-way road, from the
head along the reverse arc) plus the connector. One-way roads are respected: a point on a
one-way street is left and reached only in the street's direction.

``connector`` is the straight-line distance from P to the road at the **connector speed**
(``settings.connector_speed_kmh``, 15 km/h by default: parking, driveways and walking to the
car). Snaps farther than ``max_distance_m`` (``settings.max_snap_distance_m``, 1000 m by
default) are **flagged** and reported, never hidden; the matrix functions then follow the
caller's ``far`` policy.

Points snap only to roads inside strongly connected components of at least
``min_component_nodes`` nodes (default 50, or the largest component when none is that big), so
that a point never lands on a one-way stub cut at the extract border from which nothing is
reachable. Large separate components (an island such as Gozo) are eligible.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

import numpy as np
import pyproj
import shapely

from roadnet.exceptions import CRSError, SnapError
from roadnet.graph import CompiledGraph
from roadnet.settings import settings

__all__ = ["SnappedPoints", "nearest_arcs", "point_labels", "snap_points"]

log = logging.getLogger(__name__)

#: a snap within this many metres of an arc end is *at* that junction
_AT_NODE_M = 1e-3


@dataclasses.dataclass(frozen=True, eq=False)
class SnappedPoints:
    """Points attached to a graph's arcs (all arrays have one row per point).

    Attributes
    ----------
    lon, lat
        Input coordinates (WGS84).
    arc
        Arc each point is attached to.
    position_m
        Distance along the arc's geometry from its tail, in metres.
    snap_distance_m
        Straight-line distance from the point to the road.
    connector_seconds
        ``snap_distance_m`` at the connector speed.
    out_node, out_seconds, out_metres
        ``(n, 2)``: nodes a trip *from* the point enters the network at (head of the arc; tail
        via the reverse arc on two-way roads, else -1) and the road seconds/metres to them.
    in_node, in_seconds, in_metres
        ``(n, 2)``: nodes a trip *to* the point leaves the network from (tail of the arc; head
        via the reverse arc) and the road seconds/metres from them.
    flagged
        Snap distance above ``max_distance_m``.
    component
        Strongly connected component of the snapped road (0 = largest).
    max_distance_m, connector_speed_kmh
        Parameters used.
    """

    lon: np.ndarray
    lat: np.ndarray
    arc: np.ndarray
    position_m: np.ndarray
    snap_distance_m: np.ndarray
    connector_seconds: np.ndarray
    out_node: np.ndarray
    out_seconds: np.ndarray
    out_metres: np.ndarray
    in_node: np.ndarray
    in_seconds: np.ndarray
    in_metres: np.ndarray
    flagged: np.ndarray
    component: np.ndarray
    max_distance_m: float
    connector_speed_kmh: float

    def __len__(self) -> int:
        return int(self.lon.shape[0])

    def params(self) -> dict[str, Any]:
        """Snapping parameters (part of a matrix's identity)."""
        return {
            "max_distance_m": self.max_distance_m,
            "connector_speed_kmh": self.connector_speed_kmh,
        }

    @property
    def labels(self) -> np.ndarray:
        """Coordinate labels of the points (see :func:`point_labels`)."""
        return point_labels(self.lon, self.lat)

    def subset(self, rows: np.ndarray) -> SnappedPoints:
        """The points at ``rows`` (positions), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        changes = {
            f.name: getattr(self, f.name)[rows]
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        return dataclasses.replace(self, **changes)


def _eligible_arcs(graph: CompiledGraph, min_component_nodes: int) -> np.ndarray:
    sizes = np.bincount(graph.scc)
    big = sizes >= min_component_nodes
    if not big.any():
        big[0] = True  # label 0 is the largest component
    ok_node = big[graph.scc]
    a = np.arange(graph.arc_u.shape[0])
    primary = (graph.arc_twin < 0) | (a < graph.arc_twin)
    return np.flatnonzero(primary & ok_node[graph.arc_u] & ok_node[graph.arc_v])


def point_labels(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """One int64 per point that identifies its coordinates to 1e-7 degree (about 1 cm).

    The label packs the rounded longitude and latitude (exact, invertible): equal labels mean
    the same place. Matrices are cached and assembled by these labels.
    """
    lon_i = np.round(np.asarray(lon, dtype=np.float64) * 1e7).astype(np.int64)
    lat_i = np.round(np.asarray(lat, dtype=np.float64) * 1e7).astype(np.int64)
    return (lon_i << 32) | (lat_i + (1 << 31))


class _SegmentIndex:
    """STRtree over the road segments of the eligible arcs (built once per graph)."""

    def __init__(self, graph: CompiledGraph, min_component_nodes: int) -> None:
        arcs = _eligible_arcs(graph, min_component_nodes)
        ptr = graph.geom_indptr
        nseg = ptr[arcs + 1] - ptr[arcs] - 1
        seg_arc = np.repeat(arcs, nseg)
        first = np.repeat(ptr[arcs], nseg)
        within = np.arange(seg_arc.shape[0]) - np.repeat(np.cumsum(nseg) - nseg, nseg)
        p0 = first + within
        self.seg_arc = seg_arc
        self.seg_p0 = p0
        coords = np.empty((2 * p0.shape[0], 2))
        coords[0::2, 0], coords[0::2, 1] = graph.geom_x[p0], graph.geom_y[p0]
        coords[1::2, 0], coords[1::2, 1] = graph.geom_x[p0 + 1], graph.geom_y[p0 + 1]
        lines = shapely.linestrings(coords, indices=np.repeat(np.arange(p0.shape[0]), 2))
        self.tree = shapely.STRtree(lines)


_INDEX_CACHE: dict[tuple[int, int], tuple[CompiledGraph, _SegmentIndex]] = {}


def _segment_index(graph: CompiledGraph, min_component_nodes: int) -> _SegmentIndex:
    key = (id(graph), min_component_nodes)
    hit = _INDEX_CACHE.get(key)
    if hit is not None and hit[0] is graph:
        return hit[1]
    idx = _SegmentIndex(graph, min_component_nodes)
    if len(_INDEX_CACHE) > 4:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[key] = (graph, idx)
    return idx


@functools.lru_cache(maxsize=8)
def _from_wgs84(crs: str) -> pyproj.Transformer:
    """The lon/lat -> ``crs`` transformer (made once: creating one takes about a millisecond)."""
    return pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def _check_lonlat(lon: np.ndarray, lat: np.ndarray) -> None:
    if lon.shape != lat.shape or lon.ndim != 1:
        raise SnapError(
            f"lon and lat must be 1-D arrays of one length, got {lon.shape}, {lat.shape}"
        )
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        raise SnapError(
            f"{int(bad.sum())} point(s) have missing coordinates (rows "
            f"{np.flatnonzero(bad)[:10].tolist()})"
        )
    if np.any(np.abs(lon) > 180) or np.any(np.abs(lat) > 90):
        raise CRSError(
            "coordinates are outside the longitude/latitude range (|lon| <= 180, |lat| <= 90): "
            "the points are probably in a projected CRS; give them with their CRS or "
            "reproject to EPSG:4326"
        )


def snap_points(
    graph: CompiledGraph,
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    max_distance_m: float | None = None,
    connector_speed_kmh: float | None = None,
    min_component_nodes: int = 50,
    warn: bool = True,
) -> SnappedPoints:
    """Attach WGS84 points to the nearest road edge of ``graph``.

    Parameters
    ----------
    graph
        The compiled road graph.
    lon, lat
        Point coordinates in degrees (EPSG:4326).
    max_distance_m
        Snaps farther than this are flagged; default ``settings.max_snap_distance_m``.
    connector_speed_kmh
        Speed on the straight connector; default ``settings.connector_speed_kmh``.
    min_component_nodes
        Smallest strongly connected component a point may snap into.
    warn
        Log a warning when points are flagged.

    Returns
    -------
    SnappedPoints

    Raises
    ------
    CRSError
        When coordinates are not longitude/latitude.
    SnapError
        When no point lies within ``max_distance_m`` of the network (wrong CRS or wrong
        road extract) or coordinates are missing.
    """
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    _check_lonlat(lon, lat)
    max_d = float(max_distance_m if max_distance_m is not None else settings.max_snap_distance_m)
    kmh = float(
        connector_speed_kmh if connector_speed_kmh is not None else settings.connector_speed_kmh
    )
    if not (max_d > 0 and kmh > 0):
        raise SnapError(f"max_distance_m and connector_speed_kmh must be > 0, got {max_d}, {kmh}")
    n = lon.shape[0]
    to_xy = _from_wgs84(graph.crs)
    px, py = (np.asarray(c, dtype=np.float64) for c in to_xy.transform(lon, lat))
    index = _segment_index(graph, min_component_nodes)
    if n:
        _, seg = index.tree.query_nearest(shapely.points(px, py), all_matches=False)
    else:
        seg = np.zeros(0, dtype=np.int64)
    arc = index.seg_arc[seg]
    p0 = index.seg_p0[seg]
    x0, y0 = graph.geom_x[p0], graph.geom_y[p0]
    dx, dy = graph.geom_x[p0 + 1] - x0, graph.geom_y[p0 + 1] - y0
    len2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(len2 > 0, ((px - x0) * dx + (py - y0) * dy) / np.where(len2 > 0, len2, 1), 0)
    t = np.clip(t, 0.0, 1.0)
    dist = np.hypot(x0 + t * dx - px, y0 + t * dy - py)

    def gm(i: np.ndarray) -> np.ndarray:  # only the entries needed, not the whole array
        return graph.geom_m[i].astype(np.float64)

    def gs(i: np.ndarray) -> np.ndarray:
        return graph.geom_s[i].astype(np.float64)

    pos_m = gm(p0) + t * (gm(p0 + 1) - gm(p0))
    pos_s = gs(p0) + t * (gs(p0 + 1) - gs(p0))
    arc_s = graph.arc_seconds[arc].astype(np.float64)
    arc_m = graph.arc_metres[arc].astype(np.float64)

    out_node = np.full((n, 2), -1, dtype=np.int32)
    in_node = np.full((n, 2), -1, dtype=np.int32)
    out_s = np.full((n, 2), np.inf)
    out_m = np.full((n, 2), np.inf)
    in_s = np.full((n, 2), np.inf)
    in_m = np.full((n, 2), np.inf)
    out_node[:, 0], out_s[:, 0], out_m[:, 0] = graph.arc_v[arc], arc_s - pos_s, arc_m - pos_m
    in_node[:, 0], in_s[:, 0], in_m[:, 0] = graph.arc_u[arc], pos_s, pos_m

    twin = graph.arc_twin[arc]
    has = twin >= 0
    if has.any():
        b = twin[has]
        # the twin's geometry is this arc's reversed: segment k of arc a is segment
        # (npts - 2 - k) of the twin, traversed from the other end
        ptr = graph.geom_indptr
        k = p0[has] - ptr[arc[has]]
        npts = ptr[arc[has] + 1] - ptr[arc[has]]
        q0 = ptr[b] + (npts - 2 - k)
        tb = 1.0 - t[has]
        pos_sb = gs(q0) + tb * (gs(q0 + 1) - gs(q0))
        pos_mb = gm(q0) + tb * (gm(q0 + 1) - gm(q0))
        bs = graph.arc_seconds[b].astype(np.float64)
        bm = graph.arc_metres[b].astype(np.float64)
        out_node[has, 1] = graph.arc_v[b]
        out_s[has, 1], out_m[has, 1] = bs - pos_sb, bm - pos_mb
        in_node[has, 1] = graph.arc_u[b]
        in_s[has, 1], in_m[has, 1] = pos_sb, pos_mb
    # On a one-way road the second slot is free. A point that lands exactly on the arc's tail
    # is *at* that junction: it may leave by any road out of it (not only along this arc);
    # likewise a point exactly at the head is reached by any road into it.
    one_way = ~has
    at_tail = one_way & (pos_m <= _AT_NODE_M)
    at_head = one_way & (pos_m >= arc_m - _AT_NODE_M)
    out_node[at_tail, 1] = graph.arc_u[arc[at_tail]]
    out_s[at_tail, 1] = 0.0
    out_m[at_tail, 1] = 0.0
    in_node[at_head, 1] = graph.arc_v[arc[at_head]]
    in_s[at_head, 1] = 0.0
    in_m[at_head, 1] = 0.0
    for arr in (out_s, out_m, in_s, in_m):
        np.maximum(arr, 0.0, out=arr)

    flagged = dist > max_d
    if n and flagged.all():
        raise SnapError(
            f"none of the {n} points lies within {max_d:g} m of the road network "
            f"(nearest is {dist.min():.0f} m away): check the points' CRS and that the road "
            f"data covers them (graph bbox {graph.meta.get('bbox')})"
        )
    if warn and flagged.any():
        log.warning(
            "%d of %d points are farther than %g m from any road (max %.0f m); they are flagged",
            int(flagged.sum()),
            n,
            max_d,
            float(dist.max()),
        )
    return SnappedPoints(
        lon=lon,
        lat=lat,
        arc=arc.astype(np.int32),
        position_m=pos_m,
        snap_distance_m=dist,
        connector_seconds=dist / (kmh / 3.6),
        out_node=out_node,
        out_seconds=out_s,
        out_metres=out_m,
        in_node=in_node,
        in_seconds=in_s,
        in_metres=in_m,
        flagged=flagged,
        component=graph.scc[graph.arc_v[arc]].astype(np.int32),
        max_distance_m=max_d,
        connector_speed_kmh=kmh,
    )


def nearest_arcs(
    graph: CompiledGraph,
    lon: float,
    lat: float,
    number: int,
    *,
    min_component_nodes: int = 50,
    max_distance_m: float = 5000.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``number`` roads nearest to one WGS84 point, nearest first.

    Each road counts once (a two-way road's arcs share one geometry; the arc returned is the
    one :func:`snap_points` would attach to). Only roads within ``max_distance_m`` are searched.

    Returns
    -------
    tuple of numpy.ndarray
        ``arcs``, ``distance_m`` (straight line from the point to the road) and ``position_m``
        (along the arc's geometry from its tail to the nearest point); at most ``number`` each.
    """
    pt = np.array([lon], dtype=np.float64), np.array([lat], dtype=np.float64)
    _check_lonlat(*pt)
    if number < 1:
        raise SnapError(f"number must be >= 1, got {number!r}")
    to_xy = _from_wgs84(graph.crs)
    px, py = (float(np.asarray(c).ravel()[0]) for c in to_xy.transform(*pt))
    point = shapely.Point(px, py)
    index = _segment_index(graph, min_component_nodes)
    radius = 50.0
    while True:
        seg = index.tree.query(point, predicate="dwithin", distance=radius)
        arcs = np.unique(index.seg_arc[seg])
        if arcs.shape[0] >= number or radius >= max_distance_m:
            break
        radius = min(radius * 4, max_distance_m)
    ptr = graph.geom_indptr
    lines = [
        shapely.linestrings(
            np.column_stack([graph.geom_x[ptr[a] : ptr[a + 1]], graph.geom_y[ptr[a] : ptr[a + 1]]])
        )
        for a in arcs
    ]
    dist = np.array([line.distance(point) for line in lines], dtype=np.float64)
    pos = np.array([line.project(point) for line in lines], dtype=np.float64)
    order = np.argsort(dist, kind="stable")[:number]
    # the geometry's length equals the arc's metres up to rounding; keep positions inside
    pos = np.minimum(pos[order], graph.arc_metres[arcs[order]].astype(np.float64))
    return arcs[order].astype(np.int64), dist[order], pos
