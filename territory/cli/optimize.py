"""``roadnet optimize``: balanced, compact territories on drive times or straight lines."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

import optimizer
from optimizer.tolerance import parse_tolerance
from optimizer.validation import check_count, check_p, check_time_limit
from roadnet.areas import read_areas
from roadnet.roads import road_lines
from roadnet.settings import check_n_jobs
from roadnet.sources import DEFAULT_CLIP_BUFFER_KM
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
    MaxSnapOpt,
    NoCacheOpt,
    OsmOpt,
    PbfOpt,
    PlaceOpt,
    ReaderOpt,
    SpeedOpt,
    SpeedsOpt,
    VerboseOpt,
    cache_settings,
    check_max_snap,
    clip_for,
    err,
    friendly,
    out,
    progress,
    road_graph,
    setup_logging,
)
from territory.cli._report import print_summary_table, stage_maps
from territory.exceptions import OptionError
from territory.outputs import AREA_FORMATS, OutputSet, check_output_path
from territory.pipeline import TerritoryResult, design_territories

__all__ = ["optimize_cmd", "print_run_facts"]


@friendly
def optimize_cmd(
    areas_path: Annotated[Path, typer.Argument(help="Basic areas: GIS file or CSV with lon/lat.")],
    out_path: Annotated[
        Path,
        typer.Option("--out", "-o", help="Result areas (.gpkg, .geojson, .shp, .parquet, .csv)."),
    ],
    territories: Annotated[int, typer.Option("--territories", "-p", help="Number of territories.")],
    measure: Annotated[
        list[str] | None,
        typer.Option(
            "--measure",
            "-m",
            help="Activity measure column, 'count' or 'accounts' "
            "(repeatable; default: count, or accounts with --accounts).",
            rich_help_panel="Areas and measures",
        ),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(
            help="Allowed deviation from the mean size.", rich_help_panel="Areas and measures"
        ),
    ] = 0.05,
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
            help="Straight-line distances (no roads).",
            rich_help_panel="Road source",
            metavar="",
        ),
    ] = False,
    method: Annotated[
        str,
        typer.Option(
            help="Solver: la, la-assignmax, la-mindist, "
            "interchange, dichotomies, dichotomies-split, "
            "exact.",
            rich_help_panel="Solver",
        ),
    ] = "la",
    seed: Annotated[int, typer.Option(help="Random seed.", rich_help_panel="Solver")] = 0,
    starts: Annotated[
        int, typer.Option(help="Multi-start runs (location-allocation).", rich_help_panel="Solver")
    ] = 1,
    accounts: Annotated[
        Path | None,
        typer.Option(
            help="Account points aggregated into the areas.", rich_help_panel="Areas and measures"
        ),
    ] = None,
    accounts_measure: Annotated[
        str | None,
        typer.Option(
            help="Account column to sum (default: count accounts).",
            rich_help_panel="Areas and measures",
        ),
    ] = None,
    id_column: IdColumnOpt = None,
    lon_column: LonColumnOpt = None,
    lat_column: LatColumnOpt = None,
    summary_path: Annotated[
        Path | None,
        typer.Option(
            "--summary", help="Summary CSV (default: <out>_summary.csv).", rich_help_panel="Outputs"
        ),
    ] = None,
    map_path: Annotated[
        Path | None,
        typer.Option("--map", help="Interactive map (.html).", rich_help_panel="Outputs"),
    ] = None,
    png_path: Annotated[
        Path | None, typer.Option("--png", help="Static map (.png).", rich_help_panel="Outputs")
    ] = None,
    max_snap: MaxSnapOpt = None,
    centers: Annotated[
        Path | None,
        typer.Option(
            help="Fixed territory centers (reps' homes, offices): a point file. "
            "Fewer than -p: the optimizer adds the rest.",
            rich_help_panel="Centers",
        ),
    ] = None,
    center_id_column: Annotated[
        str | None, typer.Option(help="Id column of --centers.", rich_help_panel="Centers")
    ] = None,
    share_column: Annotated[
        str | None,
        typer.Option(
            help="Column of --centers: target share of the total.", rich_help_panel="Centers"
        ),
    ] = None,
    capacity_column: Annotated[
        str | None,
        typer.Option(
            help="Column of --centers: capacity (first measure).", rich_help_panel="Centers"
        ),
    ] = None,
    locked_column: Annotated[
        str | None,
        typer.Option(
            help="Column of the areas: center id an area is locked to.", rich_help_panel="Centers"
        ),
    ] = None,
    forbidden_column: Annotated[
        str | None,
        typer.Option(
            help="Boolean column of the areas: may not host a center.", rich_help_panel="Centers"
        ),
    ] = None,
    contiguity: Annotated[
        str,
        typer.Option(
            help="Contiguous territories: auto (default: road with a road source, polygon "
            "with --straight-line), road (neighbours whose shared border a road crosses; a "
            "river without a bridge separates), polygon (shared borders), none.",
            rich_help_panel="Contiguity and scenarios",
        ),
    ] = "auto",
    improve: Annotated[
        bool,
        typer.Option(
            "--improve/--no-improve",
            help="Tabu local search afterwards.",
            rich_help_panel="Solver",
            metavar="",
        ),
    ] = True,
    existing_column: Annotated[
        str | None,
        typer.Option(
            help="Current territory of each area: rebalance it (same -p), "
            "consolidate (smaller -p) or expand (larger -p) with few moves.",
            rich_help_panel="Contiguity and scenarios",
        ),
    ] = None,
    disruption: Annotated[
        float,
        typer.Option(
            help="With --existing-column: price of moving an area, in average trips "
            "(1 = like serving it one average trip farther away; 0 = redesign freely).",
            rich_help_panel="Contiguity and scenarios",
        ),
    ] = 1.0,
    time_limit: Annotated[
        float, typer.Option(help="Seconds for the local search.", rich_help_panel="Solver")
    ] = 10.0,
    polish_time_limit: Annotated[
        float,
        typer.Option(
            help="Seconds for the exact polish after the local search (the MIP up to 250 "
            "areas, a MIP around the plan beyond) and the lower bound that certifies the "
            "optimality gap; 0 = neither.",
            rich_help_panel="Solver",
        ),
    ] = 20.0,
    jobs: JobsOpt = None,
    speeds: SpeedsOpt = None,
    speed: SpeedOpt = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Design balanced, compact territories on drive times (or straight lines).

    With --existing-column it runs the scenario users run every quarter: rebalance the
    current territories, consolidate them to fewer, or expand them to more, moving few areas.
    """
    setup_logging(verbose)
    check_solver_options(method, straight_line, [pbf, osm, place, bbox, graph])
    parse_tolerance(tolerance)
    check_count(starts, "--starts")
    check_max_snap(max_snap)
    if not (math.isfinite(disruption) and disruption >= 0):
        raise OptionError(f"--disruption must be a finite number >= 0, got {disruption:g}")
    check_time_limit(time_limit, "--time-limit", allow_none=False)
    jobs = check_n_jobs(jobs, "--jobs")
    summary_file = summary_path or out_path.with_name(out_path.stem + "_summary.csv")
    report_file = summary_file.with_suffix(".json")
    check_output_path(out_path, "--out", AREA_FORMATS)
    check_output_path(summary_file, "--summary", (".csv",))
    if map_path is not None:
        check_output_path(map_path, "--map", (".html", ".htm"))
    if png_path is not None:
        check_output_path(png_path, "--png", (".png",))
    measures = list(measure or (["accounts"] if accounts else ["count"]))
    areas = read_areas(
        areas_path, id_column=id_column, lon_column=lon_column, lat_column=lat_column
    )
    check_p(territories, len(areas), name="-p")
    options = {"n_starts": starts} if method.startswith("la") else {}
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
                clip=clip_for(
                    clip_to_areas, pbf, areas, _centers_for_clip(centers, center_id_column)
                ),
                clip_buffer_km=clip_buffer_km,
            )
        t0 = time.perf_counter()
        with progress("drive times") as update:
            res = design_territories(
                areas,
                measures,
                territories,
                graph=g,
                tolerance=tolerance,
                method=method,
                seed=seed,
                accounts=accounts,
                accounts_measure=accounts_measure,
                max_snap_m=max_snap,
                n_jobs=jobs,
                progress=update,
                solver_options=options,
                centers=centers,
                center_id_column=center_id_column,
                share_column=share_column,
                capacity_column=capacity_column,
                locked_column=locked_column,
                forbidden_column=forbidden_column,
                contiguity=contiguity,
                improve=improve,
                existing_column=existing_column,
                disruption=disruption,
                time_limit=time_limit,
                polish_time_limit=polish_time_limit,
            )
    sol = res.solution
    print_run_facts(res, time.perf_counter() - t0)
    with OutputSet() as outs:
        outs.write_areas(res.areas, out_path)
        outs.write_csv(summary_file, res.summary)
        outs.write_json(report_file, res.report())
        stage_maps(
            outs,
            res.areas,
            map_path,
            png_path,
            title=f"{territories} territories ({res.mode})",
            roads=None if g is None else road_lines(g),
        )
    print_summary_table(res.summary, res.facts["unit"])
    bound = sol.certificate()
    out.print(
        f"max deviation {sol.max_deviation:.1%} (tolerance {tolerance:.0%}: "
        f"{'met' if sol.within_bounds else 'NOT met'}); weighted cost {sol.cost:,.6g}; "
        f"{bound}",
        highlight=False,
    )
    out.print("wrote " + ", ".join(str(p) for p in outs.written), highlight=False)


def print_run_facts(res: TerritoryResult, seconds: float) -> None:
    """What a run wants the user to know besides the table: engine, scenario, warnings."""
    sol = res.solution
    err.print(
        f"{res.mode} territories by {sol.method} [{seconds:.1f} s]"
        + (f"; {res.facts['matrix']}" if "matrix" in res.facts else ""),
        highlight=False,
    )
    if res.facts.get("accounts_unmatched"):
        err.print(
            f"[yellow]warning:[/] {res.facts['accounts_unmatched']} account(s) lie in no "
            "area and were not counted",
            highlight=False,
        )
    if "scenario" in res.facts:
        sc = res.facts["scenario"]
        b, a = sc["before"], sc["after"]
        out.print(
            f"{sc['kind']}: {sc['areas_moved']} area(s) moved ({sc.get('weight_moved', 0):,.0f} of "
            f"the first measure); max deviation {b['max_deviation']:.1%} -> "
            f"{a['max_deviation']:.1%}; weighted cost {b['cost']:,.6g} -> {a['cost']:,.6g}"
            + (f"; dissolved {sc['dissolved']}" if sc["dissolved"] else ""),
            highlight=False,
        )
    rule = res.facts.get("contiguity", "none")
    if rule != "none":
        verdict = "yes" if res.facts.get("contiguous") else "NO (see the summary)"
        out.print(f"contiguous territories ({rule} adjacency): {verdict}", highlight=False)
    elif res.facts.get("contiguity_note"):
        err.print(f"note: {res.facts['contiguity_note']}", highlight=False)
    for old, new in (res.facts.get("renamed_columns") or {}).items():
        err.print(
            f"[yellow]warning:[/] the input column {escape(repr(old))} is kept as "
            f"{escape(repr(new))}: {escape(repr(old))} now holds "
            "the result",
            highlight=False,
        )
    if res.facts.get("replaced_column"):
        col = res.facts["replaced_column"]
        err.print(
            f"note: the existing alignment of column {col!r} is kept as 'territory_before'; "
            f"'moved' marks the areas that changed territory",
            highlight=False,
        )
    if res.facts.get("unreachable_areas"):
        err.print(
            f"[yellow]warning:[/] {len(res.facts['unreachable_areas'])} area(s) no center "
            "reaches by road were given to the nearest center in a straight line: "
            f"{escape(', '.join(res.facts['unreachable_areas'][:10]))}",
            highlight=False,
        )
    if res.facts.get("far_snaps"):
        err.print(
            f"[yellow]warning:[/] areas far from any road: "
            f"{escape(', '.join(res.facts['far_snaps'][:10]))}",
            highlight=False,
        )


def _centers_for_clip(centers: Path | None, id_column: str | None) -> object:
    """The --centers points, so that clipping keeps the roads near them too."""
    if centers is None:
        return None
    return read_areas(centers, id_column=id_column, what="centers")


def check_solver_options(method: str, straight_line: bool, sources: list[object]) -> None:
    """The method is known, and either a road source or ``--straight-line`` is given."""
    if method not in optimizer.METHODS:
        raise OptionError(f"--method must be one of {', '.join(optimizer.METHODS)}, got {method!r}")
    sources = [x for x in sources if x is not None]
    if straight_line and sources:
        raise OptionError("--straight-line and a road source exclude each other")
    if not straight_line and not sources:
        raise OptionError(
            "give a road source (--pbf, --osm, --place, --bbox, --graph) for drive "
            "times, or --straight-line"
        )
