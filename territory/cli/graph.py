"""``roadnet graph build | info``: compiled road graphs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from roadnet.graph import CompiledGraph, load_graph
from roadnet.sources import DEFAULT_CLIP_BUFFER_KM
from territory.cli._common import (
    BboxOpt,
    CacheDirOpt,
    ClipBufferOpt,
    NoCacheOpt,
    OsmOpt,
    PbfOpt,
    PlaceOpt,
    ReaderOpt,
    RefreshOpt,
    SpeedOpt,
    SpeedsOpt,
    VerboseOpt,
    cache_settings,
    friendly,
    out,
    parse_bbox,
    road_graph,
    setup_logging,
)
from territory.exceptions import OptionError
from territory.outputs import OutputSet, check_output_path

__all__ = ["graph_app", "read_clip_polygon"]

graph_app = typer.Typer(help="Build and inspect compiled road graphs.", no_args_is_help=True)


@friendly
def graph_build(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Output .npz file.")],
    pbf: PbfOpt = None,
    osm: OsmOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    reader: ReaderOpt = "auto",
    clip_bbox: Annotated[
        str | None,
        typer.Option(
            "--clip-bbox",
            help="Keep the PBF's roads within --clip-buffer-km of WEST,SOUTH,EAST,NORTH.",
            rich_help_panel="Road source",
        ),
    ] = None,
    polygon: Annotated[
        Path | None,
        typer.Option(
            "--polygon",
            help="Keep the PBF's roads within --clip-buffer-km of this area (any GIS file).",
            rich_help_panel="Road source",
        ),
    ] = None,
    clip_buffer_km: ClipBufferOpt = DEFAULT_CLIP_BUFFER_KM,
    speeds: SpeedsOpt = None,
    speed: SpeedOpt = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    refresh: RefreshOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Compile the drive network of a source into a graph file."""
    setup_logging(verbose)
    check_output_path(out_path, "--out", (".npz",))
    if clip_bbox is not None and polygon is not None:
        raise OptionError("give --clip-bbox or --polygon, not both")
    clip: object = None
    if clip_bbox is not None:
        clip = parse_bbox(clip_bbox, "--clip-bbox")
    elif polygon is not None:
        clip = read_clip_polygon(polygon)
    with cache_settings(cache_dir, no_cache, refresh):
        g = road_graph(
            pbf=pbf,
            osm=osm,
            place=place,
            bbox=bbox,
            speeds=speeds,
            speed=speed,
            reader=reader,
            clip=clip,
            clip_buffer_km=clip_buffer_km,
            reuse_covering=False,  # the file written holds exactly the clip asked for
        )
        with OutputSet() as outs:
            path = outs.stage(out_path, g.save)
    out.print(f"wrote {path}", highlight=False)
    _print_summary(g)


@friendly
def graph_info(
    path: Annotated[Path, typer.Argument(help="Compiled graph (.npz).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.", metavar="")] = False,
) -> None:
    """Show a compiled graph's counts, components, source and speed profile."""
    g = load_graph(path)
    if as_json:
        out.print_json(json.dumps({**g.summary(), "meta": g.meta}, default=str))
    else:
        _print_summary(g)


def read_clip_polygon(path: Path) -> object:
    """The area of a GIS file (all its geometries) for ``--polygon``, in EPSG:4326."""
    import geopandas as gpd

    if not path.is_file():
        raise OptionError(f"--polygon file not found: {path}")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # fiona/pyogrio errors: unreadable file
        raise OptionError(f"--polygon {str(path)!r} is not a readable GIS file: {exc}") from None
    if gdf.crs is None:
        raise OptionError(f"--polygon {str(path)!r} declares no CRS")
    if gdf.empty:
        raise OptionError(f"--polygon {str(path)!r} holds no geometry")
    return gdf


def _print_summary(g: CompiledGraph) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(overflow="fold")
    table.add_column(overflow="fold")
    for key, val in g.summary().items():
        table.add_row(
            str(key), json.dumps(val, default=str) if isinstance(val, dict | list) else str(val)
        )
    out.print(table)


graph_app.command("build")(graph_build)
graph_app.command("info")(graph_info)
