"""The service's lean paths, in process: the bare table handler answers exactly as the FastAPI
endpoint, the snap cache gives exactly what snapping gives, the work queue keeps only its
compute threads, the start-up objects are frozen out of the garbage collector, job processes
run at a lower priority, and worker processes share the connections."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from roadnet.exceptions import SnapError
from roadnet.snap import SnappedPoints, snap_points
from territory.service.app import ServedApp, create_app
from territory.service.config import ServiceConfig
from territory.service.limits import WorkQueue
from territory.service.snapcache import SnapCache
from territory.service.state import ServiceState
from tests.service_server import ROOT, Server, two_islands


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ServiceState, str]]:
    folder = tmp_path_factory.mktemp("table-path")
    g = two_islands()
    graph_file = g.save(folder / "islands.npz")
    config = ServiceConfig(graph=(str(graph_file),), cache_dir=str(folder / "cache"))
    app = create_app(config, load=False)
    state: ServiceState = app.state.service
    frozen_before = gc.get_freeze_count()
    state.load()
    try:
        assert state.load_error is None
        frozen = gc.get_freeze_count() - frozen_before
        rows = np.flatnonzero(g.scc == g.scc[0])[:6]
        coords = ";".join(f"{g.lon[i]:.6f},{g.lat[i] + 1e-4:.6f}" for i in rows)
        yield app, state, coords
    finally:
        gc.unfreeze()  # give the test process its collector back
    assert frozen > 0


def _scope(path: str, query: str = "", root: str = "", headers: tuple = ()) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": root + path, "raw_path": (root + path).encode(),
        "query_string": query.encode(), "root_path": root,
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 5000),
    }  # fmt: skip


async def _messages(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    await app(scope, receive, send)
    return out


async def _call(app: Any, path: str, query: str = "", root: str = "") -> tuple[int, bytes]:
    out = await _messages(app, _scope(path, query, root))
    body = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
    return out[0]["status"], body


def test_start_up_objects_are_frozen_out_of_the_collector(
    loaded: tuple[Any, ServiceState, str],
) -> None:
    assert gc.get_freeze_count() > 1000  # the fixture also checks it grew by the load


@pytest.mark.parametrize(
    "query",
    [
        "",
        "annotations=duration,distance",
        "sources=0;2&destinations=1;3;5",
        "annotations=distance&skip_waypoints=true",
        "scale_factor=1.5&fallback_speed=10",
        "annotations=speed",
        "sources=9",
        "radiuses=1;1;1;1;1;1",
        "hints=abc",
        "unknown=1",
        "generate_hints=maybe",
    ],
)
def test_table_handler_answers_as_the_framework_endpoint(
    loaded: tuple[Any, ServiceState, str], query: str
) -> None:
    app, _, coords = loaded
    for profile, text in (("driving", coords), ("islands", coords), ("bike", coords),
                          ("driving", coords + ";x,1"), ("driving", "0,0;1,1"),
                          ("driving", coords.replace(",", ",9", 1))):  # fmt: skip
        path = f"/table/v1/{profile}/{text}"
        lean = asyncio.run(_call(ServedApp(app), path, query))
        # mounted under a prefix, the request goes through FastAPI's routing to its endpoint
        framework = asyncio.run(_call(app, path, query, root="/api"))
        assert lean == framework, (path, query)
        assert lean[0] in (200, 400)


def test_tables_carry_cors_headers_when_cors_is_configured(tmp_path: Path) -> None:
    graph_file = two_islands().save(tmp_path / "islands.npz")
    config = ServiceConfig(
        graph=(str(graph_file),), cache_dir=str(tmp_path / "cache"),
        cors_origins=("https://crm.example",),
    )  # fmt: skip
    app = create_app(config, load=False)
    state: ServiceState = app.state.service
    state.load()
    try:
        g = state.regions.regions[0].graph
        coords = f"{g.lon[0]:.6f},{g.lat[0]:.6f};{g.lon[1]:.6f},{g.lat[1]:.6f}"
        origin = ((b"origin", b"https://crm.example"),)
        scope = _scope(f"/table/v1/driving/{coords}", headers=origin)
        out = asyncio.run(_messages(ServedApp(app), scope))
        start = out[0]
        assert start["status"] == 200
        headers = dict(start["headers"])
        assert headers.get(b"access-control-allow-origin") == b"https://crm.example"
    finally:
        gc.unfreeze()


def test_work_queue_keeps_only_its_compute_threads() -> None:
    release = threading.Event()

    def hold() -> None:
        release.wait(30)

    def work_threads() -> int:
        return sum(t.name.startswith("work") for t in threading.enumerate())

    async def scenario() -> int:
        before = work_threads()
        q = WorkQueue(slots=1, max_waiting=20, time_limit=60)
        pending = [asyncio.ensure_future(q.run(hold)) for _ in range(10)]
        await asyncio.sleep(0)  # let every request be admitted
        threads = work_threads() - before
        depth = q.depth
        release.set()
        await asyncio.gather(*pending)
        q.close(wait=True)
        assert depth == 10
        return threads

    assert asyncio.run(scenario()) == 1


def test_job_process_runs_on_idle_cpu_only(tmp_path: Path) -> None:
    code = (
        "import os, sys, threading\n"
        "from territory.service.job_worker import main\n"
        "main([sys.argv[1]])\n"
        "policy = getattr(os, 'sched_getscheduler', lambda pid: -1)\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(policy(0)))\n"
        "t.start(); t.join()\n"
        "tids = os.listdir('/proc/self/task') if os.path.isdir('/proc/self/task') else [0]\n"
        "print(os.getpriority(os.PRIO_PROCESS, 0), seen[0], *{policy(int(t)) for t in tids})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ROADNET_JOB_IDLE_GRACE", None)  # a job on its own: never promoted
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],  # an empty job folder: the job fails
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    nice, thread_policy, *policies = (int(v) for v in out.stdout.split())
    assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    if sys.platform.startswith("linux"):  # SCHED_IDLE: every thread (libraries start some at
        # import), and the threads started afterwards inherit it
        assert policies == [thread_policy] == [os.SCHED_IDLE]
    assert json.loads((tmp_path / "priority.json").read_text())["priority"] in ("idle", "nice")


def _same(a: SnappedPoints, b: SnappedPoints) -> None:
    for f in dataclasses.fields(SnappedPoints):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
            assert x.dtype == y.dtype, f.name
        else:
            assert x == y, f.name


def test_snap_cache_gives_exactly_what_snapping_gives() -> None:
    g = two_islands()
    rng = np.random.default_rng(5)
    pool = np.column_stack([g.lon, g.lat])[rng.choice(g.n_nodes, 60, replace=False)]
    pool = pool + rng.normal(0, 3e-4, pool.shape)
    cache = SnapCache(g, capacity=40)  # small: requests below evict older points
    for _ in range(30):
        pts = pool[rng.integers(0, pool.shape[0], size=int(rng.integers(1, 15)))]
        _same(cache.snap(pts[:, 0], pts[:, 1]), snap_points(g, pts[:, 0], pts[:, 1], warn=False))
    assert cache.hits > 0 and cache.misses > 0 and len(cache) <= 40
    far = np.array([[0.0, 0.0], [0.1, 0.1]])
    with pytest.raises(SnapError):
        snap_points(g, far[:, 0], far[:, 1], warn=False)
    with pytest.raises(SnapError):
        cache.snap(far[:, 0], far[:, 1])
    mixed = np.vstack([pool[:2], far])  # the new points alone are all far from any road
    cache.snap(pool[:2, 0], pool[:2, 1])
    _same(cache.snap(mixed[:, 0], mixed[:, 1]), snap_points(g, *mixed.T, warn=False))


def test_workers_each_take_a_share_of_the_connections(tmp_path: Path) -> None:
    graph_file = two_islands().save(tmp_path / "islands.npz")
    server = Server(["--graph", str(graph_file), "--workers", "2"], tmp_path).start()
    try:
        pids: collections.Counter[str] = collections.Counter()
        ready: set[str] = set()
        for _ in range(40):  # a new connection each: the kernel picks a worker's socket
            text = httpx.get(f"{server.url}/metrics", timeout=30).text
            lines = text.splitlines()
            pid = next(v.split()[1] for v in lines if v.startswith("roadnet_worker_pid "))
            pids[pid] += 1
            if "roadnet_ready 1.0" in lines:
                ready.add(pid)
        assert len(pids) == 2, pids
        deadline = time.monotonic() + 180
        while len(ready) < 2 and time.monotonic() < deadline:  # both workers loaded
            lines = httpx.get(f"{server.url}/metrics", timeout=30).text.splitlines()
            if "roadnet_ready 1.0" in lines:
                ready.add(next(v.split()[1] for v in lines if v.startswith("roadnet_worker_pid ")))
            else:
                time.sleep(0.1)  # polling readiness; no test result depends on this delay
        assert len(ready) == 2, ready
        g = two_islands()
        coords = f"{g.lon[0]:.6f},{g.lat[0]:.6f};{g.lon[1]:.6f},{g.lat[1]:.6f}"
        assert httpx.get(f"{server.url}/table/v1/driving/{coords}").json()["code"] == "Ok"
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0
