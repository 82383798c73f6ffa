"""``roadnet serve``: the HTTP service (OSRM-compatible tables and routes, native API, jobs)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from roadnet.graph_cache import cached_hierarchy, forget_hierarchies, load_road_graph
from roadnet.speed import SpeedProfile
from territory.cli._common import (
    CacheDirOpt,
    SpeedsOpt,
    VerboseOpt,
    cache_settings,
    err,
    friendly,
    setup_logging,
    status,
)
from territory.exceptions import OptionError
from territory.service.config import (
    CONFIG_ENV,
    DEFAULT_JOB_IDLE_GRACE,
    ServiceConfig,
    parse_idle_grace,
)
from territory.service.jobs import IDLE_GRACE_ENV
from territory.service.workers import run_workers

__all__ = ["is_loopback", "serve_cmd"]

_NET = "Network and security"
_LIM = "Limits"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _prebuild(config: ServiceConfig) -> None:
    """Build (or check) every graph and hierarchy in the cache before workers start."""
    profile = SpeedProfile.from_file(config.speeds) if config.speeds else SpeedProfile.default()
    for p in config.pbf:
        with status(f"preparing {Path(p).name} (graph and hierarchy, cached)"):
            g, _ = load_road_graph(pbf=Path(p), profile=profile)
            cached_hierarchy(g)
    forget_hierarchies()


@friendly
def serve_cmd(
    pbf: Annotated[
        list[Path] | None,
        typer.Option("--pbf", help="OpenStreetMap .osm.pbf extract to serve (repeatable)."),
    ] = None,
    graph: Annotated[
        list[Path] | None,
        typer.Option("--graph", help="Compiled graph (.npz) to serve (repeatable)."),
    ] = None,
    speeds: SpeedsOpt = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind. Anything but loopback needs --token-env.", rich_help_panel=_NET
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", rich_help_panel=_NET)] = 5000,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            metavar="VAR",
            help="Environment variable holding the bearer token clients must send "
            "(Authorization: Bearer <token>).",
            rich_help_panel=_NET,
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Allow a non-loopback --host without a token (anyone who can reach it may "
            "use it).",
            rich_help_panel=_NET,
        ),
    ] = False,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="Origin allowed by CORS (repeatable; default: CORS off).",
            rich_help_panel=_NET,
        ),
    ] = None,
    max_table_size: Annotated[
        int,
        typer.Option(help="OSRM table limit: sources x destinations <= N^2.", rich_help_panel=_LIM),
    ] = 1000,
    max_body_mb: Annotated[
        float, typer.Option(help="Largest request body, MB.", rich_help_panel=_LIM)
    ] = 10.0,
    max_waiting: Annotated[
        int,
        typer.Option(
            help="Heavy requests that may wait before 503 + Retry-After.", rich_help_panel=_LIM
        ),
    ] = 64,
    time_limit: Annotated[
        float, typer.Option(help="Seconds a request may wait and run.", rich_help_panel=_LIM)
    ] = 30.0,
    max_jobs: Annotated[
        int, typer.Option(help="Jobs queued or running at once.", rich_help_panel=_LIM)
    ] = 8,
    threads: Annotated[
        int,
        typer.Option(
            help="Threads of one table query (0 = all cores); --workers serves more requests "
            "at once.",
            rich_help_panel=_LIM,
        ),
    ] = 1,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes; they share the memory-mapped graphs.", rich_help_panel=_LIM
        ),
    ] = 1,
    snap_cache: Annotated[
        int,
        typer.Option(
            help="Snapped points kept per region (exact coordinates; least recently used out "
            "first; 0 = snap every time).",
            rich_help_panel=_LIM,
        ),
    ] = 100_000,
    job_idle_grace: Annotated[
        str,
        typer.Option(
            "--job-idle-grace",
            metavar="SECONDS",
            envvar=IDLE_GRACE_ENV,
            help="Seconds a territory job runs on idle CPU only (Linux SCHED_IDLE) before it "
            "moves to nice 19, where a lasting full load leaves it a larger share (weight 15 "
            "instead of 3); 0 = as soon as the job has started, inf or none = never.",
            rich_help_panel=_LIM,
        ),
    ] = f"{DEFAULT_JOB_IDLE_GRACE:g}",
    jobs_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of jobs and their results (default: service-jobs in the cache)."),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    cache_dir: CacheDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve drive-time tables, routes and territory jobs over HTTP.

    OSRM-compatible GET /table/v1, /nearest/v1 and /route/v1 (existing OSRM clients work
    unchanged) and the native API under /v1 (matrices, territory/validate/precompute jobs, graphs);
    /health, /ready, /metrics, OpenAPI at /openapi.json and docs at /docs.
    """
    import uvicorn

    setup_logging(verbose)
    if not is_loopback(host) and token_env is None and not insecure:
        raise OptionError(
            f"--host {host} accepts connections from other machines: give --token-env VAR "
            "(clients then send 'Authorization: Bearer <token>') or, knowingly, --insecure"
        )
    if workers < 1:
        raise OptionError(f"--workers must be >= 1, got {workers}")
    if port < 0 or port > 65535:
        raise OptionError(f"--port must be in [0, 65535], got {port}")
    config = ServiceConfig(
        pbf=tuple(str(p) for p in pbf or ()),
        graph=tuple(str(p) for p in graph or ()),
        speeds=str(speeds) if speeds else None,
        cache_dir=str(cache_dir) if cache_dir else None,
        token_env=token_env,
        max_table_size=max_table_size,
        max_body_bytes=int(max_body_mb * 1_000_000),
        max_waiting=max_waiting,
        time_limit=time_limit,
        threads=threads or None,
        cors_origins=tuple(cors_origin or ()),
        max_jobs=max_jobs,
        jobs_dir=str(jobs_dir) if jobs_dir else None,
        snap_cache=snap_cache,
        job_idle_grace=parse_idle_grace(job_idle_grace),
    )
    config.token()  # an unset variable is an error now, not in every worker
    for p in [*config.pbf, *config.graph]:
        if not Path(p).is_file():
            raise OptionError(f"road source not found: {p}")
    with cache_settings(cache_dir):
        _prebuild(config)
    os.environ[CONFIG_ENV] = config.to_json()
    err.print(
        f"roadnet serve on http://{host}:{port} ({workers} worker(s)); "
        f"{'token required' if token_env else 'no token'}",
        highlight=False,
    )
    kwargs: dict[str, Any] = {
        "app": "territory.service.app:create_app_from_env",
        "factory": True,
        "access_log": access_log,
        "log_level": "info" if verbose else "warning",
        "timeout_graceful_shutdown": 5,
    }
    if workers == 1:
        uvicorn.run(host=host, port=port, **kwargs)
        return
    try:  # one listening socket per worker (SO_REUSEPORT): connections spread evenly
        code = run_workers(kwargs, host, port, workers)
    except OSError as exc:
        raise OptionError(f"cannot listen on {host}:{port}: {exc}") from None
    if code:
        raise typer.Exit(code)
