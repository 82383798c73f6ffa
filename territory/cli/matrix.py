"""``roadnet matrix`` and ``roadnet precompute``: drive-time tables, to a file or the cache."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from roadnet.areas import Areas, read_areas
from roadnet.cached import cached_drive_time_matrix, precompute_matrix
from roadnet.graph import CompiledGraph
from roadnet.matrix_io import write_matrix
from roadnet.settings import check_n_jobs
from roadnet.snap import snap_points
from roadnet.sources import DEFAULT_CLIP_BUFFER_KM
from territory.cli._common import (
    BboxOpt,
    CacheDirOpt,
    ClipBufferOpt,
    ClipToAreasOpt,
    EngineOpt,
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
    RefreshOpt,
    SpeedOpt,
    SpeedsOpt,
    VerboseOpt,
    cache_settings,
    check_max_snap,
    clip_for,
    engine_option,
    err,
    friendly,
    out,
    parse_cutoff,
    progress_pair,
    road_graph,
    setup_logging,
)
from territory.exceptions import OptionError
from territory.outputs import OutputSet, check_output_path

__all__ = ["compute_matrix", "matrix_cmd", "precompute_cmd"]


@friendly
def matrix_cmd(
    areas_path: Annotated[Path, typer.Argument(help="Basic areas: GIS file or CSV with lon/lat.")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Output .npz or .parquet.")],
    pbf: PbfOpt = None,
    osm: OsmOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    graph: GraphOpt = None,
    reader: ReaderOpt = "auto",
    clip_to_areas: ClipToAreasOpt = None,
    clip_buffer_km: ClipBufferOpt = DEFAULT_CLIP_BUFFER_KM,
    destinations: Annotated[
        Path | None,
        typer.Option(
            "--to",
            help="Destination points (default: the areas).",
            rich_help_panel="Areas and measures",
        ),
    ] = None,
    id_column: IdColumnOpt = None,
    lon_column: LonColumnOpt = None,
    lat_column: LatColumnOpt = None,
    cutoff: Annotated[
        str | None,
        typer.Option(help="Ignore trips longer than this (e.g. 45min).", rich_help_panel="Solver"),
    ] = None,
    distances: Annotated[
        bool,
        typer.Option(
            "--distances", help="Also store road metres.", rich_help_panel="Solver", metavar=""
        ),
    ] = False,
    max_snap: MaxSnapOpt = None,
    far: Annotated[
        str, typer.Option(help="Far snaps: flag | exclude (inf) | error.", rich_help_panel="Solver")
    ] = "flag",
    fix_invalid: Annotated[
        bool | None,
        typer.Option(
            "--fix-invalid/--strict-geometry",
            help="Repair all invalid polygons / refuse any.",
            rich_help_panel="Areas and measures",
            metavar="",
        ),
    ] = None,
    jobs: JobsOpt = None,
    engine: EngineOpt = None,
    speeds: SpeedsOpt = None,
    speed: SpeedOpt = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    refresh: RefreshOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Exact drive-time matrix between basic areas (and optional destination points).

    Uses the cache transparently: a repeated request is served from it, a request overlapping
    cached points computes only the missing rows and columns.
    """
    setup_logging(verbose)
    engine = engine_option(engine)
    if far not in {"flag", "exclude", "error"}:
        raise OptionError(f"--far must be flag, exclude or error, got {far!r}")
    cut = parse_cutoff(cutoff)
    check_max_snap(max_snap)
    check_output_path(out_path, "--out", (".npz", ".parquet"))
    jobs = check_n_jobs(jobs, "--jobs")
    areas = read_areas(
        areas_path,
        id_column=id_column,
        lon_column=lon_column,
        lat_column=lat_column,
        fix_invalid=fix_invalid,
    )
    dest = (
        read_areas(destinations, lon_column=lon_column, lat_column=lat_column, what="--to")
        if destinations
        else None
    )
    with cache_settings(cache_dir, no_cache, refresh):
        g = road_graph(
            pbf=pbf,
            osm=osm,
            place=place,
            bbox=bbox,
            graph=graph,
            speeds=speeds,
            speed=speed,
            reader=reader,
            clip=clip_for(clip_to_areas, pbf, areas, dest),
            clip_buffer_km=clip_buffer_km,
        )
        m = compute_matrix(
            g,
            areas,
            dest,
            cutoff=cut,
            distances=distances,
            max_snap=max_snap,
            far=far,
            jobs=jobs,
            engine=engine,
        )
    with OutputSet() as outs:
        path = outs.stage(
            out_path,
            lambda tmp: write_matrix(
                m,
                areas.ids,
                (dest or areas).ids,
                tmp,
                meta={"graph": g.summary(), "areas": str(areas_path)},
            ),
        )
    _report_matrix(m, areas, dest or areas)
    out.print(f"wrote {path}", highlight=False)


def compute_matrix(
    g: CompiledGraph,
    areas: Areas,
    dest: Areas | None,
    *,
    cutoff: float | None,
    distances: bool,
    max_snap: float | None,
    far: str,
    jobs: int | None,
    engine: str | None = None,
) -> Any:
    """Snap the points and run the matrix with a progress bar."""
    o = snap_points(g, areas.lon, areas.lat, max_distance_m=max_snap)
    d = snap_points(g, dest.lon, dest.lat, max_distance_m=max_snap) if dest else None
    t0 = time.perf_counter()
    with progress_pair("drive times") as (update, build):
        m, rep = cached_drive_time_matrix(
            g,
            o,
            d,
            cutoff=cutoff,
            distances=distances,
            far=far,  # type: ignore[arg-type]
            n_jobs=jobs,
            progress=update,
            engine=engine,
            build_progress=build,
        )
    err.print(
        f"matrix {m.shape[0]}x{m.shape[1]}: {rep.describe()} [{time.perf_counter() - t0:.1f} s]",
        highlight=False,
    )
    return m


def _report_matrix(m: Any, areas: Areas, dest: Areas) -> None:
    rep = m.report()
    if rep["flagged_origins"] or rep["flagged_destinations"]:
        ids = [str(areas.ids[i]) for i in rep["flagged_origins"][:10]]
        err.print(
            f"[yellow]warning:[/] {len(rep['flagged_origins'])} area(s) lie farther than "
            f"{m.origins.max_distance_m:g} m from a road: {', '.join(ids)}",
            highlight=False,
        )
    if rep["unreachable_pairs"]:
        err.print(
            f"[yellow]warning:[/] {rep['unreachable_pairs']:,} pair(s) have no road route "
            f"(different road components: {rep['origin_components']})",
            highlight=False,
        )
    finite = np.isfinite(m.seconds)
    if finite.any():
        vals = m.seconds[finite]
        out.print(
            f"drive times: median {np.median(vals) / 60:.1f} min, max {vals.max() / 60:.1f} min, "
            f"{finite.mean():.1%} of pairs reachable",
            highlight=False,
        )


# ----------------------------------------------------------------------------- precompute
@friendly
def precompute_cmd(
    areas_path: Annotated[Path, typer.Argument(help="Basic areas: GIS file or CSV with lon/lat.")],
    pbf: PbfOpt = None,
    osm: OsmOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    graph: GraphOpt = None,
    reader: ReaderOpt = "auto",
    clip_to_areas: ClipToAreasOpt = None,
    clip_buffer_km: ClipBufferOpt = DEFAULT_CLIP_BUFFER_KM,
    id_column: IdColumnOpt = None,
    lon_column: LonColumnOpt = None,
    lat_column: LatColumnOpt = None,
    cutoff: Annotated[
        str | None, typer.Option(help="Ignore trips longer than this (e.g. 2h).")
    ] = None,
    distances: Annotated[
        bool, typer.Option("--distances", help="Also store road metres.", metavar="")
    ] = False,
    max_snap: MaxSnapOpt = None,
    block_rows: Annotated[
        int | None,
        typer.Option(
            help="Rows per resumable block (default 64 into the cache; with --out 1000, "
            "one Dask task and the chunk height of the store).",
            rich_help_panel="Solver",
        ),
    ] = None,
    store_out: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Write a Zarr v3 matrix store here (folder or fsspec URL such as "
            "s3://bucket/t.zarr) instead of the cache; rerunning resumes it.",
            rich_help_panel="Scale out",
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Run the blocks on Dask: 'local' (a LocalCluster of --workers processes on "
            "127.0.0.1) or a scheduler address (tcp://HOST:8786). Needs --out.",
            rich_help_panel="Scale out",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes of --dask local (1 thread each).", rich_help_panel="Scale out"
        ),
    ] = 2,
    jobs: JobsOpt = None,
    engine: EngineOpt = None,
    speeds: SpeedsOpt = None,
    speed: SpeedOpt = None,
    cache_dir: CacheDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fill the cache (or a Zarr store) with the drive times between all areas, resumably.

    Later `roadnet matrix` (and the optimizer) calls on any subset of these areas read the
    cache instead of routing; a finished --out store is referenced by the cache and read
    chunk-wise. --dask runs one task per row block; the workers load the hierarchy from the
    cache folder and write into the store, so on a cluster both must be on shared storage.
    """
    setup_logging(verbose)
    engine = engine_option(engine)
    if block_rows is not None and block_rows < 1:
        raise OptionError(f"--block-rows must be >= 1, got {block_rows}")
    if dask is not None and store_out is None:
        raise OptionError("--dask needs --out STORE.zarr: the workers write into a Zarr store")
    if workers < 1:
        raise OptionError(f"--workers must be >= 1, got {workers}")
    jobs = check_n_jobs(jobs, "--jobs")
    cut = parse_cutoff(cutoff)
    check_max_snap(max_snap)
    areas = read_areas(
        areas_path, id_column=id_column, lon_column=lon_column, lat_column=lat_column
    )
    with cache_settings(cache_dir):
        g = road_graph(
            pbf=pbf,
            osm=osm,
            place=place,
            bbox=bbox,
            graph=graph,
            speeds=speeds,
            speed=speed,
            reader=reader,
            clip=clip_for(clip_to_areas, pbf, areas),
            clip_buffer_km=clip_buffer_km,
        )
        pts = snap_points(g, areas.lon, areas.lat, max_distance_m=max_snap)
        if store_out is None:
            _precompute_cache(g, pts, areas, cut, distances, jobs, block_rows or 64, engine)
            return
        with _dask_client(dask, workers) as client:
            _precompute_store(
                g, pts, areas, store_out, client, cut, distances, jobs, block_rows or 1000, engine
            )


def _precompute_cache(
    g: CompiledGraph,
    pts: Any,
    areas: Areas,
    cut: float | None,
    distances: bool,
    jobs: int | None,
    block_rows: int,
    engine: str | None,
) -> None:
    t0 = time.perf_counter()
    with progress_pair("precompute") as (update, build):
        key, done, total = precompute_matrix(
            g,
            pts,
            cutoff=cut,
            distances=distances,
            n_jobs=jobs,
            block_rows=block_rows,
            progress=update,
            engine=engine,
            build_progress=build,
            on_engine=lambda c: err.print(c.describe(), highlight=False),
        )
    if total == 0:
        out.print(
            f"already cached: {len(areas):,} x {len(areas):,} matrix (entry {key})", highlight=False
        )
    else:
        resumed = f", {total - done} block(s) resumed from an earlier run" if done < total else ""
        out.print(
            f"cached {len(areas):,} x {len(areas):,} matrix as entry {key}: computed {done} of "
            f"{total} block(s){resumed} [{time.perf_counter() - t0:.1f} s]",
            highlight=False,
        )


@contextlib.contextmanager
def _dask_client(address: str | None, workers: int) -> Iterator[Any]:
    """A ``distributed.Client``: none, on a new LocalCluster, or on a running scheduler."""
    if address is None:
        yield None
        return
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - a runtime dependency
        raise OptionError(f"--dask needs the 'distributed' package ({exc})") from exc
    from roadnet.precompute import local_cluster

    if address == "local":
        with local_cluster(workers) as cluster, distributed.Client(cluster) as client:
            err.print(
                f"Dask LocalCluster: {workers} worker process(es) on 127.0.0.1; dashboard "
                f"{cluster.dashboard_link}",
                highlight=False,
            )
            yield client
        return
    if "://" not in address:
        raise OptionError(
            f"--dask must be 'local' or a scheduler address such as tcp://HOST:8786, got "
            f"{address!r}"
        )
    try:
        client = distributed.Client(address, timeout="30s")
    except OSError as exc:
        raise OptionError(f"--dask: cannot reach the scheduler at {address} ({exc})") from exc
    with client:
        n = len(client.scheduler_info().get("workers", {}))
        err.print(
            f"Dask scheduler {address}: {n} worker(s); dashboard {client.dashboard_link}",
            highlight=False,
        )
        yield client


def _precompute_store(
    g: CompiledGraph,
    pts: Any,
    areas: Areas,
    url: str,
    client: Any,
    cut: float | None,
    distances: bool,
    jobs: int | None,
    block_rows: int,
    engine: str | None,
) -> None:
    def say_plan(plan: Any) -> None:
        if plan.skipped or plan.damaged:
            err.print(
                f"{url}: {plan.skipped} of {plan.total} block(s) already written and verified "
                f"(skipped), {plan.damaged} damaged (recomputed); computing {len(plan.todo)}",
                highlight=False,
            )

    t0 = time.perf_counter()
    with progress_pair("precompute") as (update, build):
        _, done, total = precompute_matrix(
            g,
            pts,
            out=url,
            client=client,
            ids=np.asarray(areas.ids),
            cutoff=cut,
            distances=distances,
            n_jobs=jobs,
            block_rows=block_rows,
            progress=update,
            engine=engine,
            build_progress=build,
            on_engine=lambda c: err.print(c.describe(), highlight=False),
            on_plan=say_plan,
        )
    n = len(areas)
    where = "on Dask" if client is not None else "in this process"
    out.print(
        f"{n:,} x {n:,} matrix in {url}: computed {done} of {total} block(s) {where}, "
        f"{total - done} already written and verified [{time.perf_counter() - t0:.1f} s]",
        highlight=False,
    )
