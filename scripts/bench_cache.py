"""Benchmark the persistent cache of road graphs and drive-time matrices (issue 3).

On an OpenStreetMap extract (Porto by default), in one run and on one fresh cache folder, this
script measures

1. **graph**: cold (:func:`roadnet.cached.cached_graph` builds the graph from the PBF and stores
   it) against warm (the same call served from the cache), the way ``roadnet`` CLI commands load
   a ``--pbf`` (:func:`territory.cli.load_road_graph`: SHA-256 of the file, then the cache);
2. **matrix**: the N x N table between ``--n`` random points near the roads of the largest
   strongly connected component (seeded), cold (computed and stored) against warm (the
   identical request, served from the cache), with the uncached
   :func:`roadnet.drive_time_matrix` as the baseline;
3. **incremental**: the N points plus ``--extra-fraction`` x N new points through the cache
   (status ``partial``: only the new rows and columns are searched) against the full
   computation of the same N + extra points without cache, with the share of searches run;
4. **subset**: 200 random points of the N assembled from the cache against computed directly.

Every cached result is checked against the direct computation (``np.testing``); the exit
status is 1 when a check fails. The script prints figures and ratios measured in the same run
and asserts no timing.

Run from the repository root::

    python scripts/bench_cache.py                  # N = 2000, 1 % new points, all cores
    python scripts/bench_cache.py --n 5000         # the issue's 5,000 + 50 case
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy
from _provenance import code_version  # scripts/ helper

import cache
import roadnet
from cache import Store
from roadnet.cached import CacheReport, cached_drive_time_matrix
from roadnet.graph_cache import cached_graph
from roadnet.sources import file_sha256

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PBF = REPO_ROOT / ".." / "shared" / "data" / "osm" / "porto_portugal.osm.pbf"
#: points are drawn within this many metres of a node of the largest SCC
JITTER_M = 30.0
#: relative tolerance of the equality checks (cells searched backwards may round differently)
RTOL = 1e-5
#: size of the subset of step 4
SUBSET = 200
_M_PER_DEG = 111_320.0


# --------------------------------------------------------------------------- measuring
@dataclasses.dataclass
class Timing:
    """Wall time of one measured step."""

    name: str
    seconds: float = float("nan")


@contextmanager
def _timed(name: str, timings: list[Timing]) -> Iterator[Timing]:
    t = Timing(name)
    t0 = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - t0
        timings.append(t)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_total() -> str:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024**2:.0f} GiB"
    except OSError:
        pass
    return "unknown memory"


def _nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "n/a"


def _ratio(slow: float, fast: float) -> str:
    """``slow / fast`` as ``12.3x``."""
    if not (np.isfinite(slow) and np.isfinite(fast)) or fast <= 0:
        return "-"
    return f"{slow / fast:.1f}x"


# --------------------------------------------------------------------------- checks
@dataclasses.dataclass
class Check:
    """Outcome of one equality check against the direct computation."""

    name: str
    ok: bool
    cells: int
    exact_diff: int
    max_abs_diff: float
    message: str = ""


def _check(name: str, ours: np.ndarray, ref: np.ndarray) -> Check:
    """``ours`` equals ``ref`` within :data:`RTOL` (inf equals inf); counts bit differences."""
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    if ours.shape != ref.shape:
        return Check(name, False, ref.size, -1, float("nan"), f"shape {ours.shape} != {ref.shape}")
    both_finite = np.isfinite(ours) & np.isfinite(ref)
    with np.errstate(invalid="ignore"):  # inf - inf where both are unreachable
        diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    max_diff = float(diff[both_finite].max()) if both_finite.any() else 0.0
    exact = int(np.sum(~((ours == ref) | (np.isnan(ours) & np.isnan(ref)))))
    try:
        np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=0.0)
    except AssertionError as exc:
        return Check(name, False, ref.size, exact, max_diff, str(exc).strip())
    return Check(name, True, ref.size, exact, max_diff)


# --------------------------------------------------------------------------- points
def _pick_points(
    graph: roadnet.CompiledGraph, n_total: int, seed: int
) -> tuple[roadnet.SnappedPoints, int]:
    """``n_total`` distinct random points within :data:`JITTER_M` of largest-SCC nodes.

    Each point is a random node of the largest SCC moved by a random offset of up to
    ``JITTER_M`` metres, so points sit near (not on) the roads, as ZIP centroids do. Points
    that snap outside the largest SCC, farther than the flag distance, or onto an existing
    label are dropped. Returns the snapped points and how many candidates were dropped.
    """
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(graph.scc == 0)
    want = int(n_total * 1.2) + 20
    if want > candidates.shape[0]:
        raise SystemExit(
            f"{n_total} points need more candidates than the {candidates.shape[0]} nodes "
            "of the largest SCC"
        )
    nodes = rng.choice(candidates, size=want, replace=False)
    radius = JITTER_M * np.sqrt(rng.random(want))
    angle = rng.random(want) * 2 * np.pi
    lat = graph.lat[nodes] + radius * np.cos(angle) / _M_PER_DEG
    lon = graph.lon[nodes] + radius * np.sin(angle) / (_M_PER_DEG * np.cos(np.radians(lat)))
    snapped = roadnet.snap_points(graph, lon, lat)
    ok = (snapped.component == 0) & ~snapped.flagged
    _, first = np.unique(snapped.labels, return_index=True)
    unique = np.zeros(want, bool)
    unique[first] = True
    keep = np.flatnonzero(ok & unique)
    if keep.shape[0] < n_total:
        raise SystemExit(f"only {keep.shape[0]} usable points of {want} drawn; lower --n")
    return snapped.subset(keep[:n_total]), int(want - keep.shape[0])


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
    p.add_argument("--n", type=int, default=2000, help="points: the cached table is N x N (2000)")
    p.add_argument(
        "--extra-fraction",
        type=float,
        default=0.01,
        help="new points added in step 3, as a fraction of N (0.01)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the point sample (0)")
    p.add_argument("--jobs", type=int, default=-1, help="worker processes (-1 = all cores)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="empty or new cache folder to use and keep (default: a fresh temporary folder, "
        "removed at the end)",
    )
    p.add_argument(
        "--engine",
        choices=["scipy", "ch", "auto"],
        default="scipy",
        help="matrix engine for the computed cells (scipy: as first recorded)",
    )
    args = p.parse_args(argv)
    if args.n < SUBSET + 1:
        p.error(f"--n must be > {SUBSET} (step 4 takes {SUBSET} of the N points), got {args.n}")
    if not 0 < args.extra_fraction <= 1:
        p.error(f"--extra-fraction must be in (0, 1], got {args.extra_fraction}")
    if args.jobs == 0:
        p.error("--jobs must be -1 (all cores) or >= 1, got 0")
    if args.cache_dir is not None and args.cache_dir.exists() and any(args.cache_dir.iterdir()):
        p.error(
            f"--cache-dir must be empty or new (cold runs need an empty cache): {args.cache_dir}"
        )
    return args


def _resolve_pbf(path: Path) -> Path:
    pbf = path if path.is_absolute() else Path.cwd() / path
    if not pbf.is_file() and not path.is_absolute():
        pbf = REPO_ROOT / path
    if not pbf.is_file():
        raise SystemExit(f"PBF file not found: {path}")
    return pbf.resolve()


def _print_header(args: argparse.Namespace, pbf: Path, cache_dir: Path, temp: bool) -> None:
    import pyrosm

    effective = (
        f"--pbf {args.pbf} --n {args.n} --extra-fraction {args.extra_fraction} "
        f"--seed {args.seed} --jobs {args.jobs}"
    )
    print(f"# cache benchmark (issue 3)  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"command : python {' '.join(sys.argv)}")
    print(f"options : {effective}")
    print(
        f"machine : nproc {_nproc()} (os.cpu_count {os.cpu_count()}), {_cpu_model()}, "
        f"{_mem_total()}, {platform.system()} {platform.release()} {platform.machine()}"
    )
    print(
        f"versions: python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, pyrosm {pyrosm.__version__}, roadnet {roadnet.__version__}, "
        f"cache {cache.__version__}"
    )
    print(f"code    : {code_version('roadnet', 'cache')}")
    print(f"pbf     : {pbf} ({pbf.stat().st_size / 1e6:.1f} MB)")
    print(f"cache   : {cache_dir} ({'temporary, removed at the end' if temp else 'kept'})")
    print(f"load average at start: {_loadavg()}")


def _report(label: str, secs: float, rep: CacheReport) -> None:
    print(
        f"{label:<44} {secs:8.3f} s   status {rep.status:<9} rows {rep.rows_computed:>5} "
        f"cols {rep.cols_computed:>5} cells from cache {rep.cells_from_cache:>12,}"
    )


def _run(args: argparse.Namespace, pbf: Path, store: Store) -> int:
    n = args.n
    n_extra = max(1, round(n * args.extra_fraction))
    jobs = args.jobs
    timings: list[Timing] = []
    checks: list[Check] = []
    profile = roadnet.SpeedProfile.default()

    # 1. graph ------------------------------------------------------------------------------
    print("\n## 1. graph: cold (build from the PBF + store) vs warm (from the cache)")
    built: dict[str, float] = {}

    def build() -> roadnet.CompiledGraph:
        t0 = time.perf_counter()
        g = roadnet.graph_from_pbf(pbf, profile=profile)
        built["seconds"] = time.perf_counter() - t0
        return g

    def load() -> tuple[roadnet.CompiledGraph, bool]:
        identity = {"type": "pbf", "sha256": file_sha256(pbf)}  # as load_road_graph does
        return cached_graph(identity, build, profile, store=store)

    with _timed("graph cold", timings) as t_gcold:
        g_cold, hit_cold = load()
    with _timed("graph warm", timings) as t_gwarm:
        graph, hit_warm = load()
    t0 = time.perf_counter()
    file_sha256(pbf)
    sha_s = time.perf_counter() - t0
    build_s = built.get("seconds", float("nan"))
    print(
        f"nodes {graph.n_nodes}, routing arcs {graph.n_arcs}, largest SCC "
        f"{int(np.sum(graph.scc == 0))} nodes"
    )
    print(
        f"{'cold: sha256 + build + store':<44} {t_gcold.seconds:8.3f} s   from cache: {hit_cold}"
        f"  (graph_from_pbf {build_s:.3f} s, store {t_gcold.seconds - build_s - sha_s:.3f} s)"
    )
    print(
        f"{'warm: sha256 + read from cache':<44} {t_gwarm.seconds:8.3f} s   from cache: {hit_warm}"
        f"  (sha256 of the PBF {sha_s:.3f} s)"
    )
    print(f"graph warm is {_ratio(t_gcold.seconds, t_gwarm.seconds)} faster than cold")
    same = all(np.array_equal(a, graph.arrays()[k]) for k, a in g_cold.arrays().items())
    if hit_cold or not hit_warm or not same:
        checks.append(
            Check(
                "graph",
                False,
                0,
                -1,
                float("nan"),
                f"cold hit={hit_cold}, warm hit={hit_warm}, arrays equal={same}",
            )
        )
    else:
        checks.append(Check("graph arrays (warm == cold)", True, 0, 0, 0.0))
    del g_cold

    # points ----------------------------------------------------------------------------------
    pts_all, dropped = _pick_points(graph, n + n_extra, args.seed)
    base = pts_all.subset(np.arange(n))
    sub_rows = np.sort(np.random.default_rng(args.seed + 1).choice(n, size=SUBSET, replace=False))
    subset = base.subset(sub_rows)
    print(
        f"\npoints: {n} + {n_extra} new, random nodes of the largest SCC moved by up to "
        f"{JITTER_M:g} m (seed {args.seed}); snap distance median "
        f"{np.median(pts_all.snap_distance_m):.1f} m, max {pts_all.snap_distance_m.max():.1f} m"
        f"; {dropped} drawn candidates dropped (other component, flagged or duplicate)"
    )
    # warm-up: imports, numba, the snapping index (not timed)
    roadnet.drive_time_matrix(graph, base.subset(np.arange(5)), n_jobs=1)

    # 2. N x N --------------------------------------------------------------------------------
    print(f"\n## 2. matrix {n} x {n}: cold (computed + stored) vs warm (from the cache)")
    with _timed("direct N", timings) as t_direct:
        ref = roadnet.drive_time_matrix(graph, base, n_jobs=jobs).seconds
    with _timed("cached N cold", timings) as t_cold:
        m_cold, r_cold = cached_drive_time_matrix(graph, base, n_jobs=jobs, store=store)
    with _timed("cached N warm", timings) as t_warm:
        m_warm, r_warm = cached_drive_time_matrix(graph, base, n_jobs=jobs, store=store)
    print(f"{'direct drive_time_matrix (no cache)':<44} {t_direct.seconds:8.3f} s")
    _report("cold: cached_drive_time_matrix", t_cold.seconds, r_cold)
    _report("warm: identical request", t_warm.seconds, r_warm)
    print(
        f"warm is {_ratio(t_cold.seconds, t_warm.seconds)} faster than cold; cold costs "
        f"{_ratio(t_cold.seconds, t_direct.seconds)} the direct computation"
    )
    checks.append(_check(f"N x N cold ({r_cold.status})", m_cold.seconds, ref))
    checks.append(_check(f"N x N warm ({r_warm.status})", m_warm.seconds, ref))
    del m_cold, m_warm

    # 3. incremental --------------------------------------------------------------------------
    n_all = n + n_extra
    print(f"\n## 3. incremental: the {n} points + {n_extra} new ({n_all} x {n_all})")
    with _timed("direct N+extra", timings) as t_full:
        ref_all = roadnet.drive_time_matrix(graph, pts_all, n_jobs=jobs).seconds
    with _timed("cached N+extra", timings) as t_inc:
        m_inc, r_inc = cached_drive_time_matrix(graph, pts_all, n_jobs=jobs, store=store)
    searches = r_inc.rows_computed + r_inc.cols_computed
    print(f"{'direct drive_time_matrix (no cache)':<44} {t_full.seconds:8.3f} s")
    _report("cached_drive_time_matrix", t_inc.seconds, r_inc)
    print(
        f"incremental takes {t_inc.seconds / t_full.seconds:.1%} of the full computation "
        f"({_ratio(t_full.seconds, t_inc.seconds)} faster); searches run: {searches} of "
        f"{n_all} ({searches / n_all:.1%})"
    )
    print(
        f"second baseline: {t_inc.seconds / t_direct.seconds:.1%} of the direct {n} x {n} of "
        f"step 2 ({t_direct.seconds:.3f} s); the two direct runs differ by "
        f"{t_full.seconds / t_direct.seconds - 1:+.0%} (other load on the machine shows here)"
    )
    checks.append(_check(f"incremental ({r_inc.status})", m_inc.seconds, ref_all))
    del m_inc
    entries = store.ls(kind="matrix")
    print(
        f"cache now holds {len(entries)} matrix entr{'y' if len(entries) == 1 else 'ies'} "
        f"({', '.join(f'{i.size_bytes / 1e6:.1f} MB' for i in entries)}); "
        f"store total {store.total_size() / 1e6:.1f} MB"
    )

    # 4. subset ------------------------------------------------------------------------------
    print(f"\n## 4. subset: {SUBSET} random points of the {n}")
    with _timed("direct subset", timings) as t_sdir:
        ref_sub = roadnet.drive_time_matrix(graph, subset, n_jobs=jobs).seconds
    with _timed("cached subset", timings) as t_sub:
        m_sub, r_sub = cached_drive_time_matrix(graph, subset, n_jobs=jobs, store=store)
    print(f"{'direct drive_time_matrix (no cache)':<44} {t_sdir.seconds:8.3f} s")
    _report("cached_drive_time_matrix", t_sub.seconds, r_sub)
    print(f"from the cache: {_ratio(t_sdir.seconds, t_sub.seconds)} faster than direct")
    checks.append(_check(f"subset ({r_sub.status})", m_sub.seconds, ref_sub))
    checks.append(
        _check("subset vs rows of direct N x N", m_sub.seconds, ref[np.ix_(sub_rows, sub_rows)])
    )

    # summary --------------------------------------------------------------------------------
    expected = {
        "N x N cold": ("miss", r_cold.status),
        "N x N warm": ("hit", r_warm.status),
        "incremental": ("partial", r_inc.status),
        "subset": ("assembled", r_sub.status),
    }
    print(f"\n## summary ({pbf.name}, N = {n}, +{n_extra} new, --jobs {jobs})")
    head = f"{'step':<40} {'cold / direct':>14} {'cached':>10} {'ratio':>8}  status"
    print(head)
    print("-" * len(head))
    rows: list[tuple[str, float, float, str]] = [
        (
            "1 graph: build+store vs cache",
            t_gcold.seconds,
            t_gwarm.seconds,
            "hit" if hit_warm else "miss",
        ),
        (f"2 matrix {n}x{n}: cold vs warm", t_cold.seconds, t_warm.seconds, r_warm.status),
        (f"3 +{n_extra} new: direct vs cached", t_full.seconds, t_inc.seconds, r_inc.status),
        (f"4 subset {SUBSET}: direct vs cached", t_sdir.seconds, t_sub.seconds, r_sub.status),
    ]
    for name, slow, fast, status in rows:
        print(f"{name:<40} {slow:12.3f} s {fast:8.3f} s {_ratio(slow, fast):>8}  {status}")
    print(
        f"cold matrix vs direct {n}x{n}: {t_cold.seconds:.3f} s vs {t_direct.seconds:.3f} s "
        f"({_ratio(t_cold.seconds, t_direct.seconds)}; cold also stores the result)"
    )
    print(
        f"incremental: {searches} searches of {n_all} ({searches / n_all:.1%}), "
        f"{t_inc.seconds / t_full.seconds:.1%} of the time of the full computation"
    )
    print(f"load average at end: {_loadavg()}")

    print(
        "\n## checks (cached result vs direct drive_time_matrix; np.testing rtol "
        f"{RTOL:g}, inf == inf)"
    )
    failed = False
    for c in checks:
        if c.cells:
            detail = (
                f"{c.cells:,} cells, {c.exact_diff} not bit-identical, max |diff| "
                f"{c.max_abs_diff:.3g} s"
            )
        else:
            detail = c.message or "arrays equal"
        print(f"{'OK  ' if c.ok else 'FAIL'} {c.name:<36} {detail}")
        if not c.ok:
            failed = True
            if c.message and c.cells:
                print("     " + c.message.replace("\n", "\n     "))
    for name, (want, got) in expected.items():
        if want != got:
            failed = True
            print(f"FAIL {name}: status {got!r}, expected {want!r}")
    if failed:
        print("\nCHECKS FAILED")
        return 1
    print("\nall checks passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    roadnet.settings.engine = args.engine
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    pbf = _resolve_pbf(args.pbf)
    temp = args.cache_dir is None
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-cache-")) if temp else args.cache_dir
    try:
        _print_header(args, pbf, cache_dir, temp)
        with Store(cache_dir) as store:
            return _run(args, pbf, store)
    finally:
        if temp:
            shutil.rmtree(cache_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
