"""Benchmark the distributed precompute into a Zarr matrix store against the single-process path.

In one run, on one machine, this script

1. builds (or loads from a fresh cache folder) the road graph of ``--pbf`` (Porto by default)
   and its contraction hierarchy, and draws ``--n`` random points near the roads of the largest
   strongly connected component (seeded), saved as lon/lat;
2. runs the **single-process** path in a fresh child process: ``precompute_matrix(graph, points,
   out=single.zarr, block_rows=...)`` with all cores as hierarchy threads (what
   ``roadnet precompute --out`` does without ``--dask``);
3. runs the **Dask** path in another fresh child process: a ``LocalCluster`` of ``--workers``
   worker processes (1 thread each) on 127.0.0.1 and ``precompute_matrix(..., client=...,
   out=dask.zarr)`` (what ``--dask local`` does);
4. checks the two stores are identical (recorded chunk checksums, then every value, row block
   by row block) and prints wall time, cells/s, peak RSS of each worker and of each client
   process, bytes written, and the ratio Dask / single-process.

Peak RSS is each process's own high-water mark (``ru_maxrss``; the children start fresh, so it
covers loading the graph from the cache, snapping the points and the precompute). Wall time is
the precompute call only; the cluster start-up is printed separately. Nothing is asserted on
time: the figures are printed.

Run from the repository root::

    python scripts/bench_dask.py                   # 30,000 x 30,000 (3.6 GB per store)
    python scripts/bench_dask.py --n 5000          # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import code_version  # scripts/ helper

import roadnet

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PBF = REPO_ROOT / ".." / "shared" / "data" / "osm" / "porto_portugal.osm.pbf"
JITTER_M = 30.0
_M_PER_DEG = 111_320.0


def _peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports kilobytes)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _worker_peak() -> dict[str, int]:
    import os as _os

    return {"pid": _os.getpid(), "peak_rss": _peak_rss_bytes()}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def _load_graph(args: argparse.Namespace) -> roadnet.CompiledGraph:
    """The graph of ``--pbf`` from the cache folder (built and stored on the first call)."""
    from roadnet.graph_cache import cached_graph
    from roadnet.sources import file_sha256, graph_from_pbf
    from roadnet.speed import SpeedProfile

    profile = SpeedProfile.default()
    g, _ = cached_graph(
        {"type": "pbf", "sha256": file_sha256(args.pbf)},
        lambda: graph_from_pbf(args.pbf, profile=profile),
        profile,
    )
    return g


def _load(args: argparse.Namespace) -> tuple[roadnet.CompiledGraph, roadnet.SnappedPoints]:
    """The graph (from the cache folder) and the snapped points saved by the parent."""
    g = _load_graph(args)
    xy = np.load(args.work / "points.npy")
    return g, roadnet.snap_points(g, xy[:, 0], xy[:, 1])


def _child(args: argparse.Namespace) -> None:
    """One measured path, in a fresh process; prints one JSON line."""
    from roadnet.cached import precompute_matrix

    roadnet.settings.cache_dir = args.work / "cache"
    g, pts = _load(args)
    out = args.work / f"{args.role}.zarr"
    result: dict[str, Any] = {"role": args.role}
    kw = {"block_rows": args.block_rows, "block_cols": args.block_cols, "engine": "ch"}
    if args.role == "single":
        t0 = time.perf_counter()
        precompute_matrix(g, pts, out=out, n_jobs=-1, **kw)
        result["wall"] = time.perf_counter() - t0
    else:
        import distributed

        from roadnet.precompute import local_cluster

        t0 = time.perf_counter()
        cluster = local_cluster(args.workers, threads_per_worker=args.threads, dashboard=False)
        client = distributed.Client(cluster)
        client.wait_for_workers(args.workers)
        result["startup"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with distributed.get_task_stream(client) as stream:
            precompute_matrix(g, pts, out=out, client=client, **kw)
        result["wall"] = time.perf_counter() - t0
        busy: dict[str, float] = {}
        for task in stream.data:
            if str(task.get("key", "")).startswith("roadnet-block-"):
                spent = sum(s["stop"] - s["start"] for s in task["startstops"])
                busy[task["worker"]] = busy.get(task["worker"], 0.0) + spent
        result["busy"] = busy
        result["workers"] = list(client.run(_worker_peak).values())
        client.close()
        cluster.close()
    result["client_peak_rss"] = _peak_rss_bytes()
    print(json.dumps(result), flush=True)


def _pick_points(graph: roadnet.CompiledGraph, n: int, seed: int) -> np.ndarray:
    """``(n, 2)`` lon/lat of distinct points within JITTER_M of largest-SCC nodes."""
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(graph.scc == 0)
    want = min(int(n * 1.2) + 20, candidates.shape[0])
    nodes = rng.choice(candidates, size=want, replace=False)
    radius = JITTER_M * np.sqrt(rng.random(want))
    angle = rng.random(want) * 2 * np.pi
    lat = graph.lat[nodes] + radius * np.cos(angle) / _M_PER_DEG
    lon = graph.lon[nodes] + radius * np.sin(angle) / (_M_PER_DEG * np.cos(np.radians(lat)))
    snapped = roadnet.snap_points(graph, lon, lat)
    _, first = np.unique(snapped.labels, return_index=True)
    keep = np.zeros(want, bool)
    keep[first] = True
    keep &= (snapped.component == 0) & ~snapped.flagged
    idx = np.flatnonzero(keep)
    if idx.shape[0] < n:
        raise SystemExit(f"only {idx.shape[0]} usable points near the roads; lower --n")
    return np.column_stack([lon[idx[:n]], lat[idx[:n]]])


def _run_child(args: argparse.Namespace, role: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--role", role, "--work", str(args.work)]
    cmd += ["--pbf", str(args.pbf), "--n", str(args.n), "--block-rows", str(args.block_rows)]
    cmd += ["--workers", str(args.workers), "--threads", str(args.threads)]
    if args.block_cols is not None:
        cmd += ["--block-cols", str(args.block_cols)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit(f"{role} run failed with exit status {res.returncode}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _compare(a: Path, b: Path) -> str:
    from roadnet.zarr_store import open_matrix_store

    sa, sb = open_matrix_store(a), open_matrix_store(b)
    if not (sa.complete and sb.complete):
        return "FAILED: a store is incomplete"
    if not np.array_equal(sa.recorded_checksums(), sb.recorded_checksums()):
        return "FAILED: chunk checksums differ"
    nan = 0
    for rb in range(sa.n_row_blocks):
        r0, r1 = sa.row_block_range(rb)
        x, y = sa.read(slice(r0, r1)), sb.read(slice(r0, r1))
        if not np.array_equal(x, y):
            return f"FAILED: row block {rb} differs"
        nan += int(np.isnan(x).sum())
    if nan:
        return f"FAILED: {nan} cells not computed"
    return (
        f"identical ({sa.n_row_blocks} x {sa.n_col_blocks} chunks of {sa.block_rows} x "
        f"{sa.block_cols}, 0 missing cells)"
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pbf", type=Path, default=DEFAULT_PBF)
    p.add_argument("--n", type=int, default=30_000, help="points (the table is n x n)")
    p.add_argument("--block-rows", type=int, default=1000, help="rows per task and chunk")
    p.add_argument(
        "--block-cols", type=int, default=None, help="columns per chunk (default: the store's)"
    )
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    p.add_argument("--threads", type=int, default=1, help="threads per worker process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None, help="folder for the stores (temp)")
    p.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    p.add_argument("--role", choices=["single", "dask"], default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.role is not None:
        _child(args)
        return 0
    if not args.pbf.is_file():
        raise SystemExit(f"PBF not found: {args.pbf}")
    import dask
    import distributed
    import zarr

    from roadnet.graph_cache import cached_hierarchy

    own = args.work is None
    args.work = Path(tempfile.mkdtemp(prefix="bench_dask-")) if own else args.work
    args.work.mkdir(parents=True, exist_ok=True)
    print(
        f"bench_dask: Python {platform.python_version()}, zarr {zarr.__version__}, dask "
        f"{dask.__version__}, distributed {distributed.__version__}, {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; code "
        f"{code_version('roadnet', 'cache', 'scripts/bench_dask.py')}"
    )
    try:
        roadnet.settings.cache_dir = args.work / "cache"
        t0 = time.perf_counter()
        g = _load_graph(args)
        cached_hierarchy(g)
        print(
            f"{args.pbf.name}: {g.n_nodes:,} nodes; graph + hierarchy ready in "
            f"{time.perf_counter() - t0:.1f} s (cached for both runs, not timed below)"
        )
        np.save(args.work / "points.npy", _pick_points(g, args.n, args.seed))
        cells = args.n * args.n
        print(
            f"table {args.n:,} x {args.n:,} = {cells:,} cells, row blocks of {args.block_rows} "
            f"(= {-(-args.n // args.block_rows)} tasks), float32 -> {_gb(cells * 4)} of values "
            "per store"
        )
        single = _run_child(args, "single")
        s_bytes = _size(args.work / "single.zarr")
        dask_run = _run_child(args, "dask")
        d_bytes = _size(args.work / "dask.zarr")
        check = _compare(args.work / "single.zarr", args.work / "dask.zarr")
        rows = [
            ("single process", single, s_bytes),
            (f"dask local ({args.workers} workers)", dask_run, d_bytes),
        ]
        print(f"\n{'path':<26}{'wall s':>9}{'cells/s':>14}{'client peak RSS':>17}"
              f"{'bytes written':>15}")  # fmt: skip
        for name, r, nbytes in rows:
            print(
                f"{name:<26}{r['wall']:>9.1f}{cells / r['wall']:>14,.0f}"
                f"{_gb(r['client_peak_rss']):>17}{_gb(nbytes):>15}"
            )
        print(f"dask cluster start-up (not in wall): {dask_run['startup']:.1f} s")
        for w in dask_run["workers"]:
            print(f"worker pid {w['pid']}: peak RSS {_gb(w['peak_rss'])}")
        for addr, spent in sorted(dask_run["busy"].items()):
            print(
                f"worker {addr}: busy in block tasks {spent:.1f} s = "
                f"{100 * spent / dask_run['wall']:.0f} % of the wall time"
            )
        worst = max(w["peak_rss"] for w in dask_run["workers"])
        print(
            f"\nratio dask / single-process wall: {dask_run['wall'] / single['wall']:.2f} "
            f"(goal <= 1.3); largest worker peak RSS {_gb(worst)} (goal <= 2 GB) while the store "
            f"grew to {_gb(d_bytes)}"
        )
        print(f"check: {check}")
        print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0 if check.startswith("identical") else 1
    finally:
        if own and not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
