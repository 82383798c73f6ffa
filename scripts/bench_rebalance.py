"""Rebalancing a deliberately poor existing alignment (the GA seed's experiment, 004).

Starting alignment: ``p`` contiguous territories grown from random seed areas over the
adjacency (breadth-first, seeded) -- contiguous but badly balanced and far from compact, like
many hand-drawn alignments. Two data sets:

* ``ct``: Connecticut ZCTAs, population, straight-line metres (no CT road extract exists),
  contiguity by polygons;
* ``porto``: Porto parishes, count of parishes, **drive seconds** on the Porto OSM extract
  (``roadnet.cached.cached_drive_time_matrix``, through the cache), contiguity by road
  (``roadnet.adjacency.road_adjacency``: a river without a bridge separates).

For every seed it prints

* ``existing``: the poor start;
* the constructive solvers alone, from scratch: ``LA`` and ``dichotomies`` (no contiguity),
  and the scenario's disruption-aware allocation alone (``alloc only``, disruption 1);
* ``LA + local search``: LA followed by the contiguity-keeping local search (moves nearly
  every area: a redesign);
* ``rebalance existing``: the local search straight from the existing alignment
  (``start="existing"``, disruption 1), the method of the first version;
* ``rebalance w=...``: the scenario (``optimizer.scenarios.run_scenario``, both starts, the
  lower objective wins) for every disruption weight of the sweep;

with max deviation, weighted travel (weight x distance to the center, relative to the
existing alignment), areas moved, within the tolerance, contiguity and seconds. A summary
per disruption weight gives the moves-vs-travel frontier and where the seed paper's headline
(>= 16 % less weighted travel at equal or better balance, here: within the tolerance) is
reached.

Usage::

    python scripts/bench_rebalance.py [--areas ct|porto|both] [--seeds 3] [-p P]
        [--tolerance 0.1] [--disruption 0,0.25,0.5,1,2,4,8] [--time-limit 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import scipy.sparse as sp

from optimizer import TerritoryProblem, evaluate, solve
from optimizer.contiguity import is_contiguous
from optimizer.local import local_search
from optimizer.scenarios import run_scenario
from roadnet.adjacency import polygon_adjacency, road_adjacency

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
HEADLINE = 0.16


@dataclass
class Case:
    name: str
    problem: TerritoryProblem
    adjacency: sp.csr_matrix
    unit: str
    p: int


def grown_alignment(adj: sp.csr_matrix, p: int, rng: np.random.Generator) -> np.ndarray:
    """Contiguous territories grown breadth-first from random seeds (a poor start)."""
    n = adj.shape[0]
    lab = np.full(n, -1)
    seeds = rng.choice(n, p, replace=False)
    lab[seeds] = np.arange(p)
    frontier = list(seeds)
    while frontier:
        nxt = []
        for v in rng.permutation(frontier):
            for u in adj[v].indices:
                if lab[u] < 0:
                    lab[u] = lab[v]
                    nxt.append(u)
        frontier = nxt
    lab[lab < 0] = 0  # islands without neighbours join territory 0
    return lab


def ct_case(p: int, tolerance: float) -> Case:
    gdf = gpd.read_file(DATA / "areas" / "ct_zcta_2010.gpkg")
    gdf = gdf.to_crs(gdf.estimate_utm_crs())
    gdf["geometry"] = gdf.geometry.make_valid()
    pts = gdf.geometry.representative_point()
    xy = np.column_stack([pts.x, pts.y])
    w = gdf["population"].to_numpy(float)
    prob = TerritoryProblem.from_points(xy, w, p, tolerance=tolerance)
    return Case(
        "ct_zcta_2010.gpkg (population, straight-line metres, polygon contiguity)",
        prob,
        polygon_adjacency(gdf),
        "m",
        p,
    )


def porto_case(p: int, tolerance: float) -> Case:
    from roadnet.areas import read_areas
    from roadnet.cached import cached_drive_time_matrix
    from roadnet.snap import snap_points
    from territory.cli import load_road_graph

    t0 = time.perf_counter()
    graph = load_road_graph(pbf=DATA / "osm" / "porto_portugal.osm.pbf")
    areas = read_areas(DATA / "areas" / "porto_parishes.gpkg")
    snapped = snap_points(graph, areas.lon, areas.lat)
    matrix, report = cached_drive_time_matrix(graph, snapped)
    seconds = np.asarray(matrix.seconds, dtype=np.float64)
    adj = road_adjacency(polygon_adjacency(areas.gdf), graph, areas.gdf)
    utm = areas.gdf.estimate_utm_crs()
    pts = gpd.GeoSeries(gpd.points_from_xy(areas.lon, areas.lat), crs="EPSG:4326").to_crs(utm)
    xy = np.column_stack([pts.x, pts.y])
    prob = TerritoryProblem.from_cost_matrix(
        seconds, np.ones(len(areas)), p, tolerance=tolerance, coords=xy
    )
    print(
        f"porto: graph {graph.n_nodes:,} nodes, drive-time matrix {seconds.shape[0]}x"
        f"{seconds.shape[1]} ({report.describe()}), road adjacency {adj.nnz // 2} pairs "
        f"of {polygon_adjacency(areas.gdf).nnz // 2} polygon pairs; set-up "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return Case("porto_parishes.gpkg (count, drive seconds, road contiguity)", prob, adj, "s", p)


def _row(name: str, sol: Any, base: float, existing: np.ndarray, adj: Any, p: int, secs: float):
    return (
        name,
        sol.max_deviation,
        sol.cost / base,
        int((sol.assignment != existing).sum()),
        bool(sol.within_bounds),
        bool(is_contiguous(adj, sol.assignment, p)),
        secs,
    )


def run_case(case: Case, seeds: int, weights: list[float], time_limit: float) -> list[dict]:
    prob, adj, p = case.problem, case.adjacency, case.p
    head = (
        f"{'seed':>4s}  {'method':22s} {'max dev':>8s} {'travel':>8s} {'moved':>6s} "
        f"{'within':>6s} {'contig.':>7s} {'seconds':>8s}"
    )
    print(f"\n## {case.name}: {prob.n} areas, p = {p}, tolerance {prob.tol_upper[0]:.0%}")
    print(head)
    print("-" * len(head))
    records = []
    for seed in range(seeds):
        existing = grown_alignment(adj, p, np.random.default_rng(seed))
        rows: list[tuple[Any, ...]] = []
        old = run_scenario(
            prob,
            existing,
            adjacency=adj,
            require_contiguity=True,
            disruption=1.0,
            start="existing",
            time_limit=time_limit,
            seed=seed,
        )
        base = old.before["cost"]
        rows.append(
            ("existing", old.before["max_deviation"], 1.0, 0, bool(old.before["within_bounds"]),
             bool(is_contiguous(adj, existing, p)), 0.0)
        )  # fmt: skip
        for name, method in (("LA", "la"), ("dichotomies", "dichotomies")):
            t0 = time.perf_counter()
            sol = solve(prob, method, seed=seed)
            secs = time.perf_counter() - t0
            rows.append(_row(name, sol, base, existing, adj, p, secs))
            if method == "la":
                t0 = time.perf_counter()
                ls = local_search(
                    prob,
                    sol.assignment,
                    sol.centers,
                    adjacency=adj,
                    require_contiguity=True,
                    time_limit=time_limit,
                    seed=seed,
                )
                ev = evaluate(prob, ls.assignment, ls.centers)
                secs += time.perf_counter() - t0
                rows.append(_row("LA + local search", ev, base, existing, adj, p, secs))
        rows.append(
            _row("rebalance existing", old.solution, base, existing, adj, p, old.solution.seconds)
        )
        for wd in weights:
            sc = run_scenario(
                prob,
                existing,
                adjacency=adj,
                require_contiguity=True,
                disruption=wd,
                time_limit=time_limit,
                seed=seed,
            )
            if wd == 1.0 and sc.allocation is not None:
                al = sc.allocation
                rows.append(
                    ("alloc only w=1", al["max_deviation"], al["cost"] / base, al["areas_moved"],
                     bool(al["within_bounds"]), None, float("nan"))
                )  # fmt: skip
            row = _row(f"rebalance w={wd:g}", sc.solution, base, existing, adj, p, 0.0)
            rows.append((*row[:-1], sc.solution.seconds))
            records.append(
                {
                    "seed": seed,
                    "w": wd,
                    "travel": row[2],
                    "moved": row[3],
                    "within": row[4],
                    "contig": row[5],
                    "dev": row[1],
                    "start": sc.start,
                }
            )
        for name, dev, travel, moved, within, contig, secs in rows:
            c = "-" if contig is None else ("yes" if contig else "no")
            print(
                f"{seed:4d}  {name:22s} {dev:8.1%} {travel:8.1%} {moved:6d} "
                f"{'yes' if within else 'no':>6s} {c:>7s} {secs:8.2f}"
            )
        print()
    n = prob.n
    print(f"frontier ({seeds} seeds; travel relative to the existing alignment; n = {n} areas)")
    head = (
        f"{'w':>5s} {'travel mean':>11s} {'min':>6s} {'max':>6s} {'moved mean':>10s} "
        f"{'share':>6s} {'within':>6s} {'contig':>6s} {'>=16% & within':>14s}"
    )
    print(head)
    print("-" * len(head))
    for wd in weights:
        rs = [r for r in records if r["w"] == wd]
        tr = np.array([r["travel"] for r in rs])
        mv = np.array([r["moved"] for r in rs])
        hit = sum(1 for r in rs if r["within"] and r["travel"] <= 1 - HEADLINE)
        print(
            f"{wd:5g} {tr.mean():11.1%} {tr.min():6.1%} {tr.max():6.1%} {mv.mean():10.1f} "
            f"{mv.mean() / n:6.1%} {sum(r['within'] for r in rs):>3d}/{len(rs):<2d} "
            f"{sum(r['contig'] for r in rs):>3d}/{len(rs):<2d} {hit:>11d}/{len(rs):<2d}"
        )
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--areas", choices=["ct", "porto", "both"], default="both")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("-p", "--territories", type=int, default=None, help="default 28 / 10")
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--disruption", default="0,0.25,0.5,1,2,4,8")
    ap.add_argument("--time-limit", type=float, default=15.0)
    args = ap.parse_args()
    weights = [float(x) for x in args.disruption.split(",")]
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "?"
    print(
        f"bench_rebalance: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {platform.node()}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, commit {commit} (+ working "
        f"tree), load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"disruption weights {weights}; time limit {args.time_limit:g} s per local search; "
        "'travel' = weighted travel / existing alignment's; 'moved' = areas whose territory "
        "changed; 'within' = every territory within the tolerance"
    )
    if args.areas in ("ct", "both"):
        run_case(ct_case(args.territories or 28, args.tolerance), args.seeds, weights,
                 args.time_limit)  # fmt: skip
    if args.areas in ("porto", "both"):
        run_case(porto_case(args.territories or 10, args.tolerance), args.seeds, weights,
                 args.time_limit)  # fmt: skip
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
