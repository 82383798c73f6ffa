"""The seed's experiment (Kalcsics, Nickel & Schröder 2005, §7): runtime and balance of the
territory design methods on 100...1000 basic areas with ~10 areas per territory.

Methods: successive dichotomies ("Dicho"), location-allocation with TRANSP + AssignMAX
("Split" in the paper), TRANSP + optimal split resolution (this project's default), and
AllocMinDist + Teitz-Bart interchange ("Inter"). Data: real ZCTAs of Rhode Island and
Connecticut with population, Porto parishes (land area as the measure), and synthetic
instances (uniform points, skewed weights). Straight-line (projected Euclidean) costs.

Prints a table per instance: seconds, max relative deviation from the mean, cost, and
whether all territories are within the tolerance; then the targets of issue 4.

Usage::

    python scripts/bench_territories.py [--tolerance 0.05] [--large]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from optimizer import TerritoryProblem, solve

ROOT = Path(__file__).resolve().parents[1]
AREAS = ROOT.parent / "shared" / "data" / "areas"
METHODS = [
    ("dichotomies", "dichotomies", {}),
    ("LA+TRANSP+AssignMAX", "la-assignmax", {}),
    ("LA+TRANSP+optimal split", "la", {}),
    ("AllocMinDist+interchange", "interchange", {"n_starts": 1, "n_perturbations": 0}),
]


def _real(name: str, measure: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    path = AREAS / name
    if not path.is_file():
        return None
    import geopandas as gpd

    gdf = gpd.read_file(path)
    gdf = gdf.to_crs(gdf.estimate_utm_crs())
    gdf["geometry"] = gdf.geometry.make_valid()
    pts = gdf.geometry.representative_point()
    xy = np.column_stack([pts.x, pts.y])
    w = gdf[measure].to_numpy(float) if measure else gdf.geometry.area.to_numpy() / 1e6
    return xy, w


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 100_000.0
    w = np.round(rng.lognormal(mean=6.0, sigma=0.8, size=n))
    return xy, w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--large", action="store_true", help="also run 10,000 areas / p = 500")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(
        f"python {platform.python_version()}, {platform.machine()}, tolerance {args.tolerance:.0%}"
    )
    instances: list[tuple[str, np.ndarray, np.ndarray]] = []
    for label, file, measure in [
        ("RI ZCTA population", "ri_zcta_2010.gpkg", "population"),
        ("Porto parishes (km2)", "porto_parishes.gpkg", None),
        ("CT ZCTA population", "ct_zcta_2010.gpkg", "population"),
    ]:
        data = _real(file, measure)
        if data is None:
            print(f"skipped {label}: {AREAS / file} not found")
        else:
            instances.append((label, *data))
    for n in (100, 250, 500, 1000):
        instances.append((f"synthetic n={n}", *_synthetic(n, args.seed + n)))
    if args.large:
        instances.append(("synthetic n=10000", *_synthetic(10_000, args.seed)))

    header = (
        f"{'instance':24s} {'n':>6s} {'p':>4s}  {'method':26s} {'seconds':>8s} "
        f"{'max dev':>8s} {'within':>6s} {'cost':>14s}"
    )
    print(header)
    print("-" * len(header))
    results: dict[tuple[str, str], tuple[float, float]] = {}
    for label, xy, w in instances:
        n = xy.shape[0]
        p = 500 if n >= 10_000 else max(2, round(n / 10))
        prob = TerritoryProblem.from_points(xy, w, p, tolerance=args.tolerance)
        for name, method, opts in METHODS:
            if n >= 10_000 and method in ("interchange", "la-assignmax"):
                continue
            t0 = time.perf_counter()
            sol = solve(prob, method, seed=args.seed, **opts)
            sec = time.perf_counter() - t0
            results[(label, name)] = (sec, sol.max_deviation)
            print(
                f"{label:24s} {n:6d} {p:4d}  {name:26s} {sec:8.3f} "
                f"{sol.max_deviation:8.1%} {'yes' if sol.within_bounds else 'no':>6s} "
                f"{sol.cost:14.4g}"
            )
    print()
    d1000 = results.get(("synthetic n=1000", "dichotomies"))
    l1000 = results.get(("synthetic n=1000", "LA+TRANSP+optimal split"))
    if d1000:
        print(
            f"target dichotomies <= 0.2 s at 1000 areas: {d1000[0]:.3f} s "
            f"({'met' if d1000[0] <= 0.2 else 'MISSED'})"
        )
    if l1000:
        print(
            f"target LA + optimal split <= 2 s at 1000 areas: {l1000[0]:.3f} s "
            f"({'met' if l1000[0] <= 2 else 'MISSED'})"
        )
    big = results.get(("synthetic n=10000", "LA+TRANSP+optimal split"))
    if big:
        print(
            f"target 10,000 areas / p = 500 <= 60 s (LA + optimal split): {big[0]:.1f} s "
            f"({'met' if big[0] <= 60 else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
