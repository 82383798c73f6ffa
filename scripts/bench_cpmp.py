"""Benchmark the capacitated p-median solver (issue 4).

Reads OR-Library ``pmedcap`` files (Osman & Christofides; distances rounded DOWN, as the
published optima require) and Lorena–Senne files (exact Euclidean distances); the format is
detected from the header (:func:`optimizer.orlib.cpmp_format`). Each instance is solved by
:func:`optimizer.pmedian.solve_capacitated_pmedian` within ``--time-limit`` seconds. Printed
per instance: n, p, objective, the optimum when the header gives one and the gap to it,
seconds, and the certificate: the lower bound, where it comes from (MIP dual bound, LP
relaxation or Lagrangian) and the gap ``(objective - bound) / objective``.

Baselines measured in the same run, with the same time limit: the location–allocation
heuristic alone (``exact_below=None``) and HiGHS alone on the MIP
(:func:`optimizer.pmedian.capacitated_pmedian_mip`). ``--no-baselines`` skips them.
The issue's target on pmedcap01-10 is a mean gap <= 0.5 % with every instance <= 5 s.
It prints figures; the exit status is 1 when a solution breaks a capacity (no timing is
checked).

Run from the repository root::

    python scripts/bench_cpmp.py                       # ../shared/data/benchmarks/pmedcap/*
    python scripts/bench_cpmp.py SJC1.txt --time-limit 30
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from optimizer.exceptions import OptimizerError
from optimizer.orlib import cpmp_format, euclidean_distances, read_lorena_senne, read_pmedcap
from optimizer.pmedian import capacitated_pmedian_mip, solve_capacitated_pmedian

# the header (date, machine, versions) is shared with the sibling script
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pmedian import REPO_ROOT, print_header

DEFAULT_DIR = REPO_ROOT.parent / "shared" / "data" / "benchmarks" / "pmedcap"


def _load(path: Path) -> tuple[str, np.ndarray, np.ndarray, int, np.ndarray, float | None]:
    """(format, dist, demand, p, capacity per candidate, optimum or None)."""
    fmt = cpmp_format(path)
    if fmt == "pmedcap":
        xy, demand, p, capacity, optimum = read_pmedcap(path)
        return (
            fmt,
            euclidean_distances(xy, floor=True),
            demand,
            p,
            np.full(len(demand), capacity),
            optimum,
        )
    xy, cap, demand, p = read_lorena_senne(path)
    return fmt, euclidean_distances(xy), demand, p, cap, None


def _gap(value: float, ref: float | None) -> str:
    return "" if ref is None or not np.isfinite(value) else f"{100 * (value - ref) / ref:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="instance files (default: pmedcap)")
    parser.add_argument("--time-limit", type=float, default=5.0, help="seconds per instance")
    parser.add_argument("--exact-below", type=int, default=100, help="full MIP when n <= this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args(argv)

    files = args.files or sorted(DEFAULT_DIR.glob("pmedcap*.txt"))
    if not files:
        print(f"no files given and none found in {DEFAULT_DIR}", file=sys.stderr)
        return 2
    print_header(sys.argv if argv is None else ["scripts/bench_cpmp.py", *argv])
    print(
        f"solver  : solve_capacitated_pmedian(time_limit={args.time_limit}, "
        f"exact_below={args.exact_below}, seed={args.seed})"
        + (
            ""
            if args.no_baselines
            else "; baselines with the same limit: heuristic alone, HiGHS MIP alone"
        )
    )
    print()
    head = (
        f"{'instance':<10} {'format':<7} {'n':>4} {'p':>3} {'objective':>10} {'optimum':>8} "
        f"{'gap %':>6} {'seconds':>7} {'bound':>9} {'from':>10} {'cert %':>6} {'by':>9}"
    )
    if not args.no_baselines:
        head += f" | {'heur':>9} {'gap %':>6} {'s':>5} | {'MIP':>9} {'gap %':>6} {'s':>5}"
    print(head)
    print("-" * len(head))
    gaps, certs, secs, hgaps, mgaps = [], [], [], [], []
    failures = 0
    for f in files:
        name = f.stem
        try:
            fmt, dist, demand, p, capacity, optimum = _load(f)
        except OptimizerError as exc:
            print(f"{name:<10} unreadable: {exc}")
            continue
        n = len(demand)
        res = solve_capacitated_pmedian(
            dist,
            demand,
            p,
            capacity,
            time_limit=args.time_limit,
            exact_below=args.exact_below,
            seed=args.seed,
        )
        loads = np.bincount(res.assignment, weights=demand, minlength=p)
        if np.any(loads > capacity[res.centers] + 1e-9) or res.assignment.shape != (n,):
            print(f"{name:<10} INVALID SOLUTION: a capacity is exceeded")
            failures += 1
        secs.append(res.seconds)
        certs.append(100 * res.gap)
        if optimum is not None:
            gaps.append(100 * (res.objective - optimum) / optimum)
        line = (
            f"{name:<10} {fmt[:7]:<7} {n:>4} {p:>3} {res.objective:>10.2f} "
            f"{'' if optimum is None else f'{optimum:.0f}':>8} {_gap(res.objective, optimum):>6} "
            f"{res.seconds:>7.2f} {res.lower_bound:>9.2f} {res.bound:>10} "
            f"{100 * res.gap:>6.2f} {res.method:>9}"
        )
        if not args.no_baselines:
            heur = solve_capacitated_pmedian(
                dist,
                demand,
                p,
                capacity,
                time_limit=args.time_limit,
                exact_below=None,
                seed=args.seed,
            )
            if optimum is not None:
                hgaps.append(100 * (heur.objective - optimum) / optimum)
            t = time.perf_counter()
            try:
                mip = capacitated_pmedian_mip(dist, demand, p, capacity, time_limit=args.time_limit)
                mval = mip.objective
            except OptimizerError:
                mval = float("nan")  # no feasible solution within the limit
            t_mip = time.perf_counter() - t
            if optimum is not None:
                mgaps.append(100 * (mval - optimum) / optimum if np.isfinite(mval) else np.nan)
            line += (
                f" | {heur.objective:>9.2f} {_gap(heur.objective, optimum):>6} "
                f"{heur.seconds:>5.2f} | {mval:>9.2f} {_gap(mval, optimum):>6} {t_mip:>5.2f}"
            )
        print(line, flush=True)
    print()
    if gaps:
        hits = sum(g <= 1e-9 for g in gaps)
        print(
            f"mean gap to the published optima {np.mean(gaps):.3f} % (max {np.max(gaps):.3f} %, "
            f"optimum on {hits}/{len(gaps)})"
        )
    if hgaps:
        print(f"  heuristic alone: mean gap {np.mean(hgaps):.3f} % (max {np.max(hgaps):.3f} %)")
    if mgaps:
        solved = int(np.sum(np.isfinite(mgaps)))
        print(
            f"  HiGHS MIP alone: mean gap {np.nanmean(mgaps):.3f} % over the {solved}/"
            f"{len(mgaps)} instances where it found a solution, optimum on "
            f"{int(np.sum(np.asarray(mgaps) <= 1e-9))}"
        )
    print(
        f"certificate gap (objective - lower bound) / objective: mean {np.mean(certs):.2f} %, "
        f"max {np.max(certs):.2f} %"
    )
    print(f"seconds per instance: mean {np.mean(secs):.2f}, max {np.max(secs):.2f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
