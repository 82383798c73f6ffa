"""Benchmark the uncapacitated p-median solver on OR-Library's pmed instances (issue 4).

For every instance file this script reads the graph (all-pairs shortest paths, the last listing
of a duplicated edge wins), runs :func:`optimizer.pmedian.solve_pmedian` and prints n, p, the
objective, the optimum from ``pmedopt.txt``, the gap in % and the seconds. As a baseline
measured in the same run it also runs a single Teitz–Bart local search from one k-means++
start (``n_starts=1, n_perturbations=0``). It ends with the mean gaps. The issue's target is
a mean gap <= 0.5 % on pmed1-20. It prints figures only; it asserts nothing.

Run from the repository root::

    python scripts/bench_pmedian.py                      # ../shared/data/benchmarks/pmed/pmed*.txt
    python scripts/bench_pmedian.py ../shared/data/benchmarks/pmed/pmed1.txt --seed 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import scipy
from _provenance import code_version  # scripts/ helper

from optimizer.orlib import read_pmed, read_pmedopt
from optimizer.pmedian import solve_pmedian

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "data" / "benchmarks" / "pmed"


def _natural(path: Path) -> tuple[str, int]:
    m = re.search(r"(\d+)", path.stem)
    return (path.stem.rstrip("0123456789"), int(m.group(1)) if m else -1)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def print_header(argv: list[str]) -> None:
    """Date, command, machine and versions (the figures depend on all of them)."""
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 1
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"date    : {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"command : python {' '.join(argv)}")
    print(
        f"machine : nproc {nproc}, {_cpu_model()}, {platform.system()} {platform.release()}; "
        f"load average {load} (1, 5, 15 min)"
    )
    print(
        f"versions: python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}"
    )
    print(f"code    : {code_version('optimizer')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="pmedN.txt files (default: all)")
    parser.add_argument("--opt", type=Path, default=None, help="pmedopt.txt (default: beside)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-starts", type=int, default=10)
    parser.add_argument("--n-perturbations", type=int, default=50)
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per instance")
    args = parser.parse_args(argv)

    files = args.files or sorted(
        (f for f in DEFAULT_DIR.glob("pmed*.txt") if f.stem != "pmedopt"), key=_natural
    )
    if not files:
        print(f"no pmed files given and none found in {DEFAULT_DIR}", file=sys.stderr)
        return 2
    opt_path = args.opt or files[0].with_name("pmedopt.txt")
    optima = read_pmedopt(opt_path) if opt_path.is_file() else {}

    print_header(sys.argv if argv is None else ["scripts/bench_pmedian.py", *argv])
    print(
        f"solver  : solve_pmedian(n_starts={args.n_starts}, n_perturbations="
        f"{args.n_perturbations}, seed={args.seed}, time_limit={args.time_limit}); baseline: "
        "one Teitz-Bart local search from one k-means++ start (exact=False)"
    )
    print(f"optima  : {opt_path if optima else 'none found'}")
    print()
    head = (
        f"{'instance':<9} {'n':>4} {'p':>4} {'read s':>6} {'objective':>10} {'optimum':>8} "
        f"{'gap %':>6} {'seconds':>7} {'starts':>6} {'swaps':>6} {'proved':>6} | {'1-start':>8} "
        f"{'gap %':>6} "
        f"{'s':>5}"
    )
    print(head)
    print("-" * len(head))
    gaps, base_gaps, secs, proved = [], [], [], 0
    for f in files:
        t = time.perf_counter()
        dist, p, n = read_pmed(f)
        t_read = time.perf_counter() - t
        res = solve_pmedian(
            dist,
            None,
            p,
            n_starts=args.n_starts,
            n_perturbations=args.n_perturbations,
            seed=args.seed,
            time_limit=args.time_limit,
        )
        base = solve_pmedian(
            dist, None, p, n_starts=1, n_perturbations=0, seed=args.seed, exact=False
        )
        opt = optima.get(f.stem)
        gap = "" if opt is None else f"{100 * (res.objective - opt) / opt:6.3f}"
        bgap = "" if opt is None else f"{100 * (base.objective - opt) / opt:6.3f}"
        if opt is not None:
            gaps.append(100 * (res.objective - opt) / opt)
            base_gaps.append(100 * (base.objective - opt) / opt)
        secs.append(res.seconds)
        proved += res.optimal
        print(
            f"{f.stem:<9} {n:>4} {p:>4} {t_read:>6.2f} {res.objective:>10.0f} "
            f"{'' if opt is None else f'{opt:.0f}':>8} {gap:>6} {res.seconds:>7.2f} "
            f"{res.starts:>6} {res.iterations:>6} {'yes' if res.optimal else 'no':>6} | "
            f"{base.objective:>8.0f} {bgap:>6} "
            f"{base.seconds:>5.2f}",
            flush=True,
        )
    print()
    if gaps:
        hits = sum(g <= 1e-9 for g in gaps)
        print(
            f"mean gap {np.mean(gaps):.3f} % (max {np.max(gaps):.3f} %, optimum reached on "
            f"{hits}/{len(gaps)}); one-start baseline: mean gap {np.mean(base_gaps):.3f} % "
            f"(max {np.max(base_gaps):.3f} %)"
        )
    print(f"proved optimal (the solver's own certificate): {proved}/{len(files)}")
    print(
        f"seconds per instance: mean {np.mean(secs):.2f}, max {np.max(secs):.2f}, "
        f"total {np.sum(secs):.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
