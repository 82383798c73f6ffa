"""``roadnet graph build | info``: compiled road graphs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from roadnet.graph import CompiledGraph, load_graph
from territory.cli._common import (
    BboxOpt,
    CacheDirOpt,
    NoCacheOpt,
    OsmOpt,
    PbfOpt,
    PlaceOpt,
    RefreshOpt,
    SpeedOpt,
    SpeedsOpt,
    VerboseOpt,
    cache_settings,
    friendly,
    out,
    road_graph,
    setup_logging,
)

__all__ = ["graph_app"]

graph_app = typer.Typer(help="Build and inspect compiled road graphs.", no_args_is_help=True)


@friendly
def graph_build(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Output .npz file.")],
    pbf: PbfOpt = None,
    osm: OsmOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    speeds: SpeedsOpt = None,
    speed: SpeedOpt = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    refresh: RefreshOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Compile the drive network of a source into a graph file."""
    setup_logging(verbose)
    with cache_settings(cache_dir, no_cache, refresh):
        g = road_graph(pbf=pbf, osm=osm, place=place, bbox=bbox, speeds=speeds, speed=speed)
        path = g.save(out_path)
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


def _print_summary(g: CompiledGraph) -> None:
    table = Table(show_header=False, box=None)
    for key, val in g.summary().items():
        table.add_row(
            str(key), json.dumps(val, default=str) if isinstance(val, dict | list) else str(val)
        )
    out.print(table)


graph_app.command("build")(graph_build)
graph_app.command("info")(graph_info)
