"""Benchmark ``roadnet serve`` (issue: the routing extension service) on 127.0.0.1.

In one run, on one cache folder holding the graph and hierarchy of the extract (Porto by
default; built first when the folder is new):

1. **warm table**: ``--n`` x ``--n`` (100 x 100) OSRM ``table`` requests over HTTP to a running
   server, one at a time, p50/p95/p99; the same table through the CLI (``roadnet matrix``, a
   cold process: start-up, graph and hierarchy from the cache, matrix, file) and through the
   library call in this process (:func:`roadnet.matrix.drive_time_matrix` on the loaded
   hierarchy). Ratios: CLI / HTTP p50, HTTP p50 / library.
2. **server CPU per request**: ``--cpu-reps`` 10 x 10 and ``--cpu-reps`` / 5 100 x 100 tables
   sent one at a time on one keep-alive connection; the server's CPU time (user + system of all
   its processes, from ``/proc/<pid>/stat``) divided by the requests, in 5 rounds (min and
   median). Unlike latencies, this figure hardly depends on what else runs on the machine.
3. **10 x 10 throughput**: ``--clients`` clients sending 10 x 10 tables for ``--burst`` seconds:
   requests/s, latency percentiles, errors by status.
4. **mixed load**: ``--clients`` clients for ``--duration`` seconds, mixed 10 x 10 (90 %) and
   100 x 100 (10 %) tables, plus ``--jobs`` territory jobs submitted at the start: throughput,
   percentiles per kind (100 x 100 p99 under load is a goal), errors by status, server RSS and
   PSS (all its processes) after the warm-up, after the 10 x 10 load and after the mixed load;
   for each job, when it finished and its CPU priority (idle-only, or moved to nice 19 by the
   server after ``--job-idle-grace`` seconds, passed to the server).
5. **workers** (``--rss-workers 1,4``): the server's total RSS and PSS with 1 and with 4 worker
   processes after the same warm-up: the graph and hierarchy arrays are memory maps of the cache,
   so the workers share their pages (PSS counts a shared page once in total).

The load (3 and 4) is a *closed loop*: each of the ``--clients`` clients holds one keep-alive
connection and sends its next request as soon as it has read the previous response, with no
think time, so the latency under load is mostly queueing (about clients / throughput), not the
time one table takes. Requests are encoded before the clock starts and cycle over 5,000
different 10 x 10 and 500 different 100 x 100 tables (100,000 points). The OSRM table service
caches no results, but it keeps snapped points (``--snap-cache``, 100,000 points per region by
default): once a cycle has passed, a table's points are found there and only the matrix is
computed — a workload of places that come back (depots, customers). The share of points found
in the snap cache during the mixed load is printed; ``--snap-cache 0`` (passed to the server)
measures snapping every point. The load generator (one process, asyncio
on uvloop) runs on the same machine as the server and competes for its cores; its own CPU per
request is printed. Every point set comes from a seeded generator. Bounded in time and count;
stops by itself. Prints figures and the goals, asserts nothing.

Run from the repository root::

    python scripts/bench_service.py                       # Porto, 2 workers, 50 clients, 60 s
    python scripts/bench_service.py --workers 1 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvloop
from _provenance import code_version  # scripts/ helper

import roadnet
from roadnet.engine import EngineChoice
from roadnet.graph import CompiledGraph
from roadnet.graph_cache import cached_hierarchy, load_road_graph
from roadnet.matrix import drive_time_matrix

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PBF = REPO_ROOT / ".." / "shared" / "data" / "osm" / "porto_portugal.osm.pbf"
READY_TIMEOUT_S = 600.0


# ------------------------------------------------------------------------------ helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out


def tree_memory(root: int) -> dict[str, float]:
    """Total RSS and PSS (MB) of a process tree (smaps_rollup)."""
    rss = pss = 0
    n = 0
    for pid in tree_pids(root):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        n += 1
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    return {"processes": n, "rss_mb": rss / 1024, "pss_mb": pss / 1024}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (those still alive)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def snap_counts(url: str, workers: int) -> dict[str, float]:
    """The snap-cache counters summed over the server's worker processes (``/metrics`` is asked
    on new connections until every worker has answered, at most 40 times)."""
    seen: dict[str, dict[str, float]] = {}
    for _ in range(40):
        text = httpx.get(f"{url}/metrics", timeout=30).text
        pid, counts = "", {"hit": 0.0, "miss": 0.0}
        for line in text.splitlines():
            if line.startswith("roadnet_worker_pid "):
                pid = line.split()[1]
            elif line.startswith("roadnet_snap_cache_points_total{"):
                result = line.split('result="', 1)[1].split('"', 1)[0]
                counts[result] = float(line.rsplit(" ", 1)[1])
        seen[pid] = counts
        if len(seen) >= workers:
            break
    return {k: sum(c[k] for c in seen.values()) for k in ("hit", "miss")}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def fmt_ms(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {pct(values, 50) * 1e3:7.1f} ms  p95 {pct(values, 95) * 1e3:7.1f} ms  "
        f"p99 {pct(values, 99) * 1e3:7.1f} ms  (n={len(values)})"
    )


class PointPool:
    """Seeded random points near the roads of the largest strongly connected component."""

    def __init__(self, graph: CompiledGraph, seed: int) -> None:
        self.g = graph
        self.rng = np.random.default_rng(seed)
        self.rows = np.flatnonzero(graph.scc == 0)

    def take(self, k: int) -> np.ndarray:
        r = self.rng.choice(self.rows, size=k, replace=False)
        pts = np.column_stack([self.g.lon[r], self.g.lat[r]])
        return np.round(pts + self.rng.normal(0, 2e-4, size=(k, 2)), 6)


def coords(pts: np.ndarray) -> str:
    return ";".join(f"{x:.6f},{y:.6f}" for x, y in pts)


class Server:
    def __init__(
        self,
        pbf: Path,
        cache_dir: Path,
        workers: int,
        log: Path,
        snap_cache: int = 100_000,
        job_idle_grace: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "territory.cli", "serve", "--pbf", str(pbf),
               "--port", str(self.port), "--cache-dir", str(cache_dir),
               "--workers", str(workers), "--max-waiting", "512",
               "--snap-cache", str(snap_cache),
               "--jobs-dir", str(cache_dir / f"bench-jobs-{self.port}")]  # fmt: skip
        if job_idle_grace is not None:
            cmd += ["--job-idle-grace", job_idle_grace]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.log = log.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.workers = workers

    def wait_ready(self) -> float:
        """Seconds until every worker process says it is ready (``roadnet_ready 1`` in the
        ``/metrics`` of as many different worker pids as there are workers; each probe on a new
        connection, which the kernel gives to any worker)."""
        t0 = time.perf_counter()
        ready: set[str] = set()
        while time.perf_counter() - t0 < READY_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited; see its log")
            try:
                text = httpx.get(f"{self.url}/metrics", timeout=5).text
            except httpx.TransportError:
                text = ""
            pid = is_ready = None
            for line in text.splitlines():
                if line.startswith("roadnet_worker_pid "):
                    pid = line.split()[1]
                elif line.startswith("roadnet_ready "):
                    is_ready = float(line.split()[1]) == 1.0
            if pid is not None and is_ready:
                ready.add(pid)
            if len(ready) >= self.workers:
                return time.perf_counter() - t0
            time.sleep(0.05 if is_ready else 0.2)
        raise RuntimeError("server not ready in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------------------ phases
def warm_http(url: str, pool: PointPool, n: int, reps: int) -> list[float]:
    times = []
    with httpx.Client(timeout=60) as c:
        c.get(f"{url}/table/v1/driving/{coords(pool.take(n))}")  # first request: warm-up
        for _ in range(reps):
            u = f"{url}/table/v1/driving/{coords(pool.take(n))}"
            t0 = time.perf_counter()
            r = c.get(u)
            times.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"warm table failed: {r.status_code} {r.text[:200]}")
    return times


def server_cpu(root: int, port: int, pool: PointPool, n: int, reps: int) -> dict[str, Any]:
    """Server CPU ms per ``n`` x ``n`` table, sequential requests on one connection: 5 rounds of
    new tables (every point new to the snap cache), then the same 5 rounds again (every point
    found there); min and median of the per-round means."""
    import http.client

    pids = tree_pids(root)
    reqs = [f"/table/v1/driving/{coords(pool.take(n))}" for _ in range(reps)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for r in [f"/table/v1/driving/{coords(pool.take(n))}" for _ in range(10)]:  # warm-up
        conn.request("GET", r)
        conn.getresponse().read()
    rounds = 5
    per = max(1, reps // rounds)
    out: dict[str, Any] = {"n": per * rounds}
    for label in ("new points", "repeated points"):
        means = []
        for k in range(rounds):
            c0 = cpu_seconds(pids)
            for r in reqs[k * per : (k + 1) * per]:
                conn.request("GET", r)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"table failed: {resp.status}")
            means.append((cpu_seconds(pids) - c0) / per * 1e3)
        out[label] = (min(means), float(np.median(means)))
    conn.close()
    return out


def cold_cli(pbf: Path, cache_dir: Path, pool: PointPool, n: int, reps: int) -> list[float]:
    times = []
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(reps):
            pts = pool.take(n)
            csv = Path(tmp) / f"p{i}.csv"
            csv.write_text("id,lon,lat\n" + "".join(f"{j},{x},{y}\n" for j, (x, y) in
                                                    enumerate(pts)))  # fmt: skip
            cmd = [sys.executable, "-m", "territory.cli", "matrix", str(csv), "--pbf", str(pbf),
                   "--out", str(Path(tmp) / f"m{i}.npz"), "--cache-dir", str(cache_dir),
                   "--engine", "ch", "--jobs", "1"]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
    return times


def library(graph: CompiledGraph, engine: EngineChoice, pool: PointPool, n: int, reps: int):
    drive_time_matrix(graph, pool.take(n), engine=engine, n_jobs=1)  # untimed: kernels load
    times = []
    for _ in range(reps):
        pts = pool.take(n)
        t0 = time.perf_counter()
        drive_time_matrix(graph, pts, engine=engine, n_jobs=1)
        times.append(time.perf_counter() - t0)
    return times


def areas_fc(pool: PointPool, k: int) -> dict[str, Any]:
    pts = pool.take(k)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
         "properties": {"id": f"a{i}", "pop": 1 + i % 7}}
        for i, (x, y) in enumerate(pts)]}  # fmt: skip


class RawClient:
    """One keep-alive HTTP/1.1 connection that sends pre-encoded GET requests.

    The load generator shares the machine's cores with the server, so it must cost little per
    request: requests are encoded once before the clock starts, responses are read by
    ``Content-Length`` (the server sends it) and not parsed.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, request: bytes) -> int:
        """Send one request; the response's status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        i = head.lower().find(b"content-length:")
        if i < 0:
            raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
        size = int(head[i + 15 : head.index(b"\r\n", i)])
        await self.reader.readexactly(size)
        return status

    def close(self) -> None:
        self.writer.close()


def encode_get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


async def load(
    url: str,
    pool: PointPool,
    clients: int,
    seconds: float,
    big_share: float,
    n_jobs: int,
    n_small: int = 5000,
    n_big: int = 500,
) -> dict[str, Any]:
    """``clients`` closed-loop clients for ``seconds``: mixed 10 x 10 / 100 x 100 tables.

    Each client sends its next request as soon as it has the previous response (no think time),
    on its own keep-alive connection; the requests cycle over ``n_small`` + ``n_big`` different
    tables (the OSRM table service caches nothing, so a repeat costs the server the same).
    """
    port = int(url.rsplit(":", 1)[1])
    small = [encode_get(f"/table/v1/driving/{coords(pool.take(10))}") for _ in range(n_small)]
    big = [encode_get(f"/table/v1/driving/{coords(pool.take(100))}") for _ in range(n_big)]
    lat: dict[str, list[float]] = {"10x10": [], "100x100": []}
    status: Counter[str] = Counter()
    rng = np.random.default_rng(7)
    choices = (rng.random(1_000_000) < big_share).tolist()
    counter = 0
    job_ids = []
    async with httpx.AsyncClient(timeout=60) as c:
        for _ in range(n_jobs):
            r = await c.post(f"{url}/v1/territories", json={
                "areas": areas_fc(pool, 30), "p": 3, "measures": ["pop"], "tolerance": 0.2,
                "improve": False})  # fmt: skip
            status[f"job-submit {r.status_code}"] += 1
            if r.status_code == 202:
                job_ids.append(r.json()["id"])
    conns = [await RawClient.open(port) for _ in range(clients)]
    t_end = time.perf_counter() + seconds
    clock = time.perf_counter

    async def client(k: int) -> None:
        nonlocal counter
        conn = conns[k]
        i = k
        while clock() < t_end:
            counter += 1
            is_big = choices[counter % len(choices)]
            req = big[i % len(big)] if is_big else small[i % len(small)]
            i += clients
            t0 = clock()
            try:
                code = await conn.get(req)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                status[type(exc).__name__] += 1
                conn.close()
                conn = conns[k] = await RawClient.open(port)
                continue
            status[str(code)] += 1
            if code == 200:
                lat["100x100" if is_big else "10x10"].append(clock() - t0)

    t0 = time.perf_counter()
    own0 = time.process_time()
    started = dt.datetime.now(dt.UTC)
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.perf_counter() - t0
    own = time.process_time() - own0
    ended = dt.datetime.now(dt.UTC)
    for conn in conns:
        conn.close()
    jobs = []
    async with httpx.AsyncClient(timeout=60) as c:
        for jid in job_ids:  # wait (bounded) for the jobs to finish
            deadline = time.perf_counter() + 300
            while True:
                j = (await c.get(f"{url}/v1/jobs/{jid}")).json()
                if j["state"] not in ("queued", "running") or time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.5)
            jobs.append(j)
    total = sum(v for k, v in status.items() if not k.startswith("job"))
    return {
        "wall": wall,
        "lat": lat,
        "status": status,
        "requests": total,
        "jobs": jobs,
        "load_window": (started, ended),
        "client_cpu_ms": own / max(total, 1) * 1e3,
    }


def report_load(name: str, res: dict[str, Any]) -> None:
    print(f"\n{name}: {res['requests']} requests in {res['wall']:.1f} s = "
          f"{res['requests'] / res['wall']:.0f} req/s")  # fmt: skip
    for kind, v in res["lat"].items():
        if v:
            print(f"  {kind:8s} {fmt_ms(v)}")
    print(f"  responses by status: {dict(sorted(res['status'].items()))}")
    print(f"  load generator CPU {res['client_cpu_ms']:.3f} ms per request (same cores)")
    if "server_cpu_ms" in res:
        print(f"  server CPU {res['server_cpu_ms']:.3f} ms per request (worker processes; "
              "territory jobs not counted)")  # fmt: skip
    load_start, load_end = res["load_window"]
    for j in res["jobs"]:
        took = when = "-"
        if j.get("started") and j.get("finished"):
            start = dt.datetime.fromisoformat(j["started"])
            end = dt.datetime.fromisoformat(j["finished"])
            took = f"{(end - start).total_seconds():.1f} s"
            after = (end - load_end).total_seconds()
            when = (
                f"{(end - load_start).total_seconds():.1f} s into the load"
                if after <= 0
                else f"{after:.1f} s after the load ended"
            )
        prio = f"priority {j.get('priority')}"
        if j.get("promoted") and j.get("started"):
            moved = dt.datetime.fromisoformat(j["promoted"]) - dt.datetime.fromisoformat(
                j["started"]
            )
            prio += f", promoted {moved.total_seconds():.1f} s after its start"
        print(f"  job {j['id']} territories: {j['state']} (ran {took}; finished {when}; {prio})")


# ------------------------------------------------------------------------------ main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pbf", type=Path, default=DEFAULT_PBF)
    ap.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder (default: a new temporary folder; graph built first)",
    )
    ap.add_argument("--workers", type=int, default=2, help="server worker processes")
    ap.add_argument("--n", type=int, default=100, help="side of the warm table")
    ap.add_argument("--reps", type=int, default=100, help="warm HTTP / library repetitions")
    ap.add_argument("--cli-reps", type=int, default=3)
    ap.add_argument("--snap-cache", type=int, default=100_000, help="server's --snap-cache")
    ap.add_argument("--cpu-reps", type=int, default=1000, help="10 x 10 requests of phase 2")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--burst", type=float, default=20.0, help="seconds of 10x10-only load")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of mixed load")
    ap.add_argument("--big-share", type=float, default=0.1)
    ap.add_argument("--jobs", type=int, default=3, help="territory jobs during the mixed load")
    ap.add_argument(
        "--job-idle-grace",
        default=None,
        help="server's --job-idle-grace (default: the server's; 'none' = idle-only jobs)",
    )
    ap.add_argument("--rss-workers", default="1,4", help="worker counts to compare ('' = skip)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()  # fmt: skip
    pbf = args.pbf.resolve()
    if not pbf.is_file():
        print(f"extract not found: {pbf}", file=sys.stderr)
        return 2
    tmp = None
    if args.cache_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-service-")
        cache_dir = Path(tmp.name)
    else:
        cache_dir = args.cache_dir.resolve()
    print(
        f"roadnet serve benchmark — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"code: {code_version('territory', 'roadnet', 'scripts')}")
    print(f"extract: {pbf.name}; cache: {cache_dir}; workers {args.workers}; "
          f"clients {args.clients}; mixed load {args.duration:g} s; "
          f"snap cache {args.snap_cache} points; job idle grace "
          f"{args.job_idle_grace or 'server default'}")  # fmt: skip
    with roadnet.settings.override(cache_dir=cache_dir):
        t0 = time.perf_counter()
        g, _ = load_road_graph(pbf=pbf)
        h, _ = cached_hierarchy(g)
        print(f"graph {g.n_nodes:,} nodes, {g.n_arcs:,} arcs; graph + hierarchy ready in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    engine = EngineChoice("ch", "bench", h)
    gc.collect()
    gc.freeze()  # as the server does after loading: no full-collection pauses in the timings
    pool = PointPool(g, args.seed)
    n = args.n

    log_dir = Path(tempfile.mkdtemp(prefix="bench-service-logs-"))
    server = Server(
        pbf, cache_dir, args.workers, log_dir / "server.log", args.snap_cache, args.job_idle_grace
    )
    try:
        print(f"server ready in {server.wait_ready():.1f} s (pid {server.proc.pid})")
        mem0 = tree_memory(server.proc.pid)
        http = warm_http(server.url, pool, n, args.reps)
        mem_warm = tree_memory(server.proc.pid)
        with roadnet.settings.override(cache_dir=cache_dir):
            lib = library(g, engine, pool, n, args.reps)
        cli = cold_cli(pbf, cache_dir, pool, n, args.cli_reps)
        print(f"\n1. warm {n} x {n} table, one request at a time")
        print(f"  HTTP (OSRM table)   {fmt_ms(http)}")
        print(f"  library call        {fmt_ms(lib)}")
        print(f"  CLI, cold process   {fmt_ms(cli)}")
        print(f"  CLI p50 / HTTP p50 = {pct(cli, 50) / pct(http, 50):.1f}x; "
              f"HTTP p50 / library p50 = {pct(http, 50) / pct(lib, 50):.2f}x")  # fmt: skip
        port = int(server.url.rsplit(":", 1)[1])
        cpu_small = server_cpu(server.proc.pid, port, pool, 10, args.cpu_reps)
        cpu_big = server_cpu(server.proc.pid, port, pool, n, max(5, args.cpu_reps // 5))
        print("\n2. server CPU per table request (sequential, one connection; 5 rounds)")
        for name, c in (("10 x 10", cpu_small), (f"{n} x {n}", cpu_big)):
            for label in ("new points", "repeated points"):
                lo, med = c[label]
                print(f"  {name:9s} {label:15s} min {lo:.2f} ms, median {med:.2f} ms "
                      f"(n={c['n']})")  # fmt: skip
        burst = uvloop.run(load(server.url, pool, args.clients, args.burst, 0.0, 0))
        report_load(
            f"3. 10 x 10 tables, {args.clients} closed-loop clients (no think time), "
            f"{args.burst:g} s",
            burst,
        )
        mem_burst = tree_memory(server.proc.pid)
        snap0 = snap_counts(server.url, args.workers)
        server_pids = tree_pids(server.proc.pid)  # the workers (jobs start later: not counted)
        cpu0 = cpu_seconds(server_pids)
        mixed = uvloop.run(
            load(server.url, pool, args.clients, args.duration, args.big_share, args.jobs)
        )
        mixed["server_cpu_ms"] = (cpu_seconds(server_pids) - cpu0) / max(mixed["requests"], 1) * 1e3
        report_load(
            f"4. mixed load ({1 - args.big_share:.0%} 10 x 10, {args.big_share:.0%} 100 x 100, "
            f"{args.jobs} territory jobs), {args.clients} closed-loop clients (no think time), "
            f"{args.duration:g} s",
            mixed,
        )
        mem1 = tree_memory(server.proc.pid)
        snap1 = snap_counts(server.url, args.workers)
        hit, miss = snap1["hit"] - snap0["hit"], snap1["miss"] - snap0["miss"]
        print(f"  snap cache during the mixed load: {hit:.0f} points found, {miss:.0f} snapped "
              f"({hit / max(hit + miss, 1):.0%} found, all workers)")  # fmt: skip
        print(f"  server memory ({mem1['processes']} processes): RSS after start "
              f"{mem0['rss_mb']:.0f} MB, after warm-up {mem_warm['rss_mb']:.0f} MB, after the "
              f"10 x 10 load {mem_burst['rss_mb']:.0f} MB, after the mixed load "
              f"{mem1['rss_mb']:.0f} MB; PSS {mem_warm['pss_mb']:.0f} -> "
              f"{mem_burst['pss_mb']:.0f} -> {mem1['pss_mb']:.0f} MB")  # fmt: skip
    finally:
        server.stop()

    rss_rows = []
    for w in [int(v) for v in args.rss_workers.split(",") if v.strip()]:
        s = Server(pbf, cache_dir, w, log_dir / f"server-{w}.log")
        try:
            s.wait_ready()
            warm_http(s.url, pool, n, 20 * w)
            rss_rows.append((w, tree_memory(s.proc.pid)))
        finally:
            s.stop()
    if rss_rows:
        print("\n5. server memory by worker count (after 20 warm 100 x 100 tables per worker)")
        for w, m in rss_rows:
            print(f"  {w} worker(s): {m['processes']} processes, RSS {m['rss_mb']:.0f} MB "
                  f"(sum over processes), PSS {m['pss_mb']:.0f} MB "
                  "(shared pages counted once)")  # fmt: skip

    errors_5xx = sum(v for k, v in (burst["status"] + mixed["status"]).items()
                     if k[:1] == "5" and k.isdigit())  # fmt: skip
    big_load = mixed["lat"]["100x100"]
    growth = (mem1["rss_mb"] - mem_warm["rss_mb"]) / mem_warm["rss_mb"]
    goals = [
        ("warm 100x100 p50 <= 20 ms", pct(http, 50) * 1e3, pct(http, 50) <= 0.020),
        ("100x100 p99 under load <= 100 ms", pct(big_load, 99) * 1e3, pct(big_load, 99) <= 0.1),
        (">= 30x faster than the cold CLI", pct(cli, 50) / pct(http, 50),
         pct(cli, 50) / pct(http, 50) >= 30),
        (">= 300 req/s 10x10, 50 clients", burst["requests"] / burst["wall"],
         burst["requests"] / burst["wall"] >= 300),
        ("0 responses 5xx", errors_5xx, errors_5xx == 0),
        ("RSS growth over the load <= 10 %", growth * 100, growth <= 0.10),
    ]  # fmt: skip
    print("\ngoals")
    for name, value, ok in goals:
        print(f"  {'MET ' if ok else 'MISSED'} {name}: {value:.1f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
