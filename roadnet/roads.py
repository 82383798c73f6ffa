"""The road network as lines (geodata at the edge), e.g. to draw it under territories."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import shapely

from roadnet.graph import CompiledGraph

__all__ = ["MAJOR_ROADS", "road_lines"]

MAJOR_ROADS = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
)
"""OSM highway classes drawn as the major road network."""


def road_lines(
    graph: CompiledGraph, classes: Sequence[str] | None = MAJOR_ROADS
) -> gpd.GeoDataFrame:
    """One line per road piece between junctions (a two-way road once), in EPSG:4326.

    Parameters
    ----------
    graph
        The compiled road graph.
    classes
        OSM highway classes to keep (default :data:`MAJOR_ROADS`); ``None`` keeps all.

    Returns
    -------
    GeoDataFrame
        Columns ``highway`` (class name) and ``osmid`` (way id), LineString geometry.
    """
    names = np.asarray(graph.highway_classes, dtype=object)
    n_arcs = graph.arc_u.shape[0]
    keep = np.ones(n_arcs, bool)
    if classes is not None:
        keep &= np.isin(names[graph.arc_highway], list(classes))
    # a two-way road is two arcs with the same geometry: draw the one with the smaller index
    twin = graph.arc_twin
    keep &= (twin < 0) | (np.arange(n_arcs) < twin)
    idx = np.flatnonzero(keep)
    starts, stops = graph.geom_indptr[idx], graph.geom_indptr[idx + 1]
    counts = stops - starts
    ok = counts >= 2
    idx, starts, counts = idx[ok], starts[ok], counts[ok]
    if idx.size:
        take = np.repeat(starts - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(
            counts.sum()
        )
        coords = np.column_stack([graph.geom_x[take], graph.geom_y[take]])
        lines = shapely.linestrings(coords, indices=np.repeat(np.arange(idx.size), counts))
    else:
        lines = np.array([], dtype=object)
    gdf = gpd.GeoDataFrame(
        {"highway": names[graph.arc_highway[idx]], "osmid": graph.arc_osmid[idx]},
        geometry=lines,
        crs=graph.crs,
    )
    return gdf.to_crs("EPSG:4326")
