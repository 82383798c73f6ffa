"""``roadnet optimize``: balanced, compact territories on drive times or straight lines."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

import optimizer
from optimizer.tolerance import parse_tolerance
from roadnet.areas import read_areas
from territory.cli._common import (
    BboxOpt,
    CacheDirOpt,
    GraphOpt,
    NoCacheOpt,
    OsmOpt,
    PbfOpt,
    PlaceOpt,
    SpeedOpt,
    SpeedsOpt,
    VerboseOpt,
    cache_settings,
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
from territory.pipeline import design_territories

__all__ = ["optimize_cmd"]


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
        ),
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Allowed deviation from the mean size.")] = 0.05,
    pbf: PbfOpt = None,
    osm: OsmOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    graph: GraphOpt = None,
    straight_line: Annotated[
        bool, typer.Option("--straight-line", help="Straight-line distances (no roads).")
    ] = False,
    method: Annotated[
        str,
        typer.Option(
            help="Solver: la, la-assignmax, la-mindist, "
            "interchange, dichotomies, dichotomies-split, "
            "exact."
        ),
    ] = "la",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    starts: Annotated[int, typer.Option(help="Multi-start runs (location-allocation).")] = 1,
    accounts: Annotated[
        Path | None, typer.Option(help="Account points aggregated into the areas.")
    ] = None,
    accounts_measure: Annotated[
        str | None, typer.Option(help="Account column to sum (default: count accounts).")
    ] = None,
    id_column: Annotated[str | None, typer.Option(help="Id column of the areas.")] = None,
    lon_column: Annotated[str | None, typer.Option(help="Longitude column (CSV).")] = None,
    lat_column: Annotated[str | None, typer.Option(help="Latitude column (CSV).")] = None,
    summary_path: Annotated[
        Path | None, typer.Option("--summary", help="Summary CSV (default: <out>_summary.csv).")
    ] = None,
    map_path: Annotated[Path | None, typer.Option("--map", help="Interactive map (.html).")] = None,
    png_path: Annotated[Path | None, typer.Option("--png", help="Static map (.png).")] = None,
    max_snap: Annotated[
        float | None, typer.Option(help="Flag snaps farther than this many metres.")
    ] = None,
    centers: Annotated[
        Path | None,
        typer.Option(
            help="Fixed territory centers (reps' homes, offices): a point file. "
            "Fewer than -p: the optimizer adds the rest."
        ),
    ] = None,
    center_id_column: Annotated[str | None, typer.Option(help="Id column of --centers.")] = None,
    share_column: Annotated[
        str | None, typer.Option(help="Column of --centers: target share of the total.")
    ] = None,
    capacity_column: Annotated[
        str | None, typer.Option(help="Column of --centers: capacity (first measure).")
    ] = None,
    locked_column: Annotated[
        str | None, typer.Option(help="Column of the areas: center id an area is locked to.")
    ] = None,
    forbidden_column: Annotated[
        str | None, typer.Option(help="Boolean column of the areas: may not host a center.")
    ] = None,
    contiguity: Annotated[
        str,
        typer.Option(
            help="Require contiguous territories: none, polygon or road "
            "(borders a short drive crosses; a river without bridge separates)."
        ),
    ] = "none",
    improve: Annotated[
        bool, typer.Option("--improve/--no-improve", help="Tabu local search afterwards.")
    ] = True,
    existing_column: Annotated[
        str | None,
        typer.Option(
            help="Current territory of each area: rebalance it (same -p), "
            "consolidate (smaller -p) or expand (larger -p) with few moves."
        ),
    ] = None,
    disruption: Annotated[
        float,
        typer.Option(
            help="With --existing-column: price of moving an area, in average trips "
            "(1 = like serving it one average trip farther away; 0 = redesign freely)."
        ),
    ] = 1.0,
    time_limit: Annotated[float, typer.Option(help="Seconds for the local search.")] = 10.0,
    jobs: Annotated[int | None, typer.Option(help="Worker processes (-1 = all cores).")] = None,
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
    if method not in optimizer.METHODS:
        raise OptionError(f"--method must be one of {', '.join(optimizer.METHODS)}, got {method!r}")
    sources = [x for x in (pbf, osm, place, bbox, graph) if x is not None]
    if straight_line and sources:
        raise OptionError("--straight-line and a road source exclude each other")
    if not straight_line and not sources:
        raise OptionError(
            "give a road source (--pbf, --osm, --place, --bbox, --graph) for drive "
            "times, or --straight-line"
        )
    parse_tolerance(tolerance)
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
    options = {"n_starts": starts} if method.startswith("la") else {}
    with cache_settings(cache_dir, no_cache):
        g = None
        if not straight_line:
            g = road_graph(
                pbf=pbf, osm=osm, place=place, bbox=bbox, graph=graph, speeds=speeds, speed=speed
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
            )
    sol = res.solution
    err.print(
        f"{res.mode} territories by {sol.method} [{time.perf_counter() - t0:.1f} s]"
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
    if contiguity != "none":
        out.print(f"contiguous ({contiguity}): {res.facts.get('contiguous')}", highlight=False)
    if res.facts.get("unreachable_areas"):
        err.print(
            f"[yellow]warning:[/] {len(res.facts['unreachable_areas'])} area(s) no center "
            "reaches by road were given to the nearest center in a straight line: "
            f"{', '.join(res.facts['unreachable_areas'][:10])}",
            highlight=False,
        )
    if res.facts.get("far_snaps"):
        err.print(
            f"[yellow]warning:[/] areas far from any road: "
            f"{', '.join(res.facts['far_snaps'][:10])}",
            highlight=False,
        )
    with OutputSet() as outs:
        outs.write_areas(res.areas, out_path)
        outs.write_csv(summary_file, res.summary)
        outs.write_json(report_file, res.report())
        stage_maps(
            outs, res.areas, map_path, png_path, title=f"{territories} territories ({res.mode})"
        )
    print_summary_table(res.summary, res.facts["unit"])
    bound = (
        f"lower bound {sol.lower_bound:,.6g} ({sol.bound_source}), gap {sol.gap:.2%}"
        if sol.gap is not None
        else "no lower bound applies"
    )
    out.print(
        f"max deviation {sol.max_deviation:.1%} (tolerance {tolerance:.0%}: "
        f"{'met' if sol.within_bounds else 'NOT met'}); weighted cost {sol.cost:,.6g}; "
        f"{bound}",
        highlight=False,
    )
    out.print("wrote " + ", ".join(str(p) for p in outs.written), highlight=False)
