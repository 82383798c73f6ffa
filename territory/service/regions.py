"""The road graphs a server serves: loaded once at start-up, kept warm, picked per request.

Each region is one road source (a PBF file or a saved graph) with its contraction hierarchy.
Both come from the cache (:func:`roadnet.graph_cache.load_road_graph`,
:func:`roadnet.graph_cache.cached_hierarchy`; built and stored on the first start) and are then
re-read as read-only memory maps (:func:`roadnet.graph_cache.mapped_from_cache`), so that the
worker processes of one server share one copy of the arrays' pages. A request never rebuilds
anything: it goes to the region whose bounding box contains all its points, or to the region it
names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roadnet.ch import Hierarchy
from roadnet.engine import EngineChoice
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import (
    cached_hierarchy,
    load_road_graph,
    mapped_from_cache,
    open_store,
)
from roadnet.names import RoadNames, road_names
from roadnet.snap import SnappedPoints, snap_points
from roadnet.speed import SpeedProfile
from territory.exceptions import RequestError
from territory.service.snapcache import SnapCache

__all__ = ["PROFILE_ALIASES", "Region", "RegionSet", "load_region", "region_name"]

log = logging.getLogger(__name__)

#: Profile names a client may send in the OSRM URL for the served (car) profile.
PROFILE_ALIASES = ("driving", "car", "drive")

#: Degrees added around a region's bounding box when deciding whether it contains a point.
_BBOX_MARGIN_DEG = 0.01


def region_name(path: Path) -> str:
    """A URL-safe region name from a file name (``porto.osm.pbf`` -> ``porto``)."""
    stem = path.name
    for suffix in (".osm.pbf", ".pbf", ".osm", ".npz"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = stem.removesuffix("-latest")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-").lower() or "region"


@dataclasses.dataclass(eq=False)
class Region:
    """One served road graph and its hierarchy.

    Attributes
    ----------
    name
        Name used in URLs and ``/v1/graphs``.
    graph, hierarchy
        The compiled graph and its contraction hierarchy (memory-mapped when ``mapped``).
    source
        The file it was read from.
    mapped
        Whether the arrays are memory maps of the cache (shared between processes).
    loaded_at
        When this process loaded it (UTC, ISO 8601).
    built
        When the graph was built into the cache (UTC, ISO 8601), when known.
    names
        The roads' names (regions served from a PBF file), or ``None``.
    snap_cache
        Snapped points by input coordinates (``None`` = snap every time).
    """

    name: str
    graph: CompiledGraph
    hierarchy: Hierarchy
    source: str
    mapped: bool
    loaded_at: str
    built: str | None = None
    names: RoadNames | None = None
    snap_cache: SnapCache | None = None

    def names_of_arcs(self, arcs: np.ndarray) -> list[str]:
        """The road name of each arc (``""`` when unnamed or when names are not known)."""
        if self.names is None:
            return [""] * int(np.asarray(arcs).shape[0])
        return self.names.of_arcs(self.graph, arcs)

    def snap(self, lon: np.ndarray, lat: np.ndarray) -> SnappedPoints:
        """The points snapped to the graph (``snap_points(..., warn=False)``), known points from
        the region's snap cache."""
        if self.snap_cache is None:
            return snap_points(self.graph, lon, lat, warn=False)
        return self.snap_cache.snap(lon, lat)

    @functools.cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the graph's nodes, in degrees (computed once: every
        request asks)."""
        g = self.graph
        return (
            float(np.min(g.lon)),
            float(np.min(g.lat)),
            float(np.max(g.lon)),
            float(np.max(g.lat)),
        )

    @functools.cached_property
    def engine(self) -> EngineChoice:
        """The hierarchy as the engine of every matrix of this region."""
        return EngineChoice("ch", "service: hierarchy loaded at start-up", self.hierarchy)

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Which points lie inside the bounding box (with a small margin)."""
        w, s, e, n = self.bbox
        m = _BBOX_MARGIN_DEG
        return (lon >= w - m) & (lon <= e + m) & (lat >= s - m) & (lat <= n + m)

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/graphs`` says about the region."""
        g, h = self.graph, self.hierarchy
        return {
            "name": self.name,
            "bbox": list(self.bbox),
            "nodes": g.n_nodes,
            "arcs": g.n_arcs,
            "source": self.source,
            "cache_key": g.meta.get("cache_key"),
            "osm_timestamp": g.meta.get("osm_timestamp"),
            "built": self.built,
            "loaded_at": self.loaded_at,
            "memory_mapped": self.mapped,
            "road_names": self.names is not None,
            "hierarchy": {
                "state": "loaded",
                "arcs": h.n_arcs,
                "build_seconds": h.meta.get("build_seconds"),
            },
            "profiles": [*PROFILE_ALIASES, self.name],
        }


def load_region(
    *,
    pbf: Path | None = None,
    graph: Path | None = None,
    profile: SpeedProfile | None = None,
    name: str | None = None,
    snap_cache: int = 0,
) -> Region:
    """Load (or build and cache) one region's graph and hierarchy and warm them up.

    Exactly one of ``pbf`` and ``graph`` is given. The snapping index and the query kernels are
    exercised once, so that the first request does not pay for them. ``snap_cache`` points are
    kept in the region's :class:`~territory.service.snapcache.SnapCache` (0 = none).
    """
    path = Path(pbf if pbf is not None else graph)  # type: ignore[arg-type]
    g, _ = load_road_graph(pbf=pbf, graph=graph, profile=profile)
    h, _ = cached_hierarchy(g)
    g, h, mapped = mapped_from_cache(g, h)
    region = Region(
        name=name or region_name(path),
        graph=g,
        hierarchy=h,
        source=str(path),
        mapped=mapped,
        loaded_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        built=_built(g),
        names=road_names(g, pbf) if pbf is not None else None,
        snap_cache=SnapCache(g, snap_cache) if snap_cache > 0 else None,
    )
    _warm(region)
    log.info(
        "region %s: %d nodes, %d arcs, memory-mapped=%s", region.name, g.n_nodes, g.n_arcs, mapped
    )
    return region


def _built(graph: CompiledGraph) -> str | None:
    store = open_store()
    key = graph.meta.get("cache_key")
    if store is None or not isinstance(key, str) or key.startswith("content-"):
        return None
    found = store.info(key)
    return found[0].created if found is not None else None


def _warm(region: Region) -> None:
    """Build the snapping index and compile the query kernels once."""
    from roadnet.matrix import drive_time_matrix

    g = region.graph
    i = int(np.argmax(g.scc == 0))
    pts = np.array([[g.lon[i], g.lat[i]], [g.lon[i] + 1e-4, g.lat[i]]])
    snapped = snap_points(g, pts[:, 0], pts[:, 1], warn=False)
    drive_time_matrix(g, snapped, distances=True, engine=region.engine, n_jobs=1)


class RegionSet:
    """The served regions, in the order given at start-up."""

    def __init__(self, regions: Sequence[Region]) -> None:
        self.regions = list(regions)
        self.by_name = {r.name: r for r in self.regions}

    def __len__(self) -> int:
        return len(self.regions)

    def profiles(self) -> list[str]:
        """Profile names the OSRM URLs accept."""
        return [*PROFILE_ALIASES, *self.by_name]

    def pick(self, profile: str | None, lon: np.ndarray, lat: np.ndarray) -> Region:
        """The region for a request: the one named by ``profile``, else the one containing
        every point.

        Raises
        ------
        RequestError
            ``InvalidUrl`` for an unknown profile, ``NoSegment`` when no served region
            contains all the points.
        """
        if profile is not None and profile not in PROFILE_ALIASES:
            region = self.by_name.get(profile)
            if region is None:
                raise RequestError(
                    "InvalidUrl",
                    f"unknown profile {profile!r}; this server serves: "
                    f"{', '.join(self.profiles())}",
                )
            candidates = [region]
        else:
            candidates = self.regions
        for region in candidates:
            if bool(np.all(region.contains(lon, lat))):
                return region
        boxes = "; ".join(f"{r.name} {[round(v, 4) for v in r.bbox]}" for r in candidates)
        if len(candidates) == 1:
            outside = np.flatnonzero(~candidates[0].contains(lon, lat))
            where = f"coordinate(s) {outside[:10].tolist()} lie outside the served region"
        else:
            where = "no served region contains all the coordinates"
        raise RequestError("NoSegment", f"{where} (served: {boxes})")
