"""What the endpoints of one server share: configuration, regions, queue, metrics, jobs."""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi.responses import Response

from roadnet.settings import default_cache_dir
from roadnet.speed import SpeedProfile
from territory.exceptions import RequestError
from territory.service.config import ServiceConfig
from territory.service.limits import WorkQueue
from territory.service.metrics import Metrics
from territory.service.regions import Region, RegionSet, load_region

__all__ = [
    "ServiceState",
    "error_response",
    "freeze_startup_objects",
    "json_bytes",
    "json_response",
    "matrix_json",
]

log = logging.getLogger(__name__)


_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def matrix_json(values: np.ndarray) -> np.ndarray:
    """A 2-D array ready for :func:`json_response`: written as JSON rows, ``null`` where not
    finite.

    float32 values are written as the shortest text that reads back as the same float32
    (exactly the library's value), float64 values as the shortest that reads back as the same
    float64.
    """
    arr = np.asarray(values)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return np.ascontiguousarray(arr)


def json_bytes(body: Any) -> bytes:
    """Compact JSON (orjson; NumPy arrays written natively, non-finite floats as ``null``)."""
    return orjson.dumps(body, option=_JSON_OPTIONS)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response (see :func:`json_bytes`)."""
    return Response(
        json_bytes(body), status_code=status, media_type="application/json", headers=headers
    )


def error_response(
    code: str, message: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    """The JSON error every failure is answered with."""
    return json_response({"code": code, "message": message}, status, headers)


def freeze_startup_objects() -> None:
    """Move every object alive now into the collector's permanent generation (``gc.freeze``).

    A started server holds ~500,000 container objects (imported modules, graphs, the app) that
    stay alive as long as it runs; a full garbage collection walks all of them (~0.2-0.3 s on
    the 2-core test machine) and stalls every request in flight. Frozen, they are no longer
    walked: a full collection then costs what the requests' own objects cost.
    """
    gc.collect()
    gc.freeze()


class ServiceState:
    """What the endpoints share: configuration, regions (once loaded), queue, metrics, jobs."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.token = config.token()
        self.cache_root = (
            Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
        )
        self.metrics = Metrics()
        self.queue = WorkQueue(1, config.max_waiting, config.time_limit)
        self._regions: RegionSet | None = None
        self.load_error: str | None = None
        self.loaded = threading.Event()
        self.started = time.time()
        self.jobs: Any = None  # territory.service.jobs.JobManager, set by the native API

    @property
    def regions(self) -> RegionSet:
        """The served regions; 503 until they are loaded."""
        if self._regions is None:
            if self.load_error is not None:
                raise RequestError(
                    "NotReady", f"the road graphs failed to load: {self.load_error}", 503
                )
            raise RequestError(
                "NotReady",
                "the road graphs are still loading; retry after the time in Retry-After",
                503,
                {"Retry-After": "2"},
            )
        return self._regions

    def load(self) -> None:
        """Load every region (called once, in a background thread)."""
        cfg = self.config
        try:
            profile = SpeedProfile.from_file(cfg.speeds) if cfg.speeds else SpeedProfile.default()
            regions: list[Region] = []
            for p in cfg.pbf:
                regions.append(load_region(pbf=Path(p), profile=profile, snap_cache=cfg.snap_cache))
            for p in cfg.graph:
                regions.append(
                    load_region(graph=Path(p), profile=profile, snap_cache=cfg.snap_cache)
                )
            names = [r.name for r in regions]
            for i, r in enumerate(regions):  # two files with one name: number them
                if names.count(r.name) > 1:
                    r.name = f"{r.name}-{i}"
            self._regions = RegionSet(regions)
            freeze_startup_objects()
            self.metrics.ready.set(1)
            log.info("serving %s", ", ".join(r.name for r in regions))
        except Exception as exc:  # reported by /ready and every request, and logged
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("loading the road graphs failed")
        finally:
            self.loaded.set()
