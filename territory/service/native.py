"""roadnet's native API (``/v1/*``) for what OSRM has no word for.

``POST /v1/matrix``
    A drive-time matrix between points with ids (optional destinations, cutoff, distances),
    served from and written to the cache (:func:`roadnet.cached.cached_drive_time_matrix`);
    JSON, or by ``Accept``: Arrow IPC (``application/vnd.apache.arrow.file``, long format
    ``origin_id, destination_id, seconds[, metres]``, null = no route) or ``.npz``
    (``application/x-npz``, the layout of :func:`roadnet.matrix_io.write_matrix`).
``POST /v1/territories``, ``/v1/validate``, ``/v1/precompute``
    Jobs (:mod:`territory.service.jobs`): 202 and the job's URL; ``GET /v1/jobs/{id}`` for state
    and progress, ``GET /v1/jobs/{id}/result`` for the result, ``DELETE /v1/jobs/{id}`` cancels
    (or deletes a finished job).
"""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from optimizer import METHODS
from roadnet.cached import cached_drive_time_matrix
from roadnet.exceptions import RoadnetError
from roadnet.matrix_io import write_matrix
from roadnet.snap import snap_points
from territory.exceptions import RequestError
from territory.service.jobs import JobManager
from territory.service.regions import Region
from territory.service.state import ServiceState, json_response, matrix_json

__all__ = ["add_native_routes"]

ARROW = "application/vnd.apache.arrow.file"
NPZ = "application/x-npz"

FeatureCollection = dict[str, Any]


class MatrixPoint(BaseModel):
    """A point with an optional id (default: its position)."""

    model_config = ConfigDict(extra="forbid")
    id: str | int | None = None
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class MatrixRequest(BaseModel):
    """``POST /v1/matrix``."""

    model_config = ConfigDict(extra="forbid")
    points: list[MatrixPoint] = Field(min_length=1)
    destinations: list[MatrixPoint] | None = Field(default=None, min_length=1)
    cutoff: float | None = Field(default=None, gt=0, description="seconds")
    distances: bool = False
    region: str | None = None


class TerritoriesRequest(BaseModel):
    """``POST /v1/territories``: the options of ``roadnet optimize``."""

    model_config = ConfigDict(extra="forbid")
    areas: FeatureCollection = Field(description="GeoJSON FeatureCollection of basic areas")
    p: int = Field(ge=1, description="number of territories")
    measures: list[str] = Field(default_factory=lambda: ["count"])
    tolerance: float = Field(default=0.05, ge=0)
    method: str = "la"
    seed: int = 0
    id_column: str | None = None
    centers: FeatureCollection | None = None
    center_id_column: str | None = None
    share_column: str | None = None
    capacity_column: str | None = None
    locked_column: str | None = None
    forbidden_column: str | None = None
    contiguity: Literal["none", "polygon", "road"] = "none"
    improve: bool = True
    existing_column: str | None = None
    disruption: float = Field(default=1.0, ge=0)
    time_limit: float = Field(default=10.0, gt=0, le=3600)
    region: str | None = None


class ValidateRequest(BaseModel):
    """``POST /v1/validate``: the options of ``roadnet validate``."""

    model_config = ConfigDict(extra="forbid")
    areas: FeatureCollection = Field(description="GeoJSON FeatureCollection with territories")
    territory_column: str = "territory"
    id_column: str | None = None
    centers: FeatureCollection | None = None
    center_column: str | None = None
    measures: list[str] = Field(default_factory=list)
    max_drive_s: float | None = Field(default=None, gt=0)
    tolerance: float | None = Field(default=None, ge=0)
    require_contiguity: bool = False
    require_road_connected: bool = False
    region: str | None = None


class PrecomputeRequest(BaseModel):
    """``POST /v1/precompute``: fill the cache with the square matrix of ``points``."""

    model_config = ConfigDict(extra="forbid")
    points: list[tuple[float, float]] = Field(min_length=1, description="[lon, lat] pairs")
    cutoff: float | None = Field(default=None, gt=0)
    distances: bool = False
    region: str | None = None


def _ids(points: list[MatrixPoint]) -> np.ndarray:
    ids = [p.id if p.id is not None else i for i, p in enumerate(points)]
    return (
        np.array([str(v) for v in ids]) if any(isinstance(v, str) for v in ids) else np.array(ids)
    )


def _lonlat(points: list[MatrixPoint]) -> np.ndarray:
    return np.array([[p.lon, p.lat] for p in points], dtype=np.float64)


def _feature_bounds(fc: FeatureCollection, what: str) -> np.ndarray:
    """Corner points of a FeatureCollection's bounding box (to pick the region)."""
    import shapely

    features = fc.get("features") if isinstance(fc, dict) else None
    if fc.get("type") != "FeatureCollection" or not isinstance(features, list) or not features:
        raise RequestError(
            "InvalidInput", f"{what} must be a GeoJSON FeatureCollection with at least one feature"
        )
    try:
        geoms = [shapely.geometry.shape(f["geometry"]) for f in features]
    except Exception as exc:  # any malformed geometry is the client's mistake
        raise RequestError("InvalidInput", f"{what}: invalid GeoJSON geometry ({exc})") from None
    w, s, e, n = shapely.total_bounds(geoms)
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise RequestError("InvalidInput", f"{what}: the features have no coordinates")
    return np.array([[w, s], [e, n]])


def add_native_routes(app: FastAPI, state: ServiceState) -> None:
    """Register the native API on ``app``."""
    jobs = JobManager(
        state.config.jobs_folder(state.cache_root),
        state.config.max_jobs,
        {"ROADNET_CACHE_DIR": str(state.cache_root)},
        on_finish=lambda kind, st: state.metrics.jobs.labels(kind, st).inc(),
        idle_grace=state.config.job_idle_grace,
        on_promote=lambda result: state.metrics.job_promotions.labels(result).inc(),
    )
    state.jobs = jobs
    limit = state.config.max_table_size**2

    def region_of(name: str | None, pts: np.ndarray) -> Region:
        return state.regions.pick(name, pts[:, 0], pts[:, 1])

    def matrix_work(region: Region, body: MatrixRequest) -> tuple[Any, Any, Any, Any]:
        g = region.graph
        o_ll = _lonlat(body.points)
        try:
            o = snap_points(g, o_ll[:, 0], o_ll[:, 1], warn=False)
            if body.destinations is None:
                d = None
            else:
                d_ll = _lonlat(body.destinations)
                d = snap_points(g, d_ll[:, 0], d_ll[:, 1], warn=False)
        except RoadnetError as exc:
            raise RequestError("NoSegment", str(exc)) from None
        m, report = cached_drive_time_matrix(
            g, o, d, cutoff=body.cutoff, distances=body.distances, engine=region.engine,
            n_jobs=state.config.threads,
        )  # fmt: skip
        o_ids = _ids(body.points)
        d_ids = o_ids if body.destinations is None else _ids(body.destinations)
        return m, report, o_ids, d_ids

    @app.post("/v1/matrix", tags=["native"], responses={
        200: {"content": {"application/json": {}, ARROW: {}, NPZ: {}},
              "description": "the matrix (null / NaN-free: null = no route or over cutoff)"},
        400: {"description": "invalid input"}, 413: {"description": "body too large"},
    })  # fmt: skip
    async def matrix(request: Request, body: MatrixRequest) -> Response:
        """Drive-time matrix between points with ids, through the cache."""
        n_o = len(body.points)
        n_d = n_o if body.destinations is None else len(body.destinations)
        if n_o * n_d > limit:
            raise RequestError(
                "TooBig",
                f"{n_o} x {n_d} = {n_o * n_d} cells; this server computes at most {limit} per "
                "request (use POST /v1/precompute for larger tables)",
            )
        pts = _lonlat(body.points)
        if body.destinations is not None:
            pts = np.vstack([pts, _lonlat(body.destinations)])
        region = region_of(body.region, pts)
        m, report, o_ids, d_ids = await state.queue.run(matrix_work, region, body)
        state.metrics.table_cells.labels("native").inc(n_o * n_d)
        state.metrics.cache.labels(report.status).inc()
        accept = request.headers.get("accept", "")
        if ARROW in accept:
            return Response(_arrow(m, o_ids, d_ids), media_type=ARROW)
        if NPZ in accept:
            return Response(_npz(m, o_ids, d_ids), media_type=NPZ)
        body_out: dict[str, Any] = {
            "region": region.name,
            "origins": o_ids.tolist(),
            "destinations": d_ids.tolist(),
            "seconds": matrix_json(m.seconds),
            "cache": report.status,
            "snap_distance_m": {
                "origins": np.round(m.origins.snap_distance_m, 3).tolist(),
                "destinations": np.round(m.destinations.snap_distance_m, 3).tolist(),
            },
        }
        if m.metres is not None:
            body_out["metres"] = matrix_json(m.metres)
        return json_response(body_out)

    def job_response(record: dict[str, Any]) -> Response:
        url = f"/v1/jobs/{record['id']}"
        return json_response({**record, "url": url}, 202, {"Location": url})

    @app.post("/v1/territories", tags=["jobs"], status_code=202)
    async def territories(body: TerritoriesRequest) -> Response:
        """Design territories (a job): 202 with the job's URL."""
        if body.method not in METHODS:
            raise RequestError(
                "InvalidInput", f"method {body.method!r} is unknown; one of {', '.join(METHODS)}"
            )
        region = region_of(body.region, _feature_bounds(body.areas, "areas"))
        return job_response(
            jobs.submit("territories", _with_region(body, region, state.config.speeds), region.name)
        )

    @app.post("/v1/validate", tags=["jobs"], status_code=202)
    async def validate(body: ValidateRequest) -> Response:
        """Validate a territory alignment (a job): 202 with the job's URL."""
        region = region_of(body.region, _feature_bounds(body.areas, "areas"))
        return job_response(
            jobs.submit("validate", _with_region(body, region, state.config.speeds), region.name)
        )

    @app.post("/v1/precompute", tags=["jobs"], status_code=202)
    async def precompute(body: PrecomputeRequest) -> Response:
        """Fill the cache with a square matrix (a resumable job): 202 with the job's URL."""
        pts = np.array(body.points, dtype=np.float64)
        if not (np.abs(pts[:, 0]) <= 180).all() or not (np.abs(pts[:, 1]) <= 90).all():
            raise RequestError("InvalidInput", "points must be [lon, lat] in degrees")
        region = region_of(body.region, pts)
        return job_response(
            jobs.submit("precompute", _with_region(body, region, state.config.speeds), region.name)
        )

    @app.get("/v1/jobs", tags=["jobs"])
    async def list_jobs() -> Response:
        """Every job, oldest first."""
        return json_response({"jobs": jobs.list()})

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], responses={404: {"description": "no such job"}})
    async def get_job(job_id: str) -> Response:
        """A job's state and progress, and its CPU priority: ``priority`` (``idle`` on idle CPU
        only, ``low`` at nice 19, ``nice`` at nice +10 where there is no idle policy), when
        it was ``promoted`` from idle to nice 19, and a ``priority_note``."""
        return json_response(jobs.get(job_id))

    @app.get(
        "/v1/jobs/{job_id}/result",
        tags=["jobs"],
        responses={404: {"description": "no such job"}, 409: {"description": "no result"}},
    )
    async def job_result(job_id: str) -> Response:
        """The result of a job that succeeded (GeoJSON, summary, validation report)."""
        return FileResponse(jobs.result(job_id), media_type="application/json")

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"], responses={404: {"description": "no such job"}})
    async def delete_job(job_id: str) -> Response:
        """Cancel a queued or running job; delete a finished one and its result."""
        return json_response(jobs.cancel(job_id))


def _with_region(body: BaseModel, region: Region, speeds: str | None) -> dict[str, Any]:
    req = body.model_dump(mode="json")
    src = Path(region.source)
    req["_region"] = {
        "name": region.name,
        "pbf" if src.suffix == ".pbf" else "graph": str(src),
        "speeds": speeds,
    }
    return req


def _arrow(m: Any, o_ids: np.ndarray, d_ids: np.ndarray) -> bytes:
    import pyarrow as pa

    no, nd = m.shape
    sec = m.seconds.ravel()
    cols: dict[str, Any] = {
        "origin_id": np.repeat(o_ids, nd),
        "destination_id": np.tile(d_ids, no),
        "seconds": pa.array(sec, mask=~np.isfinite(sec)),
    }
    if m.metres is not None:
        met = m.metres.ravel()
        cols["metres"] = pa.array(met, mask=~np.isfinite(met))
    table = pa.table(cols)
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _npz(m: Any, o_ids: np.ndarray, d_ids: np.ndarray) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_matrix(m, o_ids, d_ids, Path(tmp) / "matrix.npz")
        return path.read_bytes()
