"""Solution quality of the default territory pipeline against the proved optimum (issue 15).

Territory cases (tolerance 5 %, p in 4, 8, 12, 20):

* Porto parishes (170), drive times on ``porto_portugal.osm.pbf`` through the cached matrix
  API (:func:`roadnet.cached.cached_drive_time_matrix`), measure = land area in km² (the
  file has no population), contiguity ``road`` (the pipeline's ``auto`` with a road graph);
* Connecticut ZCTAs (282) and Rhode Island ZCTAs (77: the file lists 02861 twice, merged
  into one area with the population summed), straight lines in UTM metres, measure =
  population, contiguity ``polygon``.

Rows per case, all on the same :class:`optimizer.TerritoryProblem`:

* ``LA``: location–allocation alone (:func:`optimizer.solve`, ``"la"``, one start);
* ``default``: what ``design_territories`` runs by default: LA, the tabu local search with
  contiguity (``--time-limit`` 10 s) and :func:`optimizer.polish.polish` (20 s: the exact MIP
  up to 250 areas, with the MIP neighbourhood search of :mod:`optimizer.lns` when it stalls
  on many small territories, a restricted MIP beyond, and the bound on the whole problem);
* ``default-free``: the same without contiguity (comparable with the MIP, which has none);
* ``free-mip-only`` (``--baseline``): ``default-free`` with ``polish(neighbourhood=False)``,
  the polish before the MIP neighbourhood search (:mod:`optimizer.lns`): the full MIP alone
  for the whole budget, measured in the same run as the baseline;
* ``exact``: the MIP alone (:func:`optimizer.solve_exact`, ``--exact-time`` seconds): the
  proved optimum, or its best plan and dual bound at the limit;
* ``exact-contig`` (up to ``--contig-max-n`` areas): the rooted contiguity MIP
  (``solve_exact(..., adjacency=adj)``: territories connected around their center areas,
  islands whole), started from the ``default`` plan, ``--exact-time`` seconds: the proved
  contiguous optimum, or its best plan and dual bound.

Columns: cost, ``true %`` = (cost - optimum) / cost against the proved optimum (against the
best bound on the whole problem of any row when the MIP did not prove one: then an upper
bound of the true gap, marked ``<=``), ``cert %`` = the optimality gap the result reports
itself (its own certificate; ``-`` when it has none), ``c-true %`` = the gap to the proved
contiguous optimum (``<=``: to the best contiguous bound) for plans of the rooted contiguity
model (``rooted`` yes; the contiguous MIP bounds those only), max deviation, within the
tolerance, contiguous (strictly: islands make it ``no``), rooted, seconds (solver time; the
matrix and the adjacency are computed once per area set and not counted).

OR-Library: pmedcap01-10 with seeds 0-4 (:func:`optimizer.pmedian.solve_capacitated_pmedian`,
5 s each; optimum count) and pmed1-20 with seeds 0-4 (:func:`optimizer.pmedian.solve_pmedian`
with its defaults; mean gap, runs proved optimal, seconds), measured beside the same call with
``exact=False`` (the interchange alone, the previous default) and the ratio of their times.

Run from the repository root (the machine is shared: times are noisy)::

    python scripts/bench_quality.py
    python scripts/bench_quality.py --cases ri --p 4 8 --no-orlib
    python scripts/bench_quality.py --no-territories          # OR-Library part only
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import optimizer
from optimizer import TerritoryProblem, solve, solve_exact
from optimizer.contiguity import is_contiguous
from optimizer.exact import in_contiguity_model
from optimizer.exceptions import OptimizerError
from optimizer.local import local_search
from optimizer.polish import polish
from optimizer.problem import CostMatrix, EuclideanCost
from optimizer.tolerance import parse_tolerance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import code_version  # scripts/ helper

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _areas_case(name: str) -> tuple[np.ndarray, np.ndarray, Any, Any, str] | None:
    """(weights, planar xy, cost provider, adjacency, description) of a case."""
    import geopandas as gpd

    from roadnet.adjacency import polygon_adjacency, road_adjacency

    if name in ("ct", "ri"):
        path = DATA / "areas" / f"{name}_zcta_2010.gpkg"
        if not path.is_file():
            return None
        gdf = gpd.read_file(path)
        dup = int(gdf["zcta"].duplicated().sum())
        if dup:  # RI lists 02861 twice: one area, population summed
            gdf = gdf.dissolve(by="zcta", aggfunc={"population": "sum"}).reset_index()
        gdf = gdf.to_crs(gdf.estimate_utm_crs())
        gdf["geometry"] = gdf.geometry.make_valid()
        pts = gdf.geometry.representative_point()
        xy = np.column_stack([pts.x, pts.y])
        w = gdf["population"].to_numpy(float)[:, None]
        adj = polygon_adjacency(gdf)
        desc = (
            f"{name.upper()} ZCTAs: {len(gdf)} areas"
            + (f" ({dup} duplicate merged)" if dup else "")
            + ", population, straight-line metres, polygon contiguity"
        )
        return w, xy, EuclideanCost(xy, xy), adj, desc
    if name == "porto":
        import roadnet
        from roadnet.cached import cached_drive_time_matrix
        from roadnet.graph_cache import load_road_graph
        from roadnet.snap import snap_points

        pbf = DATA / "osm" / "porto_portugal.osm.pbf"
        path = DATA / "areas" / "porto_parishes.gpkg"
        if not pbf.is_file() or not path.is_file():
            return None
        areas = roadnet.read_areas(path)
        graph, _ = load_road_graph(pbf=pbf)
        snapped = snap_points(graph, areas.lon, areas.lat)
        matrix, rep = cached_drive_time_matrix(graph, snapped)
        gdf = areas.gdf.to_crs(areas.gdf.estimate_utm_crs())
        pts = gdf.geometry.representative_point()
        xy = np.column_stack([pts.x, pts.y])
        w = (gdf.geometry.area.to_numpy() / 1e6)[:, None]
        adj = road_adjacency(polygon_adjacency(areas.gdf), graph, areas.gdf)
        desc = (
            f"Porto parishes: {len(areas)} areas, land area km2, drive seconds "
            f"({rep.describe()}), road contiguity"
        )
        return w, xy, CostMatrix(np.asarray(matrix.seconds)), adj, desc
    raise SystemExit(f"unknown case {name!r}")


def _problem(w: np.ndarray, xy: np.ndarray, cost: Any, p: int, tol: float) -> TerritoryProblem:
    lo, hi = parse_tolerance(tol, w.shape[1])
    return TerritoryProblem(
        weights=w,
        p=p,
        cost=cost,
        candidates=np.arange(w.shape[0]),
        tol_lower=lo,
        tol_upper=hi,
        coords=xy,
    )


def _default(
    prob: TerritoryProblem,
    adj: Any,
    contiguous: bool,
    ls_time: float,
    polish_time: float,
    neighbourhood: bool = True,
) -> optimizer.Solution:
    """The steps of ``design_territories`` with its defaults (no side constraints)."""
    t0 = time.perf_counter()
    la = solve(prob, "la", bound="none")
    res = local_search(
        prob,
        la.assignment,
        la.centers,
        adjacency=adj,
        require_contiguity=contiguous,
        time_limit=ls_time,
    )
    ls = optimizer.evaluate(prob, res.assignment, res.centers, method="la+local-search")
    out = polish(
        prob,
        ls,
        time_limit=polish_time,
        adjacency=adj,
        require_contiguity=contiguous,
        neighbourhood=neighbourhood,
    )
    out.seconds = time.perf_counter() - t0
    return out


def _gap_text(cost: float, opt: float | None, bound: float | None) -> tuple[str, float | None]:
    """(``true %`` text, gap to a proved optimum or None)."""
    if opt is not None:
        true = (cost - opt) / cost
        return f"{100 * true:8.3f}", true
    if bound is not None:
        return f"<={100 * (cost - bound) / cost:6.3f}", None
    return f"{'-':>8}", None


def _row(
    label: str,
    sol: optimizer.Solution,
    adj: Any,
    opt: float | None,
    bound: float | None,
    secs: float,
    c_opt: float | None = None,
    c_bound: float | None = None,
    in_model: bool = False,
) -> tuple[str, float | None, float | None]:
    true_s, true = _gap_text(sol.cost, opt, bound)
    if in_model and sol.within_bounds:
        c_s, c_true = _gap_text(sol.cost, c_opt, c_bound)
    else:
        c_s, c_true = f"{'-':>8}", None
    cert = "-" if sol.optimality_gap is None else f"{100 * sol.optimality_gap:.3f}"
    contig = is_contiguous(adj, sol.assignment, sol.p)
    line = (
        f"  {label:<13} {sol.cost:>14,.6g} {true_s} {c_s} {cert:>8} "
        f"{100 * sol.max_deviation:>7.2f} {'yes' if sol.within_bounds else 'NO':>6} "
        f"{'yes' if contig else 'no':>6} {'yes' if in_model else 'no':>6} {secs:>7.1f}  "
        f"{sol.bound_source}"
    )
    return line, true, c_true


def _territories(args: argparse.Namespace) -> None:
    summary: dict[str, list[float]] = {
        "default-free": [],
        "free-mip-only": [],
        "default": [],
        "LA": [],
        "default vs contiguous optimum": [],
    }
    slow: list[str] = []
    for name in args.cases:
        t = time.perf_counter()
        case = _areas_case(name)
        if case is None:
            print(f"\nskipped {name}: data not found under {DATA}")
            continue
        w, xy, cost, adj, desc = case
        print(f"\n## {desc} [prepared in {time.perf_counter() - t:.1f} s]")
        for p in args.p:
            prob = _problem(w, xy, cost, p, args.tolerance)
            print(
                f"\np = {p}, tolerance {args.tolerance:.0%}\n"
                f"  {'method':<13} {'cost':>14} {'true %':>8} {'c-true %':>8} {'cert %':>8} "
                f"{'maxdev%':>7} {'within':>6} {'contig':>6} {'rooted':>6} {'seconds':>7}  bound"
            )
            t = time.perf_counter()
            try:
                ex = solve_exact(prob, time_limit=args.exact_time, max_variables=10**8)
            except OptimizerError as exc:
                print(f"  exact: {exc}")
                ex = None
            t_ex = time.perf_counter() - t
            proved = ex is not None and ex.details.get("status") == "optimal"
            opt = ex.cost if proved and ex is not None else None
            bnd = None if ex is None else ex.lower_bound
            rows: list[tuple[str, optimizer.Solution, float]] = []
            t = time.perf_counter()
            la = solve(prob, "la")
            rows.append(("LA", la, time.perf_counter() - t))
            runs = [("default", True, True), ("default-free", False, True)]
            if args.baseline:
                runs.append(("free-mip-only", False, False))
            for label, contiguous, nbh in runs:
                t = time.perf_counter()
                sol = _default(prob, adj, contiguous, args.ls_time, args.polish_time, nbh)
                rows.append((label, sol, time.perf_counter() - t))
            if ex is not None:
                rows.append(("exact", ex, t_ex))
            c_opt = c_bnd = None
            if prob.n <= args.contig_max_n:
                t = time.perf_counter()
                try:
                    start = rows[1][1]  # the default (contiguous) plan as the start
                    cx = solve_exact(
                        prob,
                        time_limit=args.exact_time,
                        max_variables=10**8,
                        adjacency=adj,
                        initial=start,
                    )
                    rows.append(("exact-contig", cx, time.perf_counter() - t))
                    c_bnd = cx.lower_bound
                    if cx.details.get("status") == "optimal":
                        c_opt = cx.cost
                except OptimizerError as exc:
                    print(f"  exact-contig: {exc}")
            # without a proved optimum: the best bound on the whole problem any run found
            bounds = [s.lower_bound for _, s, _ in rows if s.lower_bound is not None]
            if bnd is not None:
                bounds.append(bnd)
            bnd = max(bounds) if bounds else None
            # without a proved contiguous optimum: the best contiguous bound any row found
            c_bounds = [s.lower_bound for _, s, _ in rows if s.bound_source == "mip-contiguous"] + [
                c_bnd
            ]
            c_bnd = max((b for b in c_bounds if b is not None), default=None)
            for label, sol, secs in rows:
                rooted = in_contiguity_model(prob, sol.assignment, sol.centers, adj)
                line, true, c_true = _row(label, sol, adj, opt, bnd, secs, c_opt, c_bnd, rooted)
                print(line, flush=True)
                if label in summary and true is not None and sol.within_bounds:
                    summary[label].append(true)
                if label == "default" and c_true is not None:
                    summary["default vs contiguous optimum"].append(c_true)
                if label.startswith("default") and secs > 30 and prob.n <= 300:
                    slow.append(f"{name} p={p} {label} {secs:.1f} s")
                # a contiguous certificate bounds the plans of the contiguity model only
                ref = c_opt if sol.bound_source == "mip-contiguous" else opt
                understated = (
                    sol.optimality_gap is not None
                    and ref is not None
                    and sol.optimality_gap < (sol.cost - ref) / sol.cost - 1e-9
                )
                if understated:
                    print(f"  !! {label}: reported gap below the true gap")
            if not proved:
                print(f"  (the MIP did not prove an optimum in {args.exact_time:.0f} s)")
            if prob.n <= args.contig_max_n and c_opt is None:
                print(f"  (the contiguous MIP did not prove an optimum in {args.exact_time:.0f} s)")
    print("\n## summary over the cases where the MIP proved the optimum (plans within tolerance)")
    for label, vals in summary.items():
        if vals:
            print(
                f"  {label:<13} mean {100 * statistics.mean(vals):.3f} %, max "
                f"{100 * max(vals):.3f} %, within 0.5 %: {sum(v <= 0.005 for v in vals)}/"
                f"{len(vals)}"
            )
    print("  default runs over 30 s (n <= 300): " + (", ".join(slow) if slow else "none"))


def _orlib(args: argparse.Namespace) -> None:
    from optimizer.orlib import euclidean_distances, read_pmed, read_pmedcap, read_pmedopt
    from optimizer.pmedian import solve_capacitated_pmedian, solve_pmedian

    bench = DATA / "benchmarks"
    print(f"\nOR-Library part: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cap_files = [] if args.no_pmedcap else sorted((bench / "pmedcap").glob("pmedcap*.txt"))
    if cap_files:
        print(f"\n## pmedcap01-10, seeds {args.seeds}, {args.cap_time:.0f} s each")
        hits, runs, worst, certified = 0, 0, 0.0, 0
        for f in cap_files:
            xy, demand, p, q, opt = read_pmedcap(f)
            dist = euclidean_distances(xy, floor=True)
            objs, secs, gaps = [], [], []
            for seed in args.seeds:
                res = solve_capacitated_pmedian(
                    dist, demand, p, q, seed=seed, time_limit=args.cap_time
                )
                objs.append(res.objective)
                secs.append(res.seconds)
                gaps.append(res.gap)
                runs += 1
                hits += opt is not None and res.objective <= opt + 1e-6
                certified += res.gap <= 1e-4
                worst = max(worst, res.seconds)
            print(
                f"  {f.stem:<10} optimum {opt}: objectives {[round(o) for o in objs]}, "
                f"seconds max {max(secs):.2f}, certificate gaps % "
                f"{' '.join(f'{100 * g:.2f}' for g in gaps)}",
                flush=True,
            )
        print(
            f"  optimum in {hits}/{runs} runs; slowest run {worst:.2f} s; certified within "
            f"HiGHS' 0.01 % in {certified}/{runs}"
        )
    pmed_files = sorted((bench / "pmed").glob("pmed[0-9]*.txt"), key=lambda x: int(x.stem[4:]))
    if pmed_files:
        optima = read_pmedopt(bench / "pmed" / "pmedopt.txt")
        print(
            f"\n## pmed1-20, seeds {args.seeds}: solve_pmedian defaults (10 starts, 50 "
            "perturbations, no time limit; Lagrangian bound + reduced MIP) vs the same without "
            "the exact phase (exact=False: the interchange alone, the previous default)"
        )
        print(
            f"  {'instance':<8} {'n':>4} {'p':>4} | {'default gaps %':<36} {'proved':>6} "
            f"{'s max':>6} {'s sum':>6} | {'exact=False gaps %':<36} {'s sum':>6}"
        )
        gaps, base_gaps, proved, false_claims = [], [], 0, 0
        t_new = t_base = 0.0
        slowest = 0.0
        for f in pmed_files:
            dist, p, n = read_pmed(f)
            opt = optima[f.stem]
            g, gb, secs, secs_b, ok = [], [], [], [], 0
            for seed in args.seeds:
                res = solve_pmedian(dist, None, p, seed=seed)
                base = solve_pmedian(dist, None, p, seed=seed, exact=False)
                g.append(100 * (res.objective - opt) / opt)
                gb.append(100 * (base.objective - opt) / opt)
                secs.append(res.seconds)
                secs_b.append(base.seconds)
                ok += res.optimal
                # a claim of optimality must hold, and the bound must not exceed the optimum
                false_claims += (res.optimal and res.objective > opt) or res.lower_bound > opt
            gaps += g
            base_gaps += gb
            proved += ok
            t_new += sum(secs)
            t_base += sum(secs_b)
            slowest = max(slowest, max(secs))
            gs = " ".join(f"{x:.3f}" for x in g)
            gbs = " ".join(f"{x:.3f}" for x in gb)
            print(
                f"  {f.stem:<8} {n:>4} {p:>4} | {gs:<36} {ok:>3}/{len(g):<2} {max(secs):>6.2f} "
                f"{sum(secs):>6.2f} | {gbs:<36} {sum(secs_b):>6.2f}",
                flush=True,
            )
        print(
            f"  default: mean gap {statistics.mean(gaps):.4f} % over {len(gaps)} runs, max "
            f"{max(gaps):.3f} %, optimum in {sum(x <= 1e-9 for x in gaps)}/{len(gaps)}, proved "
            f"optimal in {proved}/{len(gaps)}, {t_new:.1f} s in all, slowest run {slowest:.2f} s"
        )
        print(
            f"  exact=False: mean gap {statistics.mean(base_gaps):.4f} %, max "
            f"{max(base_gaps):.3f} %, optimum in {sum(x <= 1e-9 for x in base_gaps)}/"
            f"{len(base_gaps)}, {t_base:.1f} s in all; time ratio default / exact=False "
            f"{t_new / t_base:.2f}"
        )
        print(f"  false optimality claims or bounds above the optimum: {false_claims}")
    print(f"  load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=["porto", "ct", "ri"])
    ap.add_argument("--p", nargs="+", type=int, default=[4, 8, 12, 20])
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--exact-time", type=float, default=60.0)
    ap.add_argument("--ls-time", type=float, default=10.0, help="local search (pipeline default)")
    ap.add_argument("--polish-time", type=float, default=20.0, help="polish (pipeline default)")
    ap.add_argument(
        "--baseline",
        action="store_true",
        help="add the free-mip-only row: the polish without the neighbourhood search",
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--cap-time", type=float, default=5.0)
    ap.add_argument(
        "--contig-max-n", type=int, default=100, help="exact-contig row up to this many areas"
    )
    ap.add_argument("--no-orlib", action="store_true")
    ap.add_argument("--no-territories", action="store_true")
    ap.add_argument("--no-pmedcap", action="store_true", help="OR-Library: pmed1-20 only")
    args = ap.parse_args()
    print(
        f"bench_quality: python {platform.python_version()}, {platform.machine()}, "
        f"code {code_version()}"
    )
    if not args.no_territories:
        _territories(args)
    if not args.no_orlib:
        _orlib(args)


if __name__ == "__main__":
    main()
