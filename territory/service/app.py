"""The FastAPI application of ``roadnet serve``: app factory, error boundary, auth, metrics.

:func:`create_app` builds the app for a :class:`~territory.service.config.ServiceConfig`. The
graphs and hierarchies are loaded once, in a background thread started with the app (so that
``/health`` answers at once and ``/ready`` turns 200 when they are loaded); requests that need a
graph get 503 + ``Retry-After`` until then.

Every error a client sees is JSON ``{"code": ..., "message": ...}``: the OSRM codes with HTTP 400
for the OSRM services, the native API's codes otherwise; an unexpected failure is logged with
its traceback and answered with 500 and no details.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from roadnet.settings import settings
from territory.exceptions import RequestError
from territory.service.config import CONFIG_ENV, ServiceConfig
from territory.service.limits import BodyLimit, token_matches
from territory.service.native import add_native_routes
from territory.service.osrm_routes import TABLE_ROUTE, FastTable, add_osrm_routes
from territory.service.state import ServiceState, error_response

__all__ = ["ServedApp", "create_app", "create_app_from_env"]

log = logging.getLogger(__name__)

_OSRM_PREFIXES = ("/table/", "/route/", "/nearest/", "/match/", "/trip/", "/tile/")
_OPEN_PATHS = ("/health",)


class _Guard:
    """ASGI middleware: bearer token, request metrics; table requests go to
    :class:`~territory.service.osrm_routes.FastTable`, everything else to the app."""

    def __init__(self, app: Any, state: ServiceState) -> None:
        self.app = app
        self.state = state
        self.fast_table = FastTable(state)
        # the metric children of each (endpoint, status): a label lookup per request costs
        # more than the update
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        token = self.state.token
        if token is not None and path not in _OPEN_PATHS:
            header = None
            for name, value in scope.get("headers", []):
                if name == b"authorization":
                    header = value.decode("latin-1")
            if not token_matches(header, token):
                resp = error_response(
                    "Unauthorized",
                    "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                    401,
                    {"WWW-Authenticate": "Bearer"},
                )
                await resp(scope, receive, send)
                self._count(scope, 401, 0.0)
                return
        status = 500
        t0 = time.perf_counter()

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        table = self.fast_table.match(scope)
        try:
            if table is not None:
                await self.fast_table(scope, receive, send_wrapper, *table)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            endpoint = TABLE_ROUTE if table is not None else None
            self._count(scope, status, time.perf_counter() - t0, endpoint)

    def _count(self, scope: Any, status: int, seconds: float, endpoint: str | None = None) -> None:
        if endpoint is None:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
        m = self.state.metrics
        children = self._children.get((endpoint, status))
        if children is None:
            children = (m.requests.labels(endpoint, str(status)), m.latency.labels(endpoint))
            if len(self._children) < 1000:  # endpoints x statuses: a few dozen
                self._children[(endpoint, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        m.queue_depth.set(self.state.queue.depth)


def create_app(config: ServiceConfig, *, load: bool = True) -> FastAPI:
    """The service's FastAPI app.

    Parameters
    ----------
    config
        What to serve and the limits.
    load
        Start loading the regions when the app starts (tests of the error paths may skip it).
    """
    if config.cache_dir:
        settings.cache_dir = Path(config.cache_dir)
    state = ServiceState(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load:
            threading.Thread(target=state.load, name="load-regions", daemon=True).start()
        if state.jobs is not None:
            state.jobs.start()
        try:
            yield
        finally:
            if state.jobs is not None:
                state.jobs.stop()
            state.queue.close()

    app = FastAPI(
        title="roadnet",
        summary="Drive times, routes and territories on OpenStreetMap roads.",
        description=(
            "OSRM-compatible `table`, `nearest` and `route` services (OSRM HTTP API v5) and "
            "roadnet's native API: matrices and jobs for territory design, validation and "
            "matrix precomputation."
        ),
        version="1",
        lifespan=lifespan,
    )
    app.state.service = state

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> Response:
        return error_response(exc.code, exc.message, exc.status, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()[:5]
        )
        code = "InvalidQuery" if request.url.path.startswith(_OSRM_PREFIXES) else "InvalidInput"
        return error_response(code, f"invalid request: {problems}", 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(_OSRM_PREFIXES):
            return error_response(
                "InvalidUrl",
                f"URL {request.url.path[:100]!r} is not a valid request: expected "
                "/{service}/v1/{profile}/{lon},{lat};{lon},{lat} with service table, route or "
                "nearest",
                400,
            )
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return error_response(code, str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s", request.url.path, exc_info=exc)
        return error_response(
            "InternalError", "internal error; the server log has the details", 500
        )

    add_osrm_routes(app, state)
    add_native_routes(app, state)

    app.add_middleware(_Guard, state=state)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
        )
    return app


class ServedApp:
    """The ASGI app a server runs: OSRM table requests (the hot path) go straight to
    :class:`~territory.service.osrm_routes.FastTable` behind the same token check and metrics,
    everything else (and the lifespan) to the FastAPI app.

    FastAPI's own per-request work before its middleware (telemetry checks, the middleware
    stack's error boundary) is then skipped for tables.

    Parameters
    ----------
    app
        The app of :func:`create_app`.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.tables = _Guard(app, app.state.service)
        # with CORS configured, tables go through the framework's CORS middleware too
        self.fast = not app.state.service.config.cors_origins

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.fast and scope["type"] == "http" and FastTable.match(scope) is not None:
            await self.tables(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app_from_env() -> ServedApp:
    """The app of the configuration in :data:`~territory.service.config.CONFIG_ENV` (the
    factory uvicorn's worker processes call)."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise RuntimeError(f"{CONFIG_ENV} is not set: start the server with `roadnet serve`")
    return ServedApp(create_app(ServiceConfig.from_json(text)))
