"""Benchmark node-to-node drive-time tables: our contraction hierarchy against peers (issue 7).

One run times, for every case, each engine on the same random sources and targets (distinct
nodes of the largest strongly connected component, seeded) of one graph:

``ours``
    :func:`roadnet.ch.build_hierarchy` (build), then ``Hierarchy.node_table(sources, targets)``
    (query; all cores unless ``--ours-jobs``; ``method="auto"``: RPHAST sweeps or buckets by
    the table's shape, the note says which). A 2 x 2 table per method is computed once before
    the timed query so that loading numba's compiled kernels is not counted as query time (it
    is reported as "first call").
``scipy``
    Our existing engine's cost: ``scipy.sparse.csgraph.dijkstra(csr, indices=chunk)`` on the
    CSR, sources in chunks of ``settings.chunk_size`` over ``--jobs`` forked worker processes
    (as :mod:`roadnet.matrix` does), then the target columns. Build = the float64 CSR. It is the
    reference of every correctness check (float64 values).
``pyroutingkit``
    RoutingKit's customizable contraction hierarchy: ``CCH.build_topology`` (nested dissection
    by inertial flow) + ``CCH.customize_weights`` (build), then
    ``CCH.distances_many_to_many`` (query). RoutingKit takes integer weights: arc seconds are
    rounded to whole milliseconds, its ``INF_WEIGHT`` marks "no route".
``pandana``
    pandana's contraction hierarchy: ``pandana.Network(..., twoway=False)`` (build), then
    ``shortest_path_lengths`` on every (source, target) pair (query). pandana also works in
    whole milliseconds; its 4294967.295 marks "no route".
``igraph``
    ``igraph.Graph`` construction with weights (build), then
    ``Graph.distances(sources, targets, weights, mode="out")`` (query, Dijkstra from each
    source, one thread).

Cases (``--case GRAPH:N``, repeatable; default all four): ``porto:1000``, ``porto:5000``,
``porto:10000`` (ours and scipy only by default) and ``synthetic:2000`` on the 1M-node
graph of :func:`roadnet.synthetic.synthetic_road_graph` (``--synthetic-nodes``). Porto is the
compiled graph of ``--pbf``, served from roadnet's cache as the CLI does (built and cached on
the first run).

Every engine runs in its own fresh process (this script re-invoked with a hidden flag) on the
graph saved as ``.npz``: **peak memory** is the high-water mark of build + query, with the
loaded graph resident (its share is shown as "base"; the transient of loading it is not
counted): the larger of the process's own ``VmHWM`` (reset after loading) and the proportional
set size (PSS) of its whole process tree sampled every 0.1 s, so that forked workers count once
and are not missed. Each engine also reports CPU seconds (all threads and processes), which
are less sensitive than wall time to other load on the machine.

Slow peers are **extrapolated**: they compute the first R rows (all targets) and their query
time is scaled by N / R; the table says so in its "rows" column and marks the figure with
``~``. Defaults: scipy and igraph run all rows up to N = 5000 and N = 1000 on graphs up to
200k nodes, pandana up to 1M pairs; otherwise ``--sample-rows`` rows (1000 on graphs up to 200k
nodes, 200 above). ``--full`` runs every engine on every row.

**Correctness**: every engine's first rows (up to ``--check-rows``, and only rows that scipy
computed too) are compared with scipy's: the inf pattern must be equal and
``|t - t_scipy| <= atol + rtol * t_scipy``, with atol 1e-3 s, rtol 1e-5 for float engines
(ours returns float32) and atol 0.05 s, rtol 1e-4 for the millisecond engines (rounding every
arc to whole ms moves a path by up to 0.5 ms per arc).

It prints figures and ratios measured in the same run and a goals block (one verdict per
performance goal: PASS, MISS or n/a when its case was not run); it asserts
no timing. The exit status is 1 when a correctness check fails or an engine crashes.

Run from the repository root::

    python scripts/bench_engines.py                              # all cases, all engines
    python scripts/bench_engines.py --case porto:1000            # one case
    python scripts/bench_engines.py --case porto:1000 --engines scipy,pyroutingkit,igraph
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from _provenance import code_version  # scripts/ helper

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PBF = REPO_ROOT / ".." / "shared" / "data" / "osm" / "porto_portugal.osm.pbf"

#: engines in the order they run (scipy first: it is the reference)
ENGINES = ("scipy", "ours", "pyroutingkit", "pandana", "igraph")
#: engines that route on whole milliseconds
MS_ENGINES = frozenset({"pyroutingkit", "pandana"})
DEFAULT_CASES = ("porto:1000", "porto:5000", "porto:10000", "synthetic:2000")
#: pandana's "no route" value (UINT_MAX milliseconds)
PANDANA_UNREACHABLE = 4294967.295
#: (atol s, rtol) of the checks against scipy
TOL_FLOAT = (1e-3, 1e-5)
TOL_MS = (0.05, 1e-4)
#: graphs above this many nodes are "large" (fewer sampled rows for the Dijkstra peers)
LARGE_GRAPH = 200_000
#: pandana runs all pairs up to this many, else a row sample of about this many pairs
PANDANA_PAIRS = 1_000_000
#: performance goals of the routing engine (the goals block; docs/benchmarks.md)
GOAL_VS_PRK = 2.0
GOAL_VS_SCIPY = 25.0
GOAL_10K_S = 10.0
GOAL_1M_S = 10.0
GOAL_1M_MB = 4096.0
GOAL_BUILD_S = 10.0
#: queries are repeated (best kept) only while their total stays under this many seconds
REPEAT_BUDGET_S = 10.0
ENGINE_LABEL = {
    "ours": "ours (roadnet CH)",
    "scipy": "scipy Dijkstra",
    "pyroutingkit": "pyroutingkit CCH",
    "pandana": "pandana CH",
    "igraph": "igraph Dijkstra",
}


# =========================================================================== worker side
# Each engine runs in a fresh process: ``bench_engines.py --_worker SPEC.json``. It loads the
# graph and the nodes, builds, queries, and writes its timings (JSON) and first rows (.npz).


def _maxrss_mb(who: int) -> float:
    """Peak resident set size in MB (``ru_maxrss`` is in KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(who).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _current_rss_mb() -> float:
    """Current resident set size in MB (Linux ``/proc/self/status``; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _peak_rss_mb() -> float:
    """This process's RSS high-water mark in MB since the last reset (``VmHWM``).

    ``ru_maxrss`` is not used for the engine's own peak: after ``fork``/``vfork`` + ``exec`` it
    inherits the launching process's high-water mark.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _maxrss_mb(resource.RUSAGE_SELF)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads) and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _tails(indptr: np.ndarray) -> np.ndarray:
    """Tail node of every CSR arc."""
    return np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.int64), np.diff(indptr))


# ``Query`` computes the table of the given sources (rows) to all targets.
Query = Callable[[np.ndarray], np.ndarray]


def _build_scipy(graph: Any, targets: np.ndarray, spec: dict[str, Any]) -> tuple[Query, dict]:
    csr = graph.csr("seconds")
    jobs = int(spec["jobs"])
    chunk = int(spec["chunk"])

    def query(src: np.ndarray) -> np.ndarray:
        tasks = [src[s : s + chunk] for s in range(0, src.shape[0], chunk)]
        if jobs <= 1 or len(tasks) <= 1:
            _scipy_init(csr, targets)
            return np.vstack([_scipy_chunk(t) for t in tasks])
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # fork, as roadnet.matrix does on Linux: the workers inherit the CSR without pickling
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_scipy_init, initargs=(csr, targets)
        ) as pool:
            return np.vstack(list(pool.map(_scipy_chunk, tasks)))

    return query, {"note": f"{jobs} process(es), chunks of {chunk} sources"}


_SCIPY_STATE: dict[str, Any] = {}


def _scipy_init(csr: Any, targets: np.ndarray) -> None:
    _SCIPY_STATE.update(csr=csr, targets=targets)


def _scipy_chunk(src: np.ndarray) -> np.ndarray:
    from scipy.sparse.csgraph import dijkstra

    dist = dijkstra(_SCIPY_STATE["csr"], indices=src)
    return np.ascontiguousarray(dist[:, _SCIPY_STATE["targets"]])


def _build_ours(graph: Any, targets: np.ndarray, spec: dict[str, Any]) -> tuple[Query, dict]:
    from roadnet.ch import bucket_pays, build_hierarchy

    t0 = time.perf_counter()
    h = build_hierarchy(graph, progress=None)
    build_s = time.perf_counter() - t0
    n_jobs = spec.get("ours_jobs")
    # first call: loads (or compiles) numba kernels; not part of the timed query
    t0 = time.perf_counter()
    h.node_table(targets[:2], targets[:2], n_jobs=n_jobs, method="rphast")
    h.node_table(targets[:2], targets[:2], n_jobs=n_jobs, method="bucket")
    first_s = time.perf_counter() - t0
    method = "bucket" if bucket_pays(len(targets), len(targets), h.n_nodes) else "rphast"

    def query(src: np.ndarray) -> np.ndarray:
        sec, _ = h.node_table(src, targets, n_jobs=n_jobs)
        return np.asarray(sec)

    note = (
        f"n_jobs={n_jobs}; method auto -> {method}; first 2x2 calls {first_s:.2f} s "
        "(kernel load, untimed)"
    )
    return query, {"build_s": build_s, "note": note}


def _build_pyroutingkit(
    graph: Any, targets: np.ndarray, spec: dict[str, Any]
) -> tuple[Query, dict]:
    import pyroutingkit

    n = graph.n_nodes
    t0 = time.perf_counter()
    tail = _tails(graph.indptr).astype(np.uint32)
    head = graph.indices.astype(np.uint32)
    weights = np.rint(graph.seconds.astype(np.float64) * 1000.0).astype(np.uint32)
    cch = pyroutingkit.CCH()
    cch.build_topology(tail, head, graph.lat.astype(np.float32), graph.lon.astype(np.float32), n)
    t1 = time.perf_counter()
    cch.customize_weights(weights)
    t2 = time.perf_counter()
    tgt = targets.astype(np.uint32)
    inf_weight = int(pyroutingkit.INF_WEIGHT)

    def query(src: np.ndarray) -> np.ndarray:
        ms = np.asarray(cch.distances_many_to_many(src.astype(np.uint32), tgt))
        out = ms.astype(np.float64) / 1000.0
        out[ms >= inf_weight] = np.inf
        return out

    note = f"topology {t1 - t0:.2f} s + customization {t2 - t1:.3f} s; weights in whole ms"
    return query, {"build_s": t2 - t0, "note": note}


def _build_pandana(graph: Any, targets: np.ndarray, spec: dict[str, Any]) -> tuple[Query, dict]:
    import pandana
    import pandas as pd

    t0 = time.perf_counter()
    net = pandana.Network(
        pd.Series(graph.lon),
        pd.Series(graph.lat),
        pd.Series(_tails(graph.indptr)),
        pd.Series(graph.indices.astype(np.int64)),
        pd.DataFrame({"seconds": graph.seconds.astype(np.float64)}),
        twoway=False,
    )
    build_s = time.perf_counter() - t0
    nt = targets.shape[0]

    def query(src: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns listing every unreachable pair
            lens = net.shortest_path_lengths(np.repeat(src, nt), np.tile(targets, src.shape[0]))
        out = np.asarray(lens, dtype=np.float64).reshape(src.shape[0], nt)
        out[out >= PANDANA_UNREACHABLE] = np.inf
        return out

    return query, {"build_s": build_s, "note": "pairwise shortest_path_lengths; weights in ms"}


def _build_igraph(graph: Any, targets: np.ndarray, spec: dict[str, Any]) -> tuple[Query, dict]:
    import igraph

    t0 = time.perf_counter()
    edges = np.column_stack((_tails(graph.indptr), graph.indices.astype(np.int64)))
    g = igraph.Graph(n=graph.n_nodes, edges=edges.tolist(), directed=True)
    g.es["weight"] = graph.seconds.astype(np.float64).tolist()
    build_s = time.perf_counter() - t0
    tgt = targets.tolist()

    def query(src: np.ndarray) -> np.ndarray:
        d = g.distances(source=src.tolist(), target=tgt, weights="weight", mode="out")
        return np.asarray(d, dtype=np.float64)

    return query, {"build_s": build_s, "note": "Dijkstra per source, 1 thread"}


_BUILDERS: dict[str, Callable[[Any, np.ndarray, dict[str, Any]], tuple[Query, dict]]] = {
    "scipy": _build_scipy,
    "ours": _build_ours,
    "pyroutingkit": _build_pyroutingkit,
    "pandana": _build_pandana,
    "igraph": _build_igraph,
}


def _worker(spec_path: Path) -> int:
    """Run one engine as described by the JSON file ``spec_path``; write its results."""
    spec = json.loads(spec_path.read_text())
    from roadnet.graph import load_graph

    t0 = time.perf_counter()
    graph = load_graph(spec["graph"])
    with np.load(spec["nodes"]) as data:
        sources, targets = data["sources"], data["targets"]
    load_s = time.perf_counter() - t0
    base_mb = _current_rss_mb()
    _reset_peak_rss()  # the peak is build + query with the graph loaded, not the load itself
    if spec.get("loaded_flag"):
        Path(spec["loaded_flag"]).touch()  # the parent's PSS sampling starts now
    engine = spec["engine"]
    rows = int(spec["rows"])

    c0, t0 = _cpu_seconds(), time.perf_counter()
    query, info = _BUILDERS[engine](graph, targets, spec)
    build_s = info.get("build_s") or (time.perf_counter() - t0)
    build_cpu_s = _cpu_seconds() - c0

    times: list[float] = []
    cpu: list[float] = []
    table = np.empty((0, 0))
    # best of up to ``repeat`` queries; no further repeat once the queries took REPEAT_BUDGET_S
    while len(times) < int(spec["repeat"]) and sum(times) < REPEAT_BUDGET_S:
        del table
        c0, t0 = _cpu_seconds(), time.perf_counter()
        table = query(sources[:rows])
        times.append(time.perf_counter() - t0)
        cpu.append(_cpu_seconds() - c0)
    best = int(np.argmin(times))
    result = {
        "engine": engine,
        "load_s": load_s,
        "base_mb": base_mb,
        "build_s": build_s,
        "build_cpu_s": build_cpu_s,
        "query_s": times[best],
        "query_runs": times,
        "cpu_s": cpu[best],
        "note": info.get("note", ""),
        "self_mb": _peak_rss_mb(),
        "workers_mb": _maxrss_mb(resource.RUSAGE_CHILDREN),
        "shape": list(table.shape),
    }
    if table.shape != (rows, targets.shape[0]):
        raise RuntimeError(
            f"{engine} returned shape {table.shape}, expected {(rows, len(targets))}"
        )
    np.save(spec["out"], np.ascontiguousarray(table[: int(spec["save_rows"])]))
    Path(spec["out"] + ".json").write_text(json.dumps(result))
    return 0


# =========================================================================== parent side
def _tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux ``/proc/PID/task/TID/children``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def _tree_pss_mb(pid: int) -> float:
    """Proportional set size of ``pid``'s process tree in MB (shared pages counted once)."""
    total_kb = 0
    for p in _tree_pids(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
                        break
        except OSError:
            continue
    return total_kb / 1024


@dataclasses.dataclass
class Run:
    """One engine on one case."""

    engine: str
    rows: int
    n: int
    result: dict[str, Any] | None = None
    tree_mb: float = float("nan")
    error: str = ""
    table: np.ndarray | None = None
    check: str = "-"
    check_ok: bool | None = None
    load: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def extrapolated(self) -> bool:
        return self.rows < self.n

    @property
    def query_s(self) -> float:
        """Query seconds for all N rows (scaled linearly when extrapolated)."""
        if self.result is None:
            return float("nan")
        return float(self.result["query_s"]) * self.n / self.rows

    @property
    def cpu_s(self) -> float:
        """CPU seconds (all threads and processes) of the query, scaled like ``query_s``."""
        if self.result is None:
            return float("nan")
        return float(self.result["cpu_s"]) * self.n / self.rows

    @property
    def build_s(self) -> float:
        return float(self.result["build_s"]) if self.result else float("nan")

    @property
    def peak_mb(self) -> float:
        """Build + query peak: own high-water mark or the sampled tree PSS, the larger."""
        if self.result is None:
            return float("nan")
        return max(float(self.result["self_mb"]), self.tree_mb)


def _run_engine(
    engine: str,
    rows: int,
    n: int,
    graph_path: Path,
    nodes_path: Path,
    work: Path,
    tag: str,
    args: argparse.Namespace,
    save_rows: int,
) -> Run:
    run = Run(engine=engine, rows=rows, n=n, load=_loadavg())
    out = work / f"{tag}-{engine}.npy"
    spec = {
        "engine": engine,
        "graph": str(graph_path),
        "nodes": str(nodes_path),
        "rows": rows,
        "save_rows": save_rows,
        "out": str(out),
        "jobs": args.jobs,
        "ours_jobs": args.ours_jobs,
        "chunk": args.chunk,
        "repeat": args.repeat,
    }
    loaded_flag = work / f"{tag}-{engine}.loaded"
    spec["loaded_flag"] = str(loaded_flag)
    spec_path = work / f"{tag}-{engine}.json"
    spec_path.write_text(json.dumps(spec))
    log_path = work / f"{tag}-{engine}.log"
    t0 = time.perf_counter()
    with open(log_path, "w") as log_fh:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--_worker", str(spec_path)],
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,  # its own process group: a timeout ends its workers too
        )
        peak = 0.0
        while proc.poll() is None:
            if loaded_flag.exists():  # graph loaded: build + query from here on
                peak = max(peak, _tree_pss_mb(proc.pid))
            if time.perf_counter() - t0 > args.timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                run.error = f"timed out after {args.timeout:.0f} s (--timeout)"
                return run
            time.sleep(0.1)
    run.tree_mb = peak
    res_path = Path(str(out) + ".json")
    if proc.returncode != 0 or not res_path.is_file():
        tail = log_path.read_text().strip().splitlines()[-3:]
        run.error = f"exit {proc.returncode}: " + " | ".join(tail)
        return run
    run.result = json.loads(res_path.read_text())
    run.table = np.load(out)
    return run


def _compare(run: Run, ref: Run) -> None:
    """Check ``run``'s rows against the reference rows (inf pattern, tolerance)."""
    if run.table is None or ref.table is None:
        run.check = "no reference" if ref.table is None else "-"
        return
    r = min(run.table.shape[0], ref.table.shape[0])
    a = run.table[:r].astype(np.float64)
    b = ref.table[:r].astype(np.float64)
    inf_a, inf_b = np.isinf(a), np.isinf(b)
    inf_bad = int(np.sum(inf_a != inf_b))
    both = ~inf_a & ~inf_b
    diff = np.abs(a[both] - b[both])
    atol, rtol = TOL_MS if run.engine in MS_ENGINES else TOL_FLOAT
    bad = int(np.sum(diff > atol + rtol * np.abs(b[both])))
    max_abs = float(diff.max()) if diff.size else 0.0
    n_inf = int(inf_b.sum())
    run.check_ok = inf_bad == 0 and bad == 0
    verdict = "OK" if run.check_ok else "FAIL"
    run.check = (
        f"{verdict} {r} rows: max|d| {max_abs:.2g} s, "
        + (f"inf pattern equal ({n_inf} inf)" if inf_bad == 0 else f"{inf_bad} inf mismatches")
        + (f", {bad} beyond tol" if bad else "")
    )


def _plan_rows(engine: str, graph_kind: str, n: int, n_nodes: int, args: argparse.Namespace) -> int:
    """Rows an engine computes (N = all; fewer = extrapolated)."""
    if args.full or engine in ("ours", "pyroutingkit"):
        return n
    large = n_nodes > LARGE_GRAPH
    sample = args.sample_rows or (200 if large else 1000)
    if engine == "scipy":
        full = not large and n <= 5000
    elif engine == "igraph":
        full = not large and n <= 1000
    else:  # pandana: pairwise queries
        full = n * n <= PANDANA_PAIRS
        sample = args.sample_rows or max(1, PANDANA_PAIRS // n)
    return n if full else min(n, sample)


_MODULES = {"pyroutingkit": "pyroutingkit", "pandana": "pandana", "igraph": "igraph"}


def _installed(engine: str) -> bool:
    module = _MODULES.get(engine)
    return module is None or importlib.util.find_spec(module) is not None


def _default_engines(graph_kind: str, n: int) -> list[str]:
    """All engines (peers only when installed: ``pip install -e ".[bench]"``)."""
    if graph_kind == "porto" and n > 5000:
        return ["scipy", "ours"]
    missing = [e for e in ENGINES if not _installed(e)]
    if missing:
        print(f'not installed, skipped: {", ".join(missing)} (pip install -e ".[bench]")')
    return [e for e in ENGINES if _installed(e)]


def _pick_nodes(scc: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sources and targets: each ``n`` distinct random nodes of the largest SCC (seeded)."""
    candidates = np.flatnonzero(scc == 0)
    if n > candidates.shape[0]:
        raise SystemExit(f"N = {n} exceeds the {candidates.shape[0]} nodes of the largest SCC")
    rng = np.random.default_rng(seed)
    sources = rng.choice(candidates, size=n, replace=False)
    targets = rng.choice(candidates, size=n, replace=False)
    return sources.astype(np.int64), targets.astype(np.int64)


# --------------------------------------------------------------------------- graphs
def _porto_graph(pbf: Path) -> tuple[Any, str]:
    """Porto's compiled graph through roadnet's cache, as the CLI loads ``--pbf``."""
    from roadnet import sources
    from roadnet.graph_cache import cached_graph
    from roadnet.speed import SpeedProfile

    profile = SpeedProfile.default()
    t0 = time.perf_counter()
    graph, hit = cached_graph(
        {"type": "pbf", "sha256": sources.file_sha256(pbf)},
        lambda: sources.graph_from_pbf(pbf, profile=profile),
        profile,
    )
    how = "from roadnet's cache" if hit else "built from the PBF and cached"
    return graph, f"{how} in {time.perf_counter() - t0:.2f} s"


def _synthetic_graph(n_nodes: int) -> tuple[Any, str]:
    from roadnet.synthetic import synthetic_road_graph

    t0 = time.perf_counter()
    graph = synthetic_road_graph(n_nodes, seed=0)
    return graph, f"generated (seed 0) in {time.perf_counter() - t0:.2f} s"


# --------------------------------------------------------------------------- printing
def _fmt(x: float, width: int, digits: int = 2, approx: bool = False) -> str:
    if not np.isfinite(x):
        return f"{'-':>{width}}"
    s = f"{'~' if approx else ''}{x:.{digits}f}"
    return f"{s:>{width}}"


def _print_case(title: str, runs: list[Run]) -> None:
    ours = next((r for r in runs if r.engine == "ours" and r.ok), None)
    print(f"\n{title}")
    head = (
        f"{'engine':<18} {'rows':>11} {'build s':>8} {'query s':>9} {'q/ours':>8} "
        f"{'cpu s':>7} {'peak MB':>8} {'base MB':>8}  check vs scipy"
    )
    print(head)
    print("-" * (len(head) + 40))
    for r in runs:
        label = ENGINE_LABEL[r.engine]
        rows = f"{r.rows}/{r.n}" if r.extrapolated else "all"
        if not r.ok:
            print(f"{label:<18} {rows:>11}  {r.error}")
            continue
        assert r.result is not None
        ratio = r.query_s / ours.query_s if ours is not None else float("nan")
        ratio_txt = f"{ratio:.1f}x" if np.isfinite(ratio) else "-"
        if r.extrapolated and np.isfinite(ratio):
            ratio_txt = "~" + ratio_txt
        print(
            f"{label:<18} {rows:>11} {_fmt(r.build_s, 8)} "
            f"{_fmt(r.query_s, 9, 3, r.extrapolated)} {ratio_txt:>8} "
            f"{_fmt(r.cpu_s, 7, 2, r.extrapolated)} "
            f"{_fmt(r.peak_mb, 8, 0)} {_fmt(r.result['base_mb'], 8, 0)}  {r.check}"
        )
    for r in runs:
        if r.result is None:
            continue
        res = r.result
        extra = (
            f"; EXTRAPOLATED x{r.n / r.rows:.1f} from {r.rows} of {r.n} rows "
            f"(measured {res['query_s']:.3f} s)"
            if r.extrapolated
            else ""
        )
        runs_txt = ""
        if len(res["query_runs"]) > 1:
            runs_txt = "; query runs " + ", ".join(f"{t:.3f}" for t in res["query_runs"])
        print(
            f"  {r.engine}: {res['note']}{extra}{runs_txt}; build CPU "
            f"{res['build_cpu_s']:.2f} s; memory: own peak "
            f"{res['self_mb']:.0f} MB, workers' peak RSS {res['workers_mb']:.0f} MB, "
            f"tree PSS peak {r.tree_mb:.0f} MB; load average before: {r.load}"
        )


def _goal(label: str, ok: bool | None, figure: str) -> tuple[str, bool | None]:
    verdict = "n/a " if ok is None else ("PASS" if ok else "MISS")
    print(f"  {verdict}  {label:<52} {figure}")
    return label, ok


def _print_goals(results: dict[tuple[str, int], list[Run]]) -> None:
    def get(kind: str, n: int, engine: str) -> Run | None:
        return next((r for r in results.get((kind, n), []) if r.engine == engine and r.ok), None)

    print("\n## goals")
    ours, prk, sci = get("porto", 1000, "ours"), get("porto", 1000, "pyroutingkit"), None
    sci = get("porto", 1000, "scipy")
    for peer, need, name in ((prk, GOAL_VS_PRK, "pyroutingkit"), (sci, GOAL_VS_SCIPY, "scipy")):
        if ours is None or peer is None:
            _goal(f"Porto 1000x1000: ours >= {need:g}x faster than {name}", None, "not measured")
            continue
        ratio = peer.query_s / ours.query_s
        cpu_ratio = peer.cpu_s / max(ours.cpu_s, 1e-9)
        _goal(
            f"Porto 1000x1000: ours >= {need:g}x faster than {name}",
            ratio >= need,
            f"{ratio:.1f}x (ours {ours.query_s:.3f} s, {name} {peer.query_s:.3f} s query; "
            f"CPU-time ratio {cpu_ratio:.1f}x)",
        )
    o10 = get("porto", 10000, "ours")
    _goal(
        f"Porto 10000x10000 ours query <= {GOAL_10K_S:g} s",
        None if o10 is None else o10.query_s <= GOAL_10K_S,
        "not measured" if o10 is None else f"{o10.query_s:.2f} s (+ build {o10.build_s:.2f} s)",
    )
    big = [(k, n) for (k, n) in results if k == "synthetic"]
    o1m = get(big[0][0], big[0][1], "ours") if big else None
    name = f"synthetic {big[0][1]}x{big[0][1]}" if big else "synthetic 2000x2000"
    _goal(
        f"{name} ours query <= {GOAL_1M_S:g} s",
        None if o1m is None else o1m.query_s <= GOAL_1M_S,
        "not measured" if o1m is None else f"{o1m.query_s:.2f} s (+ build {o1m.build_s:.1f} s)",
    )
    _goal(
        f"{name} ours peak memory <= {GOAL_1M_MB / 1024:g} GB",
        None if o1m is None else o1m.peak_mb <= GOAL_1M_MB,
        "not measured" if o1m is None else f"{o1m.peak_mb:.0f} MB (build + query, fresh process)",
    )
    builds = [
        r.build_s
        for (k, _), runs in results.items()
        if k == "porto"
        for r in runs
        if r.engine == "ours" and r.ok
    ]
    _goal(
        f"CH build on Porto <= {GOAL_BUILD_S:g} s",
        None if not builds else max(builds) <= GOAL_BUILD_S,
        "not measured"
        if not builds
        else f"{max(builds):.2f} s (slowest of {len(builds)}: "
        + ", ".join(f"{b:.2f}" for b in builds)
        + ")",
    )


# --------------------------------------------------------------------------- header
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _print_header(args: argparse.Namespace) -> None:
    print(f"# drive-time engines benchmark  {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"command : python {' '.join(sys.argv)}")
    print(
        f"machine : {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"numba {_version('numba')}, pyroutingkit {_version('pyroutingkit')}, "
        f"pandana {_version('pandana')}, igraph {_version('igraph')}"
    )
    print(f"code    : {code_version('roadnet')}")
    print(f"load average at start: {_loadavg()} (1, 5, 15 min)")


# --------------------------------------------------------------------------- main
def _parse_case(text: str) -> tuple[str, int]:
    kind, _, n = text.partition(":")
    if kind not in ("porto", "synthetic") or not n.isdigit() or int(n) < 2:
        raise argparse.ArgumentTypeError(
            f"a case is porto:N or synthetic:N with N >= 2, got {text!r}"
        )
    return kind, int(n)


def _parse_engines(text: str) -> list[str]:
    names = [e.strip() for e in text.split(",") if e.strip()]
    bad = [e for e in names if e not in ENGINES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown engine(s) {bad or text!r}; choose from {','.join(ENGINES)}"
        )
    return names


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument(
        "--case",
        dest="cases",
        action="append",
        type=_parse_case,
        metavar="GRAPH:N",
        help="porto:N or synthetic:N (repeatable; default "
        + ", ".join(DEFAULT_CASES)
        + "); the table is N x N",
    )
    p.add_argument(
        "--engines",
        type=_parse_engines,
        default=None,
        help=f"comma-separated subset of {','.join(ENGINES)} (default: all; "
        "porto:N with N > 5000 runs scipy,ours)",
    )
    p.add_argument("--pbf", type=Path, default=DEFAULT_PBF, help="OSM extract for porto cases")
    p.add_argument(
        "--synthetic-nodes",
        type=int,
        default=1_000_000,
        help="nodes of the synthetic graph (1000000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the node samples (0)")
    p.add_argument("--jobs", type=int, default=2, help="scipy worker processes (2)")
    p.add_argument(
        "--ours-jobs", type=int, default=None, help="n_jobs of ours (default: its own default)"
    )
    p.add_argument(
        "--chunk", type=int, default=None, help="scipy sources per block (settings.chunk_size)"
    )
    p.add_argument(
        "--sample-rows",
        type=int,
        default=None,
        help="rows computed by extrapolated peers (default 1000, 200 on graphs > 200k nodes)",
    )
    p.add_argument("--full", action="store_true", help="no extrapolation: every row everywhere")
    p.add_argument(
        "--check-rows",
        type=int,
        default=1000,
        help="rows compared with scipy (1000; fewer when scipy computed fewer)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help=f"timed queries per engine, best kept (3; no repeat once they took "
        f"{REPEAT_BUDGET_S:g} s)",
    )
    p.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds allowed per engine run (3600)"
    )
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed small run of ours that fills numba's on-disk cache",
    )
    p.add_argument("--_worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker is None:
        if args.jobs < 1 or args.repeat < 1 or args.check_rows < 1:
            p.error("--jobs, --repeat and --check-rows must be >= 1")
        if args.sample_rows is not None and args.sample_rows < 1:
            p.error(f"--sample-rows must be >= 1, got {args.sample_rows}")
        if args.chunk is None:
            from roadnet.settings import settings

            args.chunk = int(settings.chunk_size)
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args._worker is not None:
        return _worker(args._worker)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cases: list[tuple[str, int]] = args.cases or [_parse_case(c) for c in DEFAULT_CASES]
    have_ours = importlib.util.find_spec("roadnet.ch") is not None
    _print_header(args)
    if not have_ours:
        print("NOTE: roadnet/ch.py is not there yet: 'ours' is skipped (peers only)")

    failures: list[str] = []
    results: dict[tuple[str, int], list[Run]] = {}
    graphs: dict[str, tuple[Path, Any]] = {}
    warmed = args.no_warmup or not have_ours
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        work = Path(tmp)
        for kind, n in cases:
            if kind not in graphs:
                try:
                    if kind == "porto":
                        graph, how = _porto_graph(args.pbf.resolve())
                    else:
                        graph, how = _synthetic_graph(args.synthetic_nodes)
                except ImportError as exc:
                    print(f"\n## {kind} {n}x{n}: SKIPPED ({exc}: roadnet.synthetic not there)")
                    continue
                path = graph.save(work / f"{kind}.npz")
                comp = graph.components()
                print(
                    f"\ngraph {kind}: {graph.n_nodes} nodes, {graph.n_arcs} arcs, largest SCC "
                    f"{comp.sizes[0]} nodes ({comp.largest_fraction:.1%}); {how}; "
                    f".npz {path.stat().st_size / 1e6:.0f} MB"
                )
                graphs[kind] = (path, graph)
            path, graph = graphs[kind]
            if not warmed:
                print("warm-up: untimed 20 x 20 run of ours (fills numba's on-disk cache) ...")
                wsrc, wtgt = _pick_nodes(graph.scc, 20, args.seed + 1)
                np.savez(work / "warmup-nodes.npz", sources=wsrc, targets=wtgt)
                w = _run_engine(
                    "ours", 20, 20, path, work / "warmup-nodes.npz", work, "warmup", args, 0
                )
                print(
                    f"  warm-up: build {w.build_s:.2f} s"
                    if w.ok
                    else f"  warm-up failed: {w.error}"
                )
                warmed = True
            sources, targets = _pick_nodes(graph.scc, n, args.seed)
            tag = f"{kind}-{n}"
            nodes_path = work / f"{tag}-nodes.npz"
            np.savez(nodes_path, sources=sources, targets=targets)
            engines = args.engines or _default_engines(kind, n)
            runs: list[Run] = []
            print(f"\n## {kind} {n} x {n} ({graph.n_nodes} nodes, seed {args.seed})")
            for engine in [e for e in ENGINES if e in engines]:
                rows = _plan_rows(engine, kind, n, graph.n_nodes, args)
                if engine == "ours" and not have_ours:
                    runs.append(Run(engine, rows, n, error="skipped: roadnet/ch.py not present"))
                    continue
                print(
                    f"  running {engine} ({rows} of {n} rows) ...",
                    end="",
                    flush=True,
                )
                t0 = time.perf_counter()
                run = _run_engine(
                    engine,
                    rows,
                    n,
                    path,
                    nodes_path,
                    work,
                    tag,
                    args,
                    min(rows, args.check_rows),
                )
                print(
                    f" {time.perf_counter() - t0:.1f} s" + (f": {run.error}" if run.error else "")
                )
                if run.error:
                    failures.append(f"{tag} {engine}: {run.error}")
                runs.append(run)
            ref = next((r for r in runs if r.engine == "scipy" and r.ok), None)
            for r in runs:
                if r.ok and r is not ref:
                    if ref is None:
                        r.check = "no scipy reference"
                        continue
                    _compare(r, ref)
                    if r.check_ok is False:
                        failures.append(f"{tag} {r.engine}: {r.check}")
                elif r is ref:
                    r.check = "(reference)"
            for r in runs:
                r.table = None  # free memory
            results[(kind, n)] = runs
            _print_case(f"### {kind} {n} x {n}: seconds, ratio = peer query / ours", runs)
            graphs[kind] = (path, graph)

    _print_goals(results)
    print(f"\nload average at end: {_loadavg()}")
    print(
        "notes: '~' = extrapolated linearly from the rows shown; build excludes graph loading; "
        "peak = build + query high-water mark of the engine's fresh process incl. the loaded "
        "graph ('base' = RSS after loading it)"
    )
    if failures:
        print("\nFAILURES: " + "; ".join(failures))
        return 1
    print("\nall correctness checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
