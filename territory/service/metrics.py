"""Prometheus metrics of one server process (``GET /metrics``, text exposition format).

With ``--workers N`` each worker process keeps its own counters; a scrape reaches one of them.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class Metrics:
    """The counters, histograms and gauges of the service, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "roadnet_requests", "HTTP requests answered", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "roadnet_request_seconds",
            "Time to answer a request",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.table_cells = Counter(
            "roadnet_table_cells", "Origin-destination cells computed", ["api"], registry=r
        )
        self.osrm_cells = self.table_cells.labels("osrm")  # one lookup, not one per request
        self.jobs = Counter("roadnet_jobs", "Jobs by kind and final state", ["kind", "state"],
                            registry=r)  # fmt: skip
        self.job_promotions = Counter(
            "roadnet_job_promotions",
            "Running jobs moved from idle CPU only (SCHED_IDLE) to nice 19 after the grace "
            "period (promoted), or whose move the kernel refused (refused)",
            ["result"],
            registry=r,
        )
        for result in ("promoted", "refused"):  # both series exist from the start, at 0
            self.job_promotions.labels(result)
        self.cache = Counter(
            "roadnet_matrix_cache", "Matrix requests served from the cache", ["result"], registry=r
        )
        self.queue_depth = Gauge(
            "roadnet_queue_depth", "Heavy requests waiting or running", registry=r
        )
        self.ready = Gauge("roadnet_ready", "1 when the graphs are loaded", registry=r)
        self.pid = Gauge("roadnet_worker_pid", "Process id of the worker that answered", registry=r)
        self.pid.set(os.getpid())
        self.snap_cache = Counter(
            "roadnet_snap_cache_points",
            "Points of OSRM requests found in (hit) or added to (miss) the snap cache",
            ["result"],
            registry=r,
        )

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
