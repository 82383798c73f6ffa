"""HTTP endpoints of the OSRM-compatible services and of the service's health.

``GET /table/v1/{profile}/{coordinates}``, ``/nearest/v1/...``, ``/route/v1/...`` as in OSRM's
HTTP API v5 (see :mod:`territory.service.osrm` for the computation and the differences), plus
``/health``, ``/ready``, ``/v1/graphs`` and ``/metrics``. The query options are declared (so
that ``/openapi.json`` lists them) but read from the raw query string, so that an unknown or
malformed option gets OSRM's error and not a framework's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import Response

from territory.service.metrics import CONTENT_TYPE
from territory.service.osrm import (
    OsrmLimits,
    nearest_response,
    parse_coordinates,
    route_response,
    table_response,
)
from territory.service.state import ServiceState, json_response

__all__ = ["add_osrm_routes"]

_Opt = Annotated[str | None, Query()]
_Profile = Annotated[
    str, Path(description="driving, car or drive (the served car profile), or a region's name")
]
_Coords = Annotated[
    str,
    Path(description="{lon},{lat};{lon},{lat}... in degrees, or polyline(...) / polyline6(...)"),
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": 'OSRM error: {"code": "InvalidQuery" | "InvalidOptions" | ..., '
        '"message": ...}'
    },
    503: {"description": "Busy, still loading, or over the time limit (see Retry-After)"},
}


def add_osrm_routes(app: FastAPI, state: ServiceState) -> None:
    """Register the OSRM services and the health endpoints on ``app``."""
    limits = OsrmLimits(max_table_size=state.config.max_table_size, threads=state.config.threads)

    async def serve(
        service: Callable[..., dict[str, Any]],
        profile: str,
        coordinates: str,
        query: Mapping[str, str],
        max_count: int | None,
    ) -> Response:
        coords = parse_coordinates(coordinates, max_count)
        region = state.regions.pick(profile, coords[:, 0], coords[:, 1])
        body = await state.queue.run(service, region, coords, query, limits)
        return json_response(body)

    @app.get("/table/v1/{profile}/{coordinates}", tags=["OSRM"], responses=_ERRORS)
    async def table(
        request: Request,
        profile: _Profile,
        coordinates: _Coords,
        sources: _Opt = None,
        destinations: _Opt = None,
        annotations: _Opt = None,
        fallback_speed: _Opt = None,
        fallback_coordinate: _Opt = None,
        scale_factor: _Opt = None,
        radiuses: _Opt = None,
        generate_hints: _Opt = None,
        skip_waypoints: _Opt = None,
    ) -> Response:
        """Drive times (and road metres) between coordinates: OSRM's ``table`` service."""
        query = dict(request.query_params)
        resp = await serve(table_response, profile, coordinates, query, None)
        n = len(coordinates.split(";"))
        cells = _count(query.get("sources"), n) * _count(query.get("destinations"), n)
        state.metrics.table_cells.labels("osrm").inc(cells)
        return resp

    @app.get("/nearest/v1/{profile}/{coordinates}", tags=["OSRM"], responses=_ERRORS)
    async def nearest(
        request: Request,
        profile: _Profile,
        coordinates: _Coords,
        number: _Opt = None,
        radiuses: _Opt = None,
        generate_hints: _Opt = None,
        skip_waypoints: _Opt = None,
    ) -> Response:
        """The nearest roads to one coordinate: OSRM's ``nearest`` service."""
        return await serve(nearest_response, profile, coordinates, dict(request.query_params), None)

    @app.get("/route/v1/{profile}/{coordinates}", tags=["OSRM"], responses=_ERRORS)
    async def route(
        request: Request,
        profile: _Profile,
        coordinates: _Coords,
        alternatives: _Opt = None,
        steps: _Opt = None,
        annotations: _Opt = None,
        geometries: _Opt = None,
        overview: _Opt = None,
        continue_straight: _Opt = None,
        radiuses: _Opt = None,
        generate_hints: _Opt = None,
        skip_waypoints: _Opt = None,
    ) -> Response:
        """The fastest route through coordinates in order: OSRM's ``route`` service."""
        query = dict(request.query_params)
        return await serve(route_response, profile, coordinates, query, limits.max_viaroute_size)

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["service"], responses={503: {"description": "not ready"}})
    async def ready() -> Response:
        """Readiness: 200 once every graph and hierarchy is loaded."""
        regions = state.regions  # 503 while loading or after a failed load
        return json_response({"status": "ready", "regions": [r.name for r in regions.regions]})

    @app.get("/v1/graphs", tags=["native"])
    async def graphs() -> Response:
        """The served regions: bbox, nodes, arcs, source, build date, hierarchy state."""
        return json_response({"graphs": [r.describe() for r in state.regions.regions]})

    @app.get("/metrics", tags=["service"])
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)


def _count(raw: str | None, n: int) -> int:
    if raw is None or raw == "all":
        return n
    return int(np.count_nonzero([s != "" for s in raw.split(";")]))
