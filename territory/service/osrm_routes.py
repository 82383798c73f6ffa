"""HTTP endpoints of the OSRM-compatible services and of the service's health.

``GET /table/v1/{profile}/{coordinates}``, ``/nearest/v1/...``, ``/route/v1/...`` as in OSRM's
HTTP API v5 (see :mod:`territory.service.osrm` for the computation and the differences), plus
``/health``, ``/ready``, ``/v1/graphs`` and ``/metrics``. The query options are declared (so
that ``/openapi.json`` lists them) but read from the raw query string, so that an unknown or
malformed option gets OSRM's error and not a framework's.

``table`` requests, the service's hot path, are answered by :class:`FastTable`, a bare ASGI
handler the app's outer middleware calls before FastAPI's routing: the same computation and the
same responses as the FastAPI endpoint (which stays registered for ``/openapi.json`` and
``/docs``), without the framework's per-request work (dependency solving, parameter
validation of options that are all plain strings, the request object).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import Response

from territory.exceptions import RequestError
from territory.service.limits import Receive, Scope, Send
from territory.service.metrics import CONTENT_TYPE
from territory.service.osrm import (
    OsrmLimits,
    nearest_response,
    parse_coordinates,
    route_response,
    table_response,
)
from territory.service.state import ServiceState, error_response, json_bytes, json_response

__all__ = ["FastTable", "add_osrm_routes"]

log = logging.getLogger(__name__)

#: The table endpoint's route (the metrics' endpoint label).
TABLE_ROUTE = "/table/v1/{profile}/{coordinates}"
_TABLE_PREFIX = "/table/v1/"

#: Tables of at most this many coordinates run on the event loop's thread (a few milliseconds
#: at most; handing them to a worker thread costs more CPU than it saves); larger ones go
#: through the server's bounded queue and its time limit.
INLINE_MAX_COORDINATES = 100

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
    limits = _limits(state)

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

    @app.get(TABLE_ROUTE, tags=["OSRM"], responses=_ERRORS)
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
        _count_cells(state, coordinates, query)
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
        _sync_snap_cache(state)
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)


def _sync_snap_cache(state: ServiceState) -> None:
    """Bring the snap-cache counters up to the regions' own tallies."""
    if not state.loaded.is_set() or state.load_error is not None:
        return
    caches = [r.snap_cache for r in state.regions.regions if r.snap_cache is not None]
    m = state.metrics.snap_cache
    for result, total in (("hit", sum(c.hits for c in caches)),
                          ("miss", sum(c.misses for c in caches))):  # fmt: skip
        child = m.labels(result)
        seen = child._value.get()
        if total > seen:
            child.inc(total - seen)


def _limits(state: ServiceState) -> OsrmLimits:
    return OsrmLimits(max_table_size=state.config.max_table_size, threads=state.config.threads)


def _count(raw: str | None, n: int) -> int:
    if raw is None or raw == "all":
        return n
    return sum(1 for s in raw.split(";") if s != "")


def _count_cells(state: ServiceState, coordinates: str, query: Mapping[str, str]) -> None:
    n = coordinates.count(";") + 1
    cells = _count(query.get("sources"), n) * _count(query.get("destinations"), n)
    state.metrics.osrm_cells.inc(cells)


class FastTable:
    """``GET /table/v1/{profile}/{coordinates}`` as a bare ASGI handler (the hot path).

    The FastAPI endpoint's behaviour exactly: its options are all optional strings (nothing for
    the framework to validate), read from the raw query string as Starlette reads it; errors are
    the same JSON. Tables of at most :data:`INLINE_MAX_COORDINATES` coordinates are computed
    at once on the event loop's thread, larger ones go through the server's queue.

    Parameters
    ----------
    state
        The server's shared state.
    """

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.limits = _limits(state)

    @staticmethod
    def match(scope: Scope) -> tuple[str, str] | None:
        """``(profile, coordinates)`` when the request is a table request FastAPI would route
        to the table endpoint, else ``None``."""
        path: str = scope["path"]
        if not path.startswith(_TABLE_PREFIX) or scope.get("method") != "GET":
            return None
        profile, sep, coordinates = path[len(_TABLE_PREFIX) :].partition("/")
        if not sep or not profile or not coordinates or "/" in coordinates:
            return None
        if scope.get("root_path"):
            return None  # mounted under a prefix: leave the routing to the framework
        return profile, coordinates

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, profile: str, coordinates: str
    ) -> None:
        """Answer one table request."""
        raw_query: bytes = scope.get("query_string", b"")
        query = dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
        state = self.state
        try:
            coords = parse_coordinates(coordinates, None)
            region = state.regions.pick(profile, coords[:, 0], coords[:, 1])
            if coords.shape[0] <= INLINE_MAX_COORDINATES:
                body = table_response(region, coords, query, self.limits)
            else:
                body = await state.queue.run(table_response, region, coords, query, self.limits)
            payload = json_bytes(body)
        except RequestError as exc:
            await error_response(exc.code, exc.message, exc.status, exc.headers)(
                scope, receive, send
            )
            return
        except Exception as exc:  # as the app's error boundary: logged, no details out
            log.error("unexpected error on %s", scope["path"][:200], exc_info=exc)
            await error_response(
                "InternalError", "internal error; the server log has the details", 500
            )(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        _count_cells(state, coordinates, query)
