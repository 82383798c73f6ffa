"""What every ``roadnet`` command shares: consoles, the error boundary, progress, options.

The error boundary (:func:`friendly`) is the one place that turns an exception into what the
user sees: one readable line on stderr and an exit code — 2 for bad input (options, files,
data), 1 for a failing environment (an unwritable folder, a full disk) — and a traceback only
with ``--debug``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cache import CacheCorruptWarning, CacheError
from optimizer.exceptions import OptimizerError
from roadnet.engine import check_engine
from roadnet.exceptions import DownloadUnavailableError, RoadnetError
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import load_road_graph
from roadnet.settings import settings
from roadnet.sources import DEFAULT_CLIP_BUFFER_KM, check_clip_buffer
from roadnet.speed import SpeedProfile
from roadnet.units import parse_duration
from roadnet.warmup import kernels_compiled, warm_kernels
from territory.exceptions import OptionError, OutputError, TerritoryError

__all__ = [
    "BboxOpt",
    "CacheDirOpt",
    "DebugOpt",
    "EngineOpt",
    "GraphOpt",
    "NoCacheOpt",
    "OsmOpt",
    "PbfOpt",
    "PlaceOpt",
    "RefreshOpt",
    "SpeedOpt",
    "SpeedsOpt",
    "VerboseOpt",
    "cache_settings",
    "check_max_snap",
    "engine_option",
    "err",
    "friendly",
    "load_kernels",
    "out",
    "parse_bbox",
    "parse_cutoff",
    "profile_from_options",
    "progress",
    "progress_pair",
    "road_graph",
    "setup_logging",
    "status",
]

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

#: errors of the environment (exit 1), checked before the layers' input errors (exit 2)
_ENVIRONMENT: tuple[type[BaseException], ...] = (OutputError, DownloadUnavailableError)
_BAD_INPUT: tuple[type[BaseException], ...] = (
    RoadnetError,
    OptimizerError,
    CacheError,
    OptionError,
    TerritoryError,
)


def _debug_wanted() -> bool:
    return os.environ.get("ROADNET_DEBUG", "").strip().lower() in {"1", "true", "yes"}


def friendly(func: F) -> F:
    """One readable line on stderr and an exit code instead of a traceback.

    Exit 2 for bad input (the layers' own errors), 1 for an environment that fails (output
    folders, disk, permissions), 130 when interrupted. ``--debug`` (or ``ROADNET_DEBUG=1``)
    re-raises so that the traceback shows.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.pop("debug", False)) or _debug_wanted()
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except _ENVIRONMENT as exc:
            if debug:
                raise
            _error_line(exc)
            raise typer.Exit(1) from None
        except _BAD_INPUT as exc:
            if debug:
                raise
            _error_line(exc)
            raise typer.Exit(2) from None
        except OSError as exc:
            if debug:
                raise
            where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
            err.print(
                f"[bold red]error:[/] {exc.strerror or exc}{where}", highlight=False, markup=True
            )
            raise typer.Exit(1) from None
        except MemoryError:
            if debug:
                raise
            err.print("[bold red]error:[/] out of memory", highlight=False)
            raise typer.Exit(1) from None

    # the --debug option every command gets
    import inspect

    sig = inspect.signature(func, eval_str=True)
    if "debug" not in sig.parameters:
        params = [*sig.parameters.values()]
        params.append(
            inspect.Parameter(
                "debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOpt
            )
        )
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _error_line(exc: BaseException) -> None:
    text = " ".join(str(exc).split()) or type(exc).__name__
    err.print(f"[bold red]error:[/] {text}", highlight=False, markup=True, soft_wrap=True)


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A labelled progress bar on stderr (shown on terminals only)."""
    with progress_pair(label) as (update, _):
        yield update


@contextmanager
def progress_pair(
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


@contextmanager
def staged(label: str) -> Iterator[Callable[[str, float], None]]:
    """A spinner with a label that turns into a bar with the stage's name once a step reports
    ``(stage, fraction)`` (terminals only; gone when the step ends)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(stage: str, fraction: float) -> None:
            bar.update(task, description=f"{label}: {stage}", total=1.0, completed=fraction)

        yield update


@contextmanager
def status(label: str) -> Iterator[None]:
    """A spinner with a label for a step without measurable progress (terminals only)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        bar.add_task(label, total=None)
        yield


def setup_logging(verbose: bool) -> None:
    """Log INFO with ``--verbose``, else only warnings, to stderr."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # the store logs a corrupt entry once (with where it was quarantined); its warning
    # would say the same again
    warnings.filterwarnings("ignore", category=CacheCorruptWarning)
    warnings.showwarning = _warning_line


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Other warnings as one log line, without the source path and line of the warner."""
    logging.getLogger("py.warnings").warning("%s: %s", category.__name__, message)


# ----------------------------------------------------------------------------- options
_SRC = "Road source"
_CACHE = "Cache"
PbfOpt = Annotated[
    Path | None,
    typer.Option("--pbf", help="OpenStreetMap .osm.pbf extract.", rich_help_panel=_SRC),
]
OsmOpt = Annotated[
    Path | None,
    typer.Option("--osm", help="OpenStreetMap XML (.osm) file.", rich_help_panel=_SRC),
]
PlaceOpt = Annotated[
    str | None,
    typer.Option(
        "--place", help="Place name to download (Nominatim + Overpass).", rich_help_panel=_SRC
    ),
]
BboxOpt = Annotated[
    str | None,
    typer.Option(
        "--bbox", help="Box to download: WEST,SOUTH,EAST,NORTH degrees.", rich_help_panel=_SRC
    ),
]
GraphOpt = Annotated[
    Path | None,
    typer.Option(
        "--graph", help="Compiled graph (.npz) from `roadnet graph build`.", rich_help_panel=_SRC
    ),
]
SpeedsOpt = Annotated[
    Path | None,
    typer.Option(
        "--speeds", help="Speed profile file (.json/.toml): km/h per class.", rich_help_panel=_SRC
    ),
]
SpeedOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--speed", help="Override one class speed, CLASS=KMH (repeatable).", rich_help_panel=_SRC
    ),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir", help="Cache folder (default: per-user cache).", rich_help_panel=_CACHE
    ),
]
NoCacheOpt = Annotated[
    bool,
    typer.Option(
        "--no-cache", help="Neither read nor write the cache.", rich_help_panel=_CACHE, metavar=""
    ),
]
RefreshOpt = Annotated[
    bool,
    typer.Option(
        "--refresh",
        help="Recompute and overwrite cached results.",
        rich_help_panel=_CACHE,
        metavar="",
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.", metavar="")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.", metavar="")]
ReaderOpt = Annotated[
    str,
    typer.Option(
        "--reader",
        help="PBF reader: auto (osmium), osmium (streaming, low memory) or pyrosm. Both build "
        "the same graph.",
        rich_help_panel=_SRC,
    ),
]
_AREAS = "Areas and measures"
IdColumnOpt = Annotated[
    str | None, typer.Option(help="Id column of the areas.", rich_help_panel=_AREAS)
]
LonColumnOpt = Annotated[
    str | None, typer.Option(help="Longitude column (CSV/points).", rich_help_panel=_AREAS)
]
LatColumnOpt = Annotated[
    str | None, typer.Option(help="Latitude column (CSV/points).", rich_help_panel=_AREAS)
]
JobsOpt = Annotated[
    int | None, typer.Option(help="Worker processes (-1 = all cores).", rich_help_panel="Solver")
]
MaxSnapOpt = Annotated[
    float | None,
    typer.Option(help="Flag snaps farther than this many metres.", rich_help_panel=_SRC),
]
ClipToAreasOpt = Annotated[
    bool | None,
    typer.Option(
        "--clip-to-areas/--no-clip-to-areas",
        help="Keep only the roads within --clip-buffer-km of the areas' hull (and of the "
        "centers and destinations). Default: on for a --pbf source. A cached graph of the same "
        "file that covers the areas (the whole file, or a run on more areas) is reused, so a "
        "run on a subset of precomputed areas is served from the same graph and tables.",
        rich_help_panel=_SRC,
    ),
]
ClipBufferOpt = Annotated[
    float,
    typer.Option(
        "--clip-buffer-km",
        help="Margin around the clip hull, km (0-5000).",
        rich_help_panel=_SRC,
    ),
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        help="Drive-time engine: auto (hierarchy when cached or for large jobs), ch "
        "(contraction hierarchy), scipy (Dijkstra). Default: ROADNET_ENGINE or auto.",
        rich_help_panel=_SRC,
    ),
]


@contextmanager
def cache_settings(
    cache_dir: Path | None, no_cache: bool = False, refresh: bool = False
) -> Iterator[None]:
    """The command's cache options as :data:`roadnet.settings` for its duration."""
    if cache_dir is not None and cache_dir.exists() and not cache_dir.is_dir():
        raise OptionError(f"--cache-dir {str(cache_dir)!r} is a file; give a folder")
    with settings.override(
        cache_dir=cache_dir or settings.cache_dir,
        use_cache=settings.use_cache and not no_cache,
        refresh=settings.refresh or refresh,
    ):
        yield


def profile_from_options(speeds: Path | None, speed: list[str] | None) -> SpeedProfile:
    """The speed profile of ``--speeds`` and ``--speed CLASS=KMH`` overrides."""
    profile = SpeedProfile.from_file(speeds) if speeds else SpeedProfile.default()
    overrides: dict[str, float] = {}
    for item in speed or []:
        key, sep, val = item.partition("=")
        if not sep:
            raise OptionError(f"--speed expects CLASS=KMH, got {item!r}")
        try:
            overrides[key.strip()] = float(val)
        except ValueError:
            raise OptionError(f"--speed {item!r}: {val!r} is not a number") from None
    return profile.with_overrides(overrides) if overrides else profile


def check_max_snap(value: float | None) -> float | None:
    """``--max-snap``: a positive finite number of metres, or not given."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise OptionError(f"--max-snap must be a positive number of metres, got {value:g}")
    return value


def engine_option(engine: str | None) -> str:
    """``--engine`` checked (default: the setting), naming the option in errors."""
    try:
        return check_engine(engine)
    except RoadnetError as exc:
        raise OptionError(f"--{exc}") from None


def parse_cutoff(text: str | None) -> float | None:
    """``--cutoff`` as seconds (``None`` when not given), naming the option in errors."""
    if text is None:
        return None
    try:
        return parse_duration(text)
    except RoadnetError as exc:
        raise OptionError(f"--cutoff: {exc}") from None


def parse_bbox(text: str, option: str = "--bbox") -> tuple[float, float, float, float]:
    """``WEST,SOUTH,EAST,NORTH`` in degrees (``option`` names the flag in messages)."""
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise OptionError(
            f"{option} expects WEST,SOUTH,EAST,NORTH in degrees, got {text!r}"
        ) from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise OptionError(
            f"{option} {text!r}: need -180 <= WEST < EAST <= 180 and -90 <= SOUTH < NORTH <= 90"
        )
    return (w, s, e, n)


def areas_clip(*areas: Any) -> Any:
    """What ``--clip-to-areas`` clips to: the areas' polygons (or points) and any extra points,
    as one shapely geometry in EPSG:4326."""
    import shapely

    parts: list[Any] = []
    for a in areas:
        if a is None:
            continue
        gdf = a if hasattr(a, "to_crs") else getattr(a, "gdf", None)  # GeoDataFrame or Areas
        if gdf is not None and gdf.crs is not None and len(gdf):
            parts.extend(np.asarray(gdf.to_crs("EPSG:4326").geometry.values))
        else:
            parts.extend(shapely.points(np.column_stack([a.lon, a.lat])))
    return shapely.union_all(parts)


def clip_for(flag: bool | None, pbf: Path | None, *areas: Any) -> Any:
    """What ``--clip-to-areas`` clips the road graph to (:func:`areas_clip`), or ``None``.

    ``flag`` is the option's value: ``None`` (not given) means on for a ``--pbf`` source and off
    for the others; an explicit ``--clip-to-areas`` with another source is refused later by
    :func:`road_graph`.
    """
    on = flag if flag is not None else pbf is not None
    return areas_clip(*areas) if on else None


def given_sources(**sources: Any) -> list[str]:
    """The ``--flag`` names of the road-source options that were given."""
    return [f"--{k}" for k, v in sources.items() if v is not None]


def road_graph(
    *,
    pbf: Path | None = None,
    osm: Path | None = None,
    place: str | None = None,
    bbox: str | None = None,
    graph: Path | None = None,
    speeds: Path | None = None,
    speed: list[str] | None = None,
    reader: str = "auto",
    clip: Any = None,
    clip_buffer_km: float = DEFAULT_CLIP_BUFFER_KM,
    reuse_covering: bool = True,
) -> CompiledGraph:
    """The road graph of the one source option given, with a line saying what it is.

    ``clip`` (a box, geometry or GeoDataFrame) keeps only the roads near it, PBF sources only;
    with ``reuse_covering`` a cached graph that covers the clip may serve instead
    (:func:`roadnet.graph_cache.covering_graph_key`).
    """
    named = given_sources(pbf=pbf, osm=osm, place=place, bbox=bbox, graph=graph)
    if len(named) != 1:
        raise OptionError(
            "give exactly one road source: --pbf FILE, --osm FILE, --place NAME, --bbox W,S,E,N "
            f"or --graph FILE (got {', '.join(named) or 'none'})"
        )
    if clip is not None and pbf is None:
        raise OptionError(f"clipping applies to a --pbf source only (got {named[0]})")
    if clip is not None:
        check_clip_buffer(clip_buffer_km)
    profile = profile_from_options(speeds, speed)
    t0 = time.perf_counter()
    with staged("reading the road network") as stage:
        g, hit = load_road_graph(
            pbf=pbf,
            osm=osm,
            place=place,
            bbox=parse_bbox(bbox) if bbox is not None else None,
            graph=graph,
            profile=profile,
            reader=reader,
            clip=clip,
            clip_buffer_km=clip_buffer_km,
            reuse_covering=reuse_covering,
            progress=stage,
        )
    err.print(
        f"road graph: {g.n_nodes:,} nodes, {g.n_arcs:,} arcs, "
        f"{g.components().n_components} strongly connected component(s)"
        f"{_clip_note(g, clip, clip_buffer_km)} "
        f"[{'from cache, ' if hit else ''}{time.perf_counter() - t0:.1f} s]",
        highlight=False,
        markup=False,  # "[from cache, ...]" would read as a markup tag and vanish
    )
    load_kernels()
    return g


def _clip_note(g: CompiledGraph, clip: Any, clip_buffer_km: float) -> str:
    """What the road graph holds when a clip was asked for."""
    if clip is None:
        return ""
    covers = g.meta.get("covers_clip")
    if covers:
        return f"; {covers}, which covers the areas + {clip_buffer_km:g} km"
    return f", clipped to the areas + {clip_buffer_km:g} km"


def load_kernels() -> None:
    """Load the routing kernels with a line of its own (compiling them the first time)."""
    if kernels_compiled():
        with status("loading routing kernels"):
            warm_kernels()
        return
    err.print(
        "compiling routing kernels, once per installation (about a minute)...", highlight=False
    )
    seconds = warm_kernels()
    err.print(f"routing kernels compiled in {seconds:.0f} s", highlight=False)
