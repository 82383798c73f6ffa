"""``roadnet validate``: territory reachability and the rules of an alignment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from roadnet.areas import read_areas
from roadnet.roads import road_lines
from roadnet.settings import settings
from roadnet.sources import DEFAULT_CLIP_BUFFER_KM
from roadnet.units import parse_duration
from territory.cli._common import (
    BboxOpt,
    CacheDirOpt,
    ClipBufferOpt,
    ClipToAreasOpt,
    GraphOpt,
    IdColumnOpt,
    JobsOpt,
    LatColumnOpt,
    LonColumnOpt,
    NoCacheOpt,
    OsmOpt,
    PbfOpt,
    PlaceOpt,
    ReaderOpt,
    SpeedOpt,
    SpeedsOpt,
    VerboseOpt,
    cache_settings,
    clip_for,
    err,
    friendly,
    out,
    road_graph,
    setup_logging,
)
from territory.cli._report import stage_maps
from territory.exceptions import OptionError
from territory.outputs import OutputSet, check_output_path
from territory.validate import validate_territories

__all__ = ["validate_cmd"]


@friendly
def validate_cmd(
    areas_path: Annotated[Path, typer.Argument(help="Areas with a territory column.")],
    territory_column: Annotated[
        str, typer.Option("--territory-column", "-t", help="Column holding the territory.")
    ],
    pbf: PbfOpt = None,
    osm: OsmOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    graph: GraphOpt = None,
    reader: ReaderOpt = "auto",
    clip_to_areas: ClipToAreasOpt = None,
    clip_buffer_km: ClipBufferOpt = DEFAULT_CLIP_BUFFER_KM,
    straight_line: Annotated[
        bool,
        typer.Option(
            "--straight-line",
            help="No roads: balance and contiguity only.",
            rich_help_panel="Road source",
            metavar="",
        ),
    ] = False,
    centers: Annotated[
        Path | None,
        typer.Option(help="Center points with the territory column.", rich_help_panel="Centers"),
    ] = None,
    center_column: Annotated[
        str | None,
        typer.Option(
            help="Boolean column marking each territory's center area.", rich_help_panel="Centers"
        ),
    ] = None,
    measure: Annotated[
        list[str] | None,
        typer.Option(
            "--measure",
            "-m",
            help="Measure for balance (repeatable).",
            rich_help_panel="Areas and measures",
        ),
    ] = None,
    max_drive: Annotated[
        str | None,
        typer.Option(
            help="Rule: every area within this drive (e.g. 45min).", rich_help_panel="Rules"
        ),
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(
            help="Rule: sizes within this deviation from the mean.", rich_help_panel="Rules"
        ),
    ] = None,
    require_contiguous: Annotated[
        bool,
        typer.Option(
            "--require-contiguous",
            help="Rule: each territory's polygons form one piece.",
            rich_help_panel="Rules",
            metavar="",
        ),
    ] = False,
    contiguity: Annotated[
        str,
        typer.Option(
            help="Adjacency of the contiguity rule: polygon (shared borders) or road "
            "(borders a road crosses, as optimize --contiguity road; needs roads).",
            rich_help_panel="Rules",
        ),
    ] = "polygon",
    require_road_connected: Annotated[
        bool,
        typer.Option(
            "--require-road-connected",
            help="Rule: each territory is connected by roads inside itself.",
            rich_help_panel="Rules",
            metavar="",
        ),
    ] = False,
    max_snap: Annotated[
        float | None,
        typer.Option(
            help="Rule: areas within this many metres of a road.", rich_help_panel="Rules"
        ),
    ] = None,
    detour_threshold: Annotated[
        float,
        typer.Option(
            help="Flag drive/straight-line time ratios above this.", rich_help_panel="Rules"
        ),
    ] = 2.5,
    id_column: IdColumnOpt = None,
    lon_column: LonColumnOpt = None,
    lat_column: LatColumnOpt = None,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="JSON report.", rich_help_panel="Outputs")
    ] = None,
    map_path: Annotated[
        Path | None, typer.Option("--map", help="Map of flagged areas.", rich_help_panel="Outputs")
    ] = None,
    png_path: Annotated[
        Path | None, typer.Option("--png", help="Static map (.png).", rich_help_panel="Outputs")
    ] = None,
    jobs: JobsOpt = None,
    speeds: SpeedsOpt = None,
    speed: SpeedOpt = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Territory reachability: drive times from centers, unreachable and far areas, detours,
    contiguity, road connectivity and balance. Exits 1 when a rule you gave fails."""
    setup_logging(verbose)
    sources = [x for x in (pbf, osm, place, bbox, graph) if x is not None]
    if straight_line and sources:
        raise OptionError("--straight-line and a road source exclude each other")
    if not straight_line and not sources:
        raise OptionError(
            "give a road source (--pbf, --osm, --place, --bbox, --graph), or "
            "--straight-line to check balance and contiguity only"
        )
    if centers is not None and center_column is not None:
        raise OptionError("give --centers or --center-column, not both")
    if contiguity not in ("polygon", "road"):
        raise OptionError(f"--contiguity must be polygon or road, got {contiguity!r}")
    if contiguity == "road" and straight_line:
        raise OptionError("--contiguity road needs a road source, not --straight-line")
    if report_path is not None:
        check_output_path(report_path, "--report", (".json",))
    if map_path is not None:
        check_output_path(map_path, "--map", (".html", ".htm"))
    if png_path is not None:
        check_output_path(png_path, "--png", (".png",))
    areas = read_areas(
        areas_path, id_column=id_column, lon_column=lon_column, lat_column=lat_column
    )
    if territory_column not in areas.gdf.columns:
        raise OptionError(
            f"territory column {territory_column!r} not found; columns are "
            f"{[c for c in areas.gdf.columns if c != areas.gdf.geometry.name]}"
        )
    centers_gdf = read_areas(centers, what="--centers").gdf if centers is not None else None
    with cache_settings(cache_dir, no_cache):
        g = None
        if not straight_line:
            g = road_graph(
                pbf=pbf,
                osm=osm,
                place=place,
                bbox=bbox,
                graph=graph,
                speeds=speeds,
                speed=speed,
                reader=reader,
                clip=clip_for(clip_to_areas, pbf, areas, centers_gdf),
                clip_buffer_km=clip_buffer_km,
            )
        rep = validate_territories(
            areas,
            territory_column,
            graph=g,
            centers=centers_gdf,
            center_column=center_column,
            measures=list(measure or []),
            max_drive_s=parse_duration(max_drive) if max_drive else None,
            tolerance=tolerance,
            require_contiguity=require_contiguous,
            adjacency="road" if contiguity == "road" else "rook",
            require_road_connected=require_road_connected,
            max_snap_m=max_snap,
            detour_threshold=detour_threshold,
            id_column=areas.id_column,
            n_jobs=jobs,
            use_cache=settings.use_cache,
        )
    rep.print(out)
    with OutputSet() as outs:
        if report_path is not None:
            outs.write_text(report_path, rep.to_json() + "\n")
        if map_path is not None or png_path is not None:
            gdf = areas.gdf.copy()
            flags = rep.areas[["unreachable", "over_limit", "far_snap", "detour_outlier"]]
            gdf["flagged"] = flags.any(axis=1).to_numpy()
            for col in ("drive_minutes_from_center", "detour_ratio", "snap_m"):
                if col in rep.areas.columns:
                    gdf[col] = rep.areas[col].to_numpy()
            gdf["territory"] = gdf[territory_column]
            gdf["is_center"] = rep.areas["is_center"].to_numpy()
            stage_maps(
                outs,
                gdf,
                map_path,
                png_path,
                title="territory validation",
                flagged_column="flagged",
                roads=None if g is None else road_lines(g),
            )
    if outs.written:
        out.print("wrote " + ", ".join(str(m) for m in outs.written), highlight=False)
    if not rep.passed():
        failed = [r["rule"] for r in rep.rules if r["given"] and not r["passed"]]
        err.print(f"validation failed: {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)
