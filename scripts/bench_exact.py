"""Time to prove the territory MIP optimal: highspy with a warm start vs scipy's milp.

``optimizer.exact.solve_exact`` solves the (ALLOC) MIP with HiGHS through ``highspy`` and
starts from a heuristic plan; before, it called ``scipy.optimize.milp`` (the same HiGHS, no
start solution). Both run here on the same model (:func:`optimizer.bounds.build_model`) of the
cases of ``scripts/bench_quality.py`` (tolerance 5 %):

* ``scipy-milp``: the old call, cold (the baseline);
* ``highspy-warm``: ``solve_exact(..., initial=plan)`` with the plan of LA + the local search
  without contiguity (its time is not counted);
* ``contig-warm``: the rooted contiguity model (``solve_exact(..., adjacency=adj,
  initial=plan)``), started from LA + the local search with contiguity; its optimum is the
  contiguous optimum, so it is compared with nothing but itself (rounds of separator cuts).

Printed: status, cost, dual bound, seconds, and the ratio scipy / highspy when both proved.

Run from the repository root (the machine is shared: times are noisy)::

    python scripts/bench_exact.py
    python scripts/bench_exact.py --cases ri --p 12 --time 60
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

import optimizer
from optimizer import solve, solve_exact
from optimizer.bounds import build_model
from optimizer.local import local_search

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import code_version  # scripts/ helper
from bench_quality import _areas_case, _problem  # same cases


def _scipy_milp(prob: optimizer.TerritoryProblem, limit: float) -> tuple[str, float, float, float]:
    """The pre-highspy solve: (status, objective, dual bound, seconds)."""
    t = time.perf_counter()
    mdl = build_model(prob)
    res = milp(
        mdl.c,
        constraints=LinearConstraint(mdl.a, mdl.row_lo, mdl.row_hi),
        integrality=np.ones(mdl.c.size),
        bounds=Bounds(mdl.lb, mdl.ub),
        options={"time_limit": limit, "mip_rel_gap": 1e-6, "disp": False},
    )
    status = "optimal" if res.status == 0 else "time-limit"
    obj = float(res.fun) if res.x is not None else float("nan")
    return status, obj, float(getattr(res, "mip_dual_bound", np.nan)), time.perf_counter() - t


def _heuristic(prob: optimizer.TerritoryProblem, adj: object, contiguous: bool, ls: float):
    la = solve(prob, "la", bound="none")
    res = local_search(
        prob, la.assignment, la.centers, adjacency=adj, require_contiguity=contiguous,
        time_limit=ls,
    )  # fmt: skip
    return optimizer.evaluate(prob, res.assignment, res.centers, method="la+local-search")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=["ri", "porto"])
    ap.add_argument("--p", nargs="+", type=int, default=None, help="default: ri 4 8 12, porto 8 12")
    ap.add_argument("--time", type=float, default=60.0, help="limit per MIP run (s)")
    ap.add_argument("--ls-time", type=float, default=10.0)
    ap.add_argument("--no-contig", action="store_true")
    args = ap.parse_args()
    print(
        f"bench_exact: python {platform.python_version()}, {platform.machine()}, "
        f"code {code_version()}, limit {args.time:g} s per run"
    )
    for name in args.cases:
        case = _areas_case(name)
        if case is None:
            print(f"skipped {name}: no data")
            continue
        w, xy, cost, adj, desc = case
        print(f"\n## {desc}")
        ps = args.p or ([4, 8, 12] if name == "ri" else [8, 12])
        print(f"  {'p':>3} {'run':<13} {'status':<10} {'cost':>14} {'bound':>14} {'seconds':>8}")
        for p in ps:
            prob = _problem(w, xy, cost, p, 0.05)
            st, obj, bnd, secs = _scipy_milp(prob, args.time)
            print(f"  {p:>3} {'scipy-milp':<13} {st:<10} {obj:>14,.6g} {bnd:>14,.6g} {secs:>8.1f}")
            start = _heuristic(prob, adj, False, args.ls_time)
            ex = solve_exact(prob, time_limit=args.time, max_variables=10**8, initial=start)
            print(
                f"  {p:>3} {'highspy-warm':<13} {ex.details['status']:<10} {ex.cost:>14,.6g} "
                f"{ex.lower_bound or np.nan:>14,.6g} {ex.seconds:>8.1f}   (start {start.cost:,.6g})"
            )
            if st == "optimal" and ex.details["status"] == "optimal":
                print(f"      scipy-milp / highspy-warm = {secs / ex.seconds:.2f}")
            if args.no_contig:
                continue
            cstart = _heuristic(prob, adj, True, args.ls_time)
            try:
                cx = solve_exact(
                    prob, time_limit=args.time, max_variables=10**8, initial=cstart, adjacency=adj
                )
            except optimizer.OptimizerError as exc:
                print(f"  {p:>3} contig-warm   {exc}")
                continue
            print(
                f"  {p:>3} {'contig-warm':<13} {cx.details['status']:<10} {cx.cost:>14,.6g} "
                f"{cx.lower_bound or np.nan:>14,.6g} {cx.seconds:>8.1f}   (start "
                f"{cstart.cost:,.6g}, {cx.details['rounds']} rounds, {cx.details['cuts']} cuts)",
                flush=True,
            )


if __name__ == "__main__":
    main()
