"""Server CPU per OSRM table request: this checkout against a baseline checkout, same run.

Starts one ``roadnet serve`` (1 worker, snap cache on) from each repository root (this one and
``--baseline``, e.g. a ``git worktree`` of main) on 127.0.0.1, then, in ``--rounds`` rounds that
alternate between the two servers (so that both see the same machine load), sends 10 x 10 and
100 x 100 tables one at a time on one keep-alive connection and reads the server's CPU time
(user + system, ``/proc/<pid>/stat``) per request, first for new points, then for the same
points again (found in the snap cache); see ``server_cpu`` in ``scripts/bench_service.py``.
Prints the medians over the rounds and the ratio baseline / this checkout. CPU time depends far
less on what else runs on the machine than latency does, though a busy machine inflates both
servers' figures (shared caches). Bounded; stops by itself; asserts nothing.

Run from the repository root::

    git worktree add /tmp/roadnet-main main
    python scripts/bench_service_cpu.py --baseline /tmp/roadnet-main --cache-dir /tmp/cache
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_service import DEFAULT_PBF, REPO_ROOT, PointPool, Server, free_port, server_cpu

import roadnet
from roadnet.graph_cache import load_road_graph


def start(root: Path, pbf: Path, cache_dir: Path, log: Path) -> Server:
    """A 1-worker server running the code of ``root``."""
    server = Server.__new__(Server)
    server.port = free_port()
    server.url = f"http://127.0.0.1:{server.port}"
    server.workers = 1
    cmd = [sys.executable, "-m", "territory.cli", "serve", "--pbf", str(pbf),
           "--port", str(server.port), "--cache-dir", str(cache_dir), "--workers", "1",
           "--jobs-dir", str(cache_dir / f"cpu-jobs-{server.port}")]  # fmt: skip
    server.log = log.open("wb")
    server.proc = subprocess.Popen(
        cmd, env={**os.environ, "PYTHONPATH": str(root)}, cwd=root,
        stdout=server.log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="repository root to compare")
    ap.add_argument("--pbf", type=Path, default=DEFAULT_PBF)
    ap.add_argument("--cache-dir", type=Path, required=True, help="holds the graph and hierarchy")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=500, help="10 x 10 requests per round and pass")
    args = ap.parse_args()
    pbf, cache_dir = args.pbf.resolve(), args.cache_dir.resolve()
    roots = {"baseline": args.baseline.resolve(), "this": REPO_ROOT}
    with roadnet.settings.override(cache_dir=cache_dir):
        g, _ = load_road_graph(pbf=pbf)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-service-cpu-"))
    servers = {k: start(r, pbf, cache_dir, log_dir / f"{k}.log") for k, r in roots.items()}
    figures: dict[str, dict[tuple[int, str], list[float]]] = {k: {} for k in roots}
    try:
        for s in servers.values():
            s.wait_ready()
        print(f"load average at the start {os.getloadavg()}")
        for rnd in range(args.rounds):
            for name, s in servers.items():
                pool = PointPool(g, rnd)  # the same tables for both servers
                for n, reps in ((10, args.reps), (100, max(5, args.reps // 5))):
                    c = server_cpu(s.proc.pid, s.port, pool, n, reps)
                    for label in ("new points", "repeated points"):
                        figures[name].setdefault((n, label), []).append(c[label][1])
        print(f"load average at the end {os.getloadavg()}")
    finally:
        for s in servers.values():
            s.stop()
    print(
        f"server CPU ms per request, median of {args.rounds} rounds (baseline {roots['baseline']})"
    )
    for key in figures["this"]:
        base, this = np.median(figures["baseline"][key]), np.median(figures["this"][key])
        n, label = key
        print(f"  {n:3d} x {n:<3d} {label:15s} baseline {base:5.2f}  this {this:5.2f}  "
              f"baseline / this {base / this:4.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
