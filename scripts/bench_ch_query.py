"""Benchmark the two many-to-many queries on one contraction hierarchy (issue 7).

Issue 7 asks for "bucket-based, or RPHAST-style restricted sweeps — measure both if in doubt
and keep the faster". This script builds the hierarchy of a graph once
(:func:`roadnet.ch.build_hierarchy`) and times, on the same random node sets,

``rphast``
    ``Hierarchy.node_table(sources, targets, method="rphast")``, the sweeps of
    :mod:`roadnet.ch` (upward search per source, then a linear sweep over the targets'
    selection, 16 sources at once);
``bucket``
    :func:`roadnet.ch_bucket.bucket_node_table` (Knopp et al. 2007, OSRM's table service):
    a backward search per target fills buckets, a forward search per source scans them, with
    stall-on-demand;
``bucket-nostall``
    the same without stall-on-demand (``stall=False``), unless ``--no-stall-column``.

Sizes (``sources x targets``): 10x10, 100x100, 1000x1000, 5000x5000, 10000x10000, 1x10000 and
10000x10 on Porto (``--pbf``), nodes drawn without replacement from the largest strongly
connected component (seeded). With ``--synthetic`` also 2000x2000 on
:func:`roadnet.synthetic.synthetic_road_graph` (1,000,000 nodes; its hierarchy takes minutes).

Each query is timed ``--repeat`` times (default 3) and the best is printed, after a warm-up
call of every kernel on a 5 x 5 table (so loading numba's cached machine code is not timed).
Queries use all cores (``--jobs``). The script prints the best wall-clock seconds and the best
CPU seconds (``time.process_time``, all threads: the work done, less disturbed than the wall
clock when other jobs share the machine), the ratios bucket / rphast (< 1 = the bucket query
is faster) and whether both tables agree (same unreachable pairs, times
within rtol 1e-5 / atol 1e-3 s, and metres too with ``--distances``); the exit status is 1
when a check fails. It asserts no timing.

Run from the repository root::

    python scripts/bench_ch_query.py
    python scripts/bench_ch_query.py --sizes 100x100 1000x1000 --distances
    python scripts/bench_ch_query.py --synthetic
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

import roadnet
from roadnet.ch import Hierarchy, build_hierarchy
from roadnet.ch_bucket import bucket_node_table

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PBF = REPO_ROOT / ".." / "shared" / "data" / "osm" / "porto_portugal.osm.pbf"
DEFAULT_SIZES = (
    "10x10",
    "100x100",
    "1000x1000",
    "5000x5000",
    "10000x10000",
    "1x10000",
    "10000x10",
)
Table = tuple[np.ndarray, np.ndarray | None]


def _size(text: str) -> tuple[int, int]:
    try:
        a, b = text.lower().split("x")
        return int(a), int(b)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 100x200, got {text!r}") from exc


def _pick(graph: roadnet.CompiledGraph, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct random nodes of the largest strongly connected component."""
    candidates = np.flatnonzero(graph.scc == 0)
    if n > candidates.shape[0]:
        raise SystemExit(f"{n} nodes asked, the largest SCC has {candidates.shape[0]}")
    return np.sort(rng.choice(candidates, n, replace=False))


def _best(fn: Callable[[], Table], repeat: int) -> tuple[float, float, Table]:
    """Best wall-clock and best CPU seconds (all threads of the process) of ``repeat`` runs."""
    wall = cpu = np.inf
    result: Table | None = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    assert result is not None
    return wall, cpu, result


def _agree(a: Table, b: Table) -> str:
    """``"ok"`` or what differs between two tables."""
    sa, ma = a
    sb, mb = b
    if not np.array_equal(np.isinf(sa), np.isinf(sb)):
        return f"DIFFER: {int((np.isinf(sa) != np.isinf(sb)).sum())} unreachable pairs"
    fin = np.isfinite(sa)
    if not np.allclose(sa[fin], sb[fin], rtol=1e-5, atol=1e-3):
        return f"DIFFER: max |d seconds| {np.abs(sa[fin] - sb[fin]).max():.4g}"
    if ma is not None and mb is not None:
        bad = ~np.isclose(ma[fin], mb[fin], rtol=1e-4, atol=0.5)
        if bad.any():  # equal times over different roads (ties) may differ in metres
            return f"metres differ on {int(bad.sum())} of {int(fin.sum())} pairs (ties?)"
    return f"ok ({int((~fin).sum())} inf)"


def _run_graph(
    name: str,
    graph: roadnet.CompiledGraph,
    sizes: list[tuple[int, int]],
    args: argparse.Namespace,
) -> bool:
    t0 = time.perf_counter()
    h = build_hierarchy(graph)
    print(
        f"\n{name}: {graph.n_nodes:,} nodes, {graph.indices.shape[0]:,} arcs; hierarchy "
        f"{h.n_arcs:,} arcs ({h.meta['n_shortcuts']:,} shortcuts) built in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    rng = np.random.default_rng(args.seed)
    _warm_up(h, graph, rng)
    kw = {"distances": args.distances, "n_jobs": args.jobs}
    engines: dict[str, Callable[[Hierarchy, np.ndarray, np.ndarray], Table]] = {
        "rphast": lambda h_, s, t: h_.node_table(s, t, method="rphast", **kw),
        "bucket": lambda h_, s, t: bucket_node_table(h_, s, t, **kw),
    }
    if not args.no_stall_column:
        engines["bucket-nostall"] = lambda h_, s, t: bucket_node_table(h_, s, t, stall=False, **kw)
    print("wall = best wall-clock seconds, cpu = best CPU seconds of all threads; ratios of both")
    head = f"{'size':>12} " + " ".join(f"{e + ' wall':>19}" for e in engines)
    head += " " + " ".join(f"{e + ' cpu':>18}" for e in engines)
    head += f" {'bucket/rphast':>13} {'(cpu)':>6}"
    if "bucket-nostall" in engines:
        head += f" {'nostall/stall':>13} {'(cpu)':>6}"
    print(head + "  check")
    ok = True
    for ns, nt in sizes:
        src = _pick(graph, ns, rng)
        dst = _pick(graph, nt, rng)
        times: dict[str, float] = {}
        cpu: dict[str, float] = {}
        tables: dict[str, Table] = {}
        for engine, fn in engines.items():
            times[engine], cpu[engine], tables[engine] = _best(
                lambda fn=fn, src=src, dst=dst: fn(h, src, dst),  # type: ignore[misc]
                args.repeat,
            )
        checks = [_agree(tables["rphast"], tables[e]) for e in engines if e != "rphast"]
        ok &= all(not c.startswith("DIFFER") for c in checks)
        line = f"{f'{ns}x{nt}':>12} " + " ".join(f"{times[e]:19.4f}" for e in engines)
        line += " " + " ".join(f"{cpu[e]:18.4f}" for e in engines)
        line += f" {times['bucket'] / times['rphast']:13.2f} {cpu['bucket'] / cpu['rphast']:6.2f}"
        if "bucket-nostall" in engines:
            line += f" {times['bucket-nostall'] / times['bucket']:13.2f}"
            line += f" {cpu['bucket-nostall'] / cpu['bucket']:6.2f}"
        print(line + "  " + "; ".join(dict.fromkeys(checks)), flush=True)
        del tables
    return ok


def _warm_up(h: Hierarchy, graph: roadnet.CompiledGraph, rng: np.random.Generator) -> None:
    """Load every kernel (numba's on-disk cache) before anything is timed."""
    nodes = _pick(graph, 5, rng)
    for distances in (False, True):
        h.node_table(nodes, nodes, distances=distances)
        h.node_table(nodes, nodes[:1], distances=distances)
        for stall in (True, False):
            bucket_node_table(h, nodes, nodes, distances=distances, stall=stall)
            bucket_node_table(h, nodes[:1], nodes, distances=distances, stall=stall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pbf", type=Path, default=DEFAULT_PBF, help="OSM extract (Porto)")
    parser.add_argument("--sizes", type=_size, nargs="+", default=[_size(s) for s in DEFAULT_SIZES])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is shown")
    parser.add_argument("--jobs", type=int, default=-1, help="threads (-1 = all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distances", action="store_true", help="also metres")
    parser.add_argument(
        "--no-stall-column", action="store_true", help="skip the bucket query without stalling"
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="also 2000x2000 on the 1M-node synthetic graph"
    )
    parser.add_argument("--skip-osm", action="store_true", help="only the synthetic graph")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(
        f"bench_ch_query: {platform.python_version()}, numpy {np.__version__}, numba "
        f"{numba.__version__}, {os.cpu_count()} CPUs, {numba.config.NUMBA_NUM_THREADS} numba "  # type: ignore[attr-defined]
        f"threads, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; best of "
        f"{args.repeat}, distances={args.distances}"
    )
    ok = True
    if not args.skip_osm:
        t0 = time.perf_counter()
        graph = roadnet.graph_from_pbf(args.pbf)
        print(f"graph of {args.pbf.name} in {time.perf_counter() - t0:.1f} s")
        ok &= _run_graph(args.pbf.name, graph, args.sizes, args)
    if args.synthetic:
        from roadnet.synthetic import synthetic_road_graph

        t0 = time.perf_counter()
        syn = synthetic_road_graph(1_000_000, seed=0)
        print(f"\nsynthetic graph in {time.perf_counter() - t0:.1f} s")
        ok &= _run_graph("synthetic 1M", syn, [(2000, 2000)], args)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("all checks ok" if ok else "CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
