"""Benchmark roadnet's drive-time matrix against the baselines users write today (issue 2).

On an OpenStreetMap extract (Porto by default) this script

1. compiles the drive graph from the PBF (time, peak RSS), saves and reloads it and prints the
   reload-vs-rebuild ratio (the issue asks for a reload >= 20x faster than a rebuild);
2. picks ``--n`` random nodes of the largest strongly connected component (seeded), snaps
   their lon/lat and times :func:`roadnet.drive_time_matrix` for the N x N table, with
   ``--jobs`` worker processes and with ``n_jobs=1``;
3. times the osmnx + networkx baseline, ``nx.single_source_dijkstra_path_length(G, src,
   weight="travel_time")`` per source on :func:`roadnet.graph_to_networkx`, on
   ``--nx-sources`` sources, extrapolates it linearly to N sources and checks its values
   against roadnet's rows;
4. times pandana's contraction hierarchy (``pandana.Network`` construction, then
   ``shortest_path_lengths`` for all N x N pairs) and checks its values against roadnet's
   (skipped with ``--skip-pandana`` or when pandana is not installed or fails).

It prints figures and ratios measured in the same run; it asserts no timing. The exit status is
1 when an equality check fails (reloaded graph, parallel vs serial matrix, networkx, pandana).

Peak memory is the process's maximum resident set size (``getrusage(RUSAGE_SELF).ru_maxrss``);
on Linux the high-water mark is reset before each stage (``/proc/self/clear_refs``) so that each
stage reports its own peak (which includes what earlier stages still hold). The worker
processes' peak comes from ``RUSAGE_CHILDREN`` (forked workers share the parent's pages, which
count in their RSS too).

Run from the repository root::

    python scripts/bench_matrix.py            # N = 1000, all cores
    python scripts/bench_matrix.py --n 200 --skip-pandana
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import scipy
from _provenance import code_version  # scripts/ helper

import roadnet

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PBF = REPO_ROOT / ".." / "shared" / "data" / "osm" / "porto_portugal.osm.pbf"
#: pandana's "no route" value (UINT_MAX milliseconds in its contraction hierarchy).
PANDANA_UNREACHABLE = 4294967.295
#: relative tolerance of the equality checks (absolute 1e-3 s near 0).
RTOL = 1e-3


# --------------------------------------------------------------------------- measuring
def _maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MB (``ru_maxrss`` is in KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(who).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


@dataclasses.dataclass
class Stage:
    """Wall time and peak RSS of one measured step."""

    name: str
    seconds: float = float("nan")
    start_mb: float = float("nan")
    peak_mb: float = float("nan")
    peak_is_stage: bool = False

    def memory(self) -> str:
        """``peak RSS P MB (+D over the stage's start)``."""
        grown = self.peak_mb - self.start_mb
        extra = f" ({grown:+.0f} over its start)" if np.isfinite(grown) else ""
        return f"peak RSS {self.peak_mb:6.0f} MB{extra}"


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


@contextmanager
def _measure(name: str) -> Iterator[Stage]:
    stage = Stage(name)
    stage.peak_is_stage = _reset_peak_rss()
    stage.start_mb = _current_rss_mb()
    t0 = time.perf_counter()
    try:
        yield stage
    finally:
        stage.seconds = time.perf_counter() - t0
        stage.peak_mb = _maxrss_mb()


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "n/a"


def _close(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Element-wise equality within RTOL (inf equals inf)."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    both_inf = np.isinf(ours) & np.isinf(ref)
    with np.errstate(invalid="ignore"):
        near = np.abs(ours - ref) <= RTOL * np.maximum(np.abs(ref), 1.0)
    return both_inf | near


def _fmt_ratio(ratio: float) -> str:
    if not np.isfinite(ratio):
        return "-"
    return f"{ratio:.1f}x slower" if ratio >= 1 else f"{1 / ratio:.1f}x faster"


# --------------------------------------------------------------------------- stages
def _build(pbf: Path, stages: list[Stage]) -> tuple[roadnet.CompiledGraph, dict[str, Any]]:
    with _measure("build graph from PBF") as st:
        graph = roadnet.graph_from_pbf(pbf)
    stages.append(st)
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp:
        with _measure("save compiled graph (.npz)") as st_save:
            path = graph.save(Path(tmp) / "graph.npz")
        stages.append(st_save)
        size_mb = path.stat().st_size / 1e6
        with _measure("load compiled graph (.npz)") as st_load:
            loaded = roadnet.load_graph(path)
        stages.append(st_load)
    reloaded = loaded.arrays()
    same = all(np.array_equal(a, reloaded[name]) for name, a in graph.arrays().items())
    same = same and loaded.meta.get("source") == graph.meta.get("source")
    info = {
        "file_mb": size_mb,
        "reload_ratio": st.seconds / st_load.seconds,
        "reload_equal": same,
    }
    return graph, info


def _pick_points(graph: roadnet.CompiledGraph, n: int, seed: int) -> np.ndarray:
    """``n`` distinct random node rows of the largest strongly connected component."""
    candidates = np.flatnonzero(graph.scc == 0)
    if n > candidates.shape[0]:
        raise SystemExit(f"--n {n} exceeds the {candidates.shape[0]} nodes of the largest SCC")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=n, replace=False))


def _networkx_rows(
    G: nx.MultiDiGraph, graph: roadnet.CompiledGraph, nodes: np.ndarray, sources: np.ndarray
) -> tuple[np.ndarray, float]:
    """Rows ``sources`` (positions in ``nodes``) of the N x N table by the per-source loop."""
    ids = graph.node_ids[nodes].tolist()
    out = np.full((sources.shape[0], nodes.shape[0]), np.inf)
    t0 = time.perf_counter()
    lengths = [
        nx.single_source_dijkstra_path_length(G, ids[s], weight="travel_time") for s in sources
    ]
    elapsed = time.perf_counter() - t0
    for r, dist in enumerate(lengths):
        out[r] = [dist.get(i, np.inf) for i in ids]
    return out, elapsed


def _pandana_table(
    graph: roadnet.CompiledGraph, nodes: np.ndarray, stages: list[Stage]
) -> np.ndarray:
    """The N x N node-to-node table by pandana's contraction hierarchy (inf = no route)."""
    import pandana
    import pandas as pd

    tails = np.repeat(np.arange(graph.n_nodes), np.diff(graph.indptr))
    weights = pd.DataFrame({"travel_time": graph.seconds.astype(np.float64)})
    with _measure("pandana: Network (CH build)") as st:
        net = pandana.Network(
            pd.Series(graph.lon),
            pd.Series(graph.lat),
            pd.Series(tails),
            pd.Series(graph.indices.astype(np.int64)),
            weights,
            twoway=False,
        )
    stages.append(st)
    n = nodes.shape[0]
    label = f"pandana: shortest_path_lengths ({n}x{n} pairs)"
    with _measure(label) as st, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns once per call listing unreachable pairs
        lens = net.shortest_path_lengths(np.repeat(nodes, n), np.tile(nodes, n))
    stages.append(st)
    table = np.asarray(lens, dtype=np.float64).reshape(n, n)
    table[table >= PANDANA_UNREACHABLE] = np.inf
    return table


def _describe_mismatches(
    label: str,
    graph: roadnet.CompiledGraph,
    snapped: roadnet.SnappedPoints,
    ours: np.ndarray,
    ref: np.ndarray,
    rows: np.ndarray,
    limit: int = 5,
) -> None:
    bad = np.argwhere(~_close(ours, ref))
    print(f"  {label}: {bad.shape[0]} of {ref.size} values differ by more than rtol={RTOL:g}")
    for r, j in bad[:limit]:
        i = int(rows[r])
        arc_i, arc_j = int(snapped.arc[i]), int(snapped.arc[j])
        print(
            f"    point {i} -> point {j}: roadnet {float(ours[r, j]):.3f} s, "
            f"reference {float(ref[r, j]):.3f} s; origin on arc {arc_i} "
            f"({'one-way' if graph.arc_twin[arc_i] < 0 else 'two-way'}, "
            f"position {snapped.position_m[i]:.2f} of {graph.arc_metres[arc_i]:.2f} m), "
            f"destination on arc {arc_j} "
            f"({'one-way' if graph.arc_twin[arc_j] < 0 else 'two-way'}, "
            f"position {snapped.position_m[j]:.2f} of {graph.arc_metres[arc_j]:.2f} m)"
        )


# --------------------------------------------------------------------------- main
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--pbf",
        type=Path,
        default=DEFAULT_PBF,
        help="OSM extract (default: ../shared/data/osm/porto_portugal.osm.pbf "
        "relative to the repository root)",
    )
    p.add_argument("--n", type=int, default=1000, help="points: the table is N x N (1000)")
    p.add_argument(
        "--engine",
        choices=["scipy", "ch", "auto"],
        default="scipy",
        help="our engine (scipy: the Dijkstra engine these figures were first recorded with; "
        "scripts/bench_engines.py measures the hierarchy)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the point sample (0)")
    p.add_argument(
        "--nx-sources",
        type=int,
        default=30,
        help="sources timed for the networkx loop, extrapolated to N (30)",
    )
    p.add_argument(
        "--jobs", type=int, default=-1, help="worker processes for roadnet (-1 = all cores)"
    )
    p.add_argument("--skip-pandana", action="store_true", help="do not run pandana")
    args = p.parse_args(argv)
    if args.n < 2:
        p.error(f"--n must be >= 2, got {args.n}")
    if not 1 <= args.nx_sources <= args.n:
        p.error(f"--nx-sources must be in 1..{args.n}, got {args.nx_sources}")
    if args.jobs == 0:
        p.error("--jobs must be -1 (all cores) or >= 1, got 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    roadnet.settings.engine = args.engine
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    pbf = args.pbf if args.pbf.is_absolute() else (Path.cwd() / args.pbf)
    if not pbf.is_file() and not args.pbf.is_absolute():
        pbf = REPO_ROOT / args.pbf
    pbf = pbf.resolve()
    n, k = args.n, args.nx_sources
    failures: list[str] = []
    stages: list[Stage] = []

    print(f"# drive-time matrix benchmark  {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"command : python {' '.join(sys.argv)}")
    print(
        f"machine : {platform.machine()}, {os.cpu_count()} cores (os.cpu_count), "
        f"{platform.system()} {platform.release()}"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"networkx {nx.__version__}, roadnet {roadnet.__version__}"
    )
    print(f"code    : {code_version('roadnet')}")
    print(f"pbf     : {pbf} ({pbf.stat().st_size / 1e6:.1f} MB)")
    print(f"RSS after imports: {_current_rss_mb():.0f} MB")
    print(f"load average at start: {_loadavg()}")

    # 1. build, save, reload ------------------------------------------------------------
    print("\n## 1. graph")
    graph, ginfo = _build(pbf, stages)
    build_s, load_s = stages[0].seconds, stages[2].seconds
    comp = graph.components()
    print(
        f"nodes {graph.n_nodes}, routing arcs {graph.n_arcs}, road arcs {graph.arc_u.shape[0]}"
        f" ({float(np.mean(graph.arc_twin < 0)):.1%} one-way), largest SCC {comp.sizes[0]} "
        f"nodes ({comp.largest_fraction:.2%})"
    )
    for st in stages:
        print(f"{st.name:<32} {st.seconds:8.3f} s   {st.memory()}")
    ratio = ginfo["reload_ratio"]
    print(
        f"compiled graph file {ginfo['file_mb']:.1f} MB; reload is {ratio:.1f}x faster than "
        f"rebuilding from the PBF (issue requires >= 20x: {'OK' if ratio >= 20 else 'NOT MET'})"
    )
    if not ginfo["reload_equal"]:
        failures.append("reloaded graph differs from the compiled one")
        print("FAIL: reloaded graph arrays differ from the compiled graph")

    # 2. our engine ---------------------------------------------------------------------
    print(f"\n## 2. roadnet.drive_time_matrix, {n} x {n}")
    nodes = _pick_points(graph, n, args.seed)
    with _measure("snap_points") as st:
        snapped = roadnet.snap_points(graph, graph.lon[nodes], graph.lat[nodes])
    stages.append(st)
    print(
        f"{n} random nodes of the largest SCC (seed {args.seed}); snapped in {st.seconds:.3f} s"
        f" (max snap distance {snapped.snap_distance_m.max():.2e} m, "
        f"{int(np.sum(graph.arc_twin[snapped.arc] < 0))} on one-way arcs)"
    )
    jobs_label = f"n_jobs={args.jobs}"
    with _measure(f"roadnet matrix ({jobs_label})") as st_par:
        m_par = roadnet.drive_time_matrix(graph, snapped, cutoff=None, n_jobs=args.jobs)
    stages.append(st_par)
    children_mb = _maxrss_mb(resource.RUSAGE_CHILDREN)
    with _measure("roadnet matrix (n_jobs=1)") as st_one:
        m_one = roadnet.drive_time_matrix(graph, snapped, cutoff=None, n_jobs=1)
    stages.append(st_one)
    ours = m_par.seconds
    finite = np.isfinite(ours)
    print(
        f"{jobs_label:<12} {st_par.seconds:8.3f} s   {st_par.memory()}; workers' peak RSS "
        f"{children_mb:.0f} MB (RUSAGE_CHILDREN; forked, so it counts the parent's shared pages)"
    )
    print(f"{'n_jobs=1':<12} {st_one.seconds:8.3f} s   {st_one.memory()}")
    print(
        f"finite pairs {int(finite.sum())} of {ours.size}; median {np.median(ours[finite]):.0f} s"
        f", max {ours[finite].max():.0f} s"
    )
    if not np.array_equal(m_par.seconds, m_one.seconds):
        failures.append(f"roadnet {jobs_label} differs from n_jobs=1")
        print(f"FAIL: {jobs_label} and n_jobs=1 give different matrices")

    # 3. osmnx + networkx per-source loop -----------------------------------------------
    print("\n## 3. networkx loop (osmnx-style MultiDiGraph, weight='travel_time')")
    with _measure("networkx: graph_to_networkx") as st_nxg:
        G = roadnet.graph_to_networkx(graph)
    stages.append(st_nxg)
    sources = np.arange(k)  # the sample is random already
    with _measure(f"networkx: {k} sources") as st_nx:
        nx_rows, nx_loop_s = _networkx_rows(G, graph, nodes, sources)
    st_nx.seconds = nx_loop_s  # Dijkstra calls only, not the dict -> row conversion
    stages.append(st_nx)
    nx_full_s = nx_loop_s / k * n
    print(
        f"graph_to_networkx {st_nxg.seconds:.2f} s ({G.number_of_nodes()} nodes, "
        f"{G.number_of_edges()} edges), {st_nxg.memory()}"
    )
    print(
        f"{k} sources timed: {nx_loop_s:.2f} s ({nx_loop_s / k * 1e3:.1f} ms per source); "
        f"EXTRAPOLATED linearly to {n} sources: {nx_full_s:.1f} s"
    )
    ok_nx = _close(ours[sources], nx_rows)
    if ok_nx.all():
        print(f"networkx rows equal roadnet's on all {nx_rows.size} values (rtol {RTOL:g})")
    else:
        failures.append("networkx rows differ from roadnet's")
        print("FAIL: networkx differs from roadnet")
        _describe_mismatches("networkx vs roadnet", graph, snapped, ours[sources], nx_rows, sources)
    del G

    # 4. pandana --------------------------------------------------------------------------
    pandana_ch_s = pandana_q_s = float("nan")
    pandana_peak = float("nan")
    pandana_note = "skipped (--skip-pandana)"
    if not args.skip_pandana:
        print(f"\n## 4. pandana contraction hierarchy, {n} x {n} pairs")
        try:
            import pandana

            n_before = len(stages)
            table = _pandana_table(graph, nodes, stages)
            pandana_ch_s, pandana_q_s = stages[n_before].seconds, stages[n_before + 1].seconds
            pandana_peak = max(s.peak_mb for s in stages[n_before:])
            pandana_note = f"pandana {pandana.__version__}"
        except ImportError as exc:
            pandana_note = f"not installed ({exc}); pip install 'roadnet[bench]'"
            print(f"pandana skipped: {pandana_note}")
        except Exception as exc:  # a failing baseline is reported, the benchmark goes on
            pandana_note = f"failed: {type(exc).__name__}: {exc}"
            print(f"pandana skipped: {pandana_note}")
        else:
            print(pandana_note)
            for st in stages[n_before:]:
                print(f"{st.name:<48} {st.seconds:8.3f} s   {st.memory()}")
            ok_pd = _close(ours, table)
            if ok_pd.all():
                print(f"pandana equals roadnet on all {table.size} pairs (rtol {RTOL:g})")
            else:
                failures.append("pandana differs from roadnet")
                print("FAIL: pandana differs from roadnet")
                _describe_mismatches(
                    "pandana vs roadnet", graph, snapped, ours, table, np.arange(n)
                )
            # both baselines route node to node: they must agree with each other exactly
            ok_ref = _close(table[sources], nx_rows)
            print(
                f"pandana vs networkx on the {k} networkx rows: "
                f"{int((~ok_ref).sum())} of {nx_rows.size} values differ"
            )
            if not ok_ref.all():
                failures.append("pandana differs from networkx")

    # table ---------------------------------------------------------------------------------
    ref_s = st_par.seconds
    rows = [
        (
            f"roadnet scipy-dijkstra ({jobs_label})",
            f"{build_s:.2f} (PBF)",
            st_par.seconds,
            st_par.peak_mb,
            "measured",
        ),
        (
            "roadnet scipy-dijkstra (n_jobs=1)",
            f"{load_s:.3f} (reload)",
            st_one.seconds,
            st_one.peak_mb,
            "measured",
        ),
        (
            "osmnx+networkx per-source loop",
            f"{st_nxg.seconds:.2f} (to nx)",
            nx_full_s,
            max(st_nxg.peak_mb, st_nx.peak_mb),
            f"extrapolated from {k} sources",
        ),
    ]
    if np.isfinite(pandana_q_s):
        rows.append(
            (
                "pandana CH shortest_path_lengths",
                f"{pandana_ch_s:.2f} (CH)",
                pandana_q_s,
                pandana_peak,
                f"measured, {n * n} pairs",
            )
        )
    else:
        rows.append(
            ("pandana CH shortest_path_lengths", "-", float("nan"), float("nan"), pandana_note)
        )
    print(f"\n## summary: {n} x {n} drive-time table on {pbf.name}")
    head = f"{'engine':<38} {'build s':>16} {'matrix s':>9} {'vs ours':>14} {'peak MB':>8}  note"
    print(head)
    print("-" * len(head))
    for name, build, secs, peak, note in rows:
        ratio_txt = "(reference)" if secs == ref_s else _fmt_ratio(secs / ref_s)
        secs_txt = f"{secs:9.2f}" if np.isfinite(secs) else f"{'-':>9}"
        peak_txt = f"{peak:8.0f}" if np.isfinite(peak) else f"{'-':>8}"
        print(f"{name:<38} {build:>16} {secs_txt} {ratio_txt:>14} {peak_txt}  {note}")
    print(
        f"\nnetworkx loop is {nx_full_s / ref_s:.1f}x slower than roadnet ({jobs_label}) and "
        f"{nx_full_s / st_one.seconds:.1f}x slower than roadnet (n_jobs=1) "
        f"[networkx EXTRAPOLATED from {k} sources]"
    )
    if np.isfinite(pandana_q_s):
        total = pandana_ch_s + pandana_q_s
        print(
            f"pandana queries: {_fmt_ratio(pandana_q_s / ref_s)} than roadnet ({jobs_label}); "
            f"CH build + queries {total:.2f} s: {_fmt_ratio(total / ref_s)}"
        )
    print(
        f"graph reload {load_s:.3f} s vs rebuild {build_s:.2f} s: "
        f"{ginfo['reload_ratio']:.1f}x faster"
    )
    print(f"load average at end: {_loadavg()}")
    if not all(st.peak_is_stage for st in stages):
        print("note: peak RSS could not be reset per stage; figures are cumulative peaks")

    if failures:
        print("\nEQUALITY CHECKS FAILED: " + "; ".join(failures))
        return 1
    print("\nall equality checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
