"""The OSRM HTTP API v5 services ``table``, ``nearest`` and ``route`` on a served region.

The OSRM documentation (``docs/http.md`` of Project-OSRM/osrm-backend) is the spec; what
differs, and why:

* ``durations`` are roadnet's: road seconds plus the straight connector from each point to its
  road at the connector speed (:mod:`roadnet.snap`), exactly the values of
  :func:`roadnet.matrix.drive_time_matrix` on the same points, not rounded to 0.1 s;
  ``distances`` are road metres along the fastest route (connectors not counted).
* Waypoint ``name`` is the OSM ``name`` of the snapped road when the region was served from a
  ``--pbf`` file (:func:`roadnet.names.road_names`), ``""`` for unnamed roads (as OSRM) and
  for a region served from a saved ``--graph``, which keeps way ids but no names. No ``hint`` is
  returned and ``hints``,
  ``bearings``, ``approaches``, ``exclude`` and route ``steps``/``annotations`` are answered with
  ``NotImplemented``.
* ``route`` returns one route (``alternatives`` is accepted, none are computed); its legs have
  no steps; ``overview=simplified`` is a 10 m Douglas-Peucker simplification.

Everything here is plain Python on NumPy arrays; :mod:`territory.service.app` wires it to HTTP.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from roadnet.exceptions import RoadnetError
from roadnet.matrix import drive_time_matrix
from roadnet.snap import SnappedPoints, nearest_arcs
from territory.exceptions import RequestError
from territory.service.geometry import (
    decode_polyline,
    encode_polyline,
    haversine_m,
    leg_path_xy,
    point_on_arc,
    simplify_xy,
    to_lonlat,
)
from territory.service.regions import Region
from territory.service.state import matrix_json

__all__ = [
    "OsrmLimits",
    "nearest_response",
    "parse_coordinates",
    "route_response",
    "table_response",
]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"^({_NUMBER}),({_NUMBER})$")
_PAIRS = re.compile(rf"{_NUMBER},{_NUMBER}(?:;{_NUMBER},{_NUMBER})*")
_POLYLINE = re.compile(r"^(polyline6?)\((.*)\)$")
_COMMON = {"generate_hints", "skip_waypoints", "radiuses"}
_NOT_IMPLEMENTED = {"hints", "bearings", "approaches", "exclude", "snapping"}
_SIMPLIFY_M = 10.0


@dataclasses.dataclass(frozen=True)
class OsrmLimits:
    """Limits of the OSRM services (as ``osrm-routed``'s ``--max-*`` options).

    Attributes
    ----------
    max_table_size
        ``sources x destinations`` may not exceed its square (OSRM's rule).
    max_viaroute_size
        Coordinates of one route.
    max_nearest_size
        Largest ``number`` of nearest roads.
    threads
        Threads of one table query (``None`` = all cores).
    """

    max_table_size: int = 1000
    max_viaroute_size: int = 500
    max_nearest_size: int = 100
    threads: int | None = None


# ------------------------------------------------------------------------------ parsing
def parse_coordinates(text: str, max_count: int | None = None) -> np.ndarray:
    """``(n, 2)`` lon/lat from OSRM's ``{lon},{lat};...`` or ``polyline(...)``/``polyline6(...)``.

    A trailing ``.json`` (OSRM's format suffix) is accepted.

    Raises
    ------
    RequestError
        ``InvalidUrl`` when the text does not parse, ``InvalidOptions`` when a coordinate is
        out of range (|lon| <= 180, |lat| <= 90), ``TooBig`` beyond ``max_count``.
    """
    text = text.removesuffix(".json")
    if not text:
        raise RequestError("InvalidUrl", "no coordinates given: expected {lon},{lat};{lon},{lat}")
    poly = _POLYLINE.match(text)
    if poly:
        try:
            coords = decode_polyline(poly.group(2), 6 if poly.group(1) == "polyline6" else 5)
        except ValueError as exc:
            raise RequestError("InvalidUrl", f"coordinates {text[:80]!r}: {exc}") from None
    elif _PAIRS.fullmatch(text):  # the common case: one pass, NumPy converts the numbers
        coords = np.array(text.replace(";", ",").split(","), dtype=np.float64).reshape(-1, 2)
    else:  # find the first bad coordinate for the message
        parts = text.split(";")
        if max_count is not None and len(parts) > max_count:
            raise RequestError(
                "TooBig", f"{len(parts)} coordinates given; this server accepts at most {max_count}"
            )
        rows = []
        for i, part in enumerate(parts):
            m = _PAIR.match(part)
            if m is None:
                raise RequestError(
                    "InvalidUrl",
                    f"coordinate {i} is {part[:40]!r}; expected {{longitude}},{{latitude}} in "
                    "decimal degrees, e.g. 13.388860,52.517037",
                )
            rows.append((float(m.group(1)), float(m.group(2))))
        coords = np.array(rows, dtype=np.float64).reshape(-1, 2)
    if coords.shape[0] == 0:
        raise RequestError("InvalidUrl", "no coordinates given: expected {lon},{lat};{lon},{lat}")
    if max_count is not None and coords.shape[0] > max_count:
        raise RequestError(
            "TooBig",
            f"{coords.shape[0]} coordinates given; this server accepts at most {max_count}",
        )
    bad = ~(np.isfinite(coords).all(axis=1))
    bad |= (np.abs(coords[:, 0]) > 180) | (np.abs(coords[:, 1]) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RequestError(
            "InvalidOptions",
            f"coordinate {i} ({coords[i, 0]:g},{coords[i, 1]:g}) is invalid: longitude must be "
            "in [-180, 180] and latitude in [-90, 90], given as longitude,latitude",
        )
    return coords


def _check_names(query: Mapping[str, str], allowed: set[str]) -> None:
    for name in query:
        if name in _NOT_IMPLEMENTED:
            raise RequestError("NotImplemented", f"option {name!r} is not supported by roadnet")
        if name not in allowed:
            raise RequestError(
                "InvalidQuery",
                f"unknown option {name!r}; valid options: {', '.join(sorted(allowed))}",
            )


def _bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise RequestError("InvalidQuery", f"{name}={raw!r}: expected true or false")
    return raw == "true"


def _positive(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise RequestError("InvalidQuery", f"{name}={raw!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise RequestError("InvalidValue", f"{name} must be > 0, got {raw}")
    return value


def _indices(query: Mapping[str, str], name: str, n: int) -> np.ndarray:
    raw = query.get(name)
    if raw is None or raw == "all":
        return np.arange(n)
    try:
        idx = np.array([int(v) for v in raw.split(";")], dtype=np.int64)
    except ValueError:
        raise RequestError(
            "InvalidQuery", f"{name}={raw[:60]!r}: expected 'all' or indices like 0;2;5"
        ) from None
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise RequestError(
            "InvalidOptions",
            f"{name}={raw[:60]!r}: indices must be in [0, {n - 1}] (there are {n} coordinates)",
        )
    return idx


def _radiuses(query: Mapping[str, str], n: int) -> np.ndarray:
    raw = query.get("radiuses")
    out = np.full(n, np.inf)
    if raw is None:
        return out
    parts = raw.split(";")
    if len(parts) != n:
        raise RequestError(
            "InvalidOptions",
            f"radiuses has {len(parts)} values for {n} coordinates; give one per coordinate",
        )
    for i, p in enumerate(parts):
        if p in ("", "unlimited"):
            continue
        try:
            out[i] = float(p)
        except ValueError:
            raise RequestError("InvalidQuery", f"radiuses: {p[:20]!r} is not a number") from None
        if not (math.isfinite(out[i]) and out[i] >= 0):
            raise RequestError("InvalidValue", f"radiuses: {p!r} must be >= 0 metres")
    return out


# ------------------------------------------------------------------------------ snapping
def _snap(region: Region, coords: np.ndarray, radiuses: np.ndarray) -> SnappedPoints:
    try:
        snapped = region.snap(coords[:, 0], coords[:, 1])
    except RoadnetError as exc:
        raise RequestError("NoSegment", f"could not find a matching road segment: {exc}") from None
    too_far = snapped.snap_distance_m > radiuses
    if too_far.any():
        i = int(np.flatnonzero(too_far)[0])
        raise RequestError(
            "NoSegment",
            f"Could not find a matching segment for coordinate {i} within radius "
            f"{radiuses[i]:g} m (nearest road {snapped.snap_distance_m[i]:.1f} m away)",
        )
    return snapped


def _waypoints(region: Region, snapped: SnappedPoints) -> tuple[list[dict[str, Any]], np.ndarray]:
    g = region.graph
    x, y = point_on_arc(g, snapped.arc, snapped.position_m)
    lonlat = to_lonlat(g, x, y)
    dist = np.round(snapped.snap_distance_m.astype(np.float64), 6).tolist()
    loc = np.round(lonlat, 6).tolist()
    names = region.names_of_arcs(snapped.arc)
    wps = [
        {"distance": dist[i], "name": names[i], "location": loc[i]}  # roadnet issues no hints
        for i in range(len(dist))
    ]
    return wps, lonlat


# ------------------------------------------------------------------------------ services
def table_response(
    region: Region, coords: np.ndarray, query: Mapping[str, str], limits: OsrmLimits
) -> dict[str, Any]:
    """The OSRM ``table`` response for ``coords`` and the query options."""
    _check_names(
        query,
        _COMMON
        | {
            "sources",
            "destinations",
            "annotations",
            "fallback_speed",
            "fallback_coordinate",
            "scale_factor",
        },
    )
    n = coords.shape[0]
    src = _indices(query, "sources", n)
    dst = _indices(query, "destinations", n)
    if src.shape[0] * dst.shape[0] > limits.max_table_size**2:
        raise RequestError(
            "TooBig",
            f"Too many table coordinates: {src.shape[0]} sources x {dst.shape[0]} destinations; "
            f"at most {limits.max_table_size}^2 = {limits.max_table_size**2} cells",
        )
    raw_ann = query.get("annotations", "duration")
    ann = raw_ann.split(",")
    if not ann or any(a not in ("duration", "distance") for a in ann):
        raise RequestError(
            "InvalidQuery",
            f"annotations={raw_ann[:40]!r}: expected duration, distance or duration,distance",
        )
    fallback = _positive(query, "fallback_speed")
    scale = _positive(query, "scale_factor")
    fb_coord = query.get("fallback_coordinate", "input")
    if fb_coord not in ("input", "snapped"):
        raise RequestError(
            "InvalidQuery", f"fallback_coordinate={fb_coord[:20]!r}: expected input or snapped"
        )
    skip = _bool(query, "skip_waypoints", False)
    _bool(query, "generate_hints", True)
    radiuses = _radiuses(query, n)
    snapped = _snap(region, coords, radiuses)
    every = "sources" not in query and "destinations" not in query  # the common case
    o, d = (snapped, snapped) if every else (snapped.subset(src), snapped.subset(dst))
    want_dist = "distance" in ann
    m = drive_time_matrix(
        region.graph, o, d, distances=want_dist, engine=region.engine, n_jobs=limits.threads
    )
    sec: np.ndarray = m.seconds  # float32: written exactly (see matrix_json)
    met: np.ndarray | None = m.metres
    wps, snapped_ll = _waypoints(region, snapped)
    body: dict[str, Any] = {"code": "Ok"}
    if fallback is not None:
        missing = ~np.isfinite(sec)
        if missing.any():
            ll = coords if fb_coord == "input" else snapped_ll
            a, b = ll[src], ll[dst]
            crow = haversine_m(a[:, None, 0], a[:, None, 1], b[None, :, 0], b[None, :, 1])
            sec = sec.astype(np.float64)
            sec[missing] = crow[missing] / fallback
            if met is not None:
                met = met.astype(np.float64)
                met[missing] = crow[missing]
            body["fallback_speed_cells"] = np.argwhere(missing).tolist()
    if scale is not None:
        sec = sec.astype(np.float64) * scale
    if "duration" in ann:
        body["durations"] = matrix_json(sec)
    if met is not None:
        body["distances"] = matrix_json(met)
    if not skip:
        body["sources"] = [wps[i] for i in src.tolist()]
        body["destinations"] = [wps[i] for i in dst.tolist()]
    return body


def nearest_response(
    region: Region, coords: np.ndarray, query: Mapping[str, str], limits: OsrmLimits
) -> dict[str, Any]:
    """The OSRM ``nearest`` response: the ``number`` nearest roads to one coordinate."""
    _check_names(query, _COMMON | {"number"})
    if coords.shape[0] != 1:
        raise RequestError(
            "InvalidOptions", f"nearest takes exactly one coordinate, got {coords.shape[0]}"
        )
    raw = query.get("number", "1")
    try:
        number = int(raw)
    except ValueError:
        raise RequestError("InvalidQuery", f"number={raw[:20]!r} is not an integer") from None
    if not 1 <= number <= limits.max_nearest_size:
        raise RequestError(
            "InvalidOptions", f"number must be in [1, {limits.max_nearest_size}], got {number}"
        )
    radius = float(_radiuses(query, 1)[0])
    g = region.graph
    arcs, dist, pos = nearest_arcs(
        g, float(coords[0, 0]), float(coords[0, 1]), number,
        max_distance_m=min(radius, 50_000.0),
    )  # fmt: skip
    keep = dist <= radius
    arcs, dist, pos = arcs[keep], dist[keep], pos[keep]
    if arcs.shape[0] == 0:
        raise RequestError(
            "NoSegment", "Could not find a matching segment for coordinate 0 (no road within reach)"
        )
    x, y = point_on_arc(g, arcs, pos)
    ll = to_lonlat(g, x, y)
    names = region.names_of_arcs(arcs)
    waypoints = [
        {
            "nodes": [int(g.node_ids[g.arc_u[a]]), int(g.node_ids[g.arc_v[a]])],
            "distance": round(float(dist[i]), 6),
            "name": names[i],
            "location": [round(float(ll[i, 0]), 6), round(float(ll[i, 1]), 6)],
        }
        for i, a in enumerate(arcs.tolist())
    ]
    return {"code": "Ok", "waypoints": waypoints}


def route_response(
    region: Region, coords: np.ndarray, query: Mapping[str, str], limits: OsrmLimits
) -> dict[str, Any]:
    """The OSRM ``route`` response: one route through ``coords`` in order."""
    _check_names(
        query,
        _COMMON
        | {"alternatives", "steps", "annotations", "geometries", "overview", "continue_straight"},
    )
    n = coords.shape[0]
    if n < 2:
        raise RequestError("InvalidOptions", f"route needs at least 2 coordinates, got {n}")
    alt = query.get("alternatives", "false")
    if alt not in ("true", "false") and not alt.isdigit():
        raise RequestError("InvalidQuery", f"alternatives={alt[:20]!r}: expected true, false or N")
    if _bool(query, "steps", False):
        raise RequestError("NotImplemented", "steps=true is not supported by roadnet")
    if query.get("annotations", "false") != "false":
        raise RequestError(
            "NotImplemented", "route annotations are not supported by roadnet (use false)"
        )
    cs = query.get("continue_straight", "default")
    if cs not in ("default", "true", "false"):
        raise RequestError(
            "InvalidQuery", f"continue_straight={cs[:20]!r}: expected default, true or false"
        )
    geometries = query.get("geometries", "polyline")
    if geometries not in ("polyline", "polyline6", "geojson"):
        raise RequestError(
            "InvalidQuery",
            f"geometries={geometries[:20]!r}: expected polyline, polyline6 or geojson",
        )
    overview = query.get("overview", "simplified")
    if overview not in ("simplified", "full", "false"):
        raise RequestError(
            "InvalidQuery", f"overview={overview[:20]!r}: expected simplified, full or false"
        )
    skip = _bool(query, "skip_waypoints", False)
    _bool(query, "generate_hints", True)
    radiuses = _radiuses(query, n)
    snapped = _snap(region, coords, radiuses)
    g = region.graph
    o, d = snapped.subset(np.arange(n - 1)), snapped.subset(np.arange(1, n))
    legs_sec = np.empty(n - 1)
    legs_met = np.empty(n - 1)
    for i in range(n - 1):  # one row each: the legs are the table's (i, i + 1) cells
        row = np.array([i])
        one = drive_time_matrix(
            g, o.subset(row), d.subset(row), distances=True, engine=region.engine,
            n_jobs=limits.threads,
        )  # fmt: skip
        legs_sec[i] = float(one.seconds[0, 0])
        legs_met[i] = float(one.metres[0, 0]) if one.metres is not None else math.nan
    if not np.isfinite(legs_sec).all():
        i = int(np.flatnonzero(~np.isfinite(legs_sec))[0])
        raise RequestError(
            "NoRoute",
            f"Impossible route between points: no road route from coordinate {i} to {i + 1}",
        )
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    if overview != "false":
        for i in range(n - 1):
            oi, di = o.subset(np.array([i])), d.subset(np.array([i]))
            if legs_sec[i] == 0.0:  # the same point twice
                x, y = point_on_arc(g, oi.arc, oi.position_m)
            else:
                x, y = leg_path_xy(g, oi, di, float(legs_sec[i]))
            xs.append(x)
            ys.append(y)
    route: dict[str, Any] = {
        "distance": float(legs_met.sum()),
        "duration": float(legs_sec.sum()),
        "weight": float(legs_sec.sum()),
        "weight_name": "duration",
        "legs": [
            {
                "distance": float(legs_met[i]),
                "duration": float(legs_sec[i]),
                "weight": float(legs_sec[i]),
                "summary": "",
                "steps": [],
            }
            for i in range(n - 1)
        ],
    }
    if overview != "false":
        x, y = np.concatenate(xs), np.concatenate(ys)
        if overview == "simplified":
            x, y = simplify_xy(x, y, _SIMPLIFY_M)
        ll = to_lonlat(g, x, y)
        if ll.shape[0] == 1:
            ll = np.vstack([ll, ll])
        if geometries == "geojson":
            route["geometry"] = {"type": "LineString", "coordinates": np.round(ll, 6).tolist()}
        else:
            route["geometry"] = encode_polyline(ll, 6 if geometries == "polyline6" else 5)
    body: dict[str, Any] = {"code": "Ok", "routes": [route]}
    if not skip:
        body["waypoints"] = _waypoints(region, snapped)[0]
    return body
