"""Validate an existing territory alignment: reachability, drive times, balance, connectivity.

"Is every area of a territory reachable by road from its center within limits, is the
territory connected by road, what is flagged?" -- for any alignment: hand-drawn, from another
tool, or from the optimizer. :func:`validate_territories` takes the areas with a territory
column (and optionally the territories' centers), and returns a :class:`ValidationReport`: one
row per territory, one row per area, and a verdict per rule.

Definitions
    **Center.** A point per territory given as ``centers`` (points with the territory column),
    or the area marked in ``center_column``; otherwise the territory's **drive-time 1-median**:
    the area from which the sum of drive times to the territory's other areas is least (areas
    that cannot reach all the others rank after those that can: the key is (number of areas it
    cannot reach, sum of the finite times)). Without a road graph the 1-median uses
    great-circle distances.

    **Drive time** from the center to each area of its territory: the exact drive-time matrix
    (:func:`~roadnet.matrix.drive_time_matrix`, through the cache when enabled) between the
    snapped points; it includes the connectors from the points to the road. ``inf`` (no road
    path at all, e.g. an area on another island) makes the area **unreachable**; unreachable
    areas are always reported and flagged, and statistics (max, mean, p95, weighted mean) are
    over the reachable areas.

    **Over limit**: a reachable area farther than ``max_drive_s`` from its center.
    **Far snap**: an area whose point lies farther than the snap limit from any road.

    **Detour ratio** = drive time / straight-line time, the straight-line time being the
    great-circle distance center -> area at ``reference_kmh``. An area is a **detour outlier**
    when the ratio exceeds ``detour_threshold`` -- "close on the map, a long drive in reality"
    (across a river between bridges, around a bay, over a mountain). Areas closer than
    ``detour_min_km`` to the center get no ratio: over a few hundred metres the connector and
    the street pattern dominate and the ratio means nothing. Unreachable areas have no ratio.

    **Contiguous**: the territory's polygons form one piece under
    :func:`~roadnet.adjacency.polygon_adjacency` (rook by default); the pieces are listed.
    With ``adjacency="road"`` two rook neighbours count as adjacent only when a road crosses
    their shared border (:func:`~roadnet.adjacency.road_adjacency`, the adjacency of
    ``roadnet optimize --contiguity road``): parishes facing each other across a river without
    a bridge are then two pieces unless a chain of road-adjacent areas of the territory (over a
    bridge) joins them.

    **Connected by road** (inside the territory): the road network *restricted to the
    territory* is the subgraph of the road nodes lying in the union of the territory's
    polygons, grown by ``road_margin_m`` so that roads drawn on the border count for both sides
    (plus the two ends of the road each area is snapped to), with the arcs whose two ends are in
    that set. Its *strongly* connected pieces are computed (one-way streets respected, as for
    drive times). Each area belongs to the piece holding most of the road nodes inside the
    area (ties: the larger piece); an area without any road node inside belongs to the piece
    of the road its point is snapped to. The territory is connected by road when all its areas
    belong to one piece: a rep can drive between any two of its areas without leaving it. The
    pieces (which areas are in which) are listed, largest first.

    This is a property of the territory's road network, not of the area points: it does not
    fail because an area's point happens to snap onto a motorway ramp that leads out of the
    territory (the drive times and detour ratios, which are point to point, show that). It
    fails across a river without a bridge inside the territory, between islands, or when the
    only road joining two parts runs through a neighbouring territory.

    **Balance**: size of each territory per measure (sum of the column; the area count when no
    measure is given) and its relative deviation from the mean size,
    ``(size - mean) / mean``.

Rules
    ============== =========================================== ===============================
    rule           passes when                                 given (asked for) when
    ============== =========================================== ===============================
    reachable      no area is unreachable from its center      ``require_reachable``; by
                                                               default whenever a road graph
                                                               is given
    max_drive      every area is reachable and within          ``max_drive_s`` is given
                   ``max_drive_s`` of its center
    balance        every ``|deviation| <= tolerance``          ``tolerance`` is given
    contiguity     every territory is one polygon piece        ``require_contiguity``
    road_connected every territory is connected by road        ``require_road_connected``
    snap_distance  no area snaps farther than the snap limit   ``max_snap_m`` is given
    ============== =========================================== ===============================

Every rule that can be checked is checked and reported, asked for or not. A rule that cannot
be evaluated has ``evaluated=False`` and ``passed=None`` (no road graph: ``reachable``,
``max_drive``, ``road_connected`` and ``snap_distance``; point areas: ``contiguity`` and
``road_connected``); ``max_drive`` and ``balance`` without a limit are evaluated for
information only (``passed=None``, the detail gives the worst value).
:meth:`ValidationReport.passed` is true when every rule that was asked for passed; a rule asked
for but impossible to evaluate does not pass.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from roadnet.adjacency import (
    components_within,
    isolated_areas,
    polygon_adjacency,
    road_adjacency,
)
from roadnet.areas import Areas, areas_from_gdf
from roadnet.cached import cached_drive_time_matrix
from roadnet.exceptions import AreaDataError
from roadnet.graph import CompiledGraph
from roadnet.matrix import drive_time_matrix
from roadnet.settings import settings
from roadnet.snap import SnappedPoints, snap_points

__all__ = ["RULES", "ValidationReport", "great_circle_m", "validate_territories"]

log = logging.getLogger(__name__)

#: the rules, in report order
RULES = ("reachable", "max_drive", "balance", "contiguity", "road_connected", "snap_distance")

_EARTH_RADIUS_M = 6_371_008.8
_POLYGONAL = (3, 6)


# ---------------------------------------------------------------------------------- report
@dataclasses.dataclass
class ValidationReport:
    """The result of :func:`validate_territories`.

    Attributes
    ----------
    territories
        One row per territory: ``territory``, ``n_areas``, the center (``center_id`` when it is
        an area, ``center_lon``/``center_lat``, ``center_snap_m``), ``size_<measure>`` and
        ``dev_<measure>`` (relative deviation from the mean; ``dev_n_areas`` when no measure is
        given), drive minutes from the center over the reachable areas (``drive_max_min``,
        ``drive_mean_min``, ``drive_p95_min``, ``drive_wmean_min`` weighted by the first
        measure), ``straight_max_km``, the counts ``n_unreachable``, ``n_over_limit``,
        ``n_far_snap``, ``n_detour_outliers``, and ``contiguous``/``n_polygon_pieces``,
        ``road_connected``/``n_road_pieces`` (``<NA>`` when not evaluated).
    areas
        One row per area, in input order: ``id``, ``territory``, ``is_center``,
        ``drive_minutes_from_center`` (``inf`` = unreachable), ``straight_km``,
        ``detour_ratio``, ``snap_m``, the flags ``unreachable``, ``over_limit``, ``far_snap``,
        ``detour_outlier``, ``isolated`` (no polygon neighbour at all), and ``polygon_piece`` /
        ``road_piece`` (piece number within the territory, 0 = largest).
    rules
        One dict per rule (see :data:`RULES`): ``rule``, ``given`` (asked for by the caller),
        ``evaluated``, ``passed`` (``None`` when not evaluated) and a readable ``detail``.
    params
        The limits and options used.
    notes
        Remarks that are not rule verdicts (islands, far centers, ...).
    """

    territories: pd.DataFrame
    areas: pd.DataFrame
    rules: list[dict[str, Any]]
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    def rule(self, name: str) -> dict[str, Any]:
        """The verdict of one rule by name."""
        for r in self.rules:
            if r["rule"] == name:
                return r
        raise KeyError(f"no rule {name!r}; rules are {[r['rule'] for r in self.rules]}")

    def passed(self) -> bool:
        """True when every rule the caller asked for (``given``) was evaluated and passed."""
        return all(r["passed"] is True for r in self.rules if r["given"])

    def failed_rules(self) -> list[str]:
        """Names of the rules asked for that did not pass (failed or could not be evaluated)."""
        return [r["rule"] for r in self.rules if r["given"] and r["passed"] is not True]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: plain Python numbers, ``None`` for missing, ``inf`` and ``NaN``.

        ``drive_minutes_from_center`` is ``None`` exactly where the area is ``unreachable`` (or
        where drive times were not evaluated: no road graph); the ``unreachable`` flag tells
        the two apart.
        """
        return {
            "passed": self.passed(),
            "failed_rules": self.failed_rules(),
            "rules": [{k: _plain(v) for k, v in r.items()} for r in self.rules],
            "params": {k: _plain(v) for k, v in self.params.items()},
            "notes": list(self.notes),
            "territories": _records(self.territories),
            "areas": _records(self.areas),
        }

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        """The report as strict JSON (no ``NaN``/``Infinity``); written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_text(self, top: int = 5) -> str:
        """Readable report: one line per rule verdict, then the worst territories."""
        t = self.territories
        lines = [
            f"Territory validation: {len(t)} territories, {len(self.areas)} areas "
            f"({self.params.get('mode', '?')}; centers: {self.params.get('centers', '?')})"
        ]
        for r in self.rules:
            if not r["evaluated"]:
                verdict = "N/E "
            elif r["passed"] is None:
                verdict = "INFO"
            elif r["passed"]:
                verdict = "PASS"
            else:  # a failing rule nobody asked for is a warning, not a failure
                verdict = "FAIL" if r["given"] else "WARN"
            asked = "" if r["given"] else " (not required)"
            lines.append(f"  {verdict}  {r['rule']:<15}{r['detail']}{asked}")
        if len(t):
            lines.append(f"Worst territories (up to {top}):")
            for _, row in _worst(t).head(top).iterrows():
                lines.append("    " + _territory_line(row))
        for note in self.notes:
            lines.append(f"Note: {note}")
        given = [r for r in self.rules if r["given"]]
        failed = self.failed_rules()
        if not given:
            lines.append("Overall: no rule required (report only)")
        else:
            lines.append(
                "Overall: "
                + (
                    f"PASS ({len(given)} required rule(s) passed)"
                    if not failed
                    else f"FAIL ({len(failed)} of {len(given)} required rule(s): "
                    + ", ".join(failed)
                    + ")"
                )
            )
        return "\n".join(lines)

    def print(self, console: Any | None = None, *, top: int = 5) -> None:
        """Print :meth:`to_text` on a ``rich`` console (no markup) or on standard output."""
        text = self.to_text(top=top)
        if console is None:
            print(text)
        else:
            console.print(text, markup=False, highlight=False)


def _worst(t: pd.DataFrame) -> pd.DataFrame:
    problems = (
        t["n_unreachable"].fillna(0)
        + t["n_over_limit"].fillna(0)
        + t["n_far_snap"].fillna(0)
        + (t["contiguous"] == False).fillna(False).astype(int)  # noqa: E712 - nullable
        + (t["road_connected"] == False).fillna(False).astype(int)  # noqa: E712 - nullable
    )
    key = t["drive_max_min"].fillna(-1.0) if t["drive_max_min"].notna().any() else -t["n_areas"]
    order = np.lexsort((-key.to_numpy(float), -problems.to_numpy(float)))
    return t.iloc[order]


def _fmt(v: Any, spec: str = ".1f") -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, spec)


def _territory_line(row: pd.Series) -> str:
    parts = [f"{row['territory']}: {int(row['n_areas'])} areas"]
    if pd.notna(row["drive_max_min"]):
        parts.append(
            f"drive max {_fmt(row['drive_max_min'])} / mean {_fmt(row['drive_mean_min'])} / "
            f"p95 {_fmt(row['drive_p95_min'])} min"
        )
    else:
        parts.append(f"straight max {_fmt(row['straight_max_km'])} km")
    for col, label in (
        ("n_unreachable", "unreachable"),
        ("n_over_limit", "over limit"),
        ("n_far_snap", "far snap"),
        ("n_detour_outliers", "detours"),
    ):
        if pd.notna(row[col]) and row[col]:
            parts.append(f"{int(row[col])} {label}")
    if row["contiguous"] is not pd.NA and row["contiguous"] is not None and not row["contiguous"]:
        parts.append(f"{int(row['n_polygon_pieces'])} polygon pieces")
    if (
        row["road_connected"] is not pd.NA
        and row["road_connected"] is not None
        and not row["road_connected"]
    ):
        parts.append(f"{int(row['n_road_pieces'])} road pieces")
    devs = [c for c in row.index if str(c).startswith("dev_") and pd.notna(row[c])]
    if devs:
        worst = max(devs, key=lambda c: abs(row[c]))
        parts.append(f"{worst[4:]} {row[worst]:+.1%}")
    return ", ".join(parts)


def _plain(v: Any) -> Any:
    """A JSON-ready Python value: numpy scalars unwrapped, NaN/inf/NA -> None."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, bool | int | str):
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [_plain(x) for x in v]
    return str(v)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [str(c) for c in df.columns]
    return [
        {c: _plain(v) for c, v in zip(cols, row, strict=True)}
        for row in df.itertuples(index=False, name=None)
    ]


# --------------------------------------------------------------------------------- helpers
def great_circle_m(
    lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> np.ndarray:
    """Great-circle (haversine) metres between lon/lat degrees; arrays broadcast."""
    p1, p2 = np.radians(np.asarray(lat1, dtype=float)), np.radians(np.asarray(lat2, dtype=float))
    dlat = p2 - p1
    dlon = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _number(name: str, value: float, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise AreaDataError(f"{name} must be a number, got {value!r}") from None
    ok = v >= 0 if allow_zero else v > 0
    if not (ok and math.isfinite(v)):
        raise AreaDataError(
            f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}"
        )
    return v


def _limit(name: str, value: float | None, *, allow_zero: bool = False) -> float | None:
    return None if value is None else _number(name, value, allow_zero=allow_zero)


def _as_areas(areas: Areas | gpd.GeoDataFrame, id_column: str | None) -> Areas:
    if isinstance(areas, Areas):
        return areas
    if isinstance(areas, gpd.GeoDataFrame):
        return areas_from_gdf(areas, id_column=id_column, source="areas")
    raise AreaDataError(
        f"areas must be roadnet.Areas or a GeoDataFrame, got {type(areas).__name__}"
    )


def _columns(df: pd.DataFrame) -> list[str]:
    geom = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    return [str(c) for c in df.columns if c != geom]


def _territory_labels(gdf: gpd.GeoDataFrame, column: str, ids: np.ndarray) -> np.ndarray:
    if column not in gdf.columns:
        raise AreaDataError(
            f"territory column {column!r} not found in the areas; columns are {_columns(gdf)}"
        )
    col = gdf[column]
    missing = col.isna().to_numpy()
    if missing.any():
        raise AreaDataError(
            f"territory column {column!r} is empty for {int(missing.sum())} area(s) (ids "
            f"{ids[missing][:10].tolist()}); every area needs a territory"
        )
    return np.asarray(col.to_numpy(dtype=object))


def _territory_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        terr = np.unique(labels)
    except TypeError:  # unorderable mixed labels: order of appearance
        terr = np.asarray(pd.unique(pd.Series(labels, dtype=object)), dtype=object)
    code = pd.Index(terr).get_indexer(labels)
    return terr, code.astype(np.int64)


def _measures(gdf: gpd.GeoDataFrame, measures: Sequence[str], ids: np.ndarray) -> np.ndarray:
    if isinstance(measures, str):
        measures = [measures]
    out = np.zeros((len(gdf), len(measures)))
    for k, m in enumerate(measures):
        if m == "count" and m not in gdf.columns:  # each area counts 1, as in optimize
            out[:, k] = 1.0
            continue
        if m not in gdf.columns:
            raise AreaDataError(
                f"measure column {m!r} not found in the areas; columns are {_columns(gdf)}"
            )
        vals = pd.to_numeric(gdf[m], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(vals)
        if bad.any():
            raise AreaDataError(
                f"measure column {m!r} has missing or non-numeric values for {int(bad.sum())} "
                f"area(s) (ids {ids[bad][:10].tolist()})"
            )
        out[:, k] = vals
    return out


def _centers_from_column(
    gdf: gpd.GeoDataFrame, column: str, code: np.ndarray, terr: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    if column not in gdf.columns:
        raise AreaDataError(
            f"center column {column!r} not found in the areas; columns are {_columns(gdf)}"
        )
    raw = gdf[column]
    if pd.api.types.is_bool_dtype(raw):
        flag = raw.fillna(False).to_numpy(dtype=bool)
    else:
        num = pd.to_numeric(raw, errors="coerce")
        bad = ~num.isna().to_numpy() & ~num.isin([0, 1]).to_numpy()
        if bad.any() or (num.isna() & raw.notna()).any():
            raise AreaDataError(
                f"center column {column!r} must be boolean (True marks the center area, or "
                f"1/0), got values like {raw[raw.notna()].unique()[:5].tolist()}"
            )
        flag = num.fillna(0).to_numpy(dtype=float) == 1
    count = np.bincount(code[flag], minlength=terr.shape[0])
    none, many = terr[count == 0], terr[count > 1]
    if none.size or many.size:
        msg = []
        if none.size:
            msg.append(f"territories without a center: {none[:10].tolist()}")
        if many.size:
            msg.append(
                "territories with several centers: "
                + "; ".join(
                    f"{t!r} ({ids[flag & (code == k)][:5].tolist()})"
                    for k, t in enumerate(terr)
                    if count[k] > 1
                )
            )
        raise AreaDataError(
            f"center column {column!r} must mark exactly one area per territory: " + "; ".join(msg)
        )
    pos = np.empty(terr.shape[0], dtype=np.int64)
    rows = np.flatnonzero(flag)
    pos[code[rows]] = rows
    return pos


def _centers_from_gdf(
    centers: gpd.GeoDataFrame, column: str, terr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not isinstance(centers, gpd.GeoDataFrame):
        raise AreaDataError(
            f"centers must be a GeoDataFrame of points, got {type(centers).__name__}"
        )
    if column not in centers.columns:
        raise AreaDataError(
            f"centers have no territory column {column!r} (the areas' territory column); "
            f"their columns are {_columns(centers)}"
        )
    labels = centers[column]
    if labels.isna().any():
        raise AreaDataError(
            f"centers: territory column {column!r} is empty in rows "
            f"{np.flatnonzero(labels.isna().to_numpy())[:10].tolist()}"
        )
    dup = labels[labels.duplicated(keep=False)]
    if len(dup):
        raise AreaDataError(
            f"centers: several centers for territories {sorted(map(str, dup.unique()))[:10]}; "
            "give one center per territory"
        )
    index = pd.Index(labels.to_numpy(dtype=object))
    where = index.get_indexer(pd.Index(terr))
    if (where < 0).all() and len(index):
        # labels read from different files often differ only in type (7 vs "7")
        where = pd.Index(index.astype(str)).get_indexer(pd.Index(terr.astype(str)))
    missing = terr[where < 0]
    if missing.size:
        raise AreaDataError(
            f"centers: no center for territories {missing[:10].tolist()} (centers are given "
            f"for {index[:10].tolist()})"
        )
    notes = []
    extra = len(index) - int(np.unique(where).shape[0])
    if extra:
        notes.append(f"{extra} center(s) belong to no territory of the areas and were ignored")
    pts = areas_from_gdf(
        centers.iloc[where].reset_index(drop=True), id_column=column, source="centers"
    )
    return pts.lon, pts.lat, notes


def _matrix(
    graph: CompiledGraph,
    origins: SnappedPoints,
    destinations: SnappedPoints,
    *,
    n_jobs: int | None,
    use_cache: bool,
) -> np.ndarray:
    if use_cache and settings.use_cache:
        m, report = cached_drive_time_matrix(graph, origins, destinations, n_jobs=n_jobs)
        log.debug("validation matrix %s: %s", m.shape, report.describe())
    else:
        m = drive_time_matrix(graph, origins, destinations, n_jobs=n_jobs)
    return np.asarray(m.seconds, dtype=np.float64)


def _median_key(costs: np.ndarray) -> int:
    """Row of least (number of inf entries, sum of finite entries); ties -> lowest row."""
    finite = np.isfinite(costs)
    n_inf = (~finite).sum(axis=1)
    total = np.where(finite, costs, 0.0).sum(axis=1)
    return int(np.lexsort((total, n_inf))[0])


def _straight_median(lon: np.ndarray, lat: np.ndarray, chunk: int = 512) -> int:
    n = lon.shape[0]
    sums = np.empty(n)
    for s in range(0, n, chunk):
        sums[s : s + chunk] = great_circle_m(
            lon[s : s + chunk, None], lat[s : s + chunk, None], lon[None, :], lat[None, :]
        ).sum(axis=1)
    return int(np.argmin(sums))


def _pieces_to_labels(
    pieces: list[tuple[Hashable, list[np.ndarray]]], n: int
) -> tuple[np.ndarray, np.ndarray]:
    piece = np.full(n, -1, dtype=np.int64)
    counts = np.zeros(len(pieces), dtype=np.int64)
    for t, (_, parts) in enumerate(pieces):
        counts[t] = len(parts)
        for k, rows in enumerate(parts):
            piece[rows] = k
    return piece, counts


def _road_pieces(
    graph: CompiledGraph,
    gdf: gpd.GeoDataFrame,
    members: list[np.ndarray],
    snapped: SnappedPoints,
    margin_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Piece of each area in its territory's restricted road network, and pieces per territory.

    See the module docstring ("Connected by road").
    """
    n = len(snapped)
    zones = np.asarray(gdf.to_crs(graph.crs).geometry.values, dtype=object)
    bad = ~shapely.is_valid(zones)
    if bad.any():
        zones[bad] = shapely.make_valid(zones[bad])
    if margin_m > 0:
        zones = shapely.buffer(zones, margin_m, quad_segs=4)
    xmin, ymin, xmax, ymax = shapely.total_bounds(zones)
    cand = np.flatnonzero(
        (graph.x >= xmin) & (graph.x <= xmax) & (graph.y >= ymin) & (graph.y <= ymax)
    )
    tree = shapely.STRtree(zones)
    pt, pair_area = tree.query(shapely.points(graph.x[cand], graph.y[cand]), predicate="intersects")
    pair_node = cand[pt]
    owner = np.empty(n, dtype=np.int64)
    local_row = np.empty(n, dtype=np.int64)
    for t, rows in enumerate(members):
        owner[rows] = t
        local_row[rows] = np.arange(rows.shape[0])
    pair_terr = owner[pair_area]
    order = np.argsort(pair_terr, kind="stable")
    bounds = np.searchsorted(pair_terr[order], np.arange(len(members) + 1))
    road = sp.csr_matrix(
        (np.ones(graph.indices.shape[0], dtype=np.int8), graph.indices, graph.indptr),
        shape=(graph.n_nodes, graph.n_nodes),
    )
    piece = np.full(n, -1, dtype=np.int64)
    counts = np.zeros(len(members), dtype=np.int64)
    for t, rows in enumerate(members):
        m = rows.shape[0]
        sel = order[bounds[t] : bounds[t + 1]]
        p_node, p_area = pair_node[sel], local_row[pair_area[sel]]
        arcs = snapped.arc[rows]
        own = np.column_stack([graph.arc_u[arcs], graph.arc_v[arcs]])  # each area's road
        nodes = np.unique(np.concatenate([p_node, own.ravel()]))
        k = nodes.shape[0]
        _, scc = connected_components(road[nodes][:, nodes], directed=True, connection="strong")
        size = np.bincount(scc)
        # votes: (area, piece of the restricted network) for each road node in the area,
        # then the area's own road for areas without any node inside
        v_area = np.concatenate([p_area, np.repeat(np.arange(m), 2)])
        v_lab = scc[np.searchsorted(nodes, np.concatenate([p_node, own.ravel()]))]
        v_own = np.concatenate([np.zeros(p_area.shape[0], bool), np.ones(2 * m, bool)])
        has_nodes = np.bincount(p_area, minlength=m) > 0
        use = ~v_own | ~has_nodes[v_area]
        key = v_area[use] * k + v_lab[use]
        uniq, votes = np.unique(key, return_counts=True)
        u_area, u_lab = uniq // k, uniq % k
        # per area: most nodes, then the larger piece, then the lower label
        best = np.lexsort((u_lab, -size[u_lab], -votes, u_area))
        first = np.ones(best.shape[0], dtype=bool)
        first[1:] = u_area[best][1:] != u_area[best][:-1]
        chosen = np.empty(m, dtype=np.int64)
        chosen[u_area[best][first]] = u_lab[best][first]
        comps, inverse, n_areas = np.unique(chosen, return_inverse=True, return_counts=True)
        lowest = np.full(comps.shape[0], m, dtype=np.int64)
        np.minimum.at(lowest, inverse, np.arange(m))
        rank = np.empty(comps.shape[0], dtype=np.int64)
        rank[np.lexsort((lowest, -n_areas))] = np.arange(comps.shape[0])
        piece[rows] = rank[inverse]
        counts[t] = comps.shape[0]
    return piece, counts


def _rule(
    name: str, given: bool, evaluated: bool, passed: bool | None, detail: str
) -> dict[str, Any]:
    return {
        "rule": name,
        "given": bool(given),
        "evaluated": bool(evaluated),
        "passed": None if (passed is None or not evaluated) else bool(passed),
        "detail": detail,
    }


def _names(values: np.ndarray, limit: int = 5) -> str:
    vals = [str(v) for v in values[:limit].tolist()]
    more = values.shape[0] - limit
    return ", ".join(vals) + (f" and {more} more" if more > 0 else "")


# ------------------------------------------------------------------------ validation steps
_NO_GRAPH = "not evaluated: no road graph (straight-line mode)"


@dataclasses.dataclass(frozen=True)
class _Limits:
    """The checked numeric options of :func:`validate_territories`."""

    max_drive: float | None
    tol: float | None
    snap_limit: float | None
    detour_t: float
    detour_km: float
    ref_kmh: float
    margin: float


def _check_options(
    *,
    graph: Any,
    centers: gpd.GeoDataFrame | None,
    center_column: str | None,
    max_drive_s: float | None,
    tolerance: float | None,
    max_snap_m: float | None,
    detour_threshold: float,
    detour_min_km: float,
    reference_kmh: float,
    road_margin_m: float,
    adjacency: str,
) -> _Limits:
    """Check the options of :func:`validate_territories`; return the numeric ones."""
    limits = _Limits(
        max_drive=_limit("max_drive_s", max_drive_s),
        tol=_limit("tolerance", tolerance, allow_zero=True),
        snap_limit=_limit("max_snap_m", max_snap_m),
        detour_t=_number("detour_threshold", detour_threshold),
        detour_km=_number("detour_min_km", detour_min_km, allow_zero=True),
        ref_kmh=_number("reference_kmh", reference_kmh),
        margin=_number("road_margin_m", road_margin_m, allow_zero=True),
    )
    if centers is not None and center_column is not None:
        raise AreaDataError("give centers or center_column, not both")
    if adjacency not in ("rook", "queen", "road"):
        raise AreaDataError(f"adjacency must be 'rook', 'queen' or 'road', got {adjacency!r}")
    if adjacency == "road" and graph is None:
        raise AreaDataError(
            "adjacency='road' needs a road graph (road adjacency: a road crosses the border)"
        )
    if graph is not None and not isinstance(graph, CompiledGraph):
        raise AreaDataError(
            f"graph must be a roadnet CompiledGraph or None, got {type(graph).__name__}"
        )
    return limits


@dataclasses.dataclass(frozen=True)
class _Alignment:
    """The areas, their territory labels, territory codes, members and measures."""

    areas: Areas
    gdf: gpd.GeoDataFrame
    ids: np.ndarray
    labels: np.ndarray
    terr: np.ndarray
    code: np.ndarray
    members: list[np.ndarray]
    measure_names: list[str]
    weights: np.ndarray

    @property
    def n(self) -> int:
        """Number of areas."""
        return len(self.areas)

    @property
    def k(self) -> int:
        """Number of territories."""
        return int(self.terr.shape[0])


def _align(
    areas: Areas | gpd.GeoDataFrame,
    territory_column: str,
    measures: Sequence[str],
    id_column: str | None,
) -> _Alignment:
    """Read the areas, their territories (area rows of each, in input order) and measures."""
    ar = _as_areas(areas, id_column)
    gdf = ar.gdf
    ids = np.asarray(ar.ids)
    labels = _territory_labels(gdf, territory_column, ids)
    terr, code = _territory_codes(labels)
    k = terr.shape[0]
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(k + 1))
    members = [order[bounds[t] : bounds[t + 1]] for t in range(k)]
    measure_names = [measures] if isinstance(measures, str) else list(measures)
    weights = _measures(gdf, measure_names, ids)
    return _Alignment(
        areas=ar,
        gdf=gdf,
        ids=ids,
        labels=labels,
        terr=terr,
        code=code,
        members=members,
        measure_names=measure_names,
        weights=weights,
    )


@dataclasses.dataclass(frozen=True)
class _CenterTimes:
    """Each territory's center and the drive times from it to the territory's areas."""

    kind: str  #: how the centers were chosen (``params["centers"]``)
    pos: np.ndarray  #: (k,) area row of each center, -1 for a given point
    lon: np.ndarray  #: (k,) center longitude
    lat: np.ndarray  #: (k,) center latitude
    center_snap: np.ndarray  #: (k,) snap metres of each center (NaN without a graph)
    snapped: SnappedPoints | None  #: the snapped areas (None without a graph)
    drive_s: np.ndarray  #: (n,) drive seconds from the area's center (NaN without a graph)
    snap_m: np.ndarray  #: (n,) snap metres of each area (NaN without a graph)
    far: np.ndarray  #: (n,) area snapped farther than the snap limit


def _fixed_centers(
    al: _Alignment,
    territory_column: str,
    centers: gpd.GeoDataFrame | None,
    center_column: str | None,
    graph: CompiledGraph | None,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Centers given as points or by ``center_column``: area rows (or -1), lon, lat, kind."""
    pos = np.full(al.k, -1, dtype=np.int64)
    lon = np.full(al.k, np.nan)
    lat = np.full(al.k, np.nan)
    if centers is not None:
        lon, lat, extra = _centers_from_gdf(centers, territory_column, al.terr)
        notes.extend(extra)
        kind = "given points"
    elif center_column is not None:
        pos = _centers_from_column(al.gdf, center_column, al.code, al.terr, al.ids)
        kind = f"column {center_column!r}"
    else:
        kind = "drive-time 1-median" if graph is not None else "straight-line 1-median"
    return pos, lon, lat, kind


def _median_drive_times(
    graph: CompiledGraph,
    al: _Alignment,
    snapped: SnappedPoints,
    pos: np.ndarray,
    *,
    n_jobs: int | None,
    use_cache: bool,
) -> np.ndarray:
    """Drive seconds from each territory's drive-time 1-median, written into ``pos``."""
    drive_s = np.full(al.n, np.nan)
    for t, rows in enumerate(al.members):
        sub = snapped.subset(rows)
        sq = _matrix(graph, sub, sub, n_jobs=n_jobs, use_cache=use_cache)
        c = _median_key(sq)
        pos[t] = rows[c]
        drive_s[rows] = sq[c]
    return drive_s


def _fixed_center_drive_times(
    graph: CompiledGraph,
    al: _Alignment,
    snapped: SnappedPoints,
    pos: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    given_points: bool,
    snap_limit: float | None,
    n_jobs: int | None,
    use_cache: bool,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Drive seconds from fixed centers to their areas, and the given points' snap metres."""
    center_snap = np.full(al.k, np.nan)
    if given_points:
        origins = snap_points(graph, lon, lat, max_distance_m=snap_limit, warn=False)
        center_snap = origins.snap_distance_m.astype(np.float64)
        if origins.flagged.any():
            notes.append(
                f"centers of territories {_names(al.terr[origins.flagged])} lie farther "
                f"than {origins.max_distance_m:g} m from any road"
            )
    else:
        origins = snapped.subset(pos)
    rect = _matrix(graph, origins, snapped, n_jobs=n_jobs, use_cache=use_cache)
    drive_s = np.full(al.n, np.nan)
    for t, rows in enumerate(al.members):
        drive_s[rows] = rect[t, rows]
    return drive_s, center_snap


def _centers_and_drive_times(
    al: _Alignment,
    territory_column: str,
    graph: CompiledGraph | None,
    centers: gpd.GeoDataFrame | None,
    center_column: str | None,
    *,
    snap_limit: float | None,
    n_jobs: int | None,
    use_cache: bool,
    notes: list[str],
) -> _CenterTimes:
    """The territories' centers (given, marked or 1-medians) and the drive times from them."""
    pos, lon, lat, kind = _fixed_centers(al, territory_column, centers, center_column, graph, notes)
    median = centers is None and center_column is None
    drive_s = np.full(al.n, np.nan)
    snap_m = np.full(al.n, np.nan)
    far = np.zeros(al.n, dtype=bool)
    center_snap = np.full(al.k, np.nan)
    snapped: SnappedPoints | None = None
    if graph is not None:
        snapped = snap_points(graph, al.areas.lon, al.areas.lat, max_distance_m=snap_limit)
        snap_m = snapped.snap_distance_m.astype(np.float64)
        far = snapped.flagged.copy()
        if median:
            drive_s = _median_drive_times(
                graph, al, snapped, pos, n_jobs=n_jobs, use_cache=use_cache
            )
        else:
            drive_s, center_snap = _fixed_center_drive_times(
                graph,
                al,
                snapped,
                pos,
                lon,
                lat,
                given_points=centers is not None,
                snap_limit=snap_limit,
                n_jobs=n_jobs,
                use_cache=use_cache,
                notes=notes,
            )
    elif median:
        for t, rows in enumerate(al.members):
            pos[t] = rows[_straight_median(al.areas.lon[rows], al.areas.lat[rows])]
    has_area_center = pos >= 0
    lon[has_area_center] = al.areas.lon[pos[has_area_center]]
    lat[has_area_center] = al.areas.lat[pos[has_area_center]]
    if snapped is not None:
        center_snap[has_area_center] = snap_m[pos[has_area_center]]
    return _CenterTimes(
        kind=kind,
        pos=pos,
        lon=lon,
        lat=lat,
        center_snap=center_snap,
        snapped=snapped,
        drive_s=drive_s,
        snap_m=snap_m,
        far=far,
    )


@dataclasses.dataclass(frozen=True)
class _AreaFigures:
    """Per-area figures and flags derived from the centers and drive times."""

    reachable_known: bool  #: drive times were computed (a road graph was given)
    straight_m: np.ndarray  #: great-circle metres from the area's center
    is_center: np.ndarray  #: the area is its territory's center
    drive_min: np.ndarray  #: drive minutes from the area's center
    ratio: np.ndarray  #: detour ratio (NaN when not defined)
    unreachable: np.ndarray  #: no road path from the center
    over: np.ndarray  #: reachable but farther than the drive limit
    detour: np.ndarray  #: detour outlier


def _area_figures(
    al: _Alignment, ct: _CenterTimes, *, reachable_known: bool, limits: _Limits
) -> _AreaFigures:
    """Straight-line distances, detour ratios and the per-area flags."""
    drive_s = ct.drive_s
    straight_m = great_circle_m(ct.lon[al.code], ct.lat[al.code], al.areas.lon, al.areas.lat)
    is_center = np.zeros(al.n, dtype=bool)
    is_center[ct.pos[ct.pos >= 0]] = True
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = drive_s / (straight_m / (limits.ref_kmh / 3.6))
    ratio[~np.isfinite(drive_s) | (straight_m < limits.detour_km * 1000.0)] = np.nan
    unreachable = np.isinf(drive_s) if reachable_known else np.zeros(al.n, bool)
    over = (
        np.isfinite(drive_s) & (drive_s > limits.max_drive)
        if (reachable_known and limits.max_drive is not None)
        else np.zeros(al.n, bool)
    )
    return _AreaFigures(
        reachable_known=reachable_known,
        straight_m=straight_m,
        is_center=is_center,
        drive_min=drive_s / 60.0,
        ratio=ratio,
        unreachable=unreachable,
        over=over,
        detour=np.nan_to_num(ratio, nan=0.0) > limits.detour_t,
    )


@dataclasses.dataclass(frozen=True)
class _Pieces:
    """Polygon pieces (contiguity) and road pieces (connectivity) of the territories."""

    polygonal: bool  #: every area is a polygon (contiguity evaluated)
    poly_piece: np.ndarray  #: (n,) polygon piece of each area within its territory, -1 = none
    poly_count: np.ndarray  #: (k,) polygon pieces per territory
    isolated: np.ndarray  #: (n,) area without any neighbour
    road_eval: bool  #: road connectivity evaluated
    road_piece: np.ndarray  #: (n,) road piece of each area within its territory, -1 = none
    road_count: np.ndarray  #: (k,) road pieces per territory


def _polygon_pieces(
    al: _Alignment,
    graph: CompiledGraph | None,
    adjacency: Literal["rook", "queen", "road"],
    adjacency_tolerance_m: float,
    margin: float,
    notes: list[str],
) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
    """Contiguity: (polygonal, piece of each area, pieces per territory, isolated areas)."""
    gtype = shapely.get_type_id(np.asarray(al.gdf.geometry.values, dtype=object))
    polygonal = bool(np.isin(gtype, _POLYGONAL).all())
    poly_piece = np.full(al.n, -1, dtype=np.int64)
    poly_count = np.zeros(al.k, dtype=np.int64)
    isolated = np.zeros(al.n, dtype=bool)
    if not polygonal:
        notes.append(
            "areas are not all polygons: contiguity and road connectivity need "
            "polygons and are not evaluated"
        )
        return polygonal, poly_piece, poly_count, isolated
    kind: Literal["rook", "queen"] = "rook" if adjacency == "road" else adjacency
    adj = polygon_adjacency(al.gdf, kind=kind, tolerance_m=adjacency_tolerance_m)
    if adjacency == "road" and graph is not None:
        adj = road_adjacency(adj, graph, al.gdf, margin_m=margin)
    isolated[isolated_areas(adj)] = True
    poly_piece, poly_count = _pieces_to_labels(components_within(adj, al.code), al.n)
    if isolated.any():
        what = "road-adjacent" if adjacency == "road" else "polygon"
        notes.append(
            f"{int(isolated.sum())} area(s) have no {what} neighbour at all (islands): "
            f"{_names(al.ids[isolated])}; a territory holding one and other areas cannot be "
            "contiguous"
        )
    return polygonal, poly_piece, poly_count, isolated


def _pieces(
    al: _Alignment,
    graph: CompiledGraph | None,
    snapped: SnappedPoints | None,
    adjacency: Literal["rook", "queen", "road"],
    adjacency_tolerance_m: float,
    margin: float,
    notes: list[str],
) -> _Pieces:
    """Polygon pieces of each territory, then its road pieces (polygons and a graph only)."""
    polygonal, poly_piece, poly_count, isolated = _polygon_pieces(
        al, graph, adjacency, adjacency_tolerance_m, margin, notes
    )
    road_eval = graph is not None and snapped is not None and polygonal
    road_piece = np.full(al.n, -1, dtype=np.int64)
    road_count = np.zeros(al.k, dtype=np.int64)
    if road_eval and graph is not None and snapped is not None:
        road_piece, road_count = _road_pieces(graph, al.gdf, al.members, snapped, margin)
    return _Pieces(
        polygonal=polygonal,
        poly_piece=poly_piece,
        poly_count=poly_count,
        isolated=isolated,
        road_eval=road_eval,
        road_piece=road_piece,
        road_count=road_count,
    )


@dataclasses.dataclass(frozen=True)
class _Balance:
    """Size of each territory per measure and its relative deviation from the mean."""

    names: list[str]  #: the measures, or ``["n_areas"]`` without measures
    sizes: np.ndarray  #: (k, len(names))
    dev: np.ndarray  #: (k, len(names)), NaN where the mean is not positive


def _balance(al: _Alignment) -> _Balance:
    """Sizes of the territories and their deviations from the mean size."""
    names = al.measure_names or ["n_areas"]
    sizes = np.zeros((al.k, len(names)))
    for t, rows in enumerate(al.members):
        sizes[t] = al.weights[rows].sum(axis=0) if al.measure_names else rows.shape[0]
    mean = sizes.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.where(mean > 0, (sizes - mean) / np.where(mean > 0, mean, 1.0), np.nan)
    return _Balance(names=names, sizes=sizes, dev=dev)


def _drive_stats(d: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """Max, mean, p95 and weighted mean of the finite drive minutes ``d`` (NaN when none)."""
    fin = np.isfinite(d)
    if not fin.any():
        return {
            "drive_max_min": np.nan,
            "drive_mean_min": np.nan,
            "drive_p95_min": np.nan,
            "drive_wmean_min": np.nan,
        }
    wsum = float(w[fin].sum())
    return {
        "drive_max_min": float(d[fin].max()),
        "drive_mean_min": float(d[fin].mean()),
        "drive_p95_min": float(np.percentile(d[fin], 95)),
        "drive_wmean_min": float((w[fin] * d[fin]).sum() / wsum) if wsum > 0 else np.nan,
    }


def _territory_row(
    t: int,
    al: _Alignment,
    ct: _CenterTimes,
    fig: _AreaFigures,
    pieces: _Pieces,
    bal: _Balance,
    max_drive: float | None,
) -> dict[str, Any]:
    """The row of territory ``t`` in :attr:`ValidationReport.territories`."""
    rows = al.members[t]
    known = fig.reachable_known
    row: dict[str, Any] = {
        "territory": al.terr[t],
        "n_areas": int(rows.shape[0]),
        "center_id": al.ids[ct.pos[t]] if ct.pos[t] >= 0 else None,
        "center_lon": float(ct.lon[t]),
        "center_lat": float(ct.lat[t]),
        "center_snap_m": float(ct.center_snap[t]),
    }
    for j, name in enumerate(al.measure_names):
        row[f"size_{name}"] = float(bal.sizes[t, j])
    for j, name in enumerate(bal.names):
        row[f"dev_{name}"] = float(bal.dev[t, j])
    w = al.weights[rows, 0] if al.measure_names else np.ones(rows.shape[0])
    row.update(_drive_stats(fig.drive_min[rows], w))
    row["straight_max_km"] = float(fig.straight_m[rows].max() / 1000.0)
    row["n_unreachable"] = int(fig.unreachable[rows].sum()) if known else None
    row["n_over_limit"] = int(fig.over[rows].sum()) if known and max_drive is not None else None
    row["n_far_snap"] = int(ct.far[rows].sum()) if known else None
    row["n_detour_outliers"] = int(fig.detour[rows].sum()) if known else None
    row["contiguous"] = bool(pieces.poly_count[t] == 1) if pieces.polygonal else None
    row["n_polygon_pieces"] = int(pieces.poly_count[t]) if pieces.polygonal else None
    row["road_connected"] = bool(pieces.road_count[t] == 1) if pieces.road_eval else None
    row["n_road_pieces"] = int(pieces.road_count[t]) if pieces.road_eval else None
    return row


def _territory_table(
    al: _Alignment,
    ct: _CenterTimes,
    fig: _AreaFigures,
    pieces: _Pieces,
    bal: _Balance,
    max_drive: float | None,
) -> pd.DataFrame:
    """:attr:`ValidationReport.territories`: one row per territory, nullable counts and flags."""
    tdf = pd.DataFrame(
        [_territory_row(t, al, ct, fig, pieces, bal, max_drive) for t in range(al.k)]
    )
    for col in (
        "n_unreachable",
        "n_over_limit",
        "n_far_snap",
        "n_detour_outliers",
        "n_polygon_pieces",
        "n_road_pieces",
    ):
        tdf[col] = tdf[col].astype("Int64")
    for col in ("contiguous", "road_connected"):
        tdf[col] = tdf[col].astype("boolean")
    return tdf


def _flag(values: np.ndarray, known: bool) -> Any:
    """Nullable boolean array of ``values``; all ``<NA>`` when not ``known``."""
    arr = pd.array(values.astype(bool), dtype="boolean")
    if not known:
        arr[:] = pd.NA
    return arr


def _area_table(
    al: _Alignment,
    ct: _CenterTimes,
    fig: _AreaFigures,
    pieces: _Pieces,
    max_drive: float | None,
) -> pd.DataFrame:
    """:attr:`ValidationReport.areas`: one row per area, in input order."""
    known = fig.reachable_known
    poly_piece, road_piece = pieces.poly_piece, pieces.road_piece
    adf = pd.DataFrame(
        {
            "id": al.ids,
            "territory": al.labels,
            "is_center": fig.is_center,
            "drive_minutes_from_center": fig.drive_min,
            "straight_km": fig.straight_m / 1000.0,
            "detour_ratio": fig.ratio,
            "snap_m": ct.snap_m,
            "unreachable": _flag(fig.unreachable, known),
            "over_limit": _flag(fig.over, known and max_drive is not None),
            "far_snap": _flag(ct.far, known),
            "detour_outlier": _flag(fig.detour, known),
            "isolated": _flag(pieces.isolated, pieces.polygonal),
            "polygon_piece": pd.array(np.where(poly_piece >= 0, poly_piece, 0), dtype="Int64"),
            "road_piece": pd.array(np.where(road_piece >= 0, road_piece, 0), dtype="Int64"),
        }
    )
    if not pieces.polygonal:
        adf["polygon_piece"] = pd.NA
        adf["polygon_piece"] = adf["polygon_piece"].astype("Int64")
    if not pieces.road_eval:
        adf["road_piece"] = pd.NA
        adf["road_piece"] = adf["road_piece"].astype("Int64")
    return adf


def _rule_reachable(
    al: _Alignment, fig: _AreaFigures, require_reachable: bool | None
) -> dict[str, Any]:
    """Rule ``reachable``: no area unreachable from its center."""
    if not fig.reachable_known:
        return _rule("reachable", bool(require_reachable), False, None, _NO_GRAPH)
    bad = np.flatnonzero(fig.unreachable)
    detail = (
        f"all {al.n} areas reachable by road from their center"
        if not bad.size
        else f"{bad.size} area(s) unreachable from their center: "
        + _names(np.array([f"{al.ids[i]} ({al.labels[i]})" for i in bad], dtype=object))
    )
    return _rule("reachable", require_reachable is not False, True, not bad.size, detail)


def _rule_max_drive(
    al: _Alignment, ct: _CenterTimes, fig: _AreaFigures, max_drive: float | None
) -> dict[str, Any]:
    """Rule ``max_drive``: every area reachable and within the limit (info without a limit)."""
    if not fig.reachable_known:
        return _rule("max_drive", max_drive is not None, False, None, _NO_GRAPH)
    finite = ct.drive_s[np.isfinite(ct.drive_s)]
    worst = float(finite.max()) / 60.0 if finite.size else math.nan
    if max_drive is None:
        return _rule(
            "max_drive",
            False,
            True,
            None,
            f"longest drive from a center {worst:.1f} min (no limit given)",
        )
    over = fig.over
    n_over, n_un = int(over.sum()), int(fig.unreachable.sum())
    ok = n_over == 0 and n_un == 0
    parts = []
    if n_over:
        parts.append(
            f"{n_over} area(s) over {max_drive / 60:.1f} min in "
            f"{_names(al.terr[np.bincount(al.code[over], minlength=al.k) > 0])}"
        )
    if n_un:
        parts.append(f"{n_un} area(s) unreachable (no road path)")
    detail = (
        "; ".join(parts) if parts else f"all areas within {max_drive / 60:.1f} min"
    ) + f" (longest reachable {worst:.1f} min)"
    return _rule("max_drive", True, True, ok, detail)


def _rule_balance(al: _Alignment, bal: _Balance, tol: float | None) -> dict[str, Any]:
    """Rule ``balance``: every ``|deviation| <= tolerance`` (info without a tolerance)."""
    terr = al.terr
    absdev = np.abs(np.nan_to_num(bal.dev, nan=0.0))
    j_worst, t_worst = (
        np.unravel_index(int(np.argmax(absdev.T)), absdev.T.shape) if absdev.size else (0, 0)
    )
    worst_txt = (
        f"largest |deviation| {absdev[t_worst, j_worst]:.1%} ({bal.names[j_worst]}, "
        f"territory {terr[t_worst]})"
        if absdev.size
        else "no territory"
    )
    if tol is None:
        return _rule("balance", False, True, None, f"{worst_txt} (no tolerance given)")
    off = (absdev > tol + 1e-12).any(axis=1)
    detail = (
        f"all sizes within ±{tol:.1%} of the mean; {worst_txt}"
        if not off.any()
        else f"{int(off.sum())} territor(y/ies) beyond ±{tol:.1%}: {_names(terr[off])}; "
        + worst_txt
    )
    return _rule("balance", True, True, not off.any(), detail)


def _rule_contiguity(
    al: _Alignment,
    pieces: _Pieces,
    require_contiguity: bool,
    adjacency: str,
    adjacency_tolerance_m: float,
) -> dict[str, Any]:
    """Rule ``contiguity``: every territory one polygon piece (polygons only)."""
    if not pieces.polygonal:
        return _rule(
            "contiguity",
            require_contiguity,
            False,
            None,
            "not evaluated: the areas are not polygons",
        )
    terr, poly_count = al.terr, pieces.poly_count
    bad_t = terr[poly_count > 1]
    detail = (
        f"all {al.k} territories contiguous ({adjacency} adjacency, "
        f"{adjacency_tolerance_m:g} m tolerance)"
        if not bad_t.size
        else f"{bad_t.size} territor(y/ies) in several pieces: "
        + _names(
            np.array(
                [f"{terr[t]} ({poly_count[t]} pieces)" for t in np.flatnonzero(poly_count > 1)],
                dtype=object,
            )
        )
    )
    return _rule("contiguity", require_contiguity, True, not bad_t.size, detail)


def _rule_road_connected(
    al: _Alignment, pieces: _Pieces, require_road_connected: bool, has_graph: bool
) -> dict[str, Any]:
    """Rule ``road_connected``: every territory one road piece (polygons and a graph only)."""
    if not pieces.road_eval:
        return _rule(
            "road_connected",
            require_road_connected,
            False,
            None,
            _NO_GRAPH if not has_graph else "not evaluated: the areas are not polygons",
        )
    terr, road_count = al.terr, pieces.road_count
    bad_r = np.flatnonzero(road_count > 1)
    detail = (
        f"all {al.k} territories connected by road inside their polygons"
        if not bad_r.size
        else f"{bad_r.size} territor(y/ies) not connected by road inside their polygons: "
        + _names(np.array([f"{terr[t]} ({road_count[t]} pieces)" for t in bad_r], dtype=object))
        + " (stricter than contiguity: the roads between two neighbours may leave the "
        "territory on the way)"
    )
    return _rule("road_connected", require_road_connected, True, not bad_r.size, detail)


def _rule_snap_distance(
    al: _Alignment, ct: _CenterTimes, fig: _AreaFigures, snap_limit: float | None
) -> dict[str, Any]:
    """Rule ``snap_distance``: no area snapped farther than the snap limit."""
    if not (fig.reachable_known and ct.snapped is not None):
        return _rule("snap_distance", snap_limit is not None, False, None, _NO_GRAPH)
    limit = ct.snapped.max_distance_m
    n_far = int(ct.far.sum())
    detail = (
        f"all areas within {limit:g} m of a road (farthest {np.nanmax(ct.snap_m):.0f} m)"
        if not n_far
        else f"{n_far} area(s) farther than {limit:g} m from a road: {_names(al.ids[ct.far])}"
    )
    return _rule("snap_distance", snap_limit is not None, True, not n_far, detail)


def _params(
    graph: CompiledGraph | None,
    ct: _CenterTimes,
    al: _Alignment,
    limits: _Limits,
    *,
    territory_column: str,
    adjacency: str,
    adjacency_tolerance_m: float,
) -> dict[str, Any]:
    """:attr:`ValidationReport.params`: the limits and options used."""
    return {
        "mode": "road graph" if graph is not None else "straight-line",
        "centers": ct.kind,
        "territory_column": territory_column,
        "measures": al.measure_names,
        "max_drive_s": limits.max_drive,
        "tolerance": limits.tol,
        "max_snap_m": ct.snapped.max_distance_m if ct.snapped is not None else limits.snap_limit,
        "detour_threshold": limits.detour_t,
        "detour_min_km": limits.detour_km,
        "reference_kmh": limits.ref_kmh,
        "adjacency": adjacency,
        "adjacency_tolerance_m": float(adjacency_tolerance_m),
        "road_margin_m": limits.margin,
        "graph": graph.meta.get("source") if graph is not None else None,
    }


# ------------------------------------------------------------------------------ validation
def validate_territories(
    areas: Areas | gpd.GeoDataFrame,
    territory_column: str,
    *,
    graph: CompiledGraph | None,
    centers: gpd.GeoDataFrame | None = None,
    center_column: str | None = None,
    measures: Sequence[str] = (),
    max_drive_s: float | None = None,
    tolerance: float | None = None,
    require_contiguity: bool = False,
    require_road_connected: bool = False,
    require_reachable: bool | None = None,
    max_snap_m: float | None = None,
    detour_threshold: float = 2.5,
    detour_min_km: float = 1.0,
    reference_kmh: float = 60.0,
    adjacency: Literal["rook", "queen", "road"] = "rook",
    adjacency_tolerance_m: float = 1.0,
    road_margin_m: float = 25.0,
    id_column: str | None = None,
    n_jobs: int | None = None,
    use_cache: bool = True,
) -> ValidationReport:
    """Check a territory alignment against drive-time, balance and connectivity rules.

    See the module docstring for every definition (center, unreachable, detour outlier,
    contiguous, connected by road, balance) and the table of rules.

    Parameters
    ----------
    areas
        Basic areas (polygons, or points: then contiguity and road connectivity are not
        evaluated) with the territory column and the measure columns.
    territory_column
        Column naming each area's territory.
    graph
        Road graph; ``None`` is straight-line mode (no drive times: the road rules are reported
        as not evaluated).
    centers
        One point per territory, with the same ``territory_column``.
    center_column
        Boolean column marking each territory's center area (exactly one per territory).
        Neither given: each territory's center is its 1-median.
    measures
        Numeric columns to balance (e.g. population, accounts); the first one weights the
        weighted mean drive time.
    max_drive_s
        Drive-time limit from the center, seconds (rule ``max_drive``).
    tolerance
        Largest allowed relative deviation of a territory's size from the mean, e.g. 0.1
        (rule ``balance``).
    require_contiguity, require_road_connected
        Ask for the rules ``contiguity`` and ``road_connected``.
    require_reachable
        Ask for the rule ``reachable``; ``None`` (default) asks for it whenever a graph is
        given.
    max_snap_m
        Snap distance limit in metres (rule ``snap_distance``); areas beyond it are flagged.
        Default for the flag (not a rule): ``settings.max_snap_distance_m``.
    detour_threshold
        Detour ratio above which an area is a detour outlier.
    detour_min_km
        No detour ratio for areas closer than this to their center.
    reference_kmh
        Straight-line speed of the detour ratio.
    adjacency, adjacency_tolerance_m
        Adjacency of the contiguity rule: polygon adjacency ``"rook"`` or ``"queen"``
        (:func:`~roadnet.adjacency.polygon_adjacency`), or ``"road"``: rook neighbours whose
        border a road crosses (:func:`~roadnet.adjacency.road_adjacency`; needs ``graph``).
    road_margin_m
        The territory's polygons are grown by this much before selecting the road nodes
        inside them (roads along the border belong to both sides); the same margin places
        the roads for ``adjacency="road"``.
    id_column
        Id column when ``areas`` is a GeoDataFrame (detected when omitted).
    n_jobs
        Worker processes for the drive-time matrices (default ``settings.n_jobs``).
    use_cache
        Read and store the drive-time matrices in the cache (when ``settings.use_cache``).

    Returns
    -------
    ValidationReport

    Raises
    ------
    AreaDataError
        Missing territory, measure or center column; empty territories; a territory without
        (or with several) centers; invalid limits.
    CRSError, SnapError
        From reading and snapping the points.

    Examples
    --------
    >>> report = validate_territories(
    ...     areas, "territory", graph=g, max_drive_s=45 * 60, measures=["population"],
    ...     tolerance=0.1, require_contiguity=True)  # doctest: +SKIP
    >>> report.passed(), report.failed_rules()  # doctest: +SKIP
    >>> print(report.to_text())  # doctest: +SKIP
    """
    limits = _check_options(
        graph=graph,
        centers=centers,
        center_column=center_column,
        max_drive_s=max_drive_s,
        tolerance=tolerance,
        max_snap_m=max_snap_m,
        detour_threshold=detour_threshold,
        detour_min_km=detour_min_km,
        reference_kmh=reference_kmh,
        road_margin_m=road_margin_m,
        adjacency=adjacency,
    )
    al = _align(areas, territory_column, measures, id_column)
    notes: list[str] = []
    ct = _centers_and_drive_times(
        al,
        territory_column,
        graph,
        centers,
        center_column,
        snap_limit=limits.snap_limit,
        n_jobs=n_jobs,
        use_cache=use_cache,
        notes=notes,
    )
    fig = _area_figures(al, ct, reachable_known=graph is not None, limits=limits)
    pieces = _pieces(al, graph, ct.snapped, adjacency, adjacency_tolerance_m, limits.margin, notes)
    bal = _balance(al)
    rules = [
        _rule_reachable(al, fig, require_reachable),
        _rule_max_drive(al, ct, fig, limits.max_drive),
        _rule_balance(al, bal, limits.tol),
        _rule_contiguity(al, pieces, require_contiguity, adjacency, adjacency_tolerance_m),
        _rule_road_connected(al, pieces, require_road_connected, graph is not None),
        _rule_snap_distance(al, ct, fig, limits.snap_limit),
    ]
    params = _params(
        graph,
        ct,
        al,
        limits,
        territory_column=territory_column,
        adjacency=adjacency,
        adjacency_tolerance_m=adjacency_tolerance_m,
    )
    report = ValidationReport(
        territories=_territory_table(al, ct, fig, pieces, bal, limits.max_drive),
        areas=_area_table(al, ct, fig, pieces, limits.max_drive),
        rules=rules,
        params=params,
        notes=notes,
    )
    log.info(
        "validated %d territories (%d areas): %s",
        al.k,
        al.n,
        "passed" if report.passed() else f"failed {report.failed_rules()}",
    )
    return report
